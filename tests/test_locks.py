"""Every recipe profile ships a lock that covers its pins and matches the recipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from llmsetup.recipes import Catalog

ROOT = Path(__file__).resolve().parent.parent


def _lock_lines(path: Path) -> dict[str, list[str]]:
    """Package name -> the versions the lock pins (one per marker branch)."""
    pins: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = next(iter(req.specifier))
        assert spec.operator == "==", f"{path.name}: {line} is not an exact pin"
        pins.setdefault(req.name.lower(), []).append(spec.version)
    return pins


PROFILES = [(r, p) for r in Catalog().all() for p in r.profiles]


@pytest.mark.parametrize(("recipe", "profile"), PROFILES,
                         ids=[f"{r.name}:{p}" for r, p in PROFILES])
def test_lock_covers_the_profile(recipe, profile):
    lock = recipe.lock_path(profile)
    assert lock is not None and lock.is_file(), f"{recipe.name}:{profile} has no lock"
    locked = _lock_lines(lock)
    assert len(locked) >= len(recipe.profiles[profile])
    for pin in recipe.profiles[profile]:
        req = Requirement(pin)
        versions = locked.get(req.name.lower())
        assert versions, f"{lock.name} does not pin {req.name}"
        for version in versions:
            assert req.specifier.contains(version, prereleases=True), (pin, version)
    header = lock.read_text().splitlines()[1]
    assert header == "# pins: " + " ".join(recipe.profiles[profile])


def test_book_locks_hold_the_book_era_versions():
    """The reason locks exist: the book's pins alone now pull numpy 2 under torch 2.0.1."""
    gemma = _lock_lines(Catalog().get("gemma-2b").lock_path("book"))
    assert gemma["numpy"] == ["1.26.4"]
    assert gemma["datasets"] == ["2.18.0"] and gemma["pyarrow"] == ["15.0.0"]
    assert gemma["huggingface-hub"] == ["0.21.3"] and gemma["safetensors"] == ["0.4.2"]


def test_lock_script_check_passes():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "lock.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
