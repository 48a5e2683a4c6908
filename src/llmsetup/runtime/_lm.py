"""Load a causal LM and build its prompts: shared by ``causal_lm.py verify`` and ``chat``.

Choices, and why they differ from the book's ``gemma-inference.py``:

- **Precision.** On CUDA the weights load in half precision: bf16 when the checkpoint is
  bf16 and the GPU supports it (Gemma overflows in fp16), else fp16. The book's script
  loads in fp32 (the transformers default), which doubles the memory for no gain at
  inference. On the CPU everything stays fp32, which the CPU runs fastest and exactly.
- **8-bit** is LLM.int8 (``load_in_8bit``), as in the book.
- **4-bit** is NF4 with a half-precision compute dtype (bf16 where the device supports it,
  else fp16) and optional double quantization. The book's ``load_in_4bit=True`` alone
  gives FP4 with fp32 compute: lower quality than NF4 and several times slower.
- **Placement.** ``device_map="auto"`` on CUDA so that several GPUs share a large model,
  with ``--max-memory`` passed through; on the CPU the model stays whole in RAM.
- **Safety.** safetensors are preferred whenever the folder has them (no pickle), custom
  model code runs only with ``--trust-remote-code``, and nothing is fetched from the
  network: the folder must be complete (``_model_folder`` checks it first).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

if __package__:
    from . import _i18n, _model_folder, _rt, templates
else:
    import _i18n
    import _model_folder
    import _rt
    import templates

# Fixed hints are marked with N_ for the catalog: the JSON event carries them in English,
# and the host shows them in the user's language (host/runner.py).
N_ = _i18n.N_

# Turn-end markers of common chat formats (Gemma, ChatML, Llama 3, Phi-3); each is used
# only when the template in use contains it.
KNOWN_STOP_MARKERS = ["<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>"]
DEFAULT_CONTEXT = 2048


@dataclass
class LoadOptions:
    """What the user asked for; see :func:`load`."""

    device: str = "auto"
    bits: int | None = None  # None (full precision), 8 or 4
    double_quant: bool = False
    max_memory: dict | None = None
    trust_remote_code: bool = False
    chat_template_fallback: str | None = None
    memory_gb: dict = field(default_factory=dict)  # the recipe's needs per precision


@dataclass
class Loaded:
    """A loaded model and everything needed to prompt it."""

    tokenizer: object
    model: object
    path: Path
    device: str
    dtype: str
    quantization: dict
    device_map: dict | None
    template: str | None  # Jinja text to pass, None for the tokenizer's own
    template_source: str  # "tokenizer" or "fallback:<name>"
    eos_ids: list[int]
    stop_texts: list[str]
    bad_ids: set[int]  # pad/unk: a model that emits them has broken (NaN) logits
    context_length: int
    load_s: float


def parse_max_memory(spec: str | None) -> dict | None:
    """``0=10GiB,cpu=30GiB`` -> ``{0: "10GiB", "cpu": "30GiB"}`` (accelerate's format)."""
    if not spec:
        return None
    result: dict = {}
    for part in spec.split(","):
        key, sep, value = part.strip().partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value or not (key.isdigit() or key in ("cpu", "disk", "mps")):
            raise _rt.Failure(
                "bad-input", f"--max-memory {spec!r}: cannot read {part.strip()!r}",
                N_("Write DEVICE=SIZE pairs separated by commas, e.g. 0=10GiB,1=10GiB,cpu=30GiB."),
                exit_code=2)
        result[int(key) if key.isdigit() else key] = value
    return result


def parse_memory_gb(spec: str | None) -> dict:
    """``fp16=13,int8=9,int4=5`` (the recipe's figures, passed by the host) -> dict."""
    found: dict = {}
    for part in (spec or "").split(","):
        key, _sep, value = part.partition("=")
        try:
            found[key.strip()] = float(value)
        except ValueError:
            continue
    return found


def oom_failure(exc: BaseException, bits: int | None, memory_gb: dict) -> _rt.Failure:
    """Out of GPU memory: say which lighter precision to try and what it needs."""
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    options = []
    for flag, key, level in (("--8bit", "int8", 8), ("--4bit", "int4", 4)):
        if bits is None or level < bits:
            need = memory_gb.get(key)
            options.append(f"{flag} (about {need:g} GB)" if need else flag)
    if options:
        hint = ("Load it smaller: " + " or ".join(options) + ". `llmsetup doctor NAME` shows "
                "what fits; --max-memory 0=XGiB,cpu=YGiB offloads part of it to RAM.")
    else:
        hint = N_("It does not fit even in 4-bit: close other programs on the GPU, use "
                  "--max-memory 0=XGiB,cpu=YGiB to offload layers to RAM, or use a bigger GPU.")
    return _rt.Failure("oom", f"out of GPU memory: {first}", hint)


def _dtypes(torch, device: str, bits: int | None, config: dict):
    """(weights dtype, 4-bit compute dtype) for this device and precision."""
    if device == "cpu":
        # fp32: exact, and every CPU op has it. NF4 computes in bf16, the dtype that
        # bitsandbytes' CPU 4-bit kernels work in (they convert their input to it anyway).
        return torch.float32, torch.bfloat16
    wants_bf16 = str(config.get("torch_dtype") or config.get("dtype")) == "bfloat16"
    bf16_ok = torch.cuda.is_bf16_supported()
    half = torch.bfloat16 if (wants_bf16 and bf16_ok) else torch.float16
    compute = torch.bfloat16 if bf16_ok else torch.float16
    if bits == 8:
        half = torch.float16  # LLM.int8 works on fp16 activations
    return half, compute


def _bnb_has_cpu_kernels() -> bool:
    """bitsandbytes ships a CPU backend (0.46 on); the book's 0.42 has CUDA kernels only."""
    try:
        return importlib.util.find_spec("bitsandbytes.backends.cpu") is not None
    except ModuleNotFoundError:  # no bitsandbytes.backends at all
        return False


def _quantization(bits: int | None, double_quant: bool, compute, cpu_offload: bool,
                  device: str = "cuda"):
    """A BitsAndBytesConfig and its description, or (None, {"method": "none"})."""
    if bits is None:
        return None, {"method": "none"}
    try:
        import bitsandbytes  # (fail here, with advice, not deep in transformers)
    except ImportError as exc:
        raise _rt.Failure(
            "no-bitsandbytes", f"--{bits}bit needs bitsandbytes, which this environment "
            f"cannot import ({exc})",
            N_("Install the recipe's profile again (`llmsetup install NAME`), or "
               "`pip install bitsandbytes` in the model's environment.")) from None
    if device == "cpu" and not _bnb_has_cpu_kernels():
        # The book's bitsandbytes 0.42 has CUDA kernels only; transformers then fails with a
        # misleading "requires Accelerate and the latest version of bitsandbytes".
        version = getattr(bitsandbytes, "__version__", "?")
        raise _rt.Failure(
            "bnb-no-cpu", f"bitsandbytes {version} (in this environment) quantizes on a CUDA "
            "GPU only: it has no CPU kernels, so --8bit/--4bit cannot run on the CPU",
            N_("On a CPU: install the modern profile (`llmsetup install NAME --profile modern`, "
               "a bitsandbytes with CPU kernels), or drop --8bit/--4bit."), exit_code=2)
    from transformers import BitsAndBytesConfig

    if bits == 8:
        # On the CPU, LLM.int8 logs one line per layer per token about casting its fp32
        # input to fp16: thousands of lines in the verify log that say nothing new.
        logging.getLogger("bitsandbytes.autograd._functions").addFilter(
            lambda record: "will be cast from" not in record.getMessage())
        return (BitsAndBytesConfig(load_in_8bit=True,
                                   llm_int8_enable_fp32_cpu_offload=cpu_offload),
                {"method": "llm.int8", "bits": 8})
    return (BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                               bnb_4bit_compute_dtype=compute,
                               bnb_4bit_use_double_quant=double_quant),
            {"method": "nf4", "bits": 4, "compute_dtype": str(compute).replace("torch.", ""),
             "double_quant": double_quant})


