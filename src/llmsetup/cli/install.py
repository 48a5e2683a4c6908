"""``llmsetup install``: environment, pinned requirements, torch/CUDA check, download,
verify; resumable, with ``--dry-run`` showing the exact commands."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import (
    Bits4Opt,
    Bits8Opt,
    DryRunOpt,
    JsonOpt,
    ProfileOpt,
    TargetArg,
    check_url,
)
from llmsetup.cli._output import Output
from llmsetup.i18n import _, ngettext


class PlanProgress:
    """Shows the steps, which one runs (with its latest output line), and their times."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.console = out.err
        self.status = None
        self.tty = self.console.is_terminal

    def step_started(self, index: int, total: int, step) -> None:
        label = f"[{index}/{total}] {step.shown_title}"
        if self.tty and not self.out.quiet:
            self.status = self.console.status(label)
            self.status.start()
        else:
            self.out.info(f"→ {label}")
        self._label = label

    def notice(self, message: str) -> None:
        self._stop()
        self.out.warn(message)

    def step_output(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        if self.status is not None:
            self.status.update(f"{self._label}\n  [dim]{line[:150]}[/]")

    def _stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def step_finished(self, index, total, step, status, seconds, info) -> None:
        self._stop()
        label = f"[{index}/{total}] {step.shown_title}"
        if status == "done":
            self.out.info(f"[green]✓[/] {label} [dim]{_('(already done)')}[/]")
        elif status == "satisfied":
            self.out.info(f"[green]✓[/] {label} [dim]{_('(already satisfied)')}[/]")
        elif status == "ran":
            self.out.info(f"[green]✓[/] {label} [dim]({seconds:.1f}s)[/]")
            summary = step.shown_summary(info)
            if summary:
                self.out.info(f"    [dim]{summary}[/]")
        elif status == "interrupted":
            interrupted = _("interrupted after {seconds:.1f}s").format(seconds=seconds)
            self.out.info(f"[yellow]■[/] {label} [dim]{interrupted}[/]")
        else:
            self.out.info(f"[red]✗[/] {label} [dim]({seconds:.1f}s)[/]")


def install_cmd(
    ctx: typer.Context,
    target: TargetArg,
    env_backend: Annotated[str, typer.Option(
        "--env-backend", help=_("auto (conda if present, else uv, else venv), conda, uv, venv "
        "or current (the running interpreter)."))] = "auto",
    profile: ProfileOpt = None,
    python: Annotated[str | None, typer.Option(
        "--python", metavar="X.Y|PATH", help=_("Python version of the environment, or the path "
        "of an interpreter to make it from (default: the recipe's version)."))] = None,
    python_mirror: Annotated[str | None, typer.Option(
        "--python-mirror", metavar="URL", help=_("uv: where to download a Python this machine "
        "lacks (UV_PYTHON_INSTALL_MIRROR; GitHub by default)."), callback=check_url)] = None,
    pip_mirror: Annotated[str | None, typer.Option(
        "--pip-mirror", help=_("ustc (the book's), tuna, aliyun or default (pip's own index)."))]
    = None,
    index_url: Annotated[str | None, typer.Option("--index-url", "-i", help=_("pip index URL."),
                                                         callback=check_url)]
    = None,
    trusted_host: Annotated[list[str] | None, typer.Option(
        "--trusted-host", help=_("Host to trust without valid HTTPS (repeatable)."))] = None,
    find_links: Annotated[list[Path] | None, typer.Option(
        "--find-links", help=_("A folder of wheels to install from (repeatable)."))] = None,
    no_index: Annotated[bool, typer.Option(
        "--no-index", help=_("Use only --find-links folders (offline)."))] = False,
    no_lock: Annotated[bool, typer.Option(
        "--no-lock", help=_("Install the direct pins without the recipe's lock (not "
        "reproducible: transitive versions float to today's)."))] = False,
    force: Annotated[bool, typer.Option(
        "--force", help=_("Run every step again, even those already done."))] = False,
    no_download: Annotated[bool, typer.Option("--no-download", help=_("Skip the download."))]
    = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help=_("Skip the verification."))]
    = False,
    no_cuda_check: Annotated[bool, typer.Option(
        "--no-cuda-check", help=_("Skip the torch/CUDA check."))] = False,
    cpu: Annotated[bool, typer.Option(
        "--cpu/--no-cpu", help=_("No GPU needed: the CUDA check accepts a CPU-only torch, "
        "verify runs on the CPU (--no-cpu: require CUDA again after an install started "
        "with --cpu)."))] = False,
    bits4: Bits4Opt = False,
    bits8: Bits8Opt = False,
    source: Annotated[list[str] | None, typer.Option(
        "--source", help=_("Download source(s) to use, in order (hf, hf-mirror, aliendao, "
        "modelscope)."))] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help=_("Hugging Face endpoint URL."),
                                                         callback=check_url)]
    = None,
    from_dir: Annotated[Path | None, typer.Option(
        "--from", help=_("Adopt an already downloaded copy of the model from this folder."))] = None,
    ui: Annotated[str | None, typer.Option(
        "--ui", help=_("webui: install text-generation-webui at the book's commit and deploy the "
        "model into it (Llama-2 recipes)."))] = None,
    engine: Annotated[str | None, typer.Option(
        "--engine", help=_("vllm: install vLLM's server in its own environment (with --cpu its "
        "CPU build), download, and verify through the server. ctranslate2 (speech models): "
        "also install faster-whisper and CTranslate2 into the model's environment, and "
        "verify through them."))] = None,
    webui_dir: Annotated[Path | None, typer.Option(
        "--webui-dir", help=_("Where the webui checkout goes (or is already)."),
        show_default="./text-generation-webui")] = None,
    git_mirror: Annotated[str | None, typer.Option(
        "--git-mirror", help=_("Clone through a mirror: a URL-prefix proxy "
        "(https://proxy.example/), a mirror root holding oobabooga/text-generation-webui (a "
        "folder, file://, https://host/org/), a template with {url} or {path}, or the mirror "
        "repository's URL."))] = None,
    accept_tree: Annotated[bool, typer.Option(
        "--accept-tree", help=_("Use a --webui-dir that is not a git checkout (a release "
        "archive) even when its files do not match the book's commit."))] = False,
    deploy: Annotated[str, typer.Option(
        "--deploy", help=_("How the model gets into the webui's models/: link, copy or move."))]
    = "link",
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help=_("Check out the book's commit in an existing webui checkout."))]
    = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Install a model: environment, pinned requirements, CUDA check, download, verify.

    Rerunning after a failure or Ctrl-C resumes at the first step not done.
    """
    from llmsetup.download.options import DownloadOptions
    from llmsetup.envs.base import PipOptions
    from llmsetup.errors import UsageError
    from llmsetup.install.build import build_plan
    from llmsetup.install.plan import InstallOptions, WebUIOptions
    from llmsetup.install.started import load_started, redone_steps, save_started

    if bits4 and bits8:
        raise UsageError(_("--4bit and --8bit exclude each other"))
    app = state(ctx)
    out = Output(json_)
    settings = app.settings
    tgt = app.target(target)
    # The values as typer converted them (ctx.params holds click's: paths as strings).
    given = dict(env_backend=env_backend, profile=profile, python=python,
                 python_mirror=python_mirror, pip_mirror=pip_mirror, index_url=index_url,
                 trusted_host=trusted_host, find_links=find_links, cpu=cpu, source=source,
                 endpoint=endpoint, from_dir=from_dir, ui=ui, engine=engine,
                 webui_dir=webui_dir, git_mirror=git_mirror, deploy=deploy)
    reused, changed = _continue(ctx, given, load_started(settings, tgt.recipe.name))
    (env_backend, profile, python, python_mirror, pip_mirror, index_url, trusted_host,
     find_links, cpu, source, endpoint, from_dir, ui, engine, webui_dir, git_mirror,
     deploy) = (
        given[name] for name in STICKY)
    if ui not in (None, "webui"):
        raise UsageError(_("unknown --ui {ui!r}").format(ui=ui),
                         hint=_("The one UI is: webui."))
    if engine not in (None, "vllm", "ctranslate2"):
        raise UsageError(_("unknown --engine {engine!r}").format(engine=engine),
                         hint=_("The engines to install: vllm (a server), ctranslate2 (speech "
                                "models; the webui is --ui webui)."))
    pip = PipOptions.from_choices(
        pip_mirror or settings.get("pip.mirror"), index_url or settings.get("pip.index_url"),
        trusted_host or ([settings.get("pip.trusted_host")] if settings.get("pip.trusted_host")
                         else []),
        [str(p) for p in find_links or []] or ([settings.get("pip.find_links")]
                                               if settings.get("pip.find_links") else []),
        no_index)
    options = InstallOptions(
        env_backend=env_backend if env_backend != "auto" else settings.get("env.backend", "auto"),
        profile=profile, python=python,
        python_mirror=python_mirror or settings.get("env.python_mirror"), pip=pip,
        use_lock=not no_lock, force=force,
        download=not no_download, verify=not no_verify, cuda_check=not no_cuda_check, cpu=cpu,
        quantization="4bit" if bits4 else "8bit" if bits8 else None,
        download_options=DownloadOptions(sources=list(source) if source else None,
                                         endpoint=endpoint, from_dir=from_dir),
        ui=ui, engine=engine,
        webui_options=WebUIOptions(dir=webui_dir,
                                   git_mirror=git_mirror or settings.get("git.mirror"),
                                   deploy=deploy, yes=yes, accept_tree=accept_tree),
    )
    if tgt.recipe.kind == "asr" and options.quantization:
        raise UsageError(_("--4bit and --8bit are for text models; {name} is a speech "
                           "model").format(name=tgt.recipe.name))
    plan = build_plan(tgt, settings, options)
    if no_lock:
        out.warn(_("--no-lock: the direct pins float their dependencies to today's versions; "
                   "the book's pins alone are known to resolve to broken sets."))
    else:
        req = next((s for s in plan.steps if s.key == "requirements"), None)
        if req is not None and req.lock is None:
            out.warn(_("{name} ships no lock for this profile: only the direct pins are "
                       "fixed.").format(name=tgt.recipe.name))
    if reused:
        out.info(_("Continuing the install of {name} started with {flags} (reused; give "
                   "another value to change it).").format(
            name=tgt.recipe.name, flags=" ".join(_flag(n, given[n]) for n in reused)))
    if changed:
        redo = redone_steps(plan)
        flags = ", ".join(_flag(n, given[n]) for n in changed)
        if redo:
            out.info(_("Changed since the install was started: {flags}; this runs again: "
                       "{steps}.").format(flags=flags, steps=", ".join(redo)))
        else:
            out.info(_("Changed since the install was started: {flags}.").format(flags=flags))
    if dry_run:
        _show_plan(plan, out)
        return
    save_started(settings, tgt.recipe.name, {n: _plain(given[n]) for n in STICKY})
    started = time.monotonic()
    results = plan.run(PlanProgress(out))
    doc = {"recipe": tgt.recipe.name, "model_dir": str(tgt.model_dir),
           "seconds": round(time.monotonic() - started, 2),
           "steps": [r.__dict__ for r in results],
           "skipped": [{"key": k, "why": why} for k, why in plan.skipped]}

    def render(console) -> None:
        ran = sum(r.status == "ran" for r in results)
        done = sum(r.status == "done" for r in results)
        found = sum(r.status == "satisfied" for r in results)
        # Each count is added to the text before it.
        counts = ngettext("{n} step ran", "{n} steps ran", ran).format(n=ran)
        if done:
            counts = _("{counts}, {n} already done").format(counts=counts, n=done)
        if found:
            counts = _("{counts}, {n} already satisfied").format(counts=counts, n=found)
        out.success(_("{name} is installed ({counts}, {seconds:.1f}s). Model: {model_dir}")
                    .format(name=tgt.recipe.name, counts=counts, seconds=doc["seconds"],
                            model_dir=tgt.model_dir))
        for key, why in plan.shown_skipped():
            out.info("  " + _("skipped {key}: {why}").format(key=key, why=why))

    out.result(doc, render)


# Options a rerun keeps when they are left out (parameter name -> flag).
STICKY = {
    "env_backend": "--env-backend", "profile": "--profile", "python": "--python",
    "python_mirror": "--python-mirror", "pip_mirror": "--pip-mirror", "index_url": "--index-url",
    "trusted_host": "--trusted-host", "find_links": "--find-links", "cpu": "--cpu",
    "source": "--source", "endpoint": "--endpoint", "from_dir": "--from", "ui": "--ui",
    "engine": "--engine", "webui_dir": "--webui-dir", "git_mirror": "--git-mirror",
    "deploy": "--deploy",
}
_PATHS = {"from_dir", "webui_dir"}


def _plain(value):
    """A parameter's value as JSON keeps it (paths as strings)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def _continue(ctx: typer.Context, values: dict, started: dict) -> tuple[list[str], list[str]]:
    """Take the recorded value of each option left out (in ``values``, in place); return
    the options reused and those changed since the install was started."""
    reused, changed = [], []
    for name in STICKY:
        if name not in started or started[name] == _plain(values[name]):
            continue
        # By name: typer may vendor its own click, with its own ParameterSource.
        source = ctx.get_parameter_source(name)
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            old = started[name]
            if name in _PATHS and old is not None:
                old = Path(old)
            elif name == "find_links" and old is not None:
                old = [Path(p) for p in old]
            values[name] = old
            reused.append(name)
        else:
            changed.append(name)
    return reused, changed


