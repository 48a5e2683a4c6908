"""``llmsetup download`` and ``llmsetup check``: get a model's weights, and prove them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import JsonOpt, TargetArg, check_new_folder, check_url
from llmsetup.cli._output import Output

SourceOpt = Annotated[list[str] | None, typer.Option(
    "--source", metavar="SOURCE",
    help="Use only this source: hf, hf-mirror, aliendao or modelscope (repeat it to give "
    "several, tried in that order).",
    show_default="the recipe's sources in order, each tried if the one before fails")]
EndpointOpt = Annotated[str | None, typer.Option(
    "--endpoint", metavar="URL", callback=check_url,
    help="A Hugging Face endpoint (a mirror's URL); implies "
    "--source hf unless --source is given. Default: HF_ENDPOINT or huggingface.co.")]
RevisionOpt = Annotated[str | None, typer.Option(
    "--revision", metavar="REV", help="Branch, tag or commit.", show_default="the recipe's, main")]
ModelsDirOpt = Annotated[Path | None, typer.Option(
    "--models-dir", metavar="DIR", help="Store into DIR/ORG/REPO.", callback=check_new_folder,
    show_default="LLMSETUP_MODELS_DIR or ./dataroot/models")]
ConnectionsOpt = Annotated[int | None, typer.Option(
    "--connections", metavar="N", min=1, max=64,
    help="Parallel connections, at most (capped by the source: aliendao allows 2). The "
    "first starts alone; the others open unless it alone beats 256 MB/s.", show_default="8")]
IncludeOpt = Annotated[list[str] | None, typer.Option(
    "--include", metavar="GLOB", help="Only files whose path matches (repeatable).")]
ExcludeOpt = Annotated[list[str] | None, typer.Option(
    "--exclude", metavar="GLOB", help="Skip files whose path matches (repeatable).")]
AllFormatsOpt = Annotated[bool, typer.Option(
    "--all-formats", help="Also fetch .bin/.pt/Flax/TF weights when safetensors exist.")]
FromOpt = Annotated[Path | None, typer.Option(
    "--from", metavar="DIR", help="Check and adopt an existing download in DIR "
    "(hard-linked when possible); only what is missing or wrong is downloaded.")]
CopyOpt = Annotated[bool, typer.Option(
    "--copy", help="With --from: copy the files instead of hard-linking them.")]
AcceptMirrorCopyOpt = Annotated[bool, typer.Option(
    "--accept-mirror-copy", help="Take aliendao's copy of a file by its size where it "
    "differs from the HF revision (the mirror may hold an older one).")]


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
        metavar="NAME|ORG/REPO", help="A recipe name (see `llmsetup list`) or a repository id.")],
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
        log.emit("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        log.close()
    doc = manifest.to_json()
    doc["log"] = str(log.path)

    def render(console) -> None:
        run = manifest.run
        verified = ", ".join(f"{n} {how}" for how, n in sorted(doc["verified_by"].items()))
        console.print(f"[bold]{ref.repo_id}[/] is in {manifest.model_dir}")
        console.print(f"  {doc['files']} files, {doc['bytes']:,} bytes; verified by: {verified}")
        if run.get("source"):
            console.print(f"  this run: {run.get('fetched_files', 0)} file(s), "
                          f"{run.get('fetched_bytes', 0):,} bytes from {run['source']} "
                          f"in {run.get('seconds', 0):.1f}s")
        for note in manifest.trust_notes():
            console.print(f"  [yellow]{note}[/]; see `llmsetup check`")

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
        raise NotFoundError(f"{folder}: no such folder",
                            hint=f"Download it first: `llmsetup download {target}`.")
    report = check_folder(folder, on_file=None)

    def render(console) -> None:
        for f in report["files"]:
            mark = "[green]ok[/]" if f["status"] == "ok" else f"[red]{f['status']}[/]"
            console.print(f"  {mark}  {f['path']} ({f['size']:,} bytes, {f['verified_by']})")
        for s in report["missing_shards"]:
            console.print(f"  [red]missing shard[/]  {s['shard']} (named by {s['index']})")
        for path in report["refused"]:
            console.print(f"  [red]refused[/]  {path!r} (the manifest names a path outside "
                          "the model folder)")
        if report["ok"]:
            console.print(f"[green]✓[/] {folder}: {len(report['files'])} files match the manifest")
            if report["size_only"]:
                console.print(f"  [yellow]{len(report['size_only'])} of them were verified by "
                              "size only when downloaded[/]")

    out.result(report, render)
    if not report["has_manifest"]:
        raise ManifestProblem(
            f"{folder} has no llmsetup manifest, so there is nothing to verify it against",
            hint=f"`llmsetup download {target if not looks_like_path(target) else 'NAME'} "
            f"--from {folder}` checks it against the publisher's hashes and adopts it.")
    if report["downloading"] is not None:
        raise ManifestProblem(
            f"{folder} is being downloaded right now (pid {report['downloading']}): "
            f"{len(report['files'])} file(s) so far", hint="Check it when that download "
            "has finished.")
    if not report["complete"]:
        missing = report["not_downloaded"]
        lacking = ("; not downloaded yet: " + _some(missing)) if missing else ""
        raise ManifestProblem(
            f"{folder}: the download did not finish ({len(report['files'])} file(s) "
            f"recorded{lacking})", hint=f"Rerun `llmsetup download "
            f"{target if not looks_like_path(target) else 'NAME'}`: it fetches only what is "
            "missing.")
    if not report["ok"]:
        raise ManifestProblem(f"{folder}: {report['problems']} problem(s) found",
                              hint="Rerun `llmsetup download` for this model: it fetches only "
                              "what is missing or wrong.")


def _some(paths: list[str], shown: int = 5) -> str:
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(paths[:shown]) + more
