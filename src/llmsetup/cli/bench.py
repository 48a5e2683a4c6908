"""``llmsetup bench``: how fast, and how much memory."""

from __future__ import annotations

from typing import Annotated

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import (
    Bits4Opt,
    Bits8Opt,
    DeviceOpt,
    JsonOpt,
    TargetArg,
    check_interpreter,
    check_overrides,
    number_in,
)
from llmsetup.cli._output import Output
from llmsetup.i18n import N_, _


def bench_cmd(
    ctx: typer.Context,
    target: TargetArg,
    bits4: Bits4Opt = False,
    bits8: Bits8Opt = False,
    all_precisions: Annotated[bool, typer.Option(
        "--all-precisions", help=_("Full precision, 8-bit and 4-bit, each in its own process."))]
    = False,
    prompt_tokens: Annotated[int, typer.Option("--prompt-tokens", min=1)] = 128,
    new_tokens: Annotated[int | None, typer.Option(
        "--new-tokens", min=2, help=_("Tokens generated per run, always the full count "
        "(speech: per 30 s window)."), show_default=_("128; speech: the recipe's"))] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, help=_("The batch measured besides batch 1."))] = 8,
    random_weights: Annotated[bool, typer.Option(
        "--random-weights", help=_("The recipe's architecture with random weights: no "
        "download needed."))] = False,
    tiny: Annotated[bool, typer.Option(
        "--tiny", help=_("With --random-weights: shrink the architecture (a quick check)."))]
    = False,
    override: Annotated[list[str] | None, typer.Option(
        "--override", help=_("With --random-weights: KEY=VALUE in the config (repeatable)."),
        callback=check_overrides)]
    = None,
    compile_: Annotated[bool, typer.Option(
        "--compile", help=_("Also measure static KV cache + torch.compile, with the speedup."))]
    = False,
    attn: Annotated[str | None, typer.Option(
        "--attn", help=_("sdpa, eager, or compare (both, with the speedup)."))] = None,
    device: DeviceOpt = "auto",
    audio_seconds: Annotated[float, typer.Option(
        "--audio-seconds", help=_("Speech models: length of the clip."),
        callback=number_in(0, 3600, low_open=True))] = 60.0,
    keep_weights: Annotated[bool, typer.Option(
        "--keep-weights", help=_("Keep the random-weight checkpoint for the next run."))] = False,
    python: Annotated[str | None, typer.Option(
        "--python", help=_("Run in this interpreter instead of the model's environment."),
        callback=check_interpreter)]
    = None,
    api: Annotated[str | None, typer.Option(
        "--api", metavar="URL", help=_("Benchmark a running OpenAI-compatible server (vLLM, the "
        "webui's API, others) under load instead, as vLLM's serving benchmark reports it."))]
    = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", min=1, help=_("With --api: requests kept in flight."), show_default="1")]
    = None,
    requests: Annotated[int | None, typer.Option(
        "--requests", min=1, help=_("With --api: requests sent in all."),
        show_default=_("4 per concurrent request, at least 8"))] = None,
    input_tokens: Annotated[int | None, typer.Option(
        "--input-tokens", min=1, help=_("With --api: prompt length, in tokens (about)."),
        show_default="128")] = None,
    output_tokens: Annotated[int | None, typer.Option(
        "--output-tokens", min=1, help=_("With --api: tokens generated per request, always the "
        "full count where the server allows it."), show_default="128")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=1, help=_("With --api: seconds one request may take."))] = 600.0,
    json_: JsonOpt = False,
) -> None:
    """Load time, time to first token, decode tokens/s, peak memory (and the GPU's
    bandwidth roofline); real-time factor for speech models. With --api: aggregate
    tokens/s, requests/s, time to first token and inter-token latency of a server."""
    from llmsetup.envs import python_for
    from llmsetup.errors import UsageError
    from llmsetup.host.bench import BenchOptions, parse_overrides, run_bench

    serving = {"--concurrency": concurrency, "--requests": requests,
               "--input-tokens": input_tokens, "--output-tokens": output_tokens}
    if api:
        local = [name for name, given in (
            ("--4bit", bits4), ("--8bit", bits8), ("--all-precisions", all_precisions),
            ("--random-weights", random_weights), ("--tiny", tiny), ("--override", override),
            ("--compile", compile_), ("--attn", attn), ("--python", python)) if given]
        if local:
            raise UsageError(_("{options}: for a local benchmark, not with --api").format(
                options=", ".join(local)),
                hint=_("The server decides precision and weights; start it with them "
                       "(`llmsetup serve ... --engine vllm --4bit`)."))
        _bench_api(state(ctx), target, api, concurrency or 1, requests, input_tokens or 128,
                   output_tokens or 128, timeout, Output(json_))
        return
    given = [name for name, value in serving.items() if value is not None]
    if given:
        raise UsageError(_("{options}: for a server benchmark").format(options=", ".join(given)),
                         hint=_("Add --api URL."))
    if sum((bits4, bits8, all_precisions)) > 1:
        raise UsageError(_("choose one of --4bit, --8bit and --all-precisions"))
    if (tiny or override) and not random_weights:
        raise UsageError(_("--tiny and --override change a random-weight architecture"),
                         hint=_("Add --random-weights."))
    if attn not in (None, "sdpa", "eager", "compare"):
        raise UsageError(_("--attn {value}: expected sdpa, eager or compare").format(value=attn))
    app = state(ctx)
    out = Output(json_)
    tgt = app.target(target)
    precisions = ["full", "int8", "int4"] if all_precisions else \
        ["int4"] if bits4 else ["int8"] if bits8 else ["full"]
    opts = BenchOptions(precisions=precisions, prompt_tokens=prompt_tokens,
                        new_tokens=new_tokens, batch_size=batch_size,
                        random_weights=random_weights, tiny=tiny,
                        overrides=parse_overrides(override or []), compile=compile_, attn=attn,
                        device=device, audio_seconds=audio_seconds, keep_weights=keep_weights)
    interpreter = python_for(tgt, app.settings, python)

    def progress(event: dict) -> None:
        line = progress_line(event)
        if line and not json_:
            out.info(line)

    doc = run_bench(tgt, app.settings, interpreter, opts, on_event=progress)
    out.result(doc, lambda console: render(console, doc))


