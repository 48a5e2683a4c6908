"""Speech recognition from the host: verify a Whisper model, transcribe files.

The work happens in ``runtime/asr.py`` inside the model's environment; this module checks
the user's input before anything starts (so a typo costs no model load), builds the
runtime's arguments from the recipe's pipeline settings (``smoke.audio``: the book's by
default) and the user's options, turns the runtime's events into progress lines, and
writes transcripts through :mod:`llmsetup.host.subtitles`, each file atomically and as soon as
it is done.

Two engines run the model (``--engine``): ``transformers``, the book's pipeline, and
``ctranslate2``, faster-whisper on a CTranslate2 conversion of the same folder (the fast
path on CPUs; ``llmsetup install NAME --engine ctranslate2`` adds it to the environment).

``verify_speech`` is what ``llmsetup verify`` calls for targets of kind ``asr``. It raises
llmsetup errors and never exits; a model that ran but failed the check raises
:class:`~llmsetup.errors.CheckFailed` with the full report in its ``report`` attribute.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from llmsetup.errors import CheckFailed, NotFoundError, UsageError
from llmsetup.fileio import write_text_atomic
from llmsetup.host.subtitles import FORMATS, render, transcript_doc
from llmsetup.i18n import _
from llmsetup.secret import redact

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "speech" / "samples.json"
# The runtime reads local folders only: never let transformers try the hub (slow or
# blocked where many users are) or fight the pipeline's DataLoader for threads.
RUNTIME_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
TIMESTAMPS = ("chunk", "word")
ENGINES = ("transformers", "ctranslate2")
# What `install --engine ctranslate2` adds (install.steps reads it too): the versions the
# tests run. The model's own lock constrains everything they share with it.
ENGINE_PINS = {"ctranslate2": ["faster-whisper==1.2.1", "ctranslate2==4.8.5"]}

EventHandler = Callable[[dict], None]


def require_speech_model(target) -> None:
    """The target is a Whisper model whose folder is there."""
    if target.kind != "asr":
        raise UsageError(_("{name} is a {kind} model, not a speech model").format(
                             name=target.recipe.name, kind=target.kind),
                         hint=_("Use `llmsetup verify` or `llmsetup chat` for text models."))
    if not (target.model_dir / "config.json").is_file():
        name = target.recipe.name
        raise NotFoundError(
            _("{name}: no model in {path}").format(name=name, path=target.model_dir),
            hint=_("Install it first: `llmsetup install {name}` (or `llmsetup download "
                   "{name}`).").format(name=name)
            if not target.from_folder else _("Point at the folder that holds config.json."))


def audio_file(path: str | os.PathLike[str]) -> Path:
    """An existing audio file the user named, as an absolute path."""
    file = Path(path).expanduser().absolute()
    if file.is_dir():
        raise UsageError(_("{path} is a folder, not an audio file").format(path=path))
    if not file.is_file():
        raise NotFoundError(_("{path}: no such file").format(path=path),
                            hint=_("Check the path of the recording."))
    return file


def pipeline_args(recipe, *, language: str | None, task: str | None, device: str | None,
                  batch_size: int | None = None, chunk_length: float | None = None,
                  timestamps: str | None = None, engine: str = "transformers",
                  beams: int | None = None) -> list[str]:
    """Runtime options from the recipe's ``smoke.audio``, overridden by the user's."""
    from llmsetup.recipes.schema import AudioSpec

    spec = recipe.smoke.audio or AudioSpec()
    engine = (engine or "transformers").lower()
    if engine not in ENGINES:
        raise UsageError(_("--engine {engine}: use transformers or ctranslate2").format(
            engine=engine))
    if beams is not None and beams < 1:
        raise UsageError(_("--beams must be at least 1"), hint=_("1 is greedy decoding."))
    if batch_size is not None and engine == "ctranslate2":
        raise UsageError(_("--batch-size is for --engine transformers"),
                         hint=_("ctranslate2 decodes one 30 s window after another, each "
                                "following on from the text before it."))
    if batch_size is not None and batch_size < 1:
        raise UsageError(_("--batch-size must be at least 1"))
    if chunk_length is not None and not 0 < chunk_length <= 30:
        raise UsageError(_("--chunk-length must be between 0 and 30 seconds"),
                         hint=_("Whisper hears 30 s at a time; the pipeline cuts longer "
                                "audio."))
    if timestamps is None:
        timestamps = "chunk" if spec.return_timestamps else "none"
    args = ["--device", (device or "auto").lower(), "--task", task or spec.task,
            "--batch-size", str(batch_size or spec.batch_size),
            "--chunk-length", str(chunk_length or spec.chunk_length_s),
            "--max-new-tokens", str(spec.max_new_tokens), "--timestamps", timestamps,
            "--engine", engine, "--beams", str(beams or 1)]
    if language or spec.language:
        args += ["--language", language or spec.language]
    return args


def stderr_progress(event: dict) -> None:
    """Progress lines on stderr for people (``--json`` runs stay quiet)."""
    kind = event.get("event")
    name = Path(str(event.get("file", ""))).name
    line = None
    if kind == "stage":
        line = _("Loading the model on {device}...").format(device=event.get("device"))
    elif kind == "model":
        line = _("Loaded in {seconds:.1f} s ({engine})").format(seconds=event["load_s"],
                                                               engine=_engine_words(event))
    elif kind == "convert" and event.get("status") == "converting":
        line = _("Converting the model for CTranslate2 ({quantization}), once: {path}").format(
            quantization=event["quantization"], path=event["path"])
    elif kind == "convert" and event.get("status") == "converted":
        line = _("Converted in {seconds:.1f} s").format(seconds=event["seconds"])
    elif kind == "converted":
        line = _("Saved the converted audio to {path}").format(path=event["path"])
    elif kind == "progress" and event.get("chunks_total", 1) > 1:
        line = _("{file}: {fraction:.0%} ({done:.0f} s of {duration:.0f} s)").format(
            file=name, fraction=event["fraction"], done=event["seconds_done"],
            duration=event["duration_s"])
    elif kind == "transcript":
        line = _("{file}: {duration:.1f} s of audio in {seconds:.1f} s").format(
            file=name, duration=event["duration_s"], seconds=event["transcribe_s"])
    elif kind == "warning":
        line = _("Warning: {message}").format(message=event.get("message"))
    elif kind == "output" and event.get("path"):
        line = _("Wrote {path}").format(path=event["path"])
    if line:
        sys.stderr.write(redact(line) + "\n")
        sys.stderr.flush()


def _engine_words(info: dict) -> str:
    """``int8, CTranslate2`` or ``float32, sdpa attention``."""
    if info.get("engine") == "ctranslate2":
        return f"{info['dtype']}, CTranslate2"
    return _("{dtype}, {attention} attention").format(dtype=info["dtype"],
                                                      attention=info["attention"])


def engine_missing_hint(target, interpreter: str) -> str:
    """Which command adds faster-whisper to the environment that runs ``target``."""
    if not target.from_folder:
        return _("Add it to the model's environment: `llmsetup install {name} "
                 "--engine ctranslate2` (or use --engine transformers).").format(
            name=target.recipe.name)
    return _("Install it into the interpreter that runs the model: `{python} -m pip "
             "install {packages}` (or use --engine transformers).").format(
        python=interpreter, packages=" ".join(ENGINE_PINS["ctranslate2"]))


def _run(target, settings, python: str | None, args: list[str], log_name: str,
         on_event: EventHandler | None) -> dict:
    from llmsetup.envs import python_for
    from llmsetup.errors import LLMSetupError
    from llmsetup.host.runner import run_module

    interpreter = python_for(target, settings, python)
    log = settings.logs_dir / f"{log_name}-{target.recipe.name}.log"
    try:
        result = run_module(interpreter, "asr", args, log=log, on_event=on_event,
                            env=RUNTIME_ENV)
    except LLMSetupError as exc:
        if getattr(exc, "code", None) == "engine-missing":
            exc.hint = engine_missing_hint(target, str(interpreter))
        raise
    result = {k: v for k, v in result.items() if k != "event"}
    return {"name": target.recipe.name, "kind": "asr", "python": interpreter,
            "log": str(log), **result}


def verify_speech(*, target, settings, python: str | None, audio: str | None,
                  language: str | None, task: str | None, save_converted: str | None,
                  device: str | None, json_mode: bool, engine: str = "transformers",
                  beams: int | None = None, on_event: EventHandler | None = None) -> dict:
    """Prove a Whisper model works: transcribe ``audio``, or the bundled samples.

    Returns the runtime's report (per item: text, duration, transcription time, real-time
    factor, CER against the known text for the samples; model load time, dtype, attention,
    peak memory). Raises :class:`CheckFailed` when the model ran but did not pass.
    """
    if save_converted and not audio:
        raise UsageError(_("--save-converted needs --audio FILE"))
    require_speech_model(target)
    args = ["verify", "--model", str(target.model_dir),
            *pipeline_args(target.recipe, language=language, task=task, device=device,
                           engine=engine, beams=beams)]
    if audio:
        args += ["--audio", str(audio_file(audio))]
    else:
        if not SAMPLES.is_file():
            raise NotFoundError(_("the bundled speech samples are missing ({path})").format(
                                path=SAMPLES),
                                hint=_("Reinstall llmsetup, or pass --audio FILE."))
        args += ["--samples", str(SAMPLES)]
    if save_converted:
        args += ["--save-converted", str(Path(save_converted).expanduser().absolute())]
    handler = on_event or (None if json_mode else stderr_progress)
    report = _run(target, settings, python, args, "verify", handler)
    # The install step reads ``passed`` and ``reason``, like the causal-LM verifier's.
    report["passed"] = report["ok"]
    report["reason"] = "; ".join(f"{Path(i['file']).name}: {i['reason']}"
                                 for i in report["items"] if not i["passed"]) or None
    if not report["ok"]:
        raise _verdict(report)
    return report


def summary_lines(report: dict) -> list[str]:
    """A verify or transcribe report in a few plain lines, for people.

    ``llmsetup verify`` (human mode) can print these for a speech model as they are.
    """
    if "files" in report:
        head = _("{name} transcribed on {device} ({engine}); model loaded in {seconds:.1f} s")
    elif report.get("ok"):
        head = _("{name} passed on {device} ({engine}); model loaded in {seconds:.1f} s")
    else:
        head = _("{name} did not pass on {device} ({engine}); model loaded in {seconds:.1f} s")
    engine = _engine_words(report)
    if report.get("random_weights"):
        engine = _("{engine}, random weights: only has to run").format(engine=engine)
    lines = [head.format(name=report["name"], device=report["device"], engine=engine,
                         seconds=report["load_s"])]
    for item in report.get("items") or report.get("files") or []:
        rtf = item.get("rtf")
        line = "  " + _("{file}: {duration:.1f} s of audio in {seconds:.1f} s (real-time factor "
                        "{rtf})").format(file=Path(item["file"]).name,
                                         duration=item["duration_s"],
                                         seconds=item["transcribe_s"],
                                         rtf=rtf if rtf is not None else "?")
        if item.get("cer") is not None:
            line += _(", CER {cer:.0%} (bound {bound:.0%})").format(cer=item["cer"],
                                                                   bound=item["max_cer"])
        if item.get("text") is not None:
            line = _("{line}: {text!r}").format(line=line, text=item["text"][:80])
        lines.append(line)
    rss = report.get("peak_rss_mb")
    rss_text = _("{mb:.0f} MB").format(mb=rss) if rss is not None \
        else _("not reported on this system")
    if report.get("peak_gpu_memory_mb"):
        lines.append(_("Peak GPU memory {gb:.2f} GB (process RSS {rss})").format(
            gb=report["peak_gpu_memory_mb"] / 1024, rss=rss_text))
    else:
        lines.append(_("Peak memory (RSS) {rss}").format(rss=rss_text))
    return lines


def _verdict(report: dict) -> CheckFailed:
    failed = [item for item in report["items"] if not item["passed"]]
    lines = [_("{name} did not pass the speech check:").format(name=report["name"])]
    for item in failed:
        heard = (item["text"] or _("(nothing)"))[:120]
        lines.append("  " + _("{file}: {reason}; heard {text!r}").format(
            file=Path(item["file"]).name, reason=item["reason"], text=heard))
    error = CheckFailed(
        "\n".join(lines),
        hint=_("Damaged or incomplete weights give text like this: `llmsetup check NAME`. "
               "A small model may also mishear espeak's robotic voice: try your own recording "
               "with --audio FILE. Full log: {log}").format(log=report["log"]))
    error.report = report  # type: ignore[attr-defined]
    return error


# -- transcribe -----------------------------------------------------------------------

def output_format(fmt: str | None, output: Path | None, folder_mode: bool) -> str:
    """``--format``, else the suffix of a single ``--output`` file, else txt."""
    if fmt:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise UsageError(_("--format {format}: use one of {choices}").format(
                format=fmt, choices=", ".join(FORMATS)))
        return fmt
    if output is not None and not folder_mode and output.suffix[1:].lower() in FORMATS:
        return output.suffix[1:].lower()
    return "txt"


def plan_outputs(files: Sequence[Path], output: str | None, fmt: str | None,
                 force: bool) -> tuple[str, list[Path | None]]:
    """The format and where each file's transcript goes (None: stdout).

    ``--output`` is a folder when there are several files, when it exists as a folder, or
    when it ends with a slash; then each transcript is ``<folder>/<stem>.<format>`` (a
    ``-2`` suffix where two inputs share a stem). Existing files are only replaced with
    ``--force``, and never an input file.
    """
    if output is None:
        return output_format(fmt, None, False), [None] * len(files)
    out = Path(output).expanduser().absolute()
    folder_mode = len(files) > 1 or out.is_dir() or output.endswith(("/", os.sep))
    fmt = output_format(fmt, out, folder_mode)
    if folder_mode:
        taken: set[str] = set()
        paths: list[Path | None] = []
        for file in files:
            name, n = f"{file.stem}.{fmt}", 1
            while name in taken:
                n += 1
                name = f"{file.stem}-{n}.{fmt}"
            taken.add(name)
            paths.append(out / name)
    else:
        paths = [out]
    inputs = {f.resolve() for f in files}
    for path in paths:
        assert path is not None
        if path.resolve() in inputs:
            raise UsageError(_("the output {path} is one of the input files").format(
                path=path), hint=_("Choose another --output."))
    existing = [str(p) for p in paths if p is not None and p.exists()]
    if existing and not force:
        raise UsageError(_("{count} output file(s) already exist: {files}").format(
                             count=len(existing), files=", ".join(existing[:3])),
                         hint=_("Pass --force to replace them, or choose another --output."))
    return fmt, paths


def transcribe(*, target, settings, files: Sequence[str], output: str | None = None,
               fmt: str | None = None, python: str | None = None, language: str | None = None,
               task: str | None = None, batch_size: int | None = None,
               chunk_length: float | None = None, timestamps: str = "chunk",
               device: str | None = None, force: bool = False, engine: str = "transformers",
               beams: int | None = None, on_event: EventHandler | None = None) -> dict:
    """Transcribe ``files`` with one model load; write each transcript as it finishes.

    ``on_event`` gets the runtime's events and, after each file, an ``output`` event with
    the rendered transcript and where it went (``path`` None: the caller prints it).
    """
    require_speech_model(target)
    if timestamps not in TIMESTAMPS:
        raise UsageError(_("--timestamps {value}: use chunk or word").format(value=timestamps))
    paths = [audio_file(f) for f in files]
    if not paths:
        raise UsageError(_("give at least one audio file"))
    fmt, outputs = plan_outputs(paths, output, fmt, force)
    args = ["transcribe", "--model", str(target.model_dir),
            *pipeline_args(target.recipe, language=language, task=task, device=device,
                           batch_size=batch_size, chunk_length=chunk_length,
                           timestamps=timestamps, engine=engine, beams=beams),
            *map(str, paths)]
    transcripts: list[dict] = []

    def handle(event: dict) -> None:
        if event.get("event") == "transcript":
            event["timestamps"] = timestamps
            index = int(event["index"])
            content = render(fmt, event, model=target.recipe.name)
            if outputs[index] is not None:
                write_text_atomic(outputs[index], content)
            event["output"] = str(outputs[index]) if outputs[index] else None
            transcripts.append(event)
            if on_event:
                on_event(event)
                on_event({"event": "output", "file": event["file"],
                          "path": event["output"], "content": content})
        elif on_event:
            on_event(event)

    report = _run(target, settings, python, args, "transcribe", handle)
    by_index = {t["index"]: t for t in transcripts}
    for row in report["files"]:
        doc = transcript_doc(by_index[row["index"]], report["name"])
        row.update(output=by_index[row["index"]]["output"], text=doc["text"],
                   chunks=doc["chunks"], **({"words": doc["words"]} if "words" in doc else {}))
    report["format"] = fmt
    return report
