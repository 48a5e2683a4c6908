"""The running hashes of a file whose bytes arrive out of order, on a thread of their own.

A sha256 can only take bytes in file order, at one byte after the other. The connections
write wherever their ranges are; the :class:`Hasher` follows the *prefix*, the bytes from
0 that are all written:

- a connection that writes exactly at the end of what the hasher has (hashed or queued)
  hands its buffers over in memory (:meth:`Hasher.offer`): no second read;
- bytes written ahead of the prefix by other connections are read back from the file
  (the page cache: they were written moments ago) when the prefix reaches them.

The hashing runs on its own thread, so on a fast link the sha256 (about 2 GB/s per core
with SHA extensions, 0.4 GB/s without) runs on another core while the connections
receive and write: one stream, received by one thread and hashed by another, is
faster than one thread doing both. The queue of handed-over buffers is bounded: a
connection that is faster than the hash waits for it (the hash is the limit then, and
more memory would not help). A connection never waits on a read-back, which may be slow
(a resumed file on a cold disk): its bytes are then read back later instead.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

from llmsetup.i18n import _

#: Read back at most this much at a time (bounded memory, and the queue keeps moving).
READ_BACK = 4 << 20
#: Bytes handed over in memory and not yet hashed, at most.
QUEUE_BUDGET = 16 << 20


class Hasher:
    """sha256 (and, if asked, the git blob sha1) of one file of ``size`` bytes.

    ``read(offset, n)`` returns written bytes of the file; ``written_until(offset)`` the
    end of the written run that contains ``offset`` (``offset`` itself if none). Both
    are called from the hashing thread; ``written_until`` may take the caller's lock, so
    the caller must never call into the hasher while holding it.
    """

    def __init__(self, size: int, git: bool, read: Callable[[int, int], bytes],
                 written_until: Callable[[int], int]) -> None:
        self.size = size
        self._want_git = git
        self._read = read
        self._written_until = written_until
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._gen = 0
        self._restart()

    def _restart(self) -> None:
        """Forget every byte (lock held, or before the thread exists)."""
        self._gen += 1
        self.pos = 0  # hashed up to here
        self._frontier = 0  # hashed, queued or being read back up to here
        self._queue: collections.deque = collections.deque()
        self._queued = 0
        self._sha256 = hashlib.sha256()
        self._git = hashlib.sha1(b"blob %d\0" % self.size) if self._want_git else None

    # -- the connections' side ------------------------------------------------------

    def start(self) -> None:
        """Start the hashing thread (it reads back whatever is already written)."""
        with self._cv:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="llmsetup-hash",
                                                daemon=True)
                self._thread.start()

    def offer(self, offset: int, buffers: list, length: int) -> bool:
        """Bytes just written at ``offset``: hash them from memory if they extend the
        prefix (else they are read back once recorded, when the prefix gets there).

        ``buffers`` must not change afterwards (``bytes`` or views of them). Returns
        whether they were taken.
        """
        with self._cv:
            gen = self._gen
            while (offset == self._frontier and self._queued >= QUEUE_BUDGET
                   and gen == self._gen and not self._closed and self._error is None):
                self._cv.wait()
            if offset == self._frontier and gen == self._gen and not self._closed \
                    and self._error is None:
                self._queue.append((offset, buffers, length))
                self._queued += length
                self._frontier += length
                self._cv.notify_all()
                return True
            return False

    def wake(self) -> None:
        """More bytes are recorded as written: read them back if the prefix is there."""
        with self._cv:
            self._cv.notify_all()

    def reset(self) -> None:
        """Start over from byte 0 (the file's data was thrown away)."""
        with self._cv:
            self._restart()
            self._error = None
            self._cv.notify_all()

    def digests(self) -> tuple[str, str | None]:
        """Wait until every byte is hashed; (sha256, git blob sha1 or None) as hex.

        The caller makes sure every byte is written first, else this would wait for ever.
        """
        self.start()
        with self._cv:
            while self.pos < self.size and self._error is None and not self._closed:
                self._cv.wait()
            if self._error is not None:
                raise self._error
            if self.pos < self.size:
                raise OSError(_("the file was closed before it was hashed"))
            return self._sha256.hexdigest(), (self._git.hexdigest() if self._git else None)

    def close(self) -> None:
        """Stop the thread (before the file it reads is closed)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # -- the hashing thread ---------------------------------------------------------

    def _next(self) -> tuple[int, int, int, list | None, object, object] | None:
        """The next work under the lock: (gen, offset, length, buffers or None to read
        back, sha256, git); None when closed."""
        with self._cv:
            while not self._closed:
                if self._queue:
                    offset, buffers, length = self._queue.popleft()
                    self._queued -= length
                    self._cv.notify_all()  # room for a waiting connection
                    return self._gen, offset, length, buffers, self._sha256, self._git
                if self._error is None and self._frontier < self.size:
                    end = self._written_until(self._frontier)
                    if end > self._frontier:
                        offset, length = self._frontier, min(end - self._frontier, READ_BACK)
                        self._frontier += length
                        return self._gen, offset, length, None, self._sha256, self._git
                self._cv.wait()
            return None

    def _run(self) -> None:
        while (work := self._next()) is not None:
            gen, offset, length, buffers, sha256, git = work
            try:
                if buffers is None:
                    buffers = [self._read(offset, length)]
                    if len(buffers[0]) != length:
                        raise OSError(_("read {got} of {length} written bytes at {offset}: "
                                        "the file is shorter than its records").format(
                                            got=len(buffers[0]), length=length, offset=offset))
                for buf in buffers:
                    sha256.update(buf)
                    if git is not None:
                        git.update(buf)
            except BaseException as exc:  # a read error: digests() reports it
                with self._cv:
                    if gen == self._gen:
                        self._error = exc
                        self._cv.notify_all()
                continue
            with self._cv:
                if gen == self._gen:  # else a reset came meanwhile: these bytes are stale
                    self.pos = offset + length
                    self._cv.notify_all()


def file_hashes(path: Path, want_git: bool = False) -> tuple[str, str | None]:
    """(sha256, git blob sha1) of a file on disk, read once."""
    sha = hashlib.sha256()
    size = path.stat().st_size
    git = hashlib.sha1(b"blob %d\0" % size) if want_git else None
    with path.open("rb") as fh:
        while chunk := fh.read(8 << 20):
            sha.update(chunk)
            if git is not None:
                git.update(chunk)
    return sha.hexdigest(), (git.hexdigest() if git else None)
