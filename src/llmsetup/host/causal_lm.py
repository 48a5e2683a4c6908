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
from llmsetup.i18n import _
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
            raise UsageError(_("--4bit and --8bit exclude each other"), hint=_("Choose one."))
        if double_quant and not bits4:
            raise UsageError(_("--double-quant applies to --4bit only"), hint=_("Add --4bit."))
        device = (device or "auto").lower()
        if device not in DEVICES:
            raise UsageError(_("--device {device}: expected one of {choices}").format(
                device=device, choices=", ".join(DEVICES)))
        if cpu and device == "cuda":
            raise UsageError(_("--cpu and --device cuda contradict each other"))
        if max_new_tokens is not None and max_new_tokens < 1:
            raise UsageError(_("--max-new-tokens must be at least 1"))
        return cls(bits=4 if bits4 else 8 if bits8 else None, double_quant=double_quant,
                   device="cpu" if cpu else device, max_memory=max_memory,
                   trust_remote_code=trust_remote_code, max_new_tokens=max_new_tokens)


def require_text_model(target: Target, settings: Settings) -> None:
    """Refuse a speech model, and a model that is not on disk, before starting Python."""
    if target.kind != "causal-lm":
        raise UsageError(
            _("{name} is a {kind} model, not a text generation model").format(
                name=target.recipe.name, kind=target.kind),
            hint=_("Use `llmsetup verify NAME --audio FILE` or `llmsetup transcribe` for speech "
                   "models; `llmsetup list` shows each model's kind."))
    if not (target.model_dir / "config.json").is_file():
        name = target.recipe.name
        hint = _("Download it first: `llmsetup download {name}` "
                 "(or `llmsetup install {name}`).").format(name=name)
        if target.recipe.gated and settings.token("hf") is None:
            hint = _("The model is gated: accept its licence on Hugging Face, set HF_TOKEN, "
                     "then `llmsetup download {name}`.").format(name=name)
        if target.model_dir.is_dir():
            message = _("{path} holds no config.json: the model is not downloaded")
        else:
            message = _("{path} does not exist: the model is not downloaded")
        raise NotFoundError(message.format(path=target.model_dir), hint=hint)


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
        if quantization.get("double_quant"):
            return _("4-bit NF4, {dtype} compute, double quant").format(
                dtype=quantization.get("compute_dtype"))
        return _("4-bit NF4, {dtype} compute").format(dtype=quantization.get("compute_dtype"))
    if method == "llm.int8":
        return _("8-bit LLM.int8")
    if method == "none":
        return _("full precision")
    return method


def progress_line(event: dict) -> str | None:
    """A progress event of the verifier as one line for people (None: nothing to say)."""
    stage = event.get("stage")
    if stage == "load":
        if "model" in event:
            return _("Loading {model}").format(model=event["model"])
        return event.get("message", "").replace("loading", "Loading", 1)
    if stage == "loaded":
        return _("Loaded in {seconds:.1f}s ({device}, {dtype}, {quantization})").format(
            seconds=event["load_s"], device=event["device"], dtype=event["dtype"],
            quantization=describe_quantization(event["quantization"]))
    if stage == "prompt":
        return _("Prompt {index}/{total}").format(index=event["index"], total=event["total"])
    if stage == "note":
        return _("Note: {message}").format(message=note_text(event))
    return None


def note_text(event: dict) -> str:
    """A runtime note in words: the runtime's (English) message, or, for the notes whose
    facts it sends along, the sentence in the user's language."""
    if event.get("note") == "budget":
        return _("prompt {index}: max_new_tokens {wanted} does not fit the model's context of "
                 "{context} tokens after the {prompt_tokens}-token prompt: using {budget}"
                 ).format(index=event["index"], wanted=event["wanted"],
                          context=event["context"], prompt_tokens=event["prompt_tokens"],
                          budget=event["budget"])
    return str(event.get("message", ""))


def chat(target: Target, settings: Settings, python: str, opts: LMOptions, *,
         system: str | None = None, temperature: float = 0.7, top_p: float = 0.9,
         stream: bool = True) -> int:
    """Run the chat REPL on this terminal; return its exit status."""
    require_text_model(target, settings)
    if temperature < 0 or not 0 < top_p <= 1:
        raise UsageError(_("--temperature must be 0 or more and --top-p in (0, 1]"),
                         hint=_("--temperature 0 answers greedily (the same answer every "
                                "time)."))
    args = ["chat", *runtime_args(target, opts), "--temperature", str(temperature),
            "--top-p", str(top_p)]
    if opts.max_new_tokens:
        args += ["--max-new-tokens", str(opts.max_new_tokens)]
    if system:
        args += ["--system", system]
    if not stream:
        args.append("--no-stream")
    return runner.run_module_interactive(python, MODULE, args, events=True)
