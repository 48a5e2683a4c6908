"""Audio in for the speech runtime: any file FFmpeg reads, as 16 kHz mono float samples.

The book converts ``test.m4a`` to ``test.mp3`` with pydub because the pipeline does not
read m4a. We keep pydub (so a recipe's environment needs nothing new) but skip the lossy
mp3 step: pydub decodes the file through FFmpeg, FFmpeg's own resampler makes 16 kHz mono
(pydub's ``set_frame_rate`` interpolates without an anti-aliasing filter), and the
pipeline gets ``{"raw": samples, "sampling_rate": 16000}`` so it never calls FFmpeg
itself. Every intermediate file lives in a temporary folder of ours (pydub's own temporary
files too: :func:`use_temp_folder`); nothing is written next to the user's file unless
``--save-converted`` names a path.

A PCM WAV file is read without FFmpeg (pydub reads WAV natively), so the bundled speech
samples work on a machine that lacks it; any other format then fails with the code
``ffmpeg-missing`` and the install line for the user's OS.

The ctranslate2 engine reads files with :func:`load_av` instead: PyAV (FFmpeg's libraries,
in the process; faster-whisper depends on it, so it comes with the engine) decodes and
resamples exactly as faster-whisper itself does, without starting ffprobe and ffmpeg
twice (about 0.1 s each on an idle machine, far more on a busy one).
"""

from __future__ import annotations

import math
import os
import platform
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if __package__:
    from . import _i18n, _rt
else:
    import _i18n
    import _rt

# Fixed hints are marked with N_ for the catalog: the JSON event carries them in English,
# and the host shows them in the user's language (host/runner.py).
N_ = _i18n.N_

SAMPLE_RATE = 16000
SILENCE_DBFS = -60.0  # a peak below this is no recording at all, not quiet speech
# ffmpeg's muxer (and codec) for suffixes whose muxer name differs from the suffix.
EXPORT_FORMATS = {".m4a": ("ipod", "aac"), ".aac": ("adts", "aac"), ".mka": ("matroska", None),
                  ".oga": ("ogg", None), ".opus": ("opus", "libopus")}


@dataclass
class Audio:
    """Decoded audio, ready for the pipeline."""

    path: str
    samples: object  # numpy float32 array, mono, SAMPLE_RATE
    duration_s: float
    source_rate: int
    source_channels: int
    peak_dbfs: float

    def pipeline_input(self) -> dict:
        """A fresh input dict: the pipeline pops keys from the one it is given."""
        return {"raw": self.samples, "sampling_rate": SAMPLE_RATE}


def use_temp_folder(folder: str) -> None:
    """Send every temporary file of this process (pydub makes some) into ``folder``."""
    tempfile.tempdir = folder


def install_hint() -> str:
    """How to install FFmpeg on this OS (the book's lines, plus macOS and conda)."""
    system = platform.system()
    if system == "Windows":
        return N_("Download an FFmpeg build for Windows (ffmpeg.org/download.html), and put "
                  "ffmpeg.exe and ffprobe.exe on PATH or in the folder you run llmsetup from; "
                  "or `conda install -c conda-forge ffmpeg` in the model's environment.")
    if system == "Darwin":
        return N_("Install it with `brew install ffmpeg` (or `conda install -c conda-forge ffmpeg`).")
    return N_("Install it: `sudo apt install ffmpeg` (Debian/Ubuntu), `sudo yum install ffmpeg "
              "ffmpeg-devel` (CentOS/RHEL, with RPM Fusion enabled), or `conda install -c "
              "conda-forge ffmpeg` in the model's environment.")


def find_ffmpeg() -> str | None:
    """FFmpeg as pydub will find it (PATH, then the current folder), or None.

    pydub also needs ffprobe (it reads the stream layout first), so both must be there.
    """
    from pydub.utils import which

    ffmpeg = which("ffmpeg")
    return ffmpeg if ffmpeg and which("ffprobe") else None


def ffmpeg_missing(path: str) -> _rt.Failure:
    return _rt.Failure(
        "ffmpeg-missing",
        f"FFmpeg is needed to read {Path(path).name} but was not found (ffmpeg and ffprobe, "
        "on PATH or in the current folder)", install_hint(), exit_code=2)


