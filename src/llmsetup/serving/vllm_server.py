"""``serve --engine vllm``: the plan (what runs, where it answers, what Ray needs), the checks
before it starts (GPUs against the parallel sizes, credentials beyond loopback), and the run
(through :func:`llmsetup.proc.run_service`: its own process group, Ctrl-C to all of it)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmsetup.envs import recorded_env
from llmsetup.errors import CheckFailed, NotFoundError, UsageError
from llmsetup.fileio import write_json_atomic
from llmsetup.hardware import fit, probe_gpus
from llmsetup.i18n import _
from llmsetup.proc import quote, run_service
from llmsetup.secret import Secret
from llmsetup.serving import auth
from llmsetup.serving.openai_client import Client
from llmsetup.serving.vllm import (
    VllmOptions,
    gpu_problem,
    profile_for,
    ray_commands,
    server_command,
    server_env,
    shown_env,
)
from llmsetup.settings import Settings

if TYPE_CHECKING:
    import subprocess

ENV_RECORD = "vllm-env.json"
SERVE_RECORD = "vllm-serve.json"


@dataclass
class ServePlan:
    """Everything ``serve --engine vllm`` runs, and what ``--dry-run`` shows of it."""

    name: str
    python: str
    argv: list[str]
    env: dict[str, str]
    url: str
    ray: dict[str, list[str]] | None
    key_path: Path | None
    key_created: bool
    gpu_check: str
    api_key: Secret | None = None

    def shown(self) -> dict:
        """The plan for people and --json: the key masked, commands quoted."""
        doc = {"engine": "vllm", "model": self.name, "python": self.python,
               "command": quote(self.argv), "env": shown_env(self.env), "url": self.url,
               "api_url": self.url + "/v1", "api_key_file": str(self.key_path)
               if self.key_path else None, "gpu_check": self.gpu_check}
        if self.ray:
            doc["ray"] = {"head": quote(self.ray["head"]), "worker": quote(self.ray["worker"])}
        return doc


def engine_python(settings: Settings, recipe_name: str | None, python: str | None,
                  cpu: bool = False) -> str:
    """The interpreter of the vLLM environment: ``--python``; else what install recorded for
    the recipe; else the shared engine environment under LLMSETUP_HOME (a model folder)."""
    if python:
        if not Path(python).expanduser().exists():
            raise UsageError(_("--python {python}: no such interpreter").format(python=python))
        return str(Path(python).expanduser())
    record = recorded_env(settings, recipe_name, ENV_RECORD) if recipe_name else None
    if record and record.get("python") and Path(record["python"]).exists():
        return record["python"]
    shared = settings.envs_dir / profile_for(cpu).name / "bin" / "python"
    if shared.exists():
        return str(shared)
    name = recipe_name or "NAME"
    raise NotFoundError(_("no vLLM environment for {name}").format(name=name),
                        hint=_("Install it first: `llmsetup install {name} --engine vllm` (add "
                               "--cpu without a GPU), or point --python at one.").format(
                            name=name))


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def check_gpus(opts: VllmOptions, need_gb: dict[str, float | None], strict: bool = True) -> str:
    """Refuse parallel sizes this machine cannot take (``strict``), or say what was found."""
    if opts.cpu:
        return _("CPU: no GPU check")
    probe = probe_gpus()
    need = need_gb.get("int4" if opts.bits4 else "fp16")
    problem = gpu_problem(opts, probe.gpus, need)
    if problem:
        advice = fit(need_gb, probe.gpus)["advice"] if probe.gpus else \
            _("Serve on the CPU with --cpu (slowly), or on a machine with a GPU.")
        if strict:
            raise UsageError(problem, hint=advice)
        return _("this machine would refuse: {problem} ({advice})").format(problem=problem,
                                                                          advice=advice)
    if opts.distributed_executor_backend == "ray":
        return _("Ray: {needed} GPUs across the cluster (the scheduler checks; this machine "
                 "has {found})").format(needed=opts.gpus_needed, found=len(probe.gpus))
    return _("{needed} of {found} GPUs").format(needed=opts.gpus_needed, found=len(probe.gpus))


def make_plan(settings: Settings, name: str, python: str, opts: VllmOptions, *,
              need_gb: dict[str, float | None], no_auth: bool,
              check_hardware: bool = True) -> ServePlan:
    """The plan; creates the API key (once) when the server listens beyond loopback."""
    opts.checked()
    gpu_check = check_gpus(opts, need_gb, strict=check_hardware)
    key_path, created = None, False
    if not auth.is_loopback(opts.host) and not no_auth:
        opts.api_key, created = auth.ensure_api_key(settings)
        key_path = auth.api_key_path(settings)
    return ServePlan(name=name, python=python, argv=server_command(python, opts),
                     env=server_env(settings, opts),
                     url=f"http://{_local(opts.host)}:{opts.port}",
                     ray=ray_commands(python, opts), key_path=key_path, key_created=created,
                     gpu_check=gpu_check, api_key=opts.api_key)


def wait_until_ready(client: Client, proc: subprocess.Popen, timeout: float) -> list[str]:
    """Poll ``/v1/models`` until it lists a model, the server exits, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CheckFailed(_("vLLM exited with status {status} before it answered").format(
                status=proc.returncode), hint=_("Its output above says why."))
        try:
            models = client.models()
            if models:
                return models
        except CheckFailed:
            pass
        time.sleep(1.0)
    raise CheckFailed(_("vLLM did not answer at {url}/v1/models within {seconds:.0f}s").format(
        url=client.base, seconds=timeout),
        hint=_("On a CPU start-up compiles for minutes; raise --ready-timeout."))


def run(settings: Settings, plan: ServePlan, on_ready, ready_timeout: float) -> int:
    """Start vLLM, record where it answers, call ``on_ready()``, and run until it stops."""
    client = Client(plan.url, api_key=plan.api_key, timeout=5)
    record = settings.state_dir / plan.name / SERVE_RECORD

    def started(proc: subprocess.Popen) -> None:
        models = wait_until_ready(client, proc, ready_timeout)
        write_json_atomic(record, {"engine": "vllm", "url": plan.url, "pid": proc.pid,
                                   "models": models, "auth": plan.key_path is not None})
        on_ready()

    try:
        return run_service(plan.argv, env=plan.env, on_started=started)
    finally:
        if record.is_file():
            os.unlink(record)
