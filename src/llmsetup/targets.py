"""What a command acts on: a recipe by name, or a local model folder.

Every command that takes a recipe NAME also takes a path to a model folder. For a folder
the kind comes from its ``config.json`` (Whisper is ``asr``, any causal LM ``causal-lm``),
and a recipe is made up for it from the defaults of that kind.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from llmsetup.errors import NotFoundError, UsageError
from llmsetup.i18n import _
from llmsetup.recipes.loader import Catalog
from llmsetup.recipes.schema import Recipe
from llmsetup.settings import Settings


@dataclass
class Target:
    recipe: Recipe
    model_dir: Path
    from_folder: bool = False

    @property
    def kind(self) -> str:
        return self.recipe.kind


def looks_like_path(text: str) -> bool:
    """A path: it starts like one (``./x``, ``~/x``, ``/x``) or names an existing folder."""
    return text.startswith((".", "/", "~")) or "\\" in text or Path(text).expanduser().is_dir()


def model_dir_for(recipe: Recipe, settings: Settings) -> Path:
    """Where ``recipe``'s weights live: ``<models dir>/<repo_id>`` unless it says otherwise."""
    return settings.models_dir / (recipe.target_dir or recipe.repo_id)


def kind_of_folder(folder: Path) -> str:
    """``asr`` or ``causal-lm``, from a model folder's ``config.json``."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise NotFoundError(
            _("{folder}: no config.json, so this is not a model folder").format(folder=folder),
            hint=_("Point at the folder that holds config.json, or download the model first "
                   "(`llmsetup download NAME`)."),
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(_("{file}: not readable JSON ({error})").format(file=config_file,
                                                                          error=exc),
                         hint=_("The download may be incomplete: `llmsetup check` it.")) \
            from None
    archs = config.get("architectures") or []
    model_type = str(config.get("model_type", ""))
    if model_type == "whisper" or any("Whisper" in a for a in archs):
        return "asr"
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs) or model_type in {
        "llama", "gemma", "gemma2", "mistral", "qwen2", "gpt2", "baichuan", "chatglm",
    }:
        return "causal-lm"
    raise UsageError(
        _("{folder}: cannot tell what kind of model this is (model_type={model_type}, "
          "architectures={architectures})").format(folder=folder, model_type=model_type or "?",
                                                   architectures=archs or "?"),
        hint=_("llmsetup handles causal language models and Whisper speech models."),
    )


def recipe_for_folder(folder: Path) -> Recipe:
    """A recipe with the defaults of the folder's kind."""
    kind = kind_of_folder(folder)
    name = re.sub(r"[^a-z0-9._-]+", "-", folder.name.lower()).strip("-._") or "model"
    data: dict = {
        "name": name,
        "kind": kind,
        "description": f"Local model folder {folder}",
        "repo_id": f"local/{name}",
        "env": {"name": name, "python": "3.11", "backend": "current"},
        "default_profile": "modern",
        "profiles": {"modern": []},
    }
    if kind == "causal-lm":
        data["smoke"] = {"prompts": ["Hello! Who are you?"], "max_new_tokens": 32}
    return Recipe.model_validate(data)


def resolve(name_or_path: str, settings: Settings, catalog: Catalog) -> Target:
    """Find the recipe or folder the user named.

    A bare word is a recipe name first; only when no recipe has that name is it taken as a
    folder in the current directory (so a folder called ``demo`` never hides the recipe).
    """
    explicit = name_or_path.startswith((".", "/", "~")) or "\\" in name_or_path
    if explicit or (looks_like_path(name_or_path) and name_or_path not in catalog.names()):
        folder = Path(name_or_path).expanduser().absolute()
        if not folder.is_dir():
            raise NotFoundError(_("{path}: no such folder").format(path=name_or_path),
                                hint=_("Give a recipe name (`llmsetup list`) or a model "
                                       "folder."))
        return Target(recipe_for_folder(folder), folder, from_folder=True)
    recipe = catalog.get(name_or_path)
    return Target(recipe, model_dir_for(recipe, settings))
