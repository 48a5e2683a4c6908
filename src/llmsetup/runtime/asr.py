"""Whisper speech recognition, run inside the model's environment.

Two subcommands, both speaking the JSON-lines protocol of ``_rt``::

    python asr.py verify --model DIR [--audio FILE] [--samples MANIFEST] [options]
    python asr.py transcribe --model DIR FILE... [options]

``verify`` transcribes ``--audio`` (the book's ``whisper-audio.py``), or else the bundled
speech samples of known text (``--samples``, a ``samples.json``), and measures load time,
transcription time, real-time factor and peak memory. A model passes on the samples when
each transcript is within the sample's character error rate (CER) bound; a model whose
``config.json`` carries the ``llmsetup_fixture`` marker (random weights, built for tests)
only has to run. The ``result`` event's ``ok`` says whether it passed: a model that ran
but failed the check is a verdict for the host, not a crash, so the process exits 0.

``transcribe`` decodes every file first (so a bad file fails before the model loads),
loads the model once, and emits one ``transcript`` event per file (text, chunks with
timestamps) as soon as it is done; the host writes the output files. ``progress`` events
follow the 30 s windows of long recordings.

The pipeline is set up as the book does (``chunk_length_s=30``, ``batch_size=16``,
``max_new_tokens=128``, ``return_timestamps=True``; fp16 on CUDA) with two changes: fp32
on the CPU (fp16 matrix products there are slow or missing), and SDPA attention where the
installed transformers and torch have it (transformers 4.36+ with torch 2.1.1+; the book's
torch 2.0.1 falls back to eager). Word timestamps need the cross-attention weights, which
SDPA does not return, so ``--timestamps word`` loads eager attention.

``--engine ctranslate2`` runs the same folder through faster-whisper instead (see
``asr_ct2.py``: converted once, cached beside the model); ``--beams N`` asks either engine
for beam search. Everything that can be checked from the folder's JSON files (the model
kind, ``--language`` and ``--task`` against an English-only model) is checked before any
weights load.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

if __package__:
    from . import _i18n, _rt, asr_ct2, audio
    from .textmetrics import cer, normalize_text
else:
    import _i18n
    import _rt
    import asr_ct2
    import audio
    from textmetrics import cer, normalize_text

# Fixed hints are marked with N_ for the catalog: the JSON event carries them in English,
# and the host shows them in the user's language (host/runner.py).
N_ = _i18n.N_

MARKER = "llmsetup_fixture"
ENGINES = ("transformers", "ctranslate2")


# -- the model ----------------------------------------------------------------------------

def is_random_fixture(model_dir: str) -> bool:
    """True for a test model built by whisper_fixture.py (random weights)."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool((config.get(MARKER) or {}).get("random_weights"))


def model_facts(model_dir: str) -> dict | None:
    """What ``generation_config.json`` says about languages, read without loading weights.

    Also checks that the folder holds a Whisper model. None when the folder has no
    generation config (then the loaded model's own is used).
    """
    folder = Path(model_dir)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _rt.Failure("incomplete-model", f"cannot read {folder / 'config.json'}: {exc}",
                          exit_code=2) from None
    if config.get("model_type") != "whisper":
        raise _rt.Failure("wrong-kind", f"{model_dir} holds a {config.get('model_type')!r} "
                          "model, not Whisper", exit_code=2)
    try:
        return json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def attention_for(model_cls, word_timestamps: bool) -> str:
    """``sdpa`` where transformers and torch support it for Whisper, else ``eager``."""
    if word_timestamps or not getattr(model_cls, "_supports_sdpa", False):
        return "eager"
    try:
        from transformers.utils import is_torch_sdpa_available
    except ImportError:  # transformers 5 dropped the helper: its torch minimum has SDPA
        return "sdpa"
    return "sdpa" if is_torch_sdpa_available() else "eager"


def _load_failure(model_dir: str, exc: Exception) -> _rt.Failure:
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if isinstance(exc, OSError) or "safetensor" in low or "header" in low:
        return _rt.Failure("incomplete-model",
                           f"cannot load the model in {model_dir}: {text.splitlines()[0][:300]}",
                           exit_code=2)
    return _rt.Failure("not-a-model", f"{model_dir} is not a Whisper model that this "
                       f"transformers can load: {text.splitlines()[0][:300]}", exit_code=2)


