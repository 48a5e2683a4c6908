"""The steps of an install plan: environment, requirements, torch/CUDA check, model
download (or generation, for the demo), deploy (text-generation-webui), verify.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from packaging.utils import canonicalize_name

from llmsetup.envs import env_record_path
from llmsetup.envs.base import EnvBackend
from llmsetup.envs.pythons import find_python, missing_python
from llmsetup.errors import CheckFailed, LLMSetupError, ProcessError, UsageError
from llmsetup.fileio import write_json_atomic, write_text_atomic
from llmsetup.host.runner import run_module, script
from llmsetup.i18n import N_, Joined, Message, _
from llmsetup.install.plan import (
    Plan,
    PlanReporter,
    Step,
    file_digest,
    fingerprint,
)
from llmsetup.proc import run

# Known pip failures: (lowercase text in the output, what to do). The hints are marked
# here and translated where they are used (:func:`pip_hints`).
PIP_HINTS = [
    ("no matching distribution found",
     N_("No matching distribution: the pinned version may not exist for this Python version "
        "or platform, or the mirror lacks it. Try another mirror (--pip-mirror ustc|tuna|"
        "aliyun|default) or check --python.")),
    ("could not find a version that satisfies",
     N_("No matching distribution: the pinned version may not exist for this Python version "
        "or platform, or the mirror lacks it. Try another mirror (--pip-mirror ustc|tuna|"
        "aliyun|default) or check --python.")),
    ("do not match the hashes",
     N_("Hash mismatch: the mirror served a file that differs from the one expected. Retry, "
        "or use another mirror (--pip-mirror).")),
    ("read timed out",
     N_("Network timeout: check the connection or choose a closer mirror (--pip-mirror "
        "ustc).")),
    ("connection", N_("Network problem reaching the index: check the connection, the proxy, "
                      "or choose another mirror (--pip-mirror ustc|tuna|aliyun).")),
    ("externally-managed-environment",
     N_("This Python refuses pip installs (PEP 668): use --env-backend uv or venv instead of "
        "current.")),
    ("no space left on device", N_("The disk is full: free some space, then rerun.")),
]


def pip_hints() -> list[tuple[str, str]]:
    """:data:`PIP_HINTS` with the hints in the chosen language."""
    return [(pattern, _(hint)) for pattern, hint in PIP_HINTS]


# Prints the environment's installed distributions (names as published: the host
# normalises them) and what its markers need, as JSON.
_INSTALLED_SNIPPET = (
    "import json, platform, sys, importlib.metadata as m\n"
    "d = {}\n"
    "for dist in m.distributions():\n"
    "    d[dist.metadata['Name'] or ''] = dist.version\n"
    "print(json.dumps({'dists': d, 'python_version': '%d.%d' % sys.version_info[:2],\n"
    "    'python_full_version': platform.python_version(), 'sys_platform': sys.platform,\n"
    "    'platform_machine': platform.machine(), 'platform_system': platform.system()}))\n"
)


def installed_in(python_command: list[str]) -> dict:
    """What an environment has installed (read-only)."""
    result = run([*python_command, "-c", _INSTALLED_SNIPPET], check=True, timeout=300,
                 what=_("listing the environment's packages"))
    for line in reversed(result.output.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise CheckFailed(_("could not list the environment's packages"), hint=result.tail)


def unsatisfied(pins: list[str], installed: dict) -> list[str]:
    """The pins that ``installed`` (from :func:`installed_in`) does not satisfy."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    marker_env = default_environment()
    marker_env.update({k: installed[k] for k in ("python_version", "python_full_version",
                                                 "sys_platform", "platform_machine",
                                                 "platform_system") if k in installed})
    dists = {canonicalize_name(name): version
             for name, version in installed.get("dists", {}).items()}
    missing = []
    for pin in pins:
        req = Requirement(pin)
        if req.marker and not req.marker.evaluate(marker_env):
            continue
        have = dists.get(canonicalize_name(req.name))
        if have is None or not req.specifier.contains(have, prereleases=True):
            missing.append(pin if have is None
                           else _("{pin} (have {version})").format(pin=pin, version=have))
    return missing


