"""A file being downloaded: its data on disk, which byte ranges are there, and its hash.

Layout, in ``<model dir>/.llmsetup/partial/`` (same file system as the final path, so the
last step is an atomic rename):

- ``<path-id>-<key>.part``: the data, written in place at each range's offset;
- ``<path-id>-<key>.json``: which ranges of it are written (rewritten atomically).

The key names the *content*: (path, size, sha256) when the publisher gave a sha256, so a
download that a mirror started can be finished by another source; (source, revision,
path, size) when there is no hash, because then nothing proves two sources agree.
A changed remote gives a new key, and the old partial of that path is removed.

Hashing happens while the data arrives, on a thread of its own
(:class:`~llmsetup.download.hasher.Hasher`): the bytes that extend the contiguous prefix
are handed over from memory as they are written; bytes written ahead of the prefix (by
the other connections) are read back when the prefix reaches them, seconds later, from
the page cache. So there is no second pass over a finished file, memory stays bounded,
and on a fast link the sha256 runs on another core while the connections receive.

Each checkpoint first flushes the data to disk (fdatasync), then writes the state: the
state never claims bytes a power cut could lose, and the disk writes the data while the
download runs, so the fsync before the final rename has little left to do.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import threading
from pathlib import Path

from llmsetup.download.hasher import Hasher
from llmsetup.fileio import write_json_atomic
from llmsetup.i18n import _

_RACY_NS = 2_000_000_000


def content_key(path: str, size: int, sha256: str | None, identity: str) -> str:
    """The partial-file key of one remote file (see the module docstring)."""
    basis = f"sha256:{sha256}:{size}:{path}" if sha256 else f"{identity}:{size}:{path}"
    return hashlib.sha256(basis.encode()).hexdigest()[:24]


def path_id(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:12]


class RangeSet:
    """Sorted, merged, half-open byte ranges ``[start, end)``."""

    def __init__(self, ranges: list[list[int]] | None = None) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges or []:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        i = bisect.bisect_left(self._ends, start)  # first range that ends at or after start
        j = bisect.bisect_right(self._starts, end)  # ranges from i to j-1 touch [start, end)
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def covered(self) -> int:
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def run_end(self, pos: int) -> int:
        """End of the range that contains ``pos`` (or starts at it); ``pos`` if none."""
        i = bisect.bisect_right(self._starts, pos) - 1
        if i >= 0 and self._ends[i] > pos:
            return self._ends[i]
        return pos

    def missing(self, size: int) -> list[tuple[int, int]]:
        gaps, pos = [], 0
        for s, e in zip(self._starts, self._ends, strict=True):
            if s > pos:
                gaps.append((pos, min(s, size)))
            pos = max(pos, e)
        if pos < size:
            gaps.append((pos, size))
        return [(s, e) for s, e in gaps if e > s]

    def as_list(self) -> list[list[int]]:
        return [[s, e] for s, e in zip(self._starts, self._ends, strict=True)]

    def max_end(self) -> int:
        return self._ends[-1] if self._ends else 0


def _pwrite(fd: int, buffers: list, offset: int, lock: threading.Lock) -> None:
    """Write ``buffers`` back to back at ``offset`` (one pwritev where there is one)."""
    views = [memoryview(b) for b in buffers]
    if hasattr(os, "pwritev"):
        while views:
            written = os.pwritev(fd, views, offset)
            offset += written
            while views and written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            if views and written:
                views[0] = views[0][written:]
    else:  # Windows has neither pwrite nor pwritev: seek and write under a lock.
        with lock:
            os.lseek(fd, offset, os.SEEK_SET)
            for view in views:
                while view:
                    view = view[os.write(fd, view):]


def _pread(fd: int, size: int, offset: int, lock: threading.Lock) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    with lock:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, size)


class PartialFile:
    """The data, the written ranges and the running hashes of one file in flight.

    Thread-safe: connections call :meth:`write` (no lock held) and then :meth:`record`.
    Lock order: the hasher's lock may take :attr:`lock`, never the other way round.
    """

    def __init__(self, folder: Path, path: str, key: str, size: int,
                 git_oid: str | None = None) -> None:
        self.folder = folder
        self.path = path
        self.key = key
        self.size = size
        self.data_path = folder / f"{path_id(path)}-{key}.part"
        self.state_path = folder / f"{path_id(path)}-{key}.json"
        self.lock = threading.Lock()
        self._io_lock = threading.Lock()
        # Serialises state-file writes with reset/commit/discard, so that a checkpoint
        # taken just before a reset can never be written after it.
        self._state_lock = threading.Lock()
        self.fd: int | None = None
        self.ranges = RangeSet()
        self._dirty = False
        self._want_git = git_oid is not None
        self._hasher = Hasher(size, self._want_git, self._read_back, self._written_until)

    def _read_back(self, offset: int, length: int) -> bytes:
        assert self.fd is not None
        return _pread(self.fd, length, offset, self._io_lock)

    def _written_until(self, offset: int) -> int:
        with self.lock:
            return self.ranges.run_end(offset)

    # -- opening and resuming -------------------------------------------------------

    def saved_bytes(self) -> int:
        """Bytes a previous run left (without opening anything): for the disk check."""
        ranges = self._load_state()
        return ranges.covered() if ranges else 0

    def _load_state(self) -> RangeSet | None:
        try:
            doc = json.loads(self.state_path.read_text(encoding="utf-8"))
            data_size = self.data_path.stat().st_size
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("key") != self.key or doc.get("size") != self.size:
            return None
        try:
            ranges = RangeSet([[int(s), int(e)] for s, e in doc.get("done", [])])
        except (TypeError, ValueError):
            return None
        # A data file longer than the remote, or ranges past its end, are not ours to trust.
        if data_size > self.size or ranges.max_end() > min(self.size, data_size):
            return None
        return ranges

    def open(self) -> int:
        """Open (creating or resuming) and return how many bytes are already there."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        ranges = self._load_state()
        if ranges is None:
            self.data_path.unlink(missing_ok=True)
            self.state_path.unlink(missing_ok=True)
            ranges = RangeSet()
        self.ranges = ranges
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
        self.fd = os.open(self.data_path, flags, 0o644)
        os.ftruncate(self.fd, self.size)
        # A fresh hasher (a closed one is done for good); it starts on what a previous
        # run left, while the connections download the rest.
        self._hasher.close()
        self._hasher = Hasher(self.size, self._want_git, self._read_back, self._written_until)
        self._hasher.start()
        return ranges.covered()

    def adopt_prefix(self, existing: Path) -> int:
        """Take a shorter file left at the final path (another tool's partial) as a prefix.

        Returns its length. Its bytes are checked like any others by the final hash.
        """
        length = existing.stat().st_size
        self.folder.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        self.state_path.unlink(missing_ok=True)
        os.replace(existing, self.data_path)
        write_json_atomic(self.state_path, {"key": self.key, "size": self.size,
                                            "done": [[0, length]] if length else []}, indent=1)
        return length

    def _remove_stale(self) -> None:
        """Partials of the same path with another key: the remote has changed since."""
        prefix = f"{path_id(self.path)}-"
        for other in self.folder.glob(prefix + "*"):
            if not other.name.startswith(f"{prefix}{self.key}."):
                other.unlink(missing_ok=True)

    # -- writing --------------------------------------------------------------------

    def write(self, offset: int, buffers: list) -> None:
        """Write ``buffers`` (bytes-like, back to back) at ``offset``."""
        assert self.fd is not None
        _pwrite(self.fd, buffers, offset, self._io_lock)

    def record(self, offset: int, buffers: list) -> None:
        """Mark ``buffers`` (already written at ``offset``) as present and hash them.

        They are handed to the hasher in memory if they extend the prefix; the caller
        must not change them afterwards. This may wait for the hasher while it is
        behind by more than its queue (on a link faster than the sha256).
        """
        length = sum(len(b) for b in buffers)
        # Offered before they are recorded: so the hasher never starts reading back
        # bytes that are on their way to it in memory.
        taken = self._hasher.offer(offset, buffers, length)
        with self.lock:
            self.ranges.add(offset, offset + length)
            self._dirty = True
        if not taken:
            self._hasher.wake()

    def covered(self) -> int:
        with self.lock:
            return self.ranges.covered()

    def missing(self) -> list[tuple[int, int]]:
        with self.lock:
            return self.ranges.missing(self.size)

    def checkpoint(self) -> None:
        """Flush the data written so far, then save which ranges it covers."""
        with self._state_lock:
            with self.lock:
                if not self._dirty or self.fd is None:
                    return
                doc = {"key": self.key, "size": self.size, "done": self.ranges.as_list()}
                self._dirty = False
            getattr(os, "fdatasync", os.fsync)(self.fd)
            write_json_atomic(self.state_path, doc, indent=1)

    def reset(self) -> None:
        """Forget everything written (after a hash mismatch, or a server without Range)."""
        with self._state_lock:
            with self.lock:
                self.ranges = RangeSet()
                self._dirty = False
            self._hasher.reset()
            if self.fd is not None:
                os.ftruncate(self.fd, 0)
                os.ftruncate(self.fd, self.size)
            self.state_path.unlink(missing_ok=True)

    # -- finishing ------------------------------------------------------------------

    def digests(self) -> tuple[str, str | None]:
        """(sha256, git blob sha1) of the whole file; every byte must be written."""
        with self.lock:
            if self.ranges.run_end(0) < self.size:
                raise OSError(_("{path}: not every byte is written yet").format(
                    path=self.data_path))
        return self._hasher.digests()

    def commit(self, final: Path) -> None:
        """fsync, close and atomically move the data to ``final``; drop the state file.

        The file's mtime is set two seconds back: a rerun trusts a file whose size and
        mtime still match the manifest, and file systems stamp times coarsely (a tick of
        milliseconds, two seconds on FAT), so without this a write in the same tick as the
        download would go unnoticed (git's "racy clean" problem). Any later write now
        gives a different mtime.
        """
        assert self.fd is not None
        with self._state_lock:
            os.fsync(self.fd)
            st = os.fstat(self.fd)
            self.close()
            os.utime(self.data_path, ns=(st.st_atime_ns, st.st_mtime_ns - _RACY_NS))
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.data_path, final)
            self.state_path.unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove the data and the state (bad bytes that must not be resumed)."""
        with self._state_lock:
            self.close()
            self.data_path.unlink(missing_ok=True)
            self.state_path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop the hashing and close the data file."""
        self._hasher.close()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
