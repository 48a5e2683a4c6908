"""What ``install`` recorded for each recipe, read back (never written here).

Under ``$LLMSETUP_HOME/state/<recipe>/``:

- ``env.json``, ``webui-env.json``: the environment the EnvStep made (backend, name,
  python, location); written by the install steps;
- ``webui.json``: the text-generation-webui checkout (``dir``, ``commit``);
- ``steps/deploy.json``: where the model was deployed in the checkout's ``models/`` and how
  (``info.target``, ``info.mode``: link, copy or move);
- ``.install.lock``: held while an install runs.

Logs are under ``$LLMSETUP_HOME/logs/<recipe>/``. The model folder is the recipe's target
(``<models dir>/<repo_id>``); its ``.llmsetup/`` holds the manifest, partial downloads and
the download lock.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from llmsetup.settings import Settings

ENV_RECORDS = {"env": "env.json", "webui-env": "webui-env.json"}  # the kind is the name
#: Backends whose environment is a folder llmsetup made under ``$LLMSETUP_HOME/envs``.
FOLDER_BACKENDS = ("venv", "uv")


def read_json(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


@dataclass
class EnvUse:
    """One recipe's record of one environment."""

    recipe: str
    kind: str  # env | webui-env
    backend: str
    name: str
    location: str
    record: Path

    @property
    def folder(self) -> Path | None:
        """The environment's folder when it is one of ours (venv, uv); else None."""
        if self.backend in FOLDER_BACKENDS and self.location:
            return Path(self.location)
        return None

    @property
    def key(self) -> str:
        """The same for every record of the same environment."""
        folder = self.folder
        return os.path.realpath(folder) if folder else f"{self.backend}:{self.name}"


def env_uses(settings: Settings, recipe: str) -> list[EnvUse]:
    """The environments ``recipe``'s installs recorded: ``env.json``, ``webui-env.json``, and
    any other record in its state folder that names a backend and a location (an engine's
    environment), so that ``prune`` never takes a recorded environment for an orphan."""
    folder = settings.state_dir / recipe
    try:
        paths = sorted(folder.glob("*.json"), key=lambda p: (p.name not in ENV_RECORDS.values(),
                                                              p.name))
    except OSError:
        return []
    uses = []
    for path in paths:
        doc = read_json(path)
        if doc and doc.get("backend") and "location" in doc:
            uses.append(EnvUse(recipe, path.name.removesuffix(".json"), str(doc["backend"]),
                               str(doc.get("name", "")), str(doc.get("location") or ""), path))
    return uses


def recorded_recipes(settings: Settings) -> list[str]:
    """Every recipe that has a state folder."""
    try:
        return sorted(p.name for p in settings.state_dir.iterdir() if p.is_dir())
    except OSError:
        return []


def all_env_uses(settings: Settings) -> list[EnvUse]:
    """Every environment record of every recipe."""
    return [use for recipe in recorded_recipes(settings) for use in env_uses(settings, recipe)]


def webui_checkout(settings: Settings, recipe: str) -> Path | None:
    doc = read_json(settings.state_dir / recipe / "webui.json")
    return Path(doc["dir"]) if doc and doc.get("dir") else None


def deployment(settings: Settings, recipe: str) -> tuple[Path, str] | None:
    """(target, mode) of the model deployed into the webui checkout, if one was."""
    doc = read_json(settings.state_dir / recipe / "steps" / "deploy.json")
    info = (doc or {}).get("info") or {}
    if not info.get("target"):
        return None
    return Path(info["target"]), str(info.get("mode") or "link")


def install_running(settings: Settings, recipe: str) -> bool:
    """Whether an ``llmsetup install`` of ``recipe`` holds its lock now."""
    return lock_held(settings.state_dir / recipe / ".install.lock")


def lock_held(path: Path) -> bool:
    """Whether a process holds the file lock at ``path`` (never creates it)."""
    from filelock import FileLock, Timeout

    if not path.is_file():
        return False
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return False
    lock.release()
    return False
