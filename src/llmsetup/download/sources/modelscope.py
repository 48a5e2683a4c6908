"""The ModelScope hub's HTTP API (modelscope.cn): many users in China reach it fastest.

Two calls, as the hub's own SDK makes them:

- ``GET {endpoint}/api/v1/models/{id}/repo/files?Revision=master&Recursive=True``:
  ``{"Code": 200, "Data": {"Files": [{"Path", "Name", "Type": "blob"|"tree", "Size",
  "Sha256", ...}]}}`` — a sha256 for every file, LFS or not;
- ``GET {endpoint}/api/v1/models/{id}/repo?Revision=master&FilePath={path}``: the bytes
  (Range supported).

The file list is cut at 3,000 entries without a word (:data:`LISTING_CAP`); a list at the
cap is listed again folder by folder (``Root=``), as modelscope_hub does, and a tree that
cannot be listed in full fails the source instead of downloading part of it.

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
from llmsetup.download.messages import Message
from llmsetup.download.sources.base import Listing, RemoteFile, Source, safe_relpath
from llmsetup.i18n import N_
from llmsetup.secret import Secret, mask_url, register_url

MODELSCOPE_ENDPOINT = "https://www.modelscope.cn"


#: The hub answers ``repo/files`` with at most this many entries, silently (HTTP 200,
#: ``Success: true``, no total, pagination parameters ignored): modelscope_hub's
#: ``REPO_FILES_TRUNCATION_LIMIT``. A listing of exactly this length may be cut.
LISTING_CAP = 3000
#: Listings one walk of a cut tree may take (modelscope_hub allows 5,000).
MAX_LISTINGS = 2000


def modelscope_endpoint(settings) -> str:
    """``modelscope.endpoint`` from the config, else ``MODELSCOPE_ENDPOINT``, else the
    deprecated ``MODELSCOPE_DOMAIN`` (the SDK's order for its two variables)."""
    value = settings.get("modelscope.endpoint") or os.environ.get("MODELSCOPE_ENDPOINT")
    if value:
        return str(value).strip().rstrip("/")
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
        register_url(endpoint)
        self.token = token
        self.denied_hint = Message(N_("Set MODELSCOPE_API_TOKEN to an access token of an "
                                      "account that may read this model (modelscope.cn, My "
                                      "Account, Access Token)."))
        self.missing_hint = Message(N_("Check the id at {page}; recipes name ModelScope ids "
                                       "with source_ids: {{modelscope: ...}}."),
                                    page=f"{self.endpoint}/models/{repo_id}")
        self._policy = retry_policy

    def describe(self) -> str:
        return f"{self.name} ({mask_url(self.endpoint)}, {self.repo_id})"

    def _headers(self) -> dict[str, str]:
        return {"Cookie": f"m_session_id={self.token.reveal()}"} if self.token else {}

    def _list(self, root: str | None, recursive: bool) -> list[dict]:
        """One ``repo/files`` request (of the folder ``root``, or of the whole tree)."""
        kwargs = {"policy": self._policy} if self._policy else {}
        params = {"Revision": self.revision, "Recursive": str(recursive)}
        if root:
            params["Root"] = root
        body, _resp = get_json(
            self.session, f"{self.endpoint}/api/v1/models/{self.repo_id}/repo/files",
            source=self.name, what=Message(N_("the file list of {repo}"),
                                           repo=f"{self.repo_id}/{root}" if root else self.repo_id),
            headers=self._headers(), params=params, cancel=self.cancel,
            denied_hint=self.denied_hint, missing_hint=self.missing_hint, **kwargs)
        if not isinstance(body, dict):
            raise SourceError(self.name, Message(N_("the file list is not a JSON object")))
        if body.get("Code") not in (200, "200", None) or body.get("Success") is False:
            message = str(body.get("Message") or body.get("Code"))
            raise NotOnSource(self.name, Message(N_("{repo}@{revision}: {error}"),
                                                 repo=self.repo_id, revision=self.revision,
                                                 error=message), hint=self.missing_hint)
        data = body.get("Data")
        entries = data if isinstance(data, list) else (data or {}).get("Files") or []
        return [e for e in entries if isinstance(e, dict)]

    def list_files(self) -> Listing:
        entries = self._list(None, recursive=True)
        if len(entries) >= LISTING_CAP:
            entries = self._walk(entries)
        files = [self._file(e) for e in entries if e.get("Type") != "tree"]
        if not files:
            raise SourceError(self.name, Message(N_("{repo}@{revision} lists no files"),
                                                 repo=self.repo_id, revision=self.revision))
        return Listing(files, self.revision)

    def _walk(self, first: list[dict]) -> list[dict]:
        """The whole tree when a listing came back at the cap: folder by folder.

        As modelscope_hub does: each folder is listed whole (``Root``); a folder that
        comes back at the cap is listed shallowly for its sub-folders, which are walked
        in turn. A folder with more direct entries than the cap cannot be listed in full
        by this API: that, or running out of the request budget, fails the source rather
        than downloading part of the repository.
        """
        collected: dict[str, dict] = {}
        requests = 0
        known: dict[str | None, list[dict]] = {None: first}
        frontier: list[str | None] = [None]
        while frontier:
            truncated = []
            for root in frontier:
                if root not in known:
                    requests += 1
                    known[root] = self._list(root, recursive=True)
                subtree = known.pop(root)
                for entry in subtree:
                    collected.setdefault(_entry_path(entry), entry)
                if len(subtree) >= LISTING_CAP:
                    truncated.append(root)
            next_frontier: list[str | None] = []
            for root in truncated:
                requests += 1
                shallow = self._list(root, recursive=False)
                for entry in shallow:
                    collected.setdefault(_entry_path(entry), entry)
                folders = [_entry_path(e) for e in shallow if e.get("Type") == "tree"]
                if len(shallow) >= LISTING_CAP or not folders:
                    raise SourceError(self.name, Message(
                        N_("{repo}: the folder {folder} holds {cap} or more entries, more than "
                           "this hub's file list returns; the download would be incomplete"),
                        repo=self.repo_id, folder=root or "/", cap=LISTING_CAP), hint=Message(
                        N_("Use another source for this model (--source hf or hf-mirror).")))
                next_frontier += [f for f in folders if f]
            if requests > MAX_LISTINGS:
                raise SourceError(self.name, Message(
                    N_("{repo}: the file tree needs more than {cap} listings; the download "
                       "would be incomplete"), repo=self.repo_id, cap=MAX_LISTINGS),
                    hint=Message(N_("Use another source for this model (--source hf).")))
            frontier = list(dict.fromkeys(next_frontier))
        return list(collected.values())

    def _file(self, entry: dict) -> RemoteFile:
        path = safe_relpath(str(entry.get("Path") or entry.get("Name") or ""), self.name)
        try:
            size = int(entry["Size"])
        except (KeyError, TypeError, ValueError):
            raise SourceError(self.name, Message(N_("{path}: the listing gives no size"),
                                                 path=path)) from None
        sha256 = str(entry.get("Sha256") or "").lower() or None
        return RemoteFile(path, size, sha256=sha256, lfs=bool(entry.get("IsLFS")))

    def url_and_headers(self, file: RemoteFile) -> tuple[str, dict[str, str]]:
        url = (f"{self.endpoint}/api/v1/models/{self.repo_id}/repo?"
               f"Revision={quote(self.revision, safe='')}&FilePath={quote(file.path, safe='')}")
        return url, self._headers()


def _entry_path(entry: dict) -> str:
    return str(entry.get("Path") or entry.get("Name") or "")
