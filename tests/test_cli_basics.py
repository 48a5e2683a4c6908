"""list, show, doctor, --help and --version through CliRunner and the installed script."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_recipes import BOOK_GEMMA, EXPECTED


def test_help_lists_the_commands(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("list", "show", "doctor", "recipes"):
        assert command in result.stdout


def test_version(cli):
    from llmsetup import __version__

    result = cli("--version")
    assert result.exit_code == 0 and __version__ in result.stdout


def _eager_app():
    """The root app as Typer builds it when every command is registered up front."""
    import copy

    import typer

    from llmsetup.cli._errors import LLMSetupGroup
    from llmsetup.cli._lazy import _load
    from llmsetup.cli.app import Root, app

    eager = copy.copy(app)
    eager.info = copy.copy(app.info)
    eager.info.cls = LLMSetupGroup
    eager.registered_commands, eager.registered_groups = [], []
    for name, spec in Root.table.items():
        target = _load(spec)
        if isinstance(target, typer.Typer):
            eager.add_typer(target, name=name)
        else:
            eager.command(name)(target)
    return eager


@pytest.mark.parametrize("args", [["--help"], [], ["lst"], ["recipes"], ["recipes", "--help"],
                                  ["bench", "--help"], ["list", "--nope"]])
def test_the_lazy_root_reads_exactly_like_typers_eager_build(cli, args):
    """The root imports and builds only the command that runs (start-up: see
    docs/performance.md); what a user sees must not change: help, usage errors, the
    "did you mean" of a mistyped command."""
    from typer.testing import CliRunner

    from llmsetup.cli.app import app

    runner = CliRunner()
    lazy, eager = runner.invoke(app, args), runner.invoke(_eager_app(), args)
    assert (lazy.exit_code, lazy.stdout, lazy.stderr) == \
        (eager.exit_code, eager.stdout, eager.stderr)
    assert lazy.output.strip()


def test_a_command_imports_only_its_own_module():
    code = (
        "import sys\n"
        "sys.argv = ['llmsetup', 'list', '--json']\n"
        "from llmsetup.cli.app import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('llmsetup.cli.')), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stderr.strip().splitlines()[-1]
    assert "llmsetup.cli.catalog" in loaded
    for other in ("install", "download", "verify", "bench", "chat", "serve", "transcribe"):
        assert f"llmsetup.cli.{other}'" not in loaded


def test_list_json_lists_every_recipe(cli):
    doc = cli.json("list")
    rows = {r["name"]: r for r in doc["recipes"]}
    assert set(rows) == EXPECTED
    assert rows["llama-2-7b-chat"]["memory_gb"] == {"fp16": 13, "int8": 9, "int4": 5}
    assert rows["whisper-large-v3"]["kind"] == "asr"
    assert all(r["installed"] is False for r in rows.values())


def test_list_marks_a_downloaded_model_installed(cli, tmp_path):
    models = Path(os.environ["LLMSETUP_MODELS_DIR"])
    folder = models / "alpindale" / "gemma-2b"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"architectures": ["GemmaForCausalLM"]}')
    rows = {r["name"]: r for r in cli.json("list")["recipes"]}
    assert rows["gemma-2b"]["installed"] is True
    assert rows["gemma-7b"]["installed"] is False


def test_list_human_table(cli):
    result = cli("list")
    assert result.exit_code == 0
    assert "whisper-large-v3" in result.stdout and "NousResearch/Llama-2-7b-chat-hf" in result.stdout


def test_show_gemma_carries_the_book_pins_verbatim(cli):
    doc = cli.json("show", "gemma-2b")
    assert doc["recipe"]["profiles"]["book"] == BOOK_GEMMA
    assert doc["paths"]["model_dir"].endswith(os.path.join("alpindale", "gemma-2b"))
    assert doc["paths"]["model_dir"].startswith(os.environ["LLMSETUP_MODELS_DIR"])


def test_show_human(cli):
    result = cli("show", "whisper-large-v3")
    assert result.exit_code == 0
    assert "openai/whisper-large-v3" in result.stdout
    assert "model_dir" in result.stdout


def test_show_unknown_recipe_exits_2_with_hint(cli):
    result = cli("show", "lama-2-7b-chat")
    assert result.exit_code == 2
    assert "no recipe named 'lama-2-7b-chat'" in result.stderr
    assert "llama-2-7b-chat" in result.stderr  # did you mean


def test_show_a_model_folder_reads_its_kind(cli, tmp_path):
    whisper = tmp_path / "my-whisper"
    whisper.mkdir()
    (whisper / "config.json").write_text(json.dumps(
        {"model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"]}))
    assert cli.json("show", whisper)["recipe"]["kind"] == "asr"
    llm = tmp_path / "my-llm"
    llm.mkdir()
    (llm / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"]}))
    assert cli.json("show", llm)["recipe"]["kind"] == "causal-lm"


def test_show_a_folder_without_config_exits_2(cli, tmp_path):
    result = cli("show", tmp_path)
    assert result.exit_code == 2
    assert "no config.json" in result.stderr


def test_doctor_without_gpu_or_conda(cli, monkeypatch, tmp_path):
    # A PATH with python's folder and the basics only: no nvidia-smi, no conda.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git",):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(bin_dir))
    doc = cli.json("doctor")
    assert doc["gpu"]["available"] is False and doc["gpu"]["gpus"] == []
    assert doc["tools"]["conda"]["found"] is False
    assert doc["python"]["version"].startswith("3.")
    assert doc["disk"]["free_gb"] > 0


def test_doctor_finds_uv_where_install_finds_it(cli, monkeypatch, tmp_path):
    """uv installed into llmsetup's own venv (pip install uv) is not on PATH; install uses
    it all the same, and doctor must say so rather than "not found"."""
    from llmsetup.envs.uv import find_uv

    beside = Path(sys.executable).parent / "uv"
    if not beside.exists():
        pytest.fail("the test venv has no uv beside its python: scripts/test.sh installs it")
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    doc = cli.json("doctor")
    assert doc["tools"]["uv"]["found"] is True
    assert doc["tools"]["uv"]["path"] == find_uv() == str(beside)
    assert doc["tools"]["uv"]["version"].startswith("uv ")


def _fake_nvidia_smi(folder: Path, lines: str, with_cc: bool = True) -> None:
    """A stand-in for nvidia-smi: no GPU can exist on the machines that run these tests.

    It answers the same CSV query llmsetup sends, and fails on compute_cap like a driver
    older than 510 when ``with_cc`` is false.
    """
    script = folder / "nvidia-smi"
    cc_check = "" if with_cc else (
        'case "$*" in *compute_cap*) echo "Field compute_cap is not a valid field" >&2; '
        "exit 2;; esac\n")
    script.write_text(f"#!/bin/sh\n{cc_check}cat <<'EOF'\n{lines}\nEOF\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_doctor_reports_gpus_and_fit(cli, monkeypatch, tmp_path):
    _fake_nvidia_smi(tmp_path, "0, NVIDIA GeForce RTX 3060, 12288, 11000, 535.104, 8.6")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    doc = cli.json("doctor", "llama-2-7b-chat")
    gpu = doc["gpu"]["gpus"][0]
    assert gpu["name"] == "NVIDIA GeForce RTX 3060" and gpu["compute_capability"] == "8.6"
    model = doc["model"]
    assert model["precisions"]["fp16"]["fits"] is False
    assert model["precisions"]["int8"]["fits"] is True
    assert model["best"] == "int8"
    assert "--8bit" in model["advice"]


def test_doctor_small_gpu_advises_4bit(cli, monkeypatch, tmp_path):
    _fake_nvidia_smi(tmp_path, "0, Tesla T4 small, 6144, 6000, 470.1", with_cc=False)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    doc = cli.json("doctor", "llama-2-7b-chat")
    assert doc["gpu"]["gpus"][0]["compute_capability"] is None
    assert doc["model"]["best"] == "int4" and "--4bit" in doc["model"]["advice"]


def test_doctor_advises_modern_profile_on_new_gpus(cli, monkeypatch, tmp_path):
    _fake_nvidia_smi(tmp_path, "0, NVIDIA B200, 183359, 180000, 570.1, 10.0\n"
                               "1, NVIDIA B200, 183359, 180000, 570.1, 10.0")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    doc = cli.json("doctor", "gemma-7b")
    assert any("--profile modern" in a for a in doc["advice"])
    assert doc["model"]["best"] == "fp16"


def test_doctor_human(cli):
    result = cli("doctor", "gemma-2b")
    assert result.exit_code == 0
    assert "gemma-2b" in result.stdout and "Python" in result.stdout


def _installed_script() -> str:
    script = Path(sys.executable).parent / "llmsetup"
    if not script.exists():
        pytest.fail("the llmsetup console script is not installed in this environment")
    return str(script)


@pytest.mark.parametrize("args", [["--help"], ["list", "--json"], ["show", "gemma-2b", "--json"],
                                  ["doctor", "--json"], ["transcribe", "--help"],
                                  ["install", "whisper-tiny.en", "--engine", "ctranslate2",
                                   "--dry-run", "--json"]])
def test_host_commands_never_import_torch(args):
    """Run the real console script with an import hook that fails on torch/transformers
    (and the speech engine's ctranslate2 and faster_whisper: the runtime's business)."""
    code = (
        "import sys, runpy\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'ctranslate2',\n"
        "                                   'faster_whisper'):\n"
        "            raise ImportError('host imported ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.argv = ['llmsetup', *{args!r}]\n"
        "from llmsetup.cli.app import main\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "host imported" not in proc.stderr


def test_console_script_runs_for_real():
    proc = subprocess.run([_installed_script(), "list", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert {r["name"] for r in json.loads(proc.stdout)["recipes"]} == EXPECTED
    proc = subprocess.run([sys.executable, "-m", "llmsetup", "show", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "no recipe named 'nope'" in proc.stderr


def test_broken_config_file_is_a_clear_error(cli, llmsetup_home):
    llmsetup_home.mkdir(parents=True, exist_ok=True)
    (llmsetup_home / "config.yaml").write_text("pip:\n  mirror: [ustc\n")
    result = cli("list")
    assert result.exit_code == 2
    assert "config.yaml" in result.stderr and "not valid YAML" in result.stderr


def test_unknown_config_setting_is_named(cli, llmsetup_home):
    llmsetup_home.mkdir(parents=True, exist_ok=True)
    (llmsetup_home / "config.yaml").write_text("pip:\n  mirorr: ustc\n")
    result = cli("list")
    assert result.exit_code == 2
    assert "pip.mirorr" in result.stderr


def test_a_folder_named_like_a_recipe_does_not_hide_it(cli, tmp_path, monkeypatch):
    (tmp_path / "gemma-2b").mkdir()
    monkeypatch.chdir(tmp_path)
    assert cli.json("show", "gemma-2b")["recipe"]["repo_id"] == "alpindale/gemma-2b"
    result = cli("show", "./gemma-2b")  # an explicit path is a path
    assert result.exit_code == 2 and "no config.json" in result.stderr


def test_cli_reference_is_current():
    """docs/cli.md is generated from the commands' help; it must match the code."""
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, str(root / "scripts" / "cli_reference.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
