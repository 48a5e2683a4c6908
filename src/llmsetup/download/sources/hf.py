"""The Hugging Face Hub, at any endpoint: huggingface.co, hf-mirror.com, or yours.

Listing goes through huggingface_hub's ``HfApi`` (imported only when a listing runs, so
the CLI starts without it), with the endpoint and the token *we* chose (never its own
token lookup):

- ``GET /api/models/{repo}/revision/{rev}``, through its session, headers and
  ``hf_raise_for_status`` (:meth:`HFSource._revision_info` says why not ``model_info``),
  resolves the revision to a commit id, so that every file comes from one commit even if
  the branch moves during a long download;
- ``HfApi.list_repo_tree(repo, revision=commit, recursive=True)``
  (``GET /api/models/{repo}/tree/{commit}?recursive=true&expand=false``, pages followed by
  their ``Link: <...>; rel="next"`` header): paths, sizes, the git blob id of each file and,
  for LFS files, ``lfs.oid`` (the sha256 of the content). ``expand=True`` is not asked
  for: it adds only the last commit and the security scan, and the Hub then pages by 50
  entries instead of 1,000 (twenty times the API calls against the rate limit).

The bytes come from ``GET /{repo}/resolve/{commit}/{path}`` through our own engine
(segmented, resumable, hashed while written; measured 7x faster than a single stream on
capped mirrors).

What we add around huggingface_hub, identical for every version from 0.20 (requests) to
2.x (httpx): its exceptions mapped onto our :class:`SourceError` family with our hints
(:func:`_hub_error`); the retry rules of every listing (Retry-After, the Hub's
``RateLimit`` quota waited out with a countdown, backoff); and, in
:mod:`._hub_calls`, an overall deadline, the metadata size cap, each next page fetched
from the endpoint's own host even when a mirror's ``Link`` names another one (hf-mirror
names huggingface.co: the token never goes elsewhere and a blocked host is not tried),
and its own log lines kept off the terminal.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import llmsetup.download.http as http
from llmsetup.download.errors import AccessDenied, NotOnSource, SourceError
from llmsetup.download.http import (
    RetryPolicy,
    Transient,
    asks_to_wait,
    describe_network_error,
    gave_up,
    http_error,
    is_network_error,
    metadata_deadline_s,
    rate_limit_reset,
    retry_after_seconds,
    sleep_unless,
    unexpected_reply,
)
from llmsetup.download.messages import Message
from llmsetup.download.sources._hub_calls import run_bounded
from llmsetup.download.sources.base import Listing, RemoteFile, Source, safe_relpath
from llmsetup.i18n import N_
from llmsetup.secret import Secret, mask_url, redact, register_url

HF_ENDPOINT = "https://huggingface.co"
HF_MIRROR_ENDPOINT = "https://hf-mirror.com"

T = TypeVar("T")


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

    def _api(self):
        from huggingface_hub import HfApi

        from llmsetup import __version__

        # token=False, not None: None would make huggingface_hub look up a saved token
        # and send it to whatever endpoint this is.
        return HfApi(endpoint=self.endpoint, token=self._token_arg(),
                     library_name="llmsetup", library_version=__version__)

    def _token_arg(self) -> str | bool:
        return self.token.reveal() if self.token else False

    def list_files(self) -> Listing:
        api, repo, token = self._api(), self.repo_id, self._token_arg()
        rev = self.requested_revision
        path = f"/api/models/{repo}/revision/{quote(rev, safe='')}"
        info = self._call(lambda: self._revision_info(path), f"{repo}@{rev}", path)
        commit = info.get("sha") if isinstance(info, dict) else None
        self.revision = str(commit) if commit else rev
        entries = self._call(
            lambda: list(api.list_repo_tree(repo, revision=self.revision, recursive=True,
                                            token=token)),
            Message(N_("the file list of {repo}"), repo=repo),
            f"/api/models/{repo}/tree/{quote(self.revision, safe='')}", paging=True)
        files = [self._file(e) for e in entries if hasattr(e, "blob_id")]  # RepoFile, not folder
        if not files:
            raise SourceError(self.name, Message(N_("{repo}@{revision} lists no files"),
                                                 repo=repo, revision=self.revision))
        return Listing(files, self.revision)

    def _revision_info(self, path: str) -> Any:
        """``GET /api/models/{repo}/revision/{rev}`` through huggingface_hub's session,
        headers and error table, read as plain JSON: ``HfApi.model_info`` would build a
        ``ModelInfo``, which in 0.2x requires fields (``downloads``, ``likes``, ``tags``)
        that a mirror or a private endpoint need not send; only ``sha`` is needed here."""
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        from llmsetup import __version__

        headers = build_hf_headers(token=self._token_arg(), library_name="llmsetup",
                                   library_version=__version__)
        timeout = self._timeout[1] if self._timeout else None
        response = get_session().get(f"{self.endpoint}{path}", headers=headers,
                                     timeout=timeout)
        hf_raise_for_status(response)
        return response.json()

    def _file(self, entry: Any) -> RemoteFile:
        path = safe_relpath(str(getattr(entry, "path", "") or ""), self.name)
        lfs = getattr(entry, "lfs", None)
        sha256 = _field(lfs, "sha256") if lfs else None
        size = _field(lfs, "size") if lfs else None
        if size is None:
            size = getattr(entry, "size", None)
        if not isinstance(size, int) or isinstance(size, bool):
            raise SourceError(self.name, Message(N_("{path}: the listing gives no size"),
                                                 path=path))
        oid = getattr(entry, "blob_id", None)
        return RemoteFile(path, size, sha256=str(sha256).lower() if sha256 else None,
                          lfs=lfs is not None,
                          git_oid=str(oid).lower() if oid and not lfs else None)

    def _call(self, fn: Callable[[], T], what: str, path: str, paging: bool = False) -> T:
        """``fn()`` (one huggingface_hub call) under the rules of :func:`http.get_json`: an
        overall deadline (``LLMSETUP_METADATA_TIMEOUT``), the size cap, our retries, and a
        spent quota (429 ``RateLimit: ...;r=0;t=N``) waited out with a countdown without
        counting as a try."""
        url = redact(f"{self.endpoint}{path}")
        policy, limit = self._policy, self._deadline_s or metadata_deadline_s()
        deadline = time.monotonic() + limit  # retries included, server-asked waits not
        quota_waited, attempt = 0.0, 0
        last: Transient | None = None
        while attempt < policy.attempts:
            attempt += 1
            try:
                return run_bounded(fn, deadline, limit, self.cancel,
                                self._origin() if paging else None, self.name, what, url)
            except SourceError:
                raise
            except Exception as exc:
                last = _hub_error(exc, self, what)
            wait = last.retry_after
            if wait is not None and wait > policy.max_retry_after_s:
                raise asks_to_wait(self.name, last, wait)
            if last.quota and wait is not None and quota_waited + wait <= policy.max_retry_after_s:
                attempt -= 1  # inside the server's window: not a failed try
                quota_waited += wait
            if attempt < policy.attempts:
                delay = policy.delay(max(1, attempt), wait)
                if wait is not None:
                    deadline += delay  # the server's own wait is not ours to count
                    if http._wait_for_server(self.cancel, delay, self.name):
                        raise KeyboardInterrupt
                elif sleep_unless(self.cancel, delay):
                    raise KeyboardInterrupt
        assert last is not None
        raise gave_up(self.name, last, policy.attempts)

    def _origin(self) -> tuple[str, str, int | None, str]:
        split = urlsplit(self.endpoint)
        return split.scheme, split.hostname or "", split.port, split.netloc.rpartition("@")[2]

    # -- transfer ---------------------------------------------------------------------

    def url_and_headers(self, file: RemoteFile) -> tuple[str, dict[str, str]]:
        url = (f"{self.endpoint}/{self.repo_id}/resolve/{quote(self.revision, safe='')}/"
               f"{quote(file.path)}")
        return url, self._auth()


def _field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``: BlobLfsInfo is a dict in some versions, a dataclass in others."""
    value = getattr(obj, name, None)
    if value is None and isinstance(obj, dict):
        value = obj.get(name)
    return value


