"""How much disk each installed recipe takes: its model files, its deployed copy, its
environments; an environment several recipes share is counted once in the total."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from llmsetup.fileio import write_json_atomic
from llmsetup.housekeeping.disk import tree_size
from llmsetup.housekeeping.records import EnvUse, all_env_uses, deployment
from llmsetup.settings import Settings

#: Remembered environment sizes: walking one takes 0.6 s for a CPU torch environment
#: (33,000 files) and more for a CUDA one, on every `list`.
_SIZES_FILE = "env-sizes.json"


def _fingerprint(folder: Path) -> list:
    """What changes when packages come or go: the modification times of the environment's
    folder, its ``bin``/``Scripts`` and its ``site-packages`` folders (pip and uv add and
    remove entries there). A file edited inside a package does not change it."""
    places = [folder, folder / "bin", folder / "Scripts", folder / "pyvenv.cfg",
              *sorted(folder.glob("lib/python*/site-packages")),
              *sorted(folder.glob("lib64/python*/site-packages")), folder / "Lib" / "site-packages"]
    found = []
    for place in places:
        try:
            found.append([str(place.relative_to(folder)), place.stat().st_mtime_ns])
        except OSError:
            continue
    return found


class _EnvSizes:
    """Environment sizes, measured once per fingerprint (kept in ``cache/env-sizes.json``)."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.home / "cache" / _SIZES_FILE
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.known = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            self.known = {}
        self.by_key: dict[str, int | None] = {}
        self.changed = False

    def size(self, use: EnvUse) -> int | None:
        if use.key not in self.by_key:
            folder = use.folder
            self.by_key[use.key] = (self._measure(folder)
                                    if folder is not None and folder.is_dir() else None)
        return self.by_key[use.key]

    def _measure(self, folder: Path) -> int:
        key, fingerprint = str(folder), _fingerprint(folder)
        known = self.known.get(key)
        if isinstance(known, dict) and known.get("fingerprint") == fingerprint \
                and isinstance(known.get("bytes"), int):
            return known["bytes"]
        size = tree_size(folder)
        self.known[key] = {"fingerprint": fingerprint, "bytes": size}
        self.changed = True
        return size

    def save(self) -> None:
        if not self.changed:
            return
        known = {k: v for k, v in self.known.items() if os.path.isdir(k)}
        with contextlib.suppress(OSError):
            write_json_atomic(self.path, known)


def _deploy_size(settings: Settings, recipe: str) -> int:
    found = deployment(settings, recipe)
    if found is None:
        return 0
    target, _mode = found
    return tree_size(target)  # a link counts nothing; a copy (or a moved folder) counts


def disk_usage(settings: Settings, model_dirs: dict[str, Path]) -> dict:
    """Per recipe (``name -> model dir``) what it takes on disk, and the total.

    Returns ``{"recipes": {name: usage or None}, "total_bytes": n}``; a usage is
    ``{"model_bytes", "deploy_bytes", "envs": [...], "total_bytes"}``, each env with its
    ``bytes`` (None where it is not a folder of ours: conda, the current interpreter) and
    ``shared_with`` (the other recipes whose records point to it).
    """
    uses = [u for u in all_env_uses(settings) if u.recipe in model_dirs]
    by_key: dict[str, set[str]] = {}
    for use in uses:
        by_key.setdefault(use.key, set()).add(use.recipe)
    sizes = _EnvSizes(settings)
    counted: set[str] = set()
    total = 0
    out: dict[str, dict | None] = {}
    for name, model_dir in model_dirs.items():
        own = [u for u in uses if u.recipe == name]
        has_model = os.path.lexists(model_dir)
        if not own and not has_model:
            out[name] = None
            continue
        model = tree_size(model_dir)
        deploy = _deploy_size(settings, name)
        envs = []
        for use in own:
            envs.append({"kind": use.kind, "backend": use.backend, "name": use.name,
                         "path": use.location, "bytes": sizes.size(use),
                         "shared_with": sorted(by_key[use.key] - {name})})
        unique = {u.key: sizes.size(u) or 0 for u in own}
        out[name] = {"model_dir": str(model_dir), "model_bytes": model, "deploy_bytes": deploy,
                     "envs": envs, "total_bytes": model + deploy + sum(unique.values())}
        total += model + deploy + sum(v for k, v in unique.items() if k not in counted)
        counted.update(unique)
    sizes.save()
    return {"recipes": out, "total_bytes": total}
