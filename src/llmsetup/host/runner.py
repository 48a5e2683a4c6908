"""The host side of the runtime protocol: start a runtime module with an environment's
Python, collect its JSON-line events, and turn its errors into llmsetup errors.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from llmsetup.errors import CheckFailed, LLMSetupError, ProcessError, UsageError
from llmsetup.i18n import N_, _, child_env
from llmsetup.proc import JsonLinesProcess, run_interactive

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"

# Advice for runtime error codes that arrive without a hint of their own (in English here:
# shown through _()).
HINTS = {
    "cuda-missing": N_("Run `llmsetup doctor`; pass --device cpu to run on the CPU anyway."),
    "oom": N_("Use less memory: --8bit or --4bit (see `llmsetup doctor NAME` for what each "
              "needs)."),
    "incomplete-model": N_("Run `llmsetup check NAME` to see what is missing, then "
                           "`llmsetup download NAME` to fetch it."),
    "no-torch": N_("The environment lacks torch: rerun `llmsetup install NAME`."),
    "wrong-kind": N_("Use `llmsetup verify` for speech models and `llmsetup chat` for text "
                     "models."),
    "interrupted": N_("Rerun the same command."),
    "no-bitsandbytes": N_("Rerun `llmsetup install NAME` (its profile pins bitsandbytes), or "
                          "run without --8bit/--4bit."),
    "bnb-no-cuda": N_("Install a bitsandbytes build that matches your CUDA (`llmsetup doctor` "
                      "shows it), or run without --8bit/--4bit."),
    "remote-code": N_("Read the model's .py files, then pass --trust-remote-code."),
    "gated": N_("Accept the model's licence on the hub, set HF_TOKEN, then `llmsetup download "
                "NAME`."),
}
# Codes that mean the user's input was wrong (exit status 2) rather than a failed check.
USAGE_CODES = {"bad-input", "wrong-kind", "bnb-no-cpu", "saved-by-newer", "bad-audio",
               "no-audio", "silent-audio", "ffmpeg-missing", "incomplete-model", "not-a-model",
               "remote-code", "engine-missing"}


def script(module: str) -> Path:
    path = RUNTIME_DIR / f"{module}.py"
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def error_from_event(event: dict, log: Path | None = None) -> LLMSetupError:
    """The llmsetup error of a runtime ``error`` event.

    The event's message stays as the runtime wrote it (English, as in the log); a hint is
    shown in the user's language when it is one of the fixed hints of the catalog (ours
    per code, or one the runtime marked with ``N_``), else as it came."""
    code = event.get("code", "error")
    hint = event.get("hint") or HINTS.get(code)
    if hint:
        hint = _(hint)
    if log and hint:
        hint = hint + "\n" + _("Full log: {log}").format(log=log)
    cls = UsageError if code in USAGE_CODES else CheckFailed
    err = cls(event.get("message") or code, hint=hint)
    err.code = code  # type: ignore[attr-defined]
    return err


def runtime_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """What a runtime child gets on top of :func:`llmsetup.proc.clean_env`: the host's
    language (``LLMSETUP_LANG``, so that the chat speaks it too), then ``env``."""
    return {**child_env(), **(env or {})}


def _python_argv(python: str | os.PathLike[str] | Sequence[str]) -> list[str]:
    """An interpreter path, or a command prefix that starts one (``conda run -n ENV python``)."""
    if isinstance(python, (str, os.PathLike)):
        return [os.fspath(python)]
    return [str(p) for p in python]


def run_module(
    python: str | os.PathLike[str] | Sequence[str],
    module: str,
    args: Sequence[str],
    *,
    log: Path | None = None,
    on_event: Callable[[dict], None] | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> dict:
    """Run ``runtime/<module>.py`` with ``python``; return its ``result`` event."""
    child = JsonLinesProcess([*_python_argv(python), str(script(module)), *args], log=log,
                             env=runtime_env(env), cwd=cwd)
    result = error = None
    for event in child.events():
        kind = event.get("event")
        if kind == "result":
            result = event
        elif kind == "error":
            error = event
        elif on_event:
            on_event(event)
    returncode = child.wait()
    if error is not None:
        raise error_from_event(error, log)
    if returncode != 0 or result is None:
        raise ProcessError(
            _("{module} stopped unexpectedly (exit status {status}) in {python}").format(
                module=module, status=returncode, python=python),
            hint=_("Full log: {log}").format(log=log) if log
            else _("Set LLMSETUP_DEBUG=1 and rerun."),
            returncode=returncode, tail=child.tail, log=str(log) if log else None,
        )
    return result


def run_module_interactive(
    python: str | os.PathLike[str] | Sequence[str],
    module: str,
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    events: bool = False,
    on_event: Callable[[dict], None] | None = None,
) -> int:
    """Run a runtime module that owns the terminal (the chat REPL); return its status.

    With ``events`` the module gets ``--events-fd N``, the write end of a pipe, since its
    stdout belongs to the user: its events reach ``on_event``, and an ``error`` event is
    raised here like :func:`run_module` does, so that the user sees one kind of message
    and hint whichever way a module runs. The descriptor reaches the module only when
    ``python`` starts the interpreter itself (``conda run`` closes inherited descriptors):
    pass the environment's python path, as ``envs.python_for`` gives it.
    """
    argv = [*_python_argv(python), str(script(module)), *args]
    env = runtime_env(env)
    if not events:
        return run_interactive(argv, env=env)
    read_fd, write_fd = os.pipe()
    received: list[dict] = []
    reader = threading.Thread(target=_read_events, args=(read_fd, received, on_event),
                              daemon=True)
    reader.start()
    try:
        status = run_interactive([*argv, "--events-fd", str(write_fd)], env=env,
                                 pass_fds=(write_fd,))
    finally:
        os.close(write_fd)  # the child's copy closed when it exited: the reader sees EOF
        reader.join(timeout=5)
    error = next((e for e in received if e.get("event") == "error"), None)
    if error is not None and error.get("code") == "interrupted":
        raise KeyboardInterrupt  # Ctrl-C before the REPL started: exit 130, as anywhere
    if error is not None:
        raise error_from_event(error)
    return status


def _read_events(fd: int, received: list[dict], on_event) -> None:
    with os.fdopen(fd, encoding="utf-8", errors="replace") as stream:
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                received.append(event)
                if on_event and event.get("event") != "error":
                    on_event(event)