def _ffmpeg_reason(text: str, path: str = "") -> str:
    """The line of FFmpeg's output that says what was wrong (without the file's name)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    found = lines[-1] if lines else "unknown error"
    for line in reversed(lines):
        low = line.lower()
        if any(w in low for w in ("invalid", "error", "not found", "could not", "no such",
                                  "does not contain", "unknown", "truncat", "eof")):
            found = line
            break
    if path and found.startswith(f"{path}: "):
        found = found[len(path) + 2:]
    return found[:200]


def _recording(path: str) -> Path:
    """``path`` as a file with something in it, or the Failure that says why not."""
    file = Path(path)
    if not file.is_file():
        raise _rt.Failure("bad-input", f"{path}: no such file", exit_code=2)
    if file.stat().st_size == 0:
        raise _rt.Failure("no-audio", f"{path}: the file is empty",
                          N_("Record again, or check that the copy finished."), exit_code=2)
    return file


def decode(path: str):
    """The file as a pydub AudioSegment; a clear Failure for anything unreadable."""
    try:
        from pydub import AudioSegment
        from pydub.exceptions import CouldntDecodeError
    except ImportError as exc:  # an environment made for a text model
        raise _rt.Failure(
            "no-pydub", f"reading recordings needs pydub, which this environment cannot "
            f"import ({exc})",
            N_("Use the environment of a Whisper recipe (`llmsetup install whisper-large-v3`), "
               "or `pip install pydub` in this one.")) from None

    file = _recording(path)
    ffmpeg = find_ffmpeg()
    if ffmpeg:
        AudioSegment.converter = ffmpeg
    elif file.suffix.lower() != ".wav":
        raise ffmpeg_missing(path)
    try:
        segment = AudioSegment.from_file(str(file))
    except CouldntDecodeError as exc:
        text = str(exc)
        if "does not contain any stream" in text or "matches no streams" in text:
            raise _no_stream(path) from None
        raise _rt.Failure("bad-audio", f"{path}: FFmpeg cannot read it as audio: "
                          f"{_ffmpeg_reason(text, str(file))}",
                          N_("Check that the file plays; a file cut off while copying or "
                             "recording is a common cause."), exit_code=2) from None
    except (IndexError, KeyError):
        # pydub found no audio stream in ffprobe's report (a video without sound, say).
        raise _no_stream(path) from None
    except FileNotFoundError:
        raise ffmpeg_missing(path) from None
    except Exception as exc:  # wave.Error and friends: a .wav we could not read natively
        if not ffmpeg:
            raise ffmpeg_missing(path) from None
        raise _rt.Failure("bad-audio", f"{path}: cannot read it as audio: {exc}",
                          exit_code=2) from None
    if segment.frame_count() == 0:
        raise _rt.Failure("no-audio", f"{path}: the file holds no audio samples",
                          N_("Record again, or check the file plays."), exit_code=2)
    return segment


def load_av(path: str) -> Audio:
    """``path`` decoded by PyAV into the pipeline's samples, as faster-whisper decodes."""
    import av
    import numpy as np
    from faster_whisper.audio import decode_audio

    file = _recording(path)
    try:
        with av.open(str(file), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise _no_stream(path)
            codec = container.streams.audio[0].codec_context
            rate, channels = codec.sample_rate, codec.channels
        samples = decode_audio(str(file), sampling_rate=SAMPLE_RATE)
    except av.error.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise _rt.Failure("bad-audio", f"{path}: FFmpeg cannot read it as audio: {reason[:200]}",
                          N_("Check that the file plays; a file cut off while copying or "
                             "recording is a common cause."), exit_code=2) from None
    if samples.size == 0:
        raise _rt.Failure("no-audio", f"{path}: the file holds no audio samples",
                          N_("Record again, or check the file plays."), exit_code=2)
    samples = samples.astype(np.float32, copy=False)
    peak = float(np.abs(samples).max())
    return Audio(path=path, samples=samples, duration_s=round(samples.size / SAMPLE_RATE, 3),
                 source_rate=rate, source_channels=channels,
                 peak_dbfs=round(20 * math.log10(peak), 1) if peak > 0 else -math.inf)


def _no_stream(path: str) -> _rt.Failure:
    return _rt.Failure("no-audio", f"{path}: the file has no audio stream",
                       N_("Is this a video without sound, or a file of another kind?"),
                       exit_code=2)


def to_pipeline_rate(segment, folder: str):
    """``segment`` as 16 kHz mono 16-bit, resampled by FFmpeg where it is available."""
    from pydub import AudioSegment

    if segment.frame_rate == SAMPLE_RATE and segment.channels == 1 \
            and segment.sample_width == 2:
        return segment
    if find_ffmpeg():
        target = os.path.join(folder, "pipeline-16k.wav")
        segment.export(target, format="wav",
                       parameters=["-ac", "1", "-ar", str(SAMPLE_RATE), "-sample_fmt", "s16"])
        converted = AudioSegment.from_wav(target)
        os.remove(target)
        return converted
    return segment.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2)


