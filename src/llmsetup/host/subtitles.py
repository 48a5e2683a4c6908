"""Transcripts as text, JSON, SRT and WebVTT: pure functions, no I/O.

They live on the host side: the runtime reports what the pipeline said (text and chunks
with raw timestamps) and the host owns formatting and writing files, so every output goes
through the same atomic write and the formats can be tested without a model.

The pipeline's timestamps are already absolute across its 30 s windows, but they are not
always tidy: the last chunk often has no end (``None``: "Whisper did not predict an ending
timestamp"), a chunk can start before the previous one ended where windows overlap, and a
weak model can point past the end of the audio. :func:`clean_segments` makes them
monotonic (each start at or after the previous end, each end at or after its start) and
clamps them to the audio's duration, so that every player accepts the subtitles.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from llmsetup.i18n import _

FORMATS = ("txt", "json", "srt", "vtt")


@dataclass(frozen=True)
class Segment:
    """One cue: seconds from the start of the audio, and its text."""

    start: float
    end: float
    text: str


def _clamp(value: float, duration: float | None) -> float:
    value = max(0.0, float(value))
    return min(value, duration) if duration else value


def clean_segments(chunks: Iterable[dict], duration: float | None,
                   strip: bool = True) -> list[Segment]:
    """Monotonic, clamped segments from the pipeline's chunks; chunks without text dropped.

    A missing start becomes the previous end; a missing end becomes the next known start,
    or the end of the audio. ``strip=False`` keeps the leading space that marks where an
    English word starts (for :func:`group_words`).
    """
    items = [(c.get("start"), c.get("end"), c.get("text") or "") for c in chunks]
    segments: list[Segment] = []
    previous_end = 0.0
    for i, (start, end, text) in enumerate(items):
        if start is None:
            start = previous_end
        if end is None:
            later = [s for s, _end, _text in items[i + 1:] if s is not None]
            end = later[0] if later else (duration if duration else start)
        start = max(_clamp(start, duration), previous_end)
        end = max(_clamp(end, duration), start)
        if text.strip():
            segments.append(Segment(round(start, 3), round(end, 3),
                                    text.strip() if strip else text))
        previous_end = end
    return segments


def group_words(words: list[Segment], max_chars: int = 42, max_seconds: float = 7.0,
                max_gap: float = 1.0) -> list[Segment]:
    """Word timestamps gathered into subtitle lines.

    A line ends before it would pass ``max_chars`` (a common subtitle width) or
    ``max_seconds``, and at a pause longer than ``max_gap``. Words are joined as Whisper
    spells them (English words carry their leading space; Chinese has none).
    """
    lines: list[Segment] = []
    current: list[Segment] = []

    def flush() -> None:
        if current:
            text = "".join(w.text if i else w.text.lstrip() for i, w in enumerate(current))
            lines.append(Segment(current[0].start, current[-1].end, text.strip()))
            current.clear()

    for word in words:
        if current:
            text_len = sum(len(w.text) for w in current) + len(word.text)
            if (text_len > max_chars or word.end - current[0].start > max_seconds
                    or word.start - current[-1].end > max_gap):
                flush()
        current.append(word)
    flush()
    return lines


def timestamp(seconds: float, decimal: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT) or with ``decimal="."`` ``HH:MM:SS.mmm`` (WebVTT)."""
    millis = round(max(0.0, seconds) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cue_text(text: str) -> str:
    # A blank line ends a cue in both formats, and "-->" would read as a timing line.
    lines = [line.strip() for line in text.replace("-->", "->").splitlines()]
    return "\n".join(line for line in lines if line)


def to_srt(segments: list[Segment]) -> str:
    """SubRip: numbered cues, comma before the milliseconds."""
    cues = [f"{i}\n{timestamp(s.start)} --> {timestamp(s.end)}\n{_cue_text(s.text)}\n"
            for i, s in enumerate(segments, 1)]
    return "\n".join(cues)


def to_vtt(segments: list[Segment]) -> str:
    """WebVTT: a header, then cues with a dot before the milliseconds."""
    cues = [f"{timestamp(s.start, '.')} --> {timestamp(s.end, '.')}\n{_cue_text(s.text)}\n"
            for s in segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def to_txt(text: str) -> str:
    return text.strip() + "\n"


def transcript_doc(transcript: dict, model: str | None = None) -> dict:
    """The JSON document of one file: full text, cleaned chunks, words in word mode."""
    duration = transcript.get("duration_s")
    word_mode = transcript.get("timestamps") == "word"
    segments = clean_segments(transcript.get("chunks") or [], duration, strip=not word_mode)
    doc = {
        "file": transcript.get("file"),
        "model": model,
        "language": transcript.get("language"),
        "task": transcript.get("task"),
        "duration_s": duration,
        "text": (transcript.get("text") or "").strip(),
        "timestamps": transcript.get("timestamps", "chunk"),
        "chunks": [asdict(s) for s in (group_words(segments) if word_mode else segments)],
    }
    if word_mode:
        doc["words"] = [dict(asdict(s), text=s.text.strip()) for s in segments]
    return doc


def render(fmt: str, transcript: dict, model: str | None = None) -> str:
    """One file's transcript (a runtime ``transcript`` event) in ``fmt``."""
    if fmt == "txt":
        return to_txt(transcript.get("text") or "")
    doc = transcript_doc(transcript, model)
    if fmt == "json":
        return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    segments = [Segment(**c) for c in doc["chunks"]]
    if fmt == "srt":
        return to_srt(segments)
    if fmt == "vtt":
        return to_vtt(segments)
    raise ValueError(_("unknown format {format!r} (one of {choices})").format(
        format=fmt, choices=", ".join(FORMATS)))
