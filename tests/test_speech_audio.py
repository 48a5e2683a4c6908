"""Audio in: every format users bring, through pydub and the real ffmpeg, and the errors.

These call the runtime's audio module in this process (it needs only pydub and numpy),
so they cost no model load.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from llmsetup.runtime import _rt
from llmsetup.runtime import audio as rt_audio
from tests.speech_fixtures import LONG_SECONDS, ffmpeg


def probe_duration(path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout)["format"]["duration"])


@pytest.mark.parametrize(("kind", "source", "slack"), [
    ("wav", "wav", 0.01), ("m4a", "zh", 0.1), ("mp3", "wav", 0.1), ("flac", "wav", 0.01),
    ("ogg", "wav", 0.1), ("webm", "wav", 0.1), ("aac", "wav", 0.1),
    ("mp4", "wav", 0.25),  # -shortest cuts the sound at a video frame (0.2 s)
    ("long", None, 0.1),
])
def test_every_format_becomes_16k_mono_float(speech, kind, source, slack, tmp_path):
    # AMR is missing here only because Debian's ffmpeg has no AMR encoder to make a file
    # with; reading one is FFmpeg's amrnb decoder, the same path as these formats.
    item = rt_audio.load(str(speech[kind]), str(tmp_path))
    assert item.samples.dtype.name == "float32" and item.samples.ndim == 1
    expected = probe_duration(speech[source]) if source else LONG_SECONDS
    assert item.duration_s == pytest.approx(expected, abs=slack)
    assert item.samples.size == pytest.approx(item.duration_s * 16000, abs=16)
    assert -30 < item.peak_dbfs <= 0
    assert not rt_audio.is_silent(item)
    assert item.pipeline_input()["sampling_rate"] == 16000
    assert list(tmp_path.iterdir()) == []  # the 16 kHz intermediate file is gone


def test_stereo_44k_m4a_is_read_as_recorded(speech, tmp_path):
    item = rt_audio.load(str(speech["m4a"]), str(tmp_path))
    assert (item.source_rate, item.source_channels) == (44100, 2)


def rms_dbfs(samples) -> float:
    import numpy as np

    steady = samples[1000:-1000]  # past the filter's ringing at the tone's abrupt start
    return float(10 * np.log10(max(float((steady.astype("float64") ** 2).mean()), 1e-20)))


def test_resampling_filters_what_16_khz_cannot_hold(tmp_path):
    # A 12 kHz tone does not exist at 16 kHz (Nyquist 8 kHz). FFmpeg's resampler removes
    # it; pydub's set_frame_rate (plain interpolation) folds it down to a 4 kHz tone at
    # full level, which this test measured at -21 dBFS, the level of the tone itself.
    for freq in (1000, 12000):
        ffmpeg("-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=48000", "-t", "2",
               str(tmp_path / f"{freq}.flac"))
    kept = rt_audio.load(str(tmp_path / "1000.flac"), str(tmp_path))
    removed = rt_audio.load(str(tmp_path / "12000.flac"), str(tmp_path))
    assert rms_dbfs(kept.samples) == pytest.approx(-21.1, abs=0.5)  # a sine at 1/8 scale
    assert rms_dbfs(removed.samples) < -80


def test_silence_is_detected(speech, tmp_path):
    item = rt_audio.load(str(speech["silence"]), str(tmp_path))
    assert rt_audio.is_silent(item)
    failure = rt_audio.silent_failure(item)
    assert failure.code == "silent-audio" and "digital silence" in failure.message


@pytest.mark.parametrize(("kind", "code", "words"), [
    ("truncated", "bad-audio", "FFmpeg cannot read it as audio"),
    ("text", "bad-audio", "FFmpeg cannot read it as audio"),
    ("empty", "no-audio", "the file is empty"),
    ("no-sound", "no-audio", "no audio stream"),
])
def test_unreadable_audio_fails_with_a_code(speech, tmp_path, kind, code, words):
    with pytest.raises(_rt.Failure) as info:
        rt_audio.load(str(speech[kind]), str(tmp_path))
    assert info.value.code == code and words in info.value.message
    assert info.value.exit_code == 2
    assert "Traceback" not in info.value.message


def test_without_ffmpeg_wav_still_works_and_m4a_says_how_to_install(
        speech, tmp_path, monkeypatch):
    wav_seconds = probe_duration(speech["wav"])
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.chdir(empty)  # pydub also looks in the current folder
    assert rt_audio.find_ffmpeg() is None
    with pytest.raises(_rt.Failure) as info:
        rt_audio.load(str(speech["m4a"]), str(tmp_path))
    assert info.value.code == "ffmpeg-missing"
    assert "apt install ffmpeg" in info.value.hint
    assert "yum install ffmpeg ffmpeg-devel" in info.value.hint
    # espeak's 22.05 kHz WAV is read by pydub itself and resampled without FFmpeg.
    item = rt_audio.load(str(speech["wav"]), str(tmp_path))
    assert item.duration_s == pytest.approx(wav_seconds, abs=0.01)


def test_save_converted_writes_mp3_by_default_and_never_over_the_input(speech, tmp_path):
    segment = rt_audio.decode(str(speech["m4a"]))
    written = rt_audio.save_converted(segment, str(speech["m4a"]), str(tmp_path / "test"))
    assert written == str(tmp_path / "test.mp3")
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                          "-of", "csv=p=0", written], capture_output=True, text=True)
    assert out.stdout.strip() == "mp3"
    flac = rt_audio.save_converted(segment, str(speech["m4a"]), str(tmp_path / "copy.flac"))
    assert probe_duration(flac) == pytest.approx(probe_duration(speech["m4a"]), abs=0.1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.flac", "test.mp3"]
    with pytest.raises(_rt.Failure, match="is the input file itself"):
        rt_audio.save_converted(segment, str(speech["m4a"]), str(speech["m4a"]))
