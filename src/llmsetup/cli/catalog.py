"""``llmsetup list`` and ``llmsetup show``: the recipes and what they hold."""

from __future__ import annotations

import sys

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import JsonOpt, TargetArg
from llmsetup.cli._output import Output
from llmsetup.i18n import _


def _gb(value: float | None) -> str:
    return "?" if value is None else (f"{value:.0f}" if value >= 10 else f"{value:.1f}")


def _params(value: float | None) -> str:
    if not value:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"


def _disk(disk: dict | None) -> list[str]:
    """The model, env and total cells; ``*`` marks an environment shared with others."""
    from llmsetup.housekeeping.disk import human

    if disk is None:
        return ["-", "-", "-"]
    # Only our own folders count (conda and the current interpreter have no size here).
    envs = [e for e in disk["envs"] if e["bytes"] is not None]
    env = "-" if not envs else human(sum(e["bytes"] for e in envs)) + (
        "*" if any(e["shared_with"] for e in envs) else "")
    return [human(disk["model_bytes"] + disk["deploy_bytes"]), env, human(disk["total_bytes"])]


def list_cmd(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List every recipe: kind, repository, size, GPU memory per precision, installed or not,
    and the disk its model files and environments take."""
    from llmsetup.catalog_view import recipe_rows, with_disk_usage
    from llmsetup.housekeeping.disk import human

    app = state(ctx)
    out = Output(json_)
    rows = recipe_rows(app.catalog, app.settings)
    total = with_disk_usage(rows, app.settings)
    for message in app.catalog.problem_messages:
        out.warn(_("skipped a broken recipe: {message}").format(message=message))

    if json_:
        out.result({"recipes": rows, "disk_total_bytes": total})
        return
    table = [[row["name"], row["kind"], row["repo_id"], _params(row["params"]),
              f"{_gb(row['memory_gb']['fp16'])} / {_gb(row['memory_gb']['int8'])} / "
              f"{_gb(row['memory_gb']['int4'])}", _("yes") if row["installed"] else _("no"),
              *_disk(row["disk"])]
             for row in rows]
    # Column headers and cell words are translated; the values (names, kinds, repositories)
    # are the recipes' own, as `--json` gives them.
    out.table([_("name"), _("kind"), _("repository"), _("params"), _("GPU GB fp16/8-bit/4-bit"),
               _("installed"), _("model"), _("env"), _("disk")], table, right={3, 4, 6, 7, 8})
    if any(row["disk"] for row in rows):
        shared = any(e["shared_with"] for row in rows if row["disk"]
                     for e in row["disk"]["envs"])
        if shared:
            sys.stdout.write(_("* an environment shared with other recipes, counted once in "
                               "the total") + "\n")
        sys.stdout.write(_("total on disk: {size}").format(size=human(total)) + "\n")


def show_cmd(ctx: typer.Context, target: TargetArg, json_: JsonOpt = False) -> None:
    """Everything in a recipe, its resolved paths and its install plan."""
    from llmsetup.catalog_view import describe_target

    app = state(ctx)
    doc = describe_target(app.target(target), app.settings)

    def render(console) -> None:
        import yaml
        from rich.syntax import Syntax

        console.print(f"[bold]{doc['recipe']['name']}[/]: {doc['recipe']['description']}")
        for key, value in doc["paths"].items():
            console.print(f"  {key}: {value}")
        console.print(Syntax(yaml.safe_dump(doc["recipe"], sort_keys=False, allow_unicode=True,
                                            width=100), "yaml", background_color="default"))
        if doc.get("plan"):
            console.print(_("[bold]Install plan[/] (llmsetup install {name}):").format(
                name=doc["recipe"]["name"]))
            from llmsetup.i18n import shown

            for i, step in enumerate(doc["plan"], 1):
                console.print(f"  {i}. {shown(step['title'])}")

    Output(json_).result(doc, render)