def progress_line(event: dict) -> str | None:
    """A measurement of the runtime's as one line for people (None: nothing to say)."""
    if event.get("event") != "progress":
        return None
    if event.get("what") == "causal":
        return "  " + _("batch {batch}: first token {ttft} ms, {speed} tokens/s").format(
            batch=event["batch_size"], ttft=f"{event['ttft_s'] * 1000:.1f}",
            speed=f"{event['decode_tokens_per_s']:.1f}")
    if event.get("what") == "asr":
        return "  " + _("batch {batch}: {seconds} s (real-time factor {factor})").format(
            batch=event["batch_size"], seconds=f"{event['seconds']:.2f}",
            factor=f"{event['real_time_factor']:.4f}")
    return None


def _mem(result: dict) -> str:
    if result.get("peak_gpu_memory_mb") is not None:
        return _("{size} GB GPU").format(size=f"{result['peak_gpu_memory_mb'] / 1024:.2f}")
    rss = result.get("peak_rss_mb")
    return _("{size} GB RSS").format(size=f"{rss / 1024:.2f}") if rss is not None else "?"


# The speedups of a run (its JSON's keys), as the table's footer names them.
SPEEDUPS = {"sdpa_over_eager": N_("sdpa over eager"),
            "compile_over_plain": N_("compile over plain")}


def render(console, doc: dict) -> None:
    from rich.table import Table

    first = doc["results"][0] if doc["results"] else {}
    where = first.get("gpu") or first.get("device", "?")
    title = (_("{target} on {device} (random weights)") if doc["random_weights"] else
             _("{target} on {device}")).format(target=doc["target"], device=where)
    if doc["kind"] == "asr":
        table = Table(title=title)
        for col in (_("batch"), _("audio s"), _("seconds"), _("real-time factor"),
                    _("peak memory")):
            table.add_column(col, justify="right")
        for run in first.get("runs", []):
            table.add_row(str(run["batch_size"]), f"{first['audio_s']:g}",
                          f"{run['seconds']:.2f}", f"{run['real_time_factor']:.4f}", _mem(first))
        console.print(table)
        return
    table = Table(title=title)
    for col in (_("precision"), "dtype", _("load s"), "TTFT ms", "tok/s b=1", "tok/s b=N",
                _("peak memory"), _("weights GB"), _("roofline")):
        table.add_column(col, justify="right")
    for r in doc["results"]:
        runs = r["runs"]
        label = r["precision"] + (f" ({r['variant']})" if r.get("variant") else "")
        roof = r.get("roofline")
        table.add_row(label, r["dtype"], f"{r['load_s']:.2f}", f"{runs[0]['ttft_s'] * 1000:.1f}",
                      f"{runs[0]['decode_tokens_per_s']:.1f}",
                      f"{runs[-1]['decode_tokens_per_s']:.1f} (b={runs[-1]['batch_size']})",
                      _mem(r), f"{r['weights_bytes'] / 1e9:.2f}",
                      _("{fraction} of {tokens_per_s}").format(
                          fraction=f"{roof['fraction']:.0%}", tokens_per_s=f"{roof['tokens_per_s']:.0f}")
                      if roof else "-")
    console.print(table)
    for name, value in doc["speedups"].items():
        label = _(SPEEDUPS[name]) if name in SPEEDUPS else name.replace("_", " ")
        console.print(_("{name}: {speedup}x (decode, batch 1, same run)").format(
            name=label, speedup=f"{value:.2f}"))


def _bench_api(app, target: str, url: str, concurrency: int, requests: int | None,
               input_tokens: int, output_tokens: int, timeout: float, out: Output) -> None:
    """The serving benchmark (``llmsetup.serving.load``) against ``url``."""
    from llmsetup.serving.auth import load_api_key
    from llmsetup.serving.load import LoadOptions, describe, run_load
    from llmsetup.serving.openai_client import Client

    client = Client(url, api_key=load_api_key(app.settings), timeout=timeout)
    served = client.models()
    opts = LoadOptions(concurrency=concurrency, requests=requests, input_tokens=input_tokens,
                       output_tokens=output_tokens, deadline_s=timeout,
                       model=target if target in served else served[0] if served else None)

    def progress(done: int, total: int) -> None:
        if not out.json_mode and (done == total or done % max(1, total // 4) == 0):
            out.info("  " + _("{done}/{total} requests done").format(done=done, total=total))

    doc = {"target": target, **run_load(client, opts, on_progress=progress)}
    out.result(doc, lambda console: [console.print(line, markup=False, highlight=False)
                                     for line in describe(doc)])
    if doc["completed"] == 0:
        from llmsetup.errors import CheckFailed

        raise CheckFailed(_("no request to {api} succeeded: {errors}").format(
            api=doc["api"], errors="; ".join(doc["errors"])), hint=_("The server's log says why."))
