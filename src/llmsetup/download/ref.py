"""What to download: a repository id, where to put it, and which sources to ask.

A :class:`ModelRef` comes from a recipe (``llmsetup download gemma-2b``, and the install
plan) or from a bare ``ORG/REPO``; for the latter a recipe with that repository id (or
with it as its gated ``upstream``) lends its source ids, filters and hints. A recipe is
either a :class:`~llmsetup.recipes.schema.Recipe` or its entry in the catalog's cached
index (the same fields as plain data), which the CLI uses so that a download starts
without loading every recipe file and building the schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmsetup.download.messages import Message
from llmsetup.errors import NotFoundError
from llmsetup.i18n import N_, _
from llmsetup.recipes.names import DEFAULT_SOURCES, REPO_RE

if TYPE_CHECKING:
    from llmsetup.recipes.schema import Recipe

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
    def from_recipe(cls, recipe: Recipe | dict, model_dir: Path) -> ModelRef:
        public = None
        if _get(recipe, "upstream.gated"):
            public = Message(N_("{repo} is already the public copy of {upstream}"),
                             repo=_get(recipe, "repo_id"),
                             upstream=_get(recipe, "upstream.repo_id"))
        return cls(repo_id=_get(recipe, "repo_id"), model_dir=model_dir,
                   revision=_get(recipe, "revision"), sources=list(_get(recipe, "sources")),
                   source_ids=dict(_get(recipe, "source_ids")),
                   include=list(_get(recipe, "download.include")),
                   exclude=list(_get(recipe, "download.exclude")),
                   name=_get(recipe, "name"), public_copy=public)

    @classmethod
    def from_repo_id(cls, repo_id: str, models_dir: Path, recipes: list[Recipe] | list[dict],
                     default_sources: list[str] | None = None) -> ModelRef:
        if not re.fullmatch(REPO_RE, repo_id):
            raise NotFoundError(_("{repo} is neither a recipe name nor an ORG/REPO id").format(
                                    repo=repr(repo_id)),
                                hint=_("See `llmsetup list`, or give a repository id like "
                                       "NousResearch/Llama-2-7b-chat-hf."))
        for recipe in recipes:
            if _get(recipe, "repo_id") == repo_id and "generate" not in _get(recipe, "sources"):
                return cls.from_recipe(recipe,
                                       models_dir / (_get(recipe, "target_dir") or repo_id))
        ref = cls(repo_id=repo_id, model_dir=models_dir / repo_id,
                  sources=[s for s in (default_sources or DEFAULT_SOURCES) if s != "generate"])
        for recipe in recipes:
            if _get(recipe, "upstream.repo_id") == repo_id:
                ref.public_copy = Message(N_("`llmsetup download {name}` fetches the public "
                                            "copy {repo}"), name=_get(recipe, "name"),
                                          repo=_get(recipe, "repo_id"))
        return ref

    def id_for(self, source: str) -> str:
        """The repository id at ``source`` (hf-mirror shares hf's ids)."""
        base = "hf" if source == "hf-mirror" else source
        return self.source_ids.get(source) or self.source_ids.get(base) or self.repo_id


def _get(recipe: Any, path: str) -> Any:
    """A field of a recipe or of its index entry: ``"upstream.repo_id"``; None if unset."""
    value = recipe
    for key in path.split("."):
        if value is None:
            return None
        value = value.get(key) if isinstance(value, dict) else getattr(value, key)
    return value
