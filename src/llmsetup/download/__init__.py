"""Downloading model weights: every source, one verified and resumable engine.

The install plan (and ``llmsetup download``) call :func:`download_model`; ``llmsetup
check`` calls :func:`check_folder`. See docs/download.md for the user's view.

Layout: ``sources/`` (hf, aliendao, modelscope, local) behind one interface, ``engine``
(segmented, resumable transfers that hash while writing), ``partial`` (data and resume
state of a file in flight), ``manifest`` (what was verified, and the check), ``select``
(globs and format choice), ``job`` (one model: lock, sources in order, disk check).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from llmsetup.download.options import DownloadOptions

if TYPE_CHECKING:
    from llmsetup.download.manifest import Manifest
    from llmsetup.download.progress import Reporter
    from llmsetup.settings import Settings
    from llmsetup.targets import Target

# The package's names, each imported from its module when first used: the install plan
# and ``--dry-run`` need DownloadOptions alone, not the engine and its HTTP stack.
_LAZY = {
    "CollectingReporter": "progress", "EngineConfig": "engine", "Manifest": "manifest",
    "ModelRef": "ref", "Reporter": "progress", "check_folder": "manifest", "download": "job",
    "is_complete": "manifest", "manifest_path": "manifest",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = __import__(f"{__name__}.{_LAZY[name]}", fromlist=[name])
    return getattr(module, name)


__all__ = [
    "CollectingReporter",
    "DownloadOptions",
    "EngineConfig",
    "Manifest",
    "ModelRef",
    "Reporter",
    "check_folder",
    "download",
    "download_for_install",
    "download_model",
    "is_complete",
    "manifest_path",
]


def download_model(target: Target, settings: Settings, options: DownloadOptions | None = None,
                   reporter: Reporter | None = None) -> Manifest:
    """Download a recipe's weights into its model folder (the install plan's step).

    Raises :class:`~llmsetup.download.errors.NotDownloadable` for recipes that generate
    their model (the demo), a ``SourceError`` / ``AllSourcesFailed`` when no source
    delivers, ``DiskSpaceError`` before any transfer when the disk is too small, and
    ``KeyboardInterrupt`` (state saved) when cancelled. ``manifest.run`` says what this
    run did.
    """
    from llmsetup.download.job import download
    from llmsetup.download.progress import NULL_REPORTER
    from llmsetup.download.ref import ModelRef

    options = options or DownloadOptions()
    model_dir = target.model_dir
    if options.models_dir is not None and not target.from_folder:
        model_dir = options.models_dir / (target.recipe.target_dir or target.recipe.repo_id)
    return download(ModelRef.from_recipe(target.recipe, model_dir), settings, options,
                    reporter or NULL_REPORTER)


def download_for_install(target: Target, settings: Settings, options: DownloadOptions,
                         on_line: Callable[[str], None]) -> dict:
    """The install plan's download step: one line of output per event through ``on_line``.
    Returns what the step reports (its ``summary``, English, is a
    :class:`~llmsetup.download.messages.Message`: ``shown()`` gives it in the chosen
    language)."""
    from llmsetup.download.messages import Joined
    from llmsetup.download.progress import LineSink
    from llmsetup.i18n import N_

    manifest = download_model(target, settings, options, LineSink(on_line))
    info = {"model_dir": str(manifest.model_dir), **manifest.summary(), "run": manifest.run}
    notes = manifest.trust_notes()
    # "; " between notes: "；" in Chinese.
    return {**info, "summary": Joined(N_("; "), notes)} if notes else info
