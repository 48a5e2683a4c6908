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
from pathlib import Path
from typing import TYPE_CHECKING

from llmsetup.download.engine import EngineConfig
from llmsetup.download.job import DownloadOptions, download
from llmsetup.download.manifest import Manifest, check_folder, is_complete, manifest_path
from llmsetup.download.progress import NULL_REPORTER, CollectingReporter, LineSink, Reporter
from llmsetup.download.ref import ModelRef

if TYPE_CHECKING:
    from llmsetup.settings import Settings
    from llmsetup.targets import Target

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
                   reporter: Reporter = NULL_REPORTER) -> Manifest:
    """Download a recipe's weights into its model folder (the install plan's step).

    Raises :class:`~llmsetup.download.errors.NotDownloadable` for recipes that generate
    their model (the demo), a ``SourceError`` / ``AllSourcesFailed`` when no source
    delivers, ``DiskSpaceError`` before any transfer when the disk is too small, and
    ``KeyboardInterrupt`` (state saved) when cancelled. ``manifest.run`` says what this
    run did.
    """
    options = options or DownloadOptions()
    model_dir = target.model_dir
    if options.models_dir is not None and not target.from_folder:
        model_dir = options.models_dir / (target.recipe.target_dir or target.recipe.repo_id)
    return download(ModelRef.from_recipe(target.recipe, model_dir), settings, options, reporter)


def download_for_install(target: Target, settings: Settings, options: dict,
                         on_line: Callable[[str], None]) -> dict:
    """The install plan's download step: ``options`` as ``llmsetup install`` collects them
    (``source``: a list of sources in order, ``endpoint``, ``from``: a folder to adopt),
    one line of output per event through ``on_line``. Returns what the step reports.
    """
    sources = options.get("source") or None
    if isinstance(sources, str):
        sources = [sources]
    from_dir = options.get("from")
    download_options = DownloadOptions(
        sources=list(sources) if sources else None, endpoint=options.get("endpoint"),
        from_dir=Path(from_dir) if from_dir else None)
    manifest = download_model(target, settings, download_options, LineSink(on_line))
    return {"model_dir": str(manifest.model_dir), **manifest.summary(), "run": manifest.run}
