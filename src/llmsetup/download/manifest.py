"""The manifest a download leaves next to the model, and ``llmsetup check``.

``<model dir>/.llmsetup/manifest.json`` lists every file llmsetup put there: size,
sha256 (always computed while writing), the source and revision it came from, and how it
was verified against the publisher:

- ``sha256``: matched the publisher's sha256 (HF ``lfs.oid``, ModelScope ``Sha256``);
- ``git-sha1``: matched the git blob id of a small non-LFS file (HF ``oid``);
- ``size``: the source published no hash (aliendao without a reachable HF endpoint);
- ``none``: adopted from a local folder with nothing to compare against.

A file adopted with ``--from`` also says how it got here (``adopted``): ``link`` (a hard
link to the user's file), ``copy``, or ``in-place`` (``--from`` named the model folder
itself, so the file is the user's own). ``llmsetup rm`` reads it: it never deletes the
user's own file, and removing a link leaves the original where it was.

The folder (not the file) holds it, so that tools which glob the model folder for
``*.json`` never see it. :func:`check_folder` re-hashes every file against it and checks
that each shard named by a ``*.index.json`` is present.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmsetup.download.errors import UnsafeListing
from llmsetup.download.messages import Message
from llmsetup.download.sources.base import STATE_DIR, safe_relpath
from llmsetup.fileio import write_json_atomic
from llmsetup.i18n import N_

MANIFEST_NAME = "manifest.json"
FORMAT = 1


def manifest_path(model_dir: Path) -> Path:
    return model_dir / STATE_DIR / MANIFEST_NAME


def lock_path(model_dir: Path) -> Path:
    """The lock a download holds on its folder (``download.job.folder_lock``)."""
    return model_dir / STATE_DIR / "lock"


def download_running(model_dir: Path) -> str | None:
    """The pid (as text, "?" if unknown) of a download now writing ``model_dir``, or None.

    Probes the folder lock without waiting; never creates it."""
    path = lock_path(model_dir)
    if not path.is_file():
        return None
    from filelock import FileLock, Timeout

    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            return path.with_name("lock.owner").read_text(encoding="utf-8").strip() or "?"
        except OSError:
            return "?"
    lock.release()
    return None


def is_safe_path(name: str) -> bool:
    """Whether a manifest path passes the rule remote names pass (``safe_relpath``)."""
    try:
        return safe_relpath(name, "manifest") == name
    except UnsafeListing:
        return False


@dataclass
class Entry:
    """One file of the manifest."""

    size: int
    sha256: str
    verified_by: str
    source: str
    revision: str
    git_oid: str | None = None
    mtime_ns: int | None = None
    #: ``--from`` only: link, copy or in-place (see the module docstring).
    adopted: str | None = None


@dataclass
class Manifest:
    """Every file llmsetup placed in ``model_dir``, and how each was verified."""

    model_dir: Path
    repo_id: str
    files: dict[str, Entry] = field(default_factory=dict)
    #: True once a download (or adoption) of the whole selection finished; a run in
    #: progress or one that failed half-way leaves it False.
    complete: bool = False
    #: path -> size of every file the last download set out to fetch (its selection), so
    #: that an unfinished download can say what it lacks. None in older manifests.
    expected: dict[str, int] | None = None
    #: Entries refused when loading: paths that fail the safe-path rule (``..``, absolute).
    refused: list[str] = field(default_factory=list, compare=False)
    #: What the last download did (source, bytes fetched, ...); not saved.
    run: dict = field(default_factory=dict, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def load(cls, model_dir: Path, repo_id: str | None = None) -> Manifest | None:
        """The manifest of ``model_dir``, or None if it has none (or an unreadable one)."""
        try:
            doc = json.loads(manifest_path(model_dir).read_text(encoding="utf-8"))
            files = {str(p): Entry(**e) for p, e in doc["files"].items()}
            expected = doc.get("expected")
            expected = ({str(p): int(n) for p, n in expected.items()}
                        if isinstance(expected, dict) else None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        # A hand-edited or hostile manifest must not make `check` read, or `download`
        # keep, anything outside the model folder.
        refused = sorted(p for p in {*files, *(expected or {})} if not is_safe_path(p))
        files = {p: e for p, e in files.items() if p not in refused}
        if expected is not None:
            expected = {p: n for p, n in expected.items() if p not in refused}
        return cls(model_dir, repo_id or str(doc.get("repo_id", "")), files,
                   complete=bool(doc.get("complete")), expected=expected, refused=refused)

    @classmethod
    def load_or_new(cls, model_dir: Path, repo_id: str) -> Manifest:
        found = cls.load(model_dir, repo_id)
        return found if found is not None else cls(model_dir, repo_id)

    def save(self) -> None:
        """Write the manifest atomically. Connections finish files concurrently: the lock
        covers the write too, so an older snapshot can never overwrite a newer one."""
        path = manifest_path(self.model_dir)
        with self._lock:
            doc = {"format": FORMAT, "repo_id": self.repo_id, "complete": self.complete,
                   "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   "files": {p: asdict(e) for p, e in sorted(self.files.items())}}
            if self.expected is not None:
                doc["expected"] = dict(sorted(self.expected.items()))
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, doc, indent=1)

    def record(self, path: str, entry: Entry) -> None:
        """Add or replace ``path`` and save at once (a crash keeps what is verified)."""
        try:
            entry.mtime_ns = (self.model_dir / path).stat().st_mtime_ns
        except OSError:
            entry.mtime_ns = None
        with self._lock:
            self.files[path] = entry
        self.save()

    def unchanged(self, path: str) -> Entry | None:
        """The entry of ``path`` if the file on disk still has its size and mtime."""
        entry = self.files.get(path)
        if entry is None:
            return None
        try:
            st = (self.model_dir / path).stat()
        except OSError:
            return None
        if st.st_size != entry.size or entry.mtime_ns is None or st.st_mtime_ns != entry.mtime_ns:
            return None
        return entry

    def not_downloaded(self) -> list[str] | None:
        """Files of the last selection that the manifest lacks; None when unknown."""
        if self.expected is None:
            return None
        return sorted(p for p in self.expected if p not in self.files)

    def summary(self) -> dict:
        by: dict[str, int] = {}
        for e in self.files.values():
            by[e.verified_by] = by.get(e.verified_by, 0) + 1
        return {"files": len(self.files), "bytes": sum(e.size for e in self.files.values()),
                "verified_by": by}

    def trust_notes(self) -> list[str]:
        """What the summary must say about files no hash vouched for (empty when none)."""
        return trust_notes(self.summary()["verified_by"])

    def to_json(self) -> dict:
        return {"model_dir": str(self.model_dir), "repo_id": self.repo_id,
                "complete": self.complete,
                "manifest": str(manifest_path(self.model_dir)), **self.summary(),
                "run": self.run,
                "entries": {p: asdict(e) for p, e in sorted(self.files.items())}}


def is_complete(model_dir: Path) -> bool:
    """Whether a finished download is here, untouched since: cheap (no hashing).

    The manifest must say the last download finished, every file it lists must still
    have its recorded size and mtime, and every shard an index names must be present.
    ``llmsetup check`` is the thorough version.
    """
    manifest = Manifest.load(model_dir)
    if manifest is None or not manifest.complete or not manifest.files:
        return False
    if any(manifest.unchanged(path) is None for path in manifest.files):
        return False
    return not missing_shards(model_dir)


def index_files(model_dir: Path) -> list[Path]:
    """Every ``*.index.json`` of the model (our own state folder excluded)."""
    return sorted(p for p in model_dir.rglob("*.index.json")
                  if STATE_DIR not in p.relative_to(model_dir).parts)


def shards_of(index: Path) -> list[str]:
    """The shard files a ``*.index.json`` names (its ``weight_map`` values)."""
    try:
        doc = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    weight_map = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(weight_map, dict):
        return []
    return sorted({str(v) for v in weight_map.values()})


def missing_shards(model_dir: Path, indexes: list[Path] | None = None) -> list[tuple[str, str]]:
    """(index, shard) for each shard that an index names and the folder lacks."""
    out = []
    for index in index_files(model_dir) if indexes is None else indexes:
        for shard in shards_of(index):
            if not (index.parent / shard).is_file():
                out.append((index.relative_to(model_dir).as_posix(), shard))
    return out


def check_folder(model_dir: Path, on_file=None) -> dict:
    """Re-verify ``model_dir`` against its manifest; the report says ``ok`` or what is wrong.

    Not ok either: a download that did not finish (``complete`` false: ``not_downloaded``
    names what the manifest still lacks, when the manifest knows), one still running
    (``downloading``: its pid), and manifest entries refused by the safe-path rule
    (``refused``). ``on_file(path, status)`` is called as each file is checked.

    A file's ``status`` is ``ok`` or what is wrong with it, in English (the ``--json``
    value); :func:`~llmsetup.download.messages.shown` gives it in the chosen language.
    """
    manifest = Manifest.load(model_dir)
    report: dict = {"model_dir": str(model_dir), "manifest": str(manifest_path(model_dir)),
                    "has_manifest": manifest is not None, "files": [], "missing_shards": [],
                    "complete": bool(manifest and manifest.complete),
                    "downloading": download_running(model_dir),
                    "not_downloaded": (manifest.not_downloaded()
                                       if manifest and not manifest.complete else None),
                    "refused": manifest.refused if manifest else []}
    for path, entry in sorted((manifest.files if manifest else {}).items()):
        status = _check_entry(model_dir / path, entry)
        report["files"].append({"path": path, "size": entry.size, "status": status,
                                "verified_by": entry.verified_by})
        if on_file:
            on_file(path, status)
    report["missing_shards"] = [{"index": i, "shard": s} for i, s in missing_shards(model_dir)]
    bad = [f for f in report["files"] if f["status"] != "ok"]
    report["problems"] = (len(bad) + len(report["missing_shards"]) + len(report["refused"])
                          + len(report["not_downloaded"] or []))
    report["ok"] = (manifest is not None and report["problems"] == 0 and report["complete"]
                    and report["downloading"] is None)
    report["size_only"] = sorted(f["path"] for f in report["files"]
                                 if f["verified_by"] in ("size", "none"))
    return report


def _check_entry(path: Path, entry: Entry) -> str:
    try:
        st = path.stat()
    except FileNotFoundError:
        return Message(N_("missing"))
    except OSError as exc:
        return Message(N_("unreadable ({error})"), error=str(exc.strerror))
    if not stat.S_ISREG(st.st_mode):
        # /dev/zero or a fifo would never end
        return Message(N_("not a regular file (refused)"))
    if st.st_size != entry.size:
        return Message(N_("wrong size ({size} bytes, expected {expected})"), size=st.st_size,
                       expected=entry.size)
    try:
        sha256 = _regular_file_sha256(path)
    except OSError as exc:
        return Message(N_("unreadable ({error})"), error=str(exc.strerror or exc))
    return "ok" if sha256 == entry.sha256 else Message(N_("sha256 mismatch"))


def _regular_file_sha256(path: Path) -> str:
    # O_NONBLOCK: if the path was swapped for a fifo since the stat, opening it must not
    # wait for a writer; fstat then refuses it.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        sha = hashlib.sha256()
        while chunk := fh.read(8 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def trust_notes(verified_by: dict[str, int]) -> list[str]:
    """One line per kind of weak check in a ``verified_by`` count (``summary()``): English
    :class:`~llmsetup.download.messages.Message` s (``shown`` gives them in the chosen
    language)."""
    notes = []
    if verified_by.get("none"):
        notes.append(Message(N_("{n} file(s) adopted without a hash to check against; sizes "
                                "only"), n=verified_by["none"]))
    if verified_by.get("size"):
        notes.append(Message(N_("{n} file(s) verified by size only (the source published no "
                                "hash)"), n=verified_by["size"]))
    return notes
