"""``llmsetup download`` and ``llmsetup check``: get a model's weights, and prove them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import JsonOpt, TargetArg, check_new_folder, check_url
from llmsetup.cli._output import Output
from llmsetup.i18n import _

SourceOpt = Annotated[list[str] | None, typer.Option(
    "--source", metavar="SOURCE",
    help=_("Use only this source: hf, hf-mirror, aliendao or modelscope (repeat it to give "
    "several, tried in that order)."),
    show_default=_("the recipe's sources in order, each tried if the one before fails"))]
EndpointOpt = Annotated[str | None, typer.Option(
    "--endpoint", metavar="URL", callback=check_url,
    help=_("A Hugging Face endpoint (a mirror's URL); implies "
    "--source hf unless --source is given. Default: HF_ENDPOINT or huggingface.co."))]
RevisionOpt = Annotated[str | None, typer.Option(
    "--revision", metavar="REV", help=_("Branch, tag or commit."), show_default=_("the recipe's, main"))]
ModelsDirOpt = Annotated[Path | None, typer.Option(
    "--models-dir", metavar="DIR", help=_("Store into DIR/ORG/REPO."), callback=check_new_folder,
    show_default=_("LLMSETUP_MODELS_DIR or ./dataroot/models"))]
ConnectionsOpt = Annotated[int | None, typer.Option(
    "--connections", metavar="N", min=1, max=64,
    help=_("Parallel connections, at most (capped by the source: hf and hf-mirror allow 16, "
    "modelscope 8, aliendao 2). The first starts alone; the others open unless it alone "
    "beats 256 MB/s."), show_default="16")]
IncludeOpt = Annotated[list[str] | None, typer.Option(
    "--include", metavar="GLOB", help=_("Only files whose path matches (repeatable)."))]
ExcludeOpt = Annotated[list[str] | None, typer.Option(
    "--exclude", metavar="GLOB", help=_("Skip files whose path matches (repeatable)."))]
AllFormatsOpt = Annotated[bool, typer.Option(
    "--all-formats", help=_("Also fetch .bin/.pt/Flax/TF weights when safetensors exist."))]
FromOpt = Annotated[Path | None, typer.Option(
    "--from", metavar="DIR", help=_("Check and adopt an existing download in DIR "
    "(hard-linked when possible); only what is missing or wrong is downloaded."))]
CopyOpt = Annotated[bool, typer.Option(
    "--copy", help=_("With --from: copy the files instead of hard-linking them."))]
AcceptMirrorCopyOpt = Annotated[bool, typer.Option(
    "--accept-mirror-copy", help=_("Take aliendao's copy of a file by its size where it "
    "differs from the HF revision (the mirror may hold an older one)."))]


def _ref(app, name: str, models_dir: Path | None):
    from llmsetup.download import ModelRef

    settings, catalog = app.settings, app.catalog
    models = (models_dir.expanduser().absolute() if models_dir else settings.models_dir)
    # The cached index: no YAML parsing and no schema when no recipe file changed.
    recipes = {entry["name"]: entry for entry in catalog.index()}
    if name in recipes:
        recipe = recipes[name]
        return ModelRef.from_recipe(recipe, models / (recipe["target_dir"] or recipe["repo_id"]))
    if "/" in name:
        return ModelRef.from_repo_id(name, models, list(recipes.values()),
                                     settings.get("download.sources"))
    catalog.get(name)  # raises "no recipe named ..." with suggestions
    raise AssertionError("unreachable")


def download_cmd(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(
        metavar="NAME|ORG/REPO", help=_("A recipe name (see `llmsetup list`) or a repository id."))],
    source: SourceOpt = None,
    endpoint: EndpointOpt = None,
    revision: RevisionOpt = None,
    models_dir: ModelsDirOpt = None,
    connections: ConnectionsOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    all_formats: AllFormatsOpt = False,
    from_dir: FromOpt = None,
    copy: CopyOpt = False,
    accept_mirror_copy: AcceptMirrorCopyOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Download a model's weights into <models dir>/ORG/REPO: parallel, resumable, verified.

    Rerun after a failure or Ctrl-C to resume; a manifest records how each file was verified.
    """
    from llmsetup.cli._progress import LogReporter, Tee, download_reporter
    from llmsetup.download import DownloadOptions, download

    app = state(ctx)
    out = Output(json_)
    ref = _ref(app, target, models_dir)
    options = DownloadOptions(sources=list(source) if source else None, endpoint=endpoint,
                              revision=revision,
                              connections=connections, include=list(include or []),
                              exclude=list(exclude or []), all_formats=all_formats,
                              from_dir=from_dir, copy=copy,
                              accept_mirror_copy=accept_mirror_copy)
    log = LogReporter(app.settings.logs_dir / "download.log")
    try:
        with download_reporter(json_, lambda: out.err) as reporter:
            log.emit("start", repo_id=ref.repo_id, model_dir=str(ref.model_dir))
            manifest = download(ref, app.settings, options, Tee(reporter, log))
    except BaseException as exc:
        from llmsetup.download.messages import text_of

        # The log stays English (a Message's str is its English text).
        log.emit("failed", error=f"{type(exc).__name__}: {text_of(exc)}")
        raise
    finally:
        log.close()
    doc = manifest.to_json()
    doc["log"] = str(log.path)

    def render(console) -> None:
        from llmsetup.download.messages import shown

        run = manifest.run
        verified = ", ".join(f"{n} {how}" for how, n in sorted(doc["verified_by"].items()))
        console.print(_("[bold]{repo}[/] is in {path}").format(repo=ref.repo_id,
                                                                path=manifest.model_dir))
        console.print("  " + _("{files} files, {bytes} bytes; verified by: {verified}").format(
            files=doc["files"], bytes=f"{doc['bytes']:,}", verified=verified))
        if run.get("source"):
            console.print("  " + _("this run: {files} file(s), {bytes} bytes from {source} in "
                                   "{seconds}s").format(
                files=run.get("fetched_files", 0), bytes=f"{run.get('fetched_bytes', 0):,}",
                source=run["source"], seconds=f"{run.get('seconds', 0):.1f}"))
        for note in manifest.trust_notes():
            console.print("  " + _("[yellow]{note}[/]; see `llmsetup check`").format(
                note=shown(note)))

    out.result(doc, render)


