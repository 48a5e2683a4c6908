"""The one interface every download source implements, and the names it may hand us.

A source lists a repository's files (path, size, and the hashes it publishes) and says
how to fetch one file (a URL and headers). It never writes to disk: the engine does, for
every source alike. Every name a listing gives passes :func:`safe_relpath` before it is
used, so a hostile or broken mirror cannot write outside the model folder.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import requests

from llmsetup.download.errors import UnsafeListing
from llmsetup.download.messages import Message
from llmsetup.i18n import N_

# Our own folder inside each model folder (manifest, lock, partial files).
STATE_DIR = ".llmsetup"

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a listing.

    ``sha256`` is the publisher's hash of the content where the source has one (HF
    ``lfs.oid``, ModelScope ``Sha256``). ``git_oid`` is the git blob id of a small file
    that is not in LFS (HF ``oid``): sha1 over ``b"blob <size>\\0" + content``, so those
    files are verified too.
    """

    path: str
    size: int
    sha256: str | None = None
    lfs: bool = False
    git_oid: str | None = None
    #: Where the hashes come from when the source itself publishes none ("the HF
    #: revision" for aliendao): a mismatch then means "another copy", not "damaged", so
    #: the file is downloaded once, never twice, and its key is not the borrowed hash.
    hash_from: str | None = None
    #: The user accepts this source's copy by its size when it differs from ``hash_from``.
    accept_by_size: bool = False

    @property
    def partial_sha256(self) -> str | None:
        """The sha256 that names this file's partial data: only one the source promised."""
        return None if self.hash_from else self.sha256

    @property
    def verifiable(self) -> str:
        """How the content can be checked: sha256, git-sha1 or size."""
        if self.sha256:
            return "sha256"
        if self.git_oid:
            return "git-sha1"
        return "size"


@dataclass
class Listing:
    """What a source holds for one repository at one revision."""

    files: list[RemoteFile]
    revision: str
    #: What the user should know about this listing (e.g. where hashes came from).
    notes: list[str] = field(default_factory=list)
    #: What weakens the verification (e.g. files checked by size only).
    warnings: list[str] = field(default_factory=list)


def safe_relpath(name: str, source: str) -> str:
    """``name`` as a clean relative POSIX path, or :class:`UnsafeListing`.

    Refused: empty names, absolute paths, drive letters (``C:``), UNC and any backslash,
    ``..`` and ``.`` parts, empty parts, control characters, and our own state folder.
    """
    problem = None
    if not name.strip():
        problem = Message(N_("an empty name"))
    elif any(ord(c) < 32 for c in name):
        problem = Message(N_("a control character"))
    elif name.startswith(("/", "\\")) or _DRIVE.match(name):
        problem = Message(N_("an absolute path"))
    elif "\\" in name:
        problem = Message(N_("a backslash (Windows or UNC path)"))
    else:
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts):
            problem = Message(N_("a '..', '.' or empty path part"))
        elif parts[0] == STATE_DIR:
            problem = Message(N_("llmsetup's own {folder} folder"), folder=STATE_DIR)
    if problem:
        raise UnsafeListing(source, Message(
            N_("refusing the listing: {name} is {problem}, which could write outside the "
               "model folder"), name=repr(name), problem=problem), hint=Message(
            N_("The source is broken or hostile; nothing was written. Try another source.")))
    return str(PurePosixPath(name))


class Source(ABC):
    """A place to download one repository from.

    Subclasses set :attr:`name` and :attr:`max_connections`, and implement
    :meth:`list_files` and :meth:`url_and_headers`. A source is bound to one repository
    id (already translated for this source, see ``Recipe.id_for``) and revision.
    """

    name: str = "source"
    #: The most parallel connections this source tolerates from one client.
    max_connections: int = 8
    #: What to tell the user on 401/403 and on 404 (set by each source).
    denied_hint: str | None = None
    missing_hint: str | None = None

    def __init__(self, repo_id: str, revision: str, cancel: threading.Event | None = None):
        self.repo_id = repo_id
        self.requested_revision = revision
        #: The revision files are fetched at; a commit id once a listing resolved it.
        self.revision = revision
        self.cancel = cancel
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        """A session for the listing calls (the engine makes one per connection)."""
        if self._session is None:
            from llmsetup.download.http import new_session

            self._session = new_session()
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def describe(self) -> str:
        """A one-line, secret-free description for messages ("hf-mirror (https://...)")."""
        return self.name

    @abstractmethod
    def list_files(self) -> Listing:
        """Every file of the repository with its size and any published hashes."""

    @abstractmethod
    def url_and_headers(self, file: RemoteFile) -> tuple[str, dict[str, str]]:
        """Where to GET ``file`` and which headers to send (tokens included)."""

    def partial_identity(self) -> str:
        """What names the bytes of a file whose hash is unknown: source and revision."""
        return f"{self.name}@{self.revision}"