def load_pipeline(model_dir: str, device: str, word_timestamps: bool):
    """The speech pipeline for ``model_dir`` on ``device``, and what was loaded."""
    import importlib.util

    import torch
    from transformers import AutoProcessor, WhisperForConditionalGeneration, pipeline

    model_facts(model_dir)  # a Whisper folder, or a clear failure
    dtype = torch.float16 if device == "cuda" else torch.float32
    # transformers 4.56 renamed torch_dtype to dtype (the old name still works, with a warning).
    dtype_kw = "dtype" if _rt.transformers_at_least("4.56") else "torch_dtype"
    attention = attention_for(WhisperForConditionalGeneration, word_timestamps)
    kwargs = {dtype_kw: dtype, "attn_implementation": attention}
    if importlib.util.find_spec("accelerate"):
        kwargs["low_cpu_mem_usage"] = True  # no second copy of the weights while loading
    try:
        processor = AutoProcessor.from_pretrained(model_dir)
        model = WhisperForConditionalGeneration.from_pretrained(model_dir, **kwargs)
        model = model.to(device).eval()
    except Exception as exc:
        failure = _rt.classify(exc)
        if failure is not None and failure.code == "oom":
            failure.hint = N_("Free the GPU (see nvidia-smi), use a smaller Whisper model, or "
                              "--device cpu. `llmsetup doctor NAME` shows what it needs.")
        raise failure or _load_failure(model_dir, exc) from None
    tokenizer = processor.tokenizer
    if tokenizer.pad_token is None:  # batching pads the token sequences
        tokenizer.pad_token = tokenizer.eos_token
    pipe = pipeline("automatic-speech-recognition", model=model, tokenizer=tokenizer,
                    feature_extractor=processor.feature_extractor, device=device,
                    **{dtype_kw: dtype})
    gen = model.generation_config
    info = {"engine": "transformers", "device": device,
            "dtype": str(dtype).replace("torch.", ""),
            "attention": getattr(model.config, "_attn_implementation", attention),
            "parameters": sum(p.numel() for p in model.parameters()),
            "multilingual": bool(getattr(gen, "is_multilingual", False)),
            "num_mel_bins": model.config.num_mel_bins,
            "word_timestamps": bool(getattr(gen, "alignment_heads", None)),
            "random_weights": is_random_fixture(model_dir)}
    return pipe, info


def language_code(language: str | None, lang_to_id: dict | None) -> str | None:
    """``--language`` as Whisper's code (``zh``), from a code, a name or a token.

    Checked against the model's ``lang_to_id`` before anything is transcribed, so a typo is
    one clear line instead of a stack trace from the middle of generation.
    """
    if not language:
        return None
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    text = language.strip().lower().removeprefix("<|").removesuffix("|>")
    if lang_to_id and f"<|{text}|>" in lang_to_id:  # a code: no need for the name tables
        return text
    code = text if text in LANGUAGES else TO_LANGUAGE_CODE.get(text)
    if code is None or (lang_to_id and f"<|{code}|>" not in lang_to_id):
        raise _rt.Failure("bad-input", f"--language {language}: not a language this model "
                          "knows", N_("Use a code such as zh, en, ja or yue, or a name such as "
                                      "chinese or english."), exit_code=2)
    return code


