"""The install plan with ``--engine vllm``: vLLM's own environment, beside the model's.

engine environment -> vLLM pinned per machine kind (``--cpu``: the CPU build, locked) ->
(CPU) remove the CUDA builds pip pulled beside the CPU torch -> download -> verify through
the server: start vLLM, ask ``/v1/models`` and the smoke prompts, stop it.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

from llmsetup.envs import choose_backend, make_backend
from llmsetup.envs.base import EnvBackend, PipOptions
from llmsetup.errors import CheckFailed, LLMSetupError, UsageError
from llmsetup.i18n import N_, _
from llmsetup.install.plan import Plan, PlanReporter, Step, fingerprint
from llmsetup.install.steps import (
    EnvStep,
    RequirementsStep,
    _model_stamp,
    add_download,
    installed_in,
    verify_text,
)
from llmsetup.proc import run, run_service
from llmsetup.recipes.loader import bundled_dir
from llmsetup.serving.check import check_api
from llmsetup.serving.openai_client import Client
from llmsetup.serving.vllm import EngineProfile, VllmOptions, profile_for, server_command, server_env
from llmsetup.serving.vllm_server import ENV_RECORD, wait_until_ready

READY_TIMEOUT_S = 900.0


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def env_python(backend: EnvBackend) -> str:
    """The environment's interpreter, also before it exists (for --dry-run)."""
    path = backend.python_path()
    if path:
        return path
    command = backend.python_command()
    return command[0] if len(command) == 1 else f"<{backend.env_name} env>/bin/python"


class RemoveBrokenStep(Step):
    """Uninstall what the engine's pins pulled in but cannot import (see the profile)."""

    key = "engine-remove"

    def __init__(self, plan: Plan, backend: EnvBackend, profile: EngineProfile) -> None:
        super().__init__(plan)
        self.backend = backend
        self.packages = list(profile.remove)
        self.set_title(N_("Remove {packages} (CUDA builds that do not import beside the CPU "
                          "torch)"), packages=", ".join(self.packages))

    def fingerprint(self) -> str:
        return fingerprint(self.backend.describe(), self.packages)

    def commands(self) -> list[list[str]]:
        if self.backend.name == "uv":
            return [[self.backend.uv, "pip", "uninstall", "--python",
                     env_python(self.backend), *self.packages]]
        return [[*self.backend.python_command(), "-m", "pip", "uninstall", "-y",
                 *self.packages]]

    def _present(self) -> list[str] | None:
        try:
            dists = {_canonical(k) for k in installed_in(self.backend.python_command())["dists"]}
        except LLMSetupError:
            return None
        return [p for p in self.packages if p in dists]

    def is_done(self) -> bool:
        return self.backend.exists() and self._present() == []

    def run(self, reporter: PlanReporter) -> dict:
        present = self._present()
        if present:
            run(self.commands()[0], log=self.plan.log_path(self.key),
                on_line=reporter.step_output, what=_("removing broken packages"),
                group_record=self.plan.group_record)
        return {"removed": present or []}


def _has_cpu_torch(pip: PipOptions) -> bool:
    """A --find-links folder holds torch's CPU build: no need for torch's own index (which
    may be unreachable, and pip retries an unreachable index for every package)."""
    return any(any(Path(folder).glob("torch-*+cpu-*.whl")) for folder in pip.find_links)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Checked(Exception):
    """Raised once the running server has been checked: stops it (see proc.run_service)."""


