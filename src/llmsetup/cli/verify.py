"""``llmsetup verify``: prove a model works and say how fast and how big it runs."""

from __future__ import annotations

from dataclasses import dataclass
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
    check_input_file,
)
from llmsetup.cli._output import Output
from llmsetup.i18n import N_, _

TASKS = ("transcribe", "translate")


def verify_cmd(
    ctx: typer.Context,
    target: TargetArg,
    bits4: Bits4Opt = False,
    bits8: Bits8Opt = False,
    double_quant: DoubleQuantOpt = False,
    prompt: Annotated[list[str] | None, typer.Option(
        "--prompt", metavar="TEXT", help=_("A smoke prompt instead of the recipe's (repeatable)."),
    )] = None,
    max_new_tokens: MaxNewTokensOpt = None,
    device: DeviceOpt = "auto",
    cpu: CpuOpt = False,
    max_memory: MaxMemoryOpt = None,
    trust_remote_code: TrustRemoteCodeOpt = False,
    python: PythonOpt = None,
    audio: Annotated[Path | None, typer.Option(
        "--audio", metavar="FILE", help=_("Speech models: the recording to transcribe."),
        callback=check_input_file)] = None,
    language: Annotated[str | None, typer.Option(
        "--language", metavar="L", help=_("Speech models: the spoken language, e.g. zh."))] = None,
    task: Annotated[str | None, typer.Option(
        "--task", metavar="transcribe|translate", help=_("Speech models: what to do."))] = None,
    save_converted: Annotated[Path | None, typer.Option(
        "--save-converted", metavar="FILE",
        help=_("Speech models: also keep the converted audio (the book's test.mp3)."))] = None,
    engine: SpeechEngineOpt = "transformers",
    beams: BeamsOpt = None,
    webui: Annotated[str | None, typer.Option(
        "--webui", metavar="URL", help=_("Check a running text-generation-webui instead: its page, "
        "and one chat answer through its API when it has one."))] = None,
    webui_api: Annotated[str | None, typer.Option(
        "--webui-api", metavar="URL", help=_("The webui's API (default: the --webui host, at "
        "the API port `serve` recorded for that page, else 5000)."))] = None,
    api: Annotated[str | None, typer.Option(
        "--api", metavar="URL", help=_("Check a running OpenAI-compatible server instead (vLLM, "
        "the webui's API, others): /v1/models, then the smoke prompts through "
        "/v1/chat/completions. The key `serve` stored is sent; LLMSETUP_API_KEY overrides it.")
    )] = None,
    expect: Annotated[str | None, typer.Option(
        "--expect", metavar="TEXT", help=_("With --api or --webui: the first prompt's answer must "
        "contain TEXT (a known answer, e.g. Paris)."))] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=1, help=_("With --api or --webui: seconds to wait for each answer."))]
    = 300.0,
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
    if api and (webui or webui_api):
        raise UsageError(_("--api and --webui check different servers: choose one"),
                         hint=_("--webui checks the page and, through its API, an answer."))
    if expect and not (api or webui or webui_api):
        raise UsageError(_("--expect is for --api and --webui"),
                         hint=_("Local answers are checked by `verify` without it."))
    if api or webui or webui_api:
        server = ServerCheck(prompts=prompt or _recipe_prompts(app, target),
                             max_tokens=max_new_tokens or 64, expect=expect, timeout=timeout)
        if api:
            _verify_api(app, target, api, server, out)
        else:
            _verify_webui(app, target, webui, webui_api, server, out)
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
        raise UsageError(
            _("{options}: for speech models only; {name} is a text model").format(
                options=", ".join(speech), name=resolved.recipe.name),
            hint=_("Use --prompt TEXT to choose what a text model is asked."))
    opts = lm.LMOptions.from_flags(bits4=bits4, bits8=bits8, double_quant=double_quant,
                                   device=device, cpu=cpu, max_memory=max_memory,
                                   trust_remote_code=trust_remote_code,
                                   max_new_tokens=max_new_tokens)
    doc = lm.verify(resolved, app.settings, interpreter, opts, prompt,
                    on_event=None if json_ else lambda event: _progress(out, event))
    out.result(doc, lambda console: render(console, doc))
    if not doc["ok"]:
        raise CheckFailed(
            _("{name} failed its smoke test: {problems}").format(
                name=doc["target"], problems=_problems(doc["problems"])),
            hint=_("Garbled or empty answers mean damaged weights (`llmsetup check {name}`), "
                   "a tokenizer or chat template that does not fit the model, or a precision "
                   "it cannot take (try without --4bit/--8bit).").format(name=doc["target"]))


