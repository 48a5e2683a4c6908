"""The interface every environment backend implements, and pip's index options.

A backend knows how to create its environment, whether it exists, which command line runs
a program inside it, and how to install requirements into it in one call. Backends only
*build* command lines; :mod:`llmsetup.install.plan` runs them (or prints them for ``--dry-run``).
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from llmsetup.errors import UsageError
from llmsetup.i18n import _

# Presets for --pip-mirror: (index URL, trusted host). "default" is pip's own index.
PIP_MIRRORS: dict[str, tuple[str, str] | None] = {
    "ustc": ("https://pypi.mirrors.ustc.edu.cn/simple", "pypi.mirrors.ustc.edu.cn"),
    "tuna": ("https://pypi.tuna.tsinghua.edu.cn/simple", "pypi.tuna.tsinghua.edu.cn"),
    "aliyun": ("https://mirrors.aliyun.com/pypi/simple/", "mirrors.aliyun.com"),
    "default": None,
}


@dataclass
class PipOptions:
    """Where pip (or uv) finds packages."""

    index_url: str | None = None
    trusted_hosts: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    no_index: bool = False
    #: Indexes besides the main one (the CPU builds of torch live on their own index).
    extra_index_urls: list[str] = field(default_factory=list)

    @classmethod
    def from_choices(cls, mirror: str | None, index_url: str | None,
                     trusted_hosts: list[str] | None, find_links: list[str] | None,
                     no_index: bool = False) -> PipOptions:
        """Combine a --pip-mirror preset with explicit options (explicit ones win)."""
        opts = cls(find_links=[str(Path(f).expanduser().absolute()) for f in find_links or []],
                   no_index=no_index)
        if mirror:
            if mirror not in PIP_MIRRORS:
                raise UsageError(_("unknown pip mirror {mirror}").format(mirror=repr(mirror)),
                                 hint=_("Choose one of: {choices}").format(
                                     choices=", ".join(PIP_MIRRORS)))
            preset = PIP_MIRRORS[mirror]
            if preset:
                opts.index_url, host = preset
                opts.trusted_hosts.append(host)
        if index_url:
            opts.index_url = index_url
        for host in trusted_hosts or []:
            if host not in opts.trusted_hosts:
                opts.trusted_hosts.append(host)
        return opts

    def _args(self, index_flag: str, trusted_flag: str) -> list[str]:
        args: list[str] = []
        if self.no_index:
            args.append("--no-index")
        else:
            if self.index_url:
                args += [index_flag, self.index_url]
            for url in self.extra_index_urls:
                args += ["--extra-index-url", url]
        for host in self.trusted_hosts:
            args += [trusted_flag, host]
        for folder in self.find_links:
            args += ["--find-links", folder]
        return args

    def pip_args(self) -> list[str]:
        return self._args("-i", "--trusted-host")

    def uv_args(self) -> list[str]:
        return self._args("--index-url", "--allow-insecure-host")


class EnvBackend(ABC):
    """One kind of environment (conda, uv, venv, the current interpreter)."""

    name: str = ""

    def __init__(self, env_name: str, python_version: str, envs_dir: Path,
                 interpreter: str | None = None, python_mirror: str | None = None) -> None:
        self.env_name = env_name
        #: The environment's Python version (``3.10``).
        self.python_version = python_version
        self.envs_dir = envs_dir
        #: The interpreter to make it from, when the user named one (``--python PATH``).
        self.interpreter = interpreter
        #: Where uv downloads a Python this machine lacks (UV_PYTHON_INSTALL_MIRROR).
        self.python_mirror = python_mirror

    def command_env(self) -> dict[str, str]:
        """Environment variables the create and install commands need."""
        return {}

    def require(self) -> None:  # noqa: B027 - most backends need no tool of their own
        """Raise :class:`~llmsetup.errors.EnvironmentProblem` when the tool is missing."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether the environment is there already."""

    @abstractmethod
    def create_commands(self, replace: bool = False) -> list[list[str]]:
        """The commands that create the environment (``replace``: over a broken one)."""

    @abstractmethod
    def python_command(self) -> list[str]:
        """The command line that starts the environment's Python (conda: through `run`)."""

    @abstractmethod
    def python_path(self) -> str | None:
        """The environment's Python executable, once the environment exists."""

    @abstractmethod
    def install_command(self, requirements: Path, constraints: Path | None,
                        pip: PipOptions) -> list[str]:
        """One command that installs ``requirements`` (with ``constraints``)."""

    @abstractmethod
    def location(self) -> str:
        """Where the environment lives, for humans."""

    def describe(self) -> dict:
        return {"backend": self.name, "name": self.env_name, "python": self.python_version,
                "location": self.location()}


class FolderBackend(EnvBackend):
    """A virtual environment in a folder of ours: ``$LLMSETUP_HOME/envs/ENV`` (uv, venv)."""

    @property
    def folder(self) -> Path:
        return self.envs_dir / self.env_name

    def exists(self) -> bool:
        return venv_python(self.folder).exists()

    def python_command(self) -> list[str]:
        return [str(venv_python(self.folder))]

    def python_path(self) -> str | None:
        path = venv_python(self.folder)
        return str(path) if path.exists() else None

    def location(self) -> str:
        return str(self.folder)


def venv_python(folder: Path) -> Path:
    """The interpreter inside a venv folder."""
    if sys.platform == "win32":
        return folder / "Scripts" / "python.exe"
    return folder / "bin" / "python"


def pip_install_tail(requirements: Path, constraints: Path | None) -> list[str]:
    args = ["install", "-r", str(requirements)]
    if constraints:
        args += ["-c", str(constraints)]
    return args
