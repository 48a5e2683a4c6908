"""A model already on this machine (``--from DIR``), checked and then adopted.

The book's users often have ``./dataroot/models/ORG/REPO`` from aliendao's downloader or
a copy from a colleague. Each file is checked before it is adopted: against the
publisher's hashes when a source's listing is reachable, else against the folder's own
llmsetup manifest, else only for structure (every shard an index names is present; no
``~incomplete.txt``), and then recorded as ``verified_by: none``.

Adopting places the file by a **hard link** when the folder is on the same file system:
instant and no second copy of 13 GB. The cost: both names share one inode, so a tool that
rewrites the original *in place* changes ours too; ``llmsetup check`` detects that, and
``--copy`` avoids it. Other file systems (or ``--copy``) get a copy, hashed while it is
written, so it is verified without a second read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from llmsetup.download.hasher import file_hashes
from llmsetup.download.messages import Message
from llmsetup.download.sources.base import STATE_DIR, RemoteFile
from llmsetup.i18n import N_

INCOMPLETE_MARK = "~incomplete.txt"
_SKIP_DIRS = {STATE_DIR, ".cache", ".git", ".huggingface"}
_SKIP_SUFFIXES = (".incomplete", ".lock", ".part", ".tmp")


class LocalFolder:
    """The files of an existing model folder and how to adopt them."""

    name = "local"

    def __init__(self, folder: Path, copy: bool = False) -> None:
        self.folder = folder
        self.copy = copy

    def describe(self) -> str:
        return Message(N_("local folder {folder}"), folder=self.folder)

    def incomplete(self) -> bool:
        """The aliendao downloader's mark of a download that did not finish."""
        return (self.folder / INCOMPLETE_MARK).exists()

    def walk(self) -> Iterator[tuple[str, int]]:
        """(relative POSIX path, size) of every file worth adopting."""
        for root, dirs, files in os.walk(self.folder):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            for name in sorted(files):
                if name == INCOMPLETE_MARK or name.endswith(_SKIP_SUFFIXES):
                    continue
                path = Path(root) / name
                if path.is_file() and not path.is_symlink():
                    yield path.relative_to(self.folder).as_posix(), path.stat().st_size

    def adopt(self, rel: str, dst: Path, expect: RemoteFile | None,
              want_git: bool = False) -> tuple[str, str | None] | None:
        """Place ``rel`` at ``dst`` if it matches ``expect``; (sha256, git sha1) or None.

        With ``expect`` None (nothing to compare against) the file is placed as it is.
        """
        src = self.folder / rel
        if dst.exists() and os.path.samefile(src, dst):
            sha256, git = _hash(src, want_git)
            return (sha256, git) if _matches(expect, sha256, git) else None
        if not self.copy:
            sha256, git = _hash(src, want_git)
            if not _matches(expect, sha256, git):
                return None
            if _link(src, dst):
                return sha256, git
        sha256, git = _copy_hashed(src, dst, want_git, lambda s, g: _matches(expect, s, g))
        return (sha256, git) if sha256 else None


def _matches(expect: RemoteFile | None, sha256: str, git: str | None) -> bool:
    if expect is None or expect.verifiable == "size":
        return True
    if expect.sha256:
        return sha256 == expect.sha256
    return git == expect.git_oid


def _hash(path: Path, want_git: bool) -> tuple[str, str | None]:
    return file_hashes(path, want_git)


def _tmp_for(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.llmsetup-{uuid.uuid4().hex[:8]}.tmp")


def _link(src: Path, dst: Path) -> bool:
    """Hard-link ``src`` to ``dst`` atomically; False where the file system cannot."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_for(dst)
    try:
        os.link(src, tmp)
        os.replace(tmp, dst)
        return True
    except OSError:  # another file system (EXDEV), or no hard links there
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _copy_hashed(src: Path, dst: Path, want_git: bool, accept) -> tuple[str | None, str | None]:
    """Copy through a temp file, hashing as it goes; move into place if ``accept``-ed."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_for(dst)
    sha = hashlib.sha256()
    git = hashlib.sha1(b"blob %d\0" % src.stat().st_size) if want_git else None
    try:
        with src.open("rb") as fin, tmp.open("wb") as fout:
            while chunk := fin.read(8 << 20):
                sha.update(chunk)
                if git is not None:
                    git.update(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        digest, git_digest = sha.hexdigest(), (git.hexdigest() if git else None)
        if not accept(digest, git_digest):
            return None, None
        shutil.copystat(src, tmp)
        os.replace(tmp, dst)
        return digest, git_digest
    finally:
        tmp.unlink(missing_ok=True)
