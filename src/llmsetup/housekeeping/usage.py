"""How much disk each installed recipe takes: its model files, its deployed copy, its
environments; an environment several recipes share is counted once in the total."""

from __future__ import annotations

import os
from pathlib import Path

from llmsetup.housekeeping.disk import tree_size
from llmsetup.housekeeping.records import EnvUse, all_env_uses, deployment
from llmsetup.settings import Settings


def _env_size(use: EnvUse, cache: dict[str, int | None]) -> int | None:
    if use.key not in cache:
        folder = use.folder
        cache[use.key] = tree_size(folder) if folder is not None and folder.is_dir() else None
    return cache[use.key]


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
    sizes: dict[str, int | None] = {}
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
                         "path": use.location, "bytes": _env_size(use, sizes),
                         "shared_with": sorted(by_key[use.key] - {name})})
        unique = {u.key: sizes[u.key] or 0 for u in own}
        out[name] = {"model_dir": str(model_dir), "model_bytes": model, "deploy_bytes": deploy,
                     "envs": envs, "total_bytes": model + deploy + sum(unique.values())}
        total += model + deploy + sum(v for k, v in unique.items() if k not in counted)
        counted.update(unique)
    return {"recipes": out, "total_bytes": total}
