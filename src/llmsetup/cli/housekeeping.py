"""``llmsetup rm`` and ``llmsetup prune``: free the disk llmsetup took."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import DryRunOpt, JsonOpt, NameArg
from llmsetup.cli._output import Output
from llmsetup.errors import UsageError

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Remove without asking (needed "
                                      "when not on a terminal).")]


def _render(removal, verb: str):
    from llmsetup.housekeeping.disk import human

    def render(console) -> None:
        if removal.items:
            width = max(len(i.kind) for i in removal.items)
            console.print(f"{verb}:")
            for item in removal.items:
                note = f"  [dim]{item.note}[/]" if item.note else ""
                console.print(f"  {item.kind:<{width}}  {human(item.bytes):>9}  {item.path}{note}",
                              markup=True)
            console.print(f"  total {human(removal.bytes)} ({removal.bytes:,} bytes)")
        else:
            console.print("Nothing to remove.")
        for kept in removal.kept:
            console.print(f"  kept {kept.kind} {kept.path}: {kept.reason}")

    return render


def _confirm(out: Output, removal, yes: bool, dry_run: bool) -> bool:
    """Whether to go ahead: --yes, else a question on a terminal; without one, exit 2."""
    if dry_run or not removal.items or yes:
        return not dry_run and bool(removal.items)
    if not sys.stdin.isatty():
        raise UsageError("not removing anything without confirmation: this is not a terminal",
                         hint="Rerun with --yes to remove them (--dry-run only lists them).")
    from llmsetup.housekeeping.disk import human

    if not typer.confirm(f"Remove these ({human(removal.bytes)})?", default=False,
                         err=True):
        out.info("Nothing removed.")
        raise typer.Exit(1)
    return True


def rm_cmd(
    ctx: typer.Context,
    name: NameArg,
    model: Annotated[bool, typer.Option("--model", help="The model files (a webui link to "
                                        "them goes too).")] = False,
    env: Annotated[bool, typer.Option("--env", help="Its environment(s) too, unless another "
                                      "installed recipe uses them.")] = False,
    webui_deploy: Annotated[bool, typer.Option(
        "--webui-deploy", help="The link or copy deployed into the webui's models/. "
        "Without --model and --webui-deploy: both.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Everything llmsetup made for it: model, "
                                       "deployment, environments, state records, logs.")] = False,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Remove what was installed for a recipe: by default its model files (and their
    deployment in the webui); only what llmsetup made or recorded, with sizes shown first."""
    from llmsetup.catalog_view import recipe_rows
    from llmsetup.housekeeping.remove import Parts, execute, plan_removal

    app = state(ctx)
    out = Output(json_)
    target = None if name.startswith((".", "/", "~")) or "\\" in name else app.target(name)
    if target is None or target.from_folder:
        raise UsageError(f"{name}: rm takes a recipe name, not a folder",
                         hint="llmsetup never removes a model folder you pointed it at; "
                         "delete it by hand if you want.")
    rows = recipe_rows(app.catalog, app.settings)
    not_installed = {r["name"] for r in rows if not r["installed"]}
    removal = plan_removal(app.settings, target.recipe.name, target.model_dir,
                           Parts.from_flags(model, env, webui_deploy, all_), not_installed)
    verb = "Would remove" if dry_run else "Remove"
    if not json_:
        _render(removal, verb)(out.err if not dry_run else out.out)
    go = _confirm(out, removal, yes, dry_run)
    if go:
        execute(removal, app.settings, target.recipe.name)
    doc = {"recipe": target.recipe.name, "dry_run": dry_run, "removed": go, **removal.to_json()}
    if json_:
        out.result(doc)
    elif go:
        from llmsetup.housekeeping.disk import human

        out.success(f"removed {len(removal.items)} item(s), {human(removal.bytes)}")


def prune_cmd(
    ctx: typer.Context,
    older_than: Annotated[int, typer.Option(
        "--older-than", metavar="DAYS", min=0,
        help="Remove logs older than DAYS days.")] = 30,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Remove what no install needs: partial downloads, stale download locks, environments
    no recipe's record points to, old logs."""
    from llmsetup.housekeeping.prune import execute, plan_prune

    app = state(ctx)
    out = Output(json_)
    removal = plan_prune(app.settings, older_than)
    if not json_:
        _render(removal, "Would remove" if dry_run else "Remove")(
            out.err if not dry_run else out.out)
    go = _confirm(out, removal, yes, dry_run)
    skipped = execute(removal, app.settings) if go else []
    gone = {k.path for k in skipped}
    removal.items = [i for i in removal.items if i.path not in gone]
    removal.kept += skipped
    doc = {"dry_run": dry_run, "removed": go, **removal.to_json()}
    if json_:
        out.result(doc)
    elif go:
        from llmsetup.housekeeping.disk import human

        out.success(f"removed {len(removal.items)} item(s), {human(removal.bytes)}")