def _load_error(exc: Exception, path: Path, opts: LoadOptions) -> _rt.Failure | None:
    """Errors of from_pretrained that we can explain."""
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if "outofmemory" in low.replace(" ", "") or "out of memory" in low \
            or "dispatched on the cpu or the disk" in low:
        return oom_failure(exc, opts.bits, opts.memory_gb)
    if "a gpu is needed for quantization" in low:
        return _rt.Failure(
            "bnb-no-cuda", f"this transformers/bitsandbytes can quantize only on a GPU: "
            f"{text[:200]}",
            N_("Run without --8bit/--4bit on the CPU, or use the modern profile (a current "
               "bitsandbytes and transformers quantize on the CPU too)."))
    if "untagged enum modelwrapper" in low or \
            ("tokenizer class" in low and "does not exist" in low):
        import tokenizers
        import transformers

        return _rt.Failure(
            "saved-by-newer", f"{path}: its tokenizer was saved by a newer transformers or "
            f"tokenizers than this environment has (transformers {transformers.__version__}, "
            f"tokenizers {tokenizers.__version__}): {text[:160]}",
            N_("Run it in an environment of the modern profile (`llmsetup install NAME --profile "
               "modern`), or use a copy of the model saved for these versions."), exit_code=2)
    if "unrecognized configuration class" in low or "unrecognized model" in low:
        return _rt.Failure("wrong-kind", f"{path}: not a causal language model ({text[:200]})",
                           None, exit_code=2)
    if "safetensor" in low and ("incomplete" in low or "deserializ" in low):
        return _rt.Failure("incomplete-model", f"{path}: a weight file is damaged: {text[:200]}",
                           _model_folder.INCOMPLETE_HINT, exit_code=2)
    return _rt.classify(exc)


