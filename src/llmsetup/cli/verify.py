"""``llmsetup verify``: prove a model works and say how fast and how big it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import (
    BeamsOpt,
    Bits4Opt,
    Bits8Opt,
    CpuOpt,
    DeviceOpt,
    DoubleQuantOpt,
    JsonOpt,
    MaxMemoryOpt,
    MaxNewTokensOpt,
    PythonOpt,
    SpeechEngineOpt,
    TargetArg,
    TrustRemoteCodeOpt,
)
from llmsetup.cli._output import Output

TASKS = ("transcribe", "translate")


def verify_cmd(
    ctx: typer.Context,
    target: TargetArg,
    bits4: Bits4Opt = False,
    bits8: Bits8Opt = False,
    double_quant: DoubleQuantOpt = False,
    prompt: Annotated[list[str] | None, typer.Option(
        "--prompt", metavar="TEXT", help="A smoke prompt instead of the recipe's (repeatable).",
    )] = None,
    max_new_tokens: MaxNewTokensOpt = None,
    device: DeviceOpt = "auto",
    cpu: CpuOpt = False,
    max_memory: MaxMemoryOpt = None,
    trust_remote_code: TrustRemoteCodeOpt = False,
    python: PythonOpt = None,
    audio: Annotated[Path | None, typer.Option(
        "--audio", metavar="FILE", help="Speech models: the recording to transcribe.")] = None,
    language: Annotated[str | None, typer.Option(
        "--language", metavar="L", help="Speech models: the spoken language, e.g. zh.")] = None,
    task: Annotated[str | None, typer.Option(
        "--task", metavar="transcribe|translate", help="Speech models: what to do.")] = None,
    save_converted: Annotated[Path | None, typer.Option(
        "--save-converted", metavar="FILE",
        help="Speech models: also keep the converted audio (the book's test.mp3).")] = None,
    engine: SpeechEngineOpt = "transformers",
    beams: BeamsOpt = None,
    webui: Annotated[str | None, typer.Option(
        "--webui", metavar="URL", help="Check a running text-generation-webui instead: its page, "
        "and one chat answer through its API when it has one.")] = None,
    webui_api: Annotated[str | None, typer.Option(
        "--webui-api", metavar="URL", help="The webui's API (default: the --webui host, port "
        "5000).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Load a model and prove it works: smoke prompts for text models, a recording for Whisper.

    Reports load time, time to first token, decode tokens/s and peak memory, and exits 1
    when the check fails. The --json document is described in docs/verify.md.
    """
    from llmsetup.envs import python_for
    from llmsetup.errors import CheckFailed, UsageError
    from llmsetup.host import causal_lm as lm

    app = state(ctx)
    out = Output(json_)
    if webui or webui_api:
        _verify_webui(app, target, webui, webui_api, max_new_tokens, out)
        return
    resolved = app.target(target)
    interpreter = python_for(resolved, app.settings, python)
    if resolved.kind == "asr":
        _verify_speech(resolved, app.settings, interpreter, out,
                       text_only=bits4 or bits8 or double_quant or bool(prompt), audio=audio,
                       language=language, task=task, save_converted=save_converted,
                       device="cpu" if cpu else device, engine=engine, beams=beams)
        return
    speech = [name for name, value in (("--audio", audio), ("--language", language),
                                       ("--task", task), ("--save-converted", save_converted),
                                       ("--beams", beams))
              if value is not None]
    if engine.lower() != "transformers":
        speech.append("--engine")
    if speech:
        raise UsageError(f"{', '.join(speech)}: for speech models only; "
                         f"{resolved.recipe.name} is a text model",
                         hint="Use --prompt TEXT to choose what a text model is asked.")
    opts = lm.LMOptions.from_flags(bits4=bits4, bits8=bits8, double_quant=double_quant,
                                   device=device, cpu=cpu, max_memory=max_memory,
                                   trust_remote_code=trust_remote_code,
                                   max_new_tokens=max_new_tokens)
    doc = lm.verify(resolved, app.settings, interpreter, opts, prompt,
                    on_event=None if json_ else lambda event: _progress(out, event))
    out.result(doc, lambda console: render(console, doc))
    if not doc["ok"]:
        raise CheckFailed(
            f"{doc['target']} failed its smoke test: " + "; ".join(doc["problems"]),
            hint="Garbled or empty answers mean damaged weights (`llmsetup check "
            f"{doc['target']}`), a tokenizer or chat template that does not fit the model, or "
            "a precision it cannot take (try without --4bit/--8bit).")


