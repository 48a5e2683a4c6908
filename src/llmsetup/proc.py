"""The one subprocess wrapper of llmsetup.

Every external command (conda, uv, pip, git, nvidia-smi, the model's own Python, the
webui's server) goes through here, so that all of them get the same treatment:

- argv is a list, never a shell string; it must not hold a registered secret;
- the environment is a cleaned copy of ours (no PYTHONPATH or PYTHONHOME leaking into a
  model's environment, UTF-8 I/O, no pip version check, unbuffered Python);
- the command line, its whole output and its exit status go to a log file, redacted;
- a timeout kills the whole process group;
- Ctrl-C is passed on to the child, which gets a few seconds to stop before it is killed,
  and then ``KeyboardInterrupt`` continues in the caller so that nothing is half-recorded;
- on Linux a child dies with llmsetup, even when llmsetup is SIGKILLed (no pip or uv goes
  on installing into an environment nobody watches): see :func:`_die_with_parent`.

The entry points: :func:`run` (a command to completion, logged), :func:`capture` (a short
query such as a version or a commit id), :func:`run_interactive` (a child that owns the
terminal), :func:`run_service` (a server until it stops), :class:`JsonLinesProcess` (the
runtime modules' event protocol).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from llmsetup import interrupts
from llmsetup.errors import ProcessError
from llmsetup.i18n import _
from llmsetup.secret import contains_secret, redact

TAIL_LINES = 25
_DROP = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONNOUSERSITE", "VIRTUAL_ENV",
         "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PIP_REQUIRE_VIRTUALENV", "__PYVENV_LAUNCHER__")
_SET = {
    "PYTHONUTF8": "1",
    "PYTHONIOENCODING": "utf-8",
    "PYTHONUNBUFFERED": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
}
INTERRUPT_GRACE_S = 10.0


@dataclass
class Result:
    """What a finished command left behind."""

    argv: list[str]
    returncode: int
    output: str
    log: Path | None
    seconds: float

    @property
    def tail(self) -> str:
        return "\n".join(self.output.splitlines()[-TAIL_LINES:])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of our environment fit for a child process."""
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env.update(_SET)
    if extra:
        env.update(extra)
    return env


def quote(argv: Sequence[str | os.PathLike[str]]) -> str:
    """The command as one shell-quoted, redacted line (for logs and --dry-run)."""
    return redact(shlex.join(str(a) for a in argv))


