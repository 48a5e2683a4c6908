"""Reading recipes from YAML, with errors that point at ``file:line`` and the field.

Bundled recipes come first; each user folder (highest priority first: ``--recipes-dir``,
``LLMSETUP_RECIPES_PATH``, the config file's ``recipes_path``) may override them by name.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from llmsetup.errors import NotFoundError, RecipeError
from llmsetup.fileio import write_json_atomic
from llmsetup.i18n import N_, _, language, ngettext
from llmsetup.yamlfile import format_loc as _format_loc

SUFFIXES = (".yaml", ".yml")


def bundled_dir() -> Path:
    """The folder of bundled recipes: inside the wheel, or the project's ``recipes/``."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_bundled_recipes"
    if packaged.is_dir():
        return packaged
    return here.parent.parent / "recipes"


def format_loc(loc: Iterable[Any]) -> str:
    return _format_loc(loc) or _("(recipe)")


def _or(words: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a or b or c``, in the user's language."""
    text = words[0]
    for word in words[1:]:
        text = _("{items} or {last}").format(items=text, last=word)
    return text


def parse(text: str, path: Path):
    """Parse and validate recipe text; raise :class:`RecipeError` listing every problem."""
    from pydantic import ValidationError

    from llmsetup import yamlfile
    from llmsetup.recipes.schema import Recipe
    from llmsetup.yamlfile import validation_message

    shown = str(path)
    try:
        doc = yamlfile.parse(text)
    except yamlfile.YamlProblem as exc:
        where = f"{shown}:{exc.line}" if exc.line else shown
        raise RecipeError(f"{where}: {exc.problem}", hint=exc.hint,
                          problems=[f"{where}: {exc.problem}"]) from None
    if doc is None:
        msg = _("{path}: the file is empty").format(path=shown)
        raise RecipeError(msg, hint=_("A recipe is a YAML mapping; see `llmsetup show demo` "
                                      "for an example."), problems=[msg])
    if doc.duplicates:
        problems = [_("{where}: {field}: duplicate key").format(
            where=f"{shown}:{line}", field=format_loc(loc)) for loc, line in doc.duplicates]
        raise RecipeError(problems[0], hint=_("Each key may appear once."), problems=problems)
    data = doc.data
    if not isinstance(data, dict):
        msg = _("{where}: a recipe must be a mapping of fields, got {type}").format(
            where=f"{shown}:1", type=type(data).__name__)
        raise RecipeError(msg, hint=_("Start the file with 'name: ...'."), problems=[msg])
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            line = doc.line_for(loc)
            where = f"{shown}:{line}" if line else shown
            if err["type"] == "missing":
                msg = _("required field is missing")
            elif err["type"] == "extra_forbidden":
                msg = _("unknown field (check the spelling; see the recipe reference in "
                        "docs/recipes.md)")
            else:
                msg = validation_message(err)
            problems.append(f"{where}: {format_loc(loc)}: {msg}")
        raise RecipeError(
            problems[0] if len(problems) == 1 else ngettext(
                "{path}: {n} problem", "{path}: {n} problems", len(problems)).format(
                path=shown, n=len(problems)),
            hint=_("Fix the fields named above; `llmsetup recipes validate FILE` rechecks."),
            problems=problems,
        ) from None
    recipe._origin = path
    return recipe


def load_file(path: Path):
    """Read and validate one recipe file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(_("{path}: no such file").format(path=path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(_("{path}: cannot read: {error}").format(path=path, error=exc),
                          problems=[_("{path}: cannot read").format(path=path)]) from None
    return parse(text, path)


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


INDEX_VERSION = 2

PRECEDENCE = N_("--recipes-dir, then LLMSETUP_RECIPES_PATH, then the config file's "
                "recipes_path, then the bundled recipes; in one folder, the file named after "
                "the recipe, then the first by file name")


def duplicate_message(name: str, files: Sequence[Path | None]) -> str:
    """One line for a recipe name defined by several files; the first one is used."""
    shown = [str(f) for f in files]
    places = shown[0]
    for more in shown[1:]:
        places = _("{files} and {file}").format(files=places, file=more)
    return _("recipe {name} is defined in {files}; using {file} (precedence: {precedence})"
             ).format(name=repr(name), files=places, file=shown[0], precedence=_(PRECEDENCE))


class Catalog:
    """All recipes visible to this run: bundled ones, overridden by the user's folders."""

    def __init__(self, user_dirs: Sequence[Path] = (), include_bundled: bool = True,
                 cache_dir: Path | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        """``warn`` receives each duplicate name's line once (see :data:`PRECEDENCE`)."""
        self.dirs: list[Path] = list(user_dirs) + ([bundled_dir()] if include_bundled else [])
        self.cache_dir = cache_dir
        self._all: dict[str, Any] | None = None
        self.problems: list[RecipeError] = []
        self.problem_messages: list[str] = []
        # Two user files that define one name: one line each, naming both files.
        self.duplicates: list[str] = []
        self._warn = warn

    def _stamp(self) -> list:
        """What the index depends on: every recipe file's name, size and time."""
        from llmsetup import __version__

        # The language too: the index keeps the problems' messages as they were shown.
        stamp: list = [INDEX_VERSION, __version__, language()]
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
        # One file per language (the stamp holds it too): switching back and forth between
        # languages reads a cache each time instead of rebuilding one.
        cache = self.cache_dir / f"recipes-index.{language()}.json" if self.cache_dir else None
        if cache is not None:
            try:
                data = json.loads(cache.read_text(encoding="utf-8"))
                if data.get("stamp") == stamp:
                    self.problem_messages = data["problems"]
                    self.duplicates = data["duplicates"]
                    self._report_duplicates()
                    return data["recipes"]
            except (OSError, ValueError, KeyError):
                pass
        recipes = [{**r.model_dump(mode="json"), "origin": str(r.origin)} for r in self.all()]
        self.problem_messages = [p.message for p in self.problems]
        if cache is not None:
            with contextlib.suppress(OSError):  # a read-only home only costs speed
                write_json_atomic(cache, {"stamp": stamp, "recipes": recipes,
                                          "problems": self.problem_messages,
                                          "duplicates": self.duplicates}, indent=None)
        return recipes

    def _scan(self) -> dict[str, Any]:
        if self._all is None:
            candidates: dict[str, list[tuple[tuple, Any]]] = {}
            for rank, folder in enumerate(self.dirs):
                for path in _files(folder):
                    try:
                        recipe = load_file(path)
                    except RecipeError as exc:
                        self.problems.append(exc)
                        continue
                    # PRECEDENCE: the earlier folder, then the file named after the recipe,
                    # then the first by file name.
                    key = (rank, path.stem != recipe.name, path.name)
                    candidates.setdefault(recipe.name, []).append((key, recipe))
            found = {}
            for name, options in sorted(candidates.items()):
                options.sort(key=lambda option: option[0])
                found[name] = options[0][1]
                user = [r for _key, r in options if not self._bundled(r.origin)]
                if len(user) > 1:
                    self.duplicates.append(duplicate_message(name, [r.origin for r in user]))
            self._all = found
            self._report_duplicates()
        return self._all

    def _report_duplicates(self) -> None:
        for message in self.duplicates if self._warn else ():
            self._warn(message)
        self._warn = None  # once

    @staticmethod
    def _defines(folder: Path, name: str) -> bool:
        for path in _files(folder):
            try:
                if load_file(path).name == name:
                    return True
            except RecipeError:
                continue
        return False

    def _bundled(self, path: Path | None) -> bool:
        return path is not None and path.parent == bundled_dir()

    def all(self) -> list:
        return list(self._scan().values())

    def names(self) -> list[str]:
        return list(self._scan())

    def get(self, name: str):
        # Fast path: the file named after the recipe, in priority order, unless a folder
        # before it defines the name in a file of another name (then the scan decides).
        for rank, folder in enumerate(self.dirs):
            path = next((p for p in (folder / f"{name}{s}" for s in SUFFIXES) if p.is_file()),
                        None)
            if path is None:
                continue
            recipe = load_file(path)
            if recipe.name == name and not any(self._defines(f, name)
                                               for f in self.dirs[:rank]):
                return recipe
            break
        recipes = self._scan()
        if name in recipes:
            return recipes[name]
        close = difflib.get_close_matches(name, list(recipes), n=3)
        hint = _("Did you mean {names}? `llmsetup list` shows every recipe; a model folder "
                 "path works too.").format(names=_or(close)) if close else _(
            "`llmsetup list` shows every recipe; a model folder path works too.")
        raise NotFoundError(_("no recipe named {name}").format(name=repr(name)), hint=hint)
