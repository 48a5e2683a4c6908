"""HTTP for every source: one session type, one reading of status codes, one retry policy.

The listing calls of every source and the engine's ranged transfers share these rules, so
that a 429 from a mirror's API is treated exactly like a 429 on a shard:

- 401/403 and 404/410 fail at once (:class:`AccessDenied`, :class:`NotOnSource`);
- 429 and 503 are retried after the server's ``Retry-After`` (seconds or an HTTP date) or
  the reset time of its ``RateLimit`` header (the Hub's quota: ``"api";r=0;t=N``), other
  5xx and network errors after an exponential backoff with full jitter;
- a metadata request (:func:`get_json`) has an overall deadline (``LLMSETUP_METADATA_TIMEOUT``
  seconds, default 60: a reply trickled a byte at a time cannot hold it) and a size cap
  (64 MiB, not read past); waits the server asks for are not counted in the deadline;
- ``Accept-Encoding: identity`` always: the bytes we hash must be the bytes published;
- credentials never follow a redirect to another host (signed CDN URLs need none).
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from llmsetup import __version__
from llmsetup.download.errors import AccessDenied, NotOnSource, SourceError
from llmsetup.download.messages import Message, text_of
from llmsetup.i18n import N_
from llmsetup.secret import redact

USER_AGENT = f"llmsetup/{__version__}"
CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 30.0
#: Overall seconds for one metadata request (listing, file info), retries included.
METADATA_DEADLINE_S = 60.0
#: A metadata reply larger than this is refused (a listing of 100,000 files is ~20 MB).
METADATA_MAX_BYTES = 64 << 20
#: Headers that can carry a credential: never sent to another host.
SECRET_HEADERS = ("Authorization", "Cookie", "X-Api-Key")


class _Session(requests.Session):
    """A requests session that also drops our auth headers on a cross-host redirect.

    requests already strips ``Authorization`` and rebuilds ``Cookie`` from its jar when a
    redirect changes host; this makes the rule explicit for every header that can carry a
    token, so that no future header of ours leaks to a CDN.
    """

    _SECRET_HEADERS = SECRET_HEADERS
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


def cross_host_headers(headers: Mapping[str, str], target: str) -> dict[str, str]:
    """``headers`` fit for ``target``, a URL on another host than the one they were for:
    no credentials, except an HF token going to the Hub itself (:attr:`_Session.hub_origins`)."""
    keep_auth = _origin(target) in _Session.hub_origins
    return {k: v for k, v in headers.items()
            if k.title() not in SECRET_HEADERS or (keep_auth and k.title() == "Authorization")}


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
    """A failure worth retrying: a network error, a 5xx, a 429, a short or stalled reply.

    ``status`` is the HTTP status where there was one; ``quota`` says the server's
    per-client quota is spent (every request waits ``retry_after``, not only this one);
    ``stalled`` marks a reply slower than the low-speed floor (its bytes are no progress).
    ``text`` keeps the message as given (a :class:`~llmsetup.download.messages.Message`,
    shown in the chosen language where a person reads it).
    """

    def __init__(self, message: str, retry_after: float | None = None, *,
                 status: int | None = None, quota: bool = False, stalled: bool = False) -> None:
        super().__init__(redact(message))
        self.text = message
        self.retry_after = retry_after
        self.status = status
        self.quota = quota
        self.stalled = stalled

    @property
    def busy(self) -> bool:
        """The server says it is busy with us (429, or 503 with a time to come back)."""
        return self.status == 429 or (self.status == 503 and self.retry_after is not None)


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


_RATE_LIMIT_PARAM = re.compile(r";\s*([rt])\s*=\s*(\d+)")


def rate_limit_reset(value: str | None) -> float | None:
    """Seconds until the quota resets, from a ``RateLimit: "api";r=0;t=N`` header.

    None unless the header says no request is left (``r=0``) and when it resets.
    """
    params = dict(_RATE_LIMIT_PARAM.findall(value or ""))
    if params.get("r") != "0" or "t" not in params:
        return None
    return float(params["t"])


def check_status(resp: requests.Response, source: str, what: str,
                 denied_hint: str | None = None, missing_hint: str | None = None) -> None:
    """Raise for a reply that is not a success: fatal for 4xx, :class:`Transient` else."""
    code = resp.status_code
    if code < 400:
        return
    detail = server_detail(resp)
    if code in (401, 403):
        raise AccessDenied(source, Message(N_("access denied (HTTP {code}) to {what}{detail}"),
                                           code=code, what=what, detail=detail),
                           hint=denied_hint)
    if code in (404, 410):
        raise NotOnSource(source, Message(N_("not found (HTTP {code}): {what}{detail}"),
                                          code=code, what=what, detail=detail),
                          hint=missing_hint)
    if code in (429, 503):
        quota = rate_limit_reset(resp.headers.get("RateLimit"))
        wait = retry_after_seconds(resp.headers.get("Retry-After"))
        if quota is not None:
            wait = max(wait or 0.0, quota)
        raise Transient(http_error(code, what, detail), retry_after=wait, status=code,
                        quota=quota is not None)
    if code >= 500 or code == 408:
        raise Transient(http_error(code, what, detail))
    raise SourceError(source, unexpected_reply(code, what, detail))


def http_error(code: int, what: str, detail: str = "") -> Message:
    """``HTTP 503 for WHAT (the server's reason)``: a reply worth retrying."""
    return Message(N_("HTTP {code} for {what}{detail}"), code=code, what=what, detail=detail)


def unexpected_reply(code: int, what: str, detail: str = "") -> Message:
    return Message(N_("unexpected reply HTTP {code} for {what}{detail}"), code=code, what=what,
                   detail=detail)


def server_detail(resp: requests.Response) -> str:
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


_NO_DNS = N_("cannot resolve {host} (no DNS, or no network)")
_BROKE = N_("the connection broke mid-reply")
_NETWORK_PATTERNS = (
    ("NameResolutionError", _NO_DNS),
    ("Name or service not known", _NO_DNS),
    ("Temporary failure in name resolution", _NO_DNS),
    ("Connection refused", N_("{host} refused the connection")),
    ("ConnectTimeout", N_("connecting to {host} timed out")),
    ("Read timed out", N_("{host} sent nothing for the read timeout")),
    ("RemoteDisconnected", N_("{host} closed the connection")),
    ("IncompleteRead", _BROKE),
    ("Connection broken", _BROKE),
    ("Connection reset", N_("the connection was reset")),
    ("CERTIFICATE_VERIFY_FAILED", N_("the TLS certificate of {host} is not trusted")),
    ("ProxyError", N_("the proxy refused or failed")),
)


def describe_network_error(exc: BaseException) -> str:
    """One short line for a requests/urllib3/socket error (not a page of reprs): a
    :class:`Message` for the errors we know, else the error's own (English) text."""
    text = f"{type(exc).__name__}: {exc}"
    try:  # httpx raises RuntimeError for an error without a request
        request = getattr(exc, "request", None)
    except RuntimeError:
        request = None
    url = str(getattr(request, "url", None) or "")  # httpx: a URL object
    host = url.split("/")[2] if url.count("/") >= 2 else Message(N_("the server"))
    for pattern, message in _NETWORK_PATTERNS:
        if pattern in text:
            return Message(message, host=host)
    return redact(text)[:200]


#: Who hears about a server-asked wait of a metadata request: (seconds left, message).
_WAIT_LISTENER: contextvars.ContextVar[Callable[[float, str], None] | None] = \
    contextvars.ContextVar("llmsetup_wait_listener", default=None)
_COUNTDOWN_S = 5.0


@contextlib.contextmanager
def waits_reported(listener: Callable[[float, str], None]) -> Iterator[None]:
    """Within the block, :func:`get_json` tells ``listener`` how long a wait has left."""
    token = _WAIT_LISTENER.set(listener)
    try:
        yield
    finally:
        _WAIT_LISTENER.reset(token)


def _wait_for_server(cancel: threading.Event | None, seconds: float, source: str) -> bool:
    """Sleep a wait the server asked for, with a countdown; True if cancelled."""
    listener = _WAIT_LISTENER.get()
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if listener is not None and left >= 1:
            listener(round(left), rate_limit_wait(source, left))
        if sleep_unless(cancel, min(left, _COUNTDOWN_S)):
            return True
    return False


def rate_limit_wait(source: str, seconds: float) -> Message:
    """The countdown line of a rate-limit wait (the ``waiting`` event's message)."""
    return Message(N_("{source}: rate limit reached; waiting {seconds:.0f}s for the server's "
                      "window to reset"), source=source, seconds=seconds)


def sleep_unless(cancel: threading.Event | None, seconds: float) -> bool:
    """Sleep; return True at once when ``cancel`` is set (so Ctrl-C is never delayed)."""
    if seconds <= 0:
        return bool(cancel and cancel.is_set())
    if cancel is None:
        time.sleep(seconds)
        return False
    return cancel.wait(seconds)


def metadata_deadline_s() -> float:
    """The overall deadline of one metadata request (``LLMSETUP_METADATA_TIMEOUT``)."""
    value = os.environ.get("LLMSETUP_METADATA_TIMEOUT", "").strip()
    try:
        seconds = float(value) if value else METADATA_DEADLINE_S
    except ValueError:
        seconds = METADATA_DEADLINE_S
    return seconds if seconds > 0 else METADATA_DEADLINE_S


class TooSlow(Exception):
    pass


def _read_capped(resp: requests.Response, deadline: float, cap: int) -> bytes | None:
    """The body, read a piece at a time; None if it is larger than ``cap``.

    Raises :class:`TooSlow` at the deadline (each read is also bounded by the read timeout,
    so a reply trickled a byte at a time ends within the deadline plus one read timeout).
    """
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > cap:
        return None
    raw = resp.raw
    read = getattr(raw, "read1", None) or raw.read
    chunks, total = [], 0
    while True:
        if time.monotonic() > deadline:
            raise TooSlow
        chunk = read(1 << 16, decode_content=True)  # a compressed reply: capped decoded
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > cap:
            return None
        chunks.append(chunk)


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
    check: Callable[[requests.Response], None] | None = None,
    deadline_s: float | None = None,
    not_json_hint: str | None = None,
) -> tuple[Any, requests.Response]:
    """GET a JSON document with the shared retry rules; returns (data, response).

    Within an overall deadline (``deadline_s``, else :func:`metadata_deadline_s`; waits
    the server asks for are added to it) and a size cap (:data:`METADATA_MAX_BYTES`). A
    spent quota (429 with a ``RateLimit`` reset) is waited out without counting as a try,
    up to ``policy.max_retry_after_s`` in all. ``check`` replaces :func:`check_status` for
    a protocol with its own error table (it raises our errors or :class:`Transient`).
    """
    limit = deadline_s or metadata_deadline_s()
    deadline = time.monotonic() + limit
    quota_waited = 0.0
    last: Transient | None = None
    attempt = 0
    while attempt < policy.attempts:
        attempt += 1
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TooSlow
            resp = within_deadline(deadline, cancel, lambda left=left: session.get(
                url, headers=dict(headers or {}), params=params, stream=True,
                timeout=(min(timeout[0], left), min(timeout[1], left))))
            with contextlib.closing(resp):
                if check is not None:
                    check(resp)
                else:
                    check_status(resp, source, what, denied_hint, missing_hint)
                body = _read_capped(resp, deadline, METADATA_MAX_BYTES)
            if body is None:
                raise reply_too_large(source, what, redact(resp.url))
            resp._content, resp._content_consumed = body, True
            try:
                return json.loads(body), resp
            except ValueError:
                raise SourceError(source, Message(
                    N_("{what}: the reply is not JSON (HTTP {code}, {size} bytes)"), what=what,
                    code=resp.status_code, size=len(body)), hint=not_json_hint or Message(N_(
                        "The server may not speak this protocol; check the endpoint URL."))
                    ) from None
        except TooSlow:
            raise no_reply_in_time(source, what, limit, redact(_full_url(url, params))) from None
        except Transient as exc:
            last = exc
            if exc.retry_after is not None and exc.retry_after > policy.max_retry_after_s:
                raise asks_to_wait(source, exc, exc.retry_after) from None
            if exc.quota and exc.retry_after is not None and \
                    quota_waited + exc.retry_after <= policy.max_retry_after_s:
                attempt -= 1  # inside the server's window: not a failed try
                quota_waited += exc.retry_after
        except SourceError:
            raise
        except Exception as exc:
            if not is_network_error(exc):
                raise
            last = Transient(Message(N_("{what}: {error}"), what=what,
                                     error=describe_network_error(exc)))
        if attempt < policy.attempts:
            delay = policy.delay(max(1, attempt), last.retry_after)
            if last.retry_after is not None:
                deadline += delay  # the server's own wait is not ours to count
                if _wait_for_server(cancel, delay, source):
                    raise KeyboardInterrupt
            elif sleep_unless(cancel, delay):
                raise KeyboardInterrupt
    assert last is not None
    raise gave_up(source, last, policy.attempts)