class EnvStep(Step):
    key = "env"

    def __init__(self, plan: Plan, backend: EnvBackend, env_record: Path | None = None) -> None:
        super().__init__(plan)
        self.backend = backend
        self.env_record = env_record or env_record_path(plan.settings, plan.recipe.name)
        if backend.name != "current":
            self.set_title(N_("Create environment {env} ({backend}, Python {python})"),
                           env=backend.env_name, backend=backend.name,
                           python=backend.python_version)
        else:
            self.set_title(N_("Use the current interpreter ({python})"), python=sys.executable)

    def fingerprint(self) -> str:
        return fingerprint(self.backend.describe())

    def commands(self) -> list[list[str]]:
        try:
            return self.backend.create_commands()
        except LLMSetupError as exc:  # e.g. no matching interpreter: show why, fail on run
            # In English, as the rest of --json (the run itself reports it translated).
            return [[f"# cannot create: {getattr(exc, 'english_message', exc.message)}"]]

    def details(self) -> dict:
        return {"env": self.backend.describe()}

    def _ours(self) -> bool:
        """Environments under LLMSETUP_HOME are ours: trust them only once recorded."""
        return self.backend.name in ("venv", "uv")

    def is_done(self) -> bool:
        # A conda env the user made by hand (the book's way) is reused as it is; a venv of
        # ours that has no record was interrupted while being created.
        return self.backend.exists() and (not self._ours() or self.record_matches())

    def run(self, reporter: PlanReporter) -> dict:
        self.backend.require()
        replace = self._ours() and self.backend.exists()
        for argv in self.backend.create_commands(replace=replace):
            try:
                run(argv, log=self.plan.log_path(self.key), on_line=reporter.step_output,
                    what=_("creating environment {env}").format(env=self.backend.env_name),
                    env=self.backend.command_env(), group_record=self.plan.group_record)
            except ProcessError as exc:
                if self.backend.name == "uv" and "python" in (exc.tail or "").lower() and \
                        find_python(self.backend.python_version) is None:
                    raise missing_python(self.backend.python_version, "uv") from None
                raise
        info = {**self.backend.describe(), "python_path": self.backend.python_path()}
        write_json_atomic(self.env_record,
                          {"backend": self.backend.name, "name": self.backend.env_name,
                           "python": self.backend.python_path(),
                           "location": self.backend.location()})
        return info


class RequirementsStep(Step):
    key = "requirements"

    def __init__(self, plan: Plan, backend: EnvBackend, profile: str, pins: list[str],
                 lock: Path | None) -> None:
        super().__init__(plan)
        self.backend = backend
        self.profile = profile
        self.pins = pins
        self.lock = lock
        if lock:
            self.set_title(N_("Install requirements (profile {profile}, {count} pinned, "
                              "lock {lock})"), profile=profile, count=len(pins), lock=lock.name)
        else:
            self.set_title(N_("Install requirements (profile {profile}, {count} pinned, "
                              "no lock)"), profile=profile, count=len(pins))

    @property
    def requirements_file(self) -> Path:
        return self.plan.state_dir / f"requirements.{self.profile}.txt"

    def constraints_file(self) -> Path | None:
        """What pip gets with ``-c``: the lock."""
        return self.lock

    def requirements_text(self) -> str:
        header = f"# llmsetup: recipe {self.plan.recipe.name}, profile {self.profile}\n"
        return header + "".join(p + "\n" for p in self.pins)

    def all_pins(self) -> list[str]:
        """Every requirement the environment must satisfy when this step is done."""
        return self.pins

    def write_inputs(self) -> None:
        write_text_atomic(self.requirements_file, self.requirements_text())

    def fingerprint(self) -> str:
        return fingerprint(self.backend.describe(), self.pins, file_digest(self.lock))

    def commands(self) -> list[list[str]]:
        return [self.backend.install_command(self.requirements_file, self.constraints_file(),
                                             self.plan.options.pip)]

    def details(self) -> dict:
        return {"profile": self.profile, "requirements": self.pins,
                "requirements_file": str(self.requirements_file),
                "lock": str(self.lock) if self.lock else None}

    def _missing(self) -> list[str] | None:
        if not self.backend.exists():
            return None
        try:
            return unsatisfied(self.all_pins(), installed_in(self.backend.python_command()))
        except LLMSetupError:
            return None

    def is_done(self) -> bool:
        missing = self._missing()
        if missing is None or missing:
            return False
        # Satisfied. With a lock, the recorded install must have used this same lock, so that
        # the transitive pins are the lock's too; the current interpreter is taken as it is.
        return self.lock is None or self.backend.name == "current" or self.record_matches()

    def run(self, reporter: PlanReporter) -> dict:
        self.write_inputs()
        run(self.commands()[0], log=self.plan.log_path(self.key), on_line=reporter.step_output,
            what=_("installing requirements"), hints=pip_hints(),
            group_record=self.plan.group_record)
        missing = self._missing()
        if missing:
            raise CheckFailed(_("the install finished but these requirements are not "
                                "satisfied: {missing}").format(missing=", ".join(missing)),
                              hint=_("See {log}").format(log=self.plan.log_path(self.key)))
        return {"profile": self.profile, "pins": self.pins,
                "lock": str(self.lock) if self.lock else None}


