"""One output object for every command: human (rich), JSON, or quiet.

- ``--json``: exactly one JSON document on stdout, nothing else there; messages go to
  stderr.
- human: results on stdout, progress and messages on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, ClassVar

from llmsetup.i18n import _
from llmsetup.secret import redact


def width(text: str) -> int:
    """The columns ``text`` takes on a terminal: a Chinese character takes two."""
    if text.isascii():
        return len(text)
    from unicodedata import east_asian_width

    return sum(2 if east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, columns: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``columns`` terminal columns (on the left: ``right``)."""
    fill = " " * max(0, columns - width(text))
    return fill + text if right else text + fill


class Output:
    # Whether this run wrote its JSON document: a command that prints its result and then
    # fails (`check`, `verify`) has said everything; no failure document follows it.
    # LLMSetupGroup resets it at the start of each run.
    document_written: ClassVar[bool] = False

    def __init__(self, json_mode: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self._out = None
        self._err = None

    @property
    def out(self):
        """A rich console on stdout."""
        if self._out is None:
            from rich.console import Console

            # A pipe gets a wide console so that tables are never cut to 80 columns, and
            # long lines (commands, paths) are never broken.
            tty = sys.stdout.isatty()
            self._out = Console(file=sys.stdout, highlight=False, width=None if tty else 160,
                                soft_wrap=not tty)
        return self._out

    @property
    def err(self):
        """A rich console on stderr (progress, messages)."""
        if self._err is None:
            from rich.console import Console

            self._err = Console(file=sys.stderr, highlight=False,
                                soft_wrap=not sys.stderr.isatty())
        return self._err

    def result(self, doc: Any, render: Callable[[Any], None] | None = None) -> None:
        """The command's result: JSON on stdout, or ``render(console)`` for humans."""
        if self.json_mode:
            _write_document(doc)
        elif render is not None:
            render(self.out)
        else:
            self.out.print_json(redact(json.dumps(doc, ensure_ascii=False, default=str)))

    def table(self, headers: list[str], rows: list[list[str]], right: set[int] = frozenset()
              ) -> None:
        """A plain aligned table on stdout (no rich import: `list` must start fast)."""
        widths = [max(width(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

        def line(cells: list[str]) -> str:
            return "  ".join(pad(str(c), w, i in right)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

        sys.stdout.write("\n".join([line(headers), *(line(r) for r in rows)]) + "\n")

    def info(self, message: str) -> None:
        if not self.quiet:
            self.err.print(redact(message))

    def warn(self, message: str) -> None:
        # Plain text: a warning must not cost the rich import on a fast path (`list`).
        sys.stderr.write(_("Warning: {message}").format(message=redact(message)) + "\n")

    def success(self, message: str) -> None:
        if not self.quiet:
            self.err.print(f"[green]✓[/] {redact(message)}")


def _write_document(doc: Any) -> None:
    sys.stdout.write(redact(json.dumps(doc, indent=2, ensure_ascii=False, default=str)))
    sys.stdout.write("\n")
    sys.stdout.flush()
    Output.document_written = True


def failure_document(message: str, hint: str | None, code: str, exit_code: int) -> None:
    """The one JSON document of a run that failed under ``--json`` (see docs/json.md)."""
    if Output.document_written:
        return
    _write_document({"ok": False, "error": {"message": message, "hint": hint, "code": code},
                     "exit_code": exit_code})