def _verify_speech(target, settings, python: str, out: Output, *, text_only: bool,
                   audio, language, task, save_converted, device: str, engine: str,
                   beams: int | None) -> None:
    """Delegate to the speech verifier (``llmsetup.host.asr``); print the report it returns.

    ``verify_speech`` raises :class:`~llmsetup.errors.CheckFailed` when the model ran but did
    not pass; its ``json_mode`` only silences its progress lines.
    """
    from llmsetup.errors import UsageError

    if text_only:
        raise UsageError(_("--4bit, --8bit, --double-quant and --prompt are for text models; "
                           "{name} is a speech model").format(name=target.recipe.name),
                         hint=_("Pass --audio FILE (and --language, --task) instead."))
    if task is not None and task not in TASKS:
        raise UsageError(_("--task {task}: expected transcribe or translate").format(task=task))
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


@dataclass
class ServerCheck:
    """What ``verify --api`` and ``verify --webui`` ask a running server."""

    prompts: list[str]
    max_tokens: int
    expect: str | None
    timeout: float


def _recipe_prompts(app, target: str) -> list[str]:
    """The recipe's first smoke prompt (a folder's recipe is made up, with a generic one)."""
    recipe = app.target(target).recipe
    return list(recipe.smoke.prompts[:1]) if recipe.smoke.prompts else ["Hello! Who are you?"]


def _check_api(app, url: str, check: ServerCheck) -> dict:
    """The one code path of ``--api`` and of the API half of ``--webui``."""
    from llmsetup.serving.auth import load_api_key
    from llmsetup.serving.check import check_api
    from llmsetup.serving.openai_client import Client

    client = Client(url, api_key=load_api_key(app.settings), timeout=check.timeout)
    return check_api(client, check.prompts, max_tokens=check.max_tokens, expect=check.expect)


def _verdict(ok: bool) -> str:
    return f"[green]{_('passed')}[/]" if ok else f"[red]{_('FAILED')}[/]"


def _print_answer(console, item: dict) -> None:
    """The prompt and the answer, as ``Q:`` and ``A:`` lines."""
    from rich.markup import escape

    console.print(f"[bold]{_('Q:')}[/] {escape(item['prompt'])}")
    console.print(f"[bold]{_('A:')}[/] {escape(item['answer']) or '[dim]' + _('(empty)') + '[/]'}")


def _render_api(console, doc: dict) -> None:
    from rich.markup import escape

    verdict = _verdict(doc["ok"])
    console.print(_("{model} at {api}: {verdict} (models: {models})").format(
        model=f"[bold]{escape(doc['model'])}[/]", api=escape(doc["api"]), verdict=verdict,
        models=escape(", ".join(doc["models"]))))
    for item in doc["prompts"]:
        _print_answer(console, item)
        tokens = item["new_tokens"] if item["new_tokens"] is not None else "?"
        line = _("{tokens} tokens in {seconds:.2f} s, stopped by {reason}").format(
            tokens=tokens, seconds=item["seconds"], reason=item["finish_reason"])
        console.print(f"   [dim]{line}[/]")
        for problem in item["problems"]:  # fixed ones are in the catalog (runtime, N_)
            console.print(f"   [red]{escape(_(problem))}[/]")


def _verify_api(app, target: str, url: str, check: ServerCheck, out: Output) -> None:
    """Models, then each smoke prompt answered and judged like a local answer."""
    from llmsetup.errors import CheckFailed

    doc = {"target": target, **_check_api(app, url, check)}
    out.result(doc, lambda console: _render_api(console, doc))
    if not doc["ok"]:
        raise CheckFailed(_("the server at {url} failed the smoke test: {problems}").format(
                              url=doc["api"], problems=_problems(doc["problems"])),
                          hint=_("Garbled or empty answers: a chat template or dtype that does "
                                 "not fit the model (on a CPU serve in float32), or damaged "
                                 "weights."))