class EngineStep(RequirementsStep):
    """``--engine ctranslate2``: faster-whisper and CTranslate2 beside the model's stack.

    The pins are the ones the tests run (``host.asr.ENGINE_PINS``); the profile's lock
    goes to pip as constraints, so what the engine shares with the model (numpy,
    tokenizers, huggingface-hub) stays at the lock's versions.
    """

    key = "engine"

    def __init__(self, plan: Plan, backend: EnvBackend, engine: str, profile: str,
                 lock: Path | None) -> None:
        from llmsetup.host.asr import ENGINE_PINS

        if engine not in ENGINE_PINS:
            raise UsageError(_("unknown --engine {engine}").format(engine=repr(engine)),
                             hint=_("Speech models take --engine ctranslate2."))
        if plan.recipe.kind != "asr":
            raise UsageError(_("--engine {engine} is for speech models; {name} is a {kind} "
                               "model").format(engine=engine, name=plan.recipe.name,
                                               kind=plan.recipe.kind))
        super().__init__(plan, backend, profile, ENGINE_PINS[engine], lock)
        self.engine = engine
        self.set_title(N_("Install the {engine} engine ({pins})"), engine=engine,
                       pins=", ".join(self.pins))

    @property
    def requirements_file(self) -> Path:
        return self.plan.state_dir / f"requirements.engine-{self.engine}.txt"

    def requirements_text(self) -> str:
        return (f"# llmsetup: recipe {self.plan.recipe.name}, engine {self.engine} "
                f"(profile {self.profile})\n" + "".join(p + "\n" for p in self.pins))

    def run(self, reporter: PlanReporter) -> dict:
        return {**super().run(reporter), "engine": self.engine}


class CudaCheckStep(Step):
    key = "cuda-check"

    def __init__(self, plan: Plan, backend: EnvBackend, requirements: RequirementsStep | None):
        super().__init__(plan)
        self.backend = backend
        self.requirements = requirements
        self.cpu = plan.options.cpu or not plan.recipe.needs_gpu
        self.set_title(N_("Check torch (CPU allowed)") if self.cpu
                       else N_("Check torch and CUDA"))

    def fingerprint(self) -> str:
        return fingerprint(self.backend.describe(), self.cpu,
                           self.requirements.fingerprint() if self.requirements else None)

    def _args(self) -> list[str]:
        return [] if self.cpu else ["--require-cuda"]

    def commands(self) -> list[list[str]]:
        return [[*self.backend.python_command(), str(script("torch_check")), *self._args()]]

    def is_done(self) -> bool:
        return self.record_matches() and self.backend.exists()

    def run(self, reporter: PlanReporter) -> dict:
        facts: dict = {}

        def on_event(event: dict) -> None:
            if event.get("event") == "torch":
                facts.update(event)
                gpus = ", ".join(f"{g['name']} ({g['memory_total_gb']} GB, cc "
                                 f"{g['compute_capability']})" for g in event.get("gpus", []))
                cuda, available = event.get("cuda_version"), event["cuda_available"]
                if cuda:
                    line = _("torch {torch}, CUDA {cuda}, cuda available: {available}").format(
                        torch=event["torch"], cuda=cuda, available=available)
                else:
                    line = _("torch {torch}, CUDA none, cuda available: {available}").format(
                        torch=event["torch"], available=available)
                reporter.step_output(line + (f"; {gpus}" if gpus else ""))

        run_module(self.backend.python_command(), "torch_check", self._args(),
                   log=self.plan.log_path(self.key), on_event=on_event)
        gpus = facts.get("gpus") or []
        found = (", ".join(f"{g['name']} {g['memory_total_gb']} GB" for g in gpus) if gpus
                 else Message(N_("no GPU visible to torch")))
        if facts.get("cuda_version"):
            summary = self.summarize(Message(N_("torch {torch}, CUDA {cuda}, {gpus}"),
                                          torch=facts.get("torch"), cuda=facts["cuda_version"],
                                          gpus=found))
        else:
            summary = self.summarize(Message(N_("torch {torch}, CUDA none, {gpus}"),
                                          torch=facts.get("torch"), gpus=found))
        return {**{k: facts.get(k) for k in ("torch", "cuda_version", "cuda_available", "gpus")},
                "summary": summary}


