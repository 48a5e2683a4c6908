"""When to open more connections: only when the ones working are slower than a fast link.

The first connection starts alone; the others open as soon as it proves slower than
``fast_link`` (after ``probe_s``, or at any later moment). Mirrors that cap each
connection, and most real links, get every connection within a few hundredths of a
second; a link on which one connection already runs faster than that (a LAN, a local
mirror, loopback) keeps one, because there the CPU is the limit (every byte is received,
written and hashed) and each extra connection costs CPU: more threads, and bytes
written ahead of the hashed prefix must be read back to be hashed.
"""

from __future__ import annotations

from llmsetup.download.engine_config import EngineConfig
from llmsetup.download.scheduler import Scheduler


class RampJudge:
    """Measures the rate of the admitted connections in windows and opens the rest."""

    def __init__(self, config: EngineConfig, scheduler: Scheduler, now: float) -> None:
        self.config = config
        self.sched = scheduler
        self._since, self._before, self._window = now, 0, config.probe_s

    @property
    def ramping(self) -> bool:
        """Whether some connections are still waiting to be opened."""
        return self.sched.admitted < self.sched.connections

    def wait_s(self) -> float:
        """How long the main loop may sleep before it should look again."""
        cfg = self.config
        return min(cfg.progress_s, cfg.probe_s) if self.ramping else cfg.progress_s

    def tick(self, now: float, flowed: int) -> None:
        """Judge the window that ends now, if it is over."""
        if not self.ramping or now - self._since < self._window:
            return
        assert self.config.fast_link is not None
        if (flowed - self._before) / (now - self._since) < self.config.fast_link:
            self.sched.admit_all()
        # Later windows are longer: a short pause of a fast connection is no reason.
        self._since, self._before = now, flowed
        self._window = max(self.config.probe_s, self.config.progress_s)
