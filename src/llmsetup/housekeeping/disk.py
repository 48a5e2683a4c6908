"""Sizes on disk, and the one careful way llmsetup deletes what it made.

Sizes are apparent sizes (``du --apparent-size`` style, files only): the sum of
``st_size`` of the regular files under a folder, each inode once (hard links inside one
tree count once), never following a symlink (a link itself counts nothing).

Deleting goes through :func:`remove_item` only. It refuses any path whose real location
(its parent resolved, the name itself not) is outside the allowed roots (the models dir,
``LLMSETUP_HOME``, a recorded webui checkout), and any file reached through a symlinked
folder; a symlink is removed as a link, never what it points to.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from llmsetup.errors import UsageError
from llmsetup.i18n import _


def tree_size(path: Path) -> int:
    """Apparent size in bytes of the regular files at or under ``path`` (0 if absent)."""
    try:
        st = path.lstat()
    except OSError:
        return 0
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    if not stat.S_ISDIR(st.st_mode):
        return 0
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [path]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        if st.st_nlink > 1:
                            if (st.st_dev, st.st_ino) in seen:
                                continue
                            seen.add((st.st_dev, st.st_ino))
                        total += st.st_size
                except OSError:
                    continue
    return total


def files_size(paths: list[Path]) -> int:
    """Apparent size of ``paths`` (regular files only), each inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in paths:
        try:
            st = path.lstat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def human(n: int | None) -> str:
    """``13.5 GB``: decimal units, as disks and ``ollama list`` count."""
    if n is None:
        return "?"
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


@dataclass
class Item:
    """One thing to remove: a folder, a file or a link, or only some files under a folder."""

    kind: str  # model, deploy, env, record, state, logs, partial, lock, log
    path: Path
    bytes: int
    note: str = ""  # in the user's language (so is Kept.reason); kind stays English
    #: Remove only these files (then the folders they leave empty, ``path`` included);
    #: None: all of ``path``.
    files: list[Path] | None = None

    def to_json(self) -> dict:
        doc = {"kind": self.kind, "path": str(self.path), "bytes": self.bytes, "note": self.note}
        if self.files is not None:
            doc["files"] = len(self.files)
        return doc


@dataclass
class Kept:
    """Something llmsetup will not remove, and why."""

    kind: str
    path: Path
    reason: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "reason": self.reason}


@dataclass
class Removal:
    """What a command will remove and what it leaves, with why."""

    items: list[Item] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(i.bytes for i in self.items)

    def to_json(self) -> dict:
        return {"remove": [i.to_json() for i in self.items],
                "kept": [k.to_json() for k in self.kept], "bytes": self.bytes}


def real_location(path: Path) -> Path:
    """Where ``path`` really is: its parent resolved, its own name not (a link stays a link)."""
    return Path(os.path.realpath(path.parent)) / path.name


def inside(path: Path, roots: list[Path]) -> bool:
    """Whether ``path`` really lies strictly inside one of ``roots``."""
    where = real_location(path)
    for root in roots:
        real_root = Path(os.path.realpath(root))
        if where != real_root and where.is_relative_to(real_root):
            return True
    return False


def linked_folder_between(base: Path, path: Path) -> Path | None:
    """The first symlinked folder on the way from ``base`` down to ``path``'s parent."""
    try:
        rel = path.parent.relative_to(base)
    except ValueError:
        return path.parent
    current = base
    for part in rel.parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def remove_item(item: Item, roots: list[Path]) -> None:
    """Remove ``item`` (see the module docstring for what is refused)."""
    if not inside(item.path, roots):
        raise UsageError(_("refusing to remove {path}: it is outside the folders llmsetup "
                           "manages").format(path=item.path),
                         hint=_("Remove it by hand if you are sure."))
    if item.files is None:
        _remove_path(item.path)
        return
    for path in item.files:
        if linked_folder_between(item.path, path) is not None or not inside(path, roots):
            continue  # reached through a symlink: not ours to follow
        if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
            path.unlink()  # a link goes as a link
    remove_empty_folders(item.path)


def _remove_path(path: Path) -> None:
    if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        import shutil  # not on `list`'s path: it costs a few ms to import

        shutil.rmtree(path)  # never follows a symlink inside the tree


def remove_empty_folders(top: Path) -> None:
    """Remove the folders under ``top`` (and ``top``) that hold nothing; never follows links."""
    if top.is_symlink() or not top.is_dir():
        return
    for root, dirs, _files in os.walk(top, topdown=False):
        for name in dirs:
            folder = Path(root) / name
            if not folder.is_symlink():
                with contextlib.suppress(OSError):  # not empty
                    folder.rmdir()
    with contextlib.suppress(OSError):
        top.rmdir()


def remove_empty_parents(path: Path, stop: Path) -> None:
    """Remove the empty folders above ``path`` up to ``stop`` (kept): an ORG folder left empty."""
    parent = path.parent
    while parent != stop and parent.is_relative_to(stop):
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent
