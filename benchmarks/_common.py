"""Helpers shared by the benchmark scripts: timing, temporary homes, printing ratios."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
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


def median_of(fn, repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def report(title: str, rows: list[tuple[str, float]], baseline: str, unit: str = "s") -> None:
    """Print each measurement and its ratio to the baseline row."""
    base = dict(rows)[baseline]
    print(f"\n{title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value:8.3f} {unit}   {value / base:6.2f}x of {baseline}")