def generate_kwargs(gen_config, language: str | None, task: str, max_new_tokens: int,
                    beams: int = 1) -> dict:
    """Generation settings; language and task only for multilingual models.

    ``gen_config`` is the model's GenerationConfig or its generation_config.json as a dict.
    Both 4.38.1 and 5.x take them in ``generate_kwargs`` (5.x also takes them loose, 4.38.1
    does not). ``num_beams`` is always explicit (1, greedy, unless ``--beams``) because
    the 5.x speech pipeline decodes with 5 beams unless the model's generation_config.json
    says otherwise (large-v3's does not): about five times the decoder work and memory per
    batch, and not what the book ran. Greedy decoding keeps both profiles doing the same
    thing; the ctranslate2 engine takes the same settings.
    """
    def get(key):
        return gen_config.get(key) if isinstance(gen_config, dict) else \
            getattr(gen_config, key, None)

    kwargs: dict = {"max_new_tokens": max_new_tokens, "num_beams": beams}
    if get("is_multilingual"):
        kwargs["task"] = task
        code = language_code(language, get("lang_to_id"))
        if code:
            kwargs["language"] = code
    elif (language and language.lower() not in ("en", "english")) or task == "translate":
        raise _rt.Failure("bad-input", "this model is English-only: it cannot take "
                          f"--language {language or ''} --task {task}".replace("  ", " "),
                          N_("Use a multilingual model (a name without .en), e.g. "
                             "whisper-large-v3."), exit_code=2)
    return kwargs


# Whisper's decoder starts from up to 4 tokens (start of transcript, language, task,
# no-timestamps), and these count against max_target_positions too.
DECODER_PROMPT = 4


def fit_new_tokens(model_config, wanted: int) -> tuple[int, str | None]:
    """``wanted`` new tokens, or as many as the decoder holds, with a note saying so.

    transformers refuses ``max_new_tokens`` plus the start prompt above
    ``max_target_positions`` (448 in the released checkpoints, less in some small or
    custom ones) with a ValueError; a shorter limit only ever cuts a 30 s window that
    speaks faster than the model can write, which the note tells."""
    limit = getattr(model_config, "max_target_positions", None)
    if not isinstance(limit, int) or wanted + DECODER_PROMPT <= limit:
        return wanted, None
    fitted = max(1, limit - DECODER_PROMPT)
    return fitted, (f"max_new_tokens {wanted} is more than this model's decoder holds "
                    f"(max_target_positions {limit}, {DECODER_PROMPT} of them for the start "
                    f"of each window): using {fitted}")


def _fit(opts: argparse.Namespace, model_config) -> list[str]:
    opts.max_new_tokens, note = fit_new_tokens(model_config, opts.max_new_tokens)
    if note:
        _rt.emit("warning", message=note)
    return [note] if note else []


def oom_advice(batch_size: int) -> str:
    """What to try after CUDA ran out of memory while transcribing."""
    if batch_size > 1:
        return (f"Try --batch-size {max(1, batch_size // 2)}: each 30 s window in a batch "
                "needs its own activations, the weights stay the same.")
    return ("Batch size 1 does not fit either: free the GPU (see nvidia-smi), use a smaller "
            "model (whisper-medium, whisper-small), or --device cpu.")


