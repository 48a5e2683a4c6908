#!/usr/bin/env python3
"""Speech: the engines against their bare libraries, and pipeline settings, on one recording.

    python benchmarks/asr.py [engines] [--model DIR] [--rounds 5]
    python benchmarks/asr.py settings [--model DIR] [--seconds 70] [--repeat 3] [--device auto]

``engines`` (the default) runs four processes in a new shuffled order each round, on the same
m4a recording of a known English text spoken by espeak-ng (about 13 s), on the CPU
(``--device cuda``: float16 for both, on a GPU):

- ``llmsetup transcribe --engine transformers`` and the bare transformers pipeline it
  stands for (``pipeline("automatic-speech-recognition")`` in float32, greedy, batch 16,
  30 s chunks, as llmsetup sets it up);
- ``llmsetup transcribe --engine ctranslate2`` and bare faster-whisper on the same
  CTranslate2 conversion (int8, greedy, one temperature), and the engine with ``--beams 5``
  (what beams buy in word errors, and cost in time).

For each it prints the whole process (start to exit: interpreter, imports, audio decoding,
model load, transcription), the transcription alone (as each reports it: the pipeline call,
or faster-whisper's segments read to the end), and the word error rate against the known
text, then the ratios: llmsetup ctranslate2 ÷ bare faster-whisper (target 1.3x) and
llmsetup transformers ÷ bare pipeline (target 1.1x), whole process. Without ``--model`` it
uses the tests' tiny random Whisper (plumbing only: its WER is meaningless); give a real
Whisper folder (the tests' tiny.en, or any Whisper) for numbers to quote. Needs espeak-ng,
ffmpeg and faster-whisper.

``settings`` times pipeline settings with the model loaded once: greedy decoding against
the 5-beam default of transformers 5.x's speech pipeline, batch 16 against 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, interleaved, llmsetup_cmd, report, temp_home

sys.path.insert(0, str(ROOT / "src"))

from llmsetup.runtime import asr, audio
from llmsetup.runtime.textmetrics import wer

# Ordinary words, no numbers and no compounds ("sea shells" or "seashells" would count as
# an error that says nothing): the real-weights tests' passage, then the bundled English
# sample's sentence. About 13 s at espeak-ng's 175 words a minute.
TEXT = ("The weather today is sunny and warm. We are going to walk to the park after lunch, "
        "and then we will read a book under a large tree. Hello, this is a speech "
        "recognition test. The quick brown fox jumps over the lazy dog.")

BARE_FASTER_WHISPER = """
import json, sys, time
from faster_whisper import WhisperModel, decode_audio
cuda = sys.argv[3] == "cuda"
model = WhisperModel(sys.argv[1], device=sys.argv[3], compute_type="float16" if cuda else "int8")
samples = decode_audio(sys.argv[2])
start = time.perf_counter()
segments, info = model.transcribe(samples, beam_size=1, temperature=0.0, max_new_tokens=128)
text = "".join(s.text for s in segments).strip()
print(json.dumps({"text": text, "transcribe_s": time.perf_counter() - start}))
"""

BARE_PIPELINE = """
import json, sys, time
import torch, transformers
from transformers import pipeline
import numpy as np, subprocess
new = tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (4, 56)
dtype = torch.float16 if sys.argv[3] == "cuda" else torch.float32
pipe = pipeline("automatic-speech-recognition", model=sys.argv[1], device=sys.argv[3],
                **{"dtype" if new else "torch_dtype": dtype})
# FFmpeg from the file (an m4a cannot be read from a pipe: its index is at the end).
raw = subprocess.run(["ffmpeg", "-v", "error", "-i", sys.argv[2], "-ac", "1", "-ar", "16000",
                      "-f", "f32le", "-"], capture_output=True, check=True).stdout
samples = np.frombuffer(raw, dtype=np.float32)
start = time.perf_counter()
out = pipe({"raw": samples, "sampling_rate": 16000}, chunk_length_s=30, batch_size=16,
           return_timestamps=True, generate_kwargs={"num_beams": 1, "max_new_tokens": 128})
if sys.argv[3] == "cuda":
    torch.cuda.synchronize()
