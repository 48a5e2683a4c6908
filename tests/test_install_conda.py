"""The conda backend against a recording stand-in.

conda cannot be installed on the machines that run these tests (no access to its
channels), so a small stand-in named `conda` goes on PATH. It records every command line it
gets, answers `env list --json`, makes a real virtual environment for `create -n NAME`, and
runs `run -n NAME ...` inside it, so the rest of the install (pip, wheels, locks) is real.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.test_install_envs import RECIPE, recipes, wheels  # noqa: F401 (fixtures)

STAND_IN = r'''#!{python}
import json, os, subprocess, sys, venv
root = os.environ["FAKE_CONDA_ROOT"]
with open(os.path.join(root, "calls.jsonl"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
args = sys.argv[1:]
envs = os.path.join(root, "envs")
if args[:3] == ["env", "list", "--json"]:
    names = sorted(os.listdir(envs)) if os.path.isdir(envs) else []
    print(json.dumps({{"envs": [os.path.join(envs, n) for n in names]}}))
elif args[0] == "create":
    name = args[args.index("-n") + 1]
    venv.EnvBuilder(with_pip=True).create(os.path.join(envs, name))
elif args[0] == "run":
    name = args[args.index("-n") + 1]
    rest = [a for a in args[args.index("-n") + 2:] if a != "--no-capture-output"]
    env = dict(os.environ)
    env["PATH"] = os.path.join(envs, name, "bin") + os.pathsep + env["PATH"]
    sys.exit(subprocess.call(rest, env=env))
else:
    sys.exit("stand-in conda: unsupported " + " ".join(args))
'''


@pytest.fixture
def fake_conda(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "conda"
    (root / "bin").mkdir(parents=True)
    exe = root / "bin" / "conda"
    exe.write_text(STAND_IN.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("FAKE_CONDA_ROOT", str(root))
    monkeypatch.setenv("PATH", f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return root


def _calls(root: Path) -> list[list[str]]:
    return [json.loads(line) for line in (root / "calls.jsonl").read_text().splitlines()]


def test_conda_install_runs_the_books_commands(cli, fake_conda, recipes, wheels,  # noqa: F811
                                              llmsetup_home):
    py = "{}.{}".format(*sys.version_info[:2])
    args = ["--recipes-dir", recipes, "install", "tiny-env", "--find-links", wheels,
            "--no-index", "--no-cuda-check", "--no-download", "--no-verify", "--json"]
    result = cli(*args)  # --env-backend auto picks conda when it is on PATH
    assert result.exit_code == 0, result.output
    calls = _calls(fake_conda)
    assert ["create", "-n", "tiny-env", f"python={py}", "-y"] in calls
    pip = next(c for c in calls if c[:1] == ["run"] and "pip" in c)
    req = str(llmsetup_home / "state" / "tiny-env" / "requirements.book.txt")
    assert pip[:8] == ["run", "-n", "tiny-env", "--no-capture-output", "python", "-m", "pip",
                       "install"]
    assert pip[8:12] == ["-r", req, "-c", str(recipes / "locks" / "tiny-env.book.txt")]
    assert "--no-index" in pip and "activate" not in json.dumps(calls)
    # The environment now holds the wheels, installed for real through `conda run`.
    site = next((fake_conda / "envs" / "tiny-env" / "lib").glob("python*/site-packages"))
    assert (site / "llmsetup_test_alpha").is_dir()
    record = json.loads((llmsetup_home / "state" / "tiny-env" / "env.json").read_text())
    assert record["backend"] == "conda"
    assert record["python"] == str(fake_conda / "envs" / "tiny-env" / "bin" / "python")
    # A rerun creates nothing and installs nothing.
    before = len(calls)
    again = json.loads(cli(*args).stdout)
    assert [s["status"] for s in again["steps"]] == ["done", "done"]
    assert not any(c[0] == "create" or "install" in c for c in _calls(fake_conda)[before:])


def test_hand_made_conda_env_is_reused(cli, fake_conda, recipes, wheels):  # noqa: F811
    """A reader who followed the book already has `conda create -n NAME`: reuse it."""
    import venv

    venv.EnvBuilder(with_pip=True).create(fake_conda / "envs" / "tiny-env")
    result = cli("--recipes-dir", recipes, "install", "tiny-env", "--env-backend", "conda",
                 "--find-links", wheels, "--no-index", "--no-cuda-check", "--no-download",
                 "--no-verify", "--json")
    assert result.exit_code == 0, result.output
    statuses = [s["status"] for s in json.loads(result.stdout)["steps"]]
    assert statuses == ["satisfied", "ran"]  # found in place, not done by us
    assert not any(c[0] == "create" for c in _calls(fake_conda))


def test_conda_missing_is_a_clear_error(cli, recipes, wheels, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PATH", "/nonexistent")
    result = cli("--recipes-dir", recipes, "install", "tiny-env", "--env-backend", "conda",
                 "--no-download", "--no-verify", "--no-cuda-check")
    assert result.exit_code == 1
    assert "neither conda, mamba nor micromamba" in result.stderr
