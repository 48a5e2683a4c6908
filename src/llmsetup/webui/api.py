"""Talking to a running text-generation-webui: its page, and one chat request through its
OpenAI-compatible API (``verify --webui``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from llmsetup.errors import CheckFailed


def check_page(url: str, timeout: float = 30) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise CheckFailed(f"the webui does not answer at {url}: {exc}",
                          hint="Is `llmsetup serve` running? Check the host and port.") from None


def chat_once(api_url: str, prompt: str, max_tokens: int = 32, timeout: float = 300) -> str:
    """One chat request through the webui's OpenAI-compatible API; the answer's text."""
    body = json.dumps({"messages": [{"role": "user", "content": prompt}],
                       "max_tokens": max_tokens, "mode": "instruct"}).encode()
    request = urllib.request.Request(api_url.rstrip("/") + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            doc = json.loads(reply.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CheckFailed(f"the webui API at {api_url} did not answer a chat request: {exc}",
                          hint="Start the server with `llmsetup serve NAME --api`.") from None
    try:
        return doc["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise CheckFailed(f"the webui API answered without a chat message: {str(doc)[:200]}")\
            from None