def _check_argv(argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    args = [os.fspath(a) for a in argv]
    if any(contains_secret(a) for a in args):
        # A programming error, not a user's: secrets travel in the environment or stdin.
        raise RuntimeError("refusing to start a command with a secret in its argv")
    return args


@functools.cache
def _prctl():
    """libc's ``prctl``, looked up in the parent (never in a forked child); None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when llmsetup dies.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that started the child ends, so a child
    must be started from a thread that outlives it (every caller waits for its child in
    the thread that started it). The function runs between fork and exec: it only calls
    the ``prctl`` found beforehand and ``getppid``, nothing that could take a lock. If
    llmsetup died before the call took effect, the child exits at once.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _popen(args: list[str], **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen``, and a Ctrl-C that an at-fork hook swallowed meanwhile raised
    again once the child is stopped (see :mod:`llmsetup.interrupts`)."""
    seen = interrupts.count()
    proc = subprocess.Popen(args, **kwargs)
    if interrupts.count() != seen:
        _stop(proc)
        interrupts.raise_if_lost(seen)
    return proc


def _stop(proc: subprocess.Popen, grace: float = INTERRUPT_GRACE_S) -> None:
    """Pass Ctrl-C on, then escalate if the child does not stop."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        if proc.poll() is not None:
            return
        _kill_group(proc, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class _Log:
    """A log file that gets every line redacted; a no-op when no path is given."""

    def __init__(self, path: Path | None, argv: list[str], cwd: Path | None) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("a", encoding="utf-8")
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self._fh.write(f"\n=== {stamp} $ {quote(argv)}\n")
            if cwd:
                self._fh.write(f"=== cwd: {cwd}\n")

    def write(self, line: str) -> None:
        if self._fh:
            self._fh.write(redact(line))
            self._fh.flush()

    def close(self, returncode: int, seconds: float) -> None:
        if self._fh:
            self._fh.write(f"=== exit status {returncode} after {seconds:.1f}s\n")
            self._fh.close()


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    timeout: float | None = None,
    check: bool = True,
    on_line: Callable[[str], None] | None = None,
    what: str | None = None,
    hints: Sequence[tuple[str, str]] = (),
    stdin_text: str | None = None,
    group_record: Path | None = None,
) -> Result:
    """Run a command to completion and return its :class:`Result`.

    ``env`` is added on top of :func:`clean_env`. With ``check`` a non-zero exit raises
    :class:`ProcessError` carrying the last lines, the log path and the first hint whose
    pattern (a lowercase substring) occurs in the output. ``group_record``: a file that
    names the command's process group while it runs (see :func:`stop_leftover_group`).
    """
    args = _check_argv(argv)
    what = what or Path(args[0]).name
    started = time.monotonic()
    logf = _Log(log, args, cwd)
    lines: list[str] = []
    try:
        proc = _popen(
            args,
            cwd=cwd,
            env=clean_env(env),
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
    except FileNotFoundError:
        logf.close(127, 0.0)
        raise ProcessError(
            _("{what}: cannot run {program}: no such program").format(
                what=what, program=repr(args[0])),
            hint=_("Install it or check your PATH; `llmsetup doctor` lists what it finds."),
            returncode=127,
            log=str(log) if log else None,
        ) from None
    if group_record is not None:
        _record_group(group_record, proc.pid)
    timed_out = threading.Event()
    timer = None
    if timeout:
        def _on_timeout() -> None:
            timed_out.set()
            _kill_group(proc, signal.SIGTERM)
            time.sleep(3)
            _kill_group(proc, signal.SIGKILL)

        timer = threading.Timer(timeout, _on_timeout)
        timer.daemon = True
        timer.start()
    try:
        if stdin_text is not None and proc.stdin:
            proc.stdin.write(stdin_text)
            proc.stdin.close()
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            logf.write(line)
            if on_line:
                on_line(redact(line.rstrip("\n")))
        returncode = proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        logf.close(proc.returncode if proc.returncode is not None else -2,
                   time.monotonic() - started)
        raise
    finally:
        if timer:
            timer.cancel()
        if group_record is not None:
            group_record.unlink(missing_ok=True)
    seconds = time.monotonic() - started
    logf.close(returncode, seconds)
    result = Result(args, returncode, redact("".join(lines)), log, seconds)
    if timed_out.is_set():
        raise ProcessError(
            _("{what} took longer than {seconds}s and was stopped").format(
                what=what, seconds=f"{timeout:.0f}"),
            hint=_("Check the network or mirror, or raise the timeout.") if not log
            else _("Check the network or mirror; full output in {log}").format(log=log),
            returncode=returncode, tail=result.tail, log=str(log) if log else None,
        )
    if check and returncode != 0:
        raise ProcessError(
            _("{what} failed (exit status {code})").format(what=what, code=returncode),
            hint=_hint_for(result.output, hints)
            or (_("Full output in {log}").format(log=log) if log else None),
            returncode=returncode, tail=result.tail, log=str(log) if log else None,
        )
    return result


def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot, /proc), or None off Linux."""
    stat = _proc_stat(pid)
    return int(stat[19]) if stat else None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def _alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"  # a zombie has stopped already


def _record_group(path: Path, pgid: int) -> None:
    from llmsetup.fileio import write_json_atomic

    write_json_atomic(path, {"pgid": pgid, "start": _start_ticks(pgid)})


def stop_leftover_group(path: Path) -> int:
    """Stop what is left of a command whose llmsetup was killed; how many processes.

    A child dies with llmsetup (see :func:`_die_with_parent`), but its own children (pip
    under ``conda run``, a build backend) do not. The record that :func:`run` keeps names
    their process group; its members that started after the group's leader are stopped
    (SIGTERM, then SIGKILL), so that a rerun never installs into an environment alongside
    a leftover pip. A recycled group id, or one from before a reboot, matches nothing.
    """
    import json

    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        pgid, start = int(record["pgid"]), record.get("start")
    except (OSError, ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)
        return 0
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        stat = _proc_stat(int(entry.name))
        if stat and int(stat[2]) == pgid and (start is None or int(stat[19]) >= start) \
                and int(entry.name) != os.getpid():
            members.append(int(entry.name))
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        alive = [pid for pid in members if _alive(pid)]
        if not alive:
            break
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(p) for p in alive):
            time.sleep(0.05)
    path.unlink(missing_ok=True)
    return len(members)


def _hint_for(output: str, hints: Sequence[tuple[str, str]]) -> str | None:
    low = output.lower()
    for pattern, hint in hints:
        if pattern in low:
            return hint
    return None


@dataclass
class Captured:
    """What a short query printed."""

    returncode: int
    stdout: str
    stderr: str