class Progress:
    """Counts the windows the pipeline decodes by wrapping ``model.generate``.

    The pipeline gives no callback; each ``generate`` call decodes one batch of 30 s
    windows, and the batch size is the first dimension of its input.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.original = model.generate
        self.done = 0
        self.total = 1
        self.file: dict = {}
        #: The decoding settings that reached ``generate`` last (reported per file).
        self.seen: dict = {}
        model.generate = self._generate

    def start(self, file_info: dict, item: audio.Audio, chunk_length_s: float) -> None:
        self.done = 0
        self.total = audio.chunk_count(item.samples.size, chunk_length_s)
        self.file = file_info

    def _generate(self, *args, **kwargs):
        self.seen = {k: kwargs[k] for k in ("num_beams", "max_new_tokens", "language", "task")
                     if k in kwargs}
        out = self.original(*args, **kwargs)
        batch = kwargs.get("input_features")
        if batch is None and kwargs.get("encoder_outputs") is not None:
            batch = kwargs["encoder_outputs"][0]
        if batch is None and args:
            batch = args[0]
        self.done += int(batch.shape[0]) if batch is not None else 1
        fraction = min(1.0, self.done / self.total)
        _rt.emit("progress", **self.file, chunks_done=min(self.done, self.total),
                 chunks_total=self.total, fraction=round(fraction, 3),
                 seconds_done=round(fraction * self.file.get("duration_s", 0), 1))
        return out


def run_pipeline(pipe, item: audio.Audio, opts: argparse.Namespace, gen: dict) -> dict:
    """Transcribe one decoded file; returns text, chunks and timing."""
    import torch

    timestamps = {"none": False, "chunk": True, "word": "word"}[opts.timestamps]
    started = time.perf_counter()
    try:
        out = pipe(item.pipeline_input(), chunk_length_s=opts.chunk_length,
                   batch_size=opts.batch_size, return_timestamps=timestamps,
                   generate_kwargs=dict(gen))
    except Exception as exc:
        failure = _rt.classify(exc)
        if failure is not None and failure.code == "oom":
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise _rt.Failure("oom", f"CUDA ran out of memory transcribing {item.path} with "
                              f"batch size {opts.batch_size}",
                              oom_advice(opts.batch_size)) from None
        raise
    seconds = time.perf_counter() - started
    chunks = [{"start": _seconds(c.get("timestamp", (None, None))[0]),
               "end": _seconds(c.get("timestamp", (None, None))[1]),
               "text": c.get("text", "")} for c in out.get("chunks") or []]
    return {"file": item.path, "text": (out.get("text") or "").strip(), "chunks": chunks,
            "duration_s": item.duration_s, "transcribe_s": round(seconds, 3),
            "rtf": round(seconds / item.duration_s, 4) if item.duration_s else None}


def _seconds(value) -> float | None:
    return None if value is None else round(float(value), 2)


# -- the engines ------------------------------------------------------------------------

class Engine:
    """One loaded model behind the two engines: ``transcribe(item, decoding, file_info)``.

    ``decoding`` is :func:`generate_kwargs`'s dict (max_new_tokens, num_beams, task,
    language), worked out before the load wherever the folder's generation config allows.
    """

    def __init__(self, opts: argparse.Namespace) -> None:
        self.opts = opts
        self.name = opts.engine
        _rt.emit("stage", stage="load", model=opts.model, device=opts.device, engine=self.name)
        timer = _rt.Timer()
        if self.name == "ctranslate2":
            self.model, self.info = asr_ct2.load(opts.model, opts.device,
                                                 is_random_fixture(opts.model))
            self.progress = None
        else:
            self.model, self.info = load_pipeline(opts.model, opts.device,
                                                  opts.timestamps == "word")
            self.progress = Progress(self.model.model)
        self.info["load_s"] = round(timer.elapsed(), 3)
        self.notes = _fit(opts, self._config())
        if opts.timestamps == "word" and not self.info["word_timestamps"]:
            raise _rt.Failure("bad-input", "this model's generation config has no "
                              "alignment_heads, so it cannot give word timestamps",
                              N_("Use --timestamps chunk."), exit_code=2)
        _rt.emit("model", **self.info)

    def _config(self):
        """The model's config (``max_target_positions`` is what :func:`_fit` reads)."""
        if self.name == "transformers":
            return self.model.model.config
        config = json.loads((Path(self.opts.model) / "config.json").read_text(encoding="utf-8"))
        return argparse.Namespace(max_target_positions=config.get("max_target_positions"))

    def decoding(self, facts: dict | None, language: str | None, task: str) -> dict:
        """The generation settings, from the folder's config or else the loaded model's."""
        if facts is None:
            facts = (self.model.model.generation_config if self.name == "transformers"
                     else {"is_multilingual": self.info["multilingual"]})
        return generate_kwargs(facts, language, task, self.opts.max_new_tokens,
                               self.opts.beams)

    def transcribe(self, index: int, files: int, item: audio.Audio, decoding: dict) -> dict:
        file_info = {"file": item.path, "index": index, "files": files,
                     "duration_s": item.duration_s}
        if self.name == "ctranslate2":
            return asr_ct2.transcribe(self.model, item, self.opts, decoding, file_info)
        self.progress.start(file_info, item, self.opts.chunk_length)
        row = run_pipeline(self.model, item, self.opts, decoding)
        row["decoding"] = self.progress.seen
        return row


def resolve_device(opts: argparse.Namespace) -> str:
    """The device, asked of the engine's own library (ctranslate2 never imports torch)."""
    if opts.engine == "ctranslate2":
        return asr_ct2.resolve_device(opts.device)
    return _rt.resolve_device(opts.device)


