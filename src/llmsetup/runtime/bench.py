"""Benchmarks inside the model's environment: speed and memory of causal LMs and Whisper.

Subcommands (each prints one JSON ``result`` event; see ``_rt.py``):

- ``random-checkpoint OUT --architecture JSON``: the architecture's exact shapes with
  random weights, written as safetensors shards, so that a 7B benchmark needs no download.
  Decode speed and memory depend on the shapes, not on the values.
- ``causal --model DIR [--bits 8|4] ...``: load time, time to first token, decode tokens/s
  at batch 1 and at ``--batch-size``, peak memory, weight bytes and, on a known GPU, the
  memory-bandwidth roofline (bandwidth / bytes read per token) and the fraction reached.
  Generation always runs the full ``--new-tokens`` (EOS ignored) so numbers compare.
- ``asr --model DIR --audio WAV``: real-time factor of Whisper over a fixed-length clip, at
  each of ``--batch-sizes``, decoding the full ``--new-tokens`` in every 30 s window.

The host runs one process per precision so that each peak-memory figure is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import wave
from pathlib import Path

if __package__:
    from . import _lm, _rt
else:
    import _lm
    import _rt

# Peak memory bandwidth in GB/s of common GPUs (datasheet figures), matched by name.
GPU_BANDWIDTH_GBS = [
    ("H200", 4800), ("H100 SXM", 3350), ("H100 NVL", 3900), ("H100 PCIe", 2000),
    ("H100", 3350), ("H800", 3350), ("H20", 4000), ("B200", 8000), ("GH200", 4000),
    ("A100-SXM4-80GB", 2039), ("A100 80GB PCIe", 1935), ("A100-SXM4-40GB", 1555),
    ("A100-PCIE-40GB", 1555), ("A100", 1555), ("A800", 2039), ("A10G", 600), ("A10", 600),
    ("A30", 933), ("A40", 696), ("A6000", 768), ("L40S", 864), ("L40", 864), ("L20", 864),
    ("L4", 300), ("T4", 320), ("V100", 900), ("RTX 5090", 1792), ("RTX 4090", 1008),
    ("RTX 4080", 717), ("RTX 3090", 936), ("RTX 3080", 760), ("RTX 3060", 360),
]
WINDOW_S = 30
SAMPLE_RATE = 16000


def gpu_bandwidth(name: str) -> float | None:
    for key, gbs in GPU_BANDWIDTH_GBS:
        if key.lower() in name.lower():
            return float(gbs)
    return None


# -- random weights ---------------------------------------------------------------------


def _model_class(model_type: str):
    if model_type == "whisper":
        from transformers import WhisperForConditionalGeneration

        return WhisperForConditionalGeneration
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM


def random_checkpoint(out: Path, architecture: dict, dtype_name: str, seed: int,
                      shard_gb: float = 2.0) -> dict:
    """Write random weights of ``architecture``'s exact shapes to ``out`` (safetensors)."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig

    arch = dict(architecture)
    model_type = arch.pop("model_type")
    arch.pop("architectures", None)
    arch.pop("torch_dtype", None)
    config = AutoConfig.for_model(model_type, **arch)
    config.torch_dtype = dtype_name
    cls = _model_class(model_type)
    with torch.device("meta"):
        model = cls.from_config(config) if hasattr(cls, "from_config") else cls(config)
    # named_parameters() drops tied duplicates (lm_head sharing the embedding): the
    # checkpoint holds each tensor once, as a real one does.
    tensors = dict(model.named_parameters())
    buffers = {n: b for n, b in model.named_buffers() if n in model.state_dict()}
    dtype = getattr(torch, dtype_name)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator(device=device).manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    shard: dict = {}
    shard_bytes = 0
    weight_map: dict = {}
    files: list[str] = []
    total = 0

    def flush() -> None:
        nonlocal shard, shard_bytes
        if shard:
            name = f"model-{len(files) + 1:05d}.safetensors"
            save_file(shard, str(out / name), metadata={"format": "pt"})
            files.append(name)
            weight_map.update({k: name for k in shard})
            shard, shard_bytes = {}, 0

    for name, meta in {**tensors, **buffers}.items():
        if name in buffers:
            value = torch.zeros(meta.shape, dtype=meta.dtype)
        elif meta.dim() == 1 and ("norm" in name or "ln" in name.split(".")[-2:][0]):
            value = torch.ones(meta.shape, dtype=dtype)
        elif name.endswith("bias"):
            value = torch.zeros(meta.shape, dtype=dtype)
        else:
            value = (torch.randn(meta.shape, generator=gen, device=device) * 0.02).to(dtype)
        value = value.cpu().contiguous()
        nbytes = value.numel() * value.element_size()
        if shard and shard_bytes + nbytes > shard_gb * 1e9:
            flush()
        shard[name] = value
        shard_bytes += nbytes
        total += nbytes
    flush()
    if len(files) == 1:
        os.replace(out / files[0], out / "model.safetensors")
    else:
        (out / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1))
    config.save_pretrained(str(out))
    return {"path": str(out), "bytes": total, "shards": len(files),
            "parameters": sum(t.numel() for t in tensors.values())}


