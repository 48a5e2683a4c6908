"""The Hugging Face Hub, at any endpoint: huggingface.co, hf-mirror.com, or yours.

Listing speaks the Hub API as huggingface_hub does, through the same HTTP session and
rules as every other listing (:func:`llmsetup.download.http.get_json`: an overall
deadline, the metadata size cap, Retry-After, the Hub's ``RateLimit`` quota waited out
with a countdown, backoff), with the endpoint and the token *we* chose:

- ``GET /api/models/{repo}/revision/{rev}`` (what ``HfApi.model_info`` asks) resolves
  the revision to a commit id (``sha``), so that every file comes from one commit even if
  the branch moves during a long download;
- ``GET /api/models/{repo}/tree/{commit}?recursive=true&expand=false`` (what
  ``HfApi.list_repo_tree(recursive=True)`` asks): paths, sizes, the git blob id of each
  file and, for LFS files, ``lfs.oid`` (the sha256 of the content). Pages are followed
  by their ``Link: <...>; rel="next"`` header, as huggingface_hub's pager does, but each
  next page is asked of the endpoint's own host even when a mirror's ``Link`` names
  another one (hf-mirror names huggingface.co: the token never goes elsewhere and a
  blocked host is not tried). ``expand=true`` is not asked for: it adds only the last
  commit and the security scan, and the Hub then pages by 50 entries instead of 1,000.
- Errors are read as ``hf_raise_for_status`` reads them: ``X-Error-Code``
  (``RevisionNotFound``, ``GatedRepo``, ...) and ``X-Error-Message``, and an anonymous 401
  means "not found, or private/gated" (the Hub answers so for a repository that does not
  exist). ``HF_HUB_OFFLINE`` is honoured as huggingface_hub honours it.

Importing huggingface_hub for this cost 0.2-0.3 s of every download's start (measured in
docs/performance.md), more than the two requests themselves. It is still used for one
thing: an OIDC token (``HF_OIDC_RESOURCE``).

The bytes come from ``GET /{repo}/resolve/{commit}/{path}`` through our own engine
(segmented, resumable, hashed while written; measured 7x faster than a single stream on
capped mirrors).
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from llmsetup.download.errors import AccessDenied, NotOnSource, SourceError
from llmsetup.download.http import RetryPolicy, check_status, get_json, server_detail
from llmsetup.download.messages import Message
from llmsetup.download.sources.base import Listing, RemoteFile, Source, safe_relpath
from llmsetup.i18n import N_
from llmsetup.secret import Secret, mask_url, register_url

HF_ENDPOINT = "https://huggingface.co"
HF_MIRROR_ENDPOINT = "https://hf-mirror.com"


def configured_endpoint(settings, explicit: str | None = None) -> str | None:
    """The endpoint the user chose: ``--endpoint``, ``HF_ENDPOINT`` or ``download.endpoint``."""
    value = explicit or os.environ.get("HF_ENDPOINT") or settings.get("download.endpoint")
    if not value:
        return None
    register_url(str(value))  # a password inside the URL is masked wherever it appears
    return str(value).rstrip("/")


def _saved_token_path() -> str:
    """Where ``hf auth login`` saves the token (huggingface_hub's documented locations)."""
    path = os.environ.get("HF_TOKEN_PATH")
    if not path:
        home = os.environ.get("HF_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
            "huggingface")
        path = os.path.join(os.path.expandvars(os.path.expanduser(home)), "token")
    return os.path.expandvars(os.path.expanduser(path))


def hf_token(settings) -> Secret | None:
    """``HF_TOKEN`` (or the config file), else the token saved by ``hf auth login``.

    The saved token file is read here, as huggingface_hub reads it, rather than through
    its ``get_token()``: that fixes the path when huggingface_hub is first imported, and
    importing it costs a fifth of a second. Only OIDC (``HF_OIDC_RESOURCE``) goes through
    huggingface_hub.
    """
    token = settings.token("hf")
    if token:
        return token
    try:
        with open(_saved_token_path(), encoding="utf-8") as fh:
            saved = fh.read().strip()
    except OSError:
        saved = ""
    if not saved and os.environ.get("HF_OIDC_RESOURCE"):
        try:
            from huggingface_hub import get_token

            saved = get_token() or ""
        except Exception:  # an old or broken huggingface_hub: no token then
            saved = ""
    return Secret(saved) if saved else None


class HFSource(Source):
    """A repository on a Hugging Face endpoint."""

    name = "hf"
    max_connections = 16

    def __init__(self, repo_id: str, revision: str, endpoint: str, *, name: str = "hf",
                 token: Secret | None = None, denied_hint: str | None = None,
                 unknown_hint: str | None = None,
                 cancel: threading.Event | None = None, max_connections: int | None = None,
                 retry_policy=None, timeout: tuple[float, float] | None = None,
                 deadline_s: float | None = None) -> None:
        super().__init__(repo_id, revision, cancel)
        self._timeout = timeout
        self.name = name
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        if max_connections:
            self.max_connections = max_connections
        page = f"{self.endpoint}/{repo_id}"
        self.denied_hint = denied_hint or Message(
            N_("The repository may be gated or private: set HF_TOKEN to a token of an account "
               "that accepted its terms at {page}."), page=page)
        self.missing_hint = Message(N_("Check the name and revision at {page}; a mirror may "
                                       "not have this repository yet."), page=page)
        #: For a 401 without a token that is not "gated": the Hub answers anonymous
        #: requests for repositories that do not exist with 401 too.
        self.unknown_hint = unknown_hint or Message(
            N_("Not found, or private/gated: check the id at {page}, or set HF_TOKEN."),
            page=page)
        self._policy = retry_policy or RetryPolicy(attempts=4)
        self._deadline_s = deadline_s

    def describe(self) -> str:
        return f"{self.name} ({mask_url(self.endpoint)})"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token.reveal()}"} if self.token else {}

    # -- listing ----------------------------------------------------------------------

    def _get(self, url: str, what: str) -> tuple[Any, Any]:
        """One API request under the rules of every listing, read with the Hub's error table."""
        kwargs: dict[str, Any] = {}
        if self._timeout:
            kwargs["timeout"] = self._timeout
        return get_json(
            self.session, url, source=self.name, what=what, headers=self._auth(),
            policy=self._policy, cancel=self.cancel, deadline_s=self._deadline_s,
            check=lambda resp: _check_reply(resp, self, what),
            not_json_hint=_NOT_A_HUB, **kwargs)

    def list_files(self) -> Listing:
        if _offline():
            raise SourceError(self.name, Message(N_("HF_HUB_OFFLINE is set: the Hugging Face "
                                                    "sources stay offline")),
                              hint=Message(N_("Unset HF_HUB_OFFLINE, or use --from DIR.")))
        repo, rev = self.repo_id, self.requested_revision
        info, _ = self._get(f"{self.endpoint}/api/models/{repo}/revision/{quote(rev, safe='')}",
                            f"{repo}@{rev}")
        commit = info.get("sha") if isinstance(info, dict) else None
        self.revision = str(commit) if isinstance(commit, str) and commit else rev
        what = Message(N_("the file list of {repo}"), repo=repo)
        url: str | None = (f"{self.endpoint}/api/models/{repo}/tree/"
                           f"{quote(self.revision, safe='')}?recursive=true&expand=false")
        files: list[RemoteFile] = []
        pages = 0
        while url:
            pages += 1
            if pages > MAX_PAGES:
                raise SourceError(self.name, Message(
                    N_("{what}: more than {pages} pages; the download would be incomplete"),
                    what=what, pages=MAX_PAGES))
            entries, resp = self._get(url, what)
            if not isinstance(entries, list):
                raise _not_the_hub(self, what, f"a JSON {type(entries).__name__}, not a list")
            files += [self._file(e, what) for e in entries
                      if not (isinstance(e, dict) and e.get("type") == "directory")]
            url = self._next_page(resp)
        if not files:
            raise SourceError(self.name, Message(N_("{repo}@{revision} lists no files"),
                                                 repo=repo, revision=self.revision))
        return Listing(files, self.revision)

    def _next_page(self, resp: Any) -> str | None:
        """The ``Link: <...>; rel="next"`` page, asked of the endpoint's own host."""
        link = (resp.links.get("next") or {}).get("url")
        if not link:
            return None
        split, own = urlsplit(link), urlsplit(self.endpoint)
        return urlunsplit((own.scheme, own.netloc, split.path, split.query, ""))

    def _file(self, entry: Any, what: str) -> RemoteFile:
        if not isinstance(entry, dict):
            raise _not_the_hub(self, what, f"an entry is a JSON {type(entry).__name__}")
        path = safe_relpath(str(entry.get("path") or ""), self.name)
        lfs = entry.get("lfs")
        lfs = lfs if isinstance(lfs, dict) else None
        size = (lfs or {}).get("size", entry.get("size"))
        if not isinstance(size, int) or isinstance(size, bool):
            raise SourceError(self.name, Message(N_("{path}: the listing gives no size"),
                                                 path=path))
        sha256 = (lfs or {}).get("oid") or (lfs or {}).get("sha256")
        oid = entry.get("oid")
        return RemoteFile(path, size, sha256=str(sha256).lower() if sha256 else None,
                          lfs=lfs is not None,
                          git_oid=str(oid).lower() if oid and not lfs else None)

    # -- transfer ---------------------------------------------------------------------

    def url_and_headers(self, file: RemoteFile) -> tuple[str, dict[str, str]]:
        url = (f"{self.endpoint}/{self.repo_id}/resolve/{quote(self.revision, safe='')}/"
               f"{quote(file.path)}")
        return url, self._auth()


