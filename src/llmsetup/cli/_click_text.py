"""The words Typer and its click write themselves, in the chosen language.

Typer 0.26-0.28 vendors click with its messages as English literals (only ``typer.core``
goes through ``gettext``): the section titles of ``--help``, the help option's own help,
``Usage:``, and the errors of a bad command line. Here they are translated: typer.core's
``_`` is pointed at ours, the help formatting is done by :class:`TranslatedHelp` (a mixin
of our command and group classes), and a command-line error is rewritten from its parts
(or, for the few messages click builds as one string, matched against click's wording) by
:func:`show`.
"""

from __future__ import annotations

import re
import sys
import unicodedata

import typer
import typer.core

from llmsetup.i18n import N_, _, language

try:  # typer 0.26 and later vendor click
    from typer._click import _textwrap
except ImportError:  # earlier typer runs on click itself
    from click import _textwrap  # type: ignore[no-redef]

# click's base exception, whichever click typer runs on (typer re-exports only some).
CLICK_EXCEPTION = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^No such option: (?P<name>.+)$"), N_("No such option: {name}")),
    (re.compile(r"^No such command '(?P<name>.*)'\.$"), N_("No such command '{name}'.")),
    (re.compile(r"^Option '(?P<name>[^']+)' requires an argument\.$"),
     N_("Option '{name}' requires an argument.")),
    (re.compile(r"^Option '(?P<name>[^']+)' requires (?P<count>\d+) arguments\.$"),
     N_("Option '{name}' requires {count} arguments.")),
    (re.compile(r"^Option '(?P<name>[^']+)' does not take a value\.$"),
     N_("Option '{name}' does not take a value.")),
    (re.compile(r"^Got unexpected extra arguments? \((?P<words>.*)\)$"),
     N_("Got unexpected extra arguments ({words})")),
    (re.compile(r"^(?P<value>.+) is not a valid integer\.$"), N_("{value} is not a whole number.")),
    (re.compile(r"^(?P<value>.+) is not a valid float\.$"), N_("{value} is not a number.")),
    (re.compile(r"^(?P<value>.+) is not a valid boolean\..*$"),
     N_("{value} is not a yes/no value (true, false, 1, 0, yes, no).")),
    (re.compile(r"^(?P<value>.+) is not in the range (?P<range>.+)\.$"),
     N_("{value} is not in the range {range}.")),
    (re.compile(r"^(?P<value>.+) is not one of (?P<choices>.+)\.$"),
     N_("{value} is not one of {choices}.")),
    (re.compile(r"^(?P<value>.+) is not (?P<choice>'[^']*')\.$"), N_("{value} is not {choice}.")),
    (re.compile(r"^(File|Directory|Path) (?P<name>'.*') does not exist\.$"),
     N_("{name} does not exist.")),
    (re.compile(r"^File (?P<name>'.*') is a directory\.$"), N_("{name} is a folder, not a file.")),
    (re.compile(r"^Directory (?P<name>'.*') is a file\.$"), N_("{name} is a file, not a folder.")),
]
_MISSING = {"argument": N_("Missing argument {name}."), "option": N_("Missing option {name}."),
            "parameter": N_("Missing parameter {name}.")}


def translate_text(message: str) -> str:
    """One of click's own messages in the chosen language (unknown ones as they are)."""
    if language() == "en":
        return message
    for pattern, msgid in _PATTERNS:
        m = pattern.match(message)
        if m:
            return _(msgid).format(**m.groupdict())
    return message


def message_of(exc: Exception) -> str:
    """``exc.format_message()``, rebuilt in the chosen language from the exception's parts."""
    if language() == "en":
        return exc.format_message()  # type: ignore[attr-defined]
    kind = type(exc).__name__
    param = getattr(exc, "param", None)
    hint = getattr(exc, "param_hint", None)
    if hint is None and param is not None:
        hint = param.get_error_hint(exc.ctx)  # type: ignore[attr-defined]
    if isinstance(hint, (list, tuple)):
        hint = " / ".join(hint)
    if kind == "MissingParameter":
        ptype = getattr(exc, "param_type", None) or (param.param_type_name if param else None)
        text = _(_MISSING.get(ptype or "parameter", _MISSING["parameter"])).format(
            name=hint or "")
        return text.replace(" .", ".").replace(" 。", "。")
    if kind == "NoSuchOption" and getattr(exc, "possibilities", None):
        return _("{message} (Possible options: {options})").format(
            message=translate_text(exc.message),  # type: ignore[attr-defined]
            options=", ".join(sorted(exc.possibilities)))  # type: ignore[attr-defined]
    if kind in ("BadParameter", "MissingParameter") or hasattr(exc, "param_hint"):
        text = translate_text(exc.message)  # type: ignore[attr-defined]
        if hint:
            return _("Invalid value for {name}: {message}").format(name=hint, message=text)
        return _("Invalid value: {message}").format(message=text)
    return translate_text(exc.format_message())  # type: ignore[attr-defined]


