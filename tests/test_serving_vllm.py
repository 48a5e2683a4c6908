"""vLLM's command line and environment (serving/vllm.py) and the stored credentials
(serving/auth.py). No vLLM runs here: these are the plans that ``serve --dry-run`` shows;
tests/test_vllm_real.py runs the real server."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from llmsetup.errors import UsageError
from llmsetup.hardware import GPU
from llmsetup.secret import Secret
from llmsetup.serving import auth
from llmsetup.serving.vllm import (
    VllmOptions,
    dtype_for,
    gpu_problem,
    ray_commands,
    server_command,
    server_env,
    shown_env,
)
from llmsetup.settings import Settings


def _opts(**kw) -> VllmOptions:
    return VllmOptions(model=Path("/models/m"), served_name="m", **kw).checked()


def _value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _gpus(n: int, gb: float = 80) -> list[GPU]:
    return [GPU(i, "H100", int(gb * 1024), int(gb * 1024), "550", "9.0") for i in range(n)]


def test_the_server_runs_as_a_module_not_the_console_script():
    argv = server_command("/env/bin/python", _opts())
    assert argv[:3] == ["/env/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert _value(argv, "--model") == "/models/m"
    assert _value(argv, "--served-model-name") == "m"
    assert _value(argv, "--host") == "127.0.0.1" and _value(argv, "--port") == "8000"


def test_cpu_serves_in_fp32_and_gpus_in_the_models_dtype():
    assert dtype_for(_opts(cpu=True)) == "float32"
    assert dtype_for(_opts()) == "auto"
    assert dtype_for(_opts(cpu=True, dtype="bfloat16")) == "bfloat16"


def test_every_scale_out_flag_reaches_vllm():
    argv = server_command("py", _opts(tensor_parallel_size=4, pipeline_parallel_size=2,
                                      data_parallel_size=2, distributed_executor_backend="ray",
                                      max_model_len=4096, gpu_memory_utilization=0.85,
                                      bits4=True, random_weights=True,
                                      extra=["--enforce-eager"]))
    assert _value(argv, "--tensor-parallel-size") == "4"
    assert _value(argv, "--pipeline-parallel-size") == "2"
    assert _value(argv, "--data-parallel-size") == "2"
    assert _value(argv, "--distributed-executor-backend") == "ray"
    assert _value(argv, "--max-model-len") == "4096"
    assert _value(argv, "--gpu-memory-utilization") == "0.85"
    assert _value(argv, "--quantization") == "bitsandbytes"
    assert _value(argv, "--load-format") == "dummy"
    assert argv[-1] == "--enforce-eager"


def test_sizes_of_one_are_left_to_vllms_defaults():
    argv = server_command("py", _opts())
    assert not any(a.endswith("-parallel-size") for a in argv)


@pytest.mark.parametrize(("kw", "words"), [
    ({"tensor_parallel_size": 0}, "at least 1"),
    ({"port": 70000}, "1-65535"),
    ({"gpu_memory_utilization": 1.5}, "fraction"),
    ({"distributed_executor_backend": "mpi"}, "mp or ray"),
    ({"ray_address": "10.0.0.1:6379"}, "needs --distributed-executor-backend ray"),
    ({"cpu": True, "bits4": True}, "needs a GPU"),
    ({"cpu": True, "tensor_parallel_size": 2}, "need GPUs"),
    ({"cpu": True, "gpu_memory_utilization": 0.5}, "no meaning with --cpu"),
    ({"max_model_len": 2}, "at least 16"),
])
def test_bad_combinations_are_usage_errors(kw, words):
    with pytest.raises(UsageError, match=words) as exc:
        VllmOptions(model=Path("/m"), **kw).checked()
    assert exc.value.exit_code == 2


def test_cpu_environment_sizes_the_kv_cache_and_keeps_caches_home(tmp_path):
    settings = Settings(home=tmp_path, models_dir=tmp_path / "models")
    env = server_env(settings, _opts(cpu=True, cpu_kv_cache_gib=3, cpu_threads_bind="0-1"))
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "3"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"
    for var in ("VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR"):
        assert Path(env[var]).is_relative_to(tmp_path)
    assert env["VLLM_NO_USAGE_STATS"] == "1" and env["HF_HUB_OFFLINE"] == "1"
    assert "VLLM_CPU_KVCACHE_SPACE" not in server_env(settings, _opts())


def test_the_api_key_goes_to_the_environment_never_to_argv(tmp_path):
    settings = Settings(home=tmp_path, models_dir=tmp_path)
    key = Secret("sk-llmsetup-" + "s" * 30)
    opts = _opts(host="0.0.0.0", api_key=key)
    argv = server_command("py", opts)
    env = server_env(settings, opts)
    assert env["VLLM_API_KEY"] == key.reveal()
    assert not any(key.reveal() in a for a in argv) and "--api-key" not in argv
    assert shown_env(env)["VLLM_API_KEY"] == "***"


def test_ray_plan_has_a_head_and_a_worker_command():
    opts = _opts(distributed_executor_backend="ray", ray_address="10.0.0.1:6380",
                 tensor_parallel_size=8, pipeline_parallel_size=2)
    plan = ray_commands("/envs/vllm/bin/python", opts)
    assert plan["head"] == ["/envs/vllm/bin/ray", "start", "--head", "--port", "6380",
                            "--node-ip-address", "10.0.0.1"]
    assert plan["worker"] == ["/envs/vllm/bin/ray", "start", "--address", "10.0.0.1:6380"]
    env = server_env(Settings(home=Path("/h"), models_dir=Path("/m")), opts)
    assert env["RAY_ADDRESS"] == "10.0.0.1:6380"
    assert ray_commands("py", _opts()) is None


def test_ray_address_must_have_a_port():
    opts = _opts(distributed_executor_backend="ray", ray_address="10.0.0.1:head")
    with pytest.raises(UsageError, match="HOST:PORT"):
        ray_commands("py", opts)


def test_gpu_count_and_memory_are_checked_against_the_parallel_sizes():
    assert "no GPU" in gpu_problem(_opts(), [], 13)
    assert gpu_problem(_opts(cpu=True), [], 13) is None
    assert "needs 4 GPUs; this machine has 2" in gpu_problem(
        _opts(tensor_parallel_size=2, data_parallel_size=2), _gpus(2), 13)
    assert gpu_problem(_opts(tensor_parallel_size=2), _gpus(2), 13) is None
    # 140 GB of fp16 weights over 2 x 80 GB at 0.9: 70 GB each > 72 GB? fits; 4 x 24 GB does not
    assert gpu_problem(_opts(tensor_parallel_size=2), _gpus(2, 80), 140) is None
    assert "about 35.0 GB of weights" in gpu_problem(_opts(tensor_parallel_size=4),
                                                     _gpus(4, 24), 140)
    # Ray spreads over machines this one cannot count
    assert gpu_problem(_opts(tensor_parallel_size=16, distributed_executor_backend="ray"),
                       _gpus(8), 140) is None


def test_api_key_is_made_once_with_mode_600(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.API_KEY_ENV, raising=False)
    settings = Settings(home=tmp_path / "home", models_dir=tmp_path)
    assert auth.load_api_key(settings) is None
    key, created = auth.ensure_api_key(settings)
    again, created_again = auth.ensure_api_key(settings)
    assert created and not created_again and key == again
    path = auth.api_key_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert auth.load_api_key(settings) == key
    monkeypatch.setenv(auth.API_KEY_ENV, "sk-from-the-environment")
    assert auth.load_api_key(settings).reveal() == "sk-from-the-environment"


def test_a_key_file_readable_by_others_is_closed_before_use(tmp_path):
    settings = Settings(home=tmp_path, models_dir=tmp_path)
    auth.ensure_api_key(settings)
    path = auth.api_key_path(settings)
    os.chmod(path, 0o644)
    assert auth.load_api_key(settings) is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_webui_login_file_is_user_colon_password(tmp_path):
    settings = Settings(home=tmp_path, models_dir=tmp_path)
    path, password, created = auth.ensure_webui_login(settings)
    assert created and path.read_text().strip() == f"llmsetup:{password.reveal()}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("127.0.0.2", False),
    ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("myhost", False)])
def test_what_counts_as_loopback(host, loopback):
    assert auth.is_loopback(host) is loopback
