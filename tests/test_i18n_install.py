"""The install plan, environments, webui and hardware messages in Chinese; the install's
``--json`` (titles, skip reasons, commands) the same in both languages."""

from __future__ import annotations

import json
import sys

import pytest

from llmsetup import i18n

PLANS = [
    ["demo"],
    ["demo", "--env-backend", "venv", "--python", "3.14", "--no-download"],
    ["llama-2-7b-chat", "--ui", "webui", "--git-mirror", "https://proxy.example/",
     "--env-backend", "venv"],
    ["llama-2-7b-chat", "--engine", "vllm", "--cpu", "--env-backend", "venv"],
    ["whisper-tiny", "--engine", "ctranslate2", "--env-backend", "conda"],
    ["gemma-2b", "--8bit", "--no-verify", "--env-backend", "uv"],
]


def _speak(monkeypatch, lang: str) -> None:
    monkeypatch.setenv("LLMSETUP_LANG", lang)
    i18n.choose()


def _dry_run(cli, *args) -> dict:
    result = cli("install", *args, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("args", PLANS, ids=lambda a: " ".join(a))
def test_dry_run_json_is_the_same_in_both_languages(cli, zh, monkeypatch, args):
    _speak(monkeypatch, "en")
    english = _dry_run(cli, *args)
    _speak(monkeypatch, "zh")
    chinese = _dry_run(cli, *args)
    assert chinese == english
    titles = [step["title"] for step in chinese["steps"]]
    assert all(t.isascii() for t in titles), titles


def test_a_folder_plan_keeps_its_skip_reason_in_english(cli, zh, tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    doc = _dry_run(cli, str(folder), "--cpu")
    assert doc["skipped"] == [{"key": "download",
                               "why": "a local model folder needs no download"}]
    assert doc["steps"][0]["title"] == f"Use the current interpreter ({sys.executable})"


def _plan(name: str, *, folder=None, **options):
    from llmsetup.install.build import build_plan
    from llmsetup.install.plan import InstallOptions
    from llmsetup.recipes import Catalog
    from llmsetup.settings import Settings
    from llmsetup.targets import resolve

    settings = Settings.load()
    target = resolve(str(folder) if folder else name, settings, Catalog())
    return build_plan(target, settings, InstallOptions(**options))


def test_step_titles_are_shown_in_chinese_and_recorded_in_english(zh):
    plan = _plan("demo", env_backend="venv", python="3.11", cpu=True, quantization="4bit")
    shown = [step.shown_title for step in plan.steps]
    assert shown[0] == "创建环境 llmsetup-demo（venv，Python 3.11）"
    assert shown[1] == "安装依赖（配置档 modern：4 个固定版本，锁定文件 demo.modern.txt）"
    assert shown[2] == "检查 torch（允许 CPU）"
    assert shown[3].startswith("生成模型到 ")
    assert shown[4] == "验证 demo（4bit）"
    titles = [step.title for step in plan.steps]
    assert titles[0] == "Create environment llmsetup-demo (venv, Python 3.11)"
    assert titles[4] == "Verify demo (4bit)"
    assert plan.describe()[2]["title"] == "Check torch (CPU allowed)"


def test_webui_plan_in_chinese(zh, tmp_path):
    from llmsetup.install.plan import WebUIOptions

    plan = _plan("llama-2-7b-chat", ui="webui", env_backend="venv", download=False,
                 webui_options=WebUIOptions(dir=tmp_path / "webui",
                                            git_mirror="https://proxy.example/"))
    clone, *_rest, deploy, _verify = plan.steps
    assert clone.shown_title.startswith("获取 text-generation-webui（提交 ")
    assert "（通过 URL 前缀代理 https://proxy.example/https://github.com/" in clone.shown_title
    assert "(through the URL-prefix proxy https://proxy.example/" in clone.title
    assert deploy.shown_title.startswith("将模型部署到 ")
    assert plan.shown_skipped() == [("download", "--no-download")]


def test_folder_skip_reason_is_shown_in_chinese(zh, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gemma"}))
    plan = _plan("", folder=tmp_path)
    assert plan.skipped == [("download", "a local model folder needs no download")]
    assert plan.shown_skipped() == [("download", "本地模型目录无需下载")]


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step_output(self, line: str) -> None:
        self.lines.append(line)


def test_cuda_check_summary_is_shown_in_chinese_and_recorded_in_english(zh, monkeypatch):
    from llmsetup.install import steps

    def fake_run_module(python, module, args, *, log, on_event):
        on_event({"event": "torch", "torch": "2.3.0+cpu", "cuda_version": None,
                  "cuda_available": False, "gpus": []})
        return {}

    monkeypatch.setattr(steps, "run_module", fake_run_module)
    plan = _plan("demo", env_backend="current", cpu=True)
    check = next(s for s in plan.steps if s.key == "cuda-check")
    reporter = _Lines()
    info = check.run(reporter)
    assert reporter.lines == ["torch 2.3.0+cpu，无 CUDA，CUDA 可用：False"]
    assert info["summary"] == "torch 2.3.0+cpu, CUDA none, no GPU visible to torch"
    assert check.shown_summary(info) == "torch 2.3.0+cpu，无 CUDA，torch 看不到任何 GPU"


def test_verify_summary_in_both_languages(zh):
    from llmsetup.install.steps import verify_text

    text = verify_text({"prompts": [{"prompt": "Hi", "answer": "Hello"}], "device": "cpu",
                        "dtype": "float32", "load_s": 1.25, "decode_tokens_per_s": 12.4})
    assert text.__str__() == "'Hi' -> 'Hello'\n    cpu, float32, load 1.2s, 12 tokens/s"
    assert text.shown() == "'Hi' -> 'Hello'\n    cpu, float32, 加载 1.2s, 12 tokens/s"


def test_missing_python_in_chinese(zh):
    from llmsetup.envs.pythons import missing_python

    problem = missing_python("3.99", "venv")
    assert problem.message == "本机没有 Python 3.99"
    assert problem.hint.startswith("解决办法：")
    assert "pyenv install 3.99，或安装系统的 python3.99 包" in problem.hint
    assert problem.english_message == "Python 3.99 is not on this machine"


def test_install_errors_in_chinese(cli, zh):
    result = cli("install", "demo", "--ui", "webui", "--dry-run")
    assert result.exit_code == 2
    assert "demo 没有 webui 部分" in result.stderr
    assert "只有 Llama-2 配方通过 text-generation-webui 提供服务" in result.stderr
    result = cli("install", "gemma-2b", "--env-backend", "nope", "--dry-run")
    assert result.exit_code == 2
    assert "未知的环境后端 'nope'" in result.stderr
    assert "可选：auto, conda, uv, venv, current" in result.stderr


def test_install_error_json_keeps_its_code(cli, zh):
    result = cli("install", "demo", "--engine", "vllm", "--8bit", "--dry-run", "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["error"]["code"] == "usage_error"
    assert doc["error"]["message"] == "vLLM 不支持 bitsandbytes 8-bit 加载"


def test_git_mirror_template_error_keeps_its_braces(zh):
    from llmsetup.errors import UsageError
    from llmsetup.webui.repo import clone_source

    with pytest.raises(UsageError) as caught:
        clone_source("https://github.com/o/n", "https://m.example/{url}/{nope}")
    assert caught.value.message.startswith(
        "--git-mirror https://m.example/{url}/{nope}：模板只接受 {url} 和 {path}（")


def test_hardware_advice_in_chinese(zh):
    from llmsetup.hardware import GPU, fit, profile_advice

    gpu = GPU(0, "NVIDIA T4", 15360, 15000, "535", "7.5")
    verdict = fit({"fp16": 20.0, "int8": 9.0, "int4": 5.0}, [gpu])
    assert verdict["best"] == "int8"
    assert verdict["advice"] == ("显存不足以运行 fp16（约需 20.0 GB，最大的 GPU 只有 15.0 GB）："
                                 "请使用 --8bit（约 9.0 GB）。")
    assert fit({"fp16": 1.0}, [])["advice"].startswith("未找到 GPU")
    blackwell = GPU(0, "NVIDIA B200", 183000, 180000, "570", "10.0")
    assert profile_advice([blackwell]) == ("NVIDIA B200（计算能力 10.0）比书中的 torch 2.0.1 "
                                           "所支持的更新：请用 --profile modern 安装。")


def test_target_errors_in_chinese(zh, tmp_path):
    from llmsetup.errors import NotFoundError
    from llmsetup.targets import kind_of_folder

    with pytest.raises(NotFoundError) as caught:
        kind_of_folder(tmp_path)
    assert caught.value.message == f"{tmp_path}：没有 config.json，所以不是模型目录"
