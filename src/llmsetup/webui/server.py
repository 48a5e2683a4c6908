"""``llmsetup serve``: start text-generation-webui's server.py for an installed model, and
wait until it answers."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from llmsetup.envs import recorded_env
from llmsetup.errors import CheckFailed, NotFoundError, UsageError
from llmsetup.fileio import write_json_atomic
from llmsetup.i18n import _
from llmsetup.proc import quote, run_service
from llmsetup.recipes.schema import WebUISpec
from llmsetup.settings import Settings
from llmsetup.webui.repo import Deployment

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
    #: Beyond loopback, a login for the page (unless ``serve --no-auth``).
    auth: bool = True


def server_plan(target, settings: Settings, opts: ServeOptions) -> dict:
    """Everything needed to start the server: folder, command, URLs.

    ``target`` is an installed recipe with a webui section, or a model folder: the folder
    is served by a checkout ``install --ui webui`` made (or ``--webui-dir``), linked into
    its ``models/`` the way install deploys (``deploy_from``/``deploy_to``; see
    :func:`run_server`).
    """
    recipe = target.recipe
    if target.from_folder:
        folder, owner = _checkout_for_folder(settings, target.model_dir, opts.webui_dir)
        spec = WebUISpecDefaults
        model_name = target.model_dir.name
        deploy = Deployment(target.model_dir, folder / "models" / model_name, "link")
        # A link whose folder is gone (left by a serve that was killed) is free to reuse.
        if deploy.target.exists() and not deploy.is_done():
            raise UsageError(_("{folder} already holds another model").format(
                                 folder=deploy.target) + (
                                 _(" (a link to {other})").format(
                                     other=os.readlink(deploy.target))
                                 if deploy.target.is_symlink() else ""),
                             hint=_("Rename your model folder, or move that one away."))
    else:
        spec = recipe.webui
        if spec is None:
            raise UsageError(_("{name} is not served through text-generation-webui").format(
                                 name=recipe.name),
                             hint=_("Chat with it directly: `llmsetup chat {name}`.").format(
                                 name=recipe.name))
        owner = recipe.name
        installed = recorded_env(settings, recipe.name, "webui.json") or {}
        folder = opts.webui_dir or (Path(installed["dir"]) if installed.get("dir") else None)
        if folder is None or not (folder / "server.py").is_file():
            raise NotFoundError(
                (_("no text-generation-webui checkout for {name} at {folder}") if folder
                 else _("no text-generation-webui checkout for {name}")).format(
                    name=recipe.name, folder=folder),
                hint=_("Install it first: `llmsetup install {name} --ui webui`.").format(
                    name=recipe.name))
        model_name = spec.model_dir_name
        deploy = None
        if not (folder / "models" / model_name).exists():
            raise NotFoundError(_("the model is not deployed at {folder}").format(
                                    folder=folder / "models" / model_name),
                                hint=_("Run `llmsetup install {name} --ui webui` to deploy "
                                       "it.").format(name=recipe.name))
    env = (recorded_env(settings, owner, "webui-env.json") or {}) if owner else {}
    python = [env["python"]] if env.get("python") else [sys.executable]
    port = opts.port or spec.port
    api_port = opts.api_port or spec.api_port
    argv = server_command(python, model_name, host=opts.host, port=port,
                          api=opts.api, api_port=api_port, quantization=opts.quantization,
                          cpu=opts.cpu, extra=opts.extra or [])
    login = _login(settings, opts)
    if login:
        argv += ["--gradio-auth-path", str(login["login_file"])]
    local = "127.0.0.1" if opts.host in ("0.0.0.0", "::") else opts.host
    return {"dir": str(folder), "argv": argv, "command": quote(argv),
            "url": f"http://{local}:{port}/",
            "api_url": f"http://{local}:{api_port}/" if opts.api else None,
            "deploy_from": str(deploy.source) if deploy and not deploy.is_done() else None,
            "deploy_to": str(deploy.target) if deploy else None,
            "record": str(serving_record_path(settings, recipe.name)), **login}


def _login(settings: Settings, opts: ServeOptions) -> dict:
    """Beyond loopback: the page's login, from a file (``--gradio-auth-path``), never argv.

    The webui takes an API key only as ``--api-key KEY`` on its command line, where every
    user of the machine can read it; so its API stays on loopback unless ``--no-auth``.
    """
    from llmsetup.serving import auth

    if auth.is_loopback(opts.host) or not opts.auth:
        return {}
    if opts.api:
        raise UsageError(
            _("the webui's API would listen beyond loopback without a key: the webui takes "
              "its API key only on the command line, which every user here can read"),
            hint=_("Serve the API with --engine vllm (its key travels in the environment), "
                   "keep the webui on loopback and tunnel to it (ssh -L), or add --no-auth on "
                   "a trusted network."))
    path, _password, created = auth.ensure_webui_login(settings)
    return {"login_file": str(path), "login_created": created}


class WebUISpecDefaults:
    """The ports a folder is served on (a recipe's webui section has its own)."""

    port = WebUISpec.model_fields["port"].default
    api_port = WebUISpec.model_fields["api_port"].default


def _checkout_for_folder(settings: Settings, model: Path,
                         webui_dir: Path | None) -> tuple[Path, str | None]:
    """The checkout to serve a model folder with, and the recipe whose install made it
    (its webui environment is the one to run in): ``--webui-dir``, else the checkout an
    ``install --ui webui`` recorded last."""
    found = []
    for path in settings.state_dir.glob("*/webui.json"):
        try:
            folder = Path(json.loads(path.read_text("utf-8"))["dir"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if (folder / "server.py").is_file():
            found.append((path.stat().st_mtime, path.parent.name, folder))
    if webui_dir:
        if not (webui_dir / "server.py").is_file():
            raise NotFoundError(_("no text-generation-webui checkout at {folder}").format(
                                    folder=webui_dir),
                                hint=_("Give the folder that holds server.py."))
        return webui_dir, next((name for _when, name, f in found if f == webui_dir), None)
    if not found:
        raise NotFoundError(_("no text-generation-webui checkout to serve {model} with").format(
                                model=model),
                            hint=_("Pass --webui-dir DIR, or install one: `llmsetup install "
                                   "llama-2-7b-chat --ui webui --no-download`."))
    _when, name, folder = max(found)
    return folder, name


def serving_record_path(settings: Settings, recipe_name: str) -> Path:
    """Where ``serve`` records the ports it started the server with (``verify --webui``
    reads them, so that the API is looked for where it really is)."""
    return settings.state_dir / recipe_name / "webui-serve.json"


def recorded_api_url(settings: Settings, recipe_name: str, page_url: str) -> str | None:
    """The API URL ``serve`` recorded for the server whose page is ``page_url``, if any.

    The record counts when its page port is the one asked about; the host is taken from
    ``page_url`` (the server may be reached under another name than it printed).
    """
    try:
        record = json.loads(serving_record_path(settings, recipe_name).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    page = urlsplit(page_url)
    if not record.get("api_port") or page.port != record.get("port"):
        return None
    return f"{page.scheme}://{page.hostname}:{record['api_port']}"


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
            raise CheckFailed(_("the webui server exited with status {status} before it "
                                "answered").format(status=proc.returncode),
                              hint=_("Its output above says why."))
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.5)
    raise CheckFailed(_("the webui did not answer at {url} within {seconds}s").format(
                          url=url, seconds=f"{timeout:.0f}"),
                      hint=_("Loading a large model takes a while: raise --ready-timeout."))


def run_server(plan: dict, opts: ServeOptions, on_ready) -> int:
    """Start the server, call ``on_ready`` once it answers, pass Ctrl-C on; its status."""

    linked = None
    if plan.get("deploy_from"):  # a model folder: linked into models/ as install deploys
        linked = Deployment(Path(plan["deploy_from"]), Path(plan["deploy_to"]), "link")
        linked.run()

    def started(proc: subprocess.Popen) -> None:
        wait_until_ready(plan["url"], proc, opts.ready_timeout)
        if plan.get("record"):
            write_json_atomic(Path(plan["record"]), {
                "dir": plan["dir"], "url": plan["url"], "port": urlsplit(plan["url"]).port,
                "api_url": plan["api_url"],
                "api_port": urlsplit(plan["api_url"]).port if plan["api_url"] else None,
                "pid": proc.pid, "started": time.time()})
        on_ready()

    try:
        return run_service(plan["argv"], cwd=Path(plan["dir"]), on_started=started)
    finally:
        # The link was for this server only: the checkout's models/ is left as it was.
        if linked is not None and linked.is_done():
            linked.target.unlink()
