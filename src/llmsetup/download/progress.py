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
field is already redacted, and in English (events go to ``--json`` lines and to
``download.log``): a text field is a :class:`~llmsetup.download.messages.Message` where
llmsetup wrote it, which :func:`event_line` shows in the chosen language.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from llmsetup.download.messages import shown
from llmsetup.i18n import _


def human_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as disks and networks count)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


_size = human_bytes


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


def event_line(event: str, f: dict[str, Any]) -> str | None:
    """The one line a person should see for an event (None for progress ticks), in the
    chosen language (the event itself stays English: see the module docstring)."""
    if event == "progress":  # a few times a second per file: no line, nothing translated
        return None
    if event == "source":
        return _("Trying {source}").format(source=shown(f["detail"]))
    if event == "source_failed":
        if f.get("hint"):
            return _("✗ {name} failed: {reason} ({hint}); trying the next source").format(
                name=f["name"], reason=shown(f["reason"]), hint=shown(f["hint"]))
        return _("✗ {name} failed: {reason}; trying the next source").format(
            name=f["name"], reason=shown(f["reason"]))
    if event == "listing":
        return _("{files} files ({size}) at revision {revision}; {fetch_files} to fetch "
                 "({fetch_size}), {skipped} already present").format(
            files=f["files"], size=_size(f["bytes"]), revision=str(f["revision"])[:12],
            fetch_files=f["fetch_files"], fetch_size=_size(f["fetch_bytes"]),
            skipped=f["skipped"])
    if event == "waiting":
        return f"… {shown(f['message'])}"
    if event == "file_done":
        big = f["fetched"] >= 1_000_000  # a rate for a few bytes means nothing
        speed = f["fetched"] / f["seconds"] if big and f.get("seconds") else 0
        if speed:
            return _("✓ {path} {size} ({verified_by} verified, from {source}, {speed}/s)").format(
                path=f["path"], size=_size(f["size"]), verified_by=f["verified_by"],
                source=f["source"], speed=_size(speed))
        return _("✓ {path} {size} ({verified_by} verified, from {source})").format(
            path=f["path"], size=_size(f["size"]), verified_by=f["verified_by"],
            source=f["source"])
    if event == "file_skipped":
        return _("= {path} {size}: {reason}").format(path=f["path"], size=_size(f["size"]),
                                                    reason=shown(f["reason"]))
    if event == "retry":
        if f.get("delay"):
            return _("↻ {path}: {reason}; retry {attempt} in {delay:.1f}s").format(
                path=f["path"], reason=shown(f["reason"]), attempt=f["attempt"],
                delay=f["delay"])
        return _("↻ {path}: {reason}; retry {attempt}").format(
            path=f["path"], reason=shown(f["reason"]), attempt=f["attempt"])
    if event == "note":
        return f"  {shown(f['message'])}"
    if event == "warning":
        return _("Warning: {message}").format(message=shown(f["message"]))
    return None


class LineSink:
    """The lines of :func:`event_line`, one per event worth a line, to ``on_line`` (the
    install plan's step output, or stderr in a pipe); thread-safe, lines never interleave."""

    def __init__(self, on_line) -> None:
        self.on_line = on_line
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        line = event_line(event, fields)
        if line:
            with self._lock:
                self.on_line(line)
