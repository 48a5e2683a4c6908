"""text-generation-webui, the way the book serves Llama-2: clone at the pinned commit, trim
its requirements at the cut-off line, deploy a downloaded model into ``models/``, serve.

Only command lines and files are handled here; the install plan (:mod:`llmsetup.steps`)
and ``llmsetup serve`` run them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from llmsetup.errors import CheckFailed, UsageError
from llmsetup.proc import clean_env

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
DEPLOY_MODES = ("link", "copy", "move")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    """The package a requirements line installs; None for comments, blanks and options."""
    text = line.split("#", 1)[0].strip() if not line.lstrip().startswith(("http://", "https://"))\
        else line.strip()
    if not text or text.startswith("-"):
        return None
    if text.startswith(("http://", "https://", "file:")):
        wheel = text.split(";", 1)[0].strip().rsplit("/", 1)[-1]
        return canonical(wheel.split("-", 1)[0])
    match = _NAME.match(text)
    return canonical(match.group(1)) if match else None


def trim_requirements(text: str, cutoff: str) -> str:
    """Keep ``requirements.txt`` up to and including the ``cutoff`` package's line.

    Order, comments, blank lines, environment markers and index options of the kept lines
    stay exactly as they are, as the book's hand edit does.
    """
    kept: list[str] = []
    want = canonical(cutoff)
    for line in text.splitlines(keepends=True):
        kept.append(line)
        if requirement_name(line) == want:
            result = "".join(kept)
            return result if result.endswith("\n") else result + "\n"
    raise UsageError(
        f"the cut-off package {cutoff!r} is not in the webui's requirements.txt",
        hint="The checkout is not at the recipe's commit, or the recipe's "
        "webui.requirements_cutoff is wrong.")


def requirement_lines(text: str) -> list[str]:
    """Plain ``name...`` requirement lines (for the satisfied-check); URLs and options out."""
    out = []
    for line in text.splitlines():
        bare = line.split("#", 1)[0].strip()
        if bare and not bare.startswith(("-", "http://", "https://", "file:")):
            out.append(bare)
    return out


def clone_url(repo_url: str, mirror: str | None) -> str:
    """The URL to clone from. ``--git-mirror`` is a prefix ending in ``/`` (put in front of
    the GitHub URL), a template with ``{url}``, or a whole replacement URL."""
    if not mirror:
        return repo_url
    if "{url}" in mirror:
        return mirror.format(url=repo_url)
    if mirror.endswith("/"):
        return mirror + repo_url
    return mirror


def git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env=clean_env({"GIT_TERMINAL_PROMPT": "0"}), check=False)


def head_commit(folder: Path) -> str | None:
    proc = git("rev-parse", "HEAD", cwd=folder)
    return proc.stdout.strip() if proc.returncode == 0 else None


def at_commit(folder: Path, commit: str) -> bool:
    head = head_commit(folder)
    return bool(head) and head.startswith(commit)


def is_clean(folder: Path) -> bool:
    proc = git("status", "--porcelain", "--untracked-files=no", cwd=folder)
    return proc.returncode == 0 and not proc.stdout.strip()


@dataclass
class Deployment:
    """Where a model goes inside the webui, and how it gets there."""

    source: Path
    target: Path
    mode: str

    def is_done(self) -> bool:
        if self.mode == "link":
            return self.target.is_symlink() and self.target.resolve() == self.source.resolve()
        marker = self.target / ".llmsetup-deployed.json"
        return self.target.is_dir() and marker.is_file()

    def run(self) -> str:
        """Deploy; never leaves a half-deployed folder at the target. Returns the mode used."""
        if self.mode not in DEPLOY_MODES:
            raise UsageError(f"unknown deploy mode {self.mode!r}",
                             hint="Choose link, copy or move.")
        if not (self.source / "config.json").is_file():
            raise CheckFailed(f"nothing to deploy: {self.source} holds no model",
                              hint="Run the download first (`llmsetup download NAME`).")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        if self.target.is_symlink():
            self.target.unlink()
        elif self.target.exists():
            if not (self.target / ".llmsetup-deployed.json").is_file():
                raise UsageError(f"{self.target} exists and was not deployed by llmsetup",
                                 hint="Move it away, or pass --deploy with the folder removed.")
            shutil.rmtree(self.target)
        if self.mode == "link":
            try:
                self.target.symlink_to(self.source.resolve(), target_is_directory=True)
                return "link"
            except OSError:  # no symlinks here (e.g. Windows without the right): copy
                self.mode = "copy"
        tmp = self.target.with_name(f".{self.target.name}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        if self.mode == "move":
            shutil.move(str(self.source), str(tmp))
        else:
            shutil.copytree(self.source, tmp)
        (tmp / ".llmsetup-deployed.json").write_text(
            json.dumps({"from": str(self.source), "mode": self.mode}), encoding="utf-8")
        os.replace(tmp, self.target)
        if self.mode == "move":
            # Keep the download path working (check, verify, resume) through a link.
            self.source.symlink_to(self.target, target_is_directory=True)
        return self.mode


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


def check_page(url: str, timeout: float = 30) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise CheckFailed(f"the webui does not answer at {url}: {exc}",
                          hint="Is `llmsetup serve` running? Check the host and port.") from None


def chat_once(api_url: str, prompt: str, max_tokens: int = 32, timeout: float = 300) -> str:
    """One chat request through the webui's OpenAI-compatible API; the answer's text."""
    body = json.dumps({"messages": [{"role": "user", "content": prompt}],
                       "max_tokens": max_tokens, "mode": "instruct"}).encode()
    request = urllib.request.Request(api_url.rstrip("/") + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            doc = json.loads(reply.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CheckFailed(f"the webui API at {api_url} did not answer a chat request: {exc}",
                          hint="Start the server with `llmsetup serve NAME --api`.") from None
    try:
        return doc["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise CheckFailed(f"the webui API answered without a chat message: {str(doc)[:200]}")\
            from None
