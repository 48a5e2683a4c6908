"""``verify_speech``: the bundled samples, a user's m4a, the CER check, and bad input.

``llmsetup verify`` itself is written on another branch and calls
:func:`llmsetup.host.asr.verify_speech` for speech models, so these tests call it directly,
with a tiny random Whisper run by the runtime in a real subprocess.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from llmsetup.errors import CheckFailed, NotFoundError, UsageError
from llmsetup.host import asr as host
from llmsetup.settings import Settings
from tests.speech_fixtures import real_copy


def target(name_or_dir):
    from llmsetup.recipes.loader import Catalog
    from llmsetup.targets import resolve

    settings = Settings.load()
    return resolve(str(name_or_dir), settings, Catalog(settings.recipe_dirs)), settings


def verify(model, **options):
    tgt, settings = target(model)
    args = {"python": None, "audio": None, "language": None, "task": None,
            "save_converted": None, "device": "cpu", "json_mode": True} | options
    return host.verify_speech(target=tgt, settings=settings, **args)


def test_bundled_samples_run_without_ffmpeg(tiny_whisper, tmp_path, monkeypatch):
    # The samples are 16 kHz WAV: no FFmpeg needed to prove the model works.
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.chdir(empty)
    events = []
    report = verify(tiny_whisper, on_event=events.append)
    manifest = json.loads(host.SAMPLES.read_text(encoding="utf-8"))["samples"]
    assert report["ok"] and report["random_weights"] and report["kind"] == "asr"
    assert [i["language"] for i in report["items"]] == ["en", "zh"]
    for item, sample in zip(report["items"], manifest, strict=True):
        assert item["expected"] == sample["text"] and item["max_cer"] == sample["max_cer"]
        assert item["cer"] >= 0 and item["passed"]
        assert item["duration_s"] > 3 and item["transcribe_s"] > 0 and item["rtf"] > 0
    assert report["device"] == "cpu" and report["dtype"] == "float32"
    assert report["attention"] == "sdpa"  # torch 2.13 and transformers 5 have it
    assert report["load_s"] > 0 and report["peak_rss_mb"] > 50
    assert report["settings"] == {"engine": "transformers", "beams": 1,
                                  "chunk_length_s": 30.0, "batch_size": 16,
                                  "max_new_tokens": 128, "timestamps": "chunk",
                                  "language": None, "task": "transcribe"}  # the book's
    assert [e["event"] for e in events if e["event"] in ("model", "transcript")] == \
        ["model", "transcript", "transcript"]
    assert report["passed"] and report["reason"] is None
    lines = host.summary_lines(report)
    assert lines[0].startswith("tiny-whisper passed on cpu (float32, sdpa attention, random")
    assert lines[1].startswith("  en.wav: ") and "CER" in lines[1] and "bound 30%" in lines[1]
    assert lines[-1].startswith("Peak memory (RSS)")


def test_m4a_like_the_book_with_save_converted(tiny_whisper, speech, tmp_path):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    recording = recordings / "test.m4a"
    shutil.copy(speech["m4a"], recording)
    report = verify(tiny_whisper, audio=str(recording), language="zh",
                    save_converted=str(tmp_path / "test.mp3"))
    assert report["ok"]
    [item] = report["items"]
    assert item["file"] == str(recording) and item["language"] == "zh"
    assert item["duration_s"] == pytest.approx(report["audio_s"]) and item["duration_s"] > 3
    assert "cer" not in item  # no known text for the user's own recording
    assert report["converted"] == str(tmp_path / "test.mp3")
    codec = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                            "-of", "csv=p=0", report["converted"]], capture_output=True,
                           text=True).stdout.strip()
    assert codec == "mp3"
    assert [p.name for p in recordings.iterdir()] == ["test.m4a"]  # nothing written beside it


def test_a_real_model_must_match_the_known_text(tiny_whisper, tmp_path):
    model = real_copy(tiny_whisper, tmp_path / "looks-real")
    with pytest.raises(CheckFailed) as info:
        verify(model)
    report = info.value.report
    assert not report["ok"] and not report["random_weights"]
    assert all(item["cer"] > item["max_cer"] and not item["passed"] for item in report["items"])
    assert "did not pass the speech check" in info.value.message
    assert "en.wav: CER" in info.value.message and "llmsetup check" in info.value.hint
    assert not report["passed"] and "en.wav: CER" in report["reason"]
    assert info.value.exit_code == 1


@pytest.mark.parametrize(("kind", "words"), [
    ("silence", "the recording is silent (digital silence"),
    ("truncated", "FFmpeg cannot read it as audio"),
    ("empty", "the file is empty"),
    ("no-sound", "the file has no audio stream"),
])
def test_bad_audio_is_a_usage_error_before_the_model_loads(
        tiny_whisper, speech, kind, words):
    events = []
    with pytest.raises(UsageError) as info:
        verify(tiny_whisper, audio=str(speech[kind]), on_event=events.append)
    assert words in info.value.message and info.value.exit_code == 2
    assert not any(e["event"] == "stage" for e in events)  # failed before loading


def test_ffmpeg_missing_names_the_install_line(tiny_whisper, speech, tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.chdir(empty)
    with pytest.raises(UsageError) as info:
        verify(tiny_whisper, audio=str(speech["m4a"]))
    assert "FFmpeg is needed to read zh.m4a" in info.value.message
    assert "apt install ffmpeg" in info.value.hint
    assert info.value.code == "ffmpeg-missing"


def test_an_english_only_model_skips_and_refuses_other_languages(tiny_whisper, speech, tmp_path):
    model = shutil.copytree(tiny_whisper, tmp_path / "tiny.en")
    gen = json.loads((model / "generation_config.json").read_text())
    gen["is_multilingual"] = False
    (model / "generation_config.json").write_text(json.dumps(gen))
    report = verify(model)  # the bundled samples: the Chinese one is skipped
    assert report["ok"] and [i["language"] for i in report["items"]] == ["en"]
    with pytest.raises(UsageError, match="this model is English-only"):
        verify(model, audio=str(speech["mp3"]), language="zh")


def test_a_download_cut_short_is_named(tiny_whisper, tmp_path):
    model = shutil.copytree(tiny_whisper, tmp_path / "cut")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(UsageError) as info:
        verify(model)
    assert info.value.code == "incomplete-model"
    assert "cannot load the model in" in info.value.message
    assert "llmsetup check" in info.value.hint


def test_the_target_must_be_an_installed_speech_model(speech):
    with pytest.raises(UsageError, match="not a speech model"):
        verify("gemma-2b")
    with pytest.raises(NotFoundError) as info:
        verify("whisper-large-v3", audio=str(speech["m4a"]))
    assert "llmsetup install whisper-large-v3" in info.value.hint
    with pytest.raises(UsageError, match="--save-converted needs --audio"):
        verify("whisper-large-v3", save_converted="x.mp3")


@pytest.mark.compat
def test_compat_env_verifies_with_transformers_4_38(compat_python, compat_whisper, speech):
    report = verify(compat_whisper, python=compat_python)
    assert report["ok"] and report["versions"]["transformers"] == "4.38.1"
    assert [i["language"] for i in report["items"]] == ["en", "zh"]
    assert all(i["duration_s"] > 3 for i in report["items"])
    report = verify(compat_whisper, python=compat_python, audio=str(speech["m4a"]),
                    language="zh", task="translate")
    assert report["ok"] and report["items"][0]["task"] == "translate"
