"""``llmsetup doctor``: what this machine has for installing and running models."""

from __future__ import annotations

import importlib.util
import platform
import shutil
import sys
from pathlib import Path

from llmsetup import __version__
from llmsetup.hardware import fit, probe_gpus, profile_advice
from llmsetup.i18n import N_
from llmsetup.proc import capture
from llmsetup.settings import Settings, config_path

# Each tool: how to ask its version.
TOOLS = {
    "conda": ["conda", "--version"],
    "mamba": ["mamba", "--version"],
    "micromamba": ["micromamba", "--version"],
    "uv": ["uv", "--version"],
    "git": ["git", "--version"],
    "ffmpeg": ["ffmpeg", "-version"],
    "espeak-ng": ["espeak-ng", "--version"],
}

# The advice of the report stays English in the report (its --json); `llmsetup doctor`
# shows each line through _(), which finds these.
NO_ENV_TOOL = N_("No environment tool found: install uv (`pip install uv`) or conda, or use "
                 "--env-backend current.")
NO_FFMPEG = N_("ffmpeg is missing (needed for Whisper audio): `apt install ffmpeg` or "
               "`yum install ffmpeg ffmpeg-devel`.")


def _locate(program: str) -> str | None:
    """Where a tool is: found the way install finds it (uv also beside this interpreter)."""
    if program == "uv":
        from llmsetup.envs.uv import find_uv

        return find_uv()
    return shutil.which(program)


def tool_version(argv: list[str]) -> dict:
    path = _locate(argv[0])
    if not path:
        return {"found": False, "path": None, "version": None}
    proc = capture([path, *argv[1:]], timeout=15)
    first = (proc.stdout or proc.stderr).strip().splitlines() if proc else []
    version = first[0] if first else None
    return {"found": True, "path": path, "version": version}


def venv_available() -> dict:
    """The running Python can make venvs when both venv and ensurepip are present."""
    ok = all(importlib.util.find_spec(m) is not None for m in ("venv", "ensurepip"))
    return {"found": ok, "path": sys.executable if ok else None,
            "version": platform.python_version() if ok else None}


def free_disk(path: Path) -> dict:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return {"path": str(path), "measured_at": str(probe),
            "free_gb": round(usage.free / 1e9, 1), "total_gb": round(usage.total / 1e9, 1)}


def run(settings: Settings, target=None) -> dict:
    """Everything doctor reports, as one JSON-ready document."""
    tools = {name: tool_version(argv) for name, argv in TOOLS.items()}
    tools["venv"] = venv_available()
    gpu = probe_gpus()
    report: dict = {
        "llmsetup": __version__,
        "os": {"system": platform.system(), "release": platform.release(),
               "platform": platform.platform(), "machine": platform.machine()},
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "tools": tools,
        "gpu": gpu.as_dict(),
        "paths": {"home": str(settings.home), "models_dir": str(settings.models_dir),
                  "config": str(config_path()), "config_exists": config_path().is_file()},
        "disk": free_disk(settings.models_dir),
        "advice": [],
    }
    if not any(tools[t]["found"] for t in ("conda", "mamba", "micromamba", "uv")) and \
            not tools["venv"]["found"]:
        report["advice"].append(NO_ENV_TOOL)
    if not tools["ffmpeg"]["found"]:
        report["advice"].append(NO_FFMPEG)
    newer = profile_advice(gpu.gpus)
    if newer:
        report["advice"].append(newer)
    if target is not None:
        recipe = target.recipe
        need = recipe.memory_gb()
        verdict = fit(need, gpu.gpus)
        report["model"] = {"name": recipe.name, "kind": recipe.kind,
                           "model_dir": str(target.model_dir), **verdict}
        report["advice"].append(f"{recipe.name}: {verdict['advice']}")
    return report
