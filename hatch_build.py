"""Build hook: compile the message catalogs (``.po`` -> ``.mo``) into the package, for the
wheel and for editable installs alike (see scripts/i18n.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CatalogHook(BuildHookInterface):
    PLUGIN_NAME = "catalogs"

    def initialize(self, version: str, build_data: dict) -> None:
        script = Path(self.root) / "scripts" / "i18n.py"
        spec = importlib.util.spec_from_file_location("llmsetup_i18n_script", script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        for mo in module.compile_catalogs():
            if version == "editable":  # the package is imported from src/, .mo beside it
                continue
            # The .mo files are build outputs (ignored by git): include them explicitly.
            rel = mo.relative_to(Path(self.root) / "src").as_posix()
            build_data["force_include"][str(mo)] = rel
