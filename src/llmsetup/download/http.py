"""HTTP for every source: one session type, one reading of status codes, one retry policy.

The listing calls of every source and the engine's ranged transfers share these rules, so
that a 429 from a mirror's API is treated exactly like a 429 on a shard:

- 401/403 and 404/410 fail at once (:class:`AccessDenied`, :class:`NotOnSource`);
- 429 and 503 are retried after the server's ``Retry-After`` (seconds or an HTTP date),
  other 5xx and network errors after an exponential backoff with full jitter;
- ``Accept-Encoding: identity`` always: the bytes we hash must be the bytes published;
- credentials never follow a redirect to another host (signed CDN URLs need none).
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from llmsetup import __version__
from llmsetup.download.errors import AccessDenied, NotOnSource, SourceError
from llmsetup.secret import redact

USER_AGENT = f"llmsetup/{__version__}"
CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 30.0


class _Session(requests.Session):
    """A requests session that also drops our auth headers on a cross-host redirect.

    requests already strips ``Authorization`` and rebuilds ``Cookie`` from its jar when a
    redirect changes host; this makes the rule explicit for every header that can carry a
    token, so that no future header of ours leaks to a CDN.
    """

    _SECRET_HEADERS = ("Authorization", "Cookie", "X-Api-Key")
    #: (scheme, host, port) of the Hub itself: an ``Authorization`` (an HF token) follows a
    #: redirect there, as huggingface_hub lets it (a user-set endpoint or proxy that
    #: redirects to huggingface.co). Never a CDN, never another mirror.
    hub_origins = frozenset({("https", "huggingface.co", 443), ("https", "hf.co", 443)})

    def rebuild_auth(self, prepared_request, response) -> None:  # type: ignore[override]
        auth = prepared_request.headers.get("Authorization")
        super().rebuild_auth(prepared_request, response)
        if self.should_strip_auth(response.request.url, prepared_request.url):
            for name in self._SECRET_HEADERS:
                prepared_request.headers.pop(name, None)
            if auth and _origin(prepared_request.url) in self.hub_origins:
                prepared_request.headers["Authorization"] = auth


def _origin(url: str) -> tuple[str, str, int]:
    from urllib.parse import urlsplit

    split = urlsplit(url)
    default = {"http": 80, "https": 443}.get(split.scheme, 0)
    return split.scheme, (split.hostname or "").lower(), split.port or default


def new_session() -> requests.Session:
    """A session for one thread (requests sessions are not shared across threads)."""
    session = _Session()
    session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    return session


class Transient(Exception):
    """A failure worth retrying: a network error, a 5xx, a 429, a short or stalled reply."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(redact(message))
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a request that keeps failing without progress."""

    attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 300.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        # Full jitter: clients that failed together do not come back together.
        return random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1)))


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def check_status(resp: requests.Response, source: str, what: str,
                 denied_hint: str | None = None, missing_hint: str | None = None) -> None:
    """Raise for a reply that is not a success: fatal for 4xx, :class:`Transient` else."""
    code = resp.status_code
    if code < 400:
        return
    detail = _server_detail(resp)
    if code in (401, 403):
        raise AccessDenied(source, f"access denied (HTTP {code}) to {what}{detail}",
                           hint=denied_hint)
    if code in (404, 410):
        raise NotOnSource(source, f"not found (HTTP {code}): {what}{detail}", hint=missing_hint)
    if code in (429, 503):
        raise Transient(f"HTTP {code} for {what}{detail}",
                        retry_after=retry_after_seconds(resp.headers.get("Retry-After")))
    if code >= 500 or code == 408:
        raise Transient(f"HTTP {code} for {what}{detail}")
    raise SourceError(source, f"unexpected reply HTTP {code} for {what}{detail}")


def _server_detail(resp: requests.Response) -> str:
    """The server's own one-line reason, where it gives one.

    HF puts it in ``X-Error-Message``; ModelScope and aliendao in a small JSON body
    (``Message``, ``message`` or ``error``).
    """
    message = resp.headers.get("X-Error-Message")
    if not message and "json" in resp.headers.get("Content-Type", ""):
        length = resp.headers.get("Content-Length", "")
        if length.isdigit() and int(length) <= 4096:
            try:
                body = resp.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                found = body.get("Message") or body.get("message") or body.get("error")
                message = found if isinstance(found, str) else None
    if not message:
        return ""
    return f" ({redact(message.strip())[:200]})"


def is_network_error(exc: BaseException) -> bool:
    """A connection, timeout or protocol error (requests, urllib3 or the socket layer)."""
    import http.client

    import urllib3.exceptions

    return isinstance(exc, (requests.RequestException, urllib3.exceptions.HTTPError,
                            http.client.HTTPException, ConnectionError, TimeoutError))


_NETWORK_PATTERNS = (
    ("NameResolutionError", "cannot resolve {host} (no DNS, or no network)"),
    ("Name or service not known", "cannot resolve {host} (no DNS, or no network)"),
    ("Temporary failure in name resolution", "cannot resolve {host} (no DNS, or no network)"),
    ("Connection refused", "{host} refused the connection"),
    ("ConnectTimeout", "connecting to {host} timed out"),
    ("Read timed out", "{host} sent nothing for the read timeout"),
    ("RemoteDisconnected", "{host} closed the connection"),
    ("IncompleteRead", "the connection broke mid-reply"),
    ("Connection broken", "the connection broke mid-reply"),
    ("Connection reset", "the connection was reset"),
    ("CERTIFICATE_VERIFY_FAILED", "the TLS certificate of {host} is not trusted"),
    ("ProxyError", "the proxy refused or failed"),
)


def describe_network_error(exc: BaseException) -> str:
    """One short line for a requests/urllib3/socket error (not a page of reprs)."""
    text = f"{type(exc).__name__}: {exc}"
    try:  # httpx raises RuntimeError for an error without a request
        request = getattr(exc, "request", None)
    except RuntimeError:
        request = None
    url = str(getattr(request, "url", None) or "")  # httpx: a URL object
    host = url.split("/")[2] if url.count("/") >= 2 else "the server"
    for pattern, message in _NETWORK_PATTERNS:
        if pattern in text:
            return message.format(host=host)
    return redact(text)[:200]


def sleep_unless(cancel: threading.Event | None, seconds: float) -> bool:
    """Sleep; return True at once when ``cancel`` is set (so Ctrl-C is never delayed)."""
    if seconds <= 0:
        return bool(cancel and cancel.is_set())
    if cancel is None:
        time.sleep(seconds)
        return False
    return cancel.wait(seconds)


def get_json(
    session: requests.Session,
    url: str,
    *,
    source: str,
    what: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    policy: RetryPolicy = RetryPolicy(attempts=4),
    timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
    cancel: threading.Event | None = None,
    denied_hint: str | None = None,
    missing_hint: str | None = None,
) -> tuple[Any, requests.Response]:
    """GET a JSON document with the shared retry rules; returns (data, response)."""
    last: Transient | None = None
    for attempt in range(1, policy.attempts + 1):
        try:
            resp = session.get(url, headers=dict(headers or {}), params=params, timeout=timeout)
            check_status(resp, source, what, denied_hint, missing_hint)
            try:
                return resp.json(), resp
            except ValueError:
                raise SourceError(source, f"{what}: the reply is not JSON "
                                  f"(HTTP {resp.status_code}, {len(resp.content)} bytes)",
                                  hint="The server may not speak this protocol; check the "
                                  "endpoint URL.") from None
        except Transient as exc:
            last = exc
            if exc.retry_after is not None and exc.retry_after > policy.max_retry_after_s:
                raise SourceError(source, f"{exc}; the server asks to wait "
                                  f"{exc.retry_after:.0f}s", hint="Try another source, or "
                                  "rerun later.") from None
        except SourceError:
            raise
        except Exception as exc:
            if not is_network_error(exc):
                raise
            last = Transient(f"{what}: {describe_network_error(exc)}")
        if attempt < policy.attempts and sleep_unless(
                cancel, policy.delay(attempt, last.retry_after)):
            raise KeyboardInterrupt
    assert last is not None
    raise SourceError(source, f"{last} (gave up after {policy.attempts} tries)",
                      hint="Check the network or the mirror, or try another source.")
