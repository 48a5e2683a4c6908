"""``llmsetup transcribe``: speech to text, JSON or subtitles, many files in one model load."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import (
    BeamsOpt,
    DeviceOpt,
    JsonOpt,
    SpeechEngineOpt,
    TargetArg,
    check_input_files,
    check_interpreter,
)
from llmsetup.cli._output import Output
from llmsetup.i18n import _

FilesArg = Annotated[list[str], typer.Argument(
    metavar="FILE...", callback=check_input_files,
    help=_("Recordings in any format FFmpeg reads (m4a, mp3, wav, flac, "
    "ogg, webm, mp4, aac, amr, ...)."))]
OutputOpt = Annotated[str | None, typer.Option(
    "--output", "-o", metavar="PATH",
    help=_("A file (one input) or a folder (several inputs, or a path ending in /). "
    "Default: stdout."))]
FormatOpt = Annotated[str | None, typer.Option(
    "--format", "-f", metavar="txt|json|srt|vtt",
    help=_("Output format."), show_default=_("the --output suffix, else txt"))]
LanguageOpt = Annotated[str | None, typer.Option(
    "--language", "-l", metavar="LANG",
    help=_("Spoken language (zh, en, ...)."), show_default=_("detected per 30 s window"))]
TaskOpt = Annotated[str | None, typer.Option(
    "--task", metavar="transcribe|translate",
    help=_("translate: English text from any language."), show_default=_("the recipe's, transcribe"))]
BatchOpt = Annotated[int | None, typer.Option(
    "--batch-size", metavar="N", help=_("30 s windows decoded together; lower it on out of memory."),
    show_default=_("the recipe's, 16"))]
ChunkOpt = Annotated[float | None, typer.Option(
    "--chunk-length", metavar="SECONDS", help=_("Window length, at most 30."),
    show_default=_("the recipe's, 30"))]
TimestampsOpt = Annotated[str, typer.Option(
    "--timestamps", metavar="chunk|word",
    help=_("Subtitle cues per phrase (chunk) or from word timestamps (word)."))]
PythonOpt = Annotated[str | None, typer.Option(
    "--python", metavar="PATH", help=_("Run the model with this interpreter."),
    callback=check_interpreter,
    show_default=_("the environment `llmsetup install` made"))]
ForceOpt = Annotated[bool, typer.Option("--force", help=_("Replace existing output files."))]


def transcribe_cmd(
    ctx: typer.Context,
    target: TargetArg,
    files: FilesArg,
    output: OutputOpt = None,
    fmt: FormatOpt = None,
    language: LanguageOpt = None,
    task: TaskOpt = None,
    batch_size: BatchOpt = None,
    chunk_length: ChunkOpt = None,
    timestamps: TimestampsOpt = "chunk",
    device: DeviceOpt = "auto",
    engine: SpeechEngineOpt = "transformers",
    beams: BeamsOpt = None,
    python: PythonOpt = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Transcribe recordings with a Whisper model: text, JSON or SRT/VTT subtitles."""
    from llmsetup.host import asr as speech

    app = state(ctx)
    out = Output(json_)
    several = len(files) > 1

    def on_event(event: dict) -> None:
        if event.get("event") == "output" and event["path"] is None:
            if not json_:  # --json: the transcripts are in the one JSON document
                if several:
                    sys.stdout.write(f"==> {event['file']} <==\n")
                sys.stdout.write(event["content"])
                sys.stdout.flush()
        elif not json_ or event.get("event") in ("warning", "output"):
            speech.stderr_progress(event)  # warnings and written files: stderr, always

    report = speech.transcribe(
        target=app.target(target), settings=app.settings, files=files, output=output,
        fmt=fmt, python=python, language=language, task=task, batch_size=batch_size,
        chunk_length=chunk_length, timestamps=timestamps, device=device, force=force,
        engine=engine, beams=beams, on_event=on_event)
    if json_:
        out.result(report)
        return
    for line in speech.summary_lines(report):
        out.info(line)
