"""The ``conda`` backend (the book's way): conda, mamba or micromamba.

``create -n ENV python=X -y`` makes the environment; commands run inside it with
``run -n ENV`` (never ``activate`` in a subprocess).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from llmsetup.envs.base import EnvBackend, PipOptions, pip_install_tail
from llmsetup.errors import EnvironmentProblem
from llmsetup.i18n import _
from llmsetup.proc import capture

TOOLS = ("conda", "mamba", "micromamba")


def find_conda() -> str | None:
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            return found
    return None


class CondaBackend(EnvBackend):
    name = "conda"

    def __init__(self, env_name: str, python_version: str, envs_dir: Path,
                 exe: str | None = None, **options) -> None:
        super().__init__(env_name, python_version, envs_dir, **options)
        self._exe = exe

    @property
    def exe(self) -> str:
        """conda, mamba or micromamba; plain ``conda`` when none is found (for --dry-run)."""
        return self._exe or find_conda() or "conda"

    def require(self) -> None:
        if not (self._exe or find_conda()):
            raise EnvironmentProblem(
                _("conda was asked for but neither conda, mamba nor micromamba is on PATH"),
                hint=_("Install Miniconda or micromamba, or use --env-backend uv / venv."))

    @property
    def tool(self) -> str:
        return Path(self.exe).stem

    def _run_prefix(self) -> list[str]:
        prefix = [self.exe, "run", "-n", self.env_name]
        if self.tool == "conda":
            prefix.append("--no-capture-output")  # stream the output instead of holding it
        return prefix

    def env_prefix(self) -> Path | None:
        """The environment's folder, from ``env list --json``."""
        if not (self._exe or find_conda()):
            return None
        proc = capture([self.exe, "env", "list", "--json"], timeout=60)
        try:
            envs = json.loads(proc.stdout or "{}").get("envs", []) if proc else []
        except ValueError:
            return None
        for path in envs:
            if Path(path).name == self.env_name:
                return Path(path)
        return None

    def exists(self) -> bool:
        return self.env_prefix() is not None

    def create_commands(self, replace: bool = False) -> list[list[str]]:
        argv = [self.exe, "create", "-n", self.env_name, f"python={self.python_version}", "-y"]
        if self.tool == "micromamba":
            argv += ["-c", "conda-forge"]  # micromamba has no default channel
        return [argv]

    def python_command(self) -> list[str]:
        return [*self._run_prefix(), "python"]

    def python_path(self) -> str | None:
        prefix = self.env_prefix()
        if prefix is None:
            return None
        python = prefix / ("python.exe" if sys.platform == "win32" else "bin/python")
        return str(python)

    def install_command(self, requirements: Path, constraints: Path | None,
                        pip: PipOptions) -> list[str]:
        return [*self._run_prefix(), "python", "-m", "pip",
                *pip_install_tail(requirements, constraints), *pip.pip_args()]

    def location(self) -> str:
        return f"conda env {self.env_name}"
