"""``llmsetup serve``: the book's `python server.py --listen` for an installed Llama-2, or
vLLM's OpenAI-compatible server (``--engine vllm``) for one CPU up to many GPUs and nodes."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from llmsetup.cli._context import state
from llmsetup.cli._options import Bits4Opt, Bits8Opt, DryRunOpt, JsonOpt, TargetArg
from llmsetup.cli._output import Output
from llmsetup.i18n import _

ENGINES = ("webui", "vllm")
# Options of one engine only: (flag, engine).
_VLLM_ONLY = "--engine vllm"


def serve_cmd(
    ctx: typer.Context,
    name: TargetArg,
    engine: Annotated[str, typer.Option(
        "--engine", help=_("webui (text-generation-webui, the book's, one request at a time) or "
        "vllm (continuous batching; tensor/pipeline/data parallel; several machines over "
        "Ray)."))] = "webui",
    bits4: Bits4Opt = False,
    bits8: Bits8Opt = False,
    listen_host: Annotated[str | None, typer.Option(
        "--listen-host", help=_("Address to listen on; 0.0.0.0 (the book's) opens it to the "
        "network: then an API key (and a login for the webui's page) is made unless "
        "--no-auth."), show_default="127.0.0.1")] = None,
    listen: Annotated[bool, typer.Option(
        "--listen", help=_("Listen on 0.0.0.0, as the book's command line does (same as "
        "--listen-host 0.0.0.0)."))] = False,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help=_("Listen beyond loopback without credentials (a trusted network "
        "only)."))] = False,
    port: Annotated[int | None, typer.Option(
        "--port", help=_("Web UI port (webui), API port (vllm)."),
        show_default=_("7860 webui, 8000 vllm"))] = None,
    api: Annotated[bool, typer.Option("--api", help=_("webui: also start the OpenAI-compatible "
                                      "API (vLLM always serves it)."))] = False,
    api_port: Annotated[int | None, typer.Option("--api-port", show_default="5000")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help=_("Run on the CPU (no GPU)."))] = False,
    extra: Annotated[str | None, typer.Option(
        "--extra", help=_("More server arguments, as one shell-quoted string."))] = None,
    webui_dir: Annotated[Path | None, typer.Option(
        "--webui-dir", help=_("The webui checkout (default: the one install made)."))] = None,
    max_model_len: Annotated[int | None, typer.Option(
        "--max-model-len", help=_("vllm: the longest context (prompt + answer) it accepts."))]
    = None,
    gpu_memory_utilization: Annotated[float | None, typer.Option(
        "--gpu-memory-utilization", help=_("vllm: the fraction of each GPU it may take."),
        show_default="0.9")] = None,
    tensor_parallel_size: Annotated[int, typer.Option(
        "--tensor-parallel-size", "-tp", help=_("vllm: GPUs each layer is split over."))] = 1,
    pipeline_parallel_size: Annotated[int, typer.Option(
        "--pipeline-parallel-size", "-pp", help=_("vllm: GPUs (or nodes) the layers are "
        "spread over."))] = 1,
    data_parallel_size: Annotated[int, typer.Option(
        "--data-parallel-size", "-dp", help=_("vllm: whole copies of the model."))] = 1,
    distributed_executor_backend: Annotated[str | None, typer.Option(
        "--distributed-executor-backend", metavar="mp|ray",
        help=_("vllm: mp (this machine's GPUs) or ray (a cluster)."))] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", metavar="HOST:PORT", help=_("vllm with ray: the head of an existing "
        "Ray cluster (see docs/scale.md)."))] = None,
    random_weights: Annotated[bool, typer.Option(
        "--random-weights", help=_("vllm: random weights of the model's shapes (its dummy load "
        "format), for benchmarks without a download."))] = False,
    kv_cache_gib: Annotated[int, typer.Option(
        "--kv-cache-gib", min=1, help=_("vllm --cpu: memory for the KV cache, in GiB."))] = 2,
    python: Annotated[str | None, typer.Option(
        "--python", metavar="PATH", help=_("vllm: the interpreter of a vLLM environment."),
        show_default=_("the one `install --engine vllm` made"))] = None,
    ready_timeout: Annotated[float, typer.Option(
        "--ready-timeout", help=_("Seconds to wait for the server to answer."))] = 900.0,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Start a server for NAME, wait until it answers, print its URL; Ctrl-C stops it.

    The webui (default) is the book's text-generation-webui with NAME preselected; with
    --engine vllm it is vLLM's OpenAI-compatible API at http://HOST:PORT/v1.
    """
    from llmsetup.errors import UsageError

    if engine not in ENGINES:
        raise UsageError(_("--engine {engine}: expected webui or vllm").format(engine=engine))
    if bits4 and bits8:
        raise UsageError(_("--4bit and --8bit exclude each other"))
    if listen and listen_host not in (None, "0.0.0.0"):
        raise UsageError(_("--listen means --listen-host 0.0.0.0, not {host}").format(
            host=listen_host), hint=_("Pass one of them."))
    listen_host = "0.0.0.0" if listen else listen_host or "127.0.0.1"
    try:
        extra_args = shlex.split(extra or "")
    except ValueError as exc:
        raise UsageError(f"--extra: {exc}",
                         hint=_("Quote it as one string: --extra '--a b'")) from None
    out = Output(json_)
    app = state(ctx)
    if engine == "vllm":
        if bits8:
            raise UsageError(_("vLLM offers no 8-bit bitsandbytes loading"),
                             hint=_("Use --4bit (bitsandbytes 4-bit) or full precision; the "
                                    "webui engine has --8bit."))
        webui_only = [flag for flag, given in (("--api", api), ("--api-port", api_port),
                                               ("--webui-dir", webui_dir)) if given]
        if webui_only:
            raise UsageError(_("{options}: for the webui engine").format(
                options=", ".join(webui_only)), hint=_("vLLM serves its API on --port."))
        from llmsetup.serving.vllm import VllmOptions

        opts = VllmOptions(
            host=listen_host, port=port or 8000, cpu=cpu, max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            pipeline_parallel_size=pipeline_parallel_size,
            data_parallel_size=data_parallel_size,
            distributed_executor_backend=distributed_executor_backend, ray_address=ray_address,
            bits4=bits4, random_weights=random_weights, cpu_kv_cache_gib=kv_cache_gib,
            extra=extra_args)
        _serve_vllm(app, name, opts, python=python, no_auth=no_auth,
                    ready_timeout=ready_timeout, dry_run=dry_run, out=out)
        return
    vllm_only = [flag for flag, given in (
        ("--max-model-len", max_model_len), ("--gpu-memory-utilization", gpu_memory_utilization),
        ("--tensor-parallel-size", tensor_parallel_size != 1),
        ("--pipeline-parallel-size", pipeline_parallel_size != 1),
        ("--data-parallel-size", data_parallel_size != 1),
        ("--distributed-executor-backend", distributed_executor_backend),
        ("--ray-address", ray_address), ("--random-weights", random_weights),
        ("--kv-cache-gib", kv_cache_gib != 2), ("--python", python)) if given]
    if vllm_only:
        raise UsageError(_("{options}: for {engine}").format(options=", ".join(vllm_only),
                                                               engine=_VLLM_ONLY),
                         hint=_("text-generation-webui serves one request at a time on one "
                                "machine; add --engine vllm to scale out."))
    _serve_webui(app, name, listen_host=listen_host, no_auth=no_auth, port=port, api=api,
                 api_port=api_port, quantization="4bit" if bits4 else "8bit" if bits8 else None,
                 cpu=cpu, extra=extra_args, webui_dir=webui_dir, ready_timeout=ready_timeout,
                 dry_run=dry_run, out=out)


