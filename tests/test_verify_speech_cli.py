"""`llmsetup verify whisper-large-v3 --audio test.m4a`: the book's Whisper check, as a command."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def test_verify_recipe_name_with_m4a_like_the_book(cli, tiny_whisper, speech, tmp_path):
    # The model where `llmsetup download whisper-large-v3` puts it (a tiny random stand-in
    # for the 3 GB of weights: random-weight models only have to run).
    folder = Path(os.environ["LLMSETUP_MODELS_DIR"]) / "openai" / "whisper-large-v3"
    shutil.copytree(tiny_whisper, folder)
    converted = tmp_path / "test.mp3"
    result = cli("verify", "whisper-large-v3", "--audio", speech["m4a"], "--cpu",
                 "--save-converted", converted)
    assert result.exit_code == 0, result.output
    assert "zh.m4a" in result.stdout  # the summary names the recording
    assert converted.is_file() and converted.stat().st_size > 0
    assert not (speech["m4a"].parent / "zh.mp3").exists()  # nothing next to the user's file


def test_verify_folder_json(cli, tiny_whisper, speech):
    result = cli("verify", tiny_whisper, "--audio", speech["mp3"], "--cpu", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["kind"] == "asr"
    item = doc["items"][0]
    assert item["duration_s"] > 0 and item["file"].endswith("en.mp3")


def test_verify_speech_rejects_text_options(cli, tiny_whisper):
    result = cli("verify", tiny_whisper, "--4bit")
    assert result.exit_code == 2 and "speech model" in result.stderr


def test_verify_text_model_rejects_audio(cli, tiny_llama, speech):
    result = cli("verify", tiny_llama, "--audio", speech["mp3"])
    assert result.exit_code == 2 and "--audio" in result.stderr


def test_verify_unreadable_audio_is_bad_input(cli, tiny_whisper, speech):
    result = cli("verify", tiny_whisper, "--audio", speech["text"], "--cpu")
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "notes.mp3" in result.stderr