def _verify_speech(target, settings, python: str, out: Output, *, text_only: bool,
                   audio, language, task, save_converted, device: str, engine: str,
                   beams: int | None) -> None:
    """Delegate to the speech verifier (``llmsetup.host.asr``); print the report it returns.

    ``verify_speech`` raises :class:`~llmsetup.errors.CheckFailed` when the model ran but did
    not pass; its ``json_mode`` only silences its progress lines.
    """
    from llmsetup.errors import UsageError

    if text_only:
        raise UsageError("--4bit, --8bit, --double-quant and --prompt are for text models; "
                         f"{target.recipe.name} is a speech model",
                         hint="Pass --audio FILE (and --language, --task) instead.")
    if task is not None and task not in TASKS:
        raise UsageError(f"--task {task}: expected transcribe or translate")
    from llmsetup.errors import CheckFailed
    from llmsetup.host.asr import summary_lines, verify_speech

    def show(report: dict) -> None:
        out.result(report, lambda console: [console.print(line, markup=False, highlight=False)
                                            for line in summary_lines(report)])

    try:
        result = verify_speech(target=target, settings=settings, python=python, audio=audio,
                               language=language, task=task, save_converted=save_converted,
                               device=device, json_mode=out.json_mode, engine=engine,
                               beams=beams)
    except CheckFailed as exc:
        if getattr(exc, "report", None) is not None:
            show(exc.report)  # what was heard, then the error says why it did not pass
        raise
    show(result)


def _verify_webui(app, target: str, url: str | None, api_url: str | None,
                  max_new_tokens: int | None, out: Output) -> None:
    """The page answers; with the API on, one chat request gets a non-empty answer."""
    from urllib.parse import urlsplit

    from llmsetup.errors import CheckFailed, UsageError
    from llmsetup.webui.api import chat_once, check_page

    if not url:
        raise UsageError("--webui-api needs --webui URL (the page)")
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        raise UsageError(f"--webui {url}: not a URL", hint="e.g. --webui http://127.0.0.1:7860")
    recipe = app.catalog.get(target) if not Path(target).exists() else None
    prompt = (recipe.smoke.prompts[0] if recipe and recipe.smoke.prompts
              else "Hello! Who are you?")
    status = check_page(parts.geturl())
    doc: dict = {"target": target, "webui": parts.geturl(), "page_status": status,
                 "api": None, "passed": status == 200}
    if status != 200:
        out.result(doc)
        raise CheckFailed(f"the webui page at {parts.geturl()} answered {status}, not 200")
    api = api_url or f"{parts.scheme}://{parts.hostname}:5000"
    try:
        answer = chat_once(api, prompt, max_tokens=max_new_tokens or 64)
        doc["api"] = {"url": api, "prompt": prompt, "answer": answer}
        doc["passed"] = bool(answer.strip())
    except CheckFailed as exc:
        if api_url:  # asked for explicitly: it must answer
            raise
        doc["api"] = {"url": api, "skipped": exc.message}

    def render(console) -> None:
        console.print(f"{parts.geturl()} answers ({status}).", markup=False)
        if doc["api"] and "answer" in doc["api"]:
            console.print(f"API chat: {prompt!r} -> {doc['api']['answer']!r}", markup=False)
        elif doc["api"]:
            console.print(f"No API at {api} (start the server with --api to check a chat "
                          "answer too).", markup=False)

    out.result(doc, render)
    if not doc["passed"]:
        raise CheckFailed("the webui API answered with empty text",
                          hint="Check the loaded model in the webui's Model tab.")


def _progress(out: Output, event: dict) -> None:
    from llmsetup.host.causal_lm import progress_line

    line = progress_line(event)
    if line:
        out.info(line)


def _number(value, fmt: str, unit: str) -> str:
    return "?" if value is None else f"{value:{fmt}}{unit}"


def render(console, doc: dict) -> None:
    """The human summary: each prompt and answer, then the numbers."""
    from rich.markup import escape

    from llmsetup.host.causal_lm import describe_quantization

    verdict = "[green]passed[/]" if doc["ok"] else "[red]FAILED[/]"
    console.print(f"[bold]{escape(doc['target'])}[/]: {verdict} ({doc['device']}, "
                  f"{doc['dtype']}, {describe_quantization(doc['quantization'])}, chat template "
                  f"{doc['chat_template']})")
    for item in doc["prompts"]:
        console.print(f"[bold]Q:[/] {escape(item['prompt'])}")
        console.print(f"[bold]A:[/] {escape(item['answer']) or '[dim](empty)[/]'}")
        console.print(
            f"   [dim]{item['new_tokens']} tokens, stopped by {item['stop_reason']}; first "
            f"token {_number(item['ttft_s'], '.3f', ' s')}, "
            f"{_number(item['decode_tokens_per_s'], '.1f', ' tokens/s')}[/]")
        for problem in item["problems"]:
            console.print(f"   [red]{escape(problem)}[/]")
    memory = (f"peak GPU memory {doc['peak_gpu_memory_mb']:.0f} MB"
              if doc.get("peak_gpu_memory_mb") is not None
              else f"peak RSS {_number(doc.get('peak_rss_mb'), '.0f', ' MB')}")
    console.print(f"Load {doc['load_s']:.1f} s · first token "
                  f"{_number(doc['ttft_s'], '.3f', ' s')} (median) · decode "
                  f"{_number(doc['decode_tokens_per_s'], '.1f', ' tokens/s')} · {memory}")
    versions = doc.get("versions") or {}
    console.print("[dim]" + ", ".join(f"{k} {v}" for k, v in versions.items() if v) + "[/]")
