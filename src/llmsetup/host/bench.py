"""``llmsetup bench``: speed and memory of a model, measured in its own environment.

Each precision runs in a fresh process (``runtime/bench.py``), so each peak-memory figure
is its own. With ``--random-weights`` the recipe's exact architecture (its ``config.json``
values ship in the recipe) gets random weights written to a temporary checkpoint: decode
speed and memory depend on the shapes, not on the values, so a 7B benchmark needs no
download. ``--tiny`` shrinks the architecture for quick checks (the tests use it).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llmsetup.errors import UsageError
from llmsetup.host.runner import run_module
from llmsetup.i18n import _
from llmsetup.settings import Settings

PRECISIONS = {"full": 0, "int8": 8, "int4": 4}
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "speech" / "en.wav"


@dataclass
class BenchOptions:
    precisions: list[str] = field(default_factory=lambda: ["full"])
    prompt_tokens: int = 128
    new_tokens: int | None = None  # causal: 128; speech: the recipe's max_new_tokens
    batch_size: int = 8
    random_weights: bool = False
    tiny: bool = False
    overrides: dict = field(default_factory=dict)
    compile: bool = False
    attn: str | None = None  # sdpa, eager, or "compare" (both, with the speedup)
    device: str = "auto"
    audio_seconds: float = 60.0
    asr_batch_sizes: list[int] | None = None
    keep_weights: bool = False


def shrink(architecture: dict) -> dict:
    """The same architecture family at a size a CPU test runs in seconds."""
    arch = dict(architecture)
    if arch.get("model_type") == "whisper":
        arch.update(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                    decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128)
        return arch
    heads = arch.get("num_attention_heads", 4)
    kv = arch.get("num_key_value_heads", heads)
    arch.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=1 if kv == 1 else 4 if kv == heads
                else 2)
    if "head_dim" in arch:
        arch["head_dim"] = 16
    return arch


def parse_overrides(items: list[str]) -> dict:
    found: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(_("--override {item!r}: expected KEY=VALUE").format(item=item),
                             hint=_("e.g. --override num_hidden_layers=4"))
        try:
            found[key.strip()] = json.loads(value)
        except ValueError:
            found[key.strip()] = value
    return found


def _checkpoint(target, settings: Settings, python: str, opts: BenchOptions,
                on_event) -> tuple[Path, dict]:
    recipe = target.recipe
    if not recipe.architecture:
        raise UsageError(_("{name} has no architecture to build random weights from").format(
                             name=recipe.name),
                         hint=_("Benchmark a downloaded model instead (without "
                                "--random-weights)."))
    arch = shrink(recipe.architecture) if opts.tiny else dict(recipe.architecture)
    arch.update(opts.overrides)
    digest = hashlib.sha256(json.dumps(arch, sort_keys=True).encode()).hexdigest()[:12]
    folder = settings.home / "cache" / "random-weights" / f"{recipe.name}-{digest}"
    if not (folder / "config.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            run_module(python, "bench", ["random-checkpoint", str(tmp / "model"),
                                         "--architecture", json.dumps(arch)],
                       log=settings.logs_dir / f"bench-{recipe.name}.log", on_event=on_event)
            (tmp / "model").rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder, arch


def _causal_args(model: Path, opts: BenchOptions, bits: int, *, attn: str | None = None,
                 compile_: bool = False) -> list[str]:
    args = ["causal", "--model", str(model), "--bits", str(bits), "--device", opts.device,
            "--prompt-tokens", str(opts.prompt_tokens), "--new-tokens", str(opts.new_tokens or 128),
            "--batch-size", str(opts.batch_size)]
    if attn:
        args += ["--attn", attn]
    if compile_:
        args.append("--compile")
    return args


def _speedup(fast: dict, slow: dict) -> float:
    return round(fast["runs"][0]["decode_tokens_per_s"] / slow["runs"][0]["decode_tokens_per_s"],
                 3)


def run_bench(target, settings: Settings, python: str, opts: BenchOptions,
              on_event: Callable[[dict], None] | None = None) -> dict:
    """Measure ``target``; one JSON-ready document with every run."""
    model = target.model_dir
    arch = None
    if opts.random_weights:
        model, arch = _checkpoint(target, settings, python, opts, on_event)
    elif not (model / "config.json").is_file():
        raise UsageError(_("no model at {path}").format(path=model),
                         hint=_("Download it first, or benchmark its architecture with random "
                                "weights: `llmsetup bench {name} --random-weights`.").format(
                             name=target.recipe.name))
    log = settings.logs_dir / f"bench-{target.recipe.name}.log"
    doc: dict = {"target": target.recipe.name, "kind": target.kind, "model_dir": str(model),
                 "random_weights": opts.random_weights, "architecture": arch, "results": [],
                 "speedups": {}}
    try:
        if target.kind == "asr":
            audio = target.recipe.smoke.audio
            sizes = opts.asr_batch_sizes or [audio.batch_size, audio.batch_size * 2]
            doc["results"].append(run_module(python, "bench", [
                "asr", "--model", str(model), "--audio", str(SAMPLE), "--seconds",
                str(opts.audio_seconds), "--batch-sizes", ",".join(map(str, sizes)),
                "--new-tokens", str(opts.new_tokens or audio.max_new_tokens),
                "--device", opts.device],
                log=log, on_event=on_event))
            return doc
        attn = None if opts.attn == "compare" else opts.attn
        for precision in opts.precisions:
            result = run_module(python, "bench", _causal_args(model, opts,
                                                              PRECISIONS[precision], attn=attn),
                                log=log, on_event=on_event)
            doc["results"].append({"precision": precision, **result})
        plain = next((r for r in doc["results"] if r["precision"] == "full"), None)
        if opts.attn == "compare":
            eager = run_module(python, "bench", _causal_args(model, opts, 0, attn="eager"),
                               log=log, on_event=on_event)
            sdpa = plain if plain and plain.get("attn") == "sdpa" else run_module(
                python, "bench", _causal_args(model, opts, 0, attn="sdpa"), log=log,
                on_event=on_event)
            doc["results"] += [{"precision": "full", "variant": "eager", **eager}]
            doc["speedups"]["sdpa_over_eager"] = _speedup(sdpa, eager)
        if opts.compile:
            base = plain or run_module(python, "bench", _causal_args(model, opts, 0), log=log,
                                       on_event=on_event)
            compiled = run_module(python, "bench", _causal_args(model, opts, 0, compile_=True),
                                  log=log, on_event=on_event)
            doc["results"].append({"precision": "full", "variant": "compile", **compiled})
            doc["speedups"]["compile_over_plain"] = _speedup(compiled, base)
        return doc
    finally:
        if opts.random_weights and not opts.keep_weights:
            shutil.rmtree(model, ignore_errors=True)