# -- causal LM --------------------------------------------------------------------------


def _sync(torch, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def load_causal(path: Path, device: str, bits: int | None, attn: str | None):
    import torch
    from transformers import AutoModelForCausalLM

    config = json.loads((path / "config.json").read_text())
    opts = _lm.LoadOptions(device=device, bits=bits)
    kwargs, quant = _lm.model_kwargs(torch, device, opts, config, safetensors=True)
    if device == "cuda":
        kwargs["device_map"] = {"": 0}  # one GPU: the numbers are that GPU's
    if attn:
        kwargs["attn_implementation"] = attn
    timer = _rt.Timer()
    model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    model.eval()
    _sync(torch, device)
    return model, quant, timer.elapsed()


def weight_bytes(model) -> int:
    seen, total = set(), 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        key = tensor.data_ptr() if tensor.device.type != "meta" else id(tensor)
        if key in seen:
            continue
        seen.add(key)
        total += tensor.numel() * tensor.element_size()
    return total


def _generate_s(torch, model, ids, new_tokens: int, device: str) -> float:
    pad = model.config.pad_token_id
    pad = pad if pad is not None else 0
    _sync(torch, device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             do_sample=False, max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, pad_token_id=pad)
    _sync(torch, device)
    elapsed = time.perf_counter() - start
    if out.shape[1] - ids.shape[1] != new_tokens:  # the numbers would not compare
        raise _rt.Failure("bench", f"generated {out.shape[1] - ids.shape[1]} tokens, not "
                          f"{new_tokens}")
    return elapsed


def measure_causal(model, device: str, prompt_tokens: int, new_tokens: int,
                   batch_sizes: list[int], seed: int = 0, compiled: bool = False) -> list[dict]:
    """Time to first token and decode speed at each batch size (after a warm-up).

    A compiled model is warmed up with exactly the generations that are timed: torch.compile
    specialises on shapes, and the static KV cache is as long as the generation, so any
    other length would leave the compilation itself inside the timed runs."""
    import torch

    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(seed)
    target = next(model.parameters()).device
    rows = []
    for batch in batch_sizes:
        ids = torch.randint(3, vocab, (batch, prompt_tokens), generator=gen).to(target)
        for warm in ((1, new_tokens) if compiled else (2,)):  # kernels, caches, allocator
            _generate_s(torch, model, ids, warm, device)
        ttft = min(_generate_s(torch, model, ids, 1, device) for _ in range(2))
        total = _generate_s(torch, model, ids, new_tokens, device)
        decode_s = max(total - ttft, 1e-9)
        rows.append({"batch_size": batch, "ttft_s": round(ttft, 4), "total_s": round(total, 4),
                     "decode_tokens_per_s": round(batch * (new_tokens - 1) / decode_s, 2),
                     "decode_tokens_per_s_per_sequence": round((new_tokens - 1) / decode_s, 2)})
        _rt.emit("progress", what="causal", **rows[-1])
    return rows


def enable_compile(model) -> str:
    """Static KV cache and torch.compile where the installed transformers supports them."""
    import torch

    if not _rt.transformers_at_least("4.38"):
        raise _rt.Failure("unsupported", "static cache needs transformers 4.38 or later")
    model.generation_config.cache_implementation = "static"
    model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
    return "static cache + torch.compile(reduce-overhead)"


def run_causal(args) -> dict:
    import torch

    device = _rt.resolve_device(args.device)
    bits = args.bits or None
    with _rt.peak_memory(device) as peak:
        model, quant, load_s = load_causal(args.model, device, bits, args.attn)
        speedup = None
        if args.compile:
            speedup = enable_compile(model)
        sizes = sorted({1, args.batch_size})
        rows = measure_causal(model, device, args.prompt_tokens, args.new_tokens, sizes,
                              compiled=bool(args.compile))
    result = {
        "model": str(args.model), "device": device, "bits": bits, "quantization": quant,
        "dtype": str(model.dtype).replace("torch.", ""), "attn": getattr(
            model.config, "_attn_implementation", None), "compile": speedup,
        "load_s": round(load_s, 3), "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens, "runs": rows, "weights_bytes": weight_bytes(model),
        **peak, "versions": _rt.versions(),
    }
    if device == "cuda":
        name = torch.cuda.get_device_name(0)
        gbs = args.gpu_bandwidth or gpu_bandwidth(name)
        result["gpu"] = name
        if gbs:
            roof = gbs * 1e9 / result["weights_bytes"]
            b1 = rows[0]["decode_tokens_per_s"]
            result["roofline"] = {"bandwidth_gbs": gbs, "tokens_per_s": round(roof, 1),
                                  "fraction": round(b1 / roof, 3)}
    return result


# -- Whisper ----------------------------------------------------------------------------


def read_wav(path: Path):
    """16-bit PCM WAV -> float32 mono samples at 16 kHz (the bundled samples are that)."""
    import numpy as np

    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getframerate() != SAMPLE_RATE:
            raise _rt.Failure("bad-audio", f"{path}: expected 16 kHz 16-bit PCM WAV",
                              exit_code=2)
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        if wav.getnchannels() > 1:
            data = data.reshape(-1, wav.getnchannels()).mean(axis=1)
    return data.astype("float32") / 32768.0


def windows(samples, seconds: float) -> list:
    """The clip repeated to ``seconds``, cut into 30 s windows."""
    import numpy as np

    need = int(seconds * SAMPLE_RATE)
    reps = -(-need // len(samples))
    clip = np.tile(samples, reps)[:need]
    step = WINDOW_S * SAMPLE_RATE
    return [clip[i:i + step] for i in range(0, need, step)]


def _decode_windows(torch, model, extractor, chunks: list, batch: int, device: str, dtype,
                    new_tokens: int) -> float:
    """Seconds to run every 30 s window through encoder and full-length decoding."""
    from transformers.generation.utils import GenerationMixin

    start_id = model.config.decoder_start_token_id
    _sync(torch, device)
    began = time.perf_counter()
    for i in range(0, len(chunks), batch):
        part = chunks[i:i + batch]
        feats = extractor(part, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        features = feats.input_features.to(device, dtype)
        start = torch.full((len(part), 1), start_id, dtype=torch.long, device=device)
        with torch.inference_mode():
            # The plain decoder loop at full length: Whisper's own generate adds language
            # detection and timestamp rules that need a tokenizer, which random weights lack.
            GenerationMixin.generate(model, input_features=features, decoder_input_ids=start,
                                     do_sample=False, max_new_tokens=new_tokens,
                                     min_new_tokens=new_tokens)
    _sync(torch, device)
    return time.perf_counter() - began


def run_asr(args) -> dict:
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    device = _rt.resolve_device(args.device)
    dtype = torch.float16 if device == "cuda" else torch.float32
    config = json.loads((args.model / "config.json").read_text())
    extractor = WhisperFeatureExtractor(feature_size=config.get("num_mel_bins", 80))
    chunks = windows(read_wav(args.audio), args.seconds)
    runs = []
    with _rt.peak_memory(device) as peak:
        timer = _rt.Timer()
        kwargs = {"dtype" if _rt.transformers_at_least("4.56") else "torch_dtype": dtype}
        model = WhisperForConditionalGeneration.from_pretrained(str(args.model), **kwargs)
        model = model.to(device).eval()
        load_s = timer.elapsed()
        _decode_windows(torch, model, extractor, chunks[:1], 1, device, dtype, 2)  # warm-up
        for batch in args.batch_sizes:
            elapsed = _decode_windows(torch, model, extractor, chunks, batch, device, dtype,
                                      args.new_tokens)
            runs.append({"batch_size": batch, "seconds": round(elapsed, 3),
                         "real_time_factor": round(elapsed / args.seconds, 4)})
            _rt.emit("progress", what="asr", **runs[-1])
    return {"model": str(args.model), "device": device, "dtype": str(dtype).replace("torch.", ""),
            "audio_s": args.seconds, "windows": len(chunks), "new_tokens": args.new_tokens,
            "load_s": round(load_s, 3), "runs": runs, "weights_bytes": weight_bytes(model),
            **peak, "versions": _rt.versions(),
            **({"gpu": torch.cuda.get_device_name(0)} if device == "cuda" else {})}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    rnd = sub.add_parser("random-checkpoint")
    rnd.add_argument("out", type=Path)
    rnd.add_argument("--architecture", required=True)
    rnd.add_argument("--dtype", default="float16")
    rnd.add_argument("--seed", type=int, default=0)
    causal = sub.add_parser("causal")
    causal.add_argument("--model", type=Path, required=True)
    causal.add_argument("--bits", type=int, choices=[0, 8, 4], default=0)
    causal.add_argument("--device", default="auto")
    causal.add_argument("--prompt-tokens", type=int, default=128)
    causal.add_argument("--new-tokens", type=int, default=128)
    causal.add_argument("--batch-size", type=int, default=8)
    causal.add_argument("--attn", choices=["sdpa", "eager", "flash_attention_2"])
    causal.add_argument("--compile", action="store_true")
    causal.add_argument("--gpu-bandwidth", type=float, help="GB/s, if the table lacks the GPU")
    asr = sub.add_parser("asr")
    asr.add_argument("--model", type=Path, required=True)
    asr.add_argument("--audio", type=Path, required=True)
    asr.add_argument("--seconds", type=float, default=60.0)
    asr.add_argument("--batch-sizes", default="16,32")
    asr.add_argument("--new-tokens", type=int, default=128)
    asr.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.what == "random-checkpoint":
        result = random_checkpoint(args.out, json.loads(args.architecture), args.dtype,
                                   args.seed)
    elif args.what == "causal":
        result = run_causal(args)
    else:
        args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
        result = run_asr(args)
    _rt.emit("result", ok=True, **result)


if __name__ == "__main__":
    raise SystemExit(_rt.run_main(main))
