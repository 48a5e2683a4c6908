"""The compatibility job: the causal-LM verifier and chat under the book's pins.

A real second environment with transformers 4.38.1 and accelerate 0.27.2 (tests/compat.py)
builds its own tiny model (a tokenizer.json from a newer ``tokenizers`` would not load
there), then ``llmsetup verify`` and ``llmsetup chat`` run it through ``--python``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compat import compat_python  # noqa: F401  (fixture)
from tests.conftest import CHAT_LLAMA, CHAT_TRAIN_STEPS, build_tiny_causal_lm
from tests.lm_helpers import no_traceback, validate

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def compat_llama(compat_python, tmp_path_factory):  # noqa: F811
    return build_tiny_causal_lm(tmp_path_factory.mktemp("compat") / "chat-llama", CHAT_LLAMA,
                                python=compat_python, train_steps=CHAT_TRAIN_STEPS)


def test_verify_full_precision_on_transformers_4_38(cli, compat_python, compat_llama):  # noqa: F811
    result = cli("verify", compat_llama, "--cpu", "--python", compat_python, "--json",
                 "--prompt", "Hello! Who are you?", "--prompt", "你好，请介绍一下你自己。",
                 "--max-new-tokens", "48")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    validate(doc)
    assert doc["versions"]["transformers"] == "4.38.1"
    assert doc["versions"]["accelerate"] == "0.27.2"
    english, chinese = doc["prompts"]
    assert english["answer"] == ("Hello! I am a tiny demo model that llmsetup trained on your "
                                 "machine in a second.")
    assert chinese["answer"] == "你好！我是 llmsetup 在你的电脑上训练的小模型。"
    assert english["stop_reason"] == chinese["stop_reason"] == "eos"


def test_chat_on_transformers_4_38(compat_python, compat_llama, tmp_path):  # noqa: F811
    proc = subprocess.run(
        [sys.executable, "-m", "llmsetup", "chat", str(compat_llama), "--cpu", "--python",
         compat_python, "--temperature", "0", "--max-new-tokens", "40"],
        input="Hello! Who are you?\nWhat is llmsetup?\n/save chat.json\n\n",
        capture_output=True, text=True, cwd=tmp_path, timeout=180, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Hello! I am a tiny demo model")
    turns = json.loads((tmp_path / "chat.json").read_text())["turns"]
    assert len(turns) == 2 and turns[1]["prompt_tokens"] > turns[0]["prompt_tokens"]


def test_quantizing_without_bitsandbytes_says_what_to_install(cli, compat_python,  # noqa: F811
                                                               compat_llama):
    """The compatibility env has no bitsandbytes (the book installs 0.42, which has no CPU
    backend): --8bit stops before loading, with advice."""
    result = cli("verify", compat_llama, "--cpu", "--8bit", "--python", compat_python)
    assert result.exit_code == 1
    assert "--8bit needs bitsandbytes" in result.stderr
    assert "llmsetup install" in result.stderr
    no_traceback(result)


@pytest.fixture(scope="module")
def book_bnb_python(compat_python, tmp_path_factory):  # noqa: F811
    """The compatibility env plus the book's bitsandbytes 0.42.0: a venv whose .pth file
    adds the compatibility env's packages (a venv's --system-site-packages would not)."""
    env = tmp_path_factory.mktemp("book-bnb") / "env"
    subprocess.run([compat_python, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    site = lambda py: subprocess.run(  # noqa: E731
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip()
    (Path(site(str(python))) / "compat-env.pth").write_text(site(compat_python) + "\n")
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                           "--disable-pip-version-check", "bitsandbytes==0.42.0"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"bitsandbytes 0.42.0 cannot be installed here: {proc.stderr[-300:]}")
    return str(python)


def test_the_books_bitsandbytes_on_a_cpu_says_so_before_loading(cli, book_bnb_python,
                                                                compat_llama):
    """bitsandbytes 0.42 (the book's pin) has CUDA kernels only: on the CPU, --8bit stops
    with that reason and the way out, not transformers' "install the latest bitsandbytes"."""
    result = cli("verify", compat_llama, "--cpu", "--8bit", "--python", book_bnb_python)
    assert result.exit_code == 2, result.output
    assert "bitsandbytes 0.42.0 (in this environment) quantizes on a CUDA GPU only" \
        in result.stderr
    assert "--profile modern" in result.stderr and "drop --8bit/--4bit" in result.stderr
    no_traceback(result)


def test_a_folder_saved_by_a_newer_transformers_says_so(cli, compat_python,  # noqa: F811
                                                        chat_llama):
    """A model folder written by today's transformers (its tokenizer file and class are
    newer than tokenizers 0.15 reads), run in the book-era env: one clear line, exit 2."""
    result = cli("verify", chat_llama, "--cpu", "--python", compat_python)
    assert result.exit_code == 2, result.output
    assert "its tokenizer was saved by a newer transformers or tokenizers" in result.stderr
    assert "transformers 4.38.1" in result.stderr and "--profile modern" in result.stderr
    no_traceback(result)