def check_cmd(ctx: typer.Context, target: TargetArg, json_: JsonOpt = False) -> None:
    """Re-verify a downloaded model against its manifest (sizes, sha256, index shards).

    Exits 1 when a file is missing or wrong, or a shard named by an index is absent.
    """
    from llmsetup.download import check_folder
    from llmsetup.download.errors import ManifestProblem
    from llmsetup.errors import NotFoundError
    from llmsetup.targets import looks_like_path

    app = state(ctx)
    out = Output(json_)
    if looks_like_path(target):
        folder = Path(target).expanduser().absolute()
    elif "/" in target and target not in app.catalog.names():
        folder = app.settings.models_dir / target  # ORG/REPO, as `download` stores it
    else:
        folder = app.target(target).model_dir
    if not folder.is_dir():
        raise NotFoundError(_("{path}: no such folder").format(path=folder),
                            hint=_("Download it first: `llmsetup download {name}`.").format(
                                name=target))
    report = check_folder(folder, on_file=None)

    def render(console) -> None:
        for f in report["files"]:
            mark = (f"[green]{_('ok')}[/]" if f["status"] == "ok" else
                    f"[red]{_status(f['status'])}[/]")
            console.print(f"  {mark}  " + _("{path} ({size} bytes, {verified_by})").format(
                path=f["path"], size=f"{f['size']:,}", verified_by=f["verified_by"]))
        for s in report["missing_shards"]:
            console.print("  " + _("[red]missing shard[/]  {shard} (named by {index})").format(
                shard=s["shard"], index=s["index"]))
        for path in report["refused"]:
            console.print("  " + _("[red]refused[/]  {path} (the manifest names a path outside "
                                   "the model folder)").format(path=repr(path)))
        if report["ok"]:
            console.print("[green]✓[/] " + _("{path}: {n} files match the manifest").format(
                path=folder, n=len(report["files"])))
            if report["size_only"]:
                console.print("  [yellow]" + _("{n} of them were verified by size only when "
                                               "downloaded").format(n=len(report["size_only"]))
                              + "[/]")

    out.result(report, render)
    name = target if not looks_like_path(target) else "NAME"
    if not report["has_manifest"]:
        raise ManifestProblem(
            _("{path} has no llmsetup manifest, so there is nothing to verify it against")
            .format(path=folder),
            hint=_("`llmsetup download {name} --from {path}` checks it against the "
                   "publisher's hashes and adopts it.").format(name=name, path=folder))
    if report["downloading"] is not None:
        raise ManifestProblem(
            _("{path} is being downloaded right now (pid {pid}): {n} file(s) so far").format(
                path=folder, pid=report["downloading"], n=len(report["files"])),
            hint=_("Check it when that download has finished."))
    if not report["complete"]:
        missing = report["not_downloaded"]
        message = (_("{path}: the download did not finish ({n} file(s) recorded; not "
                     "downloaded yet: {missing})") if missing else
                   _("{path}: the download did not finish ({n} file(s) recorded)"))
        raise ManifestProblem(
            message.format(path=folder, n=len(report["files"]),
                           missing=_some(missing) if missing else ""),
            hint=_("Rerun `llmsetup download {name}`: it fetches only what is missing.").format(
                name=name))
    if not report["ok"]:
        raise ManifestProblem(_("{path}: {n} problem(s) found").format(
            path=folder, n=report["problems"]),
            hint=_("Rerun `llmsetup download` for this model: it fetches only what is missing "
                   "or wrong."))


# The status of a file in `check`'s report (its JSON keeps them, in English), as shown.
def _status(status: str) -> str:
    """A file's status from the report, in the chosen language (the report keeps English:
    download/messages.py)."""
    from llmsetup.download.messages import shown

    return shown(status)


def _some(paths: list[str], shown: int = 5) -> str:
    if len(paths) > shown:
        return _("{paths} and {n} more").format(paths=", ".join(paths[:shown]),
                                                n=len(paths) - shown)
    return ", ".join(paths)
