"""``llmsetup doctor``: what this machine has, and whether a model fits."""

from __future__ import annotations

from typing import Annotated

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import JsonOpt
from llmsetup.cli._output import Output


def doctor_cmd(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Argument(
        metavar="[NAME|DIR]", help="Also say whether this model fits (fp16, 8-bit, 4-bit).")] = None,
    json_: JsonOpt = False,
) -> None:
    """OS, Python, environment tools, GPUs, ffmpeg, git, free disk; and whether NAME fits."""
    from llmsetup import doctor

    app = state(ctx)
    report = doctor.run(app.settings, app.target(target) if target else None)

    def render(console) -> None:
        from rich.table import Table

        console.print(f"[bold]llmsetup {report['llmsetup']}[/] on {report['os']['platform']}, "
                      f"Python {report['python']['version']}")
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("tool")
        table.add_column("status")
        for name, info in report["tools"].items():
            status = f"[green]found[/] {info['version'] or ''}" if info["found"] else "[dim]not found[/]"
            table.add_row(name, status)
        console.print(table)
        gpu = report["gpu"]
        if gpu["gpus"]:
            for g in gpu["gpus"]:
                console.print(f"GPU {g['index']}: {g['name']}, {g['memory_total_gb']} GB "
                              f"({g['memory_free_mb'] / 1024:.1f} GB free), driver {g['driver']}, "
                              f"compute capability {g['compute_capability'] or '?'}")
        else:
            console.print(f"GPU: no GPU ({gpu['error']})")
        disk = report["disk"]
        console.print(f"Models dir: {report['paths']['models_dir']} "
                      f"({disk['free_gb']} GB free of {disk['total_gb']} GB)")
        console.print(f"State: {report['paths']['home']}")
        model = report.get("model")
        if model:
            console.print(f"[bold]{model['name']}[/] needs:")
            for precision, row in model["precisions"].items():
                fits = {True: "[green]fits[/]", False: "[red]does not fit[/]",
                        None: "[dim]no GPU[/]"}[row["fits"]]
                console.print(f"  {precision}: about {row['needs_gb']} GB  {fits}")
        for line in report["advice"]:
            console.print(f"[yellow]Advice:[/] {line}")

    Output(json_).result(report, render)
