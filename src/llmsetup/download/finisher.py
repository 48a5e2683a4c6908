"""The last step of a file: its hash against the publisher's, then the atomic rename."""

from __future__ import annotations

import time
from collections.abc import Callable

from llmsetup.download.engine_config import EngineConfig
from llmsetup.download.errors import IntegrityError
from llmsetup.download.messages import Message
from llmsetup.download.progress import Reporter
from llmsetup.download.scheduler import Scheduler
from llmsetup.download.transfer import FileInFlight, FileResult
from llmsetup.i18n import N_


class Finisher:
    """Verifies a file whose every byte is written; commits it, or fetches it again."""

    def __init__(self, scheduler: Scheduler, config: EngineConfig, reporter: Reporter,
                 on_done: Callable[[FileResult], None] | None = None) -> None:
        self.sched = scheduler
        self.config = config
        self.reporter = reporter
        self.on_done = on_done

    def __call__(self, fl: FileInFlight) -> None:
        t = fl.t
        sha256, git_sha1 = t.partial.digests()
        expected = t.file.verifiable
        ok = {"sha256": sha256 == (t.file.sha256 or "").lower(),
              "git-sha1": git_sha1 == (t.file.git_oid or "").lower(),
              "size": True}[expected]
        if not ok and t.file.hash_from and t.file.accept_by_size:
            self.reporter.emit("warning", message=Message(
                N_("{path} differs from {hash_from}: {source}'s copy accepted by its size "
                   "(--accept-mirror-copy)"), path=t.file.path, hash_from=t.file.hash_from,
                source=t.source.name))
            ok, expected = True, "size"
        if ok:
            self._commit(fl, sha256, expected)
            return
        fl.hash_tries += 1
        got = sha256 if expected == "sha256" else git_sha1
        want = t.file.sha256 if expected == "sha256" else t.file.git_oid
        if t.file.hash_from:  # a hash the source never promised: never a second download
            self.sched.file_failed(fl)  # the bytes stay for --accept-mirror-copy
            self.sched.fail(IntegrityError(t.source.name, Message(
                N_("{path} differs from {hash_from} ({kind} {want} there, {got} here): "
                   "{source}'s copy may be older"), path=t.file.path,
                hash_from=t.file.hash_from, kind=expected, want=want, got=got,
                source=t.source.name), hint=Message(
                N_("Accept {source}'s copy by its size with --accept-mirror-copy (it is kept: "
                   "no second download), or use another source (--source)."),
                source=t.source.name)))
            return
        if fl.hash_tries >= self.config.hash_attempts:
            t.partial.discard()
            self.sched.file_failed(fl)
            self.sched.fail(IntegrityError(t.source.name, Message(
                N_("{path}: {kind} mismatch after {tries} downloads (expected {want}, got "
                   "{got}); nothing was written to {name}"), path=t.file.path, kind=expected,
                tries=fl.hash_tries, want=want, got=got, name=t.final.name), hint=Message(
                N_("The source serves damaged or changed data; try another source (--source) "
                   "or rerun later."))))
            return
        self.reporter.emit("retry", path=t.file.path, attempt=fl.hash_tries,
                           reason=Message(N_("{kind} mismatch (expected {want}, got {got})"),
                                          kind=expected, want=want, got=got), delay=0)
        t.partial.reset()
        self.sched.file_again(fl)

    def _commit(self, fl: FileInFlight, sha256: str, expected: str) -> None:
        t = fl.t
        t.partial.commit(t.final)
        result = FileResult(t.file.path, t.file.size, sha256, expected, t.source.name,
                            t.source.revision, fl.fetched, time.monotonic() - fl.started,
                            git_oid=t.file.git_oid if expected == "git-sha1" else None)
        if self.on_done is not None:
            self.on_done(result)
        self.sched.file_done(fl, result)
        self.reporter.emit("file_done", path=t.file.path, size=t.file.size, sha256=sha256,
                           verified_by=expected, source=t.source.name,
                           fetched=fl.fetched, seconds=round(result.seconds, 3))
