"""The Chinese interface of install, serve, verify, chat and the shared options
(cli/_options.py): their help, their value checks and usage errors, the dry-run plan and the
verify report; their --json keys, codes and values stay English."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from llmsetup import i18n


@pytest.fixture(autouse=True)
def _options_imported_in_english(llmsetup_home):
    """The shared options of cli/_options.py (JsonOpt, DryRunOpt...) are made, help and all,
    when that module is imported, once per process. Imported first under the zh fixture,
    their help would stay Chinese for the English tests that run later in the process.
    (A command's own options are read from its signature each time it is built.)"""
    import llmsetup.cli._options
    import llmsetup.cli.app  # noqa: F401


def _english(monkeypatch) -> None:
    monkeypatch.setenv("LLMSETUP_LANG", "en")
    i18n.choose()


def _console():
    from rich.console import Console

    return Console(file=io.StringIO(), width=200, highlight=False, color_system=None)


def _help(*args: str) -> str:
    """``llmsetup ARGS --help`` in a new process: Typer reads an option's help when the
    command's module is imported, so the language must be chosen before, as the CLI does."""
    proc = subprocess.run([sys.executable, "-m", "llmsetup", *args, "--help"],
                          capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"),
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return " ".join(proc.stdout.split())


def test_install_help_in_chinese(zh):
    text = _help("install")
    assert "安装模型：环境、固定版本的依赖、CUDA 检查、下载、验证。" in text
    assert "失败或按 Ctrl-C 后重新运行，会从第一个未完成的步骤继续。" in text
    assert "跳过下载。" in text and "只使用 --find-links 指定的目录（离线）。" in text
    # The shared options of _options.py, their show_default too.
    assert "只显示将要执行的操作，不改动磁盘上的任何内容。" in text
    assert "依赖配置档：book（书中的固定版本）或 modern。" in text
    assert "配方的默认值，通常为 book" in text
    # Option names and metavars stay as they are.
    for word in ("--dry-run", "--env-backend", "--no-cuda-check", "X.Y|PATH", "NAME|DIR"):
        assert word in text
    assert "Skip the download." not in text


def test_serve_help_in_chinese(zh):
    text = _help("serve")
    assert "为 NAME 启动服务，等它能应答后输出其 URL；按 Ctrl-C 停止。" in text
    assert "监听 0.0.0.0，与书中的命令行一致（等同于 --listen-host 0.0.0.0）。" in text
    assert "vllm：每一层切分到的 GPU 数。" in text
    assert "webui 为 7860，vllm 为 8000" in text
    assert "--tensor-parallel-size" in text and "HOST:PORT" in text


@pytest.mark.parametrize("command, words", [
    ("verify", ["加载模型并证明它能工作", "语音模型：要转写的录音。",
                "用 bitsandbytes 以 4-bit（NF4）量化加载。", "回答的最大长度（token 数）。"]),
    ("chat", ["在终端里与文本模型对话", "采样温度；0 表示贪心解码。", "在 CPU 上运行（等同于 --device cpu）。"]),
])
def test_verify_and_chat_help_in_chinese(zh, command, words):
    text = _help(command)
    for word in words:
        assert word in text


def test_root_help_lists_the_commands_in_chinese(zh):
    text = _help()
    assert "安装模型：环境、固定版本的依赖、CUDA 检查、下载、验证。" in text
    assert "为 NAME 启动服务" in text


def test_help_stays_english_in_english():
    text = _help("install")
    assert "Install a model: environment, pinned requirements, CUDA check, download, verify." in text
    assert "Skip the download." in text and "安装" not in text


def test_a_bad_device_in_chinese(cli, zh):
    result = cli("verify", "demo", "--device", "tpu")
    assert result.exit_code == 2
    assert "'tpu'：应为 auto, cuda 或 cpu" in result.stderr


def test_bad_paths_in_chinese(cli, zh, tmp_path):
    result = cli("--recipes-dir", str(tmp_path / "nowhere"), "list")
    assert result.exit_code == 2
    assert "应为 已存在的目录（该目录不存在）" in result.stderr
    result = cli("verify", "demo", "--python", str(tmp_path / "nopython"))
    assert result.exit_code == 2
    assert "应为 Python 解释器的路径（该文件不存在）" in result.stderr
    result = cli("verify", "demo", "--python", "/etc/passwd")
    assert "应为 可执行的 Python 解释器（该文件不是）" in result.stderr
    result = cli("verify", "whisper-large-v3", "--audio", str(tmp_path))
    assert result.exit_code == 2
    assert "应为 普通文件（这是一个目录或设备）" in result.stderr


def test_usage_errors_in_chinese(cli, zh):
    result = cli("serve", "demo", "--4bit", "--8bit")
    assert result.exit_code == 2 and "--4bit 和 --8bit 不能同时使用" in result.stderr
    result = cli("serve", "demo", "--max-model-len", "512")
    assert "--max-model-len：只适用于 --engine vllm" in result.stderr
    assert "如需扩展，请加上 --engine vllm。" in result.stderr
    result = cli("verify", "demo", "--webui-api", "http://127.0.0.1:5000")
    assert "--webui-api 需要 --webui URL（页面地址）" in result.stderr
    result = cli("install", "whisper-large-v3", "--4bit", "--dry-run")
    assert "--4bit 和 --8bit 只适用于文本模型；whisper-large-v3 是语音模型" in result.stderr


@pytest.mark.parametrize("args", [
    ["serve", "demo", "--4bit", "--8bit"],           # a UsageError of the command
    ["verify", "demo", "--device", "tpu"],            # a BadParameter of _options.py
    ["install", "demo", "--ui", "gradio", "--dry-run"],
])
def test_json_failures_keep_their_keys_and_codes(cli, zh, monkeypatch, args):
    chinese = cli(*args, "--json")
    _english(monkeypatch)
    english = cli(*args, "--json")
    zh_doc, en_doc = json.loads(chinese.stdout), json.loads(english.stdout)
    assert chinese.exit_code == english.exit_code == 2
    assert zh_doc.keys() == en_doc.keys() and zh_doc["error"].keys() == en_doc["error"].keys()
    assert zh_doc["error"]["code"] == en_doc["error"]["code"]
    assert zh_doc["exit_code"] == en_doc["exit_code"] and zh_doc["ok"] is en_doc["ok"] is False
    # Only the words a person reads differ.
    assert zh_doc["error"]["message"] != en_doc["error"]["message"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh_doc["error"]["message"])


def test_dry_run_plan_in_chinese(cli, zh):
    result = cli("install", "demo", "--dry-run", "--env-backend", "venv", "--no-download")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "demo 的安装计划（预演：不做任何改动）" in out
    assert "[待执行]" in out and "[todo]" not in out
    assert "-  download：已跳过（" in out


def test_dry_run_json_is_the_same_in_both_languages(cli, zh, monkeypatch):
    chinese = cli("install", "demo", "--dry-run", "--env-backend", "venv", "--json")
    _english(monkeypatch)
    english = cli("install", "demo", "--dry-run", "--env-backend", "venv", "--json")
    zh_doc, en_doc = json.loads(chinese.stdout), json.loads(english.stdout)
    assert zh_doc.keys() == en_doc.keys() and zh_doc["dry_run"] is True
    assert [s.keys() for s in zh_doc["steps"]] == [s.keys() for s in en_doc["steps"]]
    for zs, es in zip(zh_doc["steps"], en_doc["steps"], strict=True):
        assert (zs["key"], zs["done"], zs["commands"]) == (es["key"], es["done"], es["commands"])
    assert [s["key"] for s in zh_doc["skipped"]] == [s["key"] for s in en_doc["skipped"]]


def test_install_progress_and_flags_in_chinese(zh, capsys):
    from llmsetup.cli._output import Output
    from llmsetup.cli.install import PlanProgress, _flag

    class Step:  # the install's steps keep their title in both languages (install/plan.py)
        title = "Verify demo"
        shown_title = "验证 demo"

    progress = PlanProgress(Output())
    progress.tty = False
    progress.step_finished(1, 3, Step(), "done", 0.0, None)
    progress.step_finished(2, 3, Step(), "satisfied", 0.0, None)
    progress.step_finished(3, 3, Step(), "interrupted", 2.5, None)
    err = capsys.readouterr().err
    assert "[1/3] 验证 demo （已完成）" in err
    assert "（已满足）" in err and "运行 2.5s 后被中断" in err
    assert _flag("python", None) == "--python（无）"
    assert _flag("cpu", False) == "--no-cpu"


DOC = {
    "target": "demo", "ok": True, "device": "cpu", "dtype": "float32",
    "quantization": {"method": "none"}, "chat_template": "tokenizer",
    "prompts": [{"prompt": "Hi", "answer": "", "new_tokens": 0, "stop_reason": "eos",
                 "ttft_s": 0.01, "decode_tokens_per_s": None, "problems": []}],
    "load_s": 1.25, "ttft_s": 0.01, "decode_tokens_per_s": 50.0, "peak_rss_mb": 300.0,
    "versions": {"torch": "2.5.0"},
}


def test_verify_report_in_chinese(zh):
    from llmsetup.cli.verify import render

    console = _console()
    render(console, dict(DOC))
    text = console.file.getvalue()
    assert "demo：通过（cpu，float32，" in text and "对话模板 tokenizer）" in text
    assert "问： Hi" in text and "答： （空）" in text
    assert "0 个 token，停止原因：eos；首 token 延迟 0.010 s，?" in text
    assert "加载 1.2 s · 首 token 延迟 0.010 s（中位数）· 解码 50.0 tokens/s · 内存（RSS）峰值 300 MB" \
        in text


def test_verify_report_stays_english(monkeypatch):
    from llmsetup.cli.verify import render

    console = _console()
    render(console, dict(DOC))
    text = console.file.getvalue()
    assert "demo: passed (cpu, float32, " in text
    assert "Load 1.2 s · first token 0.010 s (median) · decode 50.0 tokens/s · peak RSS 300 MB" \
        in text


def test_in_process_help_stays_english_after_the_chinese_tests(cli):
    for command, words in (("verify", "Speech models: the recording to transcribe."),
                           ("install", "Skip the download."), ("serve", "Run on the CPU (no GPU)."),
                           ("chat", "Sampling temperature; 0 answers greedily."),
                           ("install", "Print one JSON document on stdout and nothing else there."),
                           ("install", "Show what would be done; change nothing on disk.")):
        result = cli(command, "--help")
        assert words in " ".join(result.stdout.split())
