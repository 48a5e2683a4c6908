"""`pip install .` in a fresh environment: the host commands work without torch at all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from llmsetup.envs.uv import find_uv
from tests.test_recipes import BOOK_GEMMA, EXPECTED

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_in_a_fresh_venv_lists_shows_and_doctors_without_torch(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(ROOT)], check=True)
    wheel = next((tmp_path / "dist").glob("llmsetup-*.whl"))
    venv = tmp_path / "venv"
    uv = find_uv()
    assert uv, "uv is part of the test dependencies"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([uv, "pip", "install", "-q", "--python", str(python), str(wheel)], check=True)
    script = str(venv / "bin" / "llmsetup")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
           "LLMSETUP_HOME": str(tmp_path / "home"), "LLMSETUP_MODELS_DIR": str(tmp_path / "m")}

    def run(*args: str) -> dict:
        proc = subprocess.run([script, *args, "--json"], capture_output=True, text=True, env=env,
                              cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    assert {r["name"] for r in run("list")["recipes"]} == EXPECTED
    assert run("show", "gemma-2b")["recipe"]["profiles"]["book"] == BOOK_GEMMA
    doctor = run("doctor", "gemma-2b")
    assert doctor["gpu"]["available"] is False and doctor["tools"]["conda"]["found"] is False
    # The light install really is light: neither torch nor transformers is there.
    missing = subprocess.run([str(python), "-c", "import importlib.util as u; "
                              "print(u.find_spec('torch'), u.find_spec('transformers'))"],
                             capture_output=True, text=True, check=True)
    assert missing.stdout.strip() == "None None"
    # The build compiled the message catalog into the wheel: Chinese works from it.
    zh = subprocess.run([script, "--help"], capture_output=True, text=True, cwd=tmp_path,
                        env={**env, "LLMSETUP_LANG": "zh"})
    assert zh.returncode == 0 and zh.stdout.startswith("用法：llmsetup"), zh.stdout + zh.stderr