# -- huggingface_hub's exceptions as ours ------------------------------------------------

def _hub_error(exc: Exception, source: HFSource, what: str) -> Transient:
    """Raise ``exc`` as our error (fatal ones), or return it as a :class:`Transient`."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if "OfflineModeIsEnabled" in names:
        raise SourceError(source.name, Message(N_("HF_HUB_OFFLINE is set: huggingface_hub "
                                                  "refuses to go online")),
                          hint=Message(N_("Unset HF_HUB_OFFLINE, or use --from DIR."))) from None
    if isinstance(status, int) and ("HfHubHTTPError" in names or "HTTPError" in names
                                    or "HTTPStatusError" in names):
        return _status_error(status, response, names, source, what)
    if is_network_error(exc) or _is_transport_error(names):
        return Transient(Message(N_("{what}: {error}"), what=what,
                                 error=describe_network_error(exc)))
    if isinstance(exc, (KeyError, TypeError, ValueError)):  # a reply huggingface_hub cannot parse
        raise SourceError(source.name, Message(
            N_("{what}: the reply is not the Hub's format ({error})"), what=what,
            error=f"{type(exc).__name__}: {redact(str(exc))[:120]}"), hint=Message(
            N_("The server may not speak the Hub API; check the endpoint URL."))) from None
    raise exc


def _status_error(status: int, response: Any, names: set[str], source: HFSource,
                  what: str) -> Transient:
    headers = getattr(response, "headers", {}) or {}
    message = headers.get("X-Error-Message") or ""
    detail = f" ({redact(message.strip())[:200]})" if message else ""
    code = headers.get("X-Error-Code") or ""
    if code == "RevisionNotFound" or "RevisionNotFoundError" in names:
        raise NotOnSource(source.name, Message(
            N_("not found (HTTP {code}): revision {revision} of {repo}{detail}"), code=status,
            revision=source.requested_revision, repo=source.repo_id, detail=detail),
            hint=source.missing_hint) from None
    if status == 401 and code != "GatedRepo" and not source.token:
        raise AccessDenied(source.name, Message(
            N_("not found, or private/gated (HTTP 401): {what}{detail}"), what=what,
            detail=detail), hint=source.unknown_hint) from None
    if status in (401, 403) and source.token:
        raise AccessDenied(source.name, Message(
            N_("the HF token was refused (HTTP {code}) for {what}{detail}"), code=status,
            what=what, detail=detail), hint=source.denied_hint) from None
    if status in (401, 403) or code == "GatedRepo":
        raise AccessDenied(source.name, Message(
            N_("access denied (HTTP {code}) to {what}{detail}"), code=status, what=what,
            detail=detail), hint=source.denied_hint) from None
    if status in (404, 410):
        raise NotOnSource(source.name, Message(
            N_("not found (HTTP {code}): {what}{detail}"), code=status, what=what,
            detail=detail), hint=source.missing_hint) from None
    if status in (429, 503):
        quota = rate_limit_reset(headers.get("RateLimit"))
        wait = retry_after_seconds(headers.get("Retry-After"))
        if quota is not None:
            wait = max(wait or 0.0, quota)
        return Transient(http_error(status, what, detail), retry_after=wait, status=status,
                         quota=quota is not None)
    if status >= 500 or status == 408:
        return Transient(http_error(status, what, detail))
    raise SourceError(source.name, unexpected_reply(status, what, detail)) from None


def _is_transport_error(names: set[str]) -> bool:
    """httpx's network errors (huggingface_hub 1.x and later), without importing httpx."""
    return bool(names & {"TransportError", "TimeoutException", "NetworkError",
                         "RemoteProtocolError", "ProxyError", "ConnectError"})
