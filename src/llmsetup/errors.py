"""The error types the core raises. The CLI turns each into one or two lines for the user.

Every error carries a message (what happened) and a hint (what to do next). The exit code
follows the project's convention: 1 for a failed check or operation, 2 for bad usage or
bad input.
"""

from __future__ import annotations

from llmsetup.secret import redact


class LLMSetupError(Exception):
    """Base class: a failure the user can act on."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(redact(message))
        self.message = redact(message)
        self.hint = redact(hint) if hint else None

    def __str__(self) -> str:
        return self.message


class UsageError(LLMSetupError):
    """Bad usage or bad input: exit code 2."""

    exit_code = 2


class RecipeError(UsageError):
    """A recipe that cannot be read or does not validate."""

    def __init__(self, message: str, hint: str | None = None, problems: list[str] | None = None):
        super().__init__(message, hint)
        self.problems = problems or []


class NotFoundError(UsageError):
    """A recipe, model folder or file that does not exist."""


class CheckFailed(LLMSetupError):
    """A verification ran and the model (or environment) did not pass: exit code 1."""


class ProcessError(LLMSetupError):
    """A subprocess failed. ``tail`` holds its last output lines, ``log`` the full log."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        returncode: int | None = None,
        tail: str = "",
        log: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.returncode = returncode
        self.tail = redact(tail)
        self.log = log


class EnvironmentProblem(LLMSetupError):
    """A tool the command needs is missing or unusable (conda, a Python version, ffmpeg)."""
