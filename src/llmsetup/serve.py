"""``llmsetup serve``: start text-generation-webui's server.py for an installed model."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from llmsetup import webui
from llmsetup.envs import recorded_env
from llmsetup.errors import NotFoundError, UsageError
from llmsetup.proc import clean_env, quote
from llmsetup.settings import Settings


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int | None = None
    api: bool = False
    api_port: int | None = None
    quantization: str | None = None
    cpu: bool = False
    extra: list[str] | None = None
    webui_dir: Path | None = None
    ready_timeout: float = 600.0


def server_plan(recipe, settings: Settings, opts: ServeOptions) -> dict:
    """Everything needed to start the server: folder, command, URLs."""
    spec = recipe.webui
    if spec is None:
        raise UsageError(f"{recipe.name} is not served through text-generation-webui",
                         hint=f"Chat with it directly: `llmsetup chat {recipe.name}`.")
    installed = recorded_env(settings, recipe.name, "webui.json") or {}
    folder = opts.webui_dir or (Path(installed["dir"]) if installed.get("dir") else None)
    if folder is None or not (folder / "server.py").is_file():
        raise NotFoundError(
            f"no text-generation-webui checkout for {recipe.name}"
            + (f" at {folder}" if folder else ""),
            hint=f"Install it first: `llmsetup install {recipe.name} --ui webui`.")
    model_dir = folder / "models" / spec.model_dir_name
    if not model_dir.exists():
        raise NotFoundError(f"the model is not deployed at {model_dir}",
                            hint=f"Run `llmsetup install {recipe.name} --ui webui` to deploy it.")
    env = recorded_env(settings, recipe.name, "webui-env.json") or {}
    python = [env["python"]] if env.get("python") else [sys.executable]
    port = opts.port or spec.port
    api_port = opts.api_port or spec.api_port
    argv = webui.server_command(python, spec.model_dir_name, host=opts.host, port=port,
                                api=opts.api, api_port=api_port, quantization=opts.quantization,
                                cpu=opts.cpu, extra=opts.extra or [])
    local = "127.0.0.1" if opts.host in ("0.0.0.0", "::") else opts.host
    return {"dir": str(folder), "argv": argv, "command": quote(argv),
            "url": f"http://{local}:{port}/",
            "api_url": f"http://{local}:{api_port}/" if opts.api else None}


def run_server(plan: dict, opts: ServeOptions, on_ready) -> int:
    """Start the server, call ``on_ready`` once it answers, forward Ctrl-C, return its status."""
    proc = subprocess.Popen(plan["argv"], cwd=plan["dir"], env=clean_env(),
                            start_new_session=True)

    def forward(signum, _frame) -> None:
        try:
            import os

            os.killpg(proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        webui.wait_until_ready(plan["url"], proc, opts.ready_timeout)
        on_ready()
        returncode = proc.wait()
    except BaseException:
        if proc.poll() is None:
            forward(signal.SIGTERM, None)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - returncode if returncode < 0 else returncode
