"""``llmsetup serve``: the book's `python server.py --listen` for an installed Llama-2."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import Bits4Opt, Bits8Opt, DryRunOpt, JsonOpt, TargetArg
from llmsetup.cli._output import Output


def serve_cmd(
    ctx: typer.Context,
    name: TargetArg,
    bits4: Bits4Opt = False,
    bits8: Bits8Opt = False,
    listen_host: Annotated[str | None, typer.Option(
        "--listen-host", help="Address to listen on; 0.0.0.0 (the book's) opens it to the "
        "network, and the UI has no password.", show_default="127.0.0.1")] = None,
    listen: Annotated[bool, typer.Option(
        "--listen", help="Listen on 0.0.0.0, as the book's command line does (same as "
        "--listen-host 0.0.0.0).")] = False,
    port: Annotated[int | None, typer.Option("--port", help="Web UI port.",
                                             show_default="7860")] = None,
    api: Annotated[bool, typer.Option("--api", help="Also start the OpenAI-compatible API.")]
    = False,
    api_port: Annotated[int | None, typer.Option("--api-port", show_default="5000")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="Run on the CPU (no GPU).")] = False,
    extra: Annotated[str | None, typer.Option(
        "--extra", help="More server.py arguments, as one shell-quoted string.")] = None,
    webui_dir: Annotated[Path | None, typer.Option(
        "--webui-dir", help="The webui checkout (default: the one install made).")] = None,
    ready_timeout: Annotated[float, typer.Option(
        "--ready-timeout", help="Seconds to wait for the server to answer.")] = 600.0,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Start text-generation-webui with NAME preselected; wait until it answers; Ctrl-C stops it.

    NAME is an installed recipe, or a model folder: it is linked into the models/ of the
    checkout install made (or --webui-dir) and served from there.
    """
    from llmsetup.errors import UsageError
    from llmsetup.webui.server import ServeOptions, run_server, server_plan

    if bits4 and bits8:
        raise UsageError("--4bit and --8bit exclude each other")
    if listen and listen_host not in (None, "0.0.0.0"):
        raise UsageError(f"--listen means --listen-host 0.0.0.0, not {listen_host}",
                         hint="Pass one of them.")
    listen_host = "0.0.0.0" if listen else listen_host or "127.0.0.1"
    app = state(ctx)
    out = Output(json_)
    target = app.target(name)
    try:
        extra_args = shlex.split(extra or "")
    except ValueError as exc:
        raise UsageError(f"--extra: {exc}", hint="Quote it as one string: --extra '--a b'")\
            from None
    opts = ServeOptions(host=listen_host, port=port, api=api, api_port=api_port,
                        quantization="4bit" if bits4 else "8bit" if bits8 else None, cpu=cpu,
                        extra=extra_args,
                        webui_dir=webui_dir.expanduser().absolute() if webui_dir else None,
                        ready_timeout=ready_timeout)
    plan = server_plan(target, app.settings, opts)
    if listen_host not in ("127.0.0.1", "localhost", "::1"):
        out.warn(f"listening on {listen_host}: anyone who can reach this machine's port "
                 f"{urlsplit(plan['url']).port} can use the UI, which has no password "
                 "(consider --extra '--gradio-auth user:password' and a firewall rule).")
    if dry_run:
        shown = {k: v for k, v in plan.items() if k not in ("argv", "record")}
        link = (f"ln -s {plan['deploy_from']} {plan['deploy_to']}\n"
                if plan["deploy_from"] else "")
        out.result({"dry_run": True, **shown},
                   lambda console: console.print(f"{link}(cd {plan['dir']} && "
                                                 f"{plan['command']})",
                                                 markup=False, highlight=False))
        return

    def ready() -> None:
        message = f"text-generation-webui is serving {name} at {plan['url']}"
        if plan["api_url"]:
            message += f" (OpenAI-compatible API at {plan['api_url']}v1)"
        out.success(message)
        if listen_host in ("127.0.0.1", "localhost"):
            out.info("To reach it from another machine: --listen (the book's setting, "
                     "0.0.0.0) and open the port in the firewall. Ctrl-C stops the server.")
        if json_:
            out.result({"url": plan["url"], "api_url": plan["api_url"], "pid": None})

    raise typer.Exit(run_server(plan, opts, ready))
