"""The language of every message a person reads: Chinese (Simplified) or English.

Messages are written in English and marked for translation with :func:`_` (and
:func:`ngettext` where a count changes the words); the Chinese text comes from a gettext
catalog, ``locale/zh_CN/LC_MESSAGES/llmsetup.mo`` beside this module. Its source,
``llmsetup.po``, lives in the repository and is compiled when the package is built (see
``scripts/i18n.py`` and ``hatch_build.py``); ``docs/zh-glossary.md`` holds the terms the
translation follows.

The language, first found wins:

1. ``--lang zh|en`` (the CLI calls :func:`choose` with it before any command is built);
2. ``LLMSETUP_LANG=zh|en``;
3. the config file's ``lang`` key (the CLI passes a reader to :func:`choose`);
4. the locale: the first of ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` that is set; ``zh*``
   reads as Chinese, anything else as English.

What is never translated: command and option names, recipe names, paths, ``--json`` keys
and codes, exit codes, and log files (written in English so that a log can be searched and
shared). The runtime modules that run inside a model's environment read the language the
host chose from ``LLMSETUP_LANG`` (:func:`child_env`), through ``runtime/_i18n.py``.

Cost: in English nothing is loaded (``_`` returns its argument); in Chinese the catalog is
read once, on the first message (2.4 ms for 1098 messages here).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

LANGUAGES = ("en", "zh")
DOMAIN = "llmsetup"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
# The catalog of each language but English (which is the source).
CATALOG_LOCALE = {"zh": "zh_CN"}

_chosen: str | None = None
_catalog = None  # a gettext.GNUTranslations once loaded


def normalize(value: str | None) -> str | None:
    """``zh``, ``zh_CN``, ``zh-Hans``, ``zh_TW.UTF-8`` -> ``zh``; ``en``, ``en_US``, ``C``,
    ``POSIX`` -> ``en``; empty -> None; anything else -> None."""
    if not value:
        return None
    word = value.strip().lower().replace("-", "_").split(".")[0].split("@")[0]
    if word.startswith("zh"):
        return "zh"
    if word.startswith("en") or word in ("c", "posix"):
        return "en"
    return None


def from_locale(environ: dict[str, str] | os._Environ | None = None) -> str:
    """The language the locale asks for: the first of LC_ALL, LC_MESSAGES, LANG that is set."""
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def choose(explicit: str | None = None, config_lang: Callable[[], str | None] | None = None) -> str:
    """Settle the language for this process (see the module docstring for the order).

    ``explicit`` is ``--lang``; ``config_lang`` reads the config file's ``lang`` key and is
    called only when neither ``--lang`` nor ``LLMSETUP_LANG`` decides. A value that is not
    a language is skipped here (the CLI and the config check report it)."""
    global _chosen, _catalog
    lang = normalize(explicit) or normalize(os.environ.get("LLMSETUP_LANG"))
    if lang is None and config_lang is not None:
        try:
            lang = normalize(config_lang())
        except Exception:  # a broken config file: the command itself reports it
            lang = None
    lang = lang or from_locale()
    if lang != _chosen:
        _chosen, _catalog = lang, None
    return lang


def language() -> str:
    """The language chosen (settled from the environment on first use)."""
    return _chosen if _chosen is not None else choose()


def child_env() -> dict[str, str]:
    """What a child process of ours (a runtime module) needs to speak the same language."""
    return {"LLMSETUP_LANG": language()}


def _translations():
    global _catalog
    if _catalog is None:
        import gettext

        locale = CATALOG_LOCALE[language()]
        try:
            with open(LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.mo", "rb") as fp:
                _catalog = gettext.GNUTranslations(fp)
        except OSError:  # a source checkout never built: English rather than nothing
            _catalog = gettext.NullTranslations()
    return _catalog


def _(message: str) -> str:
    """``message`` in the chosen language. Mark only whole sentences with named
    placeholders (``_("{name} is missing").format(name=...)``), never pieces to join."""
    if (_chosen or language()) == "en":
        return message
    return _translations().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a message for the count ``n`` (``{n}`` is left for ``.format``)."""
    if (_chosen or language()) == "en":
        return singular if n == 1 else plural
    return _translations().ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a message for the catalog where it is defined (a table, a constant) and
    translate it with :func:`_` where it is shown."""
    return message


# ---- text kept in both languages ----------------------------------------------------------
# What the core says often goes two ways at once: into records, logs and --json (English,
# to be searched, shared and compared) and onto the terminal (the chosen language). A
# Message is both: the str itself is the English text (what json.dumps, ==, joins and
# f-strings see) and shown() gives it in the chosen language, its values shown too.
#
#     reason = Message(N_("not found (HTTP {code}): {what}"), code=404, what=what)
#     reason == "not found (HTTP 404): ..."   # the event, the log, --json
#     shown(reason)                           # the terminal: "未找到（HTTP 404）：..."
#
# Making one formats the English once and looks nothing up.

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
        sep = _(self.msgid) if self.msgid.strip() else self.msgid  # "" is the catalog's header
        return sep.join(str(shown(i)) for i in self.items)


def shown(value: Any) -> Any:
    """``value`` as a person reads it: a :class:`Message` in the chosen language; anything
    else (a plain string, a number) as it is."""
    if isinstance(value, Message):
        return value.shown()
    return value
