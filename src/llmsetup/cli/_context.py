"""Per-invocation state shared by commands: settings, the recipe catalog, the output."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from llmsetup.recipes.loader import Catalog
    from llmsetup.settings import Settings
    from llmsetup.targets import Target


@dataclass
class AppState:
    recipes_dirs: list[Path] = field(default_factory=list)
    # The command line's words after `llmsetup`, as given (read before any is parsed).
    words: list[str] = field(default_factory=list)
    # --json was given (set by the option's eager callback, see cli/_options.py).
    json_mode: bool = False
    _settings: Settings | None = None
    _catalog: Catalog | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from llmsetup.settings import Settings

            self._settings = Settings.load(self.recipes_dirs)
            from llmsetup.cli._output import Output

            for message in self._settings.warnings:
                Output().warn(message)
        return self._settings

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from llmsetup.cli._output import Output
            from llmsetup.recipes.loader import Catalog

            self._catalog = Catalog(self.settings.recipe_dirs,
                                    cache_dir=self.settings.home / "cache", warn=Output().warn)
        return self._catalog

    def target(self, name_or_path: str) -> Target:
        from llmsetup.targets import resolve

        return resolve(name_or_path, self.settings, self.catalog)


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj
