"""Environments: where a model's requirements are installed and its runtime modules run.

Backends (conda, uv, venv, current) sit behind one small interface in
:mod:`llmsetup.envs.base`. ``install`` records which environment it made for a recipe, so
that ``verify``, ``chat`` and the other commands find that environment's Python later.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llmsetup.errors import UsageError
from llmsetup.i18n import _
from llmsetup.settings import Settings


def env_record_path(settings: Settings, recipe_name: str) -> Path:
    """Where ``install`` records the environment it made for ``recipe_name``."""
    return settings.state_dir / recipe_name / "env.json"


def recorded_env(settings: Settings, recipe_name: str, record: str = "env.json") -> dict | None:
    """What ``install`` recorded about ``recipe_name`` (its environment by default; the
    webui installs also record ``webui.json`` and ``webui-env.json``), if anything."""
    path = settings.state_dir / recipe_name / record
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def python_for(target, settings: Settings, python: str | None = None) -> str:
    """The interpreter that runs ``target``'s runtime modules.

    ``python`` (an explicit ``--python``) wins; then the environment ``install`` recorded for
    the recipe; then the interpreter llmsetup itself runs in (a model folder, a recipe that
    was never installed, the ``current`` backend).
    """
    if python:
        path = Path(python).expanduser()
        if not path.exists():
            raise UsageError(_("--python {python}: no such interpreter").format(python=python))
        return str(path)
    if not target.from_folder:
        record = recorded_env(settings, target.recipe.name)
        if record and record.get("python") and Path(record["python"]).exists():
            return record["python"]
    return sys.executable


BACKEND_NAMES = ("auto", "conda", "uv", "venv", "current")


def choose_backend(requested: str, preferred: str | None = None) -> str:
    """The backend to use: an explicit choice; else the recipe's preference; else conda if
    present (the book's way), else uv, else venv."""
    from llmsetup.envs.conda import find_conda
    from llmsetup.envs.uv import find_uv

    if requested not in BACKEND_NAMES:
        raise UsageError(_("unknown environment backend {backend}").format(
                             backend=repr(requested)),
                         hint=_("Choose one of: {choices}").format(
                             choices=", ".join(BACKEND_NAMES)))
    if requested != "auto":
        return requested
    if preferred and preferred != "auto":
        return preferred
    if find_conda():
        return "conda"
    if find_uv():
        return "uv"
    return "venv"


def make_backend(name: str, env_name: str, python: str, settings: Settings, *,
                 python_mirror: str | None = None):
    """An :class:`~llmsetup.envs.base.EnvBackend` for ``name`` (already chosen); ``python``
    is a version (``3.10``) or the path of an interpreter."""
    from llmsetup.envs.conda import CondaBackend
    from llmsetup.envs.current import CurrentBackend
    from llmsetup.envs.pythons import check_version, interpreter_at, looks_like_path
    from llmsetup.envs.uv import UvBackend
    from llmsetup.envs.venv import VenvBackend

    classes = {"conda": CondaBackend, "uv": UvBackend, "venv": VenvBackend,
               "current": CurrentBackend}
    interpreter = None
    if looks_like_path(python):
        found = interpreter_at(python)
        python, interpreter = found.minor, found.path
    else:
        python = check_version(python)
    return classes[name](env_name, python, settings.envs_dir, interpreter=interpreter,
                         python_mirror=python_mirror)
