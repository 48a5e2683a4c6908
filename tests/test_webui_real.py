"""Opt-in: the real text-generation-webui, when LLMSETUP_WEBUI_DIR points at a copy of it.

    LLMSETUP_WEBUI_DIR=~/text-generation-webui-1934cb6 .venv/bin/python -m pytest \
        tests/test_webui_real.py -s

The folder is the project's tree at the book's commit (a checkout, or `git archive 1934cb6`
of one). The test commits it into a local repository to clone from, installs it with the
recipe's book profile and lock (torch 2.2.1 and the webui's own pins: several GB from the
package index), deploys a tiny Llama built with the book's transformers, serves it on the
CPU with --api, and checks the page and one chat answer. Skipped without the variable.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from llmsetup.recipes import Catalog
from tests.compat import compat_python  # noqa: F401 (fixture)
from tests.conftest import TINY_LLAMA, build_tiny_causal_lm

SOURCE = os.environ.get("LLMSETUP_WEBUI_DIR")
pytestmark = pytest.mark.skipif(not SOURCE, reason="LLMSETUP_WEBUI_DIR is not set")


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(3600)  # several GB of wheels, then the model load on a CPU
def test_real_webui_serves_a_tiny_model(tmp_path, compat_python):  # noqa: F811
    work = tmp_path / "src"
    shutil.copytree(SOURCE, work, ignore=shutil.ignore_patterns(".git"))
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", "-A", "--force", cwd=work)  # the webui's .gitignore lists tracked folders
    _git("commit", "-q", "-m", "text-generation-webui at the book's commit", cwd=work)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True,
                            text=True, check=True).stdout.strip()
    real = Catalog().get("llama-2-7b-chat")
    recipes = tmp_path / "recipes"
    (recipes / "locks").mkdir(parents=True)
    lock = real.lock_path("book", webui=True)
    shutil.copy(lock, recipes / "locks" / lock.name)
    py = "{}.{}".format(*sys.version_info[:2])
    (recipes / "tiny-webui.yaml").write_text(f"""\
name: tiny-webui
kind: causal-lm
description: a tiny Llama served by the real text-generation-webui
repo_id: tests/tiny-webui
sources: [hf]
env: {{name: tiny-webui, python: '{py}'}}
profiles: {{book: []}}
params: 1.0e5
webui:
  repo_url: file://{work}
  commit: {commit[:12]}
  env: {{name: tiny-webui-env, python: '{py}'}}
  requirements_cutoff: {real.webui.requirements_cutoff}
  model_dir_name: Tiny-Llama-hf
  profiles: {{book: {json.dumps(real.webui.profiles['book'])}}}
  locks: {{book: locks/{lock.name}}}
  constraints: {json.dumps(real.webui.constraints)}
""")
    # Built with the book's transformers and tokenizers, which the webui's lock also has.
    model = Path(os.environ["LLMSETUP_MODELS_DIR"]) / "tests" / "tiny-webui"
    build_tiny_causal_lm(model, TINY_LLAMA, python=compat_python, train_steps=100)
    script = str(Path(sys.executable).parent / "llmsetup")
    tgw = tmp_path / "tgw"
    install = subprocess.run(
        [script, "--recipes-dir", str(recipes), "install", "tiny-webui", "--ui", "webui",
         "--webui-dir", str(tgw), "--env-backend", "venv", "--cpu", "--no-download",
         "--no-verify"], capture_output=True, text=True, timeout=3000)
    print(install.stderr[-3000:])
    assert install.returncode == 0, install.stderr[-3000:]
    port, api_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [script, "--recipes-dir", str(recipes), "serve", "tiny-webui", "--cpu", "--api",
         "--port", str(port), "--api-port", str(api_port), "--ready-timeout", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            if "is serving tiny-webui" in line:
                break
        assert any("is serving" in line for line in lines), "".join(lines[-60:])
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60)
        assert page.status == 200
        from llmsetup.webui.api import chat_once

        answer = chat_once(f"http://127.0.0.1:{api_port}", "Hello! Who are you?", max_tokens=24)
        print("page:", page.status, "chat answer:", repr(answer))
        assert answer.strip()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        print("".join(lines[-40:]) + (rest or "")[-2000:])