#: Pages of 1,000 entries: a million files is more than any model repository holds.
MAX_PAGES = 1000

_NOT_A_HUB = Message(N_("The server may not speak the Hub API; check the endpoint URL."))


def _offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub reads it (1, ON, YES or TRUE)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _not_the_hub(source: HFSource, what: str, detail: str) -> SourceError:
    return SourceError(source.name, Message(
        N_("{what}: the reply is not the Hub's format ({error})"), what=what, error=detail),
        hint=_NOT_A_HUB)


# -- the Hub's error replies as ours -----------------------------------------------------

def _check_reply(resp: Any, source: HFSource, what: str) -> None:
    """Raise our error for a reply that is not a success, as ``hf_raise_for_status`` reads
    it: what the Hub says through ``X-Error-Code`` and about tokens here, the rest (busy,
    quota, 5xx, not found, denied) by the rules of every source (:func:`check_status`)."""
    status = resp.status_code
    if status < 400:
        return
    code = resp.headers.get("X-Error-Code") or ""
    detail = server_detail(resp)
    if code == "RevisionNotFound":
        raise NotOnSource(source.name, Message(
            N_("not found (HTTP {code}): revision {revision} of {repo}{detail}"), code=status,
            revision=source.requested_revision, repo=source.repo_id, detail=detail),
            hint=source.missing_hint)
    if status == 401 and code != "GatedRepo" and not source.token:
        raise AccessDenied(source.name, Message(
            N_("not found, or private/gated (HTTP 401): {what}{detail}"), what=what,
            detail=detail), hint=source.unknown_hint)
    if status in (401, 403) and source.token:
        raise AccessDenied(source.name, Message(
            N_("the HF token was refused (HTTP {code}) for {what}{detail}"), code=status,
            what=what, detail=detail), hint=source.denied_hint)
    if code == "GatedRepo" and status not in (401, 403):
        raise AccessDenied(source.name, Message(
            N_("access denied (HTTP {code}) to {what}{detail}"), code=status, what=what,
            detail=detail), hint=source.denied_hint)
    check_status(resp, source.name, what, source.denied_hint, source.missing_hint)
