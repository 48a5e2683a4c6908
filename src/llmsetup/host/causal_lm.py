"""The host side of ``verify`` and ``chat`` for causal LMs.

Builds the argv of ``runtime/causal_lm.py`` from a :class:`~llmsetup.targets.Target` and the
user's options and runs it with the model environment's Python. Everything about torch,
quantization and generation happens in there; here we only check what can be checked
without it (the kind of model, whether its folder exists) so that those mistakes are
reported in milliseconds instead of after an interpreter start and a torch import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmsetup.errors import NotFoundError, UsageError
from llmsetup.host import runner
from llmsetup.settings import Settings
from llmsetup.targets import Target

MODULE = "causal_lm"
DEVICES = ("auto", "cuda", "cpu")


@dataclass
class LMOptions:
    """How to load the model: the options ``verify`` and ``chat`` share."""

    bits: int | None = None
    double_quant: bool = False
    device: str = "auto"
    max_memory: str | None = None
    trust_remote_code: bool = False
    max_new_tokens: int | None = None

    @classmethod
    def from_flags(cls, *, bits4: bool = False, bits8: bool = False, double_quant: bool = False,
                   device: str = "auto", cpu: bool = False, max_memory: str | None = None,
                   trust_remote_code: bool = False,
                   max_new_tokens: int | None = None) -> LMOptions:
        """Options from command-line flags, with the combinations that make no sense refused."""
        if bits4 and bits8:
            raise UsageError("--4bit and --8bit exclude each other", hint="Choose one.")
        if double_quant and not bits4:
            raise UsageError("--double-quant applies to --4bit only", hint="Add --4bit.")
        device = (device or "auto").lower()
        if device not in DEVICES:
            raise UsageError(f"--device {device}: expected one of {', '.join(DEVICES)}")
        if cpu and device == "cuda":
            raise UsageError("--cpu and --device cuda contradict each other")
        if max_new_tokens is not None and max_new_tokens < 1:
            raise UsageError("--max-new-tokens must be at least 1")
        return cls(bits=4 if bits4 else 8 if bits8 else None, double_quant=double_quant,
                   device="cpu" if cpu else device, max_memory=max_memory,
                   trust_remote_code=trust_remote_code, max_new_tokens=max_new_tokens)


def require_text_model(target: Target, settings: Settings) -> None:
    """Refuse a speech model, and a model that is not on disk, before starting Python."""
    if target.kind != "causal-lm":
        raise UsageError(
            f"{target.recipe.name} is a {target.kind} model, not a text generation model",
            hint="Use `llmsetup verify NAME --audio FILE` or `llmsetup transcribe` for speech "
            "models; `llmsetup list` shows each model's kind.")
    if not (target.model_dir / "config.json").is_file():
        hint = (f"Download it first: `llmsetup download {target.recipe.name}` "
                f"(or `llmsetup install {target.recipe.name}`).")
        if target.recipe.gated and settings.token("hf") is None:
            hint = ("The model is gated: accept its licence on Hugging Face, set HF_TOKEN, then "
                    f"`llmsetup download {target.recipe.name}`.")
        where = "holds no config.json" if target.model_dir.is_dir() else "does not exist"
        raise NotFoundError(f"{target.model_dir} {where}: the model is not downloaded", hint=hint)


def runtime_args(target: Target, opts: LMOptions) -> list[str]:
    """The loading options of ``causal_lm.py`` for ``target``."""
    recipe = target.recipe
    args = [str(target.model_dir), "--device", opts.device]
    if opts.bits:
        args.append(f"--{opts.bits}bit")
    if opts.double_quant:
        args.append("--double-quant")
    if opts.max_memory:
        args += ["--max-memory", opts.max_memory]
    if opts.trust_remote_code or recipe.trust_remote_code:
        args.append("--trust-remote-code")
    if recipe.chat_template_fallback:
        args += ["--chat-template-fallback", recipe.chat_template_fallback]
    memory = {k: v for k, v in recipe.memory_gb().items() if v}
    if memory:  # so that an out-of-memory error can say what 8-bit and 4-bit need
        args += ["--memory-gb", ",".join(f"{k}={v:g}" for k, v in memory.items())]
    return args


def log_path(settings: Settings, target: Target, command: str) -> Path:
    return settings.logs_dir / target.recipe.name / f"{command}.log"


def verify(target: Target, settings: Settings, python: str, opts: LMOptions,
           prompts: list[str] | None = None,
           on_event: Callable[[dict], None] | None = None, log: Path | None = None) -> dict:
    """Run the smoke test; return the result document (see docs/verify.md)."""
    require_text_model(target, settings)
    smoke = target.recipe.smoke
    args = ["verify", *runtime_args(target, opts),
            "--max-new-tokens", str(opts.max_new_tokens or smoke.max_new_tokens)]
    for prompt in prompts or smoke.prompts:
        args += ["--prompt", prompt]
    result = runner.run_module(python, MODULE, args,
                               log=log or log_path(settings, target, "verify"),
                               on_event=on_event)
    doc = {"target": target.recipe.name, "python": str(python)}
    doc.update({k: v for k, v in result.items() if k != "event"})
    return doc


def describe_quantization(quantization: dict) -> str:
    """``{"method": "nf4", ...}`` in words."""
    method = quantization.get("method", "none")
    if method == "nf4":
        extra = ", double quant" if quantization.get("double_quant") else ""
        return f"4-bit NF4, {quantization.get('compute_dtype')} compute{extra}"
    return {"llm.int8": "8-bit LLM.int8", "none": "full precision"}.get(method, method)


def progress_line(event: dict) -> str | None:
    """A progress event of the verifier as one line for people (None: nothing to say)."""
    stage = event.get("stage")
    if stage == "load":
        return event.get("message", "").replace("loading", "Loading", 1)
    if stage == "loaded":
        return (f"Loaded in {event['load_s']:.1f}s ({event['device']}, {event['dtype']}, "
                f"{describe_quantization(event['quantization'])})")
    if stage == "prompt":
        return f"Prompt {event['index']}/{event['total']}"
    if stage == "note":
        return f"Note: {event['message']}"
    return None


def chat(target: Target, settings: Settings, python: str, opts: LMOptions, *,
         system: str | None = None, temperature: float = 0.7, top_p: float = 0.9,
         stream: bool = True) -> int:
    """Run the chat REPL on this terminal; return its exit status."""
    require_text_model(target, settings)
    if temperature < 0 or not 0 < top_p <= 1:
        raise UsageError("--temperature must be 0 or more and --top-p in (0, 1]",
                         hint="--temperature 0 answers greedily (the same answer every time).")
    args = ["chat", *runtime_args(target, opts), "--temperature", str(temperature),
            "--top-p", str(top_p)]
    if opts.max_new_tokens:
        args += ["--max-new-tokens", str(opts.max_new_tokens)]
    if system:
        args += ["--system", system]
    if not stream:
        args.append("--no-stream")
    return runner.run_module_interactive(python, MODULE, args, events=True)
