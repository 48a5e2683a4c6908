"""What a download may be asked for: the options of ``llmsetup download`` and of the
install plan's download step, in one typed object (no engine or HTTP import here, so that
the install plan and ``--dry-run`` stay light)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmsetup.download.engine import EngineConfig


@dataclass
class DownloadOptions:
    """Everything ``llmsetup download`` (or the install plan) may ask for."""

    #: The sources to try, in order; None: the recipe's order (or the config's).
    sources: list[str] | None = None
    endpoint: str | None = None
    revision: str | None = None
    connections: int | None = None
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    all_formats: bool = False
    from_dir: Path | None = None
    copy: bool = False
    models_dir: Path | None = None
    #: Set it (from any thread) to stop like Ctrl-C: state saved, KeyboardInterrupt raised.
    cancel: threading.Event | None = None
    engine: EngineConfig | None = None
    #: Seconds to wait for another process's download of the same folder (None: forever).
    lock_timeout: float | None = None
    #: Take a mirror's copy (aliendao) by its size where it differs from the HF revision.
    accept_mirror_copy: bool = False
