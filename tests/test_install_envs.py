"""`llmsetup install` with real venv and uv environments and real wheels, offline.

The recipe's requirements are small wheels this test writes into a folder passed with
--find-links --no-index; its lock pins a transitive dependency to an older version than the
newest one in the folder, so the test sees the lock take effect.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.wheels import make_wheel

RECIPE = """\
name: tiny-env
kind: causal-lm
description: A recipe whose requirements are tiny local wheels
repo_id: tests/tiny-env
env:
  name: tiny-env
  python: '{python}'
profiles:
  book: [llmsetup-test-alpha==1.0]
locks:
  book: locks/tiny-env.book.txt
params: 1.0e6
"""
PY = "{}.{}".format(*sys.version_info[:2])


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    make_wheel(folder, "llmsetup-test-alpha", "1.0", ["llmsetup-test-beta>=1.0"])
    make_wheel(folder, "llmsetup-test-beta", "1.0")
    make_wheel(folder, "llmsetup-test-beta", "2.0")
    return folder


@pytest.fixture
def recipes(tmp_path) -> Path:
    folder = tmp_path / "recipes"
    (folder / "locks").mkdir(parents=True)
    (folder / "tiny-env.yaml").write_text(RECIPE.format(python=PY))
    (folder / "locks" / "tiny-env.book.txt").write_text(
        "# test lock\nllmsetup-test-alpha==1.0\nllmsetup-test-beta==1.0\n")
    return folder


def _install_args(recipes: Path, wheels: Path, backend: str) -> list[str]:
    return ["--recipes-dir", str(recipes), "install", "tiny-env", "--env-backend", backend,
            "--find-links", str(wheels), "--no-index", "--no-cuda-check", "--no-download",
            "--no-verify"]


def _env_python(home: Path) -> Path:
    return home / "envs" / "tiny-env" / "bin" / "python"


def _installed_versions(python: Path) -> dict:
    code = ("import json, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in "
            "('llmsetup-test-alpha', 'llmsetup-test-beta')}))")
    return json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                                     check=True).stdout)


@pytest.mark.parametrize("backend", ["venv", "uv"])
def test_install_creates_a_real_env_and_second_run_does_nothing(cli, recipes, wheels,
                                                                llmsetup_home, backend):
    args = _install_args(recipes, wheels, backend)
    first = cli(*args, "--json")
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert [s["status"] for s in doc["steps"]] == ["ran", "ran"]
    assert {s["key"] for s in doc["skipped"]} == {"download", "verify"}
    python = _env_python(llmsetup_home)
    # The lock keeps beta at 1.0 although 2.0 is in the folder.
    assert _installed_versions(python) == {"llmsetup-test-alpha": "1.0",
                                           "llmsetup-test-beta": "1.0"}
    # The profile went to a requirements file in the state dir; the output to a log.
    req = llmsetup_home / "state" / "tiny-env" / "requirements.book.txt"
    assert "llmsetup-test-alpha==1.0" in req.read_text()
    assert "llmsetup-test-alpha" in (llmsetup_home / "logs" / "tiny-env" /
                                     "requirements.log").read_text()
    second = cli(*args, "--json")
    assert second.exit_code == 0, second.output
    assert [s["status"] for s in json.loads(second.stdout)["steps"]] == ["done", "done"]


def test_no_lock_lets_the_transitive_pin_float(cli, recipes, wheels, llmsetup_home):
    result = cli(*_install_args(recipes, wheels, "venv"), "--no-lock")
    assert result.exit_code == 0, result.output
    assert "--no-lock" in result.stderr  # says what it risks
    assert _installed_versions(_env_python(llmsetup_home))["llmsetup-test-beta"] == "2.0"


def test_a_changed_lock_reinstalls(cli, recipes, wheels, llmsetup_home):
    assert cli(*_install_args(recipes, wheels, "uv")).exit_code == 0
    lock = recipes / "locks" / "tiny-env.book.txt"
    lock.write_text(lock.read_text().replace("beta==1.0", "beta==2.0"))
    doc = json.loads(cli(*_install_args(recipes, wheels, "uv"), "--json").stdout)
    assert [s["status"] for s in doc["steps"]] == ["done", "ran"]
    assert _installed_versions(_env_python(llmsetup_home))["llmsetup-test-beta"] == "2.0"


def test_missing_package_gives_the_pip_hint_and_log(cli, recipes, wheels, llmsetup_home):
    text = (recipes / "tiny-env.yaml").read_text()
    (recipes / "tiny-env.yaml").write_text(text.replace("alpha==1.0]", "alpha==9.9]"))
    result = cli(*_install_args(recipes, wheels, "venv"), "--no-lock")
    assert result.exit_code == 1
    assert "installing requirements failed" in result.stderr
    assert "No matching distribution" in result.stderr
    assert str(llmsetup_home / "logs" / "tiny-env" / "requirements.log") in result.stderr
    assert "Traceback" not in result.output


def test_interrupted_install_resumes(recipes, wheels, llmsetup_home, tmp_path):
    """Ctrl-C the real console script while the venv is being created, then rerun."""
    script = Path(sys.executable).parent / "llmsetup"
    args = [str(script), *_install_args(recipes, wheels, "venv")]
    log = llmsetup_home / "logs" / "tiny-env" / "env.log"
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not log.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # as the terminal's Ctrl-C would
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    assert not (llmsetup_home / "state" / "tiny-env" / "steps" / "requirements.json").exists()
    rerun = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    statuses = {s["key"]: s["status"] for s in json.loads(rerun.stdout)["steps"]}
    assert statuses["requirements"] == "ran"
    assert _installed_versions(_env_python(llmsetup_home))["llmsetup-test-alpha"] == "1.0"


def test_unknown_profile_is_bad_usage(cli, recipes, wheels):
    result = cli(*_install_args(recipes, wheels, "venv"), "--profile", "nightly")
    assert result.exit_code == 2
    assert "no profile 'nightly'" in result.stderr and "book" in result.stderr


def test_venv_without_matching_python_says_what_to_do(cli, recipes, wheels, monkeypatch,
                                                      tmp_path):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    result = cli(*_install_args(recipes, wheels, "venv"), "--python", "3.9")
    assert result.exit_code == 1
    assert "Python 3.9 is not on this machine" in result.stderr
    assert "--env-backend conda" in result.stderr and "pyenv install 3.9" in result.stderr


def test_a_rerun_continues_the_install_it_started(cli, recipes, wheels, llmsetup_home):
    """The book's journey: an install started with --python fails at the CUDA check; the
    rerun with --cpu keeps that Python, says so, and says what changed."""
    common = ["--recipes-dir", str(recipes), "install", "tiny-env", "--no-index",
              "--no-download", "--no-verify"]
    first = cli(*common, "--env-backend", "venv", "--python", PY, "--find-links", str(wheels))
    assert first.exit_code == 1  # no torch in this env: the CUDA check fails
    assert "rerun the same command with --cpu" in first.stderr or "torch" in first.stderr
    rerun = cli(*common, "--cpu", "--dry-run", "--json")
    assert rerun.exit_code == 0, rerun.output
    assert (f"Continuing the install of tiny-env started with --env-backend venv --python {PY} "
            f"--find-links {wheels}") in rerun.stderr
    assert "Changed since the install was started: --cpu" in rerun.stderr
    plan = json.loads(rerun.stdout)
    env = plan["steps"][0]
    assert env["env"]["backend"] == "venv" and env["env"]["python"] == PY
    assert env["done"] is True and plan["steps"][1]["done"] is True
    assert f"--find-links {wheels}" in plan["steps"][1]["commands"][0]
    switched = cli(*common, "--env-backend", "uv", "--dry-run")
    assert switched.exit_code == 0, switched.output
    assert "Changed since the install was started: --env-backend uv; this runs again: env, " \
        "requirements." in switched.stderr
