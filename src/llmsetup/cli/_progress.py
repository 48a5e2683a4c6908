"""Rendering download progress: rich bars, one line per file, or JSON lines.

:func:`download_reporter` picks one: JSON lines on stderr with ``--json`` (stdout keeps
the one result document), rich bars per file plus a total (bytes, speed, ETA) on a
terminal, and one line per finished file when stderr is a pipe or a log. All of them
receive events from the engine's threads, so each guards its state with a lock.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from llmsetup.download.progress import LineSink, event_line
from llmsetup.i18n import _
from llmsetup.secret import redact


class JsonLinesReporter(AbstractContextManager):
    """One JSON object per event on stderr; progress at most twice a second per file."""

    def __init__(self, stream=None, min_interval: float = 0.5) -> None:
        self.stream = stream or sys.stderr
        self.min_interval = min_interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        with self._lock:
            if event == "progress":
                now = time.monotonic()
                if now - self._last.get(fields["path"], 0.0) < self.min_interval:
                    return
                self._last[fields["path"]] = now
            line = json.dumps({"event": event, **fields}, ensure_ascii=False, default=str)
            self.stream.write(redact(line) + "\n")
            self.stream.flush()

    def __exit__(self, *exc) -> None:
        return None


class DownloadBars(AbstractContextManager):
    """A bar per active file and one for the total, with bytes, speed and ETA."""

    def __init__(self, console) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}", justify="left"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=False)
        self._lock = threading.Lock()
        self._tasks: dict[str, Any] = {}
        self._done: dict[str, int] = {}
        self._total = None

    def __enter__(self) -> DownloadBars:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def emit(self, event: str, **f: Any) -> None:
        with self._lock:
            if event == "listing":
                self._done.clear()
                if self._total is not None:
                    self._progress.remove_task(self._total)
                self._total = self._progress.add_task(
                    "[bold]" + _("total"), total=f["fetch_size"])
            elif event == "file_start":
                self._tasks[f["path"]] = self._progress.add_task(
                    _short(f["path"]), total=f["size"], completed=f["resumed"])
            elif event == "progress" and f["path"] in self._tasks:
                self._progress.update(self._tasks[f["path"]], completed=f["done"])
                self._done[f["path"]] = f["done"]
                if self._total is not None:
                    self._progress.update(self._total, completed=sum(self._done.values()))
            elif event == "file_done" and f["path"] in self._tasks:
                self._done[f["path"]] = f["size"]
                self._progress.remove_task(self._tasks.pop(f["path"]))
                if self._total is not None:
                    self._progress.update(self._total, completed=sum(self._done.values()))
            text = event_line(event, f)
            if text:
                self._progress.console.print(redact(text), highlight=False, markup=False)


class LogReporter:
    """Every event but progress ticks, as redacted JSON lines appended to a log file."""

    def __init__(self, path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a", encoding="utf-8")

    def emit(self, event: str, **fields: Any) -> None:
        if event == "progress":
            return
        line = json.dumps({"time": time.strftime("%Y-%m-%d %H:%M:%S"), "event": event, **fields},
                          ensure_ascii=False, default=str)
        with self._lock:
            self._fh.write(redact(line) + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class Tee:
    """Sends each event to several reporters."""

    def __init__(self, *reporters) -> None:
        self.reporters = reporters

    def emit(self, event: str, **fields: Any) -> None:
        for r in self.reporters:
            r.emit(event, **fields)


def _short(path: str, width: int = 36) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1):]


def download_reporter(json_mode: bool, err_console: Callable[[], Any]
                      ) -> AbstractContextManager:
    """The reporter for this terminal (see the module docstring); ``err_console()``
    gives the rich console, made (and rich imported) only for the bars."""
    if json_mode:
        return JsonLinesReporter()
    if sys.stderr.isatty():
        return DownloadBars(err_console())
    return contextlib.nullcontext(LineSink(_stderr_line))


def _stderr_line(text: str) -> None:
    """One plain line for pipes and logs."""
    sys.stderr.write(redact(text) + "\n")
    sys.stderr.flush()
