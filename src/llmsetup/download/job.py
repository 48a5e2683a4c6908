"""One model's download: lock the folder, try each source in order, record the manifest.

For each source: list, choose files, skip what is already verified, check free disk,
run the engine, check that every shard an index names is there. A
:class:`~llmsetup.download.errors.SourceError` moves on to the next source (files that
finished stay, partial data keyed by content is resumed by the next source); anything
else (a full disk, Ctrl-C) stops at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from llmsetup.download.engine import Engine, FileResult, Transfer
from llmsetup.download.errors import (
    AllSourcesFailed,
    DiskSpaceError,
    NotDownloadable,
    SourceError,
)
from llmsetup.download.hasher import file_hashes
from llmsetup.download.http import waits_reported
from llmsetup.download.manifest import Entry, Manifest, lock_path, shards_of
from llmsetup.download.messages import Message, redacted
from llmsetup.download.options import DownloadOptions
from llmsetup.download.partial import PartialFile, content_key
from llmsetup.download.progress import NULL_REPORTER, Reporter, human_bytes
from llmsetup.download.ref import DOWNLOAD_SOURCES, ModelRef
from llmsetup.download.select import select_files
from llmsetup.download.sources import Listing, RemoteFile, Source, list_source, make_source
from llmsetup.download.sources.base import STATE_DIR
from llmsetup.errors import LLMSetupError, UsageError
from llmsetup.fileio import write_text_atomic
from llmsetup.i18n import N_, _

#: At most this many connections unless the user says otherwise, capped by the source (hf
#: and hf-mirror 16, modelscope 8, aliendao 2). Above 8 because a mirror that caps each
#: connection is only as fast as the connections it gets: on a two-shard repository an
#: eight-connection client cannot be more than 5.9x faster than huggingface_hub (which
#: fetches the shards at once); aria2c -x8 opens 12 there. hf-mirror's own hfd.sh opens up
#: to 20 (aria2c -x4 -j5). A link where one connection is fast keeps one (ramp.py).
DEFAULT_CONNECTIONS = 16
_DISK_MARGIN = 16 << 20
#: No file of any model comes near this (1 PiB): a listing that says so is broken or
#: hostile, and must not reach ftruncate or the disk check.
MAX_FILE_SIZE = 1 << 50


def source_order(ref: ModelRef, settings, options: DownloadOptions) -> list[str]:
    """Which sources to try, in order (see docs/download.md)."""
    if set(ref.sources) == {"generate"} or ("generate" in ref.sources
                                             and not options.sources):
        raise NotDownloadable(
            _("{name} is not downloaded: llmsetup builds it locally").format(
                name=ref.name or ref.repo_id),
            hint=_("Run `llmsetup install {name}`.").format(name=ref.name or ref.repo_id))
    if options.sources:
        names = list(options.sources)
    elif options.endpoint:
        names = ["hf"]  # an explicit endpoint is the user's choice of where to go
    else:
        configured = settings.get("download.sources")
        names = list(ref.sources)
        if configured:
            preferred = [s for s in configured if s in ref.sources]
            names = preferred or names
    for name in names:
        if name == "generate":
            raise NotDownloadable(
                _("the generate source builds {name} locally; it is not a download").format(
                    name=ref.name or ref.repo_id),
                hint=_("Run `llmsetup install {name}`.").format(name=ref.name or "NAME"))
        if name not in DOWNLOAD_SOURCES:
            raise UsageError(_("unknown download source {name}").format(name=repr(name)),
                             hint=_("Sources: {sources}.").format(
                                 sources=", ".join(DOWNLOAD_SOURCES)))
    return names


@contextlib.contextmanager
def folder_lock(model_dir: Path, reporter: Reporter, timeout: float | None) -> Iterator[None]:
    """One download per model folder at a time; a second one waits and says so."""
    from filelock import FileLock, Timeout

    state = model_dir / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(model_dir)))
    owner = state / "lock.owner"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        who = owner.read_text(encoding="utf-8").strip() if owner.is_file() else "?"
        reporter.emit("waiting", message=Message(
            N_("another llmsetup download (pid {pid}) is writing {folder}; waiting for it to "
               "finish"), pid=who, folder=model_dir))
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            raise LLMSetupError(
                _("{folder} is still being downloaded by pid {pid}").format(folder=model_dir,
                                                                            pid=who),
                hint=_("Wait for it to finish, or stop it; then rerun.")) from None
    try:
        with contextlib.suppress(OSError):
            write_text_atomic(owner, str(os.getpid()))
        yield
    finally:
        # The lock file stays (removing it would race with a waiting process); the owner
        # goes, so that only a download that died leaves a pid behind (`prune` finds those).
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()


def download(ref: ModelRef, settings, options: DownloadOptions | None = None,
             reporter: Reporter = NULL_REPORTER) -> Manifest:
    """Download ``ref`` into ``ref.model_dir``; returns the manifest (``.run`` says how)."""
    options = options or DownloadOptions()
    if options.revision:
        ref.revision = options.revision
    names = source_order(ref, settings, options)
    started = time.monotonic()
    created = [p for p in (ref.model_dir, ref.model_dir.parent) if not p.exists()]
    try:
        return _download_locked(ref, settings, options, reporter, names, started)
    finally:
        if created:
            _tidy(ref.model_dir, ref.model_dir.parent in created)


def _tidy(model_dir: Path, parent_too: bool) -> None:
    """Remove a model folder this run created and left with nothing but the lock."""
    state = model_dir / STATE_DIR
    try:
        if {p.name for p in model_dir.iterdir()} != {STATE_DIR} or \
                {p.name for p in state.iterdir()} - {"lock", "lock.owner"}:
            return
        for name in ("lock", "lock.owner"):
            (state / name).unlink(missing_ok=True)
        state.rmdir()
        model_dir.rmdir()
        if parent_too:
            model_dir.parent.rmdir()  # the ORG folder we made, if nothing else is in it
    except OSError:
        return


def _download_locked(ref: ModelRef, settings, options: DownloadOptions, reporter: Reporter,
                     names: list[str], started: float) -> Manifest:
    with folder_lock(ref.model_dir, reporter, options.lock_timeout):
        manifest = Manifest.load_or_new(ref.model_dir, ref.repo_id)
        if manifest.complete:  # until this run finishes, the folder is not complete
            manifest.complete = False
            manifest.save()
        if options.from_dir is not None:
            from llmsetup.download.adopt import adopt_folder

            if adopt_folder(ref, options, manifest, names, settings, reporter):
                manifest.run.update(source="local", seconds=round(time.monotonic() - started, 3))
                _finished(manifest)
                return manifest
        failures: list[SourceError] = []
        for name in names:
            source = make_source(name, ref, settings, endpoint=options.endpoint,
                                 accept_mirror_copy=options.accept_mirror_copy,
                                 cancel=options.cancel)
            reporter.emit("source", name=name, detail=source.describe())
            try:
                _from_source(source, ref, manifest, options, reporter, settings)
                manifest.run["seconds"] = round(time.monotonic() - started, 3)
                _finished(manifest)
                return manifest
            except SourceError as exc:
                failures.append(exc)
                reporter.emit("source_failed", name=name, reason=redacted(exc.reason),
                              hint=redacted(exc.hint_text) or None)
            finally:
                source.close()
        if len(failures) == 1:
            raise failures[0]
        raise AllSourcesFailed(ref.repo_id, failures)


def _finished(manifest: Manifest) -> None:
    manifest.complete = True
    manifest.save()


def _from_source(source: Source, ref: ModelRef, manifest: Manifest, options: DownloadOptions,
                 reporter: Reporter, settings) -> None:
    with waits_reported(lambda left, message: reporter.emit("waiting", seconds=left,
                                                             message=message)):
        listing = list_source(source)
    _check_sizes(listing, source)
    for note in listing.notes:
        reporter.emit("note", message=Message(N_("{source}: {note}"), source=source.name,
                                              note=note))
    for warning in listing.warnings:
        reporter.emit("warning", message=Message(N_("{source}: {note}"), source=source.name,
                                                 note=warning))
    selection = select_files(listing.files, options.include or ref.include,
                             [*ref.exclude, *options.exclude], options.all_formats)
    if not selection.files:
        raise UsageError(_("no file of {repo} matches the filters ({n} files listed)").format(
                             repo=ref.repo_id, n=len(listing.files)),
                         hint=_("Check --include/--exclude (globs match the whole path)."))
    # What this run sets out to fetch: until it finishes, `check` names what is lacking.
    manifest.expected = {f.path: f.size for f in selection.files}
    manifest.save()
    transfers, skipped = _transfers_to_fetch(selection.files, source, manifest, reporter)
    need = sum(t.file.size - t.partial.saved_bytes() for t in transfers)
    _check_disk(ref.model_dir, need)
    reporter.emit("listing", source=source.name, revision=listing.revision,
                  files=len(selection.files), bytes=sum(f.size for f in selection.files),
                  fetch_files=len(transfers), fetch_bytes=need,
                  fetch_size=sum(t.file.size for t in transfers), skipped=skipped)
    connections = min(options.connections or int(settings.get("download.connections") or 0)
                      or DEFAULT_CONNECTIONS, source.max_connections)
    fetched: list[FileResult] = []

    def on_done(r: FileResult) -> None:
        manifest.record(r.path, Entry(r.size, r.sha256, r.verified_by, r.source, r.revision,
                                      git_oid=r.git_oid))
        fetched.append(r)

    engine = Engine(options.engine, reporter, options.cancel, on_done=on_done)
    engine.run(transfers, connections)
    _check_shards(ref.model_dir, selection.files, listing, source, reporter)
    with contextlib.suppress(OSError):
        (ref.model_dir / STATE_DIR / "partial").rmdir()  # only when empty
    manifest.run.update(source=source.name, revision=listing.revision,
                        files=len(selection.files), fetched_files=len(fetched),
                        fetched_bytes=sum(r.fetched for r in fetched), skipped=skipped,
                        connections=connections, connections_used=engine.connections_used,
                        notes=listing.notes + listing.warnings)


def _check_sizes(listing: Listing, source: Source) -> None:
    """Refuse a listing with an impossible size before anything is written."""
    for f in listing.files:
        if not 0 <= f.size <= MAX_FILE_SIZE:
            raise SourceError(source.name, Message(
                N_("{path}: the listing gives an impossible size ({size:,} bytes); nothing was "
                   "downloaded"), path=f.path, size=f.size), hint=Message(
                N_("The source's listing is broken; try another source (--source).")))


def _transfers_to_fetch(files: list[RemoteFile], source: Source, manifest: Manifest,
          reporter: Reporter) -> tuple[list[Transfer], int]:
    """The files still to fetch; files already present and verified are skipped."""
    model_dir = manifest.model_dir
    partial_dir = model_dir / STATE_DIR / "partial"
    transfers: list[Transfer] = []
    skipped = 0
    for f in sorted(files, key=lambda f: (f.size, f.path)):  # small files first: quick errors
        final = model_dir / f.path
        if _already_there(f, final, source, manifest, reporter):
            skipped += 1
            continue
        key = content_key(f.path, f.size, f.partial_sha256, source.partial_identity())
        partial = PartialFile(partial_dir, f.path, key, f.size,
                              git_oid=None if f.sha256 else f.git_oid)
        if final.is_file() and final.stat().st_size < f.size and f.path not in manifest.files \
                and partial.saved_bytes() == 0:
            # Another tool's unfinished download at the final path: resume from it.
            partial.adopt_prefix(final)
        transfers.append(Transfer(f, source, final, partial))
    return transfers, skipped


def _already_there(f: RemoteFile, final: Path, source: Source, manifest: Manifest,
                   reporter: Reporter) -> bool:
    entry = manifest.unchanged(f.path)
    if entry is not None:  # we wrote it and it is untouched: compare the recorded hashes
        if entry.size != f.size:
            return False
        if f.hash_from and entry.verified_by == "size" and entry.source == source.name \
                and entry.sha256 != f.sha256:
            # This source's copy, taken by size earlier (--accept-mirror-copy): the hash is
            # borrowed from elsewhere, so its difference is known, not news.
            reporter.emit("file_skipped", path=f.path, size=f.size, reason=Message(
                N_("accepted earlier by size (differs from {hash_from})"),
                hash_from=f.hash_from))
            return True
        if f.sha256:
            if entry.sha256 != f.sha256:
                return False  # the remote changed
            if entry.verified_by != "sha256":  # now we have the publisher's hash: upgrade
                manifest.record(f.path, Entry(f.size, entry.sha256, "sha256", entry.source,
                                              entry.revision))
        elif f.git_oid and entry.git_oid != f.git_oid:
            return False
        reporter.emit("file_skipped", path=f.path, size=f.size, reason=Message(
            N_("verified earlier") if f.verifiable != "size"
            else N_("present (no hash published to compare)")))
        return True
    if not final.is_file() or final.stat().st_size != f.size:
        return False
    # A complete-looking file we did not record (or that changed): verify before trusting.
    if f.verifiable == "size":
        sha256, _git = file_hashes(final)
        manifest.record(f.path, Entry(f.size, sha256, "size", source.name, source.revision))
        reporter.emit("file_skipped", path=f.path, size=f.size,
                      reason=Message(N_("present with the right size (no hash published)")))
        return True
    sha256, git = file_hashes(final, want_git=not f.sha256)
    if (f.sha256 and sha256 == f.sha256) or (not f.sha256 and git == f.git_oid):
        manifest.record(f.path, Entry(f.size, sha256, f.verifiable, source.name, source.revision,
                                      git_oid=None if f.sha256 else f.git_oid))
        reporter.emit("file_skipped", path=f.path, size=f.size,
                      reason=Message(N_("present; {kind} verified"), kind=f.verifiable))
        return True
    return False


def _check_disk(model_dir: Path, need: int) -> None:
    """Fail before any transfer when the folder's disk cannot hold what is left."""
    probe = model_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need + _DISK_MARGIN > free:
        raise DiskSpaceError(
            _("not enough free disk in {folder}: need {need}, free {free}").format(
                folder=model_dir, need=human_bytes(need), free=human_bytes(free)),
            hint=_("Free some space, or choose another folder with --models-dir or "
                   "LLMSETUP_MODELS_DIR. Nothing was downloaded."))


def _check_shards(model_dir: Path, files: list[RemoteFile], listing: Listing, source: Source,
                  reporter: Reporter) -> None:
    """Every shard an ``*.index.json`` names must be there (or be skipped on purpose)."""
    listed = {f.path for f in listing.files}
    for f in files:
        if not f.path.endswith(".index.json"):
            continue
        folder = PurePosixPath(f.path).parent
        for shard in shards_of(model_dir / f.path):
            rel = (folder / shard).as_posix()
            if (model_dir / rel).is_file():
                continue
            if rel not in listed:
                raise SourceError(source.name, Message(
                    N_("{index} names the shard {shard}, which the source does not have"),
                    index=f.path, shard=shard), hint=Message(
                    N_("The repository at this source is incomplete; try another source.")))
            reporter.emit("warning", message=Message(
                N_("{index} names {shard}, which your --include/--exclude skipped: the model "
                   "will not load without it"), index=f.path, shard=shard))
