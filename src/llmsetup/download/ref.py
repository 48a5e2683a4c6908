"""What to download: a repository id, where to put it, and which sources to ask.

A :class:`ModelRef` comes from a recipe (``llmsetup download gemma-2b``, and the install
plan) or from a bare ``ORG/REPO``; for the latter a recipe with that repository id (or
with it as its gated ``upstream``) lends its source ids, filters and hints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from llmsetup.errors import NotFoundError
from llmsetup.recipes.schema import DEFAULT_SOURCES, REPO_RE, Recipe

DOWNLOAD_SOURCES = ("hf", "hf-mirror", "aliendao", "modelscope")


@dataclass
class ModelRef:
    """One repository to download into ``model_dir``."""

    repo_id: str
    model_dir: Path
    revision: str = "main"
    sources: list[str] = field(default_factory=lambda: list(DEFAULT_SOURCES))
    source_ids: dict[str, str] = field(default_factory=dict)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    name: str | None = None
    #: When the repository is gated: how to get a public copy instead (for the hint).
    public_copy: str | None = None

    @classmethod
    def from_recipe(cls, recipe: Recipe, model_dir: Path) -> ModelRef:
        public = None
        if recipe.upstream and recipe.upstream.gated:
            public = (f"{recipe.repo_id} is already the public copy of {recipe.upstream.repo_id}")
        return cls(repo_id=recipe.repo_id, model_dir=model_dir, revision=recipe.revision,
                   sources=list(recipe.sources), source_ids=dict(recipe.source_ids),
                   include=list(recipe.download.include), exclude=list(recipe.download.exclude),
                   name=recipe.name, public_copy=public)

    @classmethod
    def from_repo_id(cls, repo_id: str, models_dir: Path, recipes: list[Recipe],
                     default_sources: list[str] | None = None) -> ModelRef:
        if not re.fullmatch(REPO_RE, repo_id):
            raise NotFoundError(f"{repo_id!r} is neither a recipe name nor an ORG/REPO id",
                                hint="See `llmsetup list`, or give a repository id like "
                                "NousResearch/Llama-2-7b-chat-hf.")
        for recipe in recipes:
            if recipe.repo_id == repo_id and "generate" not in recipe.sources:
                return cls.from_recipe(recipe, models_dir / (recipe.target_dir or repo_id))
        ref = cls(repo_id=repo_id, model_dir=models_dir / repo_id,
                  sources=[s for s in (default_sources or DEFAULT_SOURCES) if s != "generate"])
        for recipe in recipes:
            if recipe.upstream and recipe.upstream.repo_id == repo_id:
                ref.public_copy = (f"`llmsetup download {recipe.name}` fetches the public copy "
                                   f"{recipe.repo_id}")
        return ref

    def id_for(self, source: str) -> str:
        """The repository id at ``source`` (hf-mirror shares hf's ids)."""
        base = "hf" if source == "hf-mirror" else source
        return self.source_ids.get(source) or self.source_ids.get(base) or self.repo_id
