"""SIGTERM and SIGHUP end a command the way Ctrl-C does, with their own exit status.

Each raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main thread, so every
``except KeyboardInterrupt`` on the way out runs as for Ctrl-C: a download saves its
partial state, a child process is stopped. The exit status is 128 + the signal's number
(143 for SIGTERM, 129 for SIGHUP), as a shell reports a process killed by it.
"""

from __future__ import annotations

import signal
import sys

from llmsetup import interrupts


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal; ``exit_code`` is 128 + its number."""

    def __init__(self, signum: int) -> None:
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {self.signal_name}")


def _raise(signum: int, frame) -> None:
    raise interrupts.raised(Terminated(signum))


def _interrupt(signum: int, frame) -> None:
    raise interrupts.raised(KeyboardInterrupt())


def install() -> None:
    """Handle SIGTERM and SIGHUP, unless they are ignored (``nohup`` stays in force), and
    Ctrl-C as Python does; each interrupt raised is recorded (see llmsetup/interrupts.py)."""
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _raise)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupt)
    sys.unraisablehook = _quiet_about_interrupts


_default_unraisablehook = sys.unraisablehook


def _quiet_about_interrupts(unraisable) -> None:
    """An interrupt that CPython dropped inside an at-fork hook is raised again by
    llmsetup.proc, so its "Exception ignored ... Traceback" print would only mislead."""
    if interrupts.is_recorded(unraisable.exc_value):
        return
    _default_unraisablehook(unraisable)
