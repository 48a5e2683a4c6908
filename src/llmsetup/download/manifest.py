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

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmsetup.download.hasher import file_hashes
from llmsetup.download.sources.base import STATE_DIR
from llmsetup.fileio import write_json_atomic

MANIFEST_NAME = "manifest.json"
FORMAT = 1


def manifest_path(model_dir: Path) -> Path:
    return model_dir / STATE_DIR / MANIFEST_NAME


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
    #: What the last download did (source, bytes fetched, ...); not saved.
    run: dict = field(default_factory=dict, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def load(cls, model_dir: Path, repo_id: str | None = None) -> Manifest | None:
        """The manifest of ``model_dir``, or None if it has none (or an unreadable one)."""
        try:
            doc = json.loads(manifest_path(model_dir).read_text(encoding="utf-8"))
            files = {p: Entry(**e) for p, e in doc["files"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(model_dir, repo_id or str(doc.get("repo_id", "")), files,
                   complete=bool(doc.get("complete")))

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

    def summary(self) -> dict:
        by: dict[str, int] = {}
        for e in self.files.values():
            by[e.verified_by] = by.get(e.verified_by, 0) + 1
        return {"files": len(self.files), "bytes": sum(e.size for e in self.files.values()),
                "verified_by": by}

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

    ``on_file(path, status)`` is called as each file is checked (for progress).
    """
    manifest = Manifest.load(model_dir)
    report: dict = {"model_dir": str(model_dir), "manifest": str(manifest_path(model_dir)),
                    "has_manifest": manifest is not None, "files": [], "missing_shards": []}
    for path, entry in sorted((manifest.files if manifest else {}).items()):
        status = _check_entry(model_dir / path, entry)
        report["files"].append({"path": path, "size": entry.size, "status": status,
                                "verified_by": entry.verified_by})
        if on_file:
            on_file(path, status)
    report["missing_shards"] = [{"index": i, "shard": s} for i, s in missing_shards(model_dir)]
    bad = [f for f in report["files"] if f["status"] != "ok"]
    report["problems"] = len(bad) + len(report["missing_shards"])
    report["ok"] = manifest is not None and report["problems"] == 0
    report["size_only"] = sorted(f["path"] for f in report["files"]
                                 if f["verified_by"] in ("size", "none"))
    return report


def _check_entry(path: Path, entry: Entry) -> str:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    if size != entry.size:
        return f"wrong size ({size} bytes, expected {entry.size})"
    sha256, _ = file_hashes(path)
    return "ok" if sha256 == entry.sha256 else "sha256 mismatch"
