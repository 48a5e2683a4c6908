"""text-generation-webui: trimming, the install/deploy flow, serve and its readiness wait.

The real text-generation-webui cannot be fetched here, so the flow runs against a local git
repository the test creates: a bare repo with a commit whose server.py is a small stand-in
HTTP server (it answers the page and an OpenAI-style chat request, and records its
arguments) and whose requirements.txt has lines after the cut-off that would fail to install.
Clone, checkout of the pinned commit, trim, environment, deploy, serve, the readiness wait
and Ctrl-C forwarding all run for real. tests/test_webui_real.py runs against a real
checkout when LLMSETUP_WEBUI_DIR points at one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from llmsetup.errors import UsageError
from llmsetup.webui.repo import clone_url, requirement_name, trim_requirements
from tests.wheels import make_wheel

REALISTIC = """\
accelerate==0.27.*
aqlm[gpu,cpu]==1.1.0; platform_system == "Linux"
--extra-index-url https://download.example.org/whl/cu121
colorama  # terminal colours
numpy==1.26.*

# API
SpeechRecognition==3.10.0
sse-starlette==1.6.5
tiktoken

# llama-cpp-python (CPU only, AVX2)
https://example.org/llama_cpp_python-0.2.56+cpuavx2-cp311-cp311-manylinux_2_31_x86_64.whl; platform_system == "Linux"
autoawq==0.2.3; platform_system == "Linux" or platform_system == "Windows"
"""


def test_trim_keeps_everything_up_to_the_cutoff_verbatim():
    trimmed = trim_requirements(REALISTIC, "tiktoken")
    assert trimmed == REALISTIC[: REALISTIC.index("tiktoken\n") + len("tiktoken\n")]
    assert '--extra-index-url' in trimmed and 'platform_system == "Linux"' in trimmed
    assert "# terminal colours" in trimmed and "llama_cpp" not in trimmed


def test_trim_matches_names_not_substrings_and_normalizes():
    text = "tiktoken-extra==1\nsse_starlette==1.6.5\nlater==1\n"
    assert trim_requirements(text, "sse-starlette") == "tiktoken-extra==1\nsse_starlette==1.6.5\n"
    assert requirement_name("https://x/y/llama_cpp_python-0.2.56-cp311.whl; os_name == 'nt'") == \
        "llama-cpp-python"
    assert requirement_name("  # tiktoken") is None
    assert requirement_name("--extra-index-url https://x") is None


def test_trim_without_the_cutoff_fails_clearly():
    with pytest.raises(UsageError) as err:
        trim_requirements("numpy\nscipy\n", "tiktoken")
    assert "'tiktoken' is not in" in err.value.message


def test_clone_url_mirror_forms():
    url = "https://github.com/oobabooga/text-generation-webui"
    assert clone_url(url, None) == url
    assert clone_url(url, "https://ghproxy.example/") == "https://ghproxy.example/" + url
    assert clone_url(url, "https://m.example/{url}.git") == f"https://m.example/{url}.git"
    assert clone_url(url, "https://gitee.example/x/tgw.git") == "https://gitee.example/x/tgw.git"


STAND_IN_SERVER = r'''
"""Stand-in for text-generation-webui's server.py (tests only)."""
import argparse, json, os, signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

p = argparse.ArgumentParser()
p.add_argument("--model"); p.add_argument("--listen-host", default="127.0.0.1")
p.add_argument("--listen-port", type=int, default=7860); p.add_argument("--listen", action="store_true")
p.add_argument("--api", action="store_true"); p.add_argument("--api-port", type=int, default=5000)
p.add_argument("--load-in-4bit", action="store_true"); p.add_argument("--load-in-8bit", action="store_true")
p.add_argument("--cpu", action="store_true")
args, rest = p.parse_known_args()
with open("launched.json", "w") as f:
    json.dump({"argv": sys.argv[1:], "python": sys.executable}, f)
if not os.path.isfile(os.path.join("models", args.model, "config.json")):
    sys.exit(f"model {args.model} not found in models/")

class Page(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = f"<html>Text generation web UI: {args.model}</html>".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = "echo: " + data["messages"][-1]["content"]
        body = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)

servers = [ThreadingHTTPServer((args.listen_host, args.listen_port), Page)]
if args.api:
    servers.append(ThreadingHTTPServer((args.listen_host, args.api_port), Page))
for s in servers:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("Running on local URL", flush=True)
try:
    signal.pause()
except KeyboardInterrupt:
    print("stand-in server stopped", flush=True)
    sys.exit(0)
