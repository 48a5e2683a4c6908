"""One client for OpenAI-compatible servers (vLLM, the webui's API, others).

``verify --api``, ``verify --webui`` and ``bench --api`` all talk through :class:`Client`:
standard library only (``urllib``), a deadline on every request (a connect/read timeout and,
for streams, a total deadline), the API key in the ``Authorization`` header and nowhere else
(never in a URL, a log line or an exception: it is a :class:`~llmsetup.secret.Secret`).
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from llmsetup.errors import CheckFailed, UsageError
from llmsetup.i18n import _
from llmsetup.secret import Secret

DEFAULT_TIMEOUT = 30.0


def base_url(url: str) -> str:
    """``host:port``, ``http://host:port`` or ``http://host:port/v1`` as ``http://host:port``.

    Raises :class:`UsageError` for what is not an http(s) URL with a host.
    """
    text = url.strip()
    parts = urlsplit(text if "://" in text else f"http://{text}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(_("{url!r} is not an http(s) URL").format(url=url),
                         hint=_("e.g. --api http://127.0.0.1:8000 (the /v1 suffix is "
                                "optional)"))
    try:
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        raise UsageError(_("{url!r} has an invalid port").format(url=url),
                         hint=_("e.g. http://127.0.0.1:8000")) from None
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass
class ChatReply:
    """The answer to one non-streaming chat request."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    seconds: float


@dataclass
class StreamStats:
    """What one streaming request measured (times in seconds since it was sent)."""

    ok: bool = False
    error: str | None = None
    ttft_s: float | None = None
    latency_s: float | None = None
    chunk_times: list[float] = field(default_factory=list)
    output_tokens: int = 0
    prompt_tokens: int | None = None
    text: str = ""


