"""Helpers shared by the benchmark scripts: timing, temporary homes, printing ratios."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.wheels


def llmsetup_cmd() -> list[str]:
    script = Path(sys.executable).parent / "llmsetup"
    return [str(script)] if script.exists() else [sys.executable, "-m", "llmsetup"]


@contextmanager
def temp_home():
    """A throwaway LLMSETUP_HOME and models dir, set in os.environ for the block."""
    with tempfile.TemporaryDirectory(prefix="llmsetup-bench-") as tmp:
        old = {k: os.environ.get(k) for k in ("LLMSETUP_HOME", "LLMSETUP_MODELS_DIR",
                                              "LLMSETUP_CONFIG")}
        os.environ["LLMSETUP_HOME"] = str(Path(tmp) / "home")
        os.environ["LLMSETUP_MODELS_DIR"] = str(Path(tmp) / "models")
        os.environ["LLMSETUP_CONFIG"] = str(Path(tmp) / "home" / "config.yaml")
        try:
            yield Path(tmp)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def timed(argv: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   **kwargs)
    return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], float]], rounds: int,
                seed: int = 0) -> dict[str, list[float]]:
    """Each of ``fns`` once per round, in a new shuffled order each round.

    On a machine shared with other jobs, load comes and goes: measuring one setting after
    the other would pin a passing load on one of them; interleaved, it falls on all alike.
    """
    rng = random.Random(seed)
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            times[name].append(fns[name]())
    return times


def spread(values: list[float]) -> tuple[float, float]:
    """The 25th and 75th percentiles (the whole range for fewer than 4 values)."""
    if len(values) < 4:
        return min(values), max(values)
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def report(title: str, rows: list[tuple[str, float | list[float]]], baseline: str,
           unit: str = "s") -> None:
    """Print each measurement (the median of a list, with its spread) and its ratio to the
    baseline row's."""
    medians = {name: statistics.median(v) if isinstance(v, list) else v for name, v in rows}
    base = medians[baseline]
    print(f"\n{title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        extra = ""
        if isinstance(value, list):
            lo, hi = spread(value)
            extra = f"  (p25-p75 {lo:.3f}-{hi:.3f})"
        print(f"  {name:<{width}}  {medians[name]:8.3f} {unit}   "
              f"{medians[name] / base:6.2f}x of {baseline}{extra}")