def check_decoding(opts: argparse.Namespace, facts: dict | None,
                   languages: list[tuple[str | None, str]]) -> None:
    """``--language``/``--task`` against the model's config, before any weights load."""
    if facts is not None:
        for language, task in languages:
            generate_kwargs(facts, language, task, opts.max_new_tokens, opts.beams)


# -- commands -----------------------------------------------------------------------------

def _settings(opts: argparse.Namespace) -> dict:
    return {"engine": opts.engine, "beams": opts.beams, "chunk_length_s": opts.chunk_length,
            "batch_size": opts.batch_size if opts.engine == "transformers" else 1,
            "max_new_tokens": opts.max_new_tokens, "timestamps": opts.timestamps,
            "language": opts.language, "task": opts.task}


def read_samples(manifest: str) -> list[dict]:
    """The bundled samples: ``{"samples": [{"file", "language", "text", "max_cer"}]}``."""
    path = Path(manifest)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        samples = [dict(s, file=str(path.parent / s["file"])) for s in data["samples"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _rt.Failure("bad-input", f"cannot read the speech samples {manifest}: {exc}",
                          N_("Reinstall llmsetup: its bundled samples are missing."),
                          exit_code=2) from None
    return samples


def cmd_verify(opts: argparse.Namespace, tmp: str) -> dict:
    facts = model_facts(opts.model)
    converted = None
    if opts.audio:
        check_decoding(opts, facts, [(opts.language, opts.task)])
        if opts.engine == "ctranslate2" and not opts.save_converted:
            items = [(audio.load_av(opts.audio), None)]
        else:
            segment = audio.decode(opts.audio)
            if opts.save_converted:
                converted = audio.save_converted(segment, opts.audio, opts.save_converted)
                _rt.emit("converted", path=converted)
            items = [(audio.prepare(segment, opts.audio, tmp), None)]
            del segment
        if audio.is_silent(items[0][0]):
            raise audio.silent_failure(items[0][0])
    else:
        items = [(audio.load(s["file"], tmp), s) for s in read_samples(opts.samples)]
    opts.device = resolve_device(opts)  # after the audio: bad input fails fast
    with _rt.peak_memory(opts.device, torch=opts.engine == "transformers") as peak:
        engine = Engine(opts)
        info = engine.info
        results = []
        usable = [(a, s) for a, s in items
                  if s is None or info["multilingual"] or s["language"] == "en"]
        for index, (item, sample) in enumerate(usable):
            language = sample["language"] if sample else opts.language
            task = "transcribe" if sample else opts.task
            row = engine.transcribe(index, len(usable), item,
                                    engine.decoding(facts, language, task))
            row.update(language=language, task=task, sample=bool(sample))
            row.update(judge(row, sample, info["random_weights"]))
            _rt.emit("transcript", **row)
            results.append(row)
    audio_s = sum(r["duration_s"] for r in results)
    transcribe_s = sum(r["transcribe_s"] for r in results)
    return {"ok": all(r["passed"] for r in results), "model_dir": opts.model, **info,
            "settings": _settings(opts), "notes": engine.notes, "items": results,
            "converted": converted,
            "audio_s": round(audio_s, 3), "transcribe_s": round(transcribe_s, 3),
            "rtf": round(transcribe_s / audio_s, 4) if audio_s else None, **peak,
            "versions": _versions(opts)}


def _versions(opts: argparse.Namespace) -> dict:
    found = _rt.versions()
    if opts.engine == "ctranslate2":
        from importlib.metadata import version

        found.update(ctranslate2=version("ctranslate2"), faster_whisper=version("faster-whisper"))
    return found


def judge(row: dict, sample: dict | None, random_weights: bool) -> dict:
    """Whether one transcript passes: a random model only has to run."""
    if sample is None:
        ok = random_weights or bool(normalize_text(row["text"]))
        return {"passed": ok, "reason": None if ok else "the model produced no text"}
    rate = cer(sample["text"], row["text"])
    bound = float(sample.get("max_cer", 0.3))
    ok = random_weights or rate <= bound
    reason = None if ok else f"CER {rate:.0%} is above the bound of {bound:.0%}"
    return {"expected": sample["text"], "cer": rate, "max_cer": bound, "passed": ok,
            "reason": reason}


def cmd_transcribe(opts: argparse.Namespace, tmp: str) -> dict:
    import numpy as np

    facts = model_facts(opts.model)
    check_decoding(opts, facts, [(opts.language, opts.task)])
    stored = []
    for path in opts.files:  # decode everything first: a bad file fails before the load
        item = audio.load_av(path) if opts.engine == "ctranslate2" else audio.load(path, tmp)
        _rt.emit("audio", file=path, duration_s=item.duration_s, source_rate=item.source_rate,
                 source_channels=item.source_channels, peak_dbfs=item.peak_dbfs)
        npy = os.path.join(tmp, f"{len(stored)}.npy")
        np.save(npy, item.samples)
        item.samples = None  # keep one file's samples in memory at a time
        stored.append((item, npy))
    opts.device = resolve_device(opts)  # after the audio: bad input fails fast
    with _rt.peak_memory(opts.device, torch=opts.engine == "transformers") as peak:
        engine = Engine(opts)
        info = engine.info
        decoding = engine.decoding(facts, opts.language, opts.task)
        rows = []
        for index, (item, npy) in enumerate(stored):
            item.samples = np.load(npy)
            if audio.is_silent(item):
                row = {"file": item.path, "text": "", "chunks": [], "duration_s": item.duration_s,
                       "transcribe_s": 0.0, "rtf": 0.0, "silent": True}
                _rt.emit("warning", file=item.path,
                         message=audio.silent_failure(item).message + "; empty transcript")
            else:
                row = engine.transcribe(index, len(stored), item, decoding)
            row.update(index=index, language=opts.language, task=opts.task)
            _rt.emit("transcript", **row)
            rows.append({k: v for k, v in row.items() if k not in ("chunks", "text")})
            item.samples = None
    audio_s = sum(r["duration_s"] for r in rows)
    transcribe_s = sum(r["transcribe_s"] for r in rows)
    return {"ok": True, "model_dir": opts.model, **info, "settings": _settings(opts),
            "notes": engine.notes, "files": rows, "audio_s": round(audio_s, 3),
            "transcribe_s": round(transcribe_s, 3),
            "rtf": round(transcribe_s / audio_s, 4) if audio_s else None, **peak,
            "versions": _versions(opts)}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = root.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify")
    verify.add_argument("--audio")
    verify.add_argument("--samples", help="samples.json of the bundled speech samples")
    verify.add_argument("--save-converted", metavar="FILE")
    transcribe = sub.add_parser("transcribe")
    transcribe.add_argument("files", nargs="+")
    for command in (verify, transcribe):
        command.add_argument("--model", required=True)
        command.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
        command.add_argument("--language")
        command.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
        command.add_argument("--chunk-length", type=float, default=30.0)
        command.add_argument("--batch-size", type=int, default=16)
        command.add_argument("--max-new-tokens", type=int, default=128)
        command.add_argument("--timestamps", default="chunk", choices=["none", "chunk", "word"])
        command.add_argument("--engine", default="transformers", choices=ENGINES)
        command.add_argument("--beams", type=int, default=1)
    return root


def main(argv=None) -> None:
    opts = parser().parse_args(argv)
    if opts.command == "verify" and not (opts.audio or opts.samples):
        raise _rt.Failure("bad-input", "verify needs --audio FILE or --samples MANIFEST",
                          exit_code=2)
    if opts.beams < 1:
        raise _rt.Failure("bad-input", "--beams must be at least 1", exit_code=2)
    if opts.engine == "ctranslate2":
        asr_ct2.require()  # before any audio is decoded: the missing engine is the news
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _rt.emit("start", module="asr", command=opts.command, protocol=_rt.PROTOCOL)
    with tempfile.TemporaryDirectory(prefix="llmsetup-asr-") as tmp:
        audio.use_temp_folder(tmp)
        run = cmd_verify if opts.command == "verify" else cmd_transcribe
        result = run(opts, tmp)
    _rt.emit("result", **result)


if __name__ == "__main__":
    raise SystemExit(_rt.run_main(main))
