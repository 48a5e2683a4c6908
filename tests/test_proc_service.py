"""proc.run_service leaves nothing of a server's process group behind once it returns."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

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
