"""The CTranslate2 engine for Whisper: the same model folder through faster-whisper.

Used by ``asr.py --engine ctranslate2``. The Hugging Face folder is converted once with
CTranslate2's own converter (``TransformersConverter``: int8 weights for the CPU, float16
for CUDA) into ``<model>/.llmsetup/ct2-<quantization>-<fingerprint>``, where the
fingerprint covers the names, sizes and modification times of the model's files: a
changed model gets a new folder (the old one is removed), an unchanged one is reused
without importing torch or transformers at all. The conversion is written to a temporary
folder beside it and renamed into place, so a conversion cut short is never used. Where
the model folder is read-only the cache goes to ``$XDG_CACHE_HOME/llmsetup/ct2/``.

Decoding follows the transformers engine: greedy unless ``--beams``, one temperature (no
fallback re-decoding, as the book's pipeline has none), the same ``max_new_tokens``;
faster-whisper conditions each 30 s window on the text of the previous one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

if __package__:
    from . import _i18n, _rt, audio
else:
    import _i18n
    import _rt
    import audio

# Fixed hints are marked with N_ for the catalog: the JSON event carries them in English,
# and the host shows them in the user's language (host/runner.py).
N_ = _i18n.N_

CACHE_FOLDER = ".llmsetup"
# Files the converted folder needs besides the weights: faster-whisper reads the tokenizer
# and the feature extractor's settings (128 mel bins for large-v3) from it.
COPY_FILES = ("tokenizer.json", "preprocessor_config.json")


def missing() -> str | None:
    """The package this engine lacks in this environment, or None."""
    for module, package in (("ctranslate2", "ctranslate2"), ("faster_whisper", "faster-whisper")):
        if importlib.util.find_spec(module) is None:
            return package
    return None


def require() -> None:
    package = missing()
    if package:
        raise _rt.Failure("engine-missing", f"--engine ctranslate2 needs {package}, which is "
                          "not installed in this environment",
                          N_("Add it with `llmsetup install NAME --engine ctranslate2`."),
                          exit_code=2)


def resolve_device(requested: str) -> str:
    """``auto``: CUDA when CTranslate2 sees a GPU (without importing torch)."""
    import ctranslate2

    requested = (requested or "auto").lower()
    if requested == "cpu":
        return "cpu"
    if ctranslate2.get_cuda_device_count() > 0:
        return "cuda"
    if requested == "cuda":
        raise _rt.Failure("cuda-missing", "CTranslate2 sees no CUDA device",
                          N_("Run `llmsetup doctor`; use --device cpu to run on the CPU."))
    return "cpu"


def quantization_for(device: str) -> str:
    return "float16" if device == "cuda" else "int8"


def model_fingerprint(model_dir: Path) -> str:
    """Names, sizes and modification times of the model's files (not our cache)."""
    rows = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                  for p in model_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def cache_root(model_dir: Path) -> Path:
    """``<model>/.llmsetup``, or a per-folder cache when the model folder is read-only."""
    if os.access(model_dir, os.W_OK):
        return model_dir / CACHE_FOLDER
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:16]
    return base / "llmsetup" / "ct2" / key


def converted_dir(model_dir: str, quantization: str) -> Path:
    """The CTranslate2 folder for ``model_dir``: reused, or converted now.

    Emits ``convert`` events (``cached``, ``converting``, ``converted`` with seconds).
    """
    model = Path(model_dir)
    root = cache_root(model)
    target = root / f"ct2-{quantization}-{model_fingerprint(model)}"
    if (target / "model.bin").is_file():
        _rt.emit("convert", status="cached", path=str(target), quantization=quantization)
        return target
    _rt.emit("convert", status="converting", path=str(target), quantization=quantization)
    timer = _rt.Timer()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=root))
    try:
        _convert(model, tmp / "out", quantization)
        try:
            os.rename(tmp / "out", target)
        except OSError:  # another process finished the same conversion first
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in root.glob(f"ct2-{quantization}-*"):  # conversions of the model as it was
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    _rt.emit("convert", status="converted", path=str(target), quantization=quantization,
             seconds=round(timer.elapsed(), 3))
    return target


def _convert(model: Path, out: Path, quantization: str) -> None:
    from ctranslate2.converters import TransformersConverter

    copy = [name for name in COPY_FILES if (model / name).is_file()]
    try:
        TransformersConverter(str(model), copy_files=copy, low_cpu_mem_usage=True).convert(
            str(out), quantization=quantization, force=True)
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        raise _rt.Failure("not-a-model", f"CTranslate2 cannot convert {model}: {text}",
                          N_("Check the folder with `llmsetup check NAME`, or use "
                             "--engine transformers."), exit_code=2) from None
    if not (out / "preprocessor_config.json").is_file():
        _feature_settings(model, out)
    if not (out / "tokenizer.json").is_file():  # a folder with the slow tokenizer's files
        from transformers import WhisperTokenizerFast

        WhisperTokenizerFast.from_pretrained(str(model)).backend_tokenizer.save(
            str(out / "tokenizer.json"))


