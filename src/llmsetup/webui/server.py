"""``llmsetup serve``: start text-generation-webui's server.py for an installed model, and
wait until it answers."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmsetup.envs import recorded_env
from llmsetup.errors import CheckFailed, NotFoundError, UsageError
from llmsetup.proc import quote, run_service
from llmsetup.settings import Settings

if TYPE_CHECKING:
    import subprocess


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
    argv = server_command(python, spec.model_dir_name, host=opts.host, port=port,
                                api=opts.api, api_port=api_port, quantization=opts.quantization,
                                cpu=opts.cpu, extra=opts.extra or [])
    local = "127.0.0.1" if opts.host in ("0.0.0.0", "::") else opts.host
    return {"dir": str(folder), "argv": argv, "command": quote(argv),
            "url": f"http://{local}:{port}/",
            "api_url": f"http://{local}:{api_port}/" if opts.api else None}


def server_command(python: list[str], model_name: str, *, host: str, port: int, api: bool,
                   api_port: int, quantization: str | None, cpu: bool,
                   extra: list[str]) -> list[str]:
    """``python server.py`` with the model preselected and the book's flags."""
    argv = [*python, "server.py", "--model", model_name, "--listen-host", host,
            "--listen-port", str(port)]
    if host not in ("127.0.0.1", "localhost"):
        argv.append("--listen")
    if quantization == "4bit":
        argv.append("--load-in-4bit")
    elif quantization == "8bit":
        argv.append("--load-in-8bit")
    if cpu:
        argv.append("--cpu")
    if api:
        argv += ["--api", "--api-port", str(api_port)]
    return argv + list(extra)


def wait_until_ready(url: str, proc: subprocess.Popen, timeout: float) -> None:
    """Poll ``url`` until it answers 200, the server exits, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CheckFailed(f"the webui server exited with status {proc.returncode} before "
                              "it answered", hint="Its output above says why.")
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.5)
    raise CheckFailed(f"the webui did not answer at {url} within {timeout:.0f}s",
                      hint="Loading a large model takes a while: raise --ready-timeout.")


def run_server(plan: dict, opts: ServeOptions, on_ready) -> int:
    """Start the server, call ``on_ready`` once it answers, pass Ctrl-C on; its status."""

    def started(proc: subprocess.Popen) -> None:
        wait_until_ready(plan["url"], proc, opts.ready_timeout)
        on_ready()

    return run_service(plan["argv"], cwd=Path(plan["dir"]), on_started=started)
