"""Data for ``list`` and ``show``: recipes with their resolved paths, as plain dicts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmsetup.recipes.loader import Catalog
from llmsetup.recipes.memory import memory_gb
from llmsetup.settings import Settings

if TYPE_CHECKING:
    from llmsetup.targets import Target


def is_installed(model_dir) -> bool:
    """A model counts as installed when its folder holds a config.json."""
    return (model_dir / "config.json").is_file()


def recipe_rows(catalog: Catalog, settings: Settings) -> list[dict]:
    """One row per recipe, from the catalog's cached index (no schema needed)."""
    rows = []
    for recipe in catalog.index():
        model_dir = settings.models_dir / (recipe.get("target_dir") or recipe["repo_id"])
        rows.append({
            "name": recipe["name"],
            "kind": recipe["kind"],
            "repo_id": recipe["repo_id"],
            "description": recipe["description"],
            "params": recipe.get("params"),
            "memory_gb": memory_gb(recipe.get("memory"), recipe.get("params")),
            "gated": recipe.get("gated", False),
            "installed": is_installed(model_dir),
            "model_dir": str(model_dir),
            "source": recipe.get("origin"),
        })
    return rows


def with_disk_usage(rows: list[dict], settings: Settings) -> int:
    """Add ``disk`` (see :func:`llmsetup.housekeeping.usage.disk_usage`) to each row;
    returns the bytes all of them take, shared environments counted once."""
    from pathlib import Path

    from llmsetup.housekeeping.usage import disk_usage

    usage = disk_usage(settings, {row["name"]: Path(row["model_dir"]) for row in rows})
    for row in rows:
        row["disk"] = usage["recipes"].get(row["name"])
    return usage["total_bytes"]


def describe_target(target: Target, settings: Settings) -> dict:
    recipe = target.recipe
    doc: dict = {
        "recipe": recipe.model_dump(mode="json", exclude_none=True),
        "paths": {
            "recipe_file": str(recipe.origin) if recipe.origin else None,
            "model_dir": str(target.model_dir),
            "state_dir": str(settings.state_dir / recipe.name),
            "locks": {p: (str(recipe.lock_path(p)) if recipe.lock_path(p) else None)
                      for p in recipe.profiles},
        },
        "memory_gb": recipe.memory_gb(),
        "installed": is_installed(target.model_dir),
    }
    from llmsetup.install.build import build_plan
    from llmsetup.install.plan import InstallOptions

    plan = build_plan(target, settings, InstallOptions())
    doc["plan"] = plan.describe()
    return doc
