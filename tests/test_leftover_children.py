"""A killed install must not leave a pip installing into the environment while the rerun
installs too: the rerun stops what is left of the earlier command's process group."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmsetup.proc import stop_leftover_group
from tests.test_install_envs import _install_args, recipes, wheels  # noqa: F401 (fixtures)


def _state(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()[0]


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z")


def _wait_for(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    pytest.fail(f"{path} never appeared")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_grandchild_outliving_a_killed_llmsetup_is_stopped(tmp_path):
    """llmsetup's child dies with it (parent-death signal); the child's own child (pip
    under `conda run`, here a sleep under sh) does not, until the record is used."""
    record = tmp_path / "running-command.json"
    pidfile = tmp_path / "grandchild"
    script = (
        "from pathlib import Path\n"
        "from llmsetup.proc import run\n"
        f"run(['sh', '-c', 'sleep 300 & echo $! > {pidfile}; wait'], "
        f"group_record=Path({str(record)!r}))\n")
    parent = subprocess.Popen([sys.executable, "-c", script])
    grandchild = int(_wait_for(pidfile))
    assert json.loads(record.read_text())["pgid"] > 0
    parent.kill()
    parent.wait()
    time.sleep(0.5)
    assert _alive(grandchild), "the grandchild should outlive llmsetup without the record"
    assert stop_leftover_group(record) >= 1
    assert not _alive(grandchild)
    assert not record.exists()


def test_a_record_of_a_group_that_is_gone_stops_nothing(tmp_path):
    record = tmp_path / "running-command.json"
    record.write_text(json.dumps({"pgid": 2 ** 22 - 3, "start": 0}))
    assert stop_leftover_group(record) == 0
    assert not record.exists()
    record.write_text("not json")
    assert stop_leftover_group(record) == 0 and not record.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_the_rerun_of_an_install_stops_the_leftover_first(cli, recipes, wheels,  # noqa: F811
                                                          llmsetup_home):
    # What a killed install leaves: a process group still running, and its record.
    leftover = subprocess.Popen(["setsid", "sleep", "300"])
    try:
        time.sleep(0.2)
        start = int(Path(f"/proc/{leftover.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        state = llmsetup_home / "state" / "tiny-env"
        state.mkdir(parents=True)
        (state / "running-command.json").write_text(
            json.dumps({"pgid": leftover.pid, "start": start}))
        result = cli(*_install_args(recipes, wheels, "venv"))
        assert result.exit_code == 0, result.output
        assert "stopped 1 process(es) left running by an earlier install of tiny-env" \
            in result.stderr
        leftover.wait(timeout=10)  # it was stopped: wait() returns, it is no zombie left
        assert not (state / "running-command.json").exists()
    finally:
        if leftover.poll() is None:
            leftover.kill()