class GenerateStep(Step):
    """The demo's "download": build the model with the environment's own transformers."""

    key = "download"

    def __init__(self, plan: Plan, backend: EnvBackend) -> None:
        super().__init__(plan)
        self.backend = backend
        self.model_dir = plan.target.model_dir
        self.set_title(N_("Generate the model into {dir}"), dir=self.model_dir)

    @property
    def marker(self) -> Path:
        return self.model_dir / "llmsetup-generated.json"

    def fingerprint(self) -> str:
        return fingerprint(self.plan.recipe.architecture,
                           self.plan.recipe.generate.model_dump() if self.plan.recipe.generate
                           else None)

    def _args(self, out: Path) -> list[str]:
        gen = self.plan.recipe.generate
        assert gen is not None
        return ["causal-lm", str(out), "--architecture", json.dumps(self.plan.recipe.architecture),
                "--chat-template", gen.chat_template, "--train-steps", str(gen.train_steps),
                "--seed", str(gen.seed)]

    def commands(self) -> list[list[str]]:
        return [[*self.backend.python_command(), str(script("fixtures")),
                 *self._args(self.model_dir)]]

    def is_done(self) -> bool:
        try:
            marker = json.loads(self.marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return marker.get("fingerprint") == self.fingerprint() and \
            (self.model_dir / "config.json").is_file()

    def run(self, reporter: PlanReporter) -> dict:
        if self.model_dir.exists() and not self.marker.exists() and any(self.model_dir.iterdir()):
            raise UsageError(_("{dir} exists and was not made by llmsetup").format(
                                 dir=self.model_dir),
                             hint=_("Move it away or set LLMSETUP_MODELS_DIR to another "
                                    "folder."))
        self.model_dir.parent.mkdir(parents=True, exist_ok=True)
        # Build next to the target, then swap in: never a half-built model at the final path.
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.model_dir.name}.", dir=self.model_dir.parent))
        try:
            result = run_module(self.backend.python_command(), "fixtures",
                                self._args(tmp / "model"), log=self.plan.log_path(self.key))
            write_json_atomic(tmp / "model" / self.marker.name,
                              {"recipe": self.plan.recipe.name, "fingerprint": self.fingerprint()})
            if self.model_dir.exists():
                shutil.rmtree(self.model_dir)
            (tmp / "model").rename(self.model_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return {"model_dir": str(self.model_dir), "parameters": result.get("parameters")}


def _model_stamp(model_dir: Path) -> list:
    """Names, sizes and times of the model's files: a change means verify again."""
    if not model_dir.is_dir():
        return []
    return sorted((p.name, p.stat().st_size, int(p.stat().st_mtime))
                  for p in model_dir.iterdir() if p.is_file())


class DownloadStep(Step):
    """Fetch the weights from the recipe's sources (see :mod:`llmsetup.download`)."""

    key = "download"

    def __init__(self, plan: Plan) -> None:
        super().__init__(plan)
        self.model_dir = plan.target.model_dir
        self.set_title(N_("Download {repo} into {dir}"), repo=plan.recipe.repo_id,
                       dir=self.model_dir)

    def _flags(self) -> list[str]:
        """The download options as ``llmsetup download`` would take them (for --dry-run)."""
        opts = self.plan.options.download_options
        flags: list[str] = []
        for source in opts.sources or []:
            flags += ["--source", source]
        if opts.endpoint:
            flags += ["--endpoint", opts.endpoint]
        if opts.from_dir:
            flags += ["--from", str(opts.from_dir)]
        return flags

    def fingerprint(self) -> str:
        return fingerprint(self.plan.recipe.repo_id, self.plan.recipe.revision,
                           str(self.model_dir))

    def commands(self) -> list[list[str]]:
        return [["llmsetup", "download", self.plan.recipe.name, *self._flags()]]

    def is_done(self) -> bool:
        from llmsetup.download import is_complete

        return is_complete(self.model_dir)

    def run(self, reporter: PlanReporter) -> dict:
        from llmsetup.download import download_for_install

        return download_for_install(self.plan.target, self.plan.settings,
                                    self.plan.options.download_options, reporter.step_output)


class VerifyStep(Step):
    """Prove the model works: the kind's verifier, in the model's environment."""

    key = "verify"

    def __init__(self, plan: Plan, backend: EnvBackend) -> None:
        super().__init__(plan)
        self.backend = backend
        quant = plan.options.quantization
        if quant:
            self.set_title(N_("Verify {name} ({quantization})"), name=plan.recipe.name,
                           quantization=quant)
        else:
            self.set_title(N_("Verify {name}"), name=plan.recipe.name)

    def _flags(self) -> list[str]:
        flags = []
        if self.plan.options.engine:
            flags += ["--engine", self.plan.options.engine]
        if self.plan.options.quantization:
            flags.append(f"--{self.plan.options.quantization}")
        if self.plan.options.cpu:
            flags.append("--cpu")
        return flags

    def fingerprint(self) -> str:
        return fingerprint(self.backend.describe(), self._flags(),
                           _model_stamp(self.plan.target.model_dir))

    def commands(self) -> list[list[str]]:
        name = str(self.plan.target.model_dir) if self.plan.target.from_folder \
            else self.plan.recipe.name
        return [["llmsetup", "verify", name, *self._flags()]]

    def is_done(self) -> bool:
        rec = self.record()
        return self.record_matches() and bool(rec and rec.get("info", {}).get("passed"))

    def run(self, reporter: PlanReporter) -> dict:
        from llmsetup.host.verify import verify_target

        python = self.backend.python_path() or sys.executable
        result = verify_target(self.plan.target, self.plan.settings, python,
                               quantization=self.plan.options.quantization,
                               device="cpu" if self.plan.options.cpu else "auto",
                               engine=self.plan.options.engine,
                               on_line=reporter.step_output,
                               log=self.plan.log_path(self.key))
        if not result.get("passed"):
            reason = result["reason"] if "reason" in result else _("see the log")
            raise CheckFailed(_("{name} did not pass verification: {reason}").format(
                                  name=self.plan.recipe.name, reason=str(reason)),
                              hint=_("Full log: {log}").format(log=self.plan.log_path(self.key)))
        return {**result, "summary": self.summarize(verify_text(result))}


def verify_text(result: dict) -> Message:
    """The proof in a line or two: what the model answered (or heard), and how fast."""
    lines: list[str | Message] = []
    for item in result.get("prompts") or []:
        lines.append(f"{item['prompt']!r} -> {item['answer']!r}")
    for item in result.get("items") or []:
        lines.append(f"{Path(str(item.get('file', ''))).name}: {item.get('text', '')!r}")
    facts: list[str | Message | None] = [
        f"{result['device']}" if result.get("device") else None,
        f"{result['dtype']}" if result.get("dtype") else None,
        Message(N_("load {seconds}s"), seconds=f"{result['load_s']:.1f}")
        if result.get("load_s") is not None else None,
        f"{result['decode_tokens_per_s']:.0f} tokens/s"
        if result.get("decode_tokens_per_s") else None]
    lines.append(Joined(", ", [f for f in facts if f]))
    return Joined("\n    ", lines[:4])


def verify_summary(result: dict) -> str:
    """:func:`verify_text` in English (what the install records)."""
    return str(verify_text(result))


def add_download(plan: Plan, backend: EnvBackend) -> None:
    if plan.target.from_folder:
        plan.skipped.append(("download", N_("a local model folder needs no download")))
    elif not plan.options.download:
        plan.skipped.append(("download", "--no-download"))
    elif plan.recipe.sources == ["generate"]:
        plan.steps.append(GenerateStep(plan, backend))
    else:
        plan.steps.append(DownloadStep(plan))


def add_verify(plan: Plan, backend: EnvBackend) -> None:
    if plan.options.verify:
        plan.steps.append(VerifyStep(plan, backend))
    else:
        plan.skipped.append(("verify", "--no-verify"))
