"""The root of the command line: the table of commands, and the root options.

A command is registered with one row of :class:`Root`'s table: its name, and the module
in ``llmsetup.cli`` and function (or Typer sub-app) that implement it. Only the command
that runs is imported and built (see ``_lazy.py``): start-up is most of what short
commands cost.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated, ClassVar

import typer

from llmsetup import __version__
from llmsetup.cli._context import state
from llmsetup.cli._lazy import LazyGroup
from llmsetup.cli._options import check_folders
from llmsetup.i18n import _


class Root(LazyGroup):
    # In the order `--help` lists them.
    table: ClassVar[dict[str, tuple[str, str]]] = {
        "list": ("catalog", "list_cmd"),
        "show": ("catalog", "show_cmd"),
        "doctor": ("doctor", "doctor_cmd"),
        "install": ("install", "install_cmd"),
        "download": ("download", "download_cmd"),
        "check": ("download", "check_cmd"),
        "verify": ("verify", "verify_cmd"),
        "chat": ("chat", "chat_cmd"),
        "serve": ("serve", "serve_cmd"),
        "transcribe": ("transcribe", "transcribe_cmd"),
        "bench": ("bench", "bench_cmd"),
        "rm": ("housekeeping", "rm_cmd"),
        "prune": ("housekeeping", "prune_cmd"),
        "recipes": ("recipes", "app"),
    }


app = typer.Typer(
    name="llmsetup",
    cls=Root,
    help=_("Install local LLMs and speech models in one command, prove they work, and tell "
           "the truth about their speed and memory."),
    no_args_is_help=True,
    add_completion=False,
    # Plain help: rich-formatted help costs ~50 ms of imports (markdown among them) on every
    # `--help`, twice the start-up of the rest of the CLI (see benchmarks/cli_start.py).
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _lang(value: str | None) -> str | None:
    # entry.main() has chosen the language from the command line's words already, before
    # any command was built; this checks the value (and sets it when the app is driven
    # in-process, as the tests do).
    if value is None:
        return None
    from llmsetup import i18n

    if i18n.normalize(value) is None:
        raise typer.BadParameter(_("{value!r}: expected zh or en").format(value=value))
    i18n.choose(value)
    return value


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmsetup {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    recipes_dir: Annotated[list[Path] | None, typer.Option(
        "--recipes-dir", metavar="DIR",
        help=_("An extra folder of recipes (repeatable); overrides bundled ones."),
        callback=check_folders)] = None,
    lang: Annotated[str | None, typer.Option(
        "--lang", metavar="zh|en", callback=_lang, is_eager=True,
        help=_("The language of messages: zh (Chinese) or en (English). Default: "
               "LLMSETUP_LANG, then the config file's lang, then the locale."))] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help=_("Show the version and exit."))] = False,
) -> None:
    # The group's help is the Typer app's (above), in the chosen language.
    app = state(ctx)
    app.recipes_dirs = [p.expanduser().absolute() for p in recipes_dir or []]
    if not ctx.resilient_parsing and not _asks_for_help(app.words):
        # Every command reads the config file now, so that a broken one stops them all
        # alike (exit 2, naming the key). Without a config file this costs one stat().
        app.settings  # noqa: B018


def _asks_for_help(words: list[str]) -> bool:
    # `llmsetup CMD --help` must work whatever the config file holds; the root callback
    # runs before the command parses its own options.
    words = words[:words.index("--")] if "--" in words else words
    return any(w in ("--help", "-h") for w in words)



def main() -> None:
    """Run the CLI (the console script starts at cli/entry.py, which chooses the language)."""
    from llmsetup.cli import _signals

    _signals.install()
    try:
        app(prog_name="llmsetup")
    finally:
        # The process ends here. Without this, its last act is a garbage collection over
        # every object of every module loaded (typer, pydantic, requests...): about 35 ms.
        gc.freeze()
