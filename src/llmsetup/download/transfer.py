"""What the engine moves: a file to fetch, a file in flight and its parts, a file done."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path

from llmsetup.download.link import FileLink
from llmsetup.download.partial import PartialFile
from llmsetup.download.sources.base import RemoteFile, Source


@dataclass
class Transfer:
    """One file to fetch from one source into ``final``."""

    file: RemoteFile
    source: Source
    final: Path
    partial: PartialFile


@dataclass
class FileResult:
    """A file that reached its final path, verified."""

    path: str
    size: int
    sha256: str
    verified_by: str
    source: str
    revision: str
    fetched: int
    seconds: float
    git_oid: str | None = None


@dataclass(eq=False)
class Part:
    """A byte range ``[pos, end)`` of a file that one connection fetches.

    ``pos`` moves on as bytes are saved. ``gen`` is the file's generation when the part was
    cut: a part of an older generation (the file restarted) is dropped, never written.
    """

    pos: int
    end: int
    gen: int


@dataclass(eq=False)
class FileInFlight:
    """One file while the engine works on it; guarded by the scheduler's lock."""

    t: Transfer
    link: FileLink
    state: str = "new"  # new, active, finalizing, done, failed
    parts: collections.deque = field(default_factory=collections.deque)
    inflight: set = field(default_factory=set)
    single: bool = False  # the server ignores Range: one connection from byte 0
    gen: int = 0
    hash_tries: int = 0
    fetched: int = 0
    started: float = 0.0