def _feature_settings(model: Path, out: Path) -> None:
    """transformers 5 saves the feature extractor inside ``processor_config.json``;
    faster-whisper reads ``preprocessor_config.json`` (80 mel bins when it is missing,
    wrong for large-v3's 128)."""
    try:
        processor = json.loads((model / "processor_config.json").read_text(encoding="utf-8"))
        features = processor["feature_extractor"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    (out / "preprocessor_config.json").write_text(json.dumps(features, indent=2),
                                                  encoding="utf-8")


def load(model_dir: str, device: str, random_weights: bool) -> tuple[object, dict]:
    """The faster-whisper model for ``model_dir`` (converted if needed), and what was loaded."""
    from faster_whisper import WhisperModel

    quantization = quantization_for(device)
    folder = converted_dir(model_dir, quantization)
    try:
        model = WhisperModel(str(folder), device=device, compute_type=quantization)
    except Exception as exc:
        failure = _rt.classify(exc)
        if failure is not None:
            raise failure from None
        raise _rt.Failure("incomplete-model", f"cannot load the converted model in {folder}: "
                          f"{str(exc).splitlines()[0][:300]}",
                          f"Remove {folder} to convert again.", exit_code=2) from None
    info = {"engine": "ctranslate2", "device": device, "dtype": quantization,
            "attention": "ctranslate2", "parameters": None,
            "multilingual": bool(model.model.is_multilingual),
            "num_mel_bins": model.feat_kwargs.get("feature_size", 80),
            "word_timestamps": True, "random_weights": random_weights,
            "converted_dir": str(folder)}
    return model, info


def transcribe(model, item: audio.Audio, opts, decoding: dict, file_info: dict) -> dict:
    """One decoded file through faster-whisper: text, chunks (words in word mode), timing.

    ``file_info`` goes into each ``progress`` event (file, index, files, duration).
    """
    word_mode = opts.timestamps == "word"
    kwargs = {"task": decoding.get("task", "transcribe"), "beam_size": decoding["num_beams"],
              "temperature": 0.0, "max_new_tokens": decoding["max_new_tokens"],
              "without_timestamps": opts.timestamps == "none", "word_timestamps": word_mode,
              "vad_filter": False}
    if decoding.get("language"):
        kwargs["language"] = decoding["language"]
    if opts.chunk_length < 30:
        kwargs["chunk_length"] = max(1, int(opts.chunk_length))
    started = time.perf_counter()
    segments, _info = model.transcribe(item.samples, **kwargs)
    total = audio.chunk_count(item.samples.size, opts.chunk_length, stride_s=0)
    chunks, texts, done = [], [], 0
    for segment in segments:  # a generator: decoding happens as it is read
        texts.append(segment.text)
        if word_mode:
            chunks += [{"start": _round(w.start), "end": _round(w.end), "text": w.word}
                       for w in segment.words or []]
        else:
            chunks.append({"start": _round(segment.start), "end": _round(segment.end),
                           "text": segment.text})
        now = min(total, int(segment.end // max(opts.chunk_length, 1)) + 1)
        if now > done:
            done = now
            _progress(file_info, item, done, total)
    if done < total:
        _progress(file_info, item, total, total)
    seconds = time.perf_counter() - started
    return {"file": item.path, "text": "".join(texts).strip(), "chunks": chunks,
            "duration_s": item.duration_s, "transcribe_s": round(seconds, 3),
            "rtf": round(seconds / item.duration_s, 4) if item.duration_s else None,
            "detected_language": _info.language, "decoding": _reported(_info, kwargs["task"])}


def _reported(info, task: str) -> dict:
    """The settings faster-whisper says it decoded with."""
    options = info.transcription_options
    return {"num_beams": options.beam_size, "max_new_tokens": options.max_new_tokens,
            "language": info.language, "task": task,
            "temperatures": list(options.temperatures)}


def _progress(file_info: dict, item: audio.Audio, done: int, total: int) -> None:
    fraction = done / total
    _rt.emit("progress", **file_info, chunks_done=done,
             chunks_total=total, fraction=round(fraction, 3),
             seconds_done=round(fraction * item.duration_s, 1))


def _round(value) -> float | None:
    return None if value is None else round(float(value), 2)
