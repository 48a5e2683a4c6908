"""Models whose length limits are below the recipe's settings: the run fits itself to the
model and says so, instead of failing inside transformers (issue 12, item 26)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def short_whisper(tmp_path_factory):
    """A tiny Whisper whose decoder holds 64 tokens: less than the 128 new tokens (plus the
    start of each window) that the book's settings ask for."""
    import subprocess
    import sys

    from tests.conftest import RUNTIME

    out = tmp_path_factory.mktemp("models") / "short-whisper"
    proc = subprocess.run([sys.executable, str(RUNTIME / "fixtures.py"), "whisper", str(out),
                           "--max-target-positions", "64"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "config.json").read_text())["max_target_positions"] == 64
    return out


def test_a_whisper_with_a_short_decoder_transcribes_with_a_note(cli, short_whisper, speech):
    result = cli("transcribe", short_whisper, speech["mp3"], "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["settings"]["max_new_tokens"] == 60
    assert doc["notes"] == ["max_new_tokens 128 is more than this model's decoder holds "
                            "(max_target_positions 64, 4 of them for the start of each "
                            "window): using 60"]
    assert "stopped unexpectedly" not in result.stderr
    human = cli("transcribe", short_whisper, speech["mp3"])
    assert human.exit_code == 0
    assert "Warning: max_new_tokens 128 is more than this model's decoder holds" in human.stderr


def test_verify_of_a_short_whisper_notes_it_too(cli, short_whisper):
    result = cli("verify", short_whisper, "--json")
    assert result.exit_code == 0, result.output
    assert "using 60" in json.loads(result.stdout)["notes"][0]


def test_a_released_size_whisper_needs_no_note(cli, tiny_whisper, speech):
    doc = json.loads(cli("transcribe", tiny_whisper, speech["mp3"], "--json").stdout)
    assert doc["notes"] == [] and doc["settings"]["max_new_tokens"] == 128


def test_a_causal_lm_answer_longer_than_its_context_is_cut_and_noted(cli, tiny_llama):
    # tiny_llama holds 256 positions; 1000 new tokens cannot fit after any prompt.
    result = cli("verify", tiny_llama, "--cpu", "--max-new-tokens", "1000", "--prompt", "Hi",
                 "--json")
    doc = json.loads(result.stdout)
    assert doc["context_length"] == 256
    (note,) = doc["notes"]
    assert note.startswith("prompt 1: max_new_tokens 1000 does not fit the model's context "
                           "of 256 tokens after the ")
    used = int(note.rsplit("using ", 1)[1])
    assert doc["prompts"][0]["new_tokens"] <= used < 256
