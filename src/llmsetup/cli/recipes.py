"""``llmsetup recipes ...``: work with recipe files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmsetup.cli._options import JsonOpt
from llmsetup.cli._output import Output
from llmsetup.i18n import _

app = typer.Typer(help=_("Work with recipe files."), no_args_is_help=True)


@app.command("validate")
def recipes_validate(
    files: Annotated[list[Path], typer.Argument(help=_("Recipe files to check."),
                                                      metavar="FILE...")],
    json_: JsonOpt = False,
) -> None:
    """Check recipe files; a bad one exits 2 with file:line, the field and what was expected.

    Two of the files with the same recipe name are an error too."""
    from llmsetup.errors import LLMSetupError, RecipeError
    from llmsetup.recipes.loader import duplicate_message, load_file

    out = Output(json_)
    results = []
    for path in files:
        try:
            recipe = load_file(path)
            results.append({"file": str(path), "ok": True, "name": recipe.name, "problems": []})
        except RecipeError as exc:
            results.append({"file": str(path), "ok": False, "problems": exc.problems
                            or [exc.message]})
        except LLMSetupError as exc:
            results.append({"file": str(path), "ok": False, "problems": [exc.message]})
    first: dict[str, dict] = {}
    for r in results:
        if r["ok"] and r["name"] in first:
            r["ok"] = False
            r["problems"] = [duplicate_message(r["name"], [first[r["name"]]["file"], r["file"]])]
        first.setdefault(r.get("name"), r)
    bad = [r for r in results if not r["ok"]]

    def render(console) -> None:
        for r in results:
            if r["ok"]:
                console.print(_("[green]ok[/]   {file} ({name})").format(file=r["file"],
                                                                          name=r["name"]))
        for r in bad:
            for problem in r["problems"]:
                typer.echo(_("Error: {message}").format(message=problem), err=True)

    out.result({"valid": not bad, "files": results}, render)
    if bad:
        raise typer.Exit(2)
