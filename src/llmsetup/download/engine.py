"""The one transfer engine: every source's files go through here.

A pool of ``connections`` threads (each with its own keep-alive HTTP connection) fetches
the files' parts. The work is split by job:

- :mod:`~llmsetup.download.scheduler`: which connection fetches which byte range;
- :mod:`~llmsetup.download.connection`: one connection, its requests, replies and retries;
- :mod:`~llmsetup.download.ramp`: when to open more than one connection;
- :mod:`~llmsetup.download.finisher`: a complete file's hash check and atomic rename;
- this module: the threads, and the main thread's loop of progress and checkpoints.

Bytes are written in place into a :class:`~llmsetup.download.partial.PartialFile`, whose
written ranges are saved every few seconds and on any exit (Ctrl-C included), so a rerun
fetches only what is missing. A file reaches its final path by an atomic rename only
after its size and its publisher's hash match.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from llmsetup.download.connection import Connection, parse_content_range
from llmsetup.download.engine_config import EngineConfig
from llmsetup.download.finisher import Finisher
from llmsetup.download.http import new_session, rate_limit_wait
from llmsetup.download.progress import NULL_REPORTER, Reporter
from llmsetup.download.ramp import RampJudge
from llmsetup.download.scheduler import Scheduler
from llmsetup.download.transfer import FileResult, Transfer

#: How often the countdown of a rate-limit wait is repeated.
_COUNTDOWN_S = 5.0

__all__ = ["Engine", "EngineConfig", "FileResult", "Transfer", "parse_content_range"]


class Engine:
    """Downloads a list of :class:`Transfer` over a pool of connections."""

    def __init__(self, config: EngineConfig | None = None, reporter: Reporter = NULL_REPORTER,
                 cancel: threading.Event | None = None,
                 session_factory: Callable = new_session,
                 on_done: Callable[[FileResult], None] | None = None) -> None:
        self.config = config or EngineConfig()
        self.reporter = reporter
        self.cancel = cancel
        self._session_factory = session_factory
        self._sched = Scheduler(self.config, reporter)
        self._finish = Finisher(self._sched, self.config, reporter, on_done)

    @property
    def connections_used(self) -> int:
        """How many connections were opened (after :meth:`run`)."""
        return self._sched.admitted

    def run(self, transfers: list[Transfer], connections: int) -> list[FileResult]:
        """Fetch every transfer; raise the first failure, or KeyboardInterrupt."""
        sched = self._sched
        sched.load(transfers, connections)
        workers = [threading.Thread(
            target=Connection(i, sched, self._finish, self._session_factory, self.config,
                              self.reporter).run,
            name=f"llmsetup-dl-{i}", daemon=True) for i in range(sched.connections)]
        interrupted: KeyboardInterrupt | None = None
        try:
            for w in workers:
                w.start()
            self._watch()
        except KeyboardInterrupt as exc:  # or a subclass: SIGTERM, SIGHUP (see cli)
            interrupted = exc
        finally:
            self._shutdown(workers)
        if interrupted is not None:
            raise interrupted
        if self.cancel is not None and self.cancel.is_set():
            raise KeyboardInterrupt
        if sched.failure is not None:
            raise sched.failure
        return sched.results

    def _watch(self) -> None:
        """The main thread: progress events, checkpoints, the ramp; until all is done."""
        cfg, sched = self.config, self._sched
        last_checkpoint = last_progress = time.monotonic()
        last_wait_note = 0.0
        ramp = RampJudge(cfg, sched, last_checkpoint)
        while True:
            with sched.cv:
                if sched.failure is not None or all(f.state == "done" for f in sched.files):
                    return
                sched.cv.wait(ramp.wait_s())
                flowed = sched.flowed
            if self.cancel is not None and self.cancel.is_set():
                raise KeyboardInterrupt
            now = time.monotonic()
            ramp.tick(now, flowed)
            if now - last_progress >= cfg.progress_s:
                self._emit_progress()
                last_progress = now
            left = sched.blocked_until - now
            if left > 0.5 and now - last_wait_note >= _COUNTDOWN_S:
                self.reporter.emit("waiting", seconds=round(left),
                                   message=rate_limit_wait(sched.blocked_by, left))
                last_wait_note = now
            if now - last_checkpoint >= cfg.checkpoint_s or \
                    flowed - sched.flowed_at_checkpoint >= cfg.checkpoint_bytes:
                sched.flowed_at_checkpoint = flowed
                self._checkpoint()
                last_checkpoint = time.monotonic()

    def _shutdown(self, workers: list[threading.Thread]) -> None:
        """Stop the connections, then save what every file has (the resume point)."""
        self._sched.stop()
        deadline = time.monotonic() + 3.0
        for w in workers:
            if w.is_alive():
                w.join(max(0.0, deadline - time.monotonic()))
        self._checkpoint()
        self._emit_progress()
        # A worker still blocked in a read owns its file descriptor; closing it under
        # it could let the number be reused by another file. The process exit closes it.
        if not any(w.is_alive() for w in workers):
            for fl in self._sched.files:
                if fl.state != "done":
                    fl.t.partial.close()

    def _checkpoint(self) -> None:
        for fl in self._sched.files:
            if fl.state in ("active", "finalizing", "failed"):
                with contextlib.suppress(OSError):
                    fl.t.partial.checkpoint()

    def _emit_progress(self) -> None:
        for fl in self._sched.files:
            if fl.state in ("active", "finalizing"):
                self.reporter.emit("progress", path=fl.t.file.path,
                                   done=fl.t.partial.covered(), size=fl.t.file.size)
