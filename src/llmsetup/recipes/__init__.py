"""Recipes: one YAML file per model, validated by :mod:`llmsetup.recipes.schema`.

Bundled recipes live in the top-level ``recipes/`` folder of the project and ship inside
the wheel; users add their own folders (``--recipes-dir``, ``LLMSETUP_RECIPES_PATH``), and a
user recipe with the same name overrides a bundled one.
"""

from llmsetup.recipes.loader import Catalog, bundled_dir, load_file

__all__ = ["Catalog", "Recipe", "bundled_dir", "load_file"]


def __getattr__(name: str):
    # The schema pulls in pydantic; `llmsetup list` reads a cached index and never needs it.
    if name == "Recipe":
        from llmsetup.recipes.schema import Recipe

        return Recipe
    raise AttributeError(name)
