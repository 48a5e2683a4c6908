"""The interrupts the CLI raised (Ctrl-C, SIGTERM, SIGHUP), so that one that was swallowed
can be raised again.

With a ``preexec_fn`` CPython runs the at-fork hooks registered in Python around the fork,
and an exception that a signal handler raises inside one of them is printed ("Exception
ignored in ...") and dropped. filelock registers such hooks from 4.x on, so a Ctrl-C that
landed while a child was being started was lost, and an install went on to the end. The
CLI's handlers (``cli/_signals.py``) record each interrupt here as they raise it;
:mod:`llmsetup.proc` compares the count around every start of a child and raises the
interrupt again when it did not come through.
"""

from __future__ import annotations

_count = 0
_last: BaseException | None = None


def raised(exc: BaseException) -> BaseException:
    """Record ``exc`` (the interrupt a signal handler is about to raise) and return it."""
    global _count, _last
    _count += 1
    _last = exc
    return exc


def count() -> int:
    """How many interrupts the handlers have raised so far."""
    return _count


def raise_if_lost(seen: int) -> None:
    """Raise the last interrupt again if one was raised since ``count()`` was ``seen``
    (it would have left the caller's call, had it come through)."""
    if _count != seen and _last is not None:
        raise _last


def is_recorded(exc: BaseException | None) -> bool:
    """Whether ``exc`` is the last interrupt the handlers raised."""
    return exc is not None and exc is _last
