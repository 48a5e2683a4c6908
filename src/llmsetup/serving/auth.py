"""Credentials for servers that listen beyond loopback.

``serve`` on anything but a loopback address gets an API key (vLLM's and the webui's
OpenAI-compatible API) and, for the webui, a page login, unless ``--no-auth``. Both are
generated once, kept under ``$LLMSETUP_HOME/auth/`` with mode 600 (the folder 700), and
handed to the server through its environment (vLLM reads ``VLLM_API_KEY``) or a file (the
webui's ``--gradio-auth-path``), never through argv, which every user of the machine can
read in ``ps``. ``verify --api`` and ``bench --api`` read the key from the same place, so
nobody retypes it; ``LLMSETUP_API_KEY`` overrides the stored key (for a remote server).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from llmsetup.secret import Secret, register
from llmsetup.settings import Settings

API_KEY_ENV = "LLMSETUP_API_KEY"
WEBUI_USER = "llmsetup"


def auth_dir(settings: Settings) -> Path:
    return settings.home / "auth"


def api_key_path(settings: Settings) -> Path:
    return auth_dir(settings) / "api-key"


def webui_login_path(settings: Settings) -> Path:
    """``user:password`` for text-generation-webui's ``--gradio-auth-path``."""
    return auth_dir(settings) / "webui-login"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1 and localhost: the addresses that mean "this machine only".

    Any other address gets credentials, even another loopback one such as 127.0.0.2: the
    rule stays one line long, and the tests use 127.0.0.2 to stand for a network address.
    """
    return host.strip().strip("[]").lower() in ("127.0.0.1", "::1", "localhost")


def _write_private(path: Path, text: str) -> bool:
    """Create ``path`` with mode 600 unless it exists; True when it was created now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    return True


def _read_private(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        os.chmod(path, 0o600)  # ours, and readable by others: close it before using it
    return path.read_text(encoding="utf-8").strip() or None


def ensure_api_key(settings: Settings) -> tuple[Secret, bool]:
    """The stored API key, made now if there is none; and whether it was made now."""
    path = api_key_path(settings)
    created = _write_private(path, "sk-llmsetup-" + secrets.token_urlsafe(32))
    value = _read_private(path)
    assert value
    return Secret(value), created


def load_api_key(settings: Settings) -> Secret | None:
    """The key a client sends: ``LLMSETUP_API_KEY``, else the stored one, else none."""
    env = os.environ.get(API_KEY_ENV, "").strip()
    if env:
        return Secret(env)
    value = _read_private(api_key_path(settings))
    return Secret(value) if value else None


def ensure_webui_login(settings: Settings) -> tuple[Path, Secret, bool]:
    """The webui's login file (``user:password``), its password, and whether it is new."""
    path = webui_login_path(settings)
    created = _write_private(path, f"{WEBUI_USER}:{secrets.token_urlsafe(12)}")
    value = _read_private(path) or ""
    password = value.partition(":")[2]
    register(password)
    return path, Secret(password), created
