"""The console script's entry point: settle the language, then run the CLI.

The language is chosen before any command module is imported, because Typer reads each
option's help when the module defines the command (see llmsetup/i18n.py for the order:
``--lang``, ``LLMSETUP_LANG``, the config file's ``lang``, the locale).
"""

from __future__ import annotations

import sys


def lang_word(words: list[str]) -> str | None:
    """The value of ``--lang`` among the command line's words (before ``--``), if any."""
    words = words[:words.index("--")] if "--" in words else words
    found = None
    for i, word in enumerate(words):
        if word == "--lang" and i + 1 < len(words):
            found = words[i + 1]
        elif word.startswith("--lang="):
            found = word.split("=", 1)[1]
    return found


def _config_lang() -> str | None:
    from llmsetup.settings import load_config

    value = load_config().get("lang")
    return value if isinstance(value, str) else None


def main() -> None:
    from llmsetup import i18n

    i18n.choose(lang_word(sys.argv[1:]), _config_lang)
    from llmsetup.cli.app import main as run

    run()
