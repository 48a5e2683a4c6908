"""``llmsetup chat`` driven through a pipe and through a pseudo-terminal.

The CLI runs as a real process (``python -m llmsetup``): the REPL owns the terminal, which
Typer's CliRunner cannot give it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lm_helpers import write_recipe

CHAT = [sys.executable, "-m", "llmsetup", "chat"]


def chat_pipe(*args, input: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CHAT, *map(str, args)], input=input, capture_output=True,
                          text=True, cwd=cwd, timeout=180, env=dict(os.environ))


def saved(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "llmsetup-chat/1"
    return doc


def test_pipe_multi_turn_clear_save_and_empty_line(chat_llama, tmp_path):
    lines = ["Hello! Who are you?", "What is the capital of France?", "/save first.json",
             "/clear", "/system Be brief.", "What is llmsetup?", "/save sub/second.json",
             "", "What can you do?"]
    proc = chat_pipe(chat_llama, "--cpu", "--temperature", "0", "--max-new-tokens", "40",
                     input="\n".join(lines) + "\n", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # Answers alone on stdout; the trained model answers its first question word for word.
    assert proc.stdout.startswith("Hello! I am a tiny demo model")
    assert "Type /help" in proc.stderr and "Type /help" not in proc.stdout
    first = saved(tmp_path / "first.json")
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"] * 2
    assert first["messages"][1]["content"].startswith("Hello! I am a tiny demo model")
    one, two = first["turns"]
    # The second prompt carries the first exchange: history goes through the template.
    assert two["prompt_tokens"] > one["prompt_tokens"] + one["new_tokens"]
    second = saved(tmp_path / "sub" / "second.json")
    assert second["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [m["content"] for m in second["messages"] if m["role"] == "user"] == [
        "What is llmsetup?"]
    assert second["turns"][0]["prompt_tokens"] < two["prompt_tokens"]
    # The empty line quit: the question after it was never answered.
    assert len(proc.stdout.strip().splitlines()) == 3
    assert "I only know a few sentences" not in proc.stdout


def test_history_is_trimmed_to_the_context(chat_llama, tmp_path):
    """The model's context is 256 tokens: the oldest exchanges drop out of its view, the
    saved conversation keeps them, and a message too long for any context is refused."""
    long = "Tell me everything about llmsetup and the capital of France. " * 5
    lines = [long + "One.", long + "Two.", long + "Three.", long * 4, "/save talk.json", ""]
    proc = chat_pipe(chat_llama, "--cpu", "--temperature", "0", "--max-new-tokens", "32",
                     input="\n".join(lines) + "\n", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no longer fit in the model's context of 256 tokens" in proc.stderr
    assert "please shorten it" in proc.stderr
    doc = saved(tmp_path / "talk.json")
    assert [m["content"].rsplit(" ", 1)[-1] for m in doc["messages"] if m["role"] == "user"] \
        == ["One.", "Two.", "Three."]
    assert doc["turns"][0]["seen_from"] == 0 and doc["turns"][-1]["seen_from"] > 0
    assert all(t["prompt_tokens"] + 32 <= 256 for t in doc["turns"])


def test_history_stays_when_the_answer_budget_is_the_whole_context(chat_llama, tmp_path):
    """The default answer budget (512 tokens) is more than this model's whole context
    (256): earlier exchanges must stay in view all the same while they fit, and /save says
    what the file holds (the system prompt and the messages)."""
    lines = ["/system You are terse.", "Hello! Who are you?", "What is the capital of France?",
             "/save talk.json", ""]
    proc = chat_pipe(chat_llama, "--cpu", "--temperature", "0",
                     input="\n".join(lines) + "\n", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no longer fit" not in proc.stderr
    doc = saved(tmp_path / "talk.json")
    assert len(doc["messages"]) == 5
    assert "saved the system prompt and 4 message(s)" in proc.stderr
    assert [t["seen_from"] for t in doc["turns"]] == [0, 0]
    # The second prompt carried the first exchange.
    one, two = doc["turns"]
    assert two["prompt_tokens"] > one["prompt_tokens"] + one["new_tokens"]


def test_save_never_overwrites_a_file_that_is_not_a_chat(chat_llama, tmp_path):
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    proc = chat_pipe(chat_llama, "--cpu", "--max-new-tokens", "4",
                     input="Hi\n/save notes.json\n/bogus\n/exit\n", cwd=tmp_path)
    assert proc.returncode == 0
    assert "not overwritten" in proc.stderr and "unknown command /bogus" in proc.stderr
    assert notes.read_text() == '{"mine": true}'


def test_a_recipe_fallback_template_in_chat(chat_gemma, tmp_path):
    recipes = write_recipe(tmp_path / "recipes", "tiny-gemma", chat_gemma,
                           chat_template_fallback="gemma")
    proc = subprocess.run(
        [sys.executable, "-m", "llmsetup", "--recipes-dir", str(recipes), "chat", "tiny-gemma",
         "--cpu", "--temperature", "0", "--no-stream"],
        input="What is the capital of France?\n", capture_output=True, text=True,
        cwd=tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "The capital of France is Paris.\n"


def test_a_whisper_folder_is_the_wrong_kind(tmp_path):
    folder = tmp_path / "whisper-tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(
        {"model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"]}))
    proc = chat_pipe(folder, input="hi\n", cwd=tmp_path)
    assert proc.returncode == 2
    assert "not a text generation model" in proc.stderr and "transcribe" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_missing_shard_stops_chat_with_advice(chat_llama, tmp_path):
    """Errors of the REPL come back over its events pipe and read like any other."""
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((chat_llama / name).read_bytes())
    (broken / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors",
                        "b": "model-00002-of-00002.safetensors"}}))
    proc = chat_pipe(broken, "--cpu", input="hi\n", cwd=tmp_path)
    assert proc.returncode == 2
    assert "2 of 2 weight shards missing" in proc.stderr
    assert "Hint:" in proc.stderr and "llmsetup download" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# -- through a pseudo-terminal --------------------------------------------------------

pexpect = pytest.importorskip("pexpect")


def spawn(*args, cwd: Path):
    child = pexpect.spawn(CHAT[0], [*CHAT[1:], *map(str, args)], cwd=str(cwd),
                          env=dict(os.environ), encoding="utf-8", timeout=120)
    child.expect_exact("Type /help")
    child.expect_exact("> ")
    return child


def test_terminal_session(chat_llama, tmp_path):
    child = spawn(chat_llama, "--cpu", "--temperature", "0", "--max-new-tokens", "40",
                  cwd=tmp_path)
    child.sendline("Hello! Who are you?")
    child.expect_exact("tiny demo model")
    child.expect(r"\(\d+ tokens, [\d.]+ tokens/s\)")  # the numbers after each answer
    child.expect_exact("> ")
    child.sendline("/help")
    child.expect_exact("/save FILE")
    child.expect_exact("> ")
    child.sendline("What is the capital of France?")
    child.expect_exact("> ")
    child.sendline("/save chat.json")
    child.expect_exact("saved 4 message(s)")
    child.expect_exact("> ")
    child.sendline("")  # the book's way out
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert len(saved(tmp_path / "chat.json")["turns"]) == 2


def test_ctrl_c_stops_the_answer_and_keeps_the_session(long_llama, tmp_path):
    # Greedy decoding of an untrained model babbles up to --max-new-tokens: seconds of
    # output, so the interrupt lands in the middle of the answer.
    child = spawn(long_llama, "--cpu", "--temperature", "0", "--max-new-tokens", "30000",
                  cwd=tmp_path)
    child.sendline("Tell me a very long story.")
    child.expect_exact("Tell me a very long story.\r\n")  # the terminal's echo
    child.expect(r"\S")  # the answer has started
    child.sendintr()
    child.expect_exact("(answer stopped)")
    child.expect_exact("> ")
    child.sendintr()  # at the prompt, Ctrl-C only says how to quit
    child.expect_exact("to quit, enter an empty line or /exit")
    child.sendline("/save story.json")
    child.expect_exact("saved 2 message(s)")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    turn = saved(tmp_path / "story.json")["turns"][0]
    assert turn["stop_reason"] == "interrupted" and 0 < turn["new_tokens"] < 30000
