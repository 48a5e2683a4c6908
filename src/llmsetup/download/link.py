"""Where a file's bytes come from: its URL, resolved once, kept until the link expires.

A Hub ``/resolve/...`` URL answers with a redirect to a signed CDN link. Every request
to it costs one call of the resolver, which the Hub and its mirrors count against a
small quota per client (about 3,000 per 5 minutes anonymously). So the first request of
a file follows the redirect, and every other part and retry of that file goes straight
to the final URL, until that link expires (its ``Expires`` / ``X-Amz-Expires`` query
parameter, or a 403/404/410 from the CDN); then the file is resolved again.

While one connection resolves a file, the others of that file wait for it (at most a
request's timeouts), so a file with many parts is resolved once, not once per connection.
Credentials never go to the final URL's host when it differs from the original's, except
an HF token to the Hub itself (a user-set endpoint that redirects to huggingface.co).
"""

from __future__ import annotations

import calendar
import threading
import time
from urllib.parse import parse_qs, urlsplit

from llmsetup.download.http import cross_host_headers
from llmsetup.download.sources.base import RemoteFile, Source

#: A link this close to its expiry is resolved again rather than used.
_EXPIRY_MARGIN_S = 60.0


def link_expiry(url: str) -> float | None:
    """The Unix time a signed URL stops working, from its query; None if it does not say."""
    query = {k.lower(): v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    try:
        if "expires" in query:
            return float(query["expires"])
        if "x-amz-expires" in query and "x-amz-date" in query:
            signed = calendar.timegm(time.strptime(query["x-amz-date"], "%Y%m%dT%H%M%SZ"))
            return signed + float(query["x-amz-expires"])
    except (ValueError, OverflowError):
        return None
    return None


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


class FileLink:
    """The URL to fetch one file from, shared by every connection working on it."""

    def __init__(self, source: Source, file: RemoteFile) -> None:
        self.source = source
        self.file = file
        self._cv = threading.Condition()
        self._final: str | None = None
        self._expires: float | None = None
        self._resolving = False
        self._direct = False  # the URL answered without a redirect: nothing to keep

    def target(self, wait_s: float) -> tuple[str, dict[str, str], bool, bool]:
        """(url, headers, resolving, final): where to send the next request.

        ``resolving``: this request resolves the file; report its reply to
        :meth:`resolved`. ``final``: the URL is a kept link (see :meth:`expired`).
        """
        url, headers = self.source.url_and_headers(self.file)
        deadline = time.monotonic() + wait_s
        with self._cv:
            while True:
                if self._final is not None and (self._expires is None or
                                                time.time() < self._expires - _EXPIRY_MARGIN_S):
                    if _host(self._final) != _host(url):
                        headers = cross_host_headers(headers, self._final)
                    return self._final, dict(headers), False, True
                self._final = None
                left = deadline - time.monotonic()
                if self._direct or left <= 0:
                    return url, dict(headers), False, False
                if not self._resolving:
                    self._resolving = True
                    return url, dict(headers), True, False
                self._cv.wait(left)

    def resolved(self, resp) -> None:
        """The reply to the resolving request (None if it failed before a reply)."""
        with self._cv:
            self._resolving = False
            if resp is not None and resp.status_code < 400:
                if resp.history:
                    self._final, self._expires = resp.url, link_expiry(resp.url)
                else:
                    self._direct = True
            self._cv.notify_all()

    def expired(self, url: str) -> None:
        """The kept link ``url`` was refused: resolve the file again."""
        with self._cv:
            if self._final == url:
                self._final = None
                self._cv.notify_all()
