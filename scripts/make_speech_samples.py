#!/usr/bin/env python3
"""Regenerate the speech samples that `llmsetup verify` uses when no --audio is given.

    python scripts/make_speech_samples.py [--out src/llmsetup/data/speech]

Needs espeak-ng and ffmpeg on PATH. Each sentence is spoken by espeak-ng, then ffmpeg
makes it 16 kHz mono 16-bit PCM WAV, the pipeline's own rate, which pydub reads without
FFmpeg: verifying a model this way works on a machine without FFmpeg. The known text,
language and CER bound of each sample go to samples.json next to them.

The Chinese sentence uses only characters that are written the same in simplified and
traditional script, so that a model answering in either passes. The bounds are generous
because espeak-ng's voices are robotic: a working Whisper model stays well under them and a
broken one (wrong weights, a bad tokenizer, fp16 overflow) lands near 100%.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "llmsetup" / "data" / "speech"
SAMPLES = [
    {"file": "en.wav", "language": "en", "voice": "en-us", "speed": 150, "max_cer": 0.3,
     "text": "Hello, this is a speech recognition test. The quick brown fox jumps over "
             "the lazy dog."},
    {"file": "zh.wav", "language": "zh", "voice": "cmn", "speed": 140, "max_cer": 0.5,
     "text": "你好，我在北京工作。今天是好日子。"},
]


def run(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def make(out: Path) -> list[dict]:
    for tool in ("espeak-ng", "ffmpeg"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (apt install {tool})")
    out.mkdir(parents=True, exist_ok=True)
    version = run(["espeak-ng", "--version"]).split("Data at")[0].strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for sample in SAMPLES:
            raw = Path(tmp) / sample["file"]
            run(["espeak-ng", "-v", sample["voice"], "-s", str(sample["speed"]),
                 "-w", str(raw), sample["text"]])
            run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-ac", "1", "-ar", "16000",
                 "-sample_fmt", "s16", "-bitexact", "-map_metadata", "-1",
                 str(out / sample["file"])])
            rows.append({k: sample[k] for k in ("file", "language", "text", "max_cer")}
                        | {"voice": f"{version}, voice {sample['voice']}, "
                                    f"{sample['speed']} words/min"})
    manifest = {"made_by": "scripts/make_speech_samples.py", "samples": rows}
    (out / "samples.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                      encoding="utf-8")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    for row in make(args.out):
        size = (args.out / row["file"]).stat().st_size
        print(f"{args.out / row['file']}: {size // 1024} KiB, {row['text']}")


if __name__ == "__main__":
    main()
