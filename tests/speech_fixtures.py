"""Session fixtures for the speech tests: tiny Whisper models and real recordings.

The models are built once per session by ``runtime/fixtures.py whisper`` with the
transformers of the environment that will load them. The recordings are spoken by
espeak-ng and encoded by the real ffmpeg into the formats users bring (AAC in m4a as the
Windows recorder makes, mp3, flac, ogg, webm, an mp4 video); test modules import the
fixtures they use from here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compat import compat_python  # noqa: F401 - registers the fixture used below

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "src" / "llmsetup" / "runtime"

EN_TEXT = "Hello, this is a speech recognition test. The quick brown fox jumps over the lazy dog."
ZH_TEXT = "你好，我在北京工作。今天是好日子。"
LONG_SECONDS = 70  # past two 30 s windows of the pipeline


def build_tiny_whisper(out: Path, python: str = sys.executable) -> Path:
    """A tiny random Whisper built by ``python``'s own transformers."""
    proc = subprocess.run([python, str(RUNTIME / "fixtures.py"), "whisper", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    """A tiny Whisper for the modern environment (the one running the tests)."""
    return build_tiny_whisper(tmp_path_factory.mktemp("models") / "tiny-whisper")


@pytest.fixture(scope="session")
def compat_whisper(tmp_path_factory, compat_python) -> Path:  # noqa: F811 - the fixture
    """The same tiny Whisper, built by transformers 4.38.1 in the compatibility env."""
    return build_tiny_whisper(tmp_path_factory.mktemp("models") / "tiny-whisper-compat",
                              python=compat_python)


def real_copy(model: Path, dest: Path) -> Path:
    """A copy of ``model`` without the random-weights marker: judged like a real model."""
    shutil.copytree(model, dest)
    config = json.loads((dest / "config.json").read_text())
    config.pop("llmsetup_fixture")
    (dest / "config.json").write_text(json.dumps(config))
    return dest


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> dict[str, Path]:
    """Recordings of known speech, and the broken files users run into."""
    for program in ("espeak-ng", "ffmpeg"):
        if not shutil.which(program):
            pytest.fail(f"{program} is not installed: scripts/test.sh installs it")
    folder = tmp_path_factory.mktemp("speech")
    files: dict[str, Path] = {}
    raw_en, raw_zh = folder / "en-raw.wav", folder / "zh-raw.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw_en), EN_TEXT], check=True)
    subprocess.run(["espeak-ng", "-v", "cmn", "-w", str(raw_zh), ZH_TEXT], check=True)
    files["wav"], files["zh"] = raw_en, raw_zh  # espeak's own 22.05 kHz PCM
    # Stereo 44.1 kHz AAC in m4a, like the Windows recorder's test.m4a in the book.
    ffmpeg("-i", str(raw_zh), "-ac", "2", "-ar", "44100", "-c:a", "aac", str(folder / "zh.m4a"))
    files["m4a"] = folder / "zh.m4a"
    for suffix, codec in (("mp3", "libmp3lame"), ("flac", "flac"), ("ogg", "libvorbis"),
                          ("webm", "libopus"), ("aac", "aac")):
        ffmpeg("-i", str(raw_en), "-c:a", codec, str(folder / f"en.{suffix}"))
        files[suffix] = folder / f"en.{suffix}"
    # A video with a picture and a sound track (48 kHz stereo).
    ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=64x48:r=5", "-i", str(raw_en), "-shortest",
           "-c:v", "mpeg4", "-c:a", "aac", "-ac", "2", "-ar", "48000",
           str(folder / "video.mp4"))
    files["mp4"] = folder / "video.mp4"
    # 70 s: the English sentence again and again, with pauses, as AAC.
    ffmpeg("-stream_loop", "-1", "-i", str(raw_en), "-af", "apad=pad_dur=1",
           "-t", str(LONG_SECONDS), "-c:a", "aac", str(folder / "long.m4a"))
    files["long"] = folder / "long.m4a"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "4", str(folder / "silence.wav"))
    files["silence"] = folder / "silence.wav"
    # Broken files: cut off mid-stream, empty, text with an audio name, a silent video.
    data = files["m4a"].read_bytes()
    (folder / "truncated.m4a").write_bytes(data[: len(data) // 3])
    files["truncated"] = folder / "truncated.m4a"
    (folder / "empty.m4a").write_bytes(b"")
    files["empty"] = folder / "empty.m4a"
    (folder / "notes.mp3").write_text("this is not audio\n" * 50)
    files["text"] = folder / "notes.mp3"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x48:r=5", "-t", "2", "-c:v", "mpeg4",
           str(folder / "no-sound.mp4"))
    files["no-sound"] = folder / "no-sound.mp4"
    return files
