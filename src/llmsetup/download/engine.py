"""The one transfer engine: every source's files go through here.

A pool of ``connections`` threads (each with its own keep-alive HTTP connection) takes
*parts* (byte ranges) from the files in order, so one big shard gets every connection and
many small files go in parallel. When no part is left, an idle connection splits the
largest range still in flight (the tail of a file never waits on one slow connection).

The first connection starts alone; the others open as soon as it proves slower than
``fast_link`` (after ``probe_s``, or at any later moment). Mirrors that cap each
connection, and most real links, get every connection within a few hundredths of a
second; a link on which one connection already runs faster than that (a LAN, a local
mirror, loopback) keeps one, because there the CPU is the limit (every byte is received,
written and hashed) and each extra connection costs CPU: more threads, and bytes
written ahead of the hashed prefix must be read back to be hashed.

Per reply:

- a ranged request must get ``206`` with exactly the asked-for start and the listed total
  size; a wrong ``Content-Range`` is retried, never written;
- a ``200`` to a ranged request means the server ignores Range: the file restarts from
  byte 0 on that one connection (the reply is the whole file), never appended blindly;
- ``Accept-Encoding: identity``; a compressed reply is refused;
- a per-read timeout catches a dead connection, a low-speed window catches a trickle;
- retries back off (honouring ``Retry-After`` on 429/503) and the count resets whenever
  data flows; 401/403/404 stop at once.

Bytes are written in place into a :class:`~llmsetup.download.partial.PartialFile`, whose
written ranges are saved every few seconds and on any exit (Ctrl-C included), so a rerun
fetches only what is missing. A file reaches its final path by an atomic rename only
after its size and its publisher's hash match.
"""

from __future__ import annotations

import collections
import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llmsetup.download.errors import IntegrityError, SourceError
from llmsetup.download.http import (
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    RetryPolicy,
    Transient,
    check_status,
    describe_network_error,
    is_network_error,
    new_session,
)
from llmsetup.download.partial import PartialFile
from llmsetup.download.progress import NULL_REPORTER, Reporter
from llmsetup.download.sources.base import RemoteFile, Source
from llmsetup.secret import redact

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.I)
_ALIGN = 1 << 16


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
    #: Bytes/s: a connection at least this fast gets no company (see the module
    #: docstring). None opens every connection at once.
    fast_link: float | None = 256e6
    #: How long the first connection runs alone before the rate is judged.
    probe_s: float = 0.05


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
class _Part:
    pos: int
    end: int
    gen: int


@dataclass(eq=False)
class _Job:
    t: Transfer
    state: str = "new"  # new, active, finalizing, done, failed
    parts: collections.deque = field(default_factory=collections.deque)
    inflight: set = field(default_factory=set)
    single: bool = False  # the server ignores Range: one connection from byte 0
    gen: int = 0
    hash_tries: int = 0
    fetched: int = 0
    started: float = 0.0


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """(first, last, total) of ``bytes a-b/n``; total None for ``*``; None if malformed."""
    match = _CONTENT_RANGE.match(value or "")
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