def _verify_webui(app, target: str, url: str | None, api_url: str | None,
                  check: ServerCheck, out: Output) -> None:
    """The page answers; with the API on, the smoke prompts are answered (as ``--api``)."""
    from urllib.parse import urlsplit

    from llmsetup.errors import CheckFailed, UsageError
    from llmsetup.webui.api import check_page
    from llmsetup.webui.server import recorded_api_url

    if not url:
        raise UsageError(_("--webui-api needs --webui URL (the page)"))
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        raise UsageError(_("--webui {url}: not a URL").format(url=url),
                         hint=_("e.g. --webui http://127.0.0.1:7860"))
    recipe = app.target(target).recipe  # a folder's is made up
    status = check_page(parts.geturl())
    doc: dict = {"target": target, "webui": parts.geturl(), "page_status": status,
                 "api": None, "passed": status == 200}
    if status != 200:
        out.result(doc)
        raise CheckFailed(_("the webui page at {url} answered {status}, not 200").format(
                              url=parts.geturl(), status=status),
                          hint=_("401: the page has a login (`llmsetup serve` printed it).")
                          if status == 401 else None)
    recorded = recorded_api_url(app.settings, recipe.name, parts.geturl())
    # The --json document says where the API's URL came from in English; people read it
    # translated (render).
    api, api_from = ((api_url, "--webui-api") if api_url else
                     (recorded, N_("the port `serve` recorded")) if recorded else
                     (f"{parts.scheme}://{parts.hostname}:5000", N_("the default port")))
    try:
        result = _check_api(app, api, check)
        doc["api"] = {"url": api, "from": api_from, **result,
                      "answer": result["prompts"][0]["answer"]}
        doc["passed"] = result["ok"]
    except CheckFailed as exc:
        if api_url:  # asked for explicitly: it must answer
            raise
        doc["api"] = {"url": api, "from": api_from, "skipped": exc.message}

    def render(console) -> None:
        console.print(_("Page {url} answers ({status}).").format(url=parts.geturl(),
                                                                  status=status), markup=False)
        if doc["api"] and "prompts" in doc["api"]:
            console.print(_("API {url} ({source}):").format(url=api, source=_(api_from)),
                          markup=False)
            _render_api(console, doc["api"])
        elif doc["api"]:
            console.print(_("No API at {url} ({source}; start the server with --api to check a "
                            "chat answer too).").format(url=api, source=_(api_from)),
                          markup=False)

    out.result(doc, render)
    if not doc["passed"]:
        raise CheckFailed(_("the webui API failed the smoke test: {problems}").format(
                              problems=_problems(doc["api"]["problems"])),
                          hint=_("Check the loaded model in the webui's Model tab."))


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

    console.print(_("{target}: {verdict} ({device}, {dtype}, {quantization}, chat template "
                    "{template})").format(
        target=f"[bold]{escape(doc['target'])}[/]", verdict=_verdict(doc["ok"]),
        device=doc["device"], dtype=doc["dtype"],
        quantization=describe_quantization(doc["quantization"]),
        template=doc["chat_template"]))
    for item in doc["prompts"]:
        _print_answer(console, item)
        line = _("{tokens} tokens, stopped by {reason}; first token {ttft}, {speed}").format(
            tokens=item["new_tokens"], reason=item["stop_reason"],
            ttft=_number(item["ttft_s"], ".3f", " s"),
            speed=_number(item["decode_tokens_per_s"], ".1f", " tokens/s"))
        console.print(f"   [dim]{line}[/]")
        for problem in item["problems"]:  # fixed ones are in the catalog (runtime, N_)
            console.print(f"   [red]{escape(_(problem))}[/]")
    memory = (_("peak GPU memory {mb:.0f} MB").format(mb=doc["peak_gpu_memory_mb"])
              if doc.get("peak_gpu_memory_mb") is not None
              else _("peak RSS {rss}").format(rss=_number(doc.get("peak_rss_mb"), ".0f", " MB")))
    console.print(_("Load {load:.1f} s · first token {ttft} (median) · decode {speed} · "
                    "{memory}").format(
        load=doc["load_s"], ttft=_number(doc["ttft_s"], ".3f", " s"),
        speed=_number(doc["decode_tokens_per_s"], ".1f", " tokens/s"), memory=memory))
    versions = doc.get("versions") or {}
    console.print("[dim]" + ", ".join(f"{k} {v}" for k, v in versions.items() if v) + "[/]")


def _problems(problems: list[str]) -> str:
    """A check's problems in one line, each in the chosen language where the catalog has it
    (the document keeps them English)."""
    return _("; ").join(_(p) for p in problems)