def _template(tokenizer, fallback: str | None) -> tuple[str | None, str, str]:
    """(template to pass, where it came from, its text) for ``apply_chat_template``."""
    own = getattr(tokenizer, "chat_template", None)
    if own:
        text = own if isinstance(own, str) else " ".join(str(v) for v in dict(own).values())
        return None, "tokenizer", text
    name = fallback or "plain"
    return templates.TEMPLATES[name], f"fallback:{name}", templates.TEMPLATES[name]


def _stops(tokenizer, model, template_text: str, fallback: str | None
           ) -> tuple[list[int], list[str]]:
    """Token ids that end an answer, and marker texts that are not single tokens.

    Besides the eos tokens, a turn-end marker of the template in use ends the answer: some
    checkpoints (the first Gemma instruct releases) list only ``<eos>`` in their generation
    config and would otherwise run on past ``<end_of_turn>`` into an invented next turn.
    """
    eos: list[int] = []
    configured = model.generation_config.eos_token_id
    for value in (configured if isinstance(configured, list) else [configured],
                  [tokenizer.eos_token_id]):
        eos += [int(v) for v in value if v is not None and int(v) not in eos]
    markers = [m for m in KNOWN_STOP_MARKERS if m in template_text]
    markers += [m for m in templates.STOP_MARKERS.get(fallback or "", []) if m not in markers]
    vocab = tokenizer.get_vocab()
    texts = []
    for marker in markers:
        if marker in vocab and vocab[marker] != tokenizer.unk_token_id:
            if vocab[marker] not in eos:
                eos.append(int(vocab[marker]))
        else:
            texts.append(marker)
    return eos, texts


