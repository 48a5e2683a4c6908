"""Reading recipes from YAML, with errors that point at ``file:line`` and the field.

Bundled recipes come first; each user folder (highest priority first: ``--recipes-dir``,
``LLMSETUP_RECIPES_PATH``, the config file's ``recipes_path``) may override them by name.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from llmsetup.errors import NotFoundError, RecipeError
from llmsetup.fileio import write_json_atomic

SUFFIXES = (".yaml", ".yml")


def bundled_dir() -> Path:
    """The folder of bundled recipes: inside the wheel, or the project's ``recipes/``."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_bundled_recipes"
    if packaged.is_dir():
        return packaged
    return here.parent.parent / "recipes"


# -- YAML with line numbers ------------------------------------------------------------


def _yaml():
    import yaml

    return yaml


def _loader_cls():
    yaml = _yaml()
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _lines(node: Any, path: tuple = (), out: dict | None = None, dups: list | None = None):
    """Map each key path to its 1-based line; collect duplicate keys."""
    yaml = _yaml()
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen and dups is not None:
                dups.append(((*path, key), key_node.start_mark.line + 1))
            seen.add(key)
            out[(*path, key)] = key_node.start_mark.line + 1
            _lines(value_node, (*path, key), out, dups)
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out, dups)
    return out


def format_loc(loc: Iterable[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(recipe)"


def _line_for(loc: tuple, lines: dict[tuple, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def parse(text: str, path: Path):
    """Parse and validate recipe text; raise :class:`RecipeError` listing every problem."""
    yaml = _yaml()
    from pydantic import ValidationError

    from llmsetup.recipes.schema import Recipe

    shown = str(path)
    try:
        node = yaml.compose(text, Loader=_loader_cls())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark else shown
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(
            f"{where}: not valid YAML: {problem}",
            hint="Check indentation and quoting around that line.",
            problems=[f"{where}: not valid YAML: {problem}"],
        ) from None
    if node is None:
        raise RecipeError(f"{shown}: the file is empty", hint="A recipe is a YAML mapping; "
                          "see `llmsetup show demo` for an example.",
                          problems=[f"{shown}: the file is empty"])
    dups: list = []
    lines = _lines(node, (), None, dups)
    if dups:
        problems = [f"{shown}:{line}: {format_loc(loc)}: duplicate key" for loc, line in dups]
        raise RecipeError(problems[0], hint="Each key may appear once.", problems=problems)
    data = yaml.load(text, Loader=_loader_cls())
    if not isinstance(data, dict):
        msg = f"{shown}:1: a recipe must be a mapping of fields, got {type(data).__name__}"
        raise RecipeError(msg, hint="Start the file with 'name: ...'.", problems=[msg])
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            line = _line_for(loc, lines)
            where = f"{shown}:{line}" if line else shown
            msg = err["msg"]
            if err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; see the recipe reference in docs/recipes.md)"
            elif msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            problems.append(f"{where}: {format_loc(loc)}: {msg}")
        raise RecipeError(
            problems[0] if len(problems) == 1 else f"{shown}: {len(problems)} problems",
            hint="Fix the fields named above; `llmsetup recipes validate FILE` rechecks.",
            problems=problems,
        ) from None
    recipe._origin = path
    return recipe


def load_file(path: Path):
    """Read and validate one recipe file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read: {exc}", problems=[f"{path}: cannot read"]) from None
    return parse(text, path)


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


INDEX_VERSION = 1


class Catalog:
    """All recipes visible to this run: bundled ones, overridden by the user's folders."""

    def __init__(self, user_dirs: Sequence[Path] = (), include_bundled: bool = True,
                 cache_dir: Path | None = None) -> None:
        self.dirs: list[Path] = list(user_dirs) + ([bundled_dir()] if include_bundled else [])
        self.cache_dir = cache_dir
        self._all: dict[str, Any] | None = None
        self.problems: list[RecipeError] = []
        self.problem_messages: list[str] = []

    def _stamp(self) -> list:
        """What the index depends on: every recipe file's name, size and time."""
        from llmsetup import __version__

        stamp: list = [INDEX_VERSION, __version__]
        for folder in self.dirs:
            files = []
            for path in _files(folder):
                st = path.stat()
                files.append([path.name, st.st_size, st.st_mtime_ns])
            stamp.append([str(folder), files])
        return stamp

    def index(self) -> list[dict]:
        """Every recipe as plain data, from a cache when no recipe file changed.

        ``llmsetup list`` runs on this, so that it needs neither YAML nor the schema.
        """
        stamp = self._stamp()
        cache = self.cache_dir / "recipes-index.json" if self.cache_dir else None
        if cache is not None:
            try:
                data = json.loads(cache.read_text(encoding="utf-8"))
                if data.get("stamp") == stamp:
                    self.problem_messages = data["problems"]
                    return data["recipes"]
            except (OSError, ValueError, KeyError):
                pass
        recipes = [{**r.model_dump(mode="json"), "origin": str(r.origin)} for r in self.all()]
        self.problem_messages = [p.message for p in self.problems]
        if cache is not None:
            with contextlib.suppress(OSError):  # a read-only home only costs speed
                write_json_atomic(cache, {"stamp": stamp, "recipes": recipes,
                                          "problems": self.problem_messages}, indent=None)
        return recipes

    def _scan(self) -> dict[str, Any]:
        if self._all is None:
            found: dict[str, Any] = {}
            for folder in reversed(self.dirs):  # lowest priority first, so later ones win
                for path in _files(folder):
                    try:
                        recipe = load_file(path)
                    except RecipeError as exc:
                        self.problems.append(exc)
                        continue
                    found[recipe.name] = recipe
            self._all = dict(sorted(found.items()))
        return self._all

    def all(self) -> list:
        return list(self._scan().values())

    def names(self) -> list[str]:
        return list(self._scan())

    def get(self, name: str):
        # Fast path: the file named after the recipe, in priority order.
        for folder in self.dirs:
            for suffix in SUFFIXES:
                path = folder / f"{name}{suffix}"
                if path.is_file():
                    recipe = load_file(path)
                    if recipe.name == name:
                        return recipe
        recipes = self._scan()
        if name in recipes:
            return recipes[name]
        close = difflib.get_close_matches(name, list(recipes), n=3)
        hint = (f"Did you mean {' or '.join(close)}? " if close else "") + (
            "`llmsetup list` shows every recipe; a model folder path works too."
        )
        raise NotFoundError(f"no recipe named {name!r}", hint=hint)
