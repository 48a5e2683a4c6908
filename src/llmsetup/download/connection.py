"""One connection of the engine: ranged requests, their replies checked, bytes saved.

Per reply:

- a ranged request must get ``206`` with exactly the asked-for start and the listed total
  size; a wrong ``Content-Range`` is retried, never written;
- a ``200`` to a ranged request means the server ignores Range: the file restarts from
  byte 0 on that one connection (the reply is the whole file), never appended blindly;
- ``Accept-Encoding: identity``; a compressed reply is refused;
- a per-read timeout catches a dead connection, a low-speed window catches a trickle;
- retries back off (honouring ``Retry-After`` on 429/503, and the ``RateLimit`` reset of a
  spent quota, for every connection at once); any byte saved at a useful speed resets the
  count; a source fails only when no connection progressed for the stall window;
  401/403/404 stop at once (from a kept CDN link they mean it expired: see link.py).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable

from llmsetup.download.engine_config import EngineConfig
from llmsetup.download.errors import SourceError
from llmsetup.download.http import (
    TooSlow,
    Transient,
    check_status,
    describe_network_error,
    is_network_error,
    within_deadline,
)
from llmsetup.download.messages import Message, redacted, text_of
from llmsetup.download.progress import Reporter
from llmsetup.download.scheduler import Scheduler
from llmsetup.download.transfer import FileInFlight, Part
from llmsetup.i18n import N_

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.I)


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """(first, last, total) of ``bytes a-b/n``; total None for ``*``; None if malformed."""
    match = _CONTENT_RANGE.match(value or "")
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


_ANOTHER_SOURCE_OR_LATER = N_("Try another source (--source), or rerun later.")


def _stalled(got: int, seconds: float) -> Message:
    """A reply under the low-speed floor (made off the hot loop of :meth:`_stream`)."""
    return Message(N_("stalled: {got:,} bytes in {seconds:.1f}s"), got=got, seconds=seconds)


class Connection:
    """A thread's worth of work: take parts from the scheduler and fetch them."""

    def __init__(self, index: int, scheduler: Scheduler, finish: Callable[[FileInFlight], None],
                 session_factory: Callable, config: EngineConfig, reporter: Reporter) -> None:
        self.index = index
        self.sched = scheduler
        self.finish = finish
        self.session_factory = session_factory
        self.config = config
        self.reporter = reporter

    def run(self) -> None:
        """The thread's body: work until there is nothing left or the engine stops."""
        session = self.session_factory()
        try:
            while (work := self.sched.take(self.index)) is not None:
                fl, part = work
                if part is None or self._fetch(session, fl, part):
                    self.finish(fl)
        except BaseException as exc:  # a bug or a disk error: stop everything, report it
            self.sched.fail(exc)
        finally:
            session.close()

    def _fetch(self, session, fl: FileInFlight, part: Part) -> bool:
        """Fetch one part, retrying; True when the file is complete and ours to finalize.

        Any bytes saved at a useful speed are progress. A connection gives up only when
        it failed ``retry.attempts`` times in a row *and* no connection progressed for
        ``stall_window_s``; the server being busy with us sheds this connection instead,
        and a spent quota makes every connection wait for its reset.
        """
        halt = self.sched.halt
        failures = 0
        while not halt.is_set():
            if not self.sched.current(fl, part) or self.sched.wait_unblocked():
                break
            flowed = 0
            try:
                with contextlib.closing(self._open(session, fl, part)) as resp:
                    reply_end = resp.llmsetup_end
                    flowed = self._stream(fl, part, resp)
                with self.sched.cv:
                    if part.gen != fl.gen or part.pos >= part.end:
                        break
                    if part.pos == reply_end and flowed:
                        continue  # a server that sends shorter ranges than asked: go on
                raise Transient(Message(N_("the connection closed at byte {pos:,} of {size:,}"),
                                        pos=part.pos, size=fl.t.file.size))
            except Transient as exc:
                err = exc
            except SourceError as exc:
                self.sched.fail(exc)
                return False
            except Exception as exc:
                if not is_network_error(exc):
                    raise
                err = Transient(describe_network_error(exc))
            if halt.is_set():
                return False  # stopping (Ctrl-C, another failure): no retry to announce
            if flowed and not err.stalled:
                self.sched.progressed()
                failures = 0
            if not err.quota:  # inside the server's quota window nothing has failed
                failures += 1
            outcome = self._after_failure(fl, part, err, failures)
            if outcome is not None:
                return outcome
        if halt.is_set():
            return False
        return self.sched.part_done(fl, part)

    def _after_failure(self, fl: FileInFlight, part: Part, err: Transient,
                       failures: int) -> bool | None:
        """Wait before the next try; None to retry, else what :meth:`_fetch` returns."""
        policy, t = self.config.retry, fl.t
        wait = err.retry_after
        if wait is not None and wait > policy.max_retry_after_s:
            self.sched.fail(SourceError(t.source.name, Message(
                N_("{path}: {error}; the server asks to wait {seconds:.0f}s"), path=t.file.path,
                error=text_of(err), seconds=wait), hint=Message(_ANOTHER_SOURCE_OR_LATER)))
            return False
        if err.quota and wait is not None:
            # Not a failure: the server said when to come back. The main thread shows the
            # countdown; every connection waits. Window after window without progress
            # ends where one long window would.
            if self.sched.quota_wait + wait > policy.max_retry_after_s:
                self.sched.fail(SourceError(t.source.name, Message(
                    N_("{path}: {error}; the server's quota windows have kept us waiting "
                       "{seconds:.0f}s without progress"), path=t.file.path,
                    error=text_of(err), seconds=self.sched.quota_wait + wait),
                    hint=Message(_ANOTHER_SOURCE_OR_LATER)))
                return False
            self.sched.block_until(time.monotonic() + wait, t.source.name)
            return None
        idle = self.sched.idle()
        if failures >= policy.attempts and idle >= self.config.stall_window_s:
            self.sched.fail(SourceError(t.source.name, Message(
                N_("{path}: {error} (no progress for {idle:.0f}s; gave up after {tries} "
                   "tries)"), path=t.file.path, error=text_of(err), idle=idle, tries=failures),
                hint=Message(N_("Rerun later: it resumes where it stopped. Or try another "
                                "source (--source)."))))
            return False
        delay = policy.delay(failures, wait)
        self.reporter.emit("retry", path=t.file.path, attempt=failures,
                           reason=redacted(text_of(err)), delay=round(delay, 2))
        if fl.single:
            self.sched.restart_single(fl, part)
        if err.busy and self.sched.shed(self.index, fl, part):
            self.sched.halt.wait(delay)
            return False  # back to the scheduler, which parks this connection
        if self.sched.halt.wait(delay):
            return False
        return None

    def _open(self, session, fl: FileInFlight, part: Part):
        """Send the request for ``part`` and check the reply's status and headers."""
        cfg = self.config
        url, headers, resolving, final = fl.link.target(cfg.connect_timeout_s +
                                                        cfg.read_timeout_s)
        if not fl.single:
            headers["Range"] = f"bytes={part.pos}-{part.end - 1}"
        # The reply's headers within a deadline: a server trickling them passes every
        # per-read timeout (the body has the low-speed window).
        limit = cfg.connect_timeout_s + 2 * cfg.read_timeout_s
        try:
            resp = within_deadline(time.monotonic() + limit, None, lambda: session.get(
                url, headers=headers, stream=True,
                timeout=(cfg.connect_timeout_s, cfg.read_timeout_s)))
        except TooSlow:
            if resolving:
                fl.link.resolved(None)
            raise Transient(Message(N_("{path}: no reply headers within {limit:.0f}s"),
                                    path=fl.t.file.path, limit=limit)) from None
        except BaseException:
            if resolving:
                fl.link.resolved(None)
            raise
        if resolving:
            fl.link.resolved(resp)
        try:
            if final and resp.status_code in (401, 403, 404, 410):
                fl.link.expired(url)
                raise Transient(Message(N_("the download link of {path} expired (HTTP {code}); "
                                           "resolving it again"), path=fl.t.file.path,
                                        code=resp.status_code))
            resp.llmsetup_end = self._check_reply(resp, fl, part)
        except BaseException:
            resp.close()
            raise
        return resp

    def _check_reply(self, resp, fl: FileInFlight, part: Part) -> int:
        """Raise for a reply we must not write; else the offset its body ends at."""
        t, size = fl.t, fl.t.file.size
        check_status(resp, t.source.name, t.file.path, t.source.denied_hint,
                     t.source.missing_hint)
        encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise SourceError(t.source.name, Message(
                N_("{path}: the server compressed the reply ({encoding}) although we asked for "
                   "identity"), path=t.file.path, encoding=encoding))
        if resp.status_code == 206:
            got = parse_content_range(resp.headers.get("Content-Range"))
            if got is None or got[0] != part.pos or got[1] < got[0] or \
                    (got[2] is not None and got[2] != size):
                raise Transient(Message(
                    N_("wrong Content-Range {got} for bytes {first}-{last}/{size}"),
                    got=repr(resp.headers.get("Content-Range")), first=part.pos,
                    last=part.end - 1, size=size))
            return got[1] + 1
        if resp.status_code != 200:
            raise SourceError(t.source.name, Message(N_("{path}: unexpected HTTP {code}"),
                                                     path=t.file.path, code=resp.status_code))
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) != size:
            raise Transient(Message(N_("the server sends {got:,} bytes for {path}, the listing "
                                       "says {size:,}"), got=int(length), path=t.file.path,
                                    size=size))
        if not fl.single and (part.pos != 0 or part.end != size):
            self.sched.go_single(fl, part)
        return size

    def _stream(self, fl: FileInFlight, part: Part, resp) -> int:
        """Copy the reply body into the file at ``part.pos``; returns bytes kept.

        Chunks are gathered in a list (not copied into one buffer) and written with one
        ``pwritev`` per block: a byte is copied once from the socket and once into the
        page cache, as curl does.
        """
        raw = resp.raw
        read = getattr(raw, "read1", None) or raw.read
        cfg = self.config
        halt = self.sched.halt
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
                if pending >= cfg.block or len(chunks) >= 256 or halt.is_set():
                    n, finished = self._save(fl, part, chunks)
                    kept += n
                    pending = 0
                    if finished or halt.is_set():
                        return kept
                    elapsed = time.monotonic() - window_start
                    if window_bytes >= cfg.min_speed * elapsed:
                        self.sched.progressed()  # on pace: saved bytes are progress
                elapsed = time.monotonic() - window_start
                if elapsed >= cfg.stall_window_s:
                    if window_bytes < cfg.min_speed * elapsed:
                        raise Transient(_stalled(window_bytes, elapsed), stalled=True)
                    window_start, window_bytes = time.monotonic(), 0
        finally:
            # Bytes that arrived before an error or a stop are good bytes: keep them.
            if chunks:
                kept += self._save(fl, part, chunks)[0]

    def _save(self, fl: FileInFlight, part: Part, chunks: list[bytes]) -> tuple[int, bool]:
        """Write ``chunks`` at ``part.pos`` (clipped to the part); returns (kept, finished)."""
        claimed = self.sched.claim(fl, part)
        if claimed is None:
            chunks.clear()
            return 0, True
        offset, room = claimed
        views, n = [], 0
        for chunk in chunks:
            if n >= room:
                break
            view = memoryview(chunk)[:room - n]
            views.append(view)
            n += len(view)
        chunks.clear()
        if n > 0:
            fl.t.partial.write(offset, views)
            fl.t.partial.record(offset, views)
        return n, self.sched.advance(fl, part, n)