def _context_length(model, tokenizer) -> int:
    config = model.config
    limits = [getattr(config, name, None) for name in
              ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")]
    model_max = getattr(tokenizer, "model_max_length", None)
    limits.append(model_max if model_max and model_max < 10**7 else None)
    found = [int(v) for v in limits if isinstance(v, int) and v > 0]
    return min(found) if found else DEFAULT_CONTEXT


def model_kwargs(torch, device: str, opts: LoadOptions, config: dict,
                 safetensors: bool) -> tuple[dict, dict]:
    """``from_pretrained`` keyword arguments for ``opts`` on ``device``, and the quantization
    description (shared with the benchmark, so both load models the same way)."""
    dtype, compute = _dtypes(torch, device, opts.bits, config)
    cpu_offload = bool(opts.max_memory and "cpu" in opts.max_memory)
    quant_config, quant = _quantization(opts.bits, opts.double_quant, compute, cpu_offload,
                                        device)
    kwargs: dict = {"trust_remote_code": opts.trust_remote_code}
    kwargs["dtype" if _rt.transformers_at_least("4.56") else "torch_dtype"] = dtype
    if safetensors:
        kwargs["use_safetensors"] = True
    if quant_config is not None:
        kwargs["quantization_config"] = quant_config
    if device == "cuda":
        kwargs["device_map"] = "auto"
        if opts.max_memory:
            kwargs["max_memory"] = opts.max_memory
    elif quant_config is not None:
        kwargs["device_map"] = {"": "cpu"}  # bitsandbytes places quantized weights itself
    return kwargs, quant


def load(path: Path, opts: LoadOptions) -> Loaded:
    """Check the folder, then load tokenizer and model as ``opts`` says."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder only: never download
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    info = _model_folder.inspect(path, opts.trust_remote_code)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = _rt.resolve_device(opts.device)
    kwargs, quant = model_kwargs(torch, device, opts, info["config"], info["safetensors"])
    quant_config = kwargs.get("quantization_config")
    timer = _rt.Timer()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path),
                                                  trust_remote_code=opts.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    except Exception as exc:
        failure = _load_error(exc, path, opts)
        if failure is None:
            raise
        raise failure from None
    model.eval()
    load_s = timer.elapsed()
    if quant_config is not None:  # proof that bitsandbytes really replaced the layers
        quant["layers"] = sum(1 for m in model.modules()
                              if type(m).__module__.startswith("bitsandbytes"))
    template, source, template_text = _template(tokenizer, opts.chat_template_fallback)
    eos_ids, stop_texts = _stops(tokenizer, model, template_text,
                                 source.partition(":")[2] or None)
    bad = {tokenizer.pad_token_id, tokenizer.unk_token_id} - {None, *eos_ids}
    device_map = getattr(model, "hf_device_map", None)
    return Loaded(
        tokenizer=tokenizer, model=model, path=path, device=device,
        dtype=str(model.dtype).replace("torch.", ""), quantization=quant,
        device_map={str(k): str(v) for k, v in device_map.items()} if device_map else None,
        template=template, template_source=source, eos_ids=eos_ids, stop_texts=stop_texts,
        bad_ids={int(i) for i in bad}, context_length=_context_length(model, tokenizer),
        load_s=round(load_s, 3),
    )


def prompt_ids(loaded: Loaded, messages: list[dict]) -> list[int]:
    """``messages`` through the chat template, as token ids ready for the model.

    The template is rendered to text and tokenized here (``tokenize=False``) because
    ``apply_chat_template`` returns a dict in transformers 5 and a list in 4.x. Templates
    that reject a system turn (Gemma's own) get the system text in front of the first user
    turn instead.
    """
    tok = loaded.tokenizer
    try:
        text = tok.apply_chat_template(messages, chat_template=loaded.template, tokenize=False,
                                       add_generation_prompt=True)
    except Exception:  # jinja2 raises TemplateError for "system role not supported"
        if not messages or messages[0]["role"] != "system" or len(messages) < 2:
            raise
        merged = [{"role": messages[1]["role"],
                   "content": messages[0]["content"] + "\n\n" + messages[1]["content"]},
                  *messages[2:]]
        text = tok.apply_chat_template(merged, chat_template=loaded.template, tokenize=False,
                                       add_generation_prompt=True)
    ids = list(tok(text, add_special_tokens=False)["input_ids"])
    bos = tok.bos_token_id
    # Templates without a BOS (chatml, plain) still need one on models trained with it.
    if bos is not None and ids[:1] != [bos] and tok("a")["input_ids"][:1] == [bos]:
        ids.insert(0, bos)
    return ids