def prepare(segment, path: str, folder: str) -> Audio:
    """The pipeline's samples for a decoded ``segment``; temporary files go to ``folder``."""
    import numpy as np

    mono = to_pipeline_rate(segment, folder)
    samples = np.frombuffer(mono.raw_data, dtype=np.int16).astype(np.float32) / 32768.0
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    return Audio(path=path, samples=samples, duration_s=round(samples.size / SAMPLE_RATE, 3),
                 source_rate=segment.frame_rate, source_channels=segment.channels,
                 peak_dbfs=round(20 * math.log10(peak), 1) if peak > 0 else -math.inf)


def load(path: str, folder: str) -> Audio:
    """Decode ``path`` and make the pipeline's samples."""
    return prepare(decode(path), path, folder)


def is_silent(audio: Audio) -> bool:
    return audio.peak_dbfs < SILENCE_DBFS


def silent_failure(audio: Audio) -> _rt.Failure:
    level = "digital silence" if audio.peak_dbfs == -math.inf else \
        f"peak level {audio.peak_dbfs} dBFS"
    return _rt.Failure("silent-audio",
                       f"{audio.path}: the recording is silent ({level} over "
                       f"{audio.duration_s:.1f} s), so there is nothing to transcribe",
                       N_("Check the microphone and the recorder's input level."), exit_code=2)


def save_converted(segment, source: str, dest: str) -> str:
    """Write ``segment`` (decoded from ``source``) to ``dest``: mp3 unless the suffix says
    otherwise.

    Like the book's ``AudioSegment.from_file("test.m4a").export("test.mp3")``, at the
    source's own rate and channels. Written to a temporary name first and moved into place,
    so a failed export never leaves half a file; never over the source itself.
    """
    target = Path(dest).expanduser()
    if not target.suffix:
        target = target.with_suffix(".mp3")
    if target.resolve() == Path(source).resolve():
        raise _rt.Failure("bad-input", f"--save-converted {dest} is the input file itself",
                          N_("Choose another file name."), exit_code=2)
    if not target.parent.is_dir():
        raise _rt.Failure("bad-input", f"--save-converted {dest}: no folder {target.parent}",
                          exit_code=2)
    if not find_ffmpeg():
        raise ffmpeg_missing(str(target))
    fmt, codec = EXPORT_FORMATS.get(target.suffix.lower(), (target.suffix.lower()[1:], None))
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        segment.export(str(partial), format=fmt, codec=codec)
        os.replace(partial, target)
    except Exception as exc:
        raise _rt.Failure("bad-input", f"cannot write {target} as {fmt}: "
                          f"{_ffmpeg_reason(str(exc))}",
                          N_("Use a common suffix: .mp3, .wav, .flac, .ogg or .m4a."),
                          exit_code=2) from None
    finally:
        if partial.exists():
            partial.unlink()
    return str(target)


def chunk_count(n_samples: int, chunk_length_s: float, stride_s: float | None = None) -> int:
    """How many windows the pipeline cuts ``n_samples`` into (for progress)."""
    if not chunk_length_s:
        return 1
    stride = chunk_length_s / 6 if stride_s is None else stride_s
    chunk = round(chunk_length_s * SAMPLE_RATE)
    step = chunk - 2 * round(stride * SAMPLE_RATE)
    if n_samples <= chunk:
        return 1
    return 1 + math.ceil((n_samples - chunk) / step)


if __name__ == "__main__":  # a module of the runtime, not a command
    sys.exit("audio.py is used by asr.py")
