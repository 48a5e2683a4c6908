"""Messages of the runtime modules in the language the host chose.

The host passes its choice in ``LLMSETUP_LANG`` (``llmsetup.i18n.child_env``); started by
hand, a module follows the locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``). The catalog is the
host's, ``../locale`` beside this folder. Only what a person reads on the terminal is
translated (the chat's banner, notices and ``/help``); JSON events stay English.
"""

from __future__ import annotations

import os
from pathlib import Path

_LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
_catalog = None


def language() -> str:
    value = os.environ.get("LLMSETUP_LANG", "").strip().lower()
    if value.startswith(("zh", "en")):
        return value[:2]
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(name):
            return "zh" if os.environ[name].lower().startswith("zh") else "en"
    return "en"


def _(message: str) -> str:
    """``message`` in the chosen language (English when no catalog is found)."""
    global _catalog
    if language() == "en":
        return message
    if _catalog is None:
        import gettext

        _catalog = gettext.translation("llmsetup", _LOCALE_DIR, languages=["zh_CN"], fallback=True)
    return _catalog.gettext(message)


def N_(message: str) -> str:
    """Mark a message for the catalog where it is defined (a constant, or a hint that the
    host translates when it shows it); translate it with :func:`_` where it is shown."""
    return message
