"""Secrets (tokens, and credentials inside URLs) and their redaction.

Every token llmsetup reads is registered here, and :func:`redact` replaces it in any text
before that text reaches a log, a progress line, an exception message or the terminal.
:class:`Secret` keeps the value out of ``repr`` and ``str`` so that it cannot leak by
accident through formatting.
"""

from __future__ import annotations

import re
import threading

_lock = threading.Lock()
_known: set[str] = set()
MASK = "***"

# Query parameters that carry credentials: our sources' (``token``), the usual names, and
# those of signed CDN URLs (S3, CloudFront), which are bearer credentials until they expire.
_QUERY_SECRET = re.compile(
    r"(?i)([?&](?:token|access_token|auth|api_?key|key|password|passwd|pwd|secret|sig|"
    r"signature|x-amz-signature|x-amz-credential|x-amz-security-token|policy|key-pair-id|"
    r"session|session_id|m_session_id)=)[^&#\s'\"]+")
# The userinfo of a URL (``http://user:PASSWORD@host``): the whole of it, user included
# (``https://TOKEN@host`` is common for git).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@'\"<>]+@")
_AUTH_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|token)\s+)[^\s'\",}]+")


class Secret:
    """A token. ``str()`` and ``repr()`` show a mask; :meth:`reveal` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


def register(value: str | None) -> None:
    """Remember a secret value so that :func:`redact` masks it everywhere."""
    if value and len(value) >= 4:
        with _lock:
            _known.add(value)


def known() -> frozenset[str]:
    with _lock:
        return frozenset(_known)


def redact(text: str) -> str:
    """Mask every registered secret, the userinfo of every URL, and every
    credential-looking query parameter."""
    if not text:
        return text
    for value in sorted(known(), key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    text = _USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, text)
    return _AUTH_HEADER.sub(lambda m: m.group(1) + MASK, text)


def mask_url(url: str) -> str:
    """``url`` fit to show or store: userinfo and credential-like query values masked."""
    return redact(url)


def register_url(url: str | None) -> None:
    """Register the credentials inside ``url`` (userinfo, as given and percent-decoded) so
    that :func:`redact` masks them wherever they appear, in a URL or not."""
    if not url:
        return
    from urllib.parse import unquote, urlsplit

    try:
        split = urlsplit(url)
    except ValueError:
        return
    userinfo = split.netloc.rpartition("@")[0] if "@" in split.netloc else ""
    for part in (userinfo, *userinfo.split(":", 1)[1:]):
        register(part)
        register(unquote(part))


def contains_secret(text: str) -> bool:
    """True when ``text`` holds a registered secret value."""
    return any(value in text for value in known())
