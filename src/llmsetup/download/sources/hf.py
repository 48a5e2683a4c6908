"""The Hugging Face HTTP API, at any endpoint: huggingface.co, hf-mirror.com, or yours.

Three calls, all public API:

- ``GET /api/models/{repo}/revision/{rev}``: resolves the revision to a commit id, so that
  every file comes from one commit even if the branch moves during a long download;
- ``GET /api/models/{repo}/tree/{commit}?recursive=true``: paths, sizes, the git blob id
  of each file and, for LFS files, ``lfs.oid`` (the sha256 of the content); paginated with
  ``Link: <...>; rel="next"``;
- ``GET /{repo}/resolve/{commit}/{path}``: the bytes (usually a redirect to a CDN).

We call these with our own requests session rather than huggingface_hub's ``HfApi``: the
listing then shares the engine's retry rules (Retry-After, backoff) and error table, and
it behaves the same with every huggingface_hub from 0.20 to 2.x, whose HTTP stack and
exception classes changed between versions. huggingface_hub is still used for what only
it knows: the token saved by ``hf auth login``.
"""

from __future__ import annotations

import os
import threading
from urllib.parse import quote, urlsplit, urlunsplit

from llmsetup.download.errors import SourceError
from llmsetup.download.http import get_json
from llmsetup.download.sources.base import Listing, RemoteFile, Source, safe_relpath
from llmsetup.secret import Secret

HF_ENDPOINT = "https://huggingface.co"
HF_MIRROR_ENDPOINT = "https://hf-mirror.com"


def configured_endpoint(settings, explicit: str | None = None) -> str | None:
    """The endpoint the user chose: ``--endpoint``, ``HF_ENDPOINT`` or ``download.endpoint``."""
    value = explicit or os.environ.get("HF_ENDPOINT") or settings.get("download.endpoint")
    return str(value).rstrip("/") if value else None


def _saved_token_may_exist() -> bool:
    """Whether huggingface_hub could find a saved token (its documented locations).

    Importing huggingface_hub costs a fifth of a second; without a token file (or OIDC)
    there is nothing for it to find, so it is not imported at all.
    """
    if os.environ.get("HF_OIDC_RESOURCE"):
        return True
    path = os.environ.get("HF_TOKEN_PATH")
    if not path:
        home = os.environ.get("HF_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
            "huggingface")
        path = os.path.join(os.path.expandvars(os.path.expanduser(home)), "token")
    return os.path.isfile(os.path.expandvars(os.path.expanduser(path)))


def hf_token(settings) -> Secret | None:
    """``HF_TOKEN`` (or the config file), else the token saved by ``hf auth login``."""
    token = settings.token("hf")
    if token:
        return token
    if not _saved_token_may_exist():
        return None
    try:
        from huggingface_hub import get_token

        saved = get_token()
    except Exception:  # an old or broken huggingface_hub: no saved token then
        return None
    return Secret(saved) if saved else None


class HFSource(Source):
    """A repository on a Hugging Face endpoint."""

    name = "hf"
    max_connections = 16

    def __init__(self, repo_id: str, revision: str, endpoint: str, *, name: str = "hf",
                 token: Secret | None = None, denied_hint: str | None = None,
                 cancel: threading.Event | None = None, max_connections: int | None = None,
                 retry_policy=None, timeout: tuple[float, float] | None = None) -> None:
        super().__init__(repo_id, revision, cancel)
        self._timeout = timeout
        self.name = name
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        if max_connections:
            self.max_connections = max_connections
        self.denied_hint = denied_hint or (
            f"The repository may be gated or private: set HF_TOKEN to a token of an account "
            f"that accepted its terms at {self.endpoint}/{repo_id}.")
        self.missing_hint = (f"Check the name and revision at {self.endpoint}/{repo_id}; "
                             "a mirror may not have this repository yet.")
        self._policy = retry_policy

    def describe(self) -> str:
        return f"{self.name} ({self.endpoint})"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token.reveal()}"} if self.token else {}

    def _get(self, url: str, what: str, params: dict | None = None):
        kwargs: dict = {"policy": self._policy} if self._policy else {}
        if self._timeout:
            kwargs["timeout"] = self._timeout
        return get_json(self.session, url, source=self.name, what=what, headers=self._auth(),
                        params=params, cancel=self.cancel, denied_hint=self.denied_hint,
                        missing_hint=self.missing_hint, **kwargs)

    def list_files(self) -> Listing:
        repo = self.repo_id
        info, _ = self._get(f"{self.endpoint}/api/models/{repo}/revision/"
                            f"{quote(self.requested_revision, safe='')}",
                            f"{repo}@{self.requested_revision}")
        commit = info.get("sha") if isinstance(info, dict) else None
        self.revision = commit or self.requested_revision
        files: list[RemoteFile] = []
        url: str | None = f"{self.endpoint}/api/models/{repo}/tree/{quote(self.revision, safe='')}"
        params: dict | None = {"recursive": "true"}
        pages = 0
        while url:
            page, resp = self._get(url, f"the file list of {repo}", params)
            if not isinstance(page, list):
                raise SourceError(self.name, f"the file list of {repo} is not a JSON list")
            files += [self._file(entry) for entry in page
                      if isinstance(entry, dict) and entry.get("type") == "file"]
            url, params = self._next_page(resp), None
            pages += 1
            if pages > 10_000:
                raise SourceError(self.name, "the file list does not end (pagination loop)")
        if not files:
            raise SourceError(self.name, f"{repo}@{self.revision} lists no files")
        return Listing(files, self.revision)

    def _file(self, entry: dict) -> RemoteFile:
        path = safe_relpath(str(entry.get("path", "")), self.name)
        lfs = entry.get("lfs") if isinstance(entry.get("lfs"), dict) else None
        try:
            size = int(lfs["size"] if lfs and "size" in lfs else entry["size"])
        except (KeyError, TypeError, ValueError):
            raise SourceError(self.name, f"{path}: the listing gives no size") from None
        sha256 = str(lfs["oid"]).lower() if lfs and lfs.get("oid") else None
        oid = entry.get("oid")
        return RemoteFile(path, size, sha256=sha256, lfs=lfs is not None,
                          git_oid=str(oid).lower() if oid and not lfs else None)

    def _next_page(self, resp) -> str | None:
        """The next page's URL, on our endpoint's host (the token never goes elsewhere)."""
        link = resp.links.get("next", {}).get("url")
        if not link:
            return None
        ours, theirs = urlsplit(self.endpoint), urlsplit(link)
        return urlunsplit((ours.scheme, ours.netloc, theirs.path, theirs.query, ""))

    def url_and_headers(self, file: RemoteFile) -> tuple[str, dict[str, str]]:
        url = (f"{self.endpoint}/{self.repo_id}/resolve/{quote(self.revision, safe='')}/"
               f"{quote(file.path)}")
        return url, self._auth()
