"""The aliendao mirror, spoken as its public downloader (``model_download.py``) speaks it.

- Listing: ``GET <site>/models/<repo_id>?json=true`` gives ``{"data": {"files": [{"name",
  "type": "file"|"dir", "path": "/models/<repo_id>/..."}]}}``; each ``dir`` is listed the
  same way at ``<site><path>?json=true`` (recursively here, to any depth). A
  ``~incomplete.txt`` entry means the mirror is still syncing the repository: we refuse.
- Files: ``GET <download host>/download<path>``; the enterprise service (``--e`` in the
  book) adds ``?token=<token>``. A file the listing gives no size for is sized by HEAD,
  else by a one-byte ranged GET (some hosts answer HEAD with 405 or 403).

Fixed here, compared with that downloader: the token comes only from
``LLMSETUP_ALIENDAO_TOKEN`` or the config file (never argv) and is masked in every message;
a resumed part is checked against the reply's Content-Range instead of appended blindly;
the service's limit of two connections per client is respected.

aliendao publishes no hashes. When an HF endpoint is reachable, the sha256 (``lfs.oid``)
and git blob ids of the same repository are taken from it, and a file whose size there
differs is verified by size alone, with a warning. A file of the same size whose content
differs (the mirror's copy of an older revision) is downloaded once, never twice: the
source fails naming it as "differs from the HF revision", its bytes are kept, and
``--accept-mirror-copy`` takes it by size on the rerun without downloading it again.
When no HF endpoint is reachable every file is verified by size only, and the listing
says so (the manifest records it per file).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import quote

from llmsetup.download.errors import SourceError, UnsafeListing
from llmsetup.download.http import RetryPolicy, check_status, get_json
from llmsetup.download.messages import Message
from llmsetup.download.sources.base import Listing, RemoteFile, Source, safe_relpath
from llmsetup.i18n import N_
from llmsetup.secret import Secret, mask_url, register_url

ALIENDAO_SITE = "https://e.aliendao.cn"
ALIENDAO_HOST = "http://61.133.217.142:20800"
ALIENDAO_ENTERPRISE_HOST = "http://61.133.217.139:20800"
INCOMPLETE = "~incomplete.txt"
_MAX_DEPTH = 16

#: Where the hashes of a mirrored file come from (``RemoteFile.hash_from``).
_HF_REVISION = Message(N_("the HF revision"))

#: Returns an HF listing of the same repository (for its hashes) and where it came from,
#: or None and why not.
HashLookup = Callable[[], tuple[Listing | None, str]]


class AliendaoSource(Source):
    name = "aliendao"
    max_connections = 2

    def __init__(self, repo_id: str, revision: str, *, site: str = ALIENDAO_SITE,
                 download_host: str | None = None, token: Secret | None = None,
                 hash_lookup: HashLookup | None = None, accept_mirror_copy: bool = False,
                 cancel: threading.Event | None = None, retry_policy=None) -> None:
        super().__init__(repo_id, revision, cancel)
        self.site = site.rstrip("/")
        register_url(site)
        register_url(download_host)
        self.token = token
        default_host = ALIENDAO_ENTERPRISE_HOST if token else ALIENDAO_HOST
        self.download_host = (download_host or default_host).rstrip("/")
        self.hash_lookup = hash_lookup
        self.accept_mirror_copy = accept_mirror_copy
        self.denied_hint = Message(N_("The enterprise service needs a valid token: set "
                                      "LLMSETUP_ALIENDAO_TOKEN (or tokens.aliendao in the "
                                      "config file)."))
        self.missing_hint = Message(N_("aliendao may not mirror this repository; try another "
                                       "source."))
        self._policy = retry_policy or RetryPolicy(attempts=4)

    def describe(self) -> str:
        return f"{self.name} ({mask_url(self.site)})"

    # -- listing ----------------------------------------------------------------------

    def _list_dir(self, path: str) -> list[dict]:
        body, _resp = get_json(self.session, f"{self.site}{path}", source=self.name,
                           what=Message(N_("the aliendao listing of {path}"), path=path),
                           params={"json": "true"},
                           policy=self._policy, cancel=self.cancel,
                           missing_hint=self.missing_hint, denied_hint=self.denied_hint)
        data = body.get("data") if isinstance(body, dict) else None
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, list):
            raise SourceError(self.name, Message(N_("the listing of {path} has no data.files"),
                                                 path=path))
        return [f for f in files if isinstance(f, dict)]

    def list_files(self) -> Listing:
        root = f"/models/{self.repo_id}"
        top = self._list_dir(root)
        if any(f.get("name") == INCOMPLETE for f in top):
            raise SourceError(self.name, Message(
                N_("the mirror is still syncing {repo} (it lists {mark})"), repo=self.repo_id,
                mark=INCOMPLETE), hint=Message(N_("Try again later, or use another source "
                                                  "(--source).")))
        entries = self._walk(top, root, depth=0, seen={root})
        files = [self._file(e, root) for e in entries
                 if e.get("name") not in (".gitattributes", INCOMPLETE)]
        if not files:
            raise SourceError(self.name, Message(N_("{repo} lists no files"), repo=self.repo_id))
        return self._with_hashes(files)

    def _walk(self, items: list[dict], root: str, depth: int, seen: set[str]) -> list[dict]:
        out: list[dict] = []
        for item in items:
            if item.get("type") != "dir":
                out.append(item)
                continue
            path = "/" + str(item.get("path", "")).lstrip("/")
            if not path.startswith(root + "/"):
                raise UnsafeListing(self.name, Message(
                    N_("refusing the listing: the folder {path} is outside {root}"),
                    path=repr(path), root=root), hint=Message(
                    N_("The mirror is broken; nothing was written. Try another source.")))
            safe_relpath(path[len(root) + 1:], self.name)
            if path in seen:
                continue
            if depth >= _MAX_DEPTH:
                raise SourceError(self.name, Message(N_("the listing of {path} is too deep"),
                                                     path=path))
            seen.add(path)
            out += self._walk(self._list_dir(path), root, depth + 1, seen)
        return out

    def _file(self, entry: dict, root: str) -> RemoteFile:
        raw = "/" + str(entry.get("path", "")).lstrip("/")
        relative = raw[len(root) + 1:] if raw.startswith(root + "/") else raw
        path = safe_relpath(relative, self.name)
        size = entry.get("size")
        if not isinstance(size, int) or size < 0:
            size = self._remote_size(path)
        return RemoteFile(path, size)

    def _remote_size(self, path: str) -> int:
        """The listing has no size: ask the download host.

        HEAD first; where the host refuses HEAD (405, or 403 from hosts that sign GET
        only) or gives no length, a one-byte ranged GET (``Range: bytes=0-0``), whose
        ``Content-Range: bytes 0-0/TOTAL`` names the size.
        """
        url, _headers = self.url_and_headers(RemoteFile(path, 0))
        what = Message(N_("the size of {path}"), path=path)
        with self.session.head(url, timeout=(15, 30), allow_redirects=True) as resp:
            length = resp.headers.get("Content-Length", "")
            if resp.status_code == 200 and length.isdigit():
                return int(length)
            head_status = resp.status_code
        with self.session.get(url, headers={"Range": "bytes=0-0"}, stream=True,
                              timeout=(15, 30), allow_redirects=True) as resp:
            check_status(resp, self.name, what, self.denied_hint, self.missing_hint)
            total = resp.headers.get("Content-Range", "").rpartition("/")[2]
            if resp.status_code == 206 and total.isdigit():
                return int(total)
            length = resp.headers.get("Content-Length", "")
            if resp.status_code == 200 and length.isdigit():  # the host ignored the range
                return int(length)
        raise SourceError(self.name, Message(
            N_("cannot learn the size of {path} from the download host (HEAD: HTTP {code}; a "
               "ranged GET gave no Content-Range)"), path=path, code=head_status))

    def _with_hashes(self, files: list[RemoteFile]) -> Listing:
        reference, where = (self.hash_lookup() if self.hash_lookup
                            else (None, Message(N_("no HF endpoint"))))
        if reference is None:
            return Listing(files, self.revision, warnings=[Message(
                N_("aliendao publishes no hashes and {why}: files are verified by size only"),
                why=where)])
        known = {f.path: f for f in reference.files}
        out, differ = [], []
        for f in files:
            ref = known.get(f.path)
            if ref is not None and ref.size == f.size:
                out.append(RemoteFile(f.path, f.size, ref.sha256, ref.lfs, ref.git_oid,
                                      hash_from=_HF_REVISION,
                                      accept_by_size=self.accept_mirror_copy))
            else:
                out.append(f)
                differ.append(f.path)
        warnings = []
        if differ:
            warnings.append(Message(
                N_("verified by size only (absent or of another size at the HF endpoint, so "
                   "the mirror's copy may be older): {files}"), files=", ".join(differ)))
        return Listing(out, self.revision,
                       notes=[Message(N_("sha256 and git ids from {where}"), where=where)],
                       warnings=warnings)

    # -- transfer ---------------------------------------------------------------------

    def url_and_headers(self, file: RemoteFile) -> tuple[str, dict[str, str]]:
        url = f"{self.download_host}/download/models/{self.repo_id}/{quote(file.path)}"
        if self.token:
            url += f"?token={quote(self.token.reveal(), safe='')}"
        return url, {}
