"""One table that maps known exceptions to a message, a hint and an exit code.

Commands raise; :class:`LLMSetupGroup` catches here, prints one or two lines on stderr and
exits. ``LLMSETUP_DEBUG=1`` shows the traceback as well. Under ``--json`` a failure is also
one JSON document on stdout (:func:`llmsetup.cli._output.failure_document`), for errors of
the command line itself too.

Whether ``--json`` was given: the option's eager callback records it on the run's
:class:`~llmsetup.cli._context.AppState` before any other option is checked. Only when the
parser fails before that (an unknown option, a missing argument) are the command line's
words read instead.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import traceback
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperGroup

from llmsetup.cli._click_text import CLICK_EXCEPTION, TranslatedHelp, message_of
from llmsetup.cli._context import state
from llmsetup.cli._output import Output, failure_document
from llmsetup.errors import LLMSetupError, ProcessError, RecipeError
from llmsetup.i18n import N_, _
from llmsetup.secret import redact

# Shown with _(DEBUG_HINT).
DEBUG_HINT = N_("Set LLMSETUP_DEBUG=1 to see the traceback.")


def _llmsetup(exc: LLMSetupError) -> tuple[str, str | None, int]:
    message = exc.message
    if isinstance(exc, RecipeError) and len(exc.problems) > 1:
        message = "\n".join([exc.message, *("  " + p for p in exc.problems)])
    if isinstance(exc, ProcessError) and exc.tail:
        tail = "\n".join("  | " + line for line in exc.tail.splitlines()[-12:])
        message = f"{message}\n{tail}"
        if exc.log and (not exc.hint or exc.log not in exc.hint):
            full_log = _("Full log: {path}").format(path=exc.log)
            return message, ((exc.hint + "\n") if exc.hint else "") + full_log, exc.exit_code
    return message, exc.hint, exc.exit_code


def _oserror(exc: OSError) -> tuple[str, str | None, int]:
    path = exc.filename
    if exc.errno == errno.ENOSPC:
        message = (_("no space left on device: {path}").format(path=path) if path else
                   _("no space left on device"))
        return message, _("Free some disk space, then rerun the same command: it resumes "
                          "where it stopped."), 1
    if isinstance(exc, PermissionError):
        message = (_("permission denied: {path}").format(path=path) if path else
                   _("permission denied"))
        return message, _("Check the folder's owner and mode, or choose another folder "
                          "(LLMSETUP_HOME, LLMSETUP_MODELS_DIR)."), 1
    if isinstance(exc, FileNotFoundError):
        message = (_("no such file or folder: {path}").format(path=path) if path else
                   _("no such file or folder"))
        return message, _("Check the path."), 2
    # The system's own words (strerror), as the system gives them.
    return f"{exc.strerror or exc}" + (f": {path}" if path else ""), None, 1


def _network(exc: Exception) -> tuple[str, str | None, int]:
    return (_("network error: {error}").format(error=exc),
            _("Check the connection or try another source or mirror (--source, --endpoint, "
              "--pip-mirror)."), 1)


def _interrupted(exc: BaseException) -> tuple[str, str | None, int]:
    message = (_("interrupted ({signal})").format(signal=exc.signal_name)  # type: ignore[attr-defined]
               if hasattr(exc, "signal_name") else _("interrupted"))
    return (message, _("Rerun the same command to pick up where it stopped."),
            getattr(exc, "exit_code", 130))


# Ordered: the first matching row wins. Third-party errors are matched by class name so
# that their modules need not be imported here.
TABLE: list[tuple[Callable[[BaseException], bool], Callable[[Any], tuple[str, str | None, int]]]] = [
    (lambda e: isinstance(e, LLMSetupError), _llmsetup),
    # Ctrl-C, or SIGTERM/SIGHUP as cli/_signals.py raises them (with their exit status).
    (lambda e: isinstance(e, KeyboardInterrupt), _interrupted),
    # The reader of our output went away (`llmsetup ... | head`): not an error of ours.
    (lambda e: isinstance(e, BrokenPipeError), lambda e: ("", None, 0)),
    (lambda e: any(c.__name__ in {"ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout",
                                  "SSLError"} and c.__module__ != "builtins"
                   for c in type(e).__mro__), _network),
    (lambda e: isinstance(e, OSError), _oserror),
]


def describe(exc: BaseException) -> tuple[str, str | None, int]:
    """Message, hint and exit code for ``exc``."""
    for matches, render in TABLE:
        if matches(exc):
            return render(exc)
    return (_("unexpected error: {kind}: {error}").format(kind=type(exc).__name__, error=exc),
            _("This is a bug in llmsetup; please report it. {debug_hint}").format(
                debug_hint=_(DEBUG_HINT)), 1)


def error_code(exc: BaseException) -> str:
    """A stable name for the kind of failure, for programs: ``not_found``, ``check_failed``."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, (LLMSetupError, CLICK_EXCEPTION)):
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
    if any(c.__name__ in {"ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout",
                          "SSLError"} and c.__module__ != "builtins" for c in type(exc).__mro__):
        return "network_error"
    if isinstance(exc, OSError):
        return {errno.ENOSPC: "no_space", errno.EACCES: "permission_denied",
                errno.ENOENT: "file_not_found"}.get(exc.errno or 0, "os_error")
    return "unexpected_error"


def report(exc: BaseException, json_mode: bool = False) -> int:
    """Print ``exc`` for the user on stderr (and as a JSON document on stdout under
    ``--json``); return the exit code."""
    message, hint, code = describe(exc)
    if not message:
        return code
    if json_mode:
        failure_document(redact(message), redact(hint) if hint else None, error_code(exc), code)
    debug = os.environ.get("LLMSETUP_DEBUG") not in (None, "", "0")
    if debug:
        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    out = sys.stderr
    out.write(redact(_("Error: {message}").format(message=message) + "\n"))
    if hint:
        out.write(redact(_("Hint: {hint}").format(hint=hint) + "\n"))
    debug_hint = _(DEBUG_HINT)
    if code not in (2, 129, 130, 143) and not debug and not isinstance(exc, LLMSetupError) \
            and debug_hint not in (hint or ""):
        out.write(f"{debug_hint}\n")
    out.flush()
    return code


class LLMSetupGroup(TranslatedHelp, TyperGroup):
    """The root command group: runs a command and maps whatever it raises through TABLE."""

    def parse_args(self, ctx, args):  # type: ignore[override]
        state(ctx).words = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):  # type: ignore[override]
        Output.document_written = False
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except CLICK_EXCEPTION as exc:  # a bad command line: click prints it on stderr
            if _json_mode(ctx):
                command = " ".join(filter(None, ["llmsetup", ctx.invoked_subcommand]))
                failure_document(redact(message_of(exc)),
                                 _("See `{command} --help`.").format(command=command),
                                 error_code(exc), exc.exit_code)
            raise
        except (Exception, KeyboardInterrupt) as exc:
            raise typer.Exit(report(exc, _json_mode(ctx))) from None


def _json_mode(ctx) -> bool:
    app = state(ctx)
    if app.json_mode:
        return True
    words = app.words[:app.words.index("--")] if "--" in app.words else app.words
    return "--json" in words
