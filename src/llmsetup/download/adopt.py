"""``--from DIR``: check an existing download and adopt it (see :mod:`.sources.local`).

With a reachable source, every file the source lists (after the usual filters) is
compared with the publisher's size and hash; matching files are adopted, the rest are
then downloaded as usual. Offline, the folder's own llmsetup manifest is the reference if
it has one; otherwise its files are adopted as they are (``verified_by: none``) once the
structure checks pass, and the user is told that nothing vouched for their content.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from llmsetup.download.errors import SourceError
from llmsetup.download.manifest import Entry, Manifest, missing_shards
from llmsetup.download.messages import Joined, Message, shown
from llmsetup.download.progress import Reporter
from llmsetup.download.ref import ModelRef
from llmsetup.download.select import select_files
from llmsetup.download.sources import Listing, RemoteFile, list_source, make_source
from llmsetup.download.sources.local import INCOMPLETE_MARK, LocalFolder
from llmsetup.errors import CheckFailed, NotFoundError
from llmsetup.i18n import N_, _


def adopt_folder(ref: ModelRef, options, manifest: Manifest, names: list[str], settings,
                 reporter: Reporter) -> bool:
    """Adopt what matches from ``options.from_dir``; True when nothing is left to fetch."""
    folder = LocalFolder(options.from_dir.expanduser().absolute(), copy=options.copy)
    if not folder.folder.is_dir():
        raise NotFoundError(_("--from {folder}: no such folder").format(folder=options.from_dir),
                            hint=_("Give the folder that holds the model's config.json."))
    reporter.emit("source", name="local", detail=folder.describe())
    reference: Listing | None = None
    reasons: list[Message] = []
    for name in names:
        source = make_source(name, ref, settings, endpoint=options.endpoint,
                             cancel=options.cancel)
        try:
            reference = list_source(source)
            break
        except SourceError as exc:
            reasons.append(Message(N_("{source}: {reason}"), source=name, reason=exc.reason))
        finally:
            source.close()
    if reference is not None:
        return _against_listing(folder, reference, ref, options, manifest, reporter)
    _offline(folder, manifest, reasons, reporter)
    return True


def _adopt_one(folder: LocalFolder, path: str, size: int, expect: RemoteFile | None,
               manifest: Manifest, revision: str, reporter: Reporter,
               verified_by: str) -> bool:
    started = time.monotonic()
    want_git = bool(expect and expect.git_oid and not expect.sha256)
    got = folder.adopt(path, manifest.model_dir / path, expect, want_git)
    if got is None:
        return False
    manifest.record(path, Entry(size, got[0], verified_by, "local", revision,
                                git_oid=got[1] if want_git else None,
                                adopted=_how(folder.folder / path, manifest.model_dir / path)))
    reporter.emit("file_done", path=path, size=size, sha256=got[0], verified_by=verified_by,
                  source="local", fetched=0, seconds=round(time.monotonic() - started, 3))
    return True


def _how(src: Path, dst: Path) -> str:
    """How an adopted file got to ``dst``: the user's own file, a hard link to it, a copy."""
    if os.path.realpath(src) == os.path.realpath(dst):
        return "in-place"
    try:
        return "link" if os.path.samefile(src, dst) else "copy"
    except OSError:
        return "copy"


def _against_listing(folder: LocalFolder, reference: Listing, ref: ModelRef, options,
                     manifest: Manifest, reporter: Reporter) -> bool:
    selection = select_files(reference.files, options.include or ref.include,
                             [*ref.exclude, *options.exclude], options.all_formats)
    left: list[str] = []
    for f in selection.files:
        local = folder.folder / f.path
        if not local.is_file() or local.stat().st_size != f.size or not _adopt_one(
                folder, f.path, f.size, f, manifest, reference.revision, reporter, f.verifiable):
            left.append(f.path)
    if left:
        reporter.emit("warning", message=Message(
            N_("{n} file(s) missing from {folder} or not matching the publisher's size or "
               "hash; downloading them: {files}"), n=len(left), folder=folder.folder,
            files=", ".join(left)))
    return not left


def _offline(folder: LocalFolder, manifest: Manifest, reasons: list[str],
             reporter: Reporter) -> None:
    if folder.incomplete():
        raise CheckFailed(_("{folder} holds {mark}: the download that made it did not finish, "
                            "and no source is reachable to check it against").format(
                              folder=folder.folder, mark=INCOMPLETE_MARK),
                          hint=_("Rerun with network access: llmsetup then adopts the "
                                 "complete files and downloads the rest."))
    shards = missing_shards(folder.folder)
    if shards:
        missing = Joined(", ", (Message(N_("{index} names {shard}, which is missing"),
                                        index=index, shard=shard) for index, shard in shards))
        raise CheckFailed(_("{folder} is incomplete: {missing}").format(
            folder=folder.folder, missing=shown(missing)),
            hint=_("Complete the folder, or download the model (`llmsetup download NAME`)."))
    own = Manifest.load(folder.folder)
    present = dict(folder.walk())
    if own is not None:
        bad = [p for p, e in own.files.items() if present.get(p) != e.size
               or not _adopt_one(folder, p, e.size, RemoteFile(p, e.size, sha256=e.sha256),
                                 manifest, e.revision, reporter, e.verified_by)]
        if bad:
            raise CheckFailed(_("{folder}: {n} file(s) missing or not matching its own "
                                "manifest: {files}").format(folder=folder.folder, n=len(bad),
                                                            files=", ".join(bad)),
                              hint=_("Download the model instead (`llmsetup download NAME`)."))
        return
    for path, size in present.items():
        _adopt_one(folder, path, size, None, manifest, "unknown", reporter, "none")
    reporter.emit("warning", message=Message(
        N_("no source reachable ({reasons}): adopted {n} file(s) from {folder} without the "
           "publisher's hashes (verified_by: none); `llmsetup check` will catch later damage, "
           "not what was there before"),
        reasons=Joined(N_("; "), reasons) if reasons else Message(N_("none")), n=len(present),
        folder=folder.folder))
