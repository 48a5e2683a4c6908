"""The ``uv`` backend: ``uv venv --python X DIR`` and ``uv pip install`` (the fast path)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from llmsetup.envs.base import FolderBackend, PipOptions, venv_python
from llmsetup.envs.pythons import find_python
from llmsetup.errors import EnvironmentProblem
from llmsetup.i18n import _


def find_uv() -> str | None:
    """uv on PATH, or next to the running interpreter (``pip install uv`` in a venv)."""
    found = shutil.which("uv")
    if found:
        return found
    beside = Path(sys.executable).parent / ("uv.exe" if sys.platform == "win32" else "uv")
    return str(beside) if beside.exists() else None


class UvBackend(FolderBackend):
    name = "uv"

    @property
    def uv(self) -> str:
        return find_uv() or "uv"

    def require(self) -> None:
        if not find_uv():
            raise EnvironmentProblem(_("uv was asked for but is not installed"),
                                     hint=_("`pip install uv`, or use --env-backend venv / "
                                            "conda."))

    def base_python(self) -> str:
        """What ``uv venv --python`` gets: an interpreter this machine has (uv would not
        look in pyenv's inactive versions), else the version, which uv downloads."""
        if self.interpreter:
            return self.interpreter
        found = find_python(self.python_version)
        return found.path if found else self.python_version

    def command_env(self) -> dict[str, str]:
        return {"UV_PYTHON_INSTALL_MIRROR": self.python_mirror} if self.python_mirror else {}

    def create_commands(self, replace: bool = False) -> list[list[str]]:
        # No --seed: it would fetch pip from the index, and uv installs without it.
        clear = ["--clear"] if replace else []
        return [[self.uv, "venv", *clear, "--python", self.base_python(), str(self.folder)]]

    def describe(self) -> dict:
        # English, whatever the language: this goes into --json and the step's fingerprint.
        doc = super().describe()
        if self.base_python() == self.python_version:
            doc["python_download"] = ("not on this machine: uv will download it"
                                      + (f" from {self.python_mirror}" if self.python_mirror
                                         else " (from GitHub unless --python-mirror is set)"))
        return doc

    def install_command(self, requirements: Path, constraints: Path | None,
                        pip: PipOptions) -> list[str]:
        argv = [self.uv, "pip", "install", "--python", str(venv_python(self.folder)),
                "-r", str(requirements)]
        if constraints:
            argv += ["-c", str(constraints)]
        return argv + pip.uv_args()
