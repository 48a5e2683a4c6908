"""proc.run_service leaves nothing of a server's process group behind once it returns; a
Ctrl-C is never lost while a child starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmsetup.proc import run_service

# A "server" whose helper outlives it (as vLLM's multiprocessing resource tracker does).
SERVER = r"""
import subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open(sys.argv[1], "w").write(str(helper.pid))
time.sleep(0.5)
"""


def test_a_helper_that_outlives_the_server_is_ended(tmp_path):
    pid_file = tmp_path / "helper.pid"
    started = time.monotonic()
    status = run_service([sys.executable, "-c", SERVER, str(pid_file)],
                         on_started=lambda proc: None)
    assert status == 0
    helper = int(pid_file.read_text())
    assert dead_soon(helper)
    assert time.monotonic() - started < 30


def dead(pid: int) -> bool:
    """Gone, or a zombie (killed; waiting for an init that reaps slowly in containers)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def dead_soon(pid: int, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not dead(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return dead(pid)


def test_the_server_log_gets_its_output(tmp_path):
    log = tmp_path / "server.log"
    status = run_service([sys.executable, "-c", "print('hello from the server')"],
                         on_started=lambda proc: None, log=log)
    assert status == 0
    text = log.read_text()
    assert "hello from the server" in text and "$ " in text
    assert os.access(log, os.R_OK)


# A Ctrl-C that lands while a child is being started: with a preexec_fn, CPython runs the
# at-fork hooks registered in Python (filelock 4.x registers some), and the handler's
# KeyboardInterrupt raised inside one is printed and dropped. Here a hook of the script's
# own sends the signal at exactly that moment; it runs in a process of its own, because an
# at-fork hook cannot be unregistered.
_SWALLOWED = """
import os, signal, sys, time
from llmsetup.cli import _signals
from llmsetup import proc
_signals.install()
quiet = sys.unraisablehook
def noted(unraisable):  # proof that the interrupt was dropped inside the hook
    print("dropped", type(unraisable.exc_value).__name__, flush=True)
    quiet(unraisable)
sys.unraisablehook = noted
fired = []
def hook():
    if not fired:
        fired.append(1)
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs between these bytecodes, inside the hook
            pass
os.register_at_fork(after_in_parent=hook)
started = time.monotonic()
try:
    if sys.argv[1] == "run":
        proc.run(["sleep", "30"], what="sleep")
    else:
        proc.run_service(["sleep", "30"], on_started=lambda p: p.wait())
    print("went on to the end")
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.parametrize("how", ["run", "run_service"])
def test_a_ctrl_c_swallowed_by_an_at_fork_hook_still_stops_the_command(how):
    done = subprocess.run([sys.executable, "-c", _SWALLOWED, how], capture_output=True,
                          text=True, timeout=60)
    # The interrupt was indeed dropped there, and CPython's print of it kept quiet.
    assert done.stdout.split("\n")[0] == "dropped KeyboardInterrupt", done.stdout
    assert done.stdout.strip().endswith("interrupted"), done.stdout + done.stderr
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr
