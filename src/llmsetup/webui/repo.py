"""The text-generation-webui checkout, the way the book gets it: clone at the pinned
commit, trim its requirements at the cut-off line, deploy a downloaded model into
``models/``. The install's webui route (:mod:`llmsetup.install.webui_route`) runs the
clone and the deploy; :mod:`llmsetup.webui.server` starts the server.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from llmsetup.errors import CheckFailed, UsageError
from llmsetup.fileio import write_json_atomic
from llmsetup.i18n import N_, _
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
        _("the cut-off package {cutoff} is not in the webui's requirements.txt").format(
            cutoff=repr(cutoff)),
        hint=_("The checkout is not at the recipe's commit, or the recipe's "
               "webui.requirements_cutoff is wrong."))


def requirement_lines(text: str) -> list[str]:
    """Plain ``name...`` requirement lines (for the satisfied-check); URLs and options out."""
    out = []
    for line in text.splitlines():
        bare = line.split("#", 1)[0].strip()
        if bare and not bare.startswith(("-", "http://", "https://", "file:")):
            out.append(bare)
    return out


class CloneSource(NamedTuple):
    """Where the clone comes from, and which ``--git-mirror`` style made it."""

    url: str
    #: direct | proxy (prefix + the full URL) | template ({url}/{path}) | root (a mirror
    #: holding ``<root>/OWNER/NAME[.git]``) | repository (the mirror repository itself)
    style: str

    def describe(self) -> str:
        """Where the clone comes from, in English (see :data:`SOURCE_WORDS`)."""
        return SOURCE_WORDS[self.style].format(url=self.url)


#: How each ``--git-mirror`` style reads: marked here, translated where it is shown.
SOURCE_WORDS = {
    "direct": N_("directly {url}"),
    "proxy": N_("through the URL-prefix proxy {url}"),
    "template": N_("through the mirror template {url}"),
    "root": N_("from the mirror root {url}"),
    "repository": N_("from the mirror repository {url}"),
}


_GIT_URL = re.compile(r"^(https?|git|ssh|git\+ssh|ssh\+git)://[^/\s]+|^[\w.-]+@[\w.-]+:")


def _owner_path(repo_url: str) -> str:
    """``oobabooga/text-generation-webui`` from the upstream URL."""
    path = urlsplit(repo_url).path if "://" in repo_url else repo_url
    path = path.strip("/")
    return path[:-4] if path.endswith(".git") else path


def _is_git_repo(folder: Path) -> bool:
    return (folder / ".git").exists() or ((folder / "HEAD").is_file()
                                          and (folder / "objects").is_dir())


def _local_source(folder: Path, owner_path: str, shown: str) -> CloneSource:
    """A local mirror: the repository itself, or a root holding ``OWNER/NAME[.git]``."""
    if _is_git_repo(folder):
        return CloneSource(str(folder), "repository")
    tried = [folder / f"{owner_path}.git", folder / owner_path]
    for candidate in tried:
        if _is_git_repo(candidate):
            return CloneSource(str(candidate), "root")
    bare, plain = tried
    raise UsageError(_("--git-mirror {mirror}: no git repository at {folder} or at {bare} or "
                       "{plain}").format(mirror=shown, folder=folder, bare=bare, plain=plain),
                     hint=_("Give the mirror repository itself, or a root folder that holds "
                            "{path}.git (e.g. made with `git clone --mirror`).").format(
                                path=owner_path))


def clone_source(repo_url: str, mirror: str | None) -> CloneSource:
    """The URL to clone from, and the ``--git-mirror`` style that gave it.

    - a template with ``{url}`` (the full upstream URL) or ``{path}`` (``OWNER/NAME``);
    - a URL-prefix proxy: an http(s) URL with no path of its own
      (``https://proxy.example/`` + the full GitHub URL, as GitHub proxies take it);
    - a mirror root: a local folder, ``file://`` URL, or an http(s)/ssh URL whose path ends
      in ``/`` (``https://gitee-like.host/org/``): the clone comes from
      ``<root>/OWNER/NAME[.git]`` (a local root is looked into to pick the one that exists);
    - anything else: the mirror repository's own URL.

    Anything git could not parse is refused here, so the dry run refuses it too.
    """
    if not mirror:
        return CloneSource(repo_url, "direct")
    mirror = mirror.strip()
    owner_path = _owner_path(repo_url)
    if "{url}" in mirror or "{path}" in mirror:
        try:
            url = mirror.format(url=repo_url, path=owner_path)
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(_("--git-mirror {mirror}: a template takes only {{url}} and "
                               "{{path}} ({error})").format(mirror=mirror, error=exc)) from None
        return _checked(CloneSource(url, "template"), mirror)
    if mirror.startswith("file://"):
        return _local_source(Path(unquote(urlsplit(mirror).path)), owner_path, mirror)
    if "://" not in mirror and not re.match(r"^[\w.-]+@[\w.-]+:", mirror):
        return _local_source(Path(mirror).expanduser().absolute(), owner_path, mirror)
    parts = urlsplit(mirror)
    if parts.scheme in ("http", "https") and parts.path in ("", "/") and not parts.query:
        # A host alone is never a repository: a proxy, with or without its final "/".
        return _checked(CloneSource(mirror.rstrip("/") + "/" + repo_url, "proxy"), mirror)
    if mirror.endswith("/"):
        return _checked(CloneSource(mirror + owner_path, "root"), mirror)
    return _checked(CloneSource(mirror, "repository"), mirror)


def _checked(source: CloneSource, mirror: str) -> CloneSource:
    if not _GIT_URL.match(source.url) or any(c.isspace() for c in source.url):
        raise UsageError(_("--git-mirror {mirror} gives {url}, which git cannot clone").format(
                             mirror=mirror, url=source.url),
                         hint=_("Give a URL-prefix proxy (https://proxy.example/), a mirror "
                                "root (a folder, file:// or https://host/org/), a template "
                                "with {url}, or the mirror repository's URL."))
    return source


def clone_url(repo_url: str, mirror: str | None) -> str:
    """The URL to clone from (see :func:`clone_source`)."""
    return clone_source(repo_url, mirror).url


def git(*args: str, cwd: Path | None = None) -> Captured | None:
    """A short git query (never a prompt for credentials); None when git is missing."""
    return capture(["git", *args], cwd=cwd, env={"GIT_TERMINAL_PROMPT": "0"}, timeout=60)


def head_commit(folder: Path) -> str | None:
    proc = git("rev-parse", "HEAD", cwd=folder)
    return proc.stdout.strip() if proc and proc.returncode == 0 else None


def resolve_commit(folder: Path, commit: str) -> str | None:
    """The full object id of ``commit`` (a short id too) in the checkout at ``folder``."""
    proc = git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", cwd=folder)
    return proc.stdout.strip() if proc and proc.returncode == 0 else None


def at_commit(folder: Path, commit: str) -> bool:
    """Whether HEAD is ``commit``, compared as full object ids (a short id is resolved)."""
    head = head_commit(folder)
    return bool(head) and head == resolve_commit(folder, commit)


def blob_id(path: Path) -> str | None:
    """The git blob id (sha1 of ``blob <size>\\0`` + content) of a file; None if unreadable."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def tree_mismatches(folder: Path, blobs: dict[str, str]) -> list[str]:
    """The files of ``blobs`` (path -> blob id at the commit) that are missing or differ."""
    return [path for path, oid in blobs.items() if blob_id(folder / path) != oid]


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
            raise UsageError(_("unknown deploy mode {mode}").format(mode=repr(self.mode)),
                             hint=_("Choose link, copy or move."))
        if not (self.source / "config.json").is_file():
            raise CheckFailed(_("nothing to deploy: {folder} holds no model").format(
                                  folder=self.source),
                              hint=_("Run the download first (`llmsetup download NAME`)."))
        self.target.parent.mkdir(parents=True, exist_ok=True)
        if self.target.is_symlink():
            self.target.unlink()
        elif self.target.exists():
            if not (self.target / ".llmsetup-deployed.json").is_file():
                raise UsageError(_("{target} exists and was not deployed by llmsetup").format(
                                     target=self.target),
                                 hint=_("Move it away, or pass --deploy with the folder "
                                        "removed."))
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