def _flag(name: str, value) -> str:
    flag = STICKY[name]
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    if isinstance(value, (list, tuple)):
        return " ".join(f"{flag} {v}" for v in value) or _("{flag} (none)").format(flag=flag)
    return f"{flag} {value}" if value is not None else _("{flag} (none)").format(flag=flag)


def _show_plan(plan, out: Output) -> None:
    rows = plan.status()
    doc = {"recipe": plan.recipe.name, "dry_run": True, "steps": rows,
           "skipped": [{"key": k, "why": why} for k, why in plan.skipped]}

    def render(console) -> None:
        from rich.markup import escape

        console.print(_("[bold]Plan for {name}[/] (dry run: nothing is changed)").format(
            name=plan.recipe.name))
        for i, (step, row) in enumerate(zip(plan.steps, rows, strict=True), 1):
            mark = (f"[green]{_('already satisfied')}[/]" if row.get("satisfied") else
                    f"[green]{_('done')}[/]" if row["done"] else _("todo"))
            console.print(f"{i}. {escape(step.shown_title)}  \\[{mark}]")
            for command in row["commands"]:
                console.print(f"   $ {command}", markup=False, highlight=False)
            if row.get("requirements") or row.get("trimmed_from"):
                console.print(f"   # {row['requirements_file']}:", markup=False)
                if row.get("trimmed_from"):
                    lines = _("(the lines of {file} up to and including {cutoff})").format(
                        file=row["trimmed_from"], cutoff=row["cutoff"])
                    console.print(f"   #   {lines}", markup=False)
                for pin in row.get("requirements") or []:
                    console.print(f"   #   {pin}", markup=False)
        for key, why in plan.shown_skipped():
            console.print("-  " + _("{key}: skipped ({why})").format(key=key, why=why))

    out.result(doc, render)
    sys.stdout.flush()
