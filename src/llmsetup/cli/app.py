"""The root of the command line: registers the command modules and runs them."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

from llmsetup import __version__
from llmsetup.cli import bench, catalog, chat, doctor, download, install, recipes, serve, verify
from llmsetup.cli._context import state
from llmsetup.cli._errors import LLMSetupGroup
from llmsetup.cli.transcribe import transcribe_cmd

app = typer.Typer(
    name="llmsetup",
    cls=LLMSetupGroup,
    help="Install local LLMs and speech models in one command, prove they work, and tell "
    "the truth about their speed and memory.",
    no_args_is_help=True,
    add_completion=False,
    # Plain help: rich-formatted help costs ~50 ms of imports (markdown among them) on every
    # `--help`, twice the start-up of the rest of the CLI (see benchmarks/cli_start.py).
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmsetup {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    recipes_dir: Annotated[list[Path] | None, typer.Option(
        "--recipes-dir", metavar="DIR",
        help="An extra folder of recipes (repeatable); overrides bundled ones.")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
) -> None:
    """Install local LLMs and speech models in one command, prove they work, and tell the
    truth about their speed and memory."""
    state(ctx).recipes_dirs = [p.expanduser().absolute() for p in recipes_dir or []]


app.command("list")(catalog.list_cmd)
app.command("show")(catalog.show_cmd)
app.command("doctor")(doctor.doctor_cmd)
app.command("install")(install.install_cmd)
app.command("download")(download.download_cmd)
app.command("check")(download.check_cmd)
app.command("verify")(verify.verify_cmd)
app.command("chat")(chat.chat_cmd)
app.command("serve")(serve.serve_cmd)
app.command("transcribe")(transcribe_cmd)
app.command("bench")(bench.bench_cmd)
app.add_typer(recipes.app, name="recipes")


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="llmsetup")
    finally:
        # The process ends here. Without this, its last act is a garbage collection over
        # every object of every module loaded (typer, pydantic, requests...): about 35 ms.
        gc.freeze()
