"""The ``uv`` backend: ``uv venv --python X DIR`` and ``uv pip install`` (the fast path)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from llmsetup.envs.base import FolderBackend, PipOptions, venv_python
from llmsetup.errors import EnvironmentProblem


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
            raise EnvironmentProblem("uv was asked for but is not installed",
                                     hint="`pip install uv`, or use --env-backend venv / conda.")

    def create_commands(self, replace: bool = False) -> list[list[str]]:
        # No --seed: it would fetch pip from the index, and uv installs without it.
        clear = ["--clear"] if replace else []
        return [[self.uv, "venv", *clear, "--python", self.python_version, str(self.folder)]]

    def install_command(self, requirements: Path, constraints: Path | None,
                        pip: PipOptions) -> list[str]:
        argv = [self.uv, "pip", "install", "--python", str(venv_python(self.folder)),
                "-r", str(requirements)]
        if constraints:
            argv += ["-c", str(constraints)]
        return argv + pip.uv_args()
