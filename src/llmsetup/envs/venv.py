"""The ``venv`` backend: ``pythonX -m venv DIR`` with a matching interpreter, then pip."""

from __future__ import annotations

import platform
import shutil
import sys
from pathlib import Path

from llmsetup.envs.base import FolderBackend, PipOptions, pip_install_tail, venv_python
from llmsetup.errors import EnvironmentProblem


def find_python(version: str) -> str:
    """An interpreter of ``version`` (``3.10``): the running one, or ``python3.10`` on PATH."""
    if platform.python_version().rsplit(".", 1)[0] == version:
        return sys.executable
    for name in (f"python{version}", f"python{version.replace('.', '')}"):
        found = shutil.which(name)
        if found:
            return found
    raise EnvironmentProblem(
        f"no Python {version} found for the venv backend",
        hint=f"Install Python {version} (e.g. `apt install python{version} python{version}-venv` "
        f"or `pyenv install {version}`), use --env-backend uv or conda (both can provide it), "
        "or choose another version with --python.",
    )


class VenvBackend(FolderBackend):
    name = "venv"

    def create_commands(self, replace: bool = False) -> list[list[str]]:
        clear = ["--clear"] if replace else []
        return [[find_python(self.python_version), "-m", "venv", *clear, str(self.folder)]]

    def install_command(self, requirements: Path, constraints: Path | None,
                        pip: PipOptions) -> list[str]:
        return [str(venv_python(self.folder)), "-m", "pip",
                *pip_install_tail(requirements, constraints), *pip.pip_args()]
