"""The Python interpreters this machine really has, and the one an environment is made with.

Found, in order: the interpreter llmsetup runs in; ``pythonX.Y`` on PATH (a pyenv shim
counts only when it answers: a shim of a version that is not active prints "command not
found"); every version pyenv installed (``$PYENV_ROOT/versions/*/bin/python``), active or
not. ``--python`` takes a version (``3.10``) or the path of an interpreter.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from llmsetup.errors import EnvironmentProblem, UsageError
from llmsetup.i18n import N_, _
from llmsetup.proc import capture

_VERSION = re.compile(r"^3\.(\d+)$")
_FULL = re.compile(r"^(\d+)\.(\d+)\.(\d+)")
OLDEST_MINOR = 8  # Python 3.8: the oldest any recipe's torch supports


@dataclass(frozen=True)
class Interpreter:
    version: str  # full, e.g. 3.10.13
    path: str

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def check_version(text: str, option: str = "--python") -> str:
    """``3.10`` as given, or a usage error naming what is accepted."""
    match = _VERSION.match(text.strip())
    if not match or int(match.group(1)) < OLDEST_MINOR:
        raise UsageError(_("{option} {text}: expected a Python version such as 3.10 "
                           "({oldest} or newer) or the path of an interpreter").format(
                               option=option, text=text, oldest=f"3.{OLDEST_MINOR}"))
    return text.strip()


def looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.startswith(("~", "."))


def interpreter_at(path: str) -> Interpreter:
    """The interpreter at ``path`` (``--python /opt/py310/bin/python3``), asked its version."""
    file = Path(path).expanduser().absolute()
    if not file.is_file() or not os.access(file, os.X_OK):
        raise UsageError(_("--python {path}: not an executable file").format(path=path),
                         hint=_("Give a version (3.10) or the path of a python executable."))
    answer = capture([str(file), "-c", "import platform; print(platform.python_version())"],
                     timeout=30)
    version = answer.stdout.strip() if answer and answer.returncode == 0 else ""
    if not _FULL.match(version):
        raise UsageError(_("--python {path}: this program does not run as a Python "
                           "interpreter").format(path=path),
                         hint=_("Give a version (3.10) or the path of a python executable."))
    return Interpreter(version, str(file))


def pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _on_path(minor: str) -> Interpreter | None:
    for name in (f"python{minor}", f"python{minor.replace('.', '')}"):
        found = shutil.which(name)
        if not found:
            continue
        try:
            interp = interpreter_at(found)
        except UsageError:  # an inactive pyenv shim, a broken link
            continue
        if interp.minor == minor:
            return interp
    return None


def _pyenv_versions() -> list[Interpreter]:
    versions = pyenv_root() / "versions"
    found = []
    if versions.is_dir():
        for folder in sorted(versions.iterdir()):
            python = folder / "bin" / "python"
            if _FULL.match(folder.name) and python.is_file():
                found.append(Interpreter(_FULL.match(folder.name).group(0), str(python)))
    return found


def find_interpreters(minor: str | None = None) -> list[Interpreter]:
    """Interpreters found on this machine (of ``minor`` only, when given), best first."""
    running = Interpreter(platform.python_version(), sys.executable)
    found = [running]
    minors = [minor] if minor else [f"3.{n}" for n in range(OLDEST_MINOR, 15)]
    for m in minors:
        if m != running.minor:
            interp = _on_path(m)
            if interp:
                found.append(interp)
    found += _pyenv_versions()
    unique: dict[str, Interpreter] = {}
    for interp in found:
        if minor is None or interp.minor == minor:
            unique.setdefault(interp.path, interp)
    return list(unique.values())


def find_python(minor: str) -> Interpreter | None:
    """The best interpreter of ``minor`` (``3.10``) on this machine, if there is one."""
    found = find_interpreters(minor)
    return found[0] if found else None


def missing_python(minor: str, backend: str) -> EnvironmentProblem:
    """The one message for a Python that is not here, naming every way out.

    ``english_message`` holds the message in English too, for what ``--dry-run --json``
    shows in place of the commands that cannot be made."""
    others = sorted({i.minor for i in find_interpreters()}, key=lambda v: int(v.split(".")[1]))
    ways = [_("--python X.Y with a version this machine has ({versions})").format(
                versions=", ".join(others))
            if others else "--python /path/to/python"]
    ways.append(_("--env-backend conda (conda or micromamba installs any Python)"))
    if backend == "uv":
        ways.append(_("--python-mirror URL (uv's UV_PYTHON_INSTALL_MIRROR: a mirror of "
                      "python-build-standalone, where GitHub is slow or blocked)"))
    else:
        ways.append(_("pyenv install {minor}, or your system's python{minor} package").format(
            minor=minor))
    message = N_("Python {minor} is not on this machine")
    problem = EnvironmentProblem(_(message).format(minor=minor),
                                 hint=_("Ways out: {ways}.").format(ways=_("; ").join(ways)))
    problem.english_message = message.format(minor=minor)
    return problem