def gave_up(source: str, last: Transient, attempts: int) -> SourceError:
    """The last failure of a metadata request, after every try."""
    return SourceError(source, Message(N_("{error} (gave up after {attempts} tries)"),
                                       error=text_of(last), attempts=attempts),
                       hint=Message(N_("Check the network or the mirror, or try another "
                                       "source.")))


def asks_to_wait(source: str, exc: Transient, seconds: float) -> SourceError:
    """The server asks for a wait longer than we take (``max_retry_after_s``)."""
    return SourceError(source, Message(N_("{error}; the server asks to wait {seconds:.0f}s"),
                                       error=text_of(exc), seconds=seconds),
                       hint=Message(N_("Try another source, or rerun later.")))


def no_reply_in_time(source: str, what: str, limit: float, url: str) -> SourceError:
    """A metadata request past its overall deadline (``LLMSETUP_METADATA_TIMEOUT``)."""
    return SourceError(source, Message(N_("{what}: no complete reply within {limit:g}s from "
                                          "{url}"), what=what, limit=limit, url=url),
                       hint=Message(N_("The server is too slow or stuck; try another source, "
                                       "or rerun later (LLMSETUP_METADATA_TIMEOUT sets the "
                                       "limit).")))


def reply_too_large(source: str, what: str, url: str) -> SourceError:
    """A metadata reply over :data:`METADATA_MAX_BYTES`."""
    return SourceError(source, Message(N_("{what}: the reply is larger than {mib} MiB ({url})"),
                                       what=what, mib=METADATA_MAX_BYTES >> 20, url=url),
                       hint=Message(N_("The server may not speak this protocol; check the "
                                       "endpoint URL, or try another source.")))


