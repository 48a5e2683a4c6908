"""The host side (verify, transcribe, bench, serving) and the runtime (the chat REPL) in
Chinese under ``LLMSETUP_LANG=zh``; ``--json`` keys and codes, and the runtime's JSON events,
stay English."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from llmsetup.host import asr, causal_lm, runner
from llmsetup.serving import check, load
from tests.openai_server import OpenAIServer

SPEECH_REPORT = {
    "name": "whisper-tiny", "device": "cpu", "dtype": "float32", "attention": "sdpa",
    "load_s": 1.25, "ok": True, "peak_rss_mb": 812.0,
    "items": [{"file": "/x/en.wav", "duration_s": 4.0, "transcribe_s": 0.5, "rtf": 0.125,
               "cer": 0.05, "max_cer": 0.3, "text": "hello world", "passed": True}],
}


def test_the_speech_verify_report_in_chinese(zh):
    lines = asr.summary_lines(SPEECH_REPORT)
    assert lines[0] == "whisper-tiny 在 cpu 上通过验证（float32，sdpa 注意力）；模型加载用时 1.2 s"
    assert lines[1] == ("  en.wav：4.0 s 音频，用时 0.5 s（实时率 0.125），CER 5%（上限 30%）："
                        "'hello world'")
    assert lines[2] == "内存峰值（RSS）812 MB"


def test_the_speech_verify_report_stays_english_in_english():
    lines = asr.summary_lines(SPEECH_REPORT)
    assert lines[0] == ("whisper-tiny passed on cpu (float32, sdpa attention); model loaded in "
                        "1.2 s")
    assert lines[2] == "Peak memory (RSS) 812 MB"


def test_verify_progress_and_runtime_notes_in_chinese(zh):
    assert causal_lm.progress_line({"stage": "load", "message": "loading /m/tiny",
                                    "model": "/m/tiny"}) == "正在加载 /m/tiny"
    assert causal_lm.progress_line({
        "stage": "loaded", "load_s": 2.0, "device": "cpu", "dtype": "float32",
        "quantization": {"method": "nf4", "compute_dtype": "bfloat16", "double_quant": True},
    }) == "加载完成，用时 2.0s（cpu，float32，4-bit NF4，bfloat16 计算，双重量化）"
    # A note the runtime sends with its facts is worded here; its message stays English.
    note = {"stage": "note", "note": "budget", "index": 1, "wanted": 64, "context": 100,
            "prompt_tokens": 60, "budget": 40,
            "message": "prompt 1: max_new_tokens 64 does not fit ..."}
    assert causal_lm.progress_line(note) == (
        "注意：提示词 1：在 60 个 token 的提示词之后，max_new_tokens 64 超出了模型 100 个 token 的"
        "上下文：改用 40")


def test_runtime_errors_keep_their_message_and_get_a_chinese_hint(zh, tmp_path):
    # A code without a hint of its own: the host's advice, translated.
    err = runner.error_from_event({"event": "error", "code": "oom",
                                   "message": "out of GPU memory: CUDA out of memory"},
                                  log=tmp_path / "verify.log")
    assert err.message == "out of GPU memory: CUDA out of memory"  # as in the log
    assert err.hint.startswith("请减少显存占用：使用 --8bit 或 --4bit")
    assert err.hint.endswith(f"完整日志：{tmp_path / 'verify.log'}")
    # A fixed hint the runtime marked with N_: shown in Chinese; the code stays.
    err = runner.error_from_event({"event": "error", "code": "no-audio",
                                   "message": "a.wav: the file is empty",
                                   "hint": "Record again, or check that the copy finished."})
    assert err.hint == "请重新录音，或确认文件已复制完整。" and err.code == "no-audio"
    # A hint the runtime built from facts: as it came.
    err = runner.error_from_event({"event": "error", "code": "x", "message": "m",
                                   "hint": "Remove /tmp/ct2 to convert again."})
    assert err.hint == "Remove /tmp/ct2 to convert again."


def test_runtime_children_get_the_hosts_language(zh):
    assert runner.runtime_env()["LLMSETUP_LANG"] == "zh"
    assert runner.runtime_env({"HF_HUB_OFFLINE": "1"}) == {"LLMSETUP_LANG": "zh",
                                                           "HF_HUB_OFFLINE": "1"}


def test_serving_checks_and_load_report_in_chinese(zh):
    assert check.judge("Lyon.", "Paris") == ["回答中没有已知答案 'Paris'"]
    doc = {"model": "demo", "api": "http://127.0.0.1:8000", "completed": 6, "requests": 6,
           "concurrency": 3, "input_tokens": 20, "output_tokens": 4, "duration_s": 1.5,
           "output_tokens_per_s": 16.0, "requests_per_s": 4.0, "failed": 0, "errors": [],
           "ttft_ms": {"p50": 10.0, "p99": 20.0}, "itl_ms": {"p50": 1.0, "p99": 2.0},
           "tpot_ms": {"mean": 1.5}}
    lines = load.describe(doc)
    assert lines[0] == ("demo（http://127.0.0.1:8000）：6/6 个请求，并发数 3，输入 20 / 输出 4 个 "
                        "token，用时 1.5 s")
    assert lines[2] == "  首 token 延迟 p50 10 ms，p99 20 ms"


def test_verify_api_in_chinese_and_its_json_keys_in_english(zh, cli):
    with OpenAIServer(answer="Lyon is lovely.") as server:
        human = cli("verify", "llama-2-7b-chat", "--api", server.url, "--expect", "Paris")
        doc = json.loads(cli("verify", "llama-2-7b-chat", "--api", server.url, "--expect",
                             "Paris", "--json").stdout)
    assert human.exit_code == 1
    assert "提示词 1：回答中没有已知答案 'Paris'" in human.stderr
    assert {"api", "models", "model", "prompts", "ok", "problems"} <= set(doc)
    assert doc["ok"] is False and doc["prompts"][0]["finish_reason"] == "stop"


def test_unreachable_server_in_chinese(zh, cli):
    result = cli("verify", "demo", "--api", "http://127.0.0.1:9", "--timeout", "3")
    assert result.exit_code == 1
    assert "无法连接 http://127.0.0.1:9" in result.stderr
    assert "服务是否在运行（`llmsetup serve`）？" in result.stderr


def test_transcribe_input_errors_in_chinese(zh, tmp_path):
    with pytest.raises(Exception) as info:
        asr.audio_file(tmp_path)
    assert str(info.value.message) == f"{tmp_path} 是目录，不是音频文件"
    with pytest.raises(Exception) as info:
        asr.plan_outputs([tmp_path / "a.wav"], str(tmp_path / "a.txt"), "docx", False)
    assert info.value.message == "--format docx：请使用 txt, json, srt, vtt 之一"


# -- the chat REPL on a pseudo-terminal, in each language ---------------------------------

pexpect = pytest.importorskip("pexpect")

SRC = str(Path(__file__).resolve().parent.parent / "src")


def spawn_chat(model: Path, cwd: Path, lang: str, *options: str):
    env = dict(os.environ, LLMSETUP_LANG=lang)
    # This checkout's package, whatever the interpreter has installed (cwd is elsewhere).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    return pexpect.spawn(sys.executable, ["-m", "llmsetup", *options, "chat", str(model),
                                          "--cpu", "--temperature", "0", "--max-new-tokens",
                                          "8"],
                         cwd=str(cwd), env=env, encoding="utf-8", timeout=120)


def test_chat_speaks_chinese_on_a_terminal(zh, tiny_llama, tmp_path):
    child = spawn_chat(tiny_llama, tmp_path, "zh")
    child.expect_exact("输入 /help 查看命令；输入空行退出。")
    child.expect_exact("> ")
    child.sendline("/help")
    child.expect_exact("命令：")
    child.expect_exact("/clear         清空对话（系统提示词保留）")
    child.expect_exact("/save FILE     将对话保存为 JSON")
    child.expect_exact("Ctrl-C 中断当前回答，对话继续。")
    child.expect_exact("> ")
    child.sendline("/system 简短回答。")
    child.expect_exact("（已设置系统提示词：简短回答。）")
    child.expect_exact("> ")
    child.sendline("/nope")
    child.expect_exact("未知命令 /nope；/help 会列出所有命令")
    child.expect_exact("> ")
    child.sendline("Hello!")
    child.expect(r"（\d+ 个 token(，[\d.]+ tokens/s)?）")
    child.expect_exact("> ")
    child.sendline("/save chat.json")
    child.expect_exact("（已将系统提示词和 2 条消息保存到 chat.json）")
    child.expect_exact("> ")
    child.sendline("")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    saved = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert saved["format"] == "llmsetup-chat/1"  # the file's keys and values: English


def test_chat_speaks_english_on_a_terminal(tiny_llama, tmp_path):
    child = spawn_chat(tiny_llama, tmp_path, "en")
    child.expect_exact("Type /help for commands; an empty line quits.")
    child.expect_exact("> ")
    child.sendline("/help")
    child.expect_exact("Commands:")
    child.expect_exact("/clear         forget the conversation (the system prompt stays)")
    child.expect_exact("Ctrl-C stops an answer; the conversation goes on.")
    child.expect_exact("> ")
    child.sendline("/nope")
    child.expect_exact("unknown command /nope; /help lists the commands")
    child.expect_exact("> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "命令" not in child.before


def test_the_chat_follows_the_hosts_choice_over_the_inherited_environment(zh, tiny_llama,
                                                                           tmp_path):
    # LLMSETUP_LANG=zh is inherited, --lang en chose English: the runtime hears the host.
    child = spawn_chat(tiny_llama, tmp_path, "zh", "--lang", "en")
    child.expect_exact("Type /help for commands; an empty line quits.")
    child.expect_exact("> ")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
