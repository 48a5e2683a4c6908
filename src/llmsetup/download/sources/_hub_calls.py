"""huggingface_hub's calls run under the rules of every llmsetup listing.

huggingface_hub sets no timeout on its paged calls, reads a reply whole, follows a
``Link`` to whatever host it names, and logs its own retries on stderr. Each call of the
hf source runs here in a worker thread, with:

- an overall deadline and Ctrl-C honoured at once (the thread left behind by a deadline
  ends with the process);
- the metadata size cap (:data:`llmsetup.download.http.METADATA_MAX_BYTES`): a reply
  refused by its length, or as its bytes arrive when it has none;
- each next page of a tree asked of the endpoint's own host;
- its warnings silenced (they would reach stderr past our reporter, unredacted).

The hooks work with every huggingface_hub from 0.20 (a requests session per thread) to
2.x (one shared httpx client), and do nothing outside our threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import llmsetup.download.http as http

T = TypeVar("T")

_local = threading.local()


class _TooLarge(Exception):
    """A reply over :data:`http.METADATA_MAX_BYTES` (raised inside huggingface_hub's call)."""


def run_bounded(fn: Callable[[], T], deadline: float, limit: float,
             cancel: threading.Event | None, origin: tuple | None, source: str, what: str,
             url: str) -> T:
    """Run ``fn`` in a daemon thread; give up at ``deadline`` (monotonic; ``limit`` is the
    configured number of seconds, for the message) or on ``cancel``.

    huggingface_hub sets no timeout on its paged calls (and retries 5xx itself): a server
    that trickles bytes would otherwise hold the download for ever. A thread left behind
    by a deadline ends with the process.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        _local.origin, _local.active = origin, True
        try:
            _install_hooks()
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc
        finally:
            _local.origin, _local.active = None, False
            done.set()

    if time.monotonic() < deadline:
        threading.Thread(target=work, name="llmsetup-hub-listing", daemon=True).start()
    while not done.wait(0.05):
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt
        if time.monotonic() > deadline:
            raise http.no_reply_in_time(source, what, limit, url)
    error = box.get("error")
    if isinstance(error, _TooLarge):
        raise http.reply_too_large(source, what, url)
    if error is not None:
        raise error
    return box["value"]


def _install_hooks() -> None:
    """Hook huggingface_hub's HTTP client for the calls of our listing threads.

    Next pages from our host (a ``Link`` may name another one), and a reply over the
    metadata cap refused before it is read. 1.x and later share one httpx client: request
    and response hooks. 0.x has a requests session per thread: an adapter wrapper and a
    response hook. Replies over the cap are refused by their length, and those without a
    length as their bytes arrive. Outside our threads (``_local.active``) the hooks do
    nothing.
    """
    try:
        from huggingface_hub.utils import get_session, logging

        # Its own warnings ("Retrying in 1s", "HTTP Error 503 thrown while requesting
        # URL") would reach stderr past our reporter, unredacted: our messages say it.
        logging.set_verbosity_error()
        client = get_session()
    except Exception:
        return
    hooks = getattr(client, "event_hooks", None)
    if hasattr(hooks, "get"):
        request, response = list(hooks.get("request", [])), list(hooks.get("response", []))
        if _rewrite_page_host not in request:
            client.event_hooks = {**hooks, "request": [*request, _rewrite_page_host],
                                  "response": [*response, _cap_reply]}
        return
    if hasattr(client, "get_adapter") and hasattr(client, "mount"):
        for prefix in ("https://", "http://"):
            adapter = client.get_adapter(prefix)
            if not isinstance(adapter, _PageOriginAdapter):
                client.mount(prefix, _PageOriginAdapter(adapter))
        response_hooks = client.hooks.setdefault("response", [])
        if _cap_reply not in response_hooks:
            response_hooks.append(_cap_reply)


def _cap_reply(response, *args, **kwargs) -> None:
    if not getattr(_local, "active", False):
        return
    cap = http.METADATA_MAX_BYTES
    length = str(response.headers.get("Content-Length", ""))
    if length.isdigit() and int(length) > cap:
        response.close()
        raise _TooLarge
    stream = getattr(response, "stream", None)
    base = next((c for c in type(stream).__mro__ if c.__name__ == "SyncByteStream"), None)
    if base is not None:  # httpx: replies without a length are capped as they are read
        response.stream = _capped_stream(base)(stream, cap)
    elif hasattr(getattr(response, "raw", None), "stream"):  # requests (huggingface_hub 0.x)
        response.raw = _CappedRaw(response.raw, cap)


class _CappedRaw:
    """A urllib3 response whose ``stream()`` (what requests reads) stops past a cap."""

    def __init__(self, inner, cap: int) -> None:
        self._inner, self._cap = inner, cap

    def stream(self, *args, **kwargs):
        total = 0
        for chunk in self._inner.stream(*args, **kwargs):
            total += len(chunk)
            if total > self._cap:
                raise _TooLarge
            yield chunk

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def _capped_stream(base: type) -> type:
    """An httpx ``SyncByteStream`` (of whichever httpx is installed) that stops past a cap."""

    class CappedStream(base):  # type: ignore[misc, valid-type]
        def __init__(self, inner, cap: int) -> None:
            self.inner, self.cap = inner, cap

        def __iter__(self):
            total = 0
            for chunk in self.inner:
                total += len(chunk)
                if total > self.cap:
                    raise _TooLarge
                yield chunk

        def close(self) -> None:
            self.inner.close()

    return CappedStream


def _page_url(scheme: str, host: str, port: int | None, path: str) -> bool:
    """Whether a request (scheme, host, port, path) is a tree page to move to our origin."""
    origin = getattr(_local, "origin", None)
    return (origin is not None and "/tree/" in path
            and (scheme, host, port) != tuple(origin[:3]))


def _rewrite_page_host(request) -> None:
    """httpx request hook (huggingface_hub 1.x and later)."""
    url = request.url
    if not _page_url(url.scheme, url.host, url.port, url.path):
        return
    scheme, host, port, netloc = _local.origin
    request.url = url.copy_with(scheme=scheme, host=host, port=port)
    request.headers["Host"] = netloc


class _PageOriginAdapter:
    """requests adapter wrapper (huggingface_hub 0.x): the same rewrite, then the
    adapter huggingface_hub mounted does the rest."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def send(self, request, **kwargs):
        split = urlsplit(request.url)
        if _page_url(split.scheme, split.hostname or "", split.port, split.path):
            scheme, _host, _port, netloc = _local.origin
            request.url = urlunsplit((scheme, netloc, split.path, split.query, ""))
        return self.inner.send(request, **kwargs)

    def close(self) -> None:
        self.inner.close()
