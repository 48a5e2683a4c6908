#!/usr/bin/env python3
"""Speech pipeline settings, measured side by side in one run on the same audio.

    python benchmarks/asr.py [--model DIR] [--seconds 70] [--repeat 3] [--device auto]

Compares, with the model loaded once, the settings taking turns in a shuffled order:

- greedy decoding (``num_beams=1``, what llmsetup passes and the book's transformers 4.38.1
  did) against the 5-beam default that transformers 5.x's speech pipeline uses when the
  model's generation_config.json names no ``num_beams`` (whisper-large-v3's does not);
- ``batch_size`` 16 (the book's) against 1, for a recording longer than one 30 s window.

Without ``--model`` it builds the tiny random Whisper of the tests: its ratios show the
decoder's share of the work, not large-v3's speed on a GPU. Give ``--model`` a real
Whisper folder (and run on the GPU) for numbers to quote. The audio is espeak-ng speech
repeated to ``--seconds``; espeak-ng and ffmpeg must be installed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, interleaved, report

sys.path.insert(0, str(ROOT / "src"))

from llmsetup.runtime import asr, audio


def make_speech(folder: Path, seconds: int) -> Path:
    raw, out = folder / "raw.wav", folder / "speech.m4a"
    subprocess.run(["espeak-ng", "-w", str(raw), "The quick brown fox jumps over the lazy "
                    "dog. Speech recognition benchmark."], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(raw),
                    "-af", "apad=pad_dur=1", "-t", str(seconds), "-c:a", "aac", str(out)],
                   check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--seconds", type=int, default=70)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    from llmsetup.runtime import _rt

    with tempfile.TemporaryDirectory(prefix="llmsetup-bench-asr-") as tmp:
        folder = Path(tmp)
        model = args.model
        if model is None:
            model = folder / "tiny-whisper"
            subprocess.run([sys.executable, str(ROOT / "src/llmsetup/runtime/fixtures.py"),
                            "whisper", str(model)], check=True, capture_output=True)
        item = audio.load(str(make_speech(folder, args.seconds)), tmp)
        device = _rt.resolve_device(args.device)
        pipe, info = asr.load_pipeline(str(model), device, word_timestamps=False)
        greedy = asr.generate_kwargs(pipe.model.generation_config, "en", "transcribe", 128)
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


if __name__ == "__main__":
    main()
