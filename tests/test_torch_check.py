"""The torch/CUDA check: what it reports, and why CUDA is missing when it is."""

from __future__ import annotations

import json
import subprocess
import sys

from llmsetup.runtime.torch_check import diagnose
from tests.conftest import RUNTIME

INFO = {"torch": "2.0.1+cu117", "cuda_version": "11.7", "cuda_available": False, "gpus": []}


def test_cpu_only_wheel():
    message, hint = diagnose({**INFO, "torch": "2.13.0+cpu", "cuda_version": None}, [])
    assert "CPU-only build" in message and "--cpu" in hint


def test_no_driver():
    message, hint = diagnose(INFO, [])
    assert "no NVIDIA GPU or driver" in message and "driver" in hint


def test_gpu_newer_than_the_book_torch():
    smi = [{"name": "NVIDIA B200", "driver": "570.1", "compute_capability": "10.0"}]
    message, hint = diagnose(INFO, smi)
    assert "newer than torch 2.0.1+cu117 supports" in message
    assert "--profile modern" in hint


def test_driver_too_old():
    smi = [{"name": "Tesla T4", "driver": "450.80", "compute_capability": "7.5"}]
    message, hint = diagnose({**INFO, "torch": "2.13.0", "cuda_version": "13.0"}, smi)
    assert "driver" in hint
    assert "driver 450.80 is too old" in message and "13.0" in message


def test_runs_in_an_environment_and_requires_cuda_on_request():
    """The real module, in this interpreter (a CPU-only torch here)."""
    script = str(RUNTIME / "torch_check.py")
    ok = subprocess.run([sys.executable, script], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    events = [json.loads(line) for line in ok.stdout.splitlines()]
    torch_event = next(e for e in events if e["event"] == "torch")
    assert torch_event["cuda_available"] is False and torch_event["torch"].startswith("2.")
    assert events[-1]["event"] == "result"
    strict = subprocess.run([sys.executable, script, "--require-cuda"], capture_output=True,
                            text=True)
    assert strict.returncode == 1
    error = json.loads(strict.stdout.splitlines()[-1])
    assert error["event"] == "error" and error["code"] == "cuda-missing" and error["hint"]


def test_install_without_gpu_fails_with_the_cause(cli, tmp_path):
    """A GPU recipe on this CPU-only machine: the check stops the install and says why."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "gpu-model.yaml").write_text(
        "name: gpu-model\nkind: causal-lm\ndescription: x\nrepo_id: a/b\n"
        "env: {name: gpu-model, python: '3.11', backend: current}\n"
        "default_profile: modern\nprofiles: {modern: []}\n")
    result = cli("--recipes-dir", recipes, "install", "gpu-model", "--no-download",
                 "--no-verify")
    assert result.exit_code == 1
    assert "CUDA is not available" in result.stderr and "--cpu" in result.stderr
    result = cli("--recipes-dir", recipes, "install", "gpu-model", "--no-download",
                 "--no-verify", "--cpu")
    assert result.exit_code == 0, result.output
