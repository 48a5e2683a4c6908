"""``llmsetup doctor``: what this machine has, and whether a model fits."""

from __future__ import annotations

from typing import Annotated

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import JsonOpt
from llmsetup.cli._output import Output
from llmsetup.i18n import _


def doctor_cmd(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Argument(
        metavar="[NAME|DIR]", help=_("Also say whether this model fits (fp16, 8-bit, 4-bit)."))] = None,
    json_: JsonOpt = False,
) -> None:
    """OS, Python, environment tools, GPUs, ffmpeg, git, free disk; and whether NAME fits."""
    from llmsetup import doctor

    app = state(ctx)
    report = doctor.run(app.settings, app.target(target) if target else None)

    def render(console) -> None:
        from rich.table import Table

        console.print(_("[bold]llmsetup {version}[/] on {platform}, Python {python}").format(
            version=report["llmsetup"], platform=report["os"]["platform"],
            python=report["python"]["version"]))
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column(_("tool"))
        table.add_column(_("status"))
        for name, info in report["tools"].items():
            status = (f"[green]{_('found')}[/] {info['version'] or ''}" if info["found"] else
                      f"[dim]{_('not found')}[/]")
            table.add_row(name, status)
        console.print(table)
        gpu = report["gpu"]
        if gpu["gpus"]:
            for g in gpu["gpus"]:
                console.print(_("GPU {index}: {name}, {total} GB ({free} GB free), driver "
                                "{driver}, compute capability {capability}").format(
                    index=g["index"], name=g["name"], total=g["memory_total_gb"],
                    free=f"{g['memory_free_mb'] / 1024:.1f}", driver=g["driver"],
                    capability=g["compute_capability"] or "?"))
        else:
            console.print(_("GPU: no GPU ({reason})").format(reason=gpu["error"]))
        disk = report["disk"]
        console.print(_("Models dir: {path} ({free} GB free of {total} GB)").format(
            path=report["paths"]["models_dir"], free=disk["free_gb"], total=disk["total_gb"]))
        console.print(_("State: {path}").format(path=report["paths"]["home"]))
        model = report.get("model")
        if model:
            console.print(_("[bold]{name}[/] needs:").format(name=model["name"]))
            for precision, row in model["precisions"].items():
                fits = {True: f"[green]{_('fits')}[/]", False: f"[red]{_('does not fit')}[/]",
                        None: f"[dim]{_('no GPU')}[/]"}[row["fits"]]
                console.print("  " + _("{precision}: about {needs} GB  {fits}").format(
                    precision=precision, needs=row["needs_gb"], fits=fits))
        for line in report["advice"]:
            # The report's advice is English (it is the --json's too): each line is shown
            # in the chosen language where the catalog has it (llmsetup/doctor.py's N_()).
            console.print(_("[yellow]Advice:[/] {advice}").format(advice=_(line) if line else ""))

    Output(json_).result(report, render)
