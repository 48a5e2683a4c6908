"""A real HTTP server on 127.0.0.1 that speaks the three download protocols, with faults.

One server holds repositories and answers, on one port:

- the Hugging Face API subset: ``/api/models/{repo}[/revision/{rev}]``,
  ``/api/models/{repo}/tree/{rev}?recursive=true`` (paginated, ``lfs.oid``) and
  ``/{repo}/resolve/{rev}/{path}`` (GET/HEAD, Range, ETag, X-Repo-Commit), enough for
  llmsetup and for huggingface_hub's ``snapshot_download``;
- the aliendao protocol: ``/models/{repo}[/{dir}]?json=true`` and
  ``/download/models/{repo}/{path}[?token=]``;
- the ModelScope API subset: ``/api/v1/models/{id}/repo/files`` and
  ``/api/v1/models/{id}/repo?FilePath=``.

Faults are switched per file path and consumed per request (``times``; None = forever):
``status`` (any code, optional headers), ``drop`` (close the connection after ``after``
bytes of a reply), ``corrupt`` (flip the byte at file ``offset``), ``ignore_range``,
``bad_content_range``, ``expired`` (403 to a request on the redirected host, after its first), ``cap_range`` (answer at most ``max`` bytes of a range, with a
correct Content-Range), ``stall`` (pause ``seconds`` after ``after`` bytes), ``redirect``
(302 to the same URL on the host name ``localhost``, like a CDN), ``head_status``
(like ``status``, for HEAD requests only). ``rate``
caps every connection (bytes/s). ``sent`` counts body bytes per path.

API faults (:meth:`FixtureServer.api_fault`) are keyed by a request's URL path
(``/api/models/org/tiny/revision/main``): ``status`` and ``stall`` (before the reply).

The Hub API answers as huggingface.co does (read against huggingface_hub's
``hf_raise_for_status`` and ``_paginate_pages``): a missing repository is 401 +
``X-Error-Code: RepoNotFound`` without a token and 404 with one; a refused token is 401
``Invalid credentials in Authorization header``; a gated repository is 401 ``GatedRepo``
without a token and 403 ``GatedRepo`` with a token that has no access
(``hf_tokens_without_access``); a missing revision is 404 ``RevisionNotFound``. The tree
pages by ``page_size`` entries (at most 50 with ``expand=true``, which adds
``lastCommit`` and ``securityFileStatus``), each next page named by an absolute ``Link`` URL, on
``link_host`` when set (hf-mirror names huggingface.co there).

As the real hubs behave under load:

- ``max_connections``: file replies beyond this many at once get 429 with ``Retry-After``
  (mirrors that cap connections per client);
- :meth:`FixtureServer.rate_limit`: every request (API and files) gets 429 with the Hub's
  ``RateLimit: "api";r=0;t=N`` header (no ``Retry-After``) until the window ends;
- faults on the listing route ``@tree`` (the HF tree API): ``trickle`` (the body one byte
  every ``seconds``), ``huge`` (``bytes`` of JSON whitespace before the listing),
  ``huge_chunked`` (the same without a Content-Length).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5", ".gguf")


def git_blob_id(data) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + bytes(data)).hexdigest()


@dataclass
class Repo:
    repo_id: str
    files: dict[str, bytes]
    modelscope_id: str | None = None
    gated: bool = False
    incomplete: bool = False  # aliendao: still syncing
    listed_size: dict[str, int] = field(default_factory=dict)  # listings lie about sizes
    extra_names: list[str] = field(default_factory=list)  # extra (unsafe) names in listings
    aliendao_sizes: bool = True  # whether the aliendao listing carries sizes
    mirror_files: dict[str, bytes] = field(default_factory=dict)  # aliendao's other copies
    _hashes: dict = field(default_factory=dict, repr=False)

    def sha256(self, path: str) -> str:
        """The file's sha256, cached while its content object stays the same (the
        benchmark serves 300 MB; hashing it per request would measure the server)."""
        data = self.files.get(path, b"")
        cached = self._hashes.get(path)
        if cached is None or cached[0] is not data:
            cached = (data, hashlib.sha256(data).hexdigest(), git_blob_id(data))
            self._hashes[path] = cached
        return cached[1]

    def git_oid(self, path: str) -> str:
        self.sha256(path)
        return self._hashes[path][2]

    @property
    def commit(self) -> str:
        h = hashlib.sha1()
        for path in sorted(self.files):
            h.update(path.encode() + b"\0" + self.sha256(path).encode())
        return h.hexdigest()

    def is_lfs(self, path: str) -> bool:
        return path.endswith(LFS_SUFFIXES)

    def size_of(self, path: str) -> int:
        return self.listed_size.get(path, len(self.files.get(path, b"")))

    def names(self) -> list[str]:
        return sorted(self.files) + list(self.extra_names)


class FixtureServer:
    """See the module docstring. Use as a context manager or call :meth:`close`."""

    def __init__(self, rate: float | None = None, page_size: int = 1000) -> None:
        self.rate = rate
        self.page_size = page_size
        self.repos: dict[str, Repo] = {}
        self.hf_token: str | None = None
        self.hf_tokens_without_access: set[str] = set()  # valid, but not let into gated repos
        self.link_host: str | None = None  # host name in the tree's Link header
        self.modelscope_cap = 3000  # ModelScope cuts every repo/files reply here
        self.aliendao_token: str | None = None
        self.sent: Counter[str] = Counter()
        self.requests: list[dict] = []
        self._faults: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        self.max_connections: int | None = None
        self.cap_retry_after = "1"
        self.active = 0  # file replies being sent now
        self.peak_active = 0
        self._limited_until = 0.0
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fixture = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def add_repo(self, repo_id: str, files: dict[str, bytes], **kw) -> Repo:
        repo = Repo(repo_id, dict(files), **kw)
        self.repos[repo_id] = repo
        return repo

    def fault(self, path: str, kind: str, times: int | None = 1, **params) -> None:
        with self._lock:
            self._faults.setdefault(path, []).append({"kind": kind, "times": times, **params})

    def api_fault(self, path: str, kind: str, times: int | None = 1, **params) -> None:
        """A fault on an API request's URL path (``status``: code, headers; ``stall``: seconds)."""
        self.fault("api:" + path, kind, times, **params)

    def rate_limit(self, seconds: float) -> None:
        """Answer every request with the Hub's quota 429 for the next ``seconds``."""
        self._limited_until = time.monotonic() + seconds

    def _quota_429(self, h: _Handler) -> bool:
        left = self._limited_until - time.monotonic()
        if left <= 0:
            return False
        _json(h, 429, {"error": "rate limited"},
              {"RateLimit": f'"api";r=0;t={max(1, round(left))}',
               "RateLimit-Policy": '"fixed window";"api";q=1000;w=300'})
        return True

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take(self, path: str, kind: str, where: tuple[int, int] | None = None) -> dict | None:
        """Consume one use of a fault; a ``corrupt`` fault only by a reply that covers it."""
        with self._lock:
            for f in self._faults.get(path, []):
                if where is not None and not where[0] <= f.get("offset", -1) < where[1]:
                    continue
                if f["kind"] == kind and (f["times"] is None or f["times"] > 0):
                    if f["times"] is not None:
                        f["times"] -= 1
                    return f
        return None

    def _redirected_count(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r["path"].endswith(path)
                       and r["query"].get("redirected"))

    def total_sent(self, path: str | None = None) -> int:
        with self._lock:
            return self.sent[path] if path else sum(self.sent.values())

    def _count(self, path: str, n: int) -> None:
        with self._lock:
            self.sent[path] += n

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FixtureServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- routing ----------------------------------------------------------------------

    def handle(self, h: _Handler, head: bool) -> None:
        split = urlsplit(h.path)
        parts = [unquote(p) for p in split.path.strip("/").split("/")]
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        with self._lock:
            self.requests.append({"method": h.command, "path": split.path, "query": query,
                                  "range": h.headers.get("Range"),
                                  "auth": h.headers.get("Authorization"),
                                  "cookie": h.headers.get("Cookie"),
                                  "host": h.headers.get("Host"),
                                  "user_agent": h.headers.get("User-Agent"),
                                  "client_port": h.client_address[1]})
        if self._quota_429(h):
            return None
        if parts[0] == "api" and self._api_fault(h, split.path):
            return None
        if parts[:2] == ["api", "v1"]:
            return self._modelscope(h, parts[2:], query, head)
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            return self._hf_api(h, parts[2:], query)
        if parts[0] == "models" and len(parts) >= 3:
            return self._aliendao_list(h, parts[1:], query)
        if parts[:2] == ["download", "models"] and len(parts) >= 5:
            return self._aliendao_file(h, parts[2:], query, head)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._hf_resolve(h, parts, head)
        return _json(h, 404, {"error": "no route"})

    def _api_fault(self, h: _Handler, path: str) -> bool:
        stall = self._take("api:" + path, "stall")
        if stall is not None:
            time.sleep(stall["seconds"])
        fault = self._take("api:" + path, "status")
        if fault is None:
            return False
        _json(h, fault["code"], {"error": "fault"}, fault.get("headers", {}))
        return True

    def _repo(self, h: _Handler, repo_id: str, hf: bool = True) -> Repo | None:
        repo = self.repos.get(repo_id)
        auth = h.headers.get("Authorization")
        if auth and not auth.startswith("Bearer "):
            auth = None  # Basic auth from a URL's userinfo is a proxy's business, not the Hub's
        if hf and auth and auth != f"Bearer {self.hf_token}" and \
                auth.removeprefix("Bearer ") not in self.hf_tokens_without_access:
            _json(h, 401, {"error": "Invalid credentials in Authorization header"},
                  {"X-Error-Message": "Invalid credentials in Authorization header"})
            return None
        if repo is None:
            _json(h, 404 if not hf or auth else 401, {"error": "Repository not found"},
                  {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            return None
        if hf and repo.gated and auth != f"Bearer {self.hf_token}":
            message = (f"Access to model {repo_id} is restricted and you are not in the "
                       "authorized list." if auth else
                       f"Access to model {repo_id} is restricted. You must have access to it "
                       "and be authenticated to access it. Please log in.")
            _json(h, 403 if auth else 401, {"error": message},
                  {"X-Error-Code": "GatedRepo", "X-Error-Message": message})
            return None
        return repo

    # -- Hugging Face -----------------------------------------------------------------

    def _hf_api(self, h: _Handler, parts: list[str], query: dict) -> None:
        repo = self._repo(h, "/".join(parts[:2]))
        if repo is None:
            return
        rest = parts[2:]
        rev = "/".join(rest[1:]) if rest else "main"
        if rev not in ("main", repo.commit):
            return _json(h, 404, {"error": "Revision not found"},
                         {"X-Error-Code": "RevisionNotFound"})
        if not rest or rest[0] == "revision":  # the fields the Hub sends (ModelInfo needs them)
            return _json(h, 200, {
                "_id": repo.commit[:24], "id": repo.repo_id, "modelId": repo.repo_id,
                "author": repo.repo_id.split("/")[0], "sha": repo.commit,
                "lastModified": "2024-02-21T10:00:00.000Z", "createdAt": "2024-02-21T10:00:00.000Z",
                "private": False, "disabled": False, "gated": "manual" if repo.gated else False,
                "downloads": 0, "likes": 0, "tags": [], "library_name": "transformers",
                "siblings": [{"rfilename": n} for n in repo.names()], "spaces": []})
        if rest[0] != "tree":
            return _json(h, 404, {"error": "no route"})
        # huggingface_hub sends booleans as "true"/"false" (httpx) or "True"/"False" (requests).
        expand = query.get("expand", "false").lower() == "true"
        entries = []
        dirs = sorted({"/".join(n.split("/")[:i]) for n in repo.files
                       for i in range(1, n.count("/") + 1)})
        entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in dirs]
        for name in repo.names():
            entry = {"type": "file", "oid": repo.git_oid(name), "size": repo.size_of(name),
                     "path": name}
            if repo.is_lfs(name):
                entry["lfs"] = {"oid": repo.sha256(name),
                                "size": repo.size_of(name), "pointerSize": 134}
            entries.append(entry)
        if expand:
            for entry in entries:
                entry["lastCommit"] = {"id": repo.commit, "title": "Upload",
                                       "date": "2024-02-21T10:00:00.000Z"}
                if entry["type"] == "file":
                    entry["securityFileStatus"] = {
                        "status": "safe", "avScan": {"virusFound": False, "virusNames": None},
                        "pickleImportScan": None}
        size = min(self.page_size, 50) if expand else self.page_size
        cursor = int(query.get("cursor", 0))
        page = entries[cursor:cursor + size]
        headers = {}
        if cursor + size < len(entries):
            base = (f"http://{self.link_host}:{self._httpd.server_address[1]}" if self.link_host
                    else self.url)
            flags = "&".join(f"{k}={query[k]}" for k in ("recursive", "expand") if k in query)
            headers["Link"] = (f'<{base}/api/models/{repo.repo_id}/tree/{rev}?{flags}'
                               f'&cursor={cursor + size}>; rel="next"')
        chunked = self._take("@tree", "huge_chunked")
        if chunked is not None:
            return self._chunked_reply(h, headers, json.dumps(page).encode(), chunked["bytes"])
        trickle, huge = self._take("@tree", "trickle"), self._take("@tree", "huge")
        if trickle is None and huge is None:
            return _json(h, 200, page, headers)
        body = json.dumps(page).encode()
        pad = huge["bytes"] if huge else 0
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body) + pad))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        try:
            while pad:  # whitespace is valid JSON: a huge but well-formed reply
                n = min(pad, 1 << 20)
                h.wfile.write(b" " * n)
                self._count("@tree", n)
                pad -= n
            for i in range(len(body)):
                if trickle is None:
                    h.wfile.write(body[i:])
                    self._count("@tree", len(body) - i)
                    break
                h.wfile.write(body[i:i + 1])
                h.wfile.flush()
                self._count("@tree", 1)
                time.sleep(trickle["seconds"])
        except OSError:
            h.close_connection = True

    def _chunked_reply(self, h: _Handler, headers: dict, body: bytes, pad: int) -> None:
        """``huge_chunked``: ``pad`` bytes of JSON whitespace, then ``body``, chunked (no
        Content-Length: a cap can only count what arrives)."""
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        try:
            while pad:
                n = min(pad, 1 << 20)
                h.wfile.write(b"%x\r\n" % n + b" " * n + b"\r\n")
                self._count("@tree", n)
                pad -= n
            h.wfile.write(b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        except OSError:
            h.close_connection = True

    def _hf_resolve(self, h: _Handler, parts: list[str], head: bool) -> None:
        repo = self._repo(h, "/".join(parts[:2]))
        if repo is None:
            return
        rev, path = parts[3], "/".join(parts[4:])
        if rev not in ("main", repo.commit) or path not in repo.files:
            return _json(h, 404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        data = repo.files[path]
        etag = repo.sha256(path) if repo.is_lfs(path) else repo.git_oid(path)
        self._send_file(h, path, data, head, {"ETag": f'"{etag}"', "X-Repo-Commit": repo.commit})

    # -- aliendao ---------------------------------------------------------------------

    def _aliendao_list(self, h: _Handler, parts: list[str], query: dict) -> None:
        repo = self._repo(h, "/".join(parts[:2]), hf=False)
        if repo is None or query.get("json") != "true":
            return None if repo is None else _json(h, 400, {"error": "json=true expected"})
        sub = "/".join(parts[2:])
        prefix = f"{sub}/" if sub else ""
        files, dirs = [], set()
        for name in sorted(repo.files):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            if "/" in rest:
                dirs.add(rest.split("/")[0])
                continue
            entry = {"name": rest, "type": "file", "path": f"/models/{repo.repo_id}/{name}"}
            if repo.aliendao_sizes:
                entry["size"] = repo.size_of(name)
            files.append(entry)
        files += [{"name": d, "type": "dir", "path": f"/models/{repo.repo_id}/{prefix}{d}"}
                  for d in sorted(dirs)]
        if not sub:
            files += [{"name": n.rsplit("/", 1)[-1], "type": "file", "size": 1,
                       "path": f"/models/{repo.repo_id}/{n}"} for n in repo.extra_names]
        if repo.incomplete and not sub:
            files.append({"name": "~incomplete.txt", "type": "file",
                          "path": f"/models/{repo.repo_id}/~incomplete.txt"})
        _json(h, 200, {"code": 0, "data": {"files": files}})

    def _aliendao_file(self, h: _Handler, parts: list[str], query: dict, head: bool) -> None:
        repo = self._repo(h, "/".join(parts[:2]), hf=False)
        if repo is None:
            return
        if self.aliendao_token is not None and query.get("token") != self.aliendao_token:
            return _json(h, 403, {"error": "invalid token"})
        path = "/".join(parts[2:])
        if path not in repo.files:
            return _json(h, 404, {"error": "not found"})
        self._send_file(h, path, repo.mirror_files.get(path, repo.files[path]), head, {})

    # -- ModelScope -------------------------------------------------------------------

    def _modelscope(self, h: _Handler, parts: list[str], query: dict, head: bool) -> None:
        if parts[:1] != ["models"] or len(parts) < 4 or parts[3] != "repo":
            return _json(h, 404, {"Code": 404, "Message": "no route", "Success": False})
        ms_id = "/".join(parts[1:3])
        repo = next((r for r in self.repos.values() if r.modelscope_id == ms_id), None)
        if repo is None:
            return _json(h, 404, {"Code": 10010205001, "Message": f"model {ms_id} not exists",
                                  "Success": False})
        if parts[4:] == ["files"]:
            return self._modelscope_files(h, repo, query)
        path = query.get("FilePath", "")
        if path not in repo.files:
            return _json(h, 404, {"Code": 404, "Message": "file not found", "Success": False})
        self._send_file(h, path, repo.files[path], head, {})

    def _modelscope_files(self, h: _Handler, repo: Repo, query: dict) -> None:
        """``repo/files``: ``Root`` scopes it to a folder, ``Recursive`` (``True``/``False``)
        to its subtree or its direct entries (folders as ``Type: tree``); the reply is cut
        at ``modelscope_cap`` entries without a word, as the hub does at 3,000."""
        root = query.get("Root", "").strip("/")
        recursive = query.get("Recursive", "False").lower() == "true"
        prefix = f"{root}/" if root else ""
        names = [n for n in repo.names() if n.startswith(prefix)]
        folders = sorted({"/".join(n.split("/")[:i]) for n in names
                          for i in range(prefix.count("/") + 1, n.count("/") + 1)})
        if not recursive:
            names = [n for n in names if "/" not in n[len(prefix):]]
            folders = [d for d in folders if "/" not in d[len(prefix):]]
        entries = [{"Name": d.rsplit("/", 1)[-1], "Path": d, "Type": "tree", "Size": 0}
                   for d in folders]
        commit = repo.commit
        entries += [{"Name": n.rsplit("/", 1)[-1], "Path": n, "Type": "blob",
                     "Size": repo.size_of(n), "Revision": commit,
                     "Sha256": repo.sha256(n), "IsLFS": repo.is_lfs(n)} for n in names]
        entries.sort(key=lambda e: e["Path"])
        _json(h, 200, {"Code": 200, "Data": {"Files": entries[:self.modelscope_cap]},
                       "Success": True})

    # -- bytes ------------------------------------------------------------------------

    def _send_file(self, h: _Handler, path: str, data, head: bool, extra: dict) -> None:
        with self._lock:
            over = self.max_connections is not None and self.active >= self.max_connections
            if not over:
                self.active += 1
                self.peak_active = max(self.peak_active, self.active)
        if over:
            return _json(h, 429, {"error": "too many connections"},
                         {"Retry-After": self.cap_retry_after})
        try:
            self._send_file_now(h, path, data, head, extra)
        finally:
            with self._lock:
                self.active -= 1

    def _send_file_now(self, h: _Handler, path: str, data, head: bool, extra: dict) -> None:
        fault = self._take(path, "head_status") if head else None  # hosts that refuse HEAD
        fault = fault or self._take(path, "status")
        if fault is not None:
            return _json(h, fault["code"], {"error": "fault"}, fault.get("headers", {}))
        if "redirected" in h.path and self._redirected_count(path) > 1 and \
                self._take(path, "expired") is not None:
            # A signed CDN link past its expiry: the CDN answers 403.
            return _json(h, 403, {"error": "Request has expired"})
        if "redirected" not in h.path and self._take(path, "redirect") is not None:
            # Like a CDN: the same bytes on another host name (localhost vs 127.0.0.1).
            port = self._httpd.server_address[1]
            sep = "&" if "?" in h.path else "?"
            return _json(h, 302, {}, {"Location": f"http://localhost:{port}{h.path}{sep}redirected=1"})
        size = len(data)
        start, end, status = 0, size - 1, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", h.headers.get("Range") or "")
        if match and self._take(path, "ignore_range") is None:
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            cap = self._take(path, "cap_range")
            if cap is not None:  # like CDNs that answer a long range with a shorter one
                end = min(end, start + cap["max"] - 1)
            if start >= size:
                return _json(h, 416, {"error": "range"}, {"Content-Range": f"bytes */{size}"})
            status = 206
        h.send_response(status)
        h.send_header("Content-Length", str(end - start + 1))
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Type", "application/octet-stream")
        for k, v in extra.items():
            h.send_header(k, v)
        if status == 206:
            shift = 1 if self._take(path, "bad_content_range") is not None else 0
            h.send_header("Content-Range", f"bytes {start + shift}-{end + shift}/{size}")
        h.end_headers()
        if not head:
            self._body(h, path, data, start, end + 1)

    def _body(self, h: _Handler, path: str, data, start: int, stop: int) -> None:
        drop = self._take(path, "drop")
        stall = self._take(path, "stall")
        corrupt = self._take(path, "corrupt", where=(start, stop))
        # Throttled replies go out in pieces of 1/50 s: cheap enough for a Python server to
        # hold eight connections at 20 MB/s each on two cores.
        chunk = max(16 << 10, int(self.rate / 50)) if self.rate else 1 << 20
        view = memoryview(data)
        pos, began = start, time.monotonic()
        try:
            while pos < stop:
                n = min(chunk, stop - pos)
                if drop is not None:
                    n = min(n, start + drop["after"] - pos)
                    if n <= 0:
                        h.connection.shutdown(socket.SHUT_RDWR)
                        h.close_connection = True
                        return
                if stall is not None:
                    if pos - start >= stall["after"]:
                        time.sleep(stall["seconds"])
                        stall = None
                    else:
                        n = min(n, start + stall["after"] - pos)
                piece = view[pos:pos + n]
                if corrupt is not None and pos <= corrupt["offset"] < pos + n:
                    piece = bytearray(piece)
                    piece[corrupt["offset"] - pos] ^= 0xFF
                h.wfile.write(piece)
                pos += n
                self._count(path, n)
                if self.rate:
                    delay = began + (pos - start) / self.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError, OSError):
            h.close_connection = True


def _json(h: _Handler, status: int, doc, headers: dict | None = None) -> None:
    body = json.dumps(doc).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops the SYNs of a client opening 8 connections at once,
    # which then waits a second to retry: no real server is configured like that.
    request_queue_size = 128
    def handle_error(self, request, client_address) -> None:
        """A client that drops a connection (as a download does after a split) is normal."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # the client's delayed ACK add 40 ms to every small reply (real servers avoid it).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args) -> None:
        return None

    def do_GET(self) -> None:
        self.server.fixture.handle(self, head=False)  # type: ignore[attr-defined]

    def do_HEAD(self) -> None:
        self.server.fixture.handle(self, head=True)  # type: ignore[attr-defined]


# -- helpers shared by the download tests ------------------------------------------------

def random_bytes(n: int, seed: int = 0) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def tiny_model_files(weights: int = 3 << 20, seed: int = 0) -> dict[str, bytes]:
    """A small model repository: config, tokenizer, safetensors weights, and a .bin copy."""
    return {
        "config.json": json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})
        .encode(),
        "tokenizer/tokenizer.json": json.dumps({"version": "1.0", "seed": seed}).encode(),
        "model.safetensors": random_bytes(weights, seed),
        "pytorch_model.bin": random_bytes(4096, seed + 1),
    }


def fast_engine(**overrides):
    """Engine knobs for tests: small parts (several connections on a few MB), short waits,
    and every connection at once (loopback is fast enough to keep one otherwise, and the
    tests are about what many connections do)."""
    from llmsetup.download.engine import EngineConfig
    from llmsetup.download.http import RetryPolicy

    config = {"part_size": 1 << 20, "min_split": 256 << 10, "block": 64 << 10,
              "read_timeout_s": 1.0, "connect_timeout_s": 2.0, "stall_window_s": 2.0,
              "retry": RetryPolicy(attempts=4, backoff_base_s=0.02, backoff_max_s=0.1),
              "checkpoint_s": 0.1, "progress_s": 0.05, "fast_link": None}
    config.update(overrides)
    return EngineConfig(**config)


def tiny_model_dir(tmp_path):
    """Where the tests' ``org/tiny`` repository lands under ``tmp_path``."""
    return tmp_path / "models" / "org" / "tiny"


def fetch_tiny(tmp_path, reporter=None, engine=None, **options):
    """Download ``org/tiny`` from HF_ENDPOINT with the fast engine; the manifest."""
    from llmsetup.download import CollectingReporter, DownloadOptions, ModelRef, download
    from llmsetup.settings import Settings

    ref = ModelRef(repo_id="org/tiny", model_dir=tiny_model_dir(tmp_path), sources=["hf"])
    return download(ref, Settings.load(), DownloadOptions(engine=engine or fast_engine(),
                                                          **options),
                    reporter if reporter is not None else CollectingReporter())
