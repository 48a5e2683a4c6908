"""The compatibility environment: the book's transformers 4.38.1 and accelerate 0.27.2.

Runtime modules must work from the book's pins to the current release. This builds a real
virtual environment with those versions (and the local CPU torch) once per session, and
keeps it under ``.cache/compat-env`` so that local reruns reuse it. The tests that need it
request the ``compat_python`` fixture.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPAT_PINS = ["torch==2.13.0", "transformers==4.38.1", "accelerate==0.27.2",
               "tokenizers==0.15.2", "numpy==1.26.4", "pydub==0.25.1", "safetensors==0.4.2"]
COMPAT_DIR = ROOT / ".cache" / "compat-env"


def _python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


@pytest.fixture(scope="session")
def compat_python() -> str:
    from filelock import FileLock

    COMPAT_DIR.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(COMPAT_DIR) + ".lock"):  # parallel test workers build it once
        return _build()


def _build() -> str:
    marker = COMPAT_DIR / "llmsetup-compat.json"
    python = _python(COMPAT_DIR)
    if marker.is_file() and python.exists() and json.loads(marker.read_text()) == COMPAT_PINS:
        return str(python)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(COMPAT_DIR)], check=True)
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *COMPAT_PINS],
        capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"could not build the compatibility environment:\n{proc.stdout}\n{proc.stderr}")
    marker.write_text(json.dumps(COMPAT_PINS))
    return str(python)