def capture(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Captured | None:
    """Run a short query (a version, the GPU list, a commit id) and return its output.

    None when the program is missing, cannot start, or does not answer within ``timeout``:
    callers report "not found" or "unknown" rather than fail.
    """
    args = _check_argv(argv)
    seen = interrupts.count()
    try:
        proc = subprocess.run(args, cwd=cwd, env=clean_env(env), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, encoding="utf-8",
                              errors="replace", timeout=timeout, check=False,
                              preexec_fn=_die_with_parent())
    except (OSError, subprocess.TimeoutExpired):
        return None
    interrupts.raise_if_lost(seen)  # a Ctrl-C an at-fork hook dropped (see _popen)
    return Captured(proc.returncode, proc.stdout, proc.stderr)


def run_interactive(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> int:
    """Run a command that owns the terminal (a REPL, a server) and return its exit status.

    The child stays in our process group so that the terminal's Ctrl-C reaches it
    directly; we ignore SIGINT meanwhile and let the child decide what Ctrl-C means.
    ``pass_fds`` are kept open in the child (a pipe for its protocol events).
    """
    args = _check_argv(argv)
    proc = subprocess.Popen(args, cwd=cwd, env=clean_env(env), pass_fds=tuple(pass_fds),
                            preexec_fn=_die_with_parent())
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def run_service(
    argv: Sequence[str | os.PathLike[str]],
    *,
    on_started: Callable[[subprocess.Popen], None],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
) -> int:
    """Run a server until it stops; return its exit status, shell-style (130 for SIGINT).

    The server gets a process group of its own, and SIGINT or SIGTERM sent to us is passed
    on to that whole group, so a server's workers stop with it. ``on_started(proc)`` runs
    once the process exists (wait until it answers, then tell the user); if it raises
    (not ready in time, Ctrl-C while waiting), the server is stopped, escalating as
    :func:`run` does, and the error goes on. With ``log`` its output goes to that file
    instead of the terminal (a server started by a step of a plan).
    """
    args = _check_argv(argv)
    sink = None
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
        sink = log.open("a", encoding="utf-8")
        sink.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} $ {quote(args)}\n")
        sink.flush()
    try:
        proc = _popen(args, cwd=cwd, env=clean_env(env), start_new_session=True,
                                preexec_fn=_die_with_parent(), stdout=sink,
                                stderr=subprocess.STDOUT if sink else None)
    finally:
        if sink:
            sink.close()  # the child holds its own copy of the descriptor

    def forward(signum, _frame) -> None:
        _kill_group(proc, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        on_started(proc)
        returncode = proc.wait()
    except BaseException:
        _stop(proc)
        raise
    finally:
        _end_group(proc.pid)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - returncode if returncode < 0 else returncode


def _end_group(pgid: int, grace: float = 5.0) -> None:
    """Wait for what is left of a server's process group once its leader has exited (vLLM's
    multiprocessing resource tracker outlives it by a second or so), then kill the rest, so
    that a stopped server leaves no process behind."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class JsonLinesProcess:
    """A child that writes JSON lines on stdout (events and results) and logs on stderr.

    Used to talk to the runtime modules inside a model's environment. Iterate over
    :meth:`events` to get each decoded object; non-JSON stdout lines and all of stderr go
    to the log and to :attr:`tail`.
    """

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        stdin: int | None = subprocess.DEVNULL,
    ) -> None:
        self.argv = _check_argv(argv)
        self.log = log
        self._log = _Log(log, self.argv, cwd)
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._started = time.monotonic()
        try:
            self.proc = _popen(
                self.argv, cwd=cwd, env=clean_env(env), stdin=stdin,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                encoding="utf-8", errors="replace", start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        except FileNotFoundError:
            raise ProcessError(
                _("cannot run {program}: no such program").format(program=repr(self.argv[0])),
                hint=_("The model's environment is missing or broken; rerun "
                       "`llmsetup install`."),
                returncode=127,
            ) from None
        self._stderr = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr.start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._log.write(line)
            self._tail.append(redact(line.rstrip("\n")))

    @property
    def tail(self) -> str:
        return "\n".join(self._tail)

    def events(self) -> Iterator[dict]:
        """Decoded JSON objects from stdout until the child closes it."""
        import json

        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                self._log.write(line)
                text = line.strip()
                if text.startswith("{"):
                    try:
                        yield json.loads(text)
                        continue
                    except json.JSONDecodeError:
                        pass
                if text:
                    self._tail.append(redact(text))
        except KeyboardInterrupt:
            _stop(self.proc)
            self._finish()
            raise

    def wait(self) -> int:
        returncode = self.proc.wait()
        self._finish()
        return returncode

    def _finish(self) -> None:
        self._stderr.join(timeout=5)
        if self._log.path and not getattr(self, "_closed", False):
            self._closed = True
            rc = self.proc.returncode if self.proc.returncode is not None else -2
            self._log.close(rc, time.monotonic() - self._started)