class ServeVerifyStep(Step):
    """Start vLLM on loopback, check ``/v1/models`` and the smoke prompts, stop it."""

    key = "verify-vllm"

    def __init__(self, plan: Plan, backend: EnvBackend) -> None:
        super().__init__(plan)
        self.backend = backend
        self.set_title(N_("Verify {name} through vLLM's server (start, ask, stop)"),
                       name=plan.recipe.name)

    def _options(self, port: int) -> VllmOptions:
        return VllmOptions(model=self.plan.target.model_dir, served_name=self.plan.recipe.name,
                           port=port, cpu=self.plan.options.cpu,
                           bits4=self.plan.options.quantization == "4bit").checked()

    def _python(self) -> str:
        return env_python(self.backend)

    def fingerprint(self) -> str:
        return fingerprint(self.backend.describe(), self.plan.options.cpu,
                           self.plan.options.quantization,
                           _model_stamp(self.plan.target.model_dir))

    def commands(self) -> list[list[str]]:
        return [server_command(self._python(), self._options(8000)),
                ["llmsetup", "verify", self.plan.recipe.name, "--api", "http://127.0.0.1:8000"]]

    def is_done(self) -> bool:
        rec = self.record()
        return self.record_matches() and bool(rec and rec.get("info", {}).get("passed"))

    def run(self, reporter: PlanReporter) -> dict:
        opts = self._options(_free_port())
        client = Client(f"http://127.0.0.1:{opts.port}", timeout=300)
        smoke = self.plan.recipe.smoke
        found: dict = {}

        def started(proc) -> None:
            reporter.step_output(_("waiting for vLLM at {url} (minutes on a CPU)").format(
                url=client.base))
            wait_until_ready(client, proc, READY_TIMEOUT_S)
            found.update(check_api(client, smoke.prompts or ["Hello! Who are you?"],
                                   max_tokens=smoke.max_new_tokens))
            raise _Checked

        log = self.plan.log_path(self.key)
        try:
            run_service(server_command(self._python(), opts),
                        env=server_env(self.plan.settings, opts), on_started=started, log=log)
        except _Checked:
            pass
        except CheckFailed as exc:
            raise CheckFailed(exc.message, hint=_("vLLM's output: {log}").format(log=log)) \
                from None
        if not found:
            raise CheckFailed(_("vLLM stopped before it was checked"),
                              hint=_("See {log}").format(log=log))
        if not found["ok"]:
            raise CheckFailed(_("{name} did not pass through vLLM: {problems}").format(
                                  name=self.plan.recipe.name,
                                  problems="; ".join(found["problems"])),
                              hint=_("On a CPU vLLM serves in float32; see {log}").format(
                                  log=log))
        result = {**found, "passed": True, "device": "cpu" if opts.cpu else "cuda"}
        return {**result, "summary": self.summarize(verify_text(result))}


def add_steps(plan: Plan) -> None:
    """The engine route's steps, in order."""
    recipe, options = plan.recipe, plan.options
    if recipe.kind != "causal-lm":
        raise UsageError(_("{name} is a {kind} model; vLLM serves text generation models "
                           "here").format(name=recipe.name, kind=recipe.kind),
                         hint=_("Install it without --engine."))
    if options.quantization == "8bit":
        raise UsageError(_("vLLM offers no 8-bit bitsandbytes loading"),
                         hint=_("Use --4bit, or full precision."))
    if options.cpu and options.quantization:
        raise UsageError(_("--4bit with vLLM needs a GPU"), hint=_("Leave it out with --cpu."))
    profile = profile_for(options.cpu)
    if profile.extra_index and not options.pip.no_index and not _has_cpu_torch(options.pip):
        options.pip = replace(options.pip, extra_index_urls=[*options.pip.extra_index_urls,
                                                             profile.extra_index])
    python_version = options.python or profile.python
    # pip, not uv, by default for the CPU build: uv takes each package from the first index
    # that has it, so torch would come from PyPI (no +cpu build there) instead of torch's index.
    preferred = "venv" if profile.extra_index else None
    backend = make_backend(choose_backend(options.env_backend, preferred), profile.name,
                           python_version, plan.settings)
    plan.steps.append(EnvStep(plan, backend, plan.state_dir / ENV_RECORD))
    lock = (bundled_dir() / profile.lock) if profile.lock and options.use_lock else None
    plan.steps.append(RequirementsStep(plan, backend, profile.name, list(profile.pins), lock))
    if profile.remove:
        plan.steps.append(RemoveBrokenStep(plan, backend, profile))
    add_download(plan, backend)
    if options.verify:
        plan.steps.append(ServeVerifyStep(plan, backend))
    else:
        plan.skipped.append(("verify", "--no-verify"))

