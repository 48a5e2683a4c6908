"""The transcript formats and the text metrics, as pure functions (no model, no audio)."""

from __future__ import annotations

import json
import re

import pytest

from llmsetup.host import subtitles
from llmsetup.host.subtitles import Segment
from llmsetup.runtime import _rt, asr, textmetrics
from llmsetup.runtime import audio as rt_audio

# What the pipeline hands back around a window boundary: an overlap, a chunk with no
# text, a chunk past the end of the audio, and a last chunk without an end.
RAW = [
    {"start": 0.0, "end": 4.2, "text": " Hello there."},
    {"start": 3.9, "end": 8.0, "text": " How are you?"},
    {"start": 8.0, "end": 9.0, "text": "  "},
    {"start": 29.5, "end": 31.2, "text": " Across the boundary."},
    {"start": 58.0, "end": 75.0, "text": " Past the end."},
    {"start": 66.0, "end": None, "text": " No end."},
]
TIME = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"


def seconds(match: tuple[str, str, str, str]) -> float:
    h, m, s, ms = map(int, match)
    return h * 3600 + m * 60 + s + ms / 1000


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """An SRT reader written from the format's description, independent of the writer."""
    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        assert lines[0].strip().isdigit(), block
        times = re.fullmatch(TIME + r" --> " + TIME, lines[1])
        assert times, lines[1]
        cues.append((seconds(times.groups()[:4]), seconds(times.groups()[4:]),
                     "\n".join(lines[2:])))
    assert [int(b.splitlines()[0]) for b in text.strip().split("\n\n")] == \
        list(range(1, len(cues) + 1))
    return cues


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    assert text.startswith("WEBVTT\n\n")
    cues = []
    for block in text[len("WEBVTT\n\n"):].strip().split("\n\n"):
        lines = block.splitlines()
        times = re.fullmatch(TIME + r" --> " + TIME, lines[0])
        assert times and "," not in lines[0], lines[0]
        cues.append((seconds(times.groups()[:4]), seconds(times.groups()[4:]),
                     "\n".join(lines[1:])))
    return cues


def assert_monotonic(cues) -> None:
    previous_end = 0.0
    for start, end, text in cues:
        assert previous_end <= start <= end, cues
        assert text.strip()
        previous_end = end


def test_clean_segments_makes_times_monotonic_and_clamped():
    segments = subtitles.clean_segments(RAW, duration=70.0)
    assert [s.text for s in segments] == ["Hello there.", "How are you?",
                                         "Across the boundary.", "Past the end.", "No end."]
    assert segments[1].start == 4.2  # the overlap starts where the previous cue ended
    assert segments[2] == Segment(29.5, 31.2, "Across the boundary.")
    assert segments[3].end == 70.0  # clamped to the audio
    assert segments[4] == Segment(70.0, 70.0, "No end.")
    assert_monotonic([(s.start, s.end, s.text) for s in segments])


def test_a_missing_end_takes_the_next_start_or_the_duration():
    chunks = [{"start": 0.0, "end": None, "text": "a"}, {"start": 2.5, "end": 3.0, "text": "b"},
              {"start": None, "end": None, "text": "c"}]
    assert subtitles.clean_segments(chunks, duration=10.0) == [
        Segment(0.0, 2.5, "a"), Segment(2.5, 3.0, "b"), Segment(3.0, 10.0, "c")]


@pytest.mark.parametrize(("value", "srt", "vtt"), [
    (0, "00:00:00,000", "00:00:00.000"),
    (61.0399, "00:01:01,040", "00:01:01.040"),
    (3725.5, "01:02:05,500", "01:02:05.500"),
    (-1, "00:00:00,000", "00:00:00.000"),
])
def test_timestamp(value, srt, vtt):
    assert subtitles.timestamp(value) == srt
    assert subtitles.timestamp(value, ".") == vtt


def test_srt_and_vtt_parse_back_to_the_segments():
    segments = subtitles.clean_segments(RAW, duration=70.0)
    segments.append(Segment(70.0, 70.0, "two\n\nlines --> here"))
    expected = [(s.start, s.end) for s in segments]
    srt = parse_srt(subtitles.to_srt(segments))
    vtt = parse_vtt(subtitles.to_vtt(segments))
    assert [(a, b) for a, b, _ in srt] == expected == [(a, b) for a, b, _ in vtt]
    assert srt[-1][2] == vtt[-1][2] == "two\nlines -> here"  # no blank line inside a cue
    assert_monotonic(srt)


