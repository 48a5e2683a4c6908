"""The ``uv`` backend: ``uv venv --python X DIR`` and ``uv pip install`` (the fast path)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from llmsetup.envs.base import EnvBackend, PipOptions, venv_python
from llmsetup.errors import EnvironmentProblem


def find_uv() -> str | None:
    """uv on PATH, or next to the running interpreter (``pip install uv`` in a venv)."""
    found = shutil.which("uv")
    if found:
        return found
    beside = Path(sys.executable).parent / ("uv.exe" if sys.platform == "win32" else "uv")
    return str(beside) if beside.exists() else None


class UvBackend(EnvBackend):
    name = "uv"

    @property
    def folder(self) -> Path:
        return self.envs_dir / self.env_name

    @property
    def uv(self) -> str:
        return find_uv() or "uv"

    def require(self) -> None:
        if not find_uv():
            raise EnvironmentProblem("uv was asked for but is not installed",
                                     hint="`pip install uv`, or use --env-backend venv / conda.")

    def exists(self) -> bool:
        return venv_python(self.folder).exists()

    def create_commands(self, replace: bool = False) -> list[list[str]]:
        # No --seed: it would fetch pip from the index, and uv installs without it.
        clear = ["--clear"] if replace else []
        return [[self.uv, "venv", *clear, "--python", self.python_version, str(self.folder)]]

    def python_command(self) -> list[str]:
        return [str(venv_python(self.folder))]

    def python_path(self) -> str | None:
        path = venv_python(self.folder)
        return str(path) if path.exists() else None

    def install_command(self, requirements: Path, constraints: Path | None,
                        pip: PipOptions) -> list[str]:
        argv = [self.uv, "pip", "install", "--python", str(venv_python(self.folder)),
                "-r", str(requirements)]
        if constraints:
            argv += ["-c", str(constraints)]
        return argv + pip.uv_args()

    def location(self) -> str:
        return str(self.folder)
