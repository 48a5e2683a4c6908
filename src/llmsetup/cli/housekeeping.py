"""``llmsetup rm`` and ``llmsetup prune``: free the disk llmsetup took."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import DryRunOpt, JsonOpt, NameArg
from llmsetup.cli._output import Output, pad, width
from llmsetup.errors import UsageError
from llmsetup.i18n import N_, _

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help=_("Remove without asking (needed "
                                      "when not on a terminal)."))]

# What an item of a removal is (housekeeping/disk.py's Item.kind, kept in English in the
# --json), as the list shows it.
KINDS = {"model": N_("model"), "deploy": N_("deploy"), "env": N_("env"),
         "webui-env": N_("webui-env"), "record": N_("record"), "state": N_("state"),
         "logs": N_("logs"), "partial": N_("partial"), "lock": N_("lock"), "log": N_("log")}


def _kind(kind: str) -> str:
    return _(KINDS[kind]) if kind in KINDS else kind


def _render(removal, dry_run: bool):
    from llmsetup.housekeeping.disk import human

    def render(console) -> None:
        if removal.items:
            column = max(width(_kind(i.kind)) for i in removal.items)
            console.print(_("Would remove:") if dry_run else _("Remove:"))
            for item in removal.items:
                note = f"  [dim]{item.note}[/]" if item.note else ""
                console.print(f"  {pad(_kind(item.kind), column)}  {human(item.bytes):>9}  "
                              f"{item.path}{note}", markup=True)
            console.print("  " + _("total {size} ({bytes} bytes)").format(
                size=human(removal.bytes), bytes=f"{removal.bytes:,}"))
        else:
            console.print(_("Nothing to remove."))
        for kept in removal.kept:
            console.print("  " + _("kept {kind} {path}: {reason}").format(
                kind=_kind(kept.kind), path=kept.path, reason=kept.reason))

    return render


def _confirm(out: Output, removal, yes: bool, dry_run: bool) -> bool:
    """Whether to go ahead: --yes, else a question on a terminal; without one, exit 2."""
    if dry_run or not removal.items or yes:
        return not dry_run and bool(removal.items)
    if not sys.stdin.isatty():
        raise UsageError(_("not removing anything without confirmation: this is not a terminal"),
                         hint=_("Rerun with --yes to remove them (--dry-run only lists them)."))
    from llmsetup.housekeeping.disk import human

    if not typer.confirm(_("Remove these ({size})?").format(size=human(removal.bytes)),
                         default=False, err=True):
        out.info(_("Nothing removed."))
        raise typer.Exit(1)
    return True


def rm_cmd(
    ctx: typer.Context,
    name: NameArg,
    model: Annotated[bool, typer.Option("--model", help=_("The model files (a webui link to "
                                        "them goes too)."))] = False,
    env: Annotated[bool, typer.Option("--env", help=_("Its environment(s) too, unless another "
                                      "installed recipe uses them."))] = False,
    webui_deploy: Annotated[bool, typer.Option(
        "--webui-deploy", help=_("The link or copy deployed into the webui's models/. "
        "Without --model and --webui-deploy: both."))] = False,
    all_: Annotated[bool, typer.Option("--all", help=_("Everything llmsetup made for it: model, "
                                       "deployment, environments, state records, logs."))] = False,
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
        raise UsageError(_("{name}: rm takes a recipe name, not a folder").format(name=name),
                         hint=_("llmsetup never removes a model folder you pointed it at; "
                                "delete it by hand if you want."))
    rows = recipe_rows(app.catalog, app.settings)
    not_installed = {r["name"] for r in rows if not r["installed"]}
    removal = plan_removal(app.settings, target.recipe.name, target.model_dir,
                           Parts.from_flags(model, env, webui_deploy, all_), not_installed)
    if not json_:
        _render(removal, dry_run)(out.err if not dry_run else out.out)
    go = _confirm(out, removal, yes, dry_run)
    if go:
        execute(removal, app.settings, target.recipe.name)
    doc = {"recipe": target.recipe.name, "dry_run": dry_run, "removed": go, **removal.to_json()}
    if json_:
        out.result(doc)
    elif go:
        from llmsetup.housekeeping.disk import human

        out.success(_("removed {n} item(s), {size}").format(n=len(removal.items),
                                                          size=human(removal.bytes)))


def prune_cmd(
    ctx: typer.Context,
    older_than: Annotated[int, typer.Option(
        "--older-than", metavar="DAYS", min=0,
        help=_("Remove logs older than DAYS days."))] = 30,
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
        _render(removal, dry_run)(out.err if not dry_run else out.out)
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

        out.success(_("removed {n} item(s), {size}").format(n=len(removal.items),
                                                          size=human(removal.bytes)))