def _print_secret_once(message: str) -> None:
    """A new credential, shown once: straight to the terminal, past the redaction that
    masks it everywhere else (logs, --json, errors)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _serve_vllm(app, name: str, opts, *, python: str | None, no_auth: bool,
                ready_timeout: float, dry_run: bool, out: Output) -> None:
    from llmsetup.errors import NotFoundError
    from llmsetup.serving import vllm_server

    target = app.target(name)
    if target.kind != "causal-lm":
        from llmsetup.errors import UsageError

        raise UsageError(_("{name} is a {kind} model; vLLM serves text generation models "
                           "here").format(name=target.recipe.name, kind=target.kind),
                         hint=_("Use `llmsetup transcribe` for speech."))
    recipe_name = None if target.from_folder else target.recipe.name
    if dry_run and python is None:
        try:
            interpreter = vllm_server.engine_python(app.settings, recipe_name, None, opts.cpu)
        except NotFoundError:  # not installed yet: show the plan all the same
            interpreter = "<vllm env>/bin/python"
    else:
        interpreter = vllm_server.engine_python(app.settings, recipe_name, python, opts.cpu)
    if not dry_run and not (target.model_dir / "config.json").is_file():
        raise NotFoundError(_("{folder} holds no model").format(folder=target.model_dir), hint=(
            _("--random-weights replaces the weights only: vLLM still reads the folder's "
              "config.json and tokenizer.") if opts.random_weights else
            _("Download it first: `llmsetup install {name} --engine vllm` (--cpu without a "
              "GPU).").format(name=name)))
    opts.model = target.model_dir
    opts.served_name = target.recipe.name
    plan = vllm_server.make_plan(app.settings, target.recipe.name, interpreter, opts,
                                 need_gb=target.recipe.memory_gb(), no_auth=no_auth,
                                 check_hardware=not dry_run)
    if dry_run:
        doc = {"dry_run": True, **plan.shown()}

        def render(console) -> None:
            if plan.ray:
                console.print("# " + _("on the head node (once), then on every worker node:"),
                              markup=False)
                console.print(doc["ray"]["head"], markup=False, highlight=False)
                console.print(doc["ray"]["worker"], markup=False, highlight=False)
                console.print("# " + _("then, on the head node:"), markup=False)
            env = " ".join(f"{k}={shlex.quote(v)}" for k, v in doc["env"].items())
            console.print(f"env {env} {doc['command']}", markup=False, highlight=False)
            console.print("# " + _("GPUs: {gpus}; API at {url}").format(
                gpus=plan.gpu_check, url=doc["api_url"]), markup=False)

        out.result(doc, render)
        return
    if plan.key_created:
        _print_secret_once(_("API key (made now, stored in {path}, mode 600; verify and bench "
                             "use it): {key}").format(path=plan.key_path,
                                                      key=plan.api_key.reveal()))
    elif plan.key_path:
        out.info(_("API key: the one stored in {path}").format(path=plan.key_path))

    def ready() -> None:
        out.success(_("vLLM is serving {name} at {url}/v1 (OpenAI-compatible). Ctrl-C stops "
                      "it.").format(name=target.recipe.name, url=plan.url))
        if out.json_mode:
            out.result({"url": plan.url, "api_url": plan.url + "/v1",
                        "model": target.recipe.name})

    raise typer.Exit(vllm_server.run(app.settings, plan, ready, ready_timeout))


def _serve_webui(app, name: str, *, listen_host: str, no_auth: bool, port, api, api_port,
                 quantization, cpu: bool, extra: list[str], webui_dir: Path | None,
                 ready_timeout: float, dry_run: bool, out: Output) -> None:
    """The book's server. NAME is an installed recipe, or a model folder: it is linked into
    the models/ of the checkout install made (or --webui-dir) and served from there."""
    from urllib.parse import urlsplit

    from llmsetup.serving.auth import is_loopback
    from llmsetup.webui.server import ServeOptions, run_server, server_plan

    target = app.target(name)
    opts = ServeOptions(host=listen_host, port=port, api=api, api_port=api_port,
                        quantization=quantization, cpu=cpu, extra=extra,
                        webui_dir=webui_dir.expanduser().absolute() if webui_dir else None,
                        ready_timeout=ready_timeout, auth=not no_auth)
    plan = server_plan(target, app.settings, opts)
    if not is_loopback(listen_host) and no_auth:
        out.warn(_("listening on {host} with --no-auth: anyone who can reach this machine's "
                   "port {port} can use the UI, which has no password.").format(
            host=listen_host, port=urlsplit(plan["url"]).port))
    if dry_run:
        shown = {k: v for k, v in plan.items() if k not in ("argv", "record")}
        link = (f"ln -s {plan['deploy_from']} {plan['deploy_to']}\n"
                if plan["deploy_from"] else "")
        out.result({"dry_run": True, **shown},
                   lambda console: console.print(f"{link}(cd {plan['dir']} && "
                                                 f"{plan['command']})",
                                                 markup=False, highlight=False))
        return
    if plan.get("login_created"):
        from llmsetup.serving.auth import WEBUI_USER, ensure_webui_login

        password = ensure_webui_login(app.settings)[1].reveal()
        _print_secret_once(_("Web UI login (made now, stored in {path}, mode 600): user "
                             "{user}, password {password}").format(
            path=plan["login_file"], user=WEBUI_USER, password=password))
    elif plan.get("login_file"):
        out.info(_("Web UI login: the one stored in {path}").format(path=plan["login_file"]))

    def ready() -> None:
        if plan["api_url"]:
            message = _("text-generation-webui is serving {name} at {url} (OpenAI-compatible "
                        "API at {api_url}v1)").format(name=name, url=plan["url"],
                                                      api_url=plan["api_url"])
        else:
            message = _("text-generation-webui is serving {name} at {url}").format(
                name=name, url=plan["url"])
        out.success(message)
        if listen_host in ("127.0.0.1", "localhost"):
            out.info(_("To reach it from another machine: --listen (the book's setting, "
                       "0.0.0.0) and open the port in the firewall. Ctrl-C stops the server."))
        if out.json_mode:
            out.result({"url": plan["url"], "api_url": plan["api_url"], "pid": None})

    raise typer.Exit(run_server(plan, opts, ready))
