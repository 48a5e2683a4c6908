"""What can go wrong in a download, as errors the CLI's one table already knows.

A :class:`SourceError` means "this source cannot deliver this model now": the download
moves on to the next source and, if every source fails, :class:`AllSourcesFailed` lists
why each one did. Everything else (a full disk, a bad option, Ctrl-C) stops at once,
because another source would not help.
"""

from __future__ import annotations

from llmsetup.download.messages import Joined, Message, shown
from llmsetup.errors import CheckFailed, LLMSetupError, UsageError
from llmsetup.i18n import N_, _


class SourceError(LLMSetupError):
    """One source failed for this model; the next source may succeed.

    ``reason``, ``hint_text`` and ``text`` (the whole message) keep the English text (a
    :class:`~llmsetup.download.messages.Message` where one was given) for the events and
    the log; ``message`` and ``hint`` are in the chosen language, for the terminal."""

    def __init__(self, source: str, message: str, hint: str | None = None) -> None:
        text = Message(N_("{source}: {reason}"), source=source, reason=message)
        super().__init__(shown(text), shown(hint))
        self.text = text
        self.source = source
        self.reason = message
        self.hint_text = hint


class AccessDenied(SourceError):
    """401 or 403: a token is missing, wrong, or has not accepted a gated model's terms."""


class NotOnSource(SourceError):
    """404 or 410: the repository, revision or file does not exist at this source."""


class IntegrityError(SourceError):
    """The bytes did not match the size or sha256 the source published, even after retries."""


class UnsafeListing(SourceError):
    """A listing named a path that would escape the model folder (``..``, absolute, drive)."""


class DiskSpaceError(LLMSetupError):
    """Not enough free disk for what is left to download (checked before any transfer)."""


class AllSourcesFailed(LLMSetupError):
    """Every source was tried; ``failures`` holds (source, reason) for each. ``text`` is
    the message in English (for a log), ``message`` in the chosen language."""

    def __init__(self, what: str, failures: list[SourceError]) -> None:
        lines = Joined("\n", (Message(N_("  - {source}: {reason}"), source=f.source,
                                      reason=f.reason) for f in failures))
        self.text = Message(N_("could not download {what} from any source:\n{lines}"),
                            what=what, lines=lines)
        hints = [f.hint for f in failures if f.hint]
        super().__init__(
            shown(self.text),
            hint=hints[0] if len(set(hints)) == 1 else (
                "\n".join(dict.fromkeys(hints)) if hints
                else _("Rerun later (it resumes), or pick a source with --source / --endpoint.")),
        )
        self.failures = failures


class NotDownloadable(UsageError):
    """The recipe's model is built locally (the ``generate`` source), not downloaded."""


class ManifestProblem(CheckFailed):
    """``llmsetup check`` found a missing, wrong or unverifiable file."""
