"""The ModelScope hub's HTTP API (modelscope.cn): many users in China reach it fastest.

Two calls, as the hub's own SDK makes them:

- ``GET {endpoint}/api/v1/models/{id}/repo/files?Revision=master&Recursive=True``:
  ``{"Code": 200, "Data": {"Files": [{"Path", "Name", "Type": "blob"|"tree", "Size",
  "Sha256", ...}]}}`` — a sha256 for every file, LFS or not;
- ``GET {endpoint}/api/v1/models/{id}/repo?Revision=master&FilePath={path}``: the bytes
  (Range supported).

Repositories are named differently there (``AI-ModelScope/gemma-2b``): recipes give the id
with ``source_ids: {modelscope: ...}``. The default branch is ``master``, so the recipe's
``main`` is read as ``master``. A token (``MODELSCOPE_API_TOKEN``) travels as the
``m_session_id`` cookie, as the SDK sends it, and is never sent to another host.
"""

from __future__ import annotations

import os
import threading
from urllib.parse import quote

from llmsetup.download.errors import NotOnSource, SourceError
from llmsetup.download.http import get_json
from llmsetup.download.sources.base import Listing, RemoteFile, Source, safe_relpath
from llmsetup.secret import Secret

MODELSCOPE_ENDPOINT = "https://www.modelscope.cn"


def modelscope_endpoint(settings) -> str:
    """``modelscope.endpoint`` from the config, else ``MODELSCOPE_DOMAIN`` (as the SDK)."""
    value = settings.get("modelscope.endpoint")
    if value:
        return str(value).rstrip("/")
    domain = os.environ.get("MODELSCOPE_DOMAIN")
    if domain:
        return domain.rstrip("/") if "://" in domain else f"https://{domain.strip('/')}"
    return MODELSCOPE_ENDPOINT


class ModelScopeSource(Source):
    name = "modelscope"
    max_connections = 8

    def __init__(self, repo_id: str, revision: str, endpoint: str, *,
                 token: Secret | None = None, cancel: threading.Event | None = None,
                 retry_policy=None) -> None:
        super().__init__(repo_id, "master" if revision in ("main", "") else revision, cancel)
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.denied_hint = ("Set MODELSCOPE_API_TOKEN to an access token of an account that "
                            "may read this model (modelscope.cn, My Account, Access Token).")
        self.missing_hint = (f"Check the id at {self.endpoint}/models/{repo_id}; recipes name "
                             "ModelScope ids with source_ids: {modelscope: ...}.")
        self._policy = retry_policy

    def describe(self) -> str:
        return f"{self.name} ({self.endpoint}, {self.repo_id})"

    def _headers(self) -> dict[str, str]:
        return {"Cookie": f"m_session_id={self.token.reveal()}"} if self.token else {}

    def list_files(self) -> Listing:
        kwargs = {"policy": self._policy} if self._policy else {}
        body, _ = get_json(
            self.session, f"{self.endpoint}/api/v1/models/{self.repo_id}/repo/files",
            source=self.name, what=f"the file list of {self.repo_id}",
            headers=self._headers(), params={"Revision": self.revision, "Recursive": "True"},
            cancel=self.cancel, denied_hint=self.denied_hint, missing_hint=self.missing_hint,
            **kwargs)
        if not isinstance(body, dict):
            raise SourceError(self.name, "the file list is not a JSON object")
        if body.get("Code") not in (200, "200", None) or body.get("Success") is False:
            message = str(body.get("Message") or body.get("Code"))
            raise NotOnSource(self.name, f"{self.repo_id}@{self.revision}: {message}",
                              hint=self.missing_hint)
        entries = (body.get("Data") or {}).get("Files") or []
        files = [self._file(e) for e in entries if isinstance(e, dict) and e.get("Type") != "tree"]
        if not files:
            raise SourceError(self.name, f"{self.repo_id}@{self.revision} lists no files")
        return Listing(files, self.revision)

    def _file(self, entry: dict) -> RemoteFile:
        path = safe_relpath(str(entry.get("Path") or entry.get("Name") or ""), self.name)
        try:
            size = int(entry["Size"])
        except (KeyError, TypeError, ValueError):
            raise SourceError(self.name, f"{path}: the listing gives no size") from None
        sha256 = str(entry.get("Sha256") or "").lower() or None
        return RemoteFile(path, size, sha256=sha256, lfs=bool(entry.get("IsLFS")))

    def url_and_headers(self, file: RemoteFile) -> tuple[str, dict[str, str]]:
        url = (f"{self.endpoint}/api/v1/models/{self.repo_id}/repo?"
               f"Revision={quote(self.revision, safe='')}&FilePath={quote(file.path, safe='')}")
        return url, self._headers()
