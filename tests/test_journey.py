"""A new user's first minutes, on a real terminal (a pty): install the demo, chat with it
(/system, two questions, /save), verify it. The screen is what is checked."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pexpect

LLMSETUP = [sys.executable, "-m", "llmsetup"]


def _spawn(*args: str, cwd: Path, timeout: int = 600) -> pexpect.spawn:
    return pexpect.spawn(LLMSETUP[0], [*LLMSETUP[1:], *args], cwd=str(cwd),
                         env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
                         encoding="utf-8", timeout=timeout, dimensions=(40, 120))


def _finish(child: pexpect.spawn) -> str:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return child.before


def test_install_chat_and_verify_the_demo_on_a_terminal(tmp_path):
    install = _spawn("install", "demo", cwd=tmp_path)
    install.expect_exact("demo is installed")
    _finish(install)

    chat = _spawn("chat", "demo", "--temperature", "0", cwd=tmp_path, timeout=180)
    chat.expect_exact("Type /help")
    chat.expect_exact("> ")
    chat.sendline("Hello! Who are you?")
    chat.expect_exact("tiny demo model")
    chat.expect(r"\(\d+ tokens, [\d.]+ tokens/s\)")
    chat.expect_exact("> ")
    # The demo learnt its dialogues without a system prompt: with one it may end its answer
    # at once, and chat must then say so rather than print nothing.
    chat.sendline("/system You are terse.")
    chat.expect_exact("> ")
    chat.sendline("What is the capital of France?")
    chat.expect(r"\(\d+ tokens|\(the model ended its answer at once")
    chat.expect_exact("> ")
    chat.sendline("/save talk.json")
    chat.expect_exact("saved the system prompt and 4 message(s)")
    chat.expect_exact("> ")
    chat.sendline("")
    screen = _finish(chat)
    assert "no longer fit" not in screen
    saved = json.loads((tmp_path / "talk.json").read_text(encoding="utf-8"))
    assert len(saved["messages"]) == 5 and saved["messages"][0]["role"] == "system"
    assert [t["seen_from"] for t in saved["turns"]] == [0, 0]

    verify = _spawn("verify", "demo", cwd=tmp_path, timeout=180)
    verify.expect_exact("demo")
    verify.expect_exact("passed")
    verify.expect_exact("Hello! Who are you?")  # after a bold "Q:"
    verify.expect_exact("tokens/s")
    screen = _finish(verify)
    assert "Traceback" not in screen
