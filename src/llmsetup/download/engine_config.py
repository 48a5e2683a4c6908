"""The knobs of the transfer engine, apart from the engine so that options can hold them."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmsetup.download.http import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, RetryPolicy


@dataclass(frozen=True)
class EngineConfig:
    """Knobs of the engine. The defaults suit real mirrors; tests shorten the timeouts."""

    part_size: int = 32 << 20
    #: A range in flight is split only if both halves get at least this much. It must
    #: exceed two blocks, so that a split never lands inside a block being written.
    min_split: int = 4 << 20
    block: int = 1 << 20
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S
    #: Drop a connection that delivers less than ``min_speed`` bytes/s over this window.
    stall_window_s: float = 30.0
    min_speed: int = 8 << 10
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Whole-file downloads before a hash mismatch is final.
    hash_attempts: int = 2
    checkpoint_s: float = 2.0
    #: ... and after every this many bytes: the disk writes the data while the download
    #: runs, so the flush before the final rename has little left to do.
    checkpoint_bytes: int = 16 << 20
    progress_s: float = 0.25
    #: Bytes/s: a connection at least this fast gets no company (see the engine's
    #: docstring). None opens every connection at once.
    fast_link: float | None = 256e6
    #: How long the first connection runs alone before the rate is judged.
    probe_s: float = 0.05