print(json.dumps({"text": out["text"].strip(), "transcribe_s": time.perf_counter() - start}))
"""


def make_speech(folder: Path, seconds: int) -> Path:
    raw, out = folder / "raw.wav", folder / "speech.m4a"
    subprocess.run(["espeak-ng", "-w", str(raw), "The quick brown fox jumps over the lazy "
                    "dog. Speech recognition benchmark."], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(raw),
                    "-af", "apad=pad_dur=1", "-t", str(seconds), "-c:a", "aac", str(out)],
                   check=True)
    return out


def settings(args: argparse.Namespace) -> None:
    from llmsetup.runtime import _rt

    with tempfile.TemporaryDirectory(prefix="llmsetup-bench-asr-") as tmp:
        folder = Path(tmp)
        model = args.model
        if model is None:
            model = tiny_whisper(folder)
        item = audio.load(str(make_speech(folder, args.seconds)), tmp)
        device = _rt.resolve_device(args.device)
        pipe, info = asr.load_pipeline(str(model), device, word_timestamps=False)
        greedy = asr.generate_kwargs(pipe.model.generation_config, "en", "transcribe", 128, 1)
        default_beams = {k: v for k, v in greedy.items() if k != "num_beams"}

        def run(gen: dict, batch_size: int) -> float:
            start = time.perf_counter()
            pipe(item.pipeline_input(), chunk_length_s=30, batch_size=batch_size,
                 return_timestamps=True, generate_kwargs=dict(gen))
            if device == "cuda":
                import torch

                torch.cuda.synchronize()
            return time.perf_counter() - start

        run(greedy, 16)  # warm-up: first calls pay one-time costs
        times = interleaved({
            "greedy, batch 16 (llmsetup)": lambda: run(greedy, 16),
            "5.x default beams, batch 16": lambda: run(default_beams, 16),
            "greedy, batch 1": lambda: run(greedy, 1),
        }, args.repeat)
    report(f"{args.seconds} s of audio on {device} ({info['dtype']}, {info['attention']}), "
           f"{info['parameters'] / 1e6:.1f} M parameters, median of {args.repeat}, "
           "interleaved", list(times.items()), baseline="greedy, batch 16 (llmsetup)")
    for name, values in times.items():
        print(f"  {name}: real-time factor {statistics.median(values) / item.duration_s:.4f}")


def tiny_whisper(folder: Path) -> Path:
    model = folder / "tiny-whisper"
    subprocess.run([sys.executable, str(ROOT / "src/llmsetup/runtime/fixtures.py"),
                    "whisper", str(model)], check=True, capture_output=True)
    return model


def recording(folder: Path) -> Path:
    """The known text, spoken by espeak-ng, as AAC in m4a (a phone's or Windows' recorder)."""
    raw, out = folder / "raw.wav", folder / "speech.m4a"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), TEXT], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-c:a", "aac", str(out)],
                   check=True)
    return out


def _process(argv: list[str]) -> dict:
    """Run one whole process; its JSON answer, with the wall time as ``process_s``."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed:\n{done.stderr[-2000:]}")
    doc = json.loads(done.stdout)
    if "files" in doc:  # llmsetup transcribe --json
        doc = {"text": doc["files"][0]["text"], "transcribe_s": doc["transcribe_s"],
               "converted_dir": doc.get("converted_dir")}
    return {**doc, "process_s": seconds}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def engines(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="llmsetup-bench-asr-") as tmp, temp_home():
        folder = Path(tmp)
        model = args.model.absolute() if args.model else tiny_whisper(folder)
        rec = args.recording.absolute() if args.recording else recording(folder)
        text = args.text or TEXT
        device = args.device if args.device != "auto" else "cpu"
        cli = [*llmsetup_cmd(), "transcribe", str(model), str(rec), "--device", device, "--json"]
        runs = {
            "llmsetup transformers": [*cli, "--engine", "transformers"],
            "bare pipeline": [sys.executable, "-c", BARE_PIPELINE, str(model), str(rec), device],
            "llmsetup ctranslate2": [*cli, "--engine", "ctranslate2"],
            "llmsetup ctranslate2, 5 beams": [*cli, "--engine", "ctranslate2", "--beams", "5"],
        }
        # Warm-up: the conversion happens here, once (and the OS caches every file).
        converted = _process(runs["llmsetup ctranslate2"])["converted_dir"]
        runs["bare faster-whisper"] = [sys.executable, "-c", BARE_FASTER_WHISPER, converted,
                                       str(rec), device]
        for argv in runs.values():
            _process(argv)
        load_before = os.getloadavg()
        docs: dict[str, list[dict]] = {name: [] for name in runs}

        def measure(name: str):
            def run() -> float:
                docs[name].append(_process(runs[name]))
                return docs[name][-1]["process_s"]
            return run

        process = interleaved({name: measure(name) for name in runs}, args.rounds)
        load_after = os.getloadavg()
    alone = {name: [d["transcribe_s"] for d in docs[name]] for name in runs}
    title = (f"{machine()}, {device}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} "
             f"after; model {model.name}; median of {args.rounds} rounds, interleaved")
    report(f"Whole process: {title}", list(process.items()), baseline="bare faster-whisper")
    report("Transcription alone", list(alone.items()), baseline="bare faster-whisper")
    print("\nWord error rate against the known text (median over rounds):")
    for name in runs:
        rates = [wer(text, d["text"]) for d in docs[name]]
        print(f"  {name:<30} {statistics.median(rates):.3f}   {docs[name][-1]['text']!r}")
    print("\nRatios (median of the per-round ratios; whole process, then transcription alone):")
    for ours, bare, target in (("llmsetup ctranslate2", "bare faster-whisper", 1.3),
                               ("llmsetup transformers", "bare pipeline", 1.1)):
        whole = statistics.median(a / b for a, b in zip(process[ours], process[bare], strict=True))
        only = statistics.median(a / b for a, b in zip(alone[ours], alone[bare], strict=True))
        verdict = "met" if whole <= target else "NOT met"
        print(f"  {ours} / {bare}: {whole:.2f}x whole (target {target}x: {verdict}), "
              f"{only:.2f}x transcription alone")
    ct2, tf = (statistics.median(process[n]) for n in ("llmsetup ctranslate2",
                                                        "llmsetup transformers"))
    print(f"  llmsetup transformers / llmsetup ctranslate2: {tf / ct2:.2f}x whole process")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("compare", nargs="?", default="engines", choices=["engines", "settings"])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--rounds", type=int, default=5, help="engines: rounds")
    parser.add_argument("--recording", type=Path,
                        help="engines: this recording instead of espeak-ng's (with --text)")
    parser.add_argument("--text", help="engines: what --recording says, for the WER")
    parser.add_argument("--seconds", type=int, default=70, help="settings: audio length")
    parser.add_argument("--repeat", type=int, default=3, help="settings: runs of each")
    parser.add_argument("--device", default="auto",
                        help="the device (engines: auto means cpu, the engines' target)")
    args = parser.parse_args()
    (engines if args.compare == "engines" else settings)(args)


if __name__ == "__main__":
    main()
