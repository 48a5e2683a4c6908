"""The ``current`` backend: the interpreter llmsetup runs in; nothing is created.

For CI, containers and notebooks, where the environment is prepared already. Requirements
that are not yet satisfied are installed into it with its own pip.
"""

from __future__ import annotations

import sys
from pathlib import Path

from llmsetup.envs.base import EnvBackend, PipOptions, pip_install_tail


class CurrentBackend(EnvBackend):
    name = "current"

    def exists(self) -> bool:
        return True

    def create_commands(self, replace: bool = False) -> list[list[str]]:
        return []

    def python_command(self) -> list[str]:
        return [sys.executable]

    def python_path(self) -> str:
        return sys.executable

    def install_command(self, requirements: Path, constraints: Path | None,
                        pip: PipOptions) -> list[str]:
        return [sys.executable, "-m", "pip", *pip_install_tail(requirements, constraints),
                *pip.pip_args()]

    def location(self) -> str:
        return sys.prefix
