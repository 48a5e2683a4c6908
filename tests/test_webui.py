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
import stat
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
        if self.path == "/v1/models":
            body = json.dumps({"data": [{"id": args.model}]}).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body)
            return
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
  tree_blobs: {blobs}
"""


def _blob(repo: Path, commit: str, path: str) -> str:
    return subprocess.run(["git", "rev-parse", f"{commit}:{path}"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def setup(tmp_path, webui_repo, wheels, tiny_llama):
    bare, pinned, _ = webui_repo
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    py = "{}.{}".format(*sys.version_info[:2])
    (recipes / "tiny-chat.yaml").write_text(
        RECIPE.format(py=py, url=f"file://{bare}", commit=pinned[:7], blobs=json.dumps(
            {f: _blob(bare, pinned, f) for f in ("server.py", "requirements.txt")})))
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


def test_serve_listen_is_the_books_flag(cli, setup):
    assert _install(cli, setup).exit_code == 0
    result = cli("--recipes-dir", setup["recipes"], "serve", "tiny-chat", "--listen",
                 "--dry-run")
    assert result.exit_code == 0, result.output
    assert "--listen-host 0.0.0.0 --listen-port 7860 --listen" in result.stdout
    assert "--gradio-auth-path" in result.stdout  # beyond loopback: a login (issue 14)
    same = cli("--recipes-dir", setup["recipes"], "serve", "tiny-chat", "--listen-host",
               "0.0.0.0", "--dry-run")
    assert same.stdout == result.stdout
    open_ = cli("--recipes-dir", setup["recipes"], "serve", "tiny-chat", "--listen",
                "--no-auth", "--dry-run")
    assert "--gradio-auth-path" not in open_.stdout and "no password" in open_.stderr
    clash = cli("--recipes-dir", setup["recipes"], "serve", "tiny-chat", "--listen",
                "--listen-host", "10.1.2.3", "--dry-run")
    assert clash.exit_code == 2 and "--listen means" in clash.stderr


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


def test_verify_webui_checks_page_and_chat(cli, setup, llmsetup_home):
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
        # Without --webui-api: the API port serve recorded for that page (not 5000).
        result = cli("--recipes-dir", setup["recipes"], "verify", "tiny-chat", "--webui",
                     f"http://127.0.0.1:{port}")
        assert result.exit_code == 0, result.output
        flat = " ".join(result.stdout.split())
        assert f"Page http://127.0.0.1:{port}" in flat
        assert f"API http://127.0.0.1:{api_port} (the port `serve` recorded)" in flat
        assert "A: echo: " in flat
        # Without a record the page alone is checked, and the output says where it looked.
        (llmsetup_home / "state" / "tiny-chat" / "webui-serve.json").unlink()
        result = cli("--recipes-dir", setup["recipes"], "verify", "tiny-chat", "--webui",
                     f"http://127.0.0.1:{port}")
        assert result.exit_code == 0 and "No API at http://127.0.0.1:5000" in result.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    result = cli("--recipes-dir", setup["recipes"], "verify", "tiny-chat", "--webui",
                 f"http://127.0.0.1:{port}")
    assert result.exit_code == 1 and "does not answer" in result.stderr


# --- issue 13: the journeys around the checkout ---------------------------------------------

GITHUB = "https://github.com/oobabooga/text-generation-webui"


def test_clone_source_styles(tmp_path, webui_repo):
    from llmsetup.webui.repo import clone_source

    assert clone_source(GITHUB, None) == (GITHUB, "direct")
    assert clone_source(GITHUB, "https://ghproxy.example/") == (
        "https://ghproxy.example/" + GITHUB, "proxy")
    assert clone_source(GITHUB, "https://ghproxy.example") == (
        "https://ghproxy.example/" + GITHUB, "proxy")
    assert clone_source(GITHUB, "git@gitee.example:org/") == (
        "git@gitee.example:org/oobabooga/text-generation-webui", "root")
    assert clone_source(GITHUB, "https://gitee.example/org/") == (
        "https://gitee.example/org/oobabooga/text-generation-webui", "root")
    assert clone_source(GITHUB, "https://kk.example/{path}") == (
        "https://kk.example/oobabooga/text-generation-webui", "template")
    # A local mirror root: never PREFIX + the GitHub URL; the repository that exists.
    root = tmp_path / "mirror"
    (root / "oobabooga").mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", "--mirror", str(webui_repo[0]),
                    str(root / "oobabooga" / "text-generation-webui.git")], check=True)
    local = str(root / "oobabooga" / "text-generation-webui.git")
    assert clone_source(GITHUB, f"{root}/") == (local, "root")
    assert clone_source(GITHUB, f"file://{root}") == (local, "root")
    assert clone_source(GITHUB, local) == (local, "repository")
    for bad in (str(tmp_path / "nowhere") + "/", "ftp://files.example/"):
        with pytest.raises(UsageError) as err:
            clone_source(GITHUB, bad)
        assert "https://github.com" not in err.value.message


def _github_recipe(setup) -> None:
    """The recipe with the real upstream URL, so that a mirror root maps it."""
    path = setup["recipes"] / "tiny-chat.yaml"
    text = path.read_text()
    start = text.index("  repo_url: ") + len("  repo_url: ")
    path.write_text(text[:start] + GITHUB + text[text.index("\n", start):])


def test_git_mirror_root_in_the_dry_run_and_the_clone(cli, setup, webui_repo, tmp_path):
    _github_recipe(setup)
    root = tmp_path / "mirror"
    (root / "oobabooga").mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", "--mirror", str(webui_repo[0]),
                    str(root / "oobabooga" / "text-generation-webui.git")], check=True)
    bad = _install(cli, setup, "--git-mirror", str(tmp_path / "empty") + "/", "--dry-run")
    assert bad.exit_code == 2 and "no git repository" in bad.stderr
    assert "Traceback" not in bad.output
    dry = cli("--recipes-dir", setup["recipes"], "install", "tiny-chat", "--ui", "webui",
              "--webui-dir", setup["webui"], "--git-mirror", f"{root}/", "--dry-run")
    assert dry.exit_code == 0, dry.output
    flat = " ".join(dry.stdout.split())
    assert "from the mirror root" in flat and "/https://github.com" not in flat
    assert f"git clone {root}/oobabooga/text-generation-webui.git" in flat
    result = _install(cli, setup, "--git-mirror", f"{root}/")
    assert result.exit_code == 0, result.output
    clone = json.loads(result.stdout)["steps"][0]
    assert clone["status"] == "ran" and "mirror root" in clone["info"]["summary"]


def test_existing_checkout_at_the_commit_is_recorded_and_force_reruns(cli, setup,
                                                                      llmsetup_home):
    tgw = setup["webui"]
    subprocess.run(["git", "clone", "-q", _recipe_url(setup), str(tgw)], check=True)
    subprocess.run(["git", "-C", str(tgw), "checkout", "-q", "--detach", setup["pinned"]],
                   check=True)
    result = _install(cli, setup)
    assert result.exit_code == 0, result.output
    clone = json.loads(result.stdout)["steps"][0]
    assert clone["status"] == "ran" and "already at" in clone["info"]["summary"]
    record = json.loads((llmsetup_home / "state" / "tiny-chat" / "webui.json").read_text())
    assert record["dir"] == str(tgw) and record["commit"] == setup["pinned"]
    # serve finds it without --webui-dir
    dry = cli("--recipes-dir", setup["recipes"], "serve", "tiny-chat", "--dry-run")
    assert dry.exit_code == 0 and f"cd {tgw}" in dry.stdout
    # --force on a checkout at the commit (the short id resolved to the full one)
    again = _install(cli, setup, "--force")
    assert again.exit_code == 0, again.output
    assert "not the book's" not in again.stderr


def _recipe_url(setup) -> str:
    text = (setup["recipes"] / "tiny-chat.yaml").read_text()
    return text.split("  repo_url: ", 1)[1].split("\n", 1)[0]


def test_tree_without_git_is_checked_against_the_blob_ids(cli, setup, llmsetup_home):
    tgw = setup["webui"]
    tgw.mkdir()
    bare = _recipe_url(setup).removeprefix("file://")
    archive = subprocess.run(["git", "archive", setup["pinned"]], cwd=bare, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tgw)], input=archive, check=True)
    result = _install(cli, setup)
    assert result.exit_code == 0, result.output
    record = json.loads((llmsetup_home / "state" / "tiny-chat" / "webui.json").read_text())
    assert record["kind"] == "tree" and "server.py" in record["verified_by"]
    assert {s["status"] for s in json.loads(_install(cli, setup).stdout)["steps"]} == {"done"}
    # A tree whose server.py is not the commit's: refused, unless --accept-tree.
    (tgw / "server.py").write_text((tgw / "server.py").read_text() + "\n# changed\n")
    refused = _install(cli, setup, "--force")
    assert refused.exit_code == 2 and "server.py do not match" in refused.stderr
    assert "--accept-tree" in refused.stderr
    accepted = _install(cli, setup, "--force", "--accept-tree")
    assert accepted.exit_code == 0, accepted.output
    record = json.loads((llmsetup_home / "state" / "tiny-chat" / "webui.json").read_text())
    assert record["verified_by"] == "--accept-tree" and record["mismatches"] == ["server.py"]


def test_install_from_dir_offline_says_sizes_only(cli, setup, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    copy = tmp_path / "copy"
    shutil.move(setup["model"], copy)
    count = sum(1 for p in copy.rglob("*") if p.is_file())
    result = cli("--recipes-dir", setup["recipes"], "install", "tiny-chat", "--ui", "webui",
                 "--webui-dir", setup["webui"], "--env-backend", "venv", "--find-links",
                 setup["wheels"], "--no-index", "--no-cuda-check", "--no-verify", "--from", copy)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stderr.split())
    assert f"{count} file(s) adopted without a hash to check against; sizes only" in flat


def test_serve_a_model_folder_through_the_installed_checkout(cli, setup, tmp_path):
    import shutil

    folder = tmp_path / "My-Model"
    shutil.copytree(setup["model"], folder)
    none = cli("serve", str(folder), "--dry-run")
    assert none.exit_code == 2 and "--webui-dir" in none.stderr
    assert _install(cli, setup).exit_code == 0
    linked = setup["webui"] / "models" / "My-Model"
    dry = cli("serve", str(folder), "--dry-run")
    assert dry.exit_code == 0, dry.output
    flat = " ".join(dry.stdout.split())
    assert f"ln -s {folder} {linked}" in flat and "server.py --model My-Model" in flat
    port = _free_port()
    script = Path(sys.executable).parent / "llmsetup"
    proc = subprocess.Popen([str(script), "serve", str(folder), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while "serving" not in (line := proc.stderr.readline()):
            assert line, "the server stopped"
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        assert "My-Model" in page
        assert linked.is_symlink() and linked.resolve() == folder.resolve()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    # The link was for that server only: gone once it stopped; the checkout is as it was.
    assert not linked.is_symlink() and not linked.exists() and folder.is_dir()
    # A link left by a serve that was killed, whose folder is gone, is reused.
    other = tmp_path / "elsewhere" / "My-Model"
    shutil.copytree(setup["model"], other)
    linked.symlink_to(tmp_path / "removed-since" / "My-Model", target_is_directory=True)
    reused = cli("serve", str(other), "--dry-run")
    assert reused.exit_code == 0 and f"ln -s {other} {linked}" in " ".join(reused.stdout.split())
    # Another model under the same name (a link to a live folder, or a folder) is never
    # replaced.
    linked.unlink()
    linked.symlink_to(folder, target_is_directory=True)
    clash = cli("serve", str(other), "--dry-run")
    assert clash.exit_code == 2 and "already holds another model" in clash.stderr
    assert f"a link to {folder}" in " ".join(clash.stderr.split())
    linked.unlink()
    linked.mkdir()
    (linked / "config.json").write_text("{}")
    clash = cli("serve", str(other), "--dry-run")
    assert clash.exit_code == 2 and "already holds another model" in clash.stderr
    assert (linked / "config.json").read_text() == "{}"


def test_serve_beyond_loopback_gets_a_page_login_from_a_file(cli, setup, llmsetup_home):
    """127.0.0.2 stands for a network address. The stand-in does not check the login (the
    real webui's gradio does); what is checked here is what llmsetup controls: the login is
    made once, mode 600, passed as a file, printed once, never in argv."""
    assert _install(cli, setup).exit_code == 0
    port = _free_port()
    script = Path(sys.executable).parent / "llmsetup"
    argv = [str(script), "--recipes-dir", str(setup["recipes"]), "serve", "tiny-chat",
            "--listen-host", "127.0.0.2", "--port", str(port)]
    errs = []
    for _ in range(2):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            lines = []
            while "serving" not in (line := proc.stderr.readline()):
                assert line, "".join(lines)
                lines.append(line)
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        errs.append("".join(lines) + err)
    login = llmsetup_home / "auth" / "webui-login"
    assert stat.S_IMODE(login.stat().st_mode) == 0o600
    user, _, password = login.read_text().strip().partition(":")
    assert user == "llmsetup" and len(password) >= 12
    assert f"password {password}" in errs[0] and password not in errs[1]
    assert "the one stored in" in errs[1]
    launched = json.loads((setup["webui"] / "launched.json").read_text())["argv"]
    assert launched[launched.index("--gradio-auth-path") + 1] == str(login)
    assert "--listen" in launched and not any(password in a for a in launched)


def test_webui_api_beyond_loopback_is_refused_without_no_auth(cli, setup):
    assert _install(cli, setup).exit_code == 0
    args = ["--recipes-dir", setup["recipes"], "serve", "tiny-chat", "--listen", "--api",
            "--dry-run"]
    refused = cli(*args)
    assert refused.exit_code == 2 and "only on the command line" in refused.stderr
    assert "--engine vllm" in refused.stderr
    allowed = cli(*args, "--no-auth")
    assert allowed.exit_code == 0 and "--gradio-auth-path" not in allowed.stdout
