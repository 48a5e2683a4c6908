"""YAML as llmsetup reads it (recipes and the config file): plain data, with line numbers.

Three things a hand-written file must not do, refused before any Python object is built:

- tags (``!custom``, ``!!python/object``, ``!!binary``): a recipe or a config is plain data;
- aliases that expand past :data:`MAX_NODES` values (a "billion laughs" file of nine
  lines expands to billions), or that refer to themselves;
- the same key twice in one mapping.

The document is composed once (the C parser when PyYAML has it), checked as a graph of
nodes (an alias is the same node object reached twice, so the expanded size is counted
per distinct node, in time linear in the file), then constructed from those nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmsetup.i18n import N_, _

# Far above any real recipe or config (a large recipe is a few hundred values), far below
# what costs noticeable time or memory to validate.
MAX_NODES = 20_000

_CORE = "tag:yaml.org,2002:"
# What plain YAML resolves to without an explicit tag (timestamps included: an unquoted
# date is one), and the same tags written out (``!!str 5``), which change nothing harmful.
ALLOWED_TAGS = {_CORE + t for t in ("null", "bool", "int", "float", "str", "seq", "map",
                                    "timestamp")}


class YamlProblem(Exception):
    """A file that is not plain YAML data. ``line`` is 1-based (None when unknown).

    ``problem`` and ``hint`` are in the user's language; ``kind`` (``syntax``, ``tag``,
    ``recursive``, ``size``, ``depth``) says which problem it is, and for ``syntax``
    ``detail`` holds PyYAML's own words (English) so that a caller can phrase it."""

    def __init__(self, problem: str, line: int | None, hint: str, kind: str = "",
                 detail: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
        self.hint = hint
        self.kind = kind
        self.detail = detail


@dataclass
class Document:
    """A parsed file: its data, the line of each key path, its duplicate keys."""

    data: Any
    lines: dict[tuple, int] = field(default_factory=dict)
    duplicates: list[tuple[tuple, int]] = field(default_factory=list)

    def line_for(self, loc: tuple) -> int | None:
        """The line of ``loc``, or of its nearest parent that has one."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None


def _yaml():
    import yaml

    return yaml


def loader_cls():
    yaml = _yaml()
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _children(node: Any) -> list:
    yaml = _yaml()
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_tags(node: Any, seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    if node.tag not in ALLOWED_TAGS:
        tag = node.tag.replace(_CORE, "!!")
        raise YamlProblem(_("tags are not allowed ({tag})").format(tag=tag),
                          node.start_mark.line + 1,
                          _("Write the value as plain YAML: a string, number, list or "
                            "mapping."), kind="tag")
    for child in _children(node):
        _check_tags(child, seen)


def _expanded_sizes(root: Any) -> dict[int, int]:
    """Values each node stands for once its aliases are expanded, per distinct node."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:  # iterative: a deep file must not hit Python's recursion limit
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            sizes[key] = min(MAX_NODES + 1, 1 + sum(sizes[id(c)] for c in _children(node)))
            continue
        if key in sizes:
            continue
        if key in active:
            raise YamlProblem(_("an alias refers to a value that contains it"),
                              node.start_mark.line + 1,
                              _("Remove the recursive alias (*name)."), kind="recursive")
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes


def _check_size(root: Any) -> None:
    sizes = _expanded_sizes(root)
    if sizes[id(root)] <= MAX_NODES:
        return
    # Report the smallest value that is too big: where the aliases pile up.
    node = root
    while True:
        bigger = [c for c in _children(node) if sizes[id(c)] > MAX_NODES]
        if not bigger:
            break
        node = bigger[0]
    raise YamlProblem(_("aliases expand to more than {n} values").format(n=MAX_NODES),
                      node.start_mark.line + 1,
                      _("Write the values out, or use fewer aliases (*name)."), kind="size")


def _lines(node: Any, path: tuple, doc: Document) -> None:
    yaml = _yaml()
    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                doc.duplicates.append(((*path, key), key_node.start_mark.line + 1))
            seen.add(key)
            _lines(value_node, (*path, key), doc)
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), doc)


