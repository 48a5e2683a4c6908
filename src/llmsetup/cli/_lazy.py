"""Commands imported and built only when they run: the start-up of every command.

Typer turns a command function into a click command by reading its signature (evaluating
each annotation, once for the parameters and once for the callback): about 1 ms a
command, 12 ms for all of them, plus the import of every command module, on every start,
whichever command runs. A table of ``name -> (module, attribute)`` lets the root group
import and build only the command asked for (see benchmarks/cli_start.py and
docs/performance.md). ``--help`` lists one line per command, which needs each docstring
but no parameters: it is built from the docstring, the way Typer does it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, MutableMapping
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand

from llmsetup.cli._click_text import Command, Group
from llmsetup.cli._errors import LLMSetupGroup
from llmsetup.i18n import _


def _settings() -> dict[str, Any]:
    # Each command is built as the root app would build it (plain help, our own errors).
    return {"rich_markup_mode": None, "pretty_exceptions_enable": False,
            "add_completion": False}


def _load(spec: tuple[str, str]) -> Any:
    module, attribute = spec
    # __import__, not importlib.import_module: -X importtime sees only the former, and
    # benchmarks/cli_start.py reads it to check the host's import graph.
    return getattr(__import__(f"llmsetup.cli.{module}", fromlist=[attribute]), attribute)


def build(name: str, target: Any) -> Any:
    """The click command for ``target``, a command function or a Typer sub-app."""
    holder = typer.Typer(**_settings())
    if isinstance(target, typer.Typer):
        # Typer takes a command's help from its docstring; the catalog holds the docstrings
        # of the command functions (scripts/i18n.py), so each is passed through _() here.
        for info in target.registered_commands:
            if info.help is None and info.callback is not None and info.callback.__doc__:
                info.help = _(inspect.getdoc(info.callback))
            info.cls = info.cls or Command
        holder.add_typer(target, name=name, cls=Group)
        return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]
    doc = inspect.getdoc(target)
    holder.command(name, cls=Command, help=_(doc) if doc else None)(target)
    return typer.main.get_command(holder)


class LazyCommands(MutableMapping):
    """``name -> click command``, in table order; each built on first access."""

    def __init__(self, table: dict[str, tuple[str, str]], built: dict[str, Any]) -> None:
        self._table = dict(table)
        self._built = dict(built)
        self._names = [*self._table, *(n for n in self._built if n not in self._table)]

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in self._table:
                raise KeyError(name)
            self._built[name] = build(name, _load(self._table[name]))
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._names:
            self._names.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)
        self._table.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def summary(self, name: str) -> Any:
        """A command good for the list in ``--help``: built if it was, else its docstring.

        A function registered without help/short_help/hidden/deprecated (as every row of
        the table is) gets ``inspect.getdoc`` as its help from Typer; a Typer sub-app's help
        depends on more (its info, its callback), so a sub-app is built."""
        if name in self._built or name not in self._table:
            return self.get(name)
        target = _load(self._table[name])
        if isinstance(target, typer.Typer):
            return self[name]
        doc = inspect.getdoc(target)
        return TyperCommand(name=name, help=_(doc) if doc else None)


class LazyGroup(LLMSetupGroup):
    """The root group: builds the command that runs, not all of them.

    Subclasses set ``table``: ``name -> (module in llmsetup.cli, attribute)``."""

    table: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(self.table, dict(self.commands))
        self._describing = False

    def list_commands(self, ctx) -> list[str]:  # type: ignore[override]
        # Typer's own reads ``commands.items()``, which would build every command.
        return list(self.commands)

    def get_command(self, ctx, cmd_name: str):  # type: ignore[override]
        if self._describing:
            return self.commands.summary(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx, formatter) -> None:  # type: ignore[override]
        self._describing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._describing = False
