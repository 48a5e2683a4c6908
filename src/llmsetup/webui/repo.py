"""The text-generation-webui checkout, the way the book gets it: clone at the pinned
commit, trim its requirements at the cut-off line, deploy a downloaded model into
``models/``. The install's webui route (:mod:`llmsetup.install.webui_route`) runs the
clone and the deploy; :mod:`llmsetup.webui.server` starts the server.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from llmsetup.errors import CheckFailed, UsageError
from llmsetup.fileio import write_json_atomic
from llmsetup.proc import Captured, capture

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
DEPLOY_MODES = ("link", "copy", "move")


def requirement_name(line: str) -> str | None:
    """The package a requirements line installs; None for comments, blanks and options."""
    text = line.split("#", 1)[0].strip() if not line.lstrip().startswith(("http://", "https://"))\
        else line.strip()
    if not text or text.startswith("-"):
        return None
    if text.startswith(("http://", "https://", "file:")):
        wheel = text.split(";", 1)[0].strip().rsplit("/", 1)[-1]
        return canonicalize_name(wheel.split("-", 1)[0])
    match = _NAME.match(text)
    return canonicalize_name(match.group(1)) if match else None


def trim_requirements(text: str, cutoff: str) -> str:
    """Keep ``requirements.txt`` up to and including the ``cutoff`` package's line.

    Order, comments, blank lines, environment markers and index options of the kept lines
    stay exactly as they are, as the book's hand edit does.
    """
    kept: list[str] = []
    want = canonicalize_name(cutoff)
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


def git(*args: str, cwd: Path | None = None) -> Captured | None:
    """A short git query (never a prompt for credentials); None when git is missing."""
    return capture(["git", *args], cwd=cwd, env={"GIT_TERMINAL_PROMPT": "0"}, timeout=60)


def head_commit(folder: Path) -> str | None:
    proc = git("rev-parse", "HEAD", cwd=folder)
    return proc.stdout.strip() if proc and proc.returncode == 0 else None


def at_commit(folder: Path, commit: str) -> bool:
    head = head_commit(folder)
    return bool(head) and head.startswith(commit)


def is_clean(folder: Path) -> bool:
    proc = git("status", "--porcelain", "--untracked-files=no", cwd=folder)
    return bool(proc) and proc.returncode == 0 and not proc.stdout.strip()


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
        write_json_atomic(tmp / ".llmsetup-deployed.json",
                          {"from": str(self.source), "mode": self.mode})
        os.replace(tmp, self.target)
        if self.mode == "move":
            # Keep the download path working (check, verify, resume) through a link.
            self.source.symlink_to(self.target, target_is_directory=True)
        return self.mode