def within_deadline(deadline: float, cancel: threading.Event | None, call):
    """``call()`` (a request up to its headers) on a thread of its own, given up at the
    deadline: a server that trickles its status line and headers a byte at a time passes
    every per-read timeout, and only a deadline around the whole call ends it. A reply
    that arrives after the deadline is closed at once (the server stops sending); the
    thread left behind ends with its socket or with the process."""
    box: dict[str, Any] = {}
    done = threading.Event()
    lock = threading.Lock()

    def work() -> None:
        try:
            value = call()
        except BaseException as exc:
            box["error"] = exc
        else:
            with lock:
                late = box.get("abandoned", False)
                box["value"] = value
            if late and hasattr(value, "close"):
                value.close()
        finally:
            done.set()

    threading.Thread(target=work, name="llmsetup-request", daemon=True).start()
    while not done.wait(0.05):
        if cancel is not None and cancel.is_set():
            _abandon(box, lock)
            raise KeyboardInterrupt
        if time.monotonic() > deadline:
            _abandon(box, lock)
            raise TooSlow
    if "error" in box:
        raise box["error"]
    return box["value"]


def _abandon(box: dict, lock: threading.Lock) -> None:
    with lock:
        box["abandoned"] = True
        value = box.get("value")
    if value is not None and hasattr(value, "close"):
        value.close()  # it arrived between the last look and now


def _full_url(url: str, params: Mapping[str, Any] | None) -> str:
    if not params:
        return url
    from urllib.parse import urlencode

    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