def show(exc: Exception) -> None:
    """What click's ``exc.show()`` writes, in the chosen language."""
    ctx = getattr(exc, "ctx", None)
    out = sys.stderr
    if ctx is not None:
        hint = ""
        if ctx.command.get_help_option(ctx) is not None:
            hint = _("Try '{command} {option}' for help.").format(
                command=ctx.command_path, option=ctx.help_option_names[0]) + "\n"
        typer.echo(f"{ctx.get_usage()}\n{hint}", file=out)
    typer.echo(_("Error: {message}").format(message=message_of(exc)), file=out)


class TranslatedHelp:
    """Mixin for click commands and groups: ``Usage:`` and the help option in our language."""

    def format_usage(self, ctx, formatter) -> None:
        pieces = self.collect_usage_pieces(ctx)  # type: ignore[attr-defined]
        formatter.write_usage(ctx.command_path, " ".join(pieces), prefix=_("Usage: "))

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = _("Show this message and exit.")
        return option

    def main(self, *args, **kwargs):
        """Click's main, with its errors shown in our language (see :func:`show`)."""
        if kwargs.get("standalone_mode", True) is False or language() == "en":
            return super().main(*args, **kwargs)  # type: ignore[misc]
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)  # type: ignore[misc]
        except CLICK_EXCEPTION as exc:
            show(exc)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo(_("Aborted!"), file=sys.stderr)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


class Command(TranslatedHelp, typer.core.TyperCommand):
    """A command of ours."""


class Group(TranslatedHelp, typer.core.TyperGroup):
    """A group of commands of ours (``llmsetup recipes``)."""


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: two for each wide (CJK) character."""
    return sum(2 if _wide(ch) else 1 for ch in text)


# Chinese punctuation that must not start a line: the character before it moves down too.
_NO_LINE_START = set("，。、；：？！）》」』”’…")
# ... and that must not end one: it moves to the next line with what it opens.
_NO_LINE_END = set("（《「『“‘")


class WideWrapper(_textwrap.TextWrapper):
    """Click's text wrapper, measuring display columns instead of characters.

    Click wraps help by ``len()``, which counts a Chinese character as one column where a
    terminal shows two: Chinese help lines ran up to half again past the width. Here a
    line may break between any two Chinese characters (as Chinese text breaks) and between
    words elsewhere, and is filled to the width the terminal shows."""

    def _split(self, text: str) -> list[str]:
        chunks = []
        for chunk in super()._split(text):
            if not any(_wide(ch) for ch in chunk):
                chunks.append(chunk)
                continue
            run = ""
            for ch in chunk:
                if _wide(ch):
                    if run:
                        chunks.append(run)
                        run = ""
                    chunks.append(ch)
                else:
                    run += ch
            if run:
                chunks.append(run)
        # A line break inside a Chinese paragraph is no space: click joins the lines of a
        # paragraph with one, which Chinese text does not have between its characters.
        return [c for i, c in enumerate(chunks)
                if not (c.isspace() and 0 < i < len(chunks) - 1
                        and _wide(chunks[i - 1][-1]) and _wide(chunks[i + 1][0]))]

    def _wrap_chunks(self, chunks: list[str]) -> list[str]:
        lines: list[str] = []
        chunks = list(reversed(chunks))
        while chunks:
            indent = self.subsequent_indent if lines else self.initial_indent
            width = max(self.width - display_width(indent), 1)
            if lines and chunks[-1].strip() == "":
                chunks.pop()  # no line starts with the space it was broken at
                continue
            line: list[str] = []
            used = 0
            while chunks:
                size = display_width(chunks[-1])
                if used + size <= width:
                    line.append(chunks.pop())
                    used += size
                elif chunks[-1] in _NO_LINE_START and len(line) > 1:
                    # The punctuation may not start the next line: the character before it
                    # goes down with it.
                    chunks.append(line.pop())
                    break
                elif not line:  # longer than a whole line: cut it
                    piece, rest = _cut(chunks[-1], width)
                    line.append(piece)
                    chunks[-1] = rest
                    break
                else:
                    break
            while len(line) > 1 and line[-1] in _NO_LINE_END:
                chunks.append(line.pop())
            text = "".join(line).rstrip()
            if text:
                lines.append(indent + text)
        return lines


def _cut(chunk: str, width: int) -> tuple[str, str]:
    used = 0
    for i, ch in enumerate(chunk):
        used += 2 if _wide(ch) else 1
        if used > width:
            return chunk[:max(i, 1)], chunk[max(i, 1):]
    return chunk, ""


# Typer's own words, for the catalog (typer.core asks for them by these msgids).
TYPER_WORDS = (N_("Options"), N_("Arguments"), N_("Commands"), N_("default: {default}"),
               N_("required"), N_("env var: {var}"), N_("(dynamic)"), N_("Aborted!"))

# Typer's own words ("Options", "Arguments", "Commands", "default: ...", "required",
# "Aborted!") go through typer.core's gettext `_`.
typer.core._ = _  # type: ignore[attr-defined]
# Help wrapped by the columns a terminal shows (click imports the wrapper at each wrap).
if language() != "en":
    _textwrap.TextWrapper = WideWrapper  # type: ignore[misc]
