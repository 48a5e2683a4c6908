"""A download's words: English where they are data, the chosen language where shown.

What a download says goes two ways at once: into its events (JSON lines with ``--json``,
``download.log``), the manifest and ``--json`` documents, which stay English so that they
can be searched, shared and compared; and onto the terminal, in the chosen language
(:mod:`llmsetup.i18n`). A :class:`Message` is both: the ``str`` itself is the English text
(what ``json.dumps``, ``==``, ``in``, joins and f-strings see), and :func:`shown` gives it
in the chosen language, its parameters shown too (a reason inside a reason).

    reason = Message(N_("not found (HTTP {code}): {what}"), code=404, what=what)
    reason == "not found (HTTP 404): ..."   # the event, the log, --json
    shown(reason)                           # the terminal: "未找到（HTTP 404）：..."

Building one formats the English text once and translates nothing (no catalog lookup),
so it costs what the f-string it replaces cost; translation happens only where a person
reads the text (:func:`~llmsetup.download.progress.event_line`, the errors' messages).
"""

from __future__ import annotations

from typing import Any

from llmsetup.i18n import Joined, Message, shown

__all__ = ["Joined", "Message", "redacted", "shown", "text_of"]


def redacted(value: Any) -> Any:
    """``value`` with secrets masked (:func:`llmsetup.secret.redact`): a Message stays a
    Message when there was nothing to mask, else becomes the masked English string."""
    from llmsetup.secret import redact

    if not isinstance(value, str) or not value:
        return value
    masked = redact(str.__str__(value))
    return value if masked == value else masked


def text_of(exc: BaseException) -> Any:
    """An exception's text: its :class:`Message` where it keeps one (``text``), else
    ``str(exc)``."""
    text = getattr(exc, "text", None)
    return text if isinstance(text, str) else str(exc)
