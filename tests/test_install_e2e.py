"""The main job end to end in a fresh environment: `llmsetup install demo` with the venv
backend installs the modern lock for real (torch from the local CPU wheel, the rest from the
package index), checks torch, generates the demo model with that environment's own
transformers, and verifies it there. A second run does nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmsetup.recipes import Catalog


@pytest.mark.timeout(1200)
def test_demo_installs_its_lock_in_a_new_venv(llmsetup_home):
    script = Path(sys.executable).parent / "llmsetup"
    argv = [str(script), "install", "demo", "--env-backend", "venv", "--json"]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=1100)
    assert first.returncode == 0, first.stderr[-4000:]
    doc = json.loads(first.stdout)
    assert [(s["key"], s["status"]) for s in doc["steps"]] == [
        ("env", "ran"), ("requirements", "ran"), ("cuda-check", "ran"), ("download", "ran"),
        ("verify", "ran")]
    verify = doc["steps"][-1]["info"]
    assert verify["passed"] is True
    python = llmsetup_home / "envs" / "llmsetup-demo" / "bin" / "python"
    # Every package of the lock that the environment holds is at the lock's version for this
    # Python (a universal lock pins some packages per Python version, with markers).
    from packaging.requirements import Requirement

    lock = Catalog().get("demo").lock_path("modern")
    pinned: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate():
                pinned[req.name.lower()] = next(iter(req.specifier)).version
    code = ("import json, importlib.metadata as m; print(json.dumps({d.metadata['Name'].lower()"
            ".replace('_', '-'): d.version for d in m.distributions()}))")
    installed = json.loads(subprocess.run([str(python), "-c", code], capture_output=True,
                                          text=True, check=True).stdout)
    checked = [n for n in pinned if n in installed]
    assert {"torch", "transformers", "tokenizers", "safetensors", "numpy"} <= set(checked)
    for name in checked:
        assert installed[name].split("+")[0] == pinned[name], name
    again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {s["status"] for s in json.loads(again.stdout)["steps"]} == {"done"}