class Client:
    """Requests to one OpenAI-compatible server."""

    def __init__(self, url: str, api_key: Secret | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base = base_url(url)
        self.api_key = api_key
        self.timeout = timeout

    # -- plumbing ---------------------------------------------------------------------------
    def _request(self, path: str, body: dict | None = None) -> urllib.request.Request:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key.reveal()}"
        return urllib.request.Request(self.base + path, data=data, headers=headers,
                                      method="POST" if body is not None else "GET")

    def _fail(self, path: str, exc: BaseException) -> CheckFailed:
        where = self.base + path
        if isinstance(exc, urllib.error.HTTPError):
            if exc.code in (401, 403):
                hint = (_("The server wants an API key: `llmsetup serve` stores it under "
                          "LLMSETUP_HOME (used automatically), or set LLMSETUP_API_KEY.")
                        if not self.api_key else
                        _("The API key was refused: check LLMSETUP_API_KEY or the key the "
                          "server was started with."))
                return CheckFailed(_("{url} refused the request ({status})").format(
                    url=where, status=exc.code), hint=hint)
            detail = _error_detail(exc)
            message = _("{url} answered {status}: {detail}") if detail \
                else _("{url} answered {status}")
            return CheckFailed(message.format(url=where, status=exc.code, detail=detail),
                               hint=_("The server's log says more."))
        if isinstance(exc, (TimeoutError, socket.timeout)):
            return CheckFailed(_("{url} did not answer within {seconds:.0f}s").format(
                url=where, seconds=self.timeout),
                hint=_("The server is busy or still loading; raise --timeout."))
        reason = getattr(exc, "reason", exc)
        return CheckFailed(_("cannot reach {url}: {reason}").format(url=where, reason=reason),
                           hint=_("Is the server running (`llmsetup serve`)? Check host and "
                                  "port."))

    def _json(self, path: str, body: dict | None = None, timeout: float | None = None) -> dict:
        try:
            with urllib.request.urlopen(self._request(path, body),
                                        timeout=timeout or self.timeout) as reply:
                raw = reply.read()
        except (urllib.error.URLError, OSError) as exc:
            raise self._fail(path, exc) from None
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise CheckFailed(_("{url} answered something that is not JSON: {start!r}").format(
                url=self.base + path, start=raw[:120]),
                hint=_("Is this an OpenAI-compatible API?")) from None
        if not isinstance(doc, dict):
            raise CheckFailed(_("{url} answered JSON that is not an object").format(
                url=self.base + path))
        return doc

    # -- the API ----------------------------------------------------------------------------
    def models(self) -> list[str]:
        """The ids ``/v1/models`` lists."""
        doc = self._json("/v1/models")
        try:
            return [str(item["id"]) for item in doc["data"]]
        except (KeyError, TypeError):
            raise CheckFailed(_("{url}/v1/models answered without a model list: {doc}").format(
                url=self.base, doc=str(doc)[:200]),
                hint=_("Is this an OpenAI-compatible API?")) from None

    def chat(self, prompt: str, *, model: str | None = None, max_tokens: int = 64,
             temperature: float = 0.0, timeout: float | None = None) -> ChatReply:
        """One non-streaming chat completion."""
        body: dict = {"messages": [{"role": "user", "content": prompt}],
                      "max_tokens": max_tokens, "temperature": temperature}
        if model:
            body["model"] = model
        started = time.monotonic()
        doc = self._json("/v1/chat/completions", body, timeout)
        try:
            choice = doc["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise CheckFailed(_("{url} answered without a chat message: {doc}").format(
                url=self.base, doc=str(doc)[:200])) from None
        usage = doc.get("usage") or {}
        return ChatReply(text=text, finish_reason=choice.get("finish_reason"),
                         prompt_tokens=usage.get("prompt_tokens"),
                         completion_tokens=usage.get("completion_tokens"),
                         seconds=time.monotonic() - started)

    def stream_completion(self, prompt: str, *, model: str | None, max_tokens: int,
                          deadline_s: float, exact: bool = True) -> StreamStats:
        """One streaming ``/v1/completions`` request, timed chunk by chunk.

        ``exact`` asks for exactly ``max_tokens`` (vLLM's ``ignore_eos``/``min_tokens``; other
        servers ignore fields they do not know). Never raises for a failed request: the
        result says ``ok=False`` and why, so that a benchmark counts failures.
        """
        body: dict = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0,
                      "stream": True, "stream_options": {"include_usage": True}}
        if model:
            body["model"] = model
        if exact:
            body.update(ignore_eos=True, min_tokens=max_tokens)
        stats = StreamStats()
        started = time.monotonic()
        try:
            for event in self._events("/v1/completions", body, started + deadline_s):
                now = time.monotonic() - started
                usage = event.get("usage")
                if usage:
                    stats.prompt_tokens = usage.get("prompt_tokens", stats.prompt_tokens)
                    stats.output_tokens = usage.get("completion_tokens") or stats.output_tokens
                for choice in event.get("choices") or []:
                    piece = choice.get("text") or (choice.get("delta") or {}).get("content")
                    if piece:
                        if stats.ttft_s is None:
                            stats.ttft_s = now
                        stats.chunk_times.append(now)
                        stats.text += piece
            stats.latency_s = time.monotonic() - started
            if not stats.output_tokens:  # no usage report: count one token per chunk
                stats.output_tokens = len(stats.chunk_times)
            stats.ok = stats.ttft_s is not None
            if not stats.ok:
                stats.error = _("the stream ended without any text")
        except CheckFailed as exc:
            stats.error = exc.message
        return stats

    def _events(self, path: str, body: dict, deadline: float) -> Iterator[dict]:
        """The ``data:`` objects of a server-sent event stream, until ``[DONE]``."""
        try:
            reply = urllib.request.urlopen(self._request(path, body), timeout=self.timeout)
        except (urllib.error.URLError, OSError) as exc:
            raise self._fail(path, exc) from None
        with reply:
            while True:
                if time.monotonic() > deadline:
                    raise CheckFailed(_("{url}: the stream passed its deadline").format(
                        url=self.base + path))
                try:
                    line = reply.readline()
                except (OSError, urllib.error.URLError) as exc:
                    raise self._fail(path, exc) from None
                if not line:
                    return
                text = line.decode("utf-8", "replace").strip()
                if not text.startswith("data:"):
                    continue
                data = text[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    if "error" in event and not event.get("choices"):
                        raise CheckFailed(f"{self.base + path}: {str(event['error'])[:200]}")
                    yield event


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read(2000).decode("utf-8", "replace")
    except OSError:
        return ""
    try:
        doc = json.loads(raw)
        message = doc.get("error", doc) if isinstance(doc, dict) else doc
        if isinstance(message, dict):
            message = message.get("message", message)
        return str(message)[:200]
    except ValueError:
        return raw.strip()[:200]