'''


def _git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"})


@pytest.fixture(scope="module")
def webui_repo(tmp_path_factory) -> tuple[Path, str, str]:
    """A bare repo: a pinned commit with the stand-in, and a later commit on top."""
    work = tmp_path_factory.mktemp("webui-src")
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "server.py").write_text(STAND_IN_SERVER)
    (work / "requirements.txt").write_text(
        "# webui requirements\nllmsetup-test-alpha==1.0\ntiktoken-stand-in==1.0\n"
        "https://unreachable.example/not-a-wheel-1.0-py3-none-any.whl\n")
    (work / "models").mkdir()
    (work / "models" / "place-your-models-here.txt").write_text("")
    _git("add", "-A", cwd=work)
    _git("commit", "-q", "-m", "pinned", cwd=work)
    pinned = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True,
                            text=True, check=True).stdout.strip()
    (work / "NEWS").write_text("later\n")
    _git("add", "-A", cwd=work)
    _git("commit", "-q", "-m", "later", cwd=work)
    later = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True,
                           text=True, check=True).stdout.strip()
    bare = tmp_path_factory.mktemp("webui-bare") / "tgw.git"
    _git("clone", "-q", "--bare", str(work), str(bare))
    return bare, pinned, later


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("webui-wheels")
    make_wheel(folder, "llmsetup-test-alpha", "1.0")
    make_wheel(folder, "tiktoken-stand-in", "1.0")
    make_wheel(folder, "llmsetup-test-torch", "1.0")
    return folder


RECIPE = """\
name: tiny-chat
kind: causal-lm
description: a tiny chat model served through the stand-in webui
repo_id: tests/tiny-chat
sources: [hf]
env: {{name: tiny-chat, python: '{py}'}}
profiles:
  book: [llmsetup-test-alpha==1.0]
params: 1.0e5
webui:
  repo_url: {url}
  commit: {commit}
  env: {{name: tiny-webui, python: '{py}'}}
  requirements_cutoff: tiktoken-stand-in
  model_dir_name: Tiny-Chat-hf
  profiles:
    book: [llmsetup-test-torch==1.0]
  constraints: [llmsetup-test-alpha>=1.0]
"""


@pytest.fixture
def setup(tmp_path, webui_repo, wheels, tiny_llama):
    bare, pinned, _ = webui_repo
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    py = "{}.{}".format(*sys.version_info[:2])
    (recipes / "tiny-chat.yaml").write_text(
        RECIPE.format(py=py, url=f"file://{bare}", commit=pinned[:7]))
    # The model as a download would have left it.
    model = Path(os.environ["LLMSETUP_MODELS_DIR"]) / "tests" / "tiny-chat"
    model.parent.mkdir(parents=True)
    import shutil

    shutil.copytree(tiny_llama, model)
    return {"recipes": recipes, "webui": tmp_path / "tgw", "wheels": wheels, "model": model,
            "pinned": pinned}


def _install(cli, s, *extra):
    return cli("--recipes-dir", s["recipes"], "install", "tiny-chat", "--ui", "webui",
               "--webui-dir", s["webui"], "--env-backend", "venv", "--find-links", s["wheels"],
               "--no-index", "--no-cuda-check", "--no-download", "--no-verify", "--json", *extra)


def test_webui_install_clones_trims_installs_and_deploys(cli, setup, llmsetup_home):
    result = _install(cli, setup)
    assert result.exit_code == 0, result.output
    steps = {s["key"]: s["status"] for s in json.loads(result.stdout)["steps"]}
    assert steps == {"webui-clone": "ran", "env": "ran", "requirements": "ran", "deploy": "ran"}
    tgw = setup["webui"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tgw, capture_output=True, text=True)
    assert head.stdout.strip() == setup["pinned"]
    req = (llmsetup_home / "state" / "tiny-chat" / "requirements.webui.book.txt").read_text()
    assert "tiktoken-stand-in==1.0" in req and "unreachable.example" not in req
    assert "llmsetup-test-torch==1.0" in req
    deployed = tgw / "models" / "Tiny-Chat-hf"
    assert deployed.is_symlink() and deployed.resolve() == setup["model"].resolve()
    # The webui environment is its own, with the webui's requirements in it.
    python = llmsetup_home / "envs" / "tiny-webui" / "bin" / "python"
    subprocess.run([str(python), "-c", "import tiktoken_stand_in, llmsetup_test_torch"],
                   check=True)
    again = _install(cli, setup)
    assert {s["status"] for s in json.loads(again.stdout)["steps"]} == {"done"}


def test_existing_checkout_at_another_commit_needs_yes(cli, setup, webui_repo):
    bare, pinned, later = webui_repo
    subprocess.run(["git", "clone", "-q", str(bare), str(setup["webui"])], check=True)
    result = _install(cli, setup)
    assert result.exit_code == 2
    assert "--yes" in result.stderr and later[:10] in result.stderr
    result = _install(cli, setup, "--yes")
    assert result.exit_code == 0, result.output
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=setup["webui"], capture_output=True,
                          text=True).stdout.strip()
    assert head == pinned


def test_dirty_checkout_is_never_touched(cli, setup, webui_repo):
    bare, _, _later = webui_repo
    subprocess.run(["git", "clone", "-q", str(bare), str(setup["webui"])], check=True)
    (setup["webui"] / "server.py").write_text("# my local edit\n")
    result = _install(cli, setup, "--yes")
    assert result.exit_code == 2 and "local changes" in result.stderr
    assert (setup["webui"] / "server.py").read_text() == "# my local edit\n"


@pytest.mark.parametrize("mode", ["copy", "move"])
def test_deploy_copy_and_move(cli, setup, mode):
    result = _install(cli, setup, "--deploy", mode)
    assert result.exit_code == 0, result.output
    deployed = setup["webui"] / "models" / "Tiny-Chat-hf"
    assert not deployed.is_symlink() and (deployed / "config.json").is_file()
    if mode == "move":
        # The download path keeps working through a link to the moved folder.
        assert setup["model"].is_symlink() and (setup["model"] / "config.json").is_file()
    else:
        assert not setup["model"].is_symlink()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_waits_answers_and_forwards_ctrl_c(cli, setup, llmsetup_home):
    assert _install(cli, setup).exit_code == 0
    port, api_port = _free_port(), _free_port()
    script = Path(sys.executable).parent / "llmsetup"
    argv = [str(script), "--recipes-dir", str(setup["recipes"]), "serve", "tiny-chat", "--4bit",
            "--api", "--port", str(port), "--api-port", str(api_port),
            "--extra", "--n-gpu-layers 0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "serving" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, proc.stdout.read()
        assert f"http://127.0.0.1:{port}/" in line
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        assert "Tiny-Chat-hf" in page
        from llmsetup.webui.api import chat_once

        assert chat_once(f"http://127.0.0.1:{api_port}", "hello there") == "echo: hello there"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stand-in server stopped" in out
    launched = json.loads((setup["webui"] / "launched.json").read_text())
    argv = launched["argv"]
    assert argv[:2] == ["--model", "Tiny-Chat-hf"] and "--load-in-4bit" in argv
    assert ["--api", "--api-port", str(api_port)] == argv[argv.index("--api"):argv.index("--api") + 3]
    assert argv[-2:] == ["--n-gpu-layers", "0"]
    assert launched["python"] == str(llmsetup_home / "envs" / "tiny-webui" / "bin" / "python")


def test_serve_dry_run_shows_the_command(cli, setup):
    assert _install(cli, setup).exit_code == 0
    result = cli("--recipes-dir", setup["recipes"], "serve", "tiny-chat", "--8bit",
                 "--listen-host", "0.0.0.0", "--dry-run")
    assert result.exit_code == 0
    assert "server.py --model Tiny-Chat-hf --listen-host 0.0.0.0 --listen-port 7860 --listen " \
           "--load-in-8bit" in result.stdout


def test_serve_reports_a_server_that_dies(cli, setup):
    assert _install(cli, setup).exit_code == 0
    (setup["model"] / "config.json").unlink()  # the stand-in exits: model not found
    result = cli("--recipes-dir", setup["recipes"], "serve", "tiny-chat", "--port",
                 str(_free_port()))
    assert result.exit_code == 1
    assert "exited with status 1 before it answered" in result.stderr


def test_serve_without_install_says_how(cli):
    result = cli("serve", "llama-2-7b-chat")
    assert result.exit_code == 2 and "--ui webui" in result.stderr
    result = cli("serve", "gemma-2b")
    assert result.exit_code == 2 and "llmsetup chat gemma-2b" in result.stderr


def test_verify_webui_checks_page_and_chat(cli, setup):
    assert _install(cli, setup).exit_code == 0
    port, api_port = _free_port(), _free_port()
    script = Path(sys.executable).parent / "llmsetup"
    proc = subprocess.Popen([str(script), "--recipes-dir", str(setup["recipes"]), "serve",
                             "tiny-chat", "--api", "--port", str(port), "--api-port",
                             str(api_port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        while "serving" not in (line := proc.stderr.readline()):
            assert line, "the server stopped"
        result = cli("--recipes-dir", setup["recipes"], "verify", "tiny-chat", "--webui",
                     f"http://127.0.0.1:{port}", "--webui-api", f"http://127.0.0.1:{api_port}",
                     "--json")
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["page_status"] == 200 and doc["passed"] is True
        assert doc["api"]["answer"].startswith("echo: ")
        # Without the API port the page alone is checked, and the output says so.
        result = cli("--recipes-dir", setup["recipes"], "verify", "tiny-chat", "--webui",
                     f"http://127.0.0.1:{port}")
        assert result.exit_code == 0 and "No API" in result.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    result = cli("--recipes-dir", setup["recipes"], "verify", "tiny-chat", "--webui",
                 f"http://127.0.0.1:{port}")
    assert result.exit_code == 1 and "does not answer" in result.stderr