class Engine:
    """Downloads a list of :class:`Transfer` over a pool of connections."""

    def __init__(self, config: EngineConfig | None = None, reporter: Reporter = NULL_REPORTER,
                 cancel: threading.Event | None = None,
                 session_factory: Callable = new_session,
                 on_done: Callable[[FileResult], None] | None = None) -> None:
        self.config = config or EngineConfig()
        self._on_done = on_done
        self.reporter = reporter
        self.cancel = cancel
        self._session_factory = session_factory
        self._cv = threading.Condition()
        self._halt = threading.Event()
        self._jobs: list[_Job] = []
        self._results: list[FileResult] = []
        self._failure: BaseException | None = None
        self._connections = 1
        self._admitted = 1  # connections allowed to work now (see the module docstring)
        self._flowed = 0  # bytes written by every connection, for the rate and checkpoints
        self._flowed_at_checkpoint = 0

    @property
    def connections_used(self) -> int:
        """How many connections were opened (after :meth:`run`)."""
        return self._admitted

    # -- the main thread --------------------------------------------------------------

    def run(self, transfers: list[Transfer], connections: int) -> list[FileResult]:
        """Fetch every transfer; raise the first failure, or KeyboardInterrupt."""
        self._jobs = [_Job(t) for t in transfers]
        self._connections = max(1, min(connections, self._part_count_hint()))
        self._admitted = 1 if self.config.fast_link is not None else self._connections
        workers = [threading.Thread(target=self._worker, args=(i,), name=f"llmsetup-dl-{i}",
                                    daemon=True) for i in range(self._connections)]
        interrupted = False
        try:
            for w in workers:
                w.start()
            self._watch()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            self._shutdown(workers)
        if interrupted or (self.cancel is not None and self.cancel.is_set()):
            raise KeyboardInterrupt
        if self._failure is not None:
            raise self._failure
        return self._results

    def _part_count_hint(self) -> int:
        """How many connections can be busy at once (no more threads than that)."""
        return sum(max(1, -(-t.file.size // self.config.min_split)) for t in
                   (j.t for j in self._jobs))

    def _watch(self) -> None:
        cfg = self.config
        last_checkpoint = last_progress = time.monotonic()
        probe = (last_checkpoint, 0, cfg.probe_s)  # since when, bytes then, how long
        while True:
            ramping = self._admitted < self._connections
            with self._cv:
                if self._failure is not None or all(j.state == "done" for j in self._jobs):
                    return
                self._cv.wait(min(cfg.progress_s, cfg.probe_s) if ramping else cfg.progress_s)
                flowed = self._flowed
            if self.cancel is not None and self.cancel.is_set():
                raise KeyboardInterrupt
            now = time.monotonic()
            if ramping and now - probe[0] >= probe[2]:
                probe = self._judge_rate(probe, now, flowed)
            if now - last_progress >= cfg.progress_s:
                self._emit_progress()
                last_progress = now
            if now - last_checkpoint >= cfg.checkpoint_s or \
                    flowed - self._flowed_at_checkpoint >= cfg.checkpoint_bytes:
                self._flowed_at_checkpoint = flowed
                self._checkpoint()
                last_checkpoint = time.monotonic()

    def _judge_rate(self, probe: tuple[float, int, float], now: float,
                    flowed: int) -> tuple[float, int, float]:
        """Open every connection if the ones working are slower than ``fast_link``."""
        since, before, _ = probe
        assert self.config.fast_link is not None
        if (flowed - before) / (now - since) < self.config.fast_link:
            with self._cv:
                self._admitted = self._connections
                self._cv.notify_all()
        # Later windows are longer: a short pause of a fast connection is no reason.
        return now, flowed, max(self.config.probe_s, self.config.progress_s)

    def _shutdown(self, workers: list[threading.Thread]) -> None:
        """Stop the connections, then save what every file has (the resume point)."""
        self._halt.set()
        with self._cv:
            self._cv.notify_all()
        deadline = time.monotonic() + 3.0
        for w in workers:
            if w.is_alive():
                w.join(max(0.0, deadline - time.monotonic()))
        self._checkpoint()
        self._emit_progress()
        # A worker still blocked in a read owns its file descriptor; closing it under
        # it could let the number be reused by another file. The process exit closes it.
        if not any(w.is_alive() for w in workers):
            for job in self._jobs:
                if job.state != "done":
                    job.t.partial.close()

    def _checkpoint(self) -> None:
        for job in self._jobs:
            if job.state in ("active", "finalizing", "failed"):
                with contextlib.suppress(OSError):
                    job.t.partial.checkpoint()

    def _emit_progress(self) -> None:
        for job in self._jobs:
            if job.state in ("active", "finalizing"):
                self.reporter.emit("progress", path=job.t.file.path, done=job.t.partial.covered(),
                                   size=job.t.file.size)

    def _fail(self, exc: BaseException) -> None:
        with self._cv:
            if self._failure is None:
                self._failure = exc
            self._halt.set()
            self._cv.notify_all()

    # -- scheduling -------------------------------------------------------------------

    def _take(self, index: int) -> tuple[_Job, _Part | None] | None:
        """The next part to fetch, or (job, None) to finalize a job, or None to stop."""
        with self._cv:
            while True:
                if self._halt.is_set():
                    return None
                if index >= self._admitted:  # not opened (yet): see _judge_rate
                    if all(j.state in ("done", "failed") for j in self._jobs):
                        return None
                    self._cv.wait(0.5)
                    continue
                busy = False
                for job in self._jobs:
                    if job.state in ("done", "failed"):
                        continue
                    busy = True
                    if job.state == "new":
                        self._activate(job)
                        if job.state == "finalizing":
                            return job, None
                    if job.state == "active" and job.parts:
                        part = job.parts.popleft()
                        job.inflight.add(part)
                        return job, part
                if not busy:
                    return None
                stolen = self._steal()
                if stolen is not None:
                    return stolen
                self._cv.wait(0.5)

    def _activate(self, job: _Job) -> None:
        """Open a file's partial data and cut what is missing into parts (lock held)."""
        resumed = job.t.partial.open()
        job.started = time.monotonic()
        job.state = "active"
        self.reporter.emit("file_start", path=job.t.file.path, size=job.t.file.size,
                           resumed=resumed, source=job.t.source.name)
        self._plan_parts(job)

    def _plan_parts(self, job: _Job) -> None:
        size = job.t.file.size
        step = max(self.config.min_split,
                   min(self.config.part_size, -(-size // (self._connections * 2))))
        job.parts.clear()
        for start, end in job.t.partial.missing():
            for s in range(start, end, step):
                job.parts.append(_Part(s, min(end, s + step), job.gen))
        if not job.parts and not job.inflight:
            job.state = "finalizing"

    def _steal(self) -> tuple[_Job, _Part] | None:
        """Split the largest range in flight; the idle connection takes its second half."""
        best: tuple[_Job, _Part] | None = None
        # Both halves get at least min_split, and the cut lands at least two blocks past
        # the range's current position, beyond any block its connection is writing now.
        floor = max(self.config.min_split, 2 * self.config.block + _ALIGN)
        best_left = 2 * floor - 1
        for job in self._jobs:
            if job.state != "active" or job.single:
                continue
            for part in job.inflight:
                left = part.end - part.pos
                if part.gen == job.gen and left > best_left:
                    best, best_left = (job, part), left
        if best is None:
            return None
        job, part = best
        mid = part.pos + (best_left // 2) // _ALIGN * _ALIGN
        new = _Part(mid, part.end, job.gen)
        part.end = mid
        job.inflight.add(new)
        return job, new

    def _part_done(self, job: _Job, part: _Part) -> bool:
        """Retire a part; True when this connection should finalize the file."""
        with self._cv:
            job.inflight.discard(part)
            if job.state != "active" or job.parts or job.inflight:
                self._cv.notify_all()
                return False
            if job.t.partial.covered() < job.t.file.size:
                self._plan_parts(job)  # a gap left by an abandoned range
                self._cv.notify_all()
                return job.state == "finalizing"
            job.state = "finalizing"
            return True

    # -- a connection -----------------------------------------------------------------

    def _worker(self, index: int) -> None:
        session = self._session_factory()
        try:
            while (work := self._take(index)) is not None:
                job, part = work
                if part is None or self._run_part(session, job, part):
                    self._finalize(job)
        except BaseException as exc:  # a bug or a disk error: stop everything, report it
            self._fail(exc)
        finally:
            session.close()

    def _run_part(self, session, job: _Job, part: _Part) -> bool:
        """Fetch one part, retrying; True when the file is complete and ours to finalize."""
        policy = self.config.retry
        failures = 0
        while not self._halt.is_set():
            with self._cv:
                if part.gen != job.gen or part.pos >= part.end:
                    break
            flowed = 0
            try:
                with contextlib.closing(self._open(session, job, part)) as resp:
                    reply_end = resp.llmsetup_end
                    flowed = self._stream(job, part, resp)
                with self._cv:
                    if part.gen != job.gen or part.pos >= part.end:
                        break
                    if part.pos == reply_end and flowed:
                        continue  # a server that sends shorter ranges than asked: go on
                raise Transient(f"the connection closed at byte {part.pos:,} of "
                                f"{job.t.file.size:,}")
            except Transient as exc:
                err = exc
            except SourceError as exc:
                self._fail(exc)
                return False
            except Exception as exc:
                if not is_network_error(exc):
                    raise
                err = Transient(describe_network_error(exc))
            failures = 1 if flowed >= 64 << 10 else failures + 1
            if err.retry_after is not None and err.retry_after > policy.max_retry_after_s:
                self._fail(SourceError(job.t.source.name, f"{job.t.file.path}: {err}; the "
                                       f"server asks to wait {err.retry_after:.0f}s",
                                       hint="Try another source (--source), or rerun later."))
                return False
            if failures >= policy.attempts:
                self._fail(SourceError(job.t.source.name, f"{job.t.file.path}: {err} (gave up "
                                       f"after {failures} tries without progress)",
                                       hint="Rerun later: it resumes where it stopped. Or "
                                       "try another source (--source)."))
                return False
            delay = policy.delay(failures, err.retry_after)
            self.reporter.emit("retry", path=job.t.file.path, attempt=failures,
                               reason=redact(str(err)), delay=round(delay, 2))
            if job.single:
                self._restart_single(job, part)
            if self._halt.wait(delay):
                return False
        if self._halt.is_set():
            return False
        return self._part_done(job, part)

    def _open(self, session, job: _Job, part: _Part):
        """Send the request for ``part`` and check the reply's status and headers."""
        t = job.t
        url, headers = t.source.url_and_headers(t.file)
        headers = dict(headers)
        if not job.single:
            headers["Range"] = f"bytes={part.pos}-{part.end - 1}"
        resp = session.get(url, headers=headers, stream=True,
                           timeout=(self.config.connect_timeout_s, self.config.read_timeout_s))
        try:
            resp.llmsetup_end = self._check_reply(resp, job, part)
        except BaseException:
            resp.close()
            raise
        return resp

    def _check_reply(self, resp, job: _Job, part: _Part) -> int:
        """Raise for a reply we must not write; else the offset its body ends at."""
        t, size = job.t, job.t.file.size
        check_status(resp, t.source.name, t.file.path, t.source.denied_hint,
                     t.source.missing_hint)
        encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise SourceError(t.source.name, f"{t.file.path}: the server compressed the reply "
                              f"({encoding}) although we asked for identity")
        if resp.status_code == 206:
            got = parse_content_range(resp.headers.get("Content-Range"))
            if got is None or got[0] != part.pos or got[1] < got[0] or \
                    (got[2] is not None and got[2] != size):
                raise Transient(f"wrong Content-Range {resp.headers.get('Content-Range')!r} "
                                f"for bytes {part.pos}-{part.end - 1}/{size}")
            return got[1] + 1
        if resp.status_code != 200:
            raise SourceError(t.source.name, f"{t.file.path}: unexpected HTTP "
                              f"{resp.status_code}")
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) != size:
            raise Transient(f"the server sends {int(length):,} bytes for {t.file.path}, "
                            f"the listing says {size:,}")
        if not job.single and (part.pos != 0 or part.end != size):
            self._go_single(job, part)
        return size

    def _go_single(self, job: _Job, part: _Part) -> None:
        """The server ignored Range: this reply is the whole file; restart from byte 0."""
        with self._cv:
            job.single = True
            job.gen += 1
            job.parts.clear()
            job.inflight = {part}
            part.gen, part.pos, part.end = job.gen, 0, job.t.file.size
        job.t.partial.reset()
        self.reporter.emit("warning", path=job.t.file.path, message=(
            f"{job.t.source.name} ignores Range requests for {job.t.file.path}: "
            "downloading it on one connection from the start"))

    def _restart_single(self, job: _Job, part: _Part) -> None:
        with self._cv:
            job.gen += 1
            part.gen, part.pos, part.end = job.gen, 0, job.t.file.size
        job.t.partial.reset()

    def _stream(self, job: _Job, part: _Part, resp) -> int:
        """Copy the reply body into the file at ``part.pos``; returns bytes kept.

        Chunks are gathered in a list (not copied into one buffer) and written with one
        ``pwritev`` per block: a byte is copied once from the socket and once into the
        page cache, as curl does.
        """
        raw = resp.raw
        read = getattr(raw, "read1", None) or raw.read
        cfg = self.config
        chunks: list[bytes] = []
        pending = kept = 0
        window_start, window_bytes = time.monotonic(), 0
        try:
            while True:
                chunk = read(cfg.block, decode_content=False)
                if not chunk:
                    return kept
                chunks.append(chunk)
                pending += len(chunk)
                window_bytes += len(chunk)
                # (pwritev takes at most IOV_MAX buffers: flush before that many)
                if pending >= cfg.block or len(chunks) >= 256 or self._halt.is_set():
                    n, finished = self._flush(job, part, chunks)
                    kept += n
                    pending = 0
                    if finished or self._halt.is_set():
                        return kept
                elapsed = time.monotonic() - window_start
                if elapsed >= cfg.stall_window_s:
                    if window_bytes < cfg.min_speed * elapsed:
                        raise Transient(f"stalled: {window_bytes:,} bytes in {elapsed:.1f}s")
                    window_start, window_bytes = time.monotonic(), 0
        finally:
            # Bytes that arrived before an error or a stop are good bytes: keep them.
            if chunks:
                kept += self._flush(job, part, chunks)[0]

    def _flush(self, job: _Job, part: _Part, chunks: list[bytes]) -> tuple[int, bool]:
        """Write ``chunks`` at ``part.pos`` (clipped to the part); returns (kept, finished)."""
        with self._cv:
            if part.gen != job.gen or job.state != "active":
                chunks.clear()
                return 0, True
            offset, room = part.pos, part.end - part.pos
        views, n = [], 0
        for chunk in chunks:
            if n >= room:
                break
            view = memoryview(chunk)[:room - n]
            views.append(view)
            n += len(view)
        chunks.clear()
        if n > 0:
            job.t.partial.write(offset, views)
            job.t.partial.record(offset, views)
        with self._cv:
            if part.gen == job.gen:
                part.pos += n
                job.fetched += n
            self._flowed += n
            if self._flowed - self._flowed_at_checkpoint >= self.config.checkpoint_bytes:
                self._cv.notify_all()  # the main thread flushes the data to disk
            return n, part.pos >= part.end

    # -- finishing a file -------------------------------------------------------------

    def _finalize(self, job: _Job) -> None:
        t = job.t
        sha256, git_sha1 = t.partial.digests()
        expected = t.file.verifiable
        ok = {"sha256": sha256 == (t.file.sha256 or "").lower(),
              "git-sha1": git_sha1 == (t.file.git_oid or "").lower(),
              "size": True}[expected]
        if not ok and t.file.hash_from and t.file.accept_by_size:
            self.reporter.emit("warning", message=f"{t.file.path} differs from "
                               f"{t.file.hash_from}: {t.source.name}'s copy accepted by its "
                               "size (--accept-mirror-copy)")
            ok, expected = True, "size"
        if ok:
            t.partial.commit(t.final)
            result = FileResult(t.file.path, t.file.size, sha256, expected, t.source.name,
                                t.source.revision, job.fetched, time.monotonic() - job.started,
                                git_oid=t.file.git_oid if expected == "git-sha1" else None)
            if self._on_done is not None:
                self._on_done(result)
            with self._cv:
                job.state = "done"
                self._results.append(result)
                self._cv.notify_all()
            self.reporter.emit("file_done", path=t.file.path, size=t.file.size, sha256=sha256,
                               verified_by=expected, source=t.source.name,
                               fetched=job.fetched, seconds=round(result.seconds, 3))
            return
        job.hash_tries += 1
        got = sha256 if expected == "sha256" else git_sha1
        want = t.file.sha256 if expected == "sha256" else t.file.git_oid
        if t.file.hash_from:  # a hash the source never promised: never a second download
            with self._cv:
                job.state = "failed"
            self._fail(IntegrityError(
                t.source.name, f"{t.file.path} differs from {t.file.hash_from} ({expected} "
                f"{want} there, {got} here): {t.source.name}'s copy may be older",
                hint=f"Accept {t.source.name}'s copy by its size with --accept-mirror-copy "
                "(it is kept: no second download), or use another source (--source)."))
            return
        if job.hash_tries >= self.config.hash_attempts:
            t.partial.discard()
            with self._cv:
                job.state = "failed"
            self._fail(IntegrityError(
                t.source.name, f"{t.file.path}: {expected} mismatch after {job.hash_tries} "
                f"downloads (expected {want}, got {got}); nothing was written to "
                f"{t.final.name}",
                hint="The source serves damaged or changed data; try another source "
                "(--source) or rerun later."))
            return
        self.reporter.emit("retry", path=t.file.path, attempt=job.hash_tries,
                           reason=f"{expected} mismatch (expected {want}, got {got})", delay=0)
        t.partial.reset()
        with self._cv:
            job.gen += 1
            job.single = False
            job.state = "active"
            self._plan_parts(job)
            self._cv.notify_all()
