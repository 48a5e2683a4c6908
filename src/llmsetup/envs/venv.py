"""The ``venv`` backend: ``pythonX -m venv DIR`` with a matching interpreter, then pip."""

from __future__ import annotations

from pathlib import Path

from llmsetup.envs.base import FolderBackend, PipOptions, pip_install_tail, venv_python
from llmsetup.envs.pythons import find_python, missing_python


class VenvBackend(FolderBackend):
    name = "venv"

    def base_python(self) -> str:
        """The interpreter the venv is made from: the one named, else one found here."""
        if self.interpreter:
            return self.interpreter
        found = find_python(self.python_version)
        if found is None:
            raise missing_python(self.python_version, self.name)
        return found.path

    def create_commands(self, replace: bool = False) -> list[list[str]]:
        clear = ["--clear"] if replace else []
        return [[self.base_python(), "-m", "venv", *clear, str(self.folder)]]

    def install_command(self, requirements: Path, constraints: Path | None,
                        pip: PipOptions) -> list[str]:
        return [str(venv_python(self.folder)), "-m", "pip",
                *pip_install_tail(requirements, constraints), *pip.pip_args()]