def parse(text: str) -> Document | None:
    """Parse ``text``; None for an empty document. Raises :class:`YamlProblem`."""
    yaml = _yaml()
    loader = loader_cls()(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise YamlProblem(_("not valid YAML: {problem}").format(problem=problem),
                              mark.line + 1 if mark else None,
                              _("Check indentation and quoting around that line."),
                              kind="syntax", detail=problem) from None
        if node is None:
            return None
        try:
            _check_tags(node, set())
            _check_size(node)
            doc = Document(data=None)
            _lines(node, (), doc)
            doc.data = loader.construct_document(node)
        except RecursionError:
            raise YamlProblem(_("values nested too deeply"), None,
                              _("A recipe or config nests a few levels, not hundreds."),
                              kind="depth") from None
        return doc
    finally:
        loader.dispose()


def format_loc(loc: Any) -> str:
    """A key path as people write it: ``download.sources[0]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def one_of(expected: str) -> str:
    """Pydantic's list of allowed values (``'a', 'b' or 'c'``) with its "or" in the user's
    language; the values stay as written."""
    items, sep, last = expected.rpartition(" or ")
    if not sep:
        return expected
    return _("{items} or {last}").format(items=items, last=last)


# Pydantic's words for the problems a hand-written file has, by error type, marked for
# translation: a message of pydantic that these words match in full (each {placeholder}
# standing for some text) is shown with the same text in the user's language. Where a
# count changes the words, the singular and plural are two messages.
_PYDANTIC: dict[str, tuple[str, ...]] = {
    "literal_error": (N_("Input should be {values}"),),
    "string_pattern_mismatch": (N_("String should match pattern '{pattern}'"),),
    "greater_than": (N_("Input should be greater than {n}"),),
    "greater_than_equal": (N_("Input should be greater than or equal to {n}"),),
    "less_than": (N_("Input should be less than {n}"),),
    "less_than_equal": (N_("Input should be less than or equal to {n}"),),
    "string_type": (N_("Input should be a valid string"),),
    "int_type": (N_("Input should be a valid integer"),),
    "int_parsing": (N_("Input should be a valid integer, unable to parse string as an "
                       "integer"),),
    "int_from_float": (N_("Input should be a valid integer, got a number with a fractional "
                          "part"),),
    "float_type": (N_("Input should be a valid number"),),
    "float_parsing": (N_("Input should be a valid number, unable to parse string as a "
                         "number"),),
    "bool_type": (N_("Input should be a valid boolean"),),
    "bool_parsing": (N_("Input should be a valid boolean, unable to interpret input"),),
    "list_type": (N_("Input should be a valid list"),),
    "dict_type": (N_("Input should be a valid dictionary"),),
    "model_type": (N_("Input should be a valid dictionary or instance of {name}"),),
    "model_attributes_type": (N_("Input should be a valid dictionary or object to extract "
                                 "fields from"),),
    "too_short": (N_("List should have at least {n} item after validation, not {actual}"),
                  N_("List should have at least {n} items after validation, not {actual}")),
    "string_too_short": (N_("String should have at least {n} character"),
                         N_("String should have at least {n} characters")),
}


def _words_of(template: str, msg: str) -> dict[str, str] | None:
    """What each ``{placeholder}`` of ``template`` stands for in ``msg``, or None when
    ``msg`` is not ``template`` filled in."""
    import re

    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+?)", re.escape(template))
    found = re.fullmatch(pattern, msg)
    return found.groupdict() if found else None


def validation_message(err: dict) -> str:
    """Pydantic's message for one error of ``ValidationError.errors()``, in the user's
    language where it is one a hand-written file commonly has (else pydantic's English).
    A ``ValueError`` of our own validators comes without pydantic's "Value error, "."""
    msg = err["msg"]
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    for template in _PYDANTIC.get(err["type"], ()):
        words = _words_of(template, msg)
        if words is None:
            continue
        if "values" in words:
            words["values"] = one_of(words["values"])
        return _(template).format(**words)
    return msg
