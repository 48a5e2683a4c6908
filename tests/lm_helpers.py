"""Helpers shared by the verify and chat tests: recipes pointing at fixture models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "src" / "llmsetup" / "schemas" / "verify-causal-lm.schema.json"


def write_recipe(recipes: Path, name: str, model: Path | None, **fields) -> Path:
    """A causal-LM recipe whose model folder (under LLMSETUP_MODELS_DIR) links to ``model``."""
    recipes.mkdir(parents=True, exist_ok=True)
    data = {
        "name": name, "kind": "causal-lm", "description": f"test recipe {name}",
        "repo_id": f"test/{name}", "env": {"name": name, "python": "3.11"},
        "default_profile": "modern", "profiles": {"modern": []},
        **fields,
    }
    (recipes / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                          encoding="utf-8")
    if model is not None:
        target = Path(os.environ["LLMSETUP_MODELS_DIR"]) / "test" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(model, target_is_directory=True)
    return recipes


def validate(doc: dict) -> None:
    """Check ``doc`` against the shipped JSON Schema of ``verify --json``."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(doc)


def no_traceback(result) -> None:
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
