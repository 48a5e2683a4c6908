"""Progress events of a download, and the receivers that do nothing or collect them.

The core emits plain events; the CLI renders them (rich bars on a terminal, one line per
file in a pipe, JSON lines with ``--json``). Events, with their fields:

- ``source``: name, detail: trying a source;
- ``source_failed``: name, reason, hint: it failed, the next one is tried;
- ``listing``: source, revision, files, bytes, fetch_files, fetch_bytes (still missing),
  fetch_size (their whole size, resumed bytes included), skipped;
- ``waiting``: message: another process holds the model folder's lock;
- ``file_start``: path, size, resumed, source;
- ``progress``: path, done, size (a few times a second per active file);
- ``retry``: path, attempt, reason, delay;
- ``file_done``: path, size, sha256, verified_by, source, fetched, seconds;
- ``file_skipped``: path, size, reason (already present and verified);
- ``note``: message: something worth knowing (where hashes came from);
- ``warning``: message (and path where it concerns one file).

Events are emitted from the engine's threads: receivers must be thread-safe. Every text
field is already redacted.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol


class Reporter(Protocol):
    """Receives progress events (see the module docstring)."""

    def emit(self, event: str, **fields: Any) -> None: ...


class NullReporter:
    """Drops every event."""

    def emit(self, event: str, **fields: Any) -> None:
        return None


NULL_REPORTER = NullReporter()


class CollectingReporter:
    """Keeps every event in a list (for the library caller who wants to look afterwards)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        with self._lock:
            self.events.append((event, fields))

    def of(self, event: str) -> list[dict[str, Any]]:
        with self._lock:
            return [f for e, f in self.events if e == event]
