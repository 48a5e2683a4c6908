"""Which connection fetches which bytes: the parts of every file, and the shared state.

Connections take *parts* (byte ranges) from the files in order, so one big shard gets
every connection and many small files go in parallel. When no part is left, an idle
connection splits the largest range still in flight (the tail of a file never waits on
one slow connection). Every field here is guarded by :attr:`Scheduler.cv`.

A connection works while it holds one of ``min(admitted, cap)`` slots. ``admitted`` grows
when the ramp opens every connection (see ramp.py); ``cap`` shrinks when the server says
it is busy with us (429, or 503 with Retry-After): the connection that heard it gives its
part back and its slot up, and the others go on. When the server says our quota is spent
(``RateLimit`` reset), every connection waits until ``blocked_until``.
"""

from __future__ import annotations

import threading
import time

from llmsetup.download.engine_config import EngineConfig
from llmsetup.download.link import FileLink
from llmsetup.download.messages import Message
from llmsetup.download.progress import Reporter
from llmsetup.download.transfer import FileInFlight, FileResult, Part, Transfer
from llmsetup.i18n import N_

_ALIGN = 1 << 16


class Scheduler:
    """The files in flight, their parts, and what every connection shares."""

    def __init__(self, config: EngineConfig, reporter: Reporter) -> None:
        self.config = config
        self.reporter = reporter
        self.cv = threading.Condition()
        self.halt = threading.Event()
        self.files: list[FileInFlight] = []
        self.results: list[FileResult] = []
        self.failure: BaseException | None = None
        self.connections = 1
        self.admitted = 1  # connections allowed to work now (see ramp.py)
        self.flowed = 0  # bytes written by every connection, for the rate and checkpoints
        self.flowed_at_checkpoint = 0
        self.cap = 1  # the most connections the server takes from us (see above)
        self.working: set[int] = set()  # the connections that hold a slot
        self.blocked_until = 0.0  # monotonic time: the server's quota window ends
        self.blocked_by = ""
        self.last_progress = time.monotonic()  # the last time any connection progressed
        self.quota_wait = 0.0  # seconds of quota windows since then (not idle time)

    def load(self, transfers: list[Transfer], connections: int) -> None:
        self.files = [FileInFlight(t, FileLink(t.source, t.file)) for t in transfers]
        self.connections = max(1, min(connections, self._part_count_hint()))
        self.admitted = 1 if self.config.fast_link is not None else self.connections
        self.cap = self.connections
        self.last_progress = time.monotonic()

    @property
    def in_use(self) -> int:
        """How many connections may work now."""
        return min(self.admitted, self.cap)

    def _part_count_hint(self) -> int:
        """How many connections can be busy at once (no more threads than that)."""
        return sum(max(1, -(-f.t.file.size // self.config.min_split)) for f in self.files)

    def fail(self, exc: BaseException) -> None:
        """Stop every connection; the first failure is the one reported."""
        with self.cv:
            if self.failure is None:
                self.failure = exc
            self.halt.set()
            self.cv.notify_all()

    def admit_all(self) -> None:
        with self.cv:
            self.admitted = self.connections
            self.cv.notify_all()

    def stop(self) -> None:
        self.halt.set()
        with self.cv:
            self.cv.notify_all()

    # -- handing out work -------------------------------------------------------------

    def take(self, index: int) -> tuple[FileInFlight, Part | None] | None:
        """The next part to fetch, or (file, None) to finalize a file, or None to stop."""
        with self.cv:
            while True:
                if self.halt.is_set():
                    return None
                if index not in self.working:
                    if len(self.working) >= self.in_use:  # not opened (yet), or shed
                        if all(f.state in ("done", "failed") for f in self.files):
                            return None
                        small = self._small_file()
                        if small is not None:
                            return small
                        self.cv.wait(0.5)
                        continue
                    self.working.add(index)
                busy = False
                for fl in self.files:
                    if fl.state in ("done", "failed"):
                        continue
                    busy = True
                    if fl.state == "new" and self._for_the_others(fl):
                        continue  # a connection held back by the ramp takes it
                    if fl.state == "new":
                        self._activate(fl)
                        if fl.state == "finalizing":
                            return fl, None
                    if fl.state == "active" and fl.parts:
                        part = fl.parts.popleft()
                        fl.inflight.add(part)
                        return fl, part
                if not busy:
                    return None
                stolen = self._steal()
                if stolen is not None:
                    return stolen
                small = self._small_file()  # nothing bigger left: the small ones too
                if small is not None:
                    return small
                self.cv.wait(0.5)

    def _small_file(self) -> tuple[FileInFlight, Part | None] | None:
        """While the ramp holds connections back, a small file for one of them (lock held);
        the connections that hold a slot leave these to them and take the big ones.

        A repository's small files (config, tokenizer, index: less than ``min_split``
        each) then arrive beside the first shard instead of one after the other on the
        first connection, and that connection reaches the shard at once. Not once the
        server has said it is busy with us (``cap``): then the slots rule.
        """
        for fl in self.files:
            if fl.state != "new" or not self._for_the_others(fl):
                continue
            self._activate(fl)
            if fl.state == "finalizing":
                return fl, None
            if fl.parts:
                part = fl.parts.popleft()
                fl.inflight.add(part)
                return fl, part
        return None

    def _for_the_others(self, fl: FileInFlight) -> bool:
        """A small file, while connections are held back by the ramp (lock held)."""
        return (self.admitted < self.connections and self.cap >= self.connections
                and fl.t.file.size <= self.config.min_split)

    def _activate(self, fl: FileInFlight) -> None:
        """Open a file's partial data and cut what is missing into parts (lock held)."""
        resumed = fl.t.partial.open()
        fl.started = time.monotonic()
        fl.state = "active"
        self.reporter.emit("file_start", path=fl.t.file.path, size=fl.t.file.size,
                           resumed=resumed, source=fl.t.source.name)
        self.plan_parts(fl)

    def plan_parts(self, fl: FileInFlight) -> None:
        """Cut what the file still misses into parts (lock held)."""
        size = fl.t.file.size
        step = max(self.config.min_split,
                   min(self.config.part_size, -(-size // (self.connections * 2))))
        fl.parts.clear()
        for start, end in fl.t.partial.missing():
            for s in range(start, end, step):
                fl.parts.append(Part(s, min(end, s + step), fl.gen))
        if not fl.parts and not fl.inflight:
            fl.state = "finalizing"

    def _steal(self) -> tuple[FileInFlight, Part] | None:
        """Split the largest range in flight; the idle connection takes its second half."""
        best: tuple[FileInFlight, Part] | None = None
        # Both halves get at least min_split, and the cut lands at least two blocks past
        # the range's current position, beyond any block its connection is writing now.
        floor = max(self.config.min_split, 2 * self.config.block + _ALIGN)
        best_left = 2 * floor - 1
        for fl in self.files:
            if fl.state != "active" or fl.single:
                continue
            for part in fl.inflight:
                left = part.end - part.pos
                if part.gen == fl.gen and left > best_left:
                    best, best_left = (fl, part), left
        if best is None:
            return None
        fl, part = best
        mid = part.pos + (best_left // 2) // _ALIGN * _ALIGN
        new = Part(mid, part.end, fl.gen)
        part.end = mid
        fl.inflight.add(new)
        return fl, new

    # -- what connections report ------------------------------------------------------

    def progressed(self) -> None:
        """A connection saved bytes at a useful speed (see Connection)."""
        with self.cv:
            self.last_progress = time.monotonic()
            self.quota_wait = 0.0

    def idle(self) -> float:
        """Seconds without progress by any connection, quota windows not counted."""
        with self.cv:
            return max(0.0, time.monotonic() - self.last_progress - self.quota_wait)

    def shed(self, index: int, fl: FileInFlight, part: Part) -> bool:
        """The server is busy with us: one connection fewer, if one is left besides.

        True when connection ``index`` gave its slot up (its part goes back to the queue
        for the others); False when it is the last one and should retry itself. A part
        of a one-connection file must have been restarted (:meth:`restart_single`).
        """
        with self.cv:
            if len(self.working) <= 1 or index not in self.working:
                return False
            self.cap = max(1, min(self.cap, len(self.working)) - 1)
            self.working.discard(index)
            fl.inflight.discard(part)
            if part.gen == fl.gen and part.pos < part.end and fl.state == "active":
                fl.parts.appendleft(part)
            self.cv.notify_all()
            return True

    def block_until(self, until: float, who: str) -> None:
        """The server's quota is spent: no connection sends a request before ``until``."""
        with self.cv:
            if until > self.blocked_until:
                self.quota_wait += until - max(self.blocked_until, time.monotonic())
                self.blocked_until, self.blocked_by = until, who
                self.cv.notify_all()

    def wait_unblocked(self) -> bool:
        """Wait out the quota window; True if the engine stops meanwhile."""
        while (left := self.blocked_until - time.monotonic()) > 0:
            if self.halt.wait(left):
                return True
        return self.halt.is_set()

    def current(self, fl: FileInFlight, part: Part) -> bool:
        """Whether ``part`` still has bytes to fetch for the file's current generation."""
        with self.cv:
            return part.gen == fl.gen and part.pos < part.end

    def claim(self, fl: FileInFlight, part: Part) -> tuple[int, int] | None:
        """(offset, room) where ``part``'s next bytes go; None if they must be dropped."""
        with self.cv:
            if part.gen != fl.gen or fl.state != "active":
                return None
            return part.pos, part.end - part.pos

    def advance(self, fl: FileInFlight, part: Part, n: int) -> bool:
        """Count ``n`` bytes saved at ``part.pos``; True when the part is complete."""
        with self.cv:
            if part.gen == fl.gen:
                part.pos += n
                fl.fetched += n
            self.flowed += n
            if self.flowed - self.flowed_at_checkpoint >= self.config.checkpoint_bytes:
                self.cv.notify_all()  # the main thread flushes the data to disk
            return part.pos >= part.end

    def part_done(self, fl: FileInFlight, part: Part) -> bool:
        """Retire a part; True when this connection should finalize the file."""
        with self.cv:
            fl.inflight.discard(part)
            if fl.state != "active" or fl.parts or fl.inflight:
                self.cv.notify_all()
                return False
            if fl.t.partial.covered() < fl.t.file.size:
                self.plan_parts(fl)  # a gap left by an abandoned range
                self.cv.notify_all()
                return fl.state == "finalizing"
            fl.state = "finalizing"
            return True

    def go_single(self, fl: FileInFlight, part: Part) -> None:
        """The server ignored Range: this reply is the whole file; restart from byte 0."""
        with self.cv:
            fl.single = True
            fl.gen += 1
            fl.parts.clear()
            fl.inflight = {part}
            part.gen, part.pos, part.end = fl.gen, 0, fl.t.file.size
        fl.t.partial.reset()
        self.reporter.emit("warning", path=fl.t.file.path, message=Message(
            N_("{source} ignores Range requests for {path}: downloading it on one connection "
               "from the start"), source=fl.t.source.name, path=fl.t.file.path))

    def restart_single(self, fl: FileInFlight, part: Part) -> None:
        """A one-connection file cannot resume mid-way: start it again from byte 0."""
        with self.cv:
            fl.gen += 1
            part.gen, part.pos, part.end = fl.gen, 0, fl.t.file.size
        fl.t.partial.reset()

    def file_done(self, fl: FileInFlight, result: FileResult) -> None:
        with self.cv:
            fl.state = "done"
            self.results.append(result)
            self.cv.notify_all()

    def file_failed(self, fl: FileInFlight) -> None:
        with self.cv:
            fl.state = "failed"

    def file_again(self, fl: FileInFlight) -> None:
        """Fetch the whole file again (its data was reset after a hash mismatch)."""
        with self.cv:
            fl.gen += 1
            fl.single = False
            fl.state = "active"
            self.plan_parts(fl)
            self.cv.notify_all()