def test_render_json_has_the_full_text_and_the_cleaned_chunks():
    transcript = {"file": "/x/a.m4a", "text": " Hello there. How are you?", "chunks": RAW,
                  "duration_s": 70.0, "language": "en", "task": "transcribe"}
    doc = json.loads(subtitles.render("json", transcript, model="whisper-large-v3"))
    assert doc["text"] == "Hello there. How are you?"
    assert doc["model"] == "whisper-large-v3" and doc["duration_s"] == 70.0
    assert [c["text"] for c in doc["chunks"]][:2] == ["Hello there.", "How are you?"]
    assert "words" not in doc
    assert subtitles.render("txt", transcript) == "Hello there. How are you?\n"
    with pytest.raises(ValueError):
        subtitles.render("docx", transcript)


def test_word_timestamps_become_lines():
    words = [{"start": i * 0.5, "end": i * 0.5 + 0.4, "text": f" word{i}"} for i in range(12)]
    words.insert(6, {"start": 2.95, "end": 2.95, "text": ""})  # the pipeline leaves such
    words += [{"start": 20.0, "end": 20.5, "text": " after"}, {"start": 20.5, "end": 21.0,
                                                             "text": " pause"}]
    doc = subtitles.transcript_doc({"chunks": words, "duration_s": 30.0, "text": "x",
                                    "timestamps": "word"})
    lines = doc["chunks"]
    assert all(len(line["text"]) <= 42 for line in lines)
    assert lines[-1] == {"start": 20.0, "end": 21.0, "text": "after pause"}  # the pause splits
    assert " ".join(line["text"] for line in lines) == " ".join(
        w["text"].strip() for w in words if w["text"])
    assert len(doc["words"]) == 14


def test_chinese_words_join_without_spaces():
    words = [Segment(0.0, 0.3, "你好"), Segment(0.3, 0.6, "，"), Segment(0.6, 1.0, "北京")]
    assert subtitles.group_words(words) == [Segment(0.0, 1.0, "你好，北京")]


@pytest.mark.parametrize(("reference", "hypothesis", "expected"), [
    ("Hello, world!", "hello world", 0.0),  # case, punctuation and spaces do not count
    ("你好，我在北京工作。", "你好我在北京工作", 0.0),
    ("你好，我在北京工作。", "你好我在南京工作", 1 / 8),
    ("abcd", "", 1.0),
    ("abcd", "abcdxxxx", 1.0),
    ("", "", 0.0),
    ("ＡＢＣ", "abc", 0.0),  # full-width letters fold (NFKC)
])
def test_cer(reference, hypothesis, expected):
    assert textmetrics.cer(reference, hypothesis) == pytest.approx(expected, abs=1e-4)


def test_edit_distance():
    assert textmetrics.edit_distance("kitten", "sitting") == 3
    assert textmetrics.edit_distance("", "abc") == 3


def test_oom_advice_names_a_smaller_batch():
    assert "--batch-size 8" in asr.oom_advice(16)
    assert "--batch-size 1" in asr.oom_advice(2)
    assert "smaller model" in asr.oom_advice(1)


@pytest.mark.parametrize(("seconds_", "windows"), [(5, 1), (30, 1), (31, 2), (50, 2), (70, 3)])
def test_chunk_count(seconds_, windows):
    # 30 s windows that overlap by 5 s on each side: a new window every 20 s.
    assert rt_audio.chunk_count(seconds_ * 16000, 30.0) == windows


def test_judge():
    sample = {"text": "hello world", "max_cer": 0.3}
    assert asr.judge({"text": "hello word"}, sample, random_weights=False)["passed"]
    bad = asr.judge({"text": "zzzz"}, sample, random_weights=False)
    assert not bad["passed"] and "above the bound of 30%" in bad["reason"]
    assert asr.judge({"text": "zzzz"}, sample, random_weights=True)["passed"]
    assert not asr.judge({"text": " "}, None, random_weights=False)["passed"]


def test_language_code_accepts_codes_names_and_tokens():
    lang_to_id = {"<|en|>": 1, "<|zh|>": 2, "<|yue|>": 3}
    assert asr.language_code("zh", lang_to_id) == "zh"
    assert asr.language_code("Chinese", lang_to_id) == "zh"
    assert asr.language_code("<|yue|>", lang_to_id) == "yue"
    assert asr.language_code(None, lang_to_id) is None
    for bad in ("klingon", "ja"):  # unknown to Whisper; known but not to this model
        with pytest.raises(_rt.Failure) as info:
            asr.language_code(bad, lang_to_id)
        assert info.value.code == "bad-input" and f"--language {bad}" in info.value.message
