"""What an install was started with, so that a rerun continues that same install.

A rerun that leaves an option out takes the recorded value (``install gemma-2b --python
3.11`` failed at the CUDA check; ``install gemma-2b --cpu`` then keeps Python 3.11); an
option given again with another value changes it, and the steps whose inputs changed run
again. Recorded in ``$LLMSETUP_HOME/state/<recipe>/install-options.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmsetup.fileio import write_json_atomic
from llmsetup.install.plan import Plan
from llmsetup.settings import Settings


def started_path(settings: Settings, recipe_name: str) -> Path:
    return settings.state_dir / recipe_name / "install-options.json"


def load_started(settings: Settings, recipe_name: str) -> dict[str, Any]:
    """The options the last install of ``recipe_name`` was started with ({} if none)."""
    try:
        doc = json.loads(started_path(settings, recipe_name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    options = doc.get("options") if isinstance(doc, dict) else None
    return options if isinstance(options, dict) else {}


def save_started(settings: Settings, recipe_name: str, options: dict[str, Any]) -> None:
    write_json_atomic(started_path(settings, recipe_name), {"options": options})


def redone_steps(plan: Plan) -> list[str]:
    """Steps that ran before with other inputs: a changed option makes them run again."""
    return [step.key for step in plan.steps
            if step.record() is not None and not step.record_matches()]
