"""The Chinese interface of list, show, doctor, check, bench, rm/prune, recipes and the error
reporter (cli/_errors.py); their --json stays English."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from llmsetup import i18n

ROOT = Path(__file__).resolve().parent.parent


def _english(monkeypatch) -> None:
    monkeypatch.setenv("LLMSETUP_LANG", "en")
    i18n.choose()


def _console():
    from rich.console import Console

    return Console(file=io.StringIO(), width=200, highlight=False, color_system=None)


def test_list_table_in_chinese(cli, zh):
    result = cli("list")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    for word in ("名称", "类型", "仓库", "参数量", "显存 GB fp16/8-bit/4-bit", "已安装", "模型",
                 "环境", "磁盘"):
        assert word in header
    demo = next(r for r in rows if r.startswith("demo "))
    # The cell words are translated; recipe names, kinds and repositories are not.
    assert "否" in demo.split() and "causal-lm" in demo and "llmsetup/demo-tiny-llama" in demo


def test_list_columns_line_up_in_terminal_columns(cli, zh):
    from llmsetup.cli._output import width

    lines = [line for line in cli("list").stdout.splitlines() if line.strip()]
    header, row = lines[0], lines[1]
    # "仓库" starts where the repository does: Chinese characters take two columns each.
    repo = row.split()[2]
    assert width(header[:header.index("仓库")]) == width(row[:row.index(repo)])


def test_list_json_is_the_same_in_both_languages(cli, zh, monkeypatch):
    chinese = cli("list", "--json")
    assert chinese.exit_code == 0 and chinese.stderr == ""
    _english(monkeypatch)
    english = cli("list", "--json")
    assert json.loads(chinese.stdout) == json.loads(english.stdout)
    assert chinese.stdout == english.stdout


def test_show_names_the_install_plan_in_chinese(cli, zh):
    result = cli("show", "demo")
    assert result.exit_code == 0, result.output
    assert "安装计划（llmsetup install demo）：" in result.stdout


def test_doctor_in_chinese_and_its_json_in_english(cli, zh, monkeypatch):
    from llmsetup import doctor

    real = doctor.tool_version

    def no_ffmpeg(argv):
        return {"found": False, "path": None, "version": None} if argv[0] == "ffmpeg" \
            else real(argv)

    monkeypatch.setattr(doctor, "tool_version", no_ffmpeg)
    result = cli("doctor")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "工具" in out and "状态" in out and "未找到" in out
    assert "模型目录：" in out and "状态目录：" in out
    assert "建议：缺少 ffmpeg（Whisper 读取音频需要它）" in out

    doc = json.loads(cli("doctor", "--json").stdout)
    assert doc["tools"]["ffmpeg"] == {"found": False, "path": None, "version": None}
    # The advice is English in the JSON, Chinese on the screen.
    assert doctor.NO_FFMPEG in doc["advice"]
    assert not any("缺少 ffmpeg" in line for line in doc["advice"])


def test_doctor_says_whether_a_model_fits_in_chinese(cli, zh):
    out = cli("doctor", "demo").stdout
    assert "[bold]" not in out and "demo 需要：" in out
    assert "fp16：约 0.3 GB" in out


def test_an_error_and_its_hint_in_chinese(cli, zh):
    result = cli("check", "/missing/folder")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "错误：/missing/folder：目录不存在",
        "提示：请先下载：`llmsetup download /missing/folder`。",
    ]


def test_a_json_failure_keeps_its_keys_and_code_in_chinese(cli, zh):
    result = cli("check", "/missing/folder", "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc == {"ok": False, "error": {"message": "/missing/folder：目录不存在",
                                          "hint": "请先下载：`llmsetup download /missing/folder`。",
                                          "code": "not_found_error"}, "exit_code": 2}


def test_a_bad_command_line_under_json_in_chinese(cli, zh):
    result = cli("download", "demo", "--bogus", "--json")
    doc = json.loads(result.stdout)
    assert doc["error"]["code"] == "no_such_option" and doc["exit_code"] == 2
    assert doc["error"]["hint"] == "请查看 `llmsetup download --help`。"


def test_the_built_in_descriptions_of_os_errors_in_chinese(zh):
    from llmsetup.cli._errors import describe, error_code

    assert describe(PermissionError(errno.EACCES, "Permission denied", "/srv/x")) == (
        "权限不足：/srv/x",
        "请检查该目录的所有者和权限，或换一个目录（LLMSETUP_HOME、LLMSETUP_MODELS_DIR）。", 1)
    assert describe(OSError(errno.ENOSPC, "No space left on device"))[0] == "磁盘空间不足"
    assert describe(FileNotFoundError(errno.ENOENT, "x", "/a/b"))[:1] == ("文件或目录不存在：/a/b",)
    message, hint, code = describe(RuntimeError("boom"))
    assert message == "意外错误：RuntimeError: boom" and code == 1
    assert hint == "这是 llmsetup 的 bug，请报告此问题。设置 LLMSETUP_DEBUG=1 可查看错误堆栈（traceback）。"
    # Codes are for programs: the same in every language.
    assert error_code(PermissionError(errno.EACCES, "x")) == "permission_denied"


def test_the_error_reporter_in_chinese(zh, capsys):
    from llmsetup.cli._errors import report

    assert report(RuntimeError("boom")) == 1
    err = capsys.readouterr().err.splitlines()
    # The debug hint is in the hint already: not written a second time.
    assert err == ["错误：意外错误：RuntimeError: boom",
                   "提示：这是 llmsetup 的 bug，请报告此问题。设置 LLMSETUP_DEBUG=1 可查看错误堆栈（traceback）。"]
    interrupted = KeyboardInterrupt()
    assert report(interrupted) == 130
    assert capsys.readouterr().err.splitlines() == ["错误：已中断", "提示：重新运行同一命令即可从中断处继续。"]


def test_bench_usage_errors_in_chinese(cli, zh):
    result = cli("bench", "demo", "--tiny")
    assert result.exit_code == 2
    assert "错误：--tiny 和 --override 修改的是随机权重的模型结构" in result.stderr
    assert "提示：请加上 --random-weights。" in result.stderr
    result = cli("bench", "demo", "--concurrency", "2")
    assert "错误：--concurrency：用于服务的基准测试" in result.stderr


def test_bench_table_in_chinese(zh):
    from llmsetup.cli.bench import progress_line, render

    run = {"batch_size": 1, "ttft_s": 0.0123, "decode_tokens_per_s": 45.6}
    doc = {"target": "demo", "kind": "causal-lm", "random_weights": True,
           "speedups": {"sdpa_over_eager": 1.5},
           "results": [{"device": "cpu", "precision": "full", "dtype": "float32", "load_s": 1.0,
                        "runs": [run, {**run, "batch_size": 8}], "peak_rss_mb": 2048,
                        "weights_bytes": 10**9,
                        "roofline": {"fraction": 0.5, "tokens_per_s": 90}}]}
    console = _console()
    render(console, doc)
    out = console.file.getvalue()
    assert "demo，运行于 cpu（随机权重）" in out
    for word in ("精度", "加载 s", "峰值占用", "权重 GB", "带宽上限", "2.00 GB 内存（RSS）", "90 的 50%"):
        assert word in out, word
    assert "sdpa 相对 eager：1.50x（解码，批大小 1，同一次运行）" in out
    assert progress_line({"event": "progress", "what": "causal", **run}) == \
        "  批大小 1：首 token 延迟 12.3 ms，45.6 tokens/s"


def test_rm_list_in_chinese(zh):
    from llmsetup.cli.housekeeping import _render
    from llmsetup.housekeeping.disk import Item, Kept, Removal

    removal = Removal(items=[Item("model", Path("/m/demo"), 2048), Item("webui-env", Path("/e"), 0)],
                      kept=[Kept("env", Path("/e2"), "also used by gemma-2b")])
    console = _console()
    _render(removal, dry_run=True)(console)
    lines = console.file.getvalue().splitlines()
    assert lines[0] == "将会删除（预演）："
    # The kinds are padded to the same terminal width: the sizes line up.
    assert lines[1].startswith("  模型        ") and lines[2].startswith("  webui 环境  ")
    assert lines[3] == "  总计 2.0 kB（2,048 字节）"
    assert lines[4] == "  保留环境 /e2：also used by gemma-2b"


def test_check_statuses_shown_in_chinese_kept_in_english(zh):
    from llmsetup.cli.download import _some, _status
    from llmsetup.download.messages import Message
    from llmsetup.i18n import N_

    # The report keeps English (each status is a download.messages.Message); shown, Chinese.
    missing = Message(N_("missing"))
    assert missing == "missing" and _status(missing) == "缺失"
    size = Message(N_("wrong size ({size} bytes, expected {expected})"), size=3, expected=5)
    assert size == "wrong size (3 bytes, expected 5)"
    assert _status(size) == "大小不符（3 字节，应为 5）"
    unreadable = Message(N_("unreadable ({error})"), error="Permission denied")
    assert _status(unreadable) == "无法读取（Permission denied）"
    assert _status("something new") == "something new"
    assert _some([str(i) for i in range(7)]) == "0, 1, 2, 3, 4 等，另有 2 个"


def test_check_of_a_folder_without_manifest_in_chinese(cli, zh, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    result = cli("check", str(folder))
    assert result.exit_code != 0
    assert f"错误：{folder} 没有 llmsetup 清单，无从验证" in result.stderr
    assert "会按发布者的哈希检查它并接管" in result.stderr


def test_recipes_validate_in_chinese(cli, zh, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    result = cli("recipes", "validate", str(ROOT / "recipes" / "demo.yaml"), str(bad))
    assert result.exit_code == 2
    assert "通过   " in result.stdout
    assert result.stderr.startswith("错误：")


def test_command_help_in_chinese(zh):
    # A fresh process: options' help is read when the command's module is imported.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for argv, words in ((["download", "--help"], ["断点续传", "只使用此下载源"]),
                        (["list", "--help"], ["列出所有配方"]),
                        (["doctor", "--help"], ["同时判断该模型能否放进显存"]),
                        (["rm", "--help"], ["不经询问直接删除"]),
                        (["bench", "--help"], ["首 token 延迟"]),
                        (["transcribe", "--help"], ["用 Whisper 模型转写录音"]),
                        (["recipes", "validate", "--help"], ["要检查的配方文件"])):
        proc = subprocess.run([sys.executable, "-m", "llmsetup", *argv], capture_output=True,
                              text=True, env=env, check=True)
        for word in words:
            assert word in proc.stdout, (argv, word, proc.stdout)
