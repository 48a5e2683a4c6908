"""Talking to a running text-generation-webui: its page, and one chat request through its
OpenAI-compatible API (``verify --webui``)."""

from __future__ import annotations

import urllib.error
import urllib.request

from llmsetup.errors import CheckFailed
from llmsetup.i18n import _


def check_page(url: str, timeout: float = 30) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise CheckFailed(_("the webui does not answer at {url}: {error}").format(
                              url=url, error=exc),
                          hint=_("Is `llmsetup serve` running? Check the host and port.")) \
            from None


def chat_once(api_url: str, prompt: str, max_tokens: int = 32, timeout: float = 300) -> str:
    """One chat request through the webui's OpenAI-compatible API; the answer's text.

    The request goes through the one OpenAI-API client (:mod:`llmsetup.serving`), as
    ``verify --api`` and ``bench --api`` do.
    """
    from llmsetup.serving.openai_client import Client

    return Client(api_url, timeout=timeout).chat(prompt, max_tokens=max_tokens).text
