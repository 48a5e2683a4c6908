"""``llmsetup prune``: what no install needs any more.

- partial downloads: ``<model>/.llmsetup/partial`` of every model folder under the models
  dir, unless a download holds that folder's lock now;
- stale download locks: ``.llmsetup/lock`` and ``lock.owner`` that no process holds and
  whose owner is no longer running;
- environments under ``$LLMSETUP_HOME/envs`` that no recipe's record points to (none
  while any install runs: its new environment is recorded only once made);
- logs under ``$LLMSETUP_HOME/logs`` older than N days.

Partial downloads and locks are removed while holding the folder's download lock, so that
a download starting at that moment waits and then starts clean.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from llmsetup.download.sources.base import STATE_DIR
from llmsetup.housekeeping.disk import Item, Kept, Removal, remove_empty_folders, remove_item, tree_size
from llmsetup.housekeeping.records import all_env_uses, install_running, recorded_recipes
from llmsetup.i18n import _
from llmsetup.settings import Settings

DEFAULT_LOG_DAYS = 30.0


def _alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill would end the process there: trust the lock alone
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _owner(state: Path) -> int | None:
    try:
        return int((state / "lock.owner").read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _download_states(models_dir: Path) -> list[Path]:
    """Every ``.llmsetup`` folder of a model folder under ``models_dir`` (links not followed)."""
    found = []
    for root, dirs, _files in os.walk(models_dir):
        if STATE_DIR in dirs:
            found.append(Path(root) / STATE_DIR)
            dirs.remove(STATE_DIR)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
    return sorted(found)


def _downloads(removal: Removal, models_dir: Path) -> None:
    from llmsetup.housekeeping.records import lock_held

    for state in _download_states(models_dir):
        partial = state / "partial"
        lock = state / "lock"
        if lock_held(lock):
            if partial.is_dir():
                removal.kept.append(Kept("partial", partial, _(
                    "a download is running (pid {pid})").format(pid=_owner(state) or "?")))
            continue
        if partial.is_dir() and not partial.is_symlink():
            removal.items.append(Item("partial", partial, tree_size(partial),
                                      _("unfinished download of {name}").format(
                                          name=state.parent.name)))
        # Every download leaves its lock file (free once no process holds it); one that
        # died also leaves lock.owner naming its pid: that pair is the stale lock.
        pid = _owner(state)
        if lock.is_file() and pid is not None and not _alive(pid):
            files = [p for p in (lock, state / "lock.owner") if p.is_file()]
            removal.items.append(Item("lock", state, sum(tree_size(p) for p in files),
                                      _("download lock left by pid {pid}, not running").format(
                                          pid=pid or "?"), files=files))


def _envs(removal: Removal, settings: Settings) -> None:
    try:
        folders = sorted(p for p in settings.envs_dir.iterdir() if p.is_dir())
    except OSError:
        return
    if not folders:
        return
    running = [r for r in recorded_recipes(settings) if install_running(settings, r)]
    if running:
        removal.kept.append(Kept("env", settings.envs_dir, _(
            "an install is running ({recipes}): environments are left alone").format(
            recipes=", ".join(running))))
        return
    recorded = {u.key for u in all_env_uses(settings)}
    for folder in folders:
        if folder.is_symlink() or os.path.realpath(folder) in recorded:
            continue
        removal.items.append(Item("env", folder, tree_size(folder),
                                  _("no recipe's record points to it")))


def _logs(removal: Removal, logs_dir: Path, older_than_days: float) -> None:
    cutoff = time.time() - older_than_days * 86400
    for root, _dirs, files in os.walk(logs_dir):
        for name in sorted(files):
            path = Path(root) / name
            with contextlib.suppress(OSError):
                st = path.lstat()
                if st.st_mtime < cutoff:
                    removal.items.append(Item("log", path, st.st_size if not path.is_symlink()
                                              else 0, _("older than {days} days").format(
                                                  days=f"{older_than_days:g}")))


def plan_prune(settings: Settings, older_than_days: float = DEFAULT_LOG_DAYS) -> Removal:
    """What ``prune`` would remove (reads only)."""
    removal = Removal()
    if settings.models_dir.is_dir():
        _downloads(removal, settings.models_dir)
    _envs(removal, settings)
    if settings.logs_dir.is_dir():
        _logs(removal, settings.logs_dir, older_than_days)
    return removal


def execute(removal: Removal, settings: Settings) -> list[Kept]:
    """Remove what :func:`plan_prune` found; returns what was skipped after all (a download
    that started in the meantime)."""
    from filelock import FileLock, Timeout

    roots = [settings.models_dir, settings.home]
    skipped: list[Kept] = []
    for item in removal.items:
        if item.kind not in ("partial", "lock"):
            remove_item(item, roots)
            continue
        state = item.path if item.kind == "lock" else item.path.parent
        if not (state / "lock").is_file():
            remove_item(item, roots)
            continue
        lock = FileLock(str(state / "lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            skipped.append(Kept(item.kind, item.path, _("a download started meanwhile")))
            continue
        try:
            remove_item(item, roots)  # the lock file may go: a waiting download makes another
        finally:
            lock.release()
    if settings.logs_dir.is_dir():
        for child in settings.logs_dir.iterdir():
            if child.is_dir() and not child.is_symlink():
                remove_empty_folders(child)
    return skipped
