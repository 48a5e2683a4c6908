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

from collections.abc import Iterable
from typing import Any

from llmsetup.i18n import _, language


class Message(str):
    """English text (the string itself) that :func:`shown` gives in the chosen language.

    ``msgid`` is the message as marked with ``N_()``: a format string with named
    placeholders (a literal brace doubled, even without parameters); ``params`` fill it,
    and may be Messages themselves."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, /, **params: Any) -> Message:
        self = super().__new__(cls, msgid.format_map(params))
        self.msgid = msgid
        self.params = params
        return self

    def __reduce__(self):
        return (_rebuild, (type(self), self.msgid, self.params))

    def shown(self) -> str:
        """The text in the chosen language."""
        if language() == "en":
            return str.__str__(self)
        return _(self.msgid).format_map({k: shown(v) for k, v in self.params.items()})


def _rebuild(cls: type, msgid: str, params: dict[str, Any]) -> Message:
    return cls(msgid, **params)


class Joined(Message):
    """Items joined by a separator (``"; "``, ``"\\n"``), each shown in the chosen
    language, the separator too (``"; "`` is ``"；"`` in Chinese)."""

    def __new__(cls, sep: str, items: Iterable[Any]) -> Joined:
        items = list(items)
        self = str.__new__(cls, sep.join(str(i) for i in items))
        self.msgid, self.params = sep, {}
        self.items = items
        return self

    def __reduce__(self):
        return (Joined, (self.msgid, self.items))

    def shown(self) -> str:
        if language() == "en":
            return str.__str__(self)
        return _(self.msgid).join(str(shown(i)) for i in self.items)


def shown(value: Any) -> Any:
    """``value`` as a person reads it: a :class:`Message` in the chosen language; anything
    else (a plain string, a number) as it is."""
    if isinstance(value, Message):
        return value.shown()
    return value


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
