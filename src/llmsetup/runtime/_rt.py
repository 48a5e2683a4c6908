"""The protocol and helpers shared by the runtime modules (standard library only at import).

Protocol: every message to the host is one JSON object on one line of the events stream
(stdout, or the file descriptor given by ``--events-fd`` when the module owns the
terminal). Each has ``event``: ``start``, ``torch``, ``progress``, ``token``, ``result``,
``error``. An ``error`` carries ``code`` (a stable identifier the host maps to advice),
``message`` and ``hint``; the process then exits with status 1 (failed check) or 2 (bad
input).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from contextlib import contextmanager

if __package__:
    from . import _i18n
else:
    import _i18n

# Fixed hints are marked with N_ for the catalog: the JSON event carries them in English,
# and the host shows them in the user's language (host/runner.py).
N_ = _i18n.N_

PROTOCOL = 1
_stream = sys.stdout


def set_events_fd(fd: int | None) -> None:
    """Send events to ``fd`` instead of stdout (for modules that own the terminal)."""
    global _stream
    if fd is not None:
        _stream = os.fdopen(fd, "w", buffering=1, encoding="utf-8")


def emit(event: str, **fields) -> None:
    _stream.write(json.dumps({"event": event, **fields}, ensure_ascii=False, default=str) + "\n")
    _stream.flush()


def log(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


class Failure(Exception):
    """A failure with a stable code for the host."""

    def __init__(self, code: str, message: str, hint: str | None = None, exit_code: int = 1):
        super().__init__(message)
        self.code, self.message, self.hint, self.exit_code = code, message, hint, exit_code


def run_main(main, argv=None) -> int:
    """Run ``main(argv)``; report a :class:`Failure` or an out-of-memory as an error event."""
    try:
        main(argv)
        return 0
    except Failure as exc:
        emit("error", code=exc.code, message=exc.message, hint=exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        emit("error", code="interrupted", message="interrupted", hint=None)
        return 130
    except Exception as exc:  # classify what we know, pass the rest on as it is
        failure = classify(exc)
        if failure is None:
            raise
        emit("error", code=failure.code, message=failure.message, hint=failure.hint)
        return failure.exit_code


def classify(exc: BaseException) -> Failure | None:
    """Known library errors, turned into :class:`Failure`."""
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if "outofmemoryerror" in low.replace(" ", "") or "cuda out of memory" in low:
        return Failure("oom", f"out of GPU memory: {str(exc).splitlines()[0][:300]}")
    if "bitsandbytes" in low and ("cuda" in low or "gpu" in low):
        return Failure("bnb-no-cuda", f"bitsandbytes could not use the GPU: {text[:300]}",
                       N_("Install a bitsandbytes build that matches your CUDA, or use --device cpu "
                          "with a bitsandbytes that has a CPU backend (0.44 and later)."))
    if "gated repo" in low or ("401" in low and "huggingface" in low):
        return Failure("gated", f"the model is gated: {text[:300]}",
                       N_("Accept its licence on the hub and set HF_TOKEN, or use a public copy."))
    return None


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in ("torch", "transformers", "accelerate", "bitsandbytes", "tokenizers"):
        mod = sys.modules.get(name)
        if mod is None:
            try:
                from importlib.metadata import version

                found[name] = version(name)
            except Exception:  # not installed
                found[name] = None
        else:
            found[name] = getattr(mod, "__version__", None)
    return found


def version_at_least(have: str, want: str) -> bool:
    """``have >= want`` by PEP 440 (``2.1.0+cu118`` >= ``2.1``); packaging comes with
    transformers, so every model environment has it."""
    from packaging.version import Version

    return Version(have) >= Version(want)


def transformers_at_least(text: str) -> bool:
    import transformers

    return version_at_least(transformers.__version__, text)


def torch_info() -> dict:
    """torch, CUDA and each GPU as torch sees them."""
    import torch

    info = {
        "torch": torch.__version__,
        "cuda_version": torch.version.cuda,
        "cuda_available": bool(torch.cuda.is_available()),
        "gpus": [],
        "arch_list": [],
    }
    if info["cuda_available"]:
        try:
            info["arch_list"] = list(torch.cuda.get_arch_list())
        except Exception:
            info["arch_list"] = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            info["gpus"].append({
                "index": i, "name": props.name,
                "memory_total_gb": round(props.total_memory / 1024**3, 1),
                "compute_capability": f"{props.major}.{props.minor}",
            })
    return info


def resolve_device(requested: str) -> str:
    """``auto`` becomes ``cuda`` when a GPU is usable, else ``cpu``; ``cuda`` is checked."""
    import torch

    requested = (requested or "auto").lower()
    if requested == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        raise Failure(
            "cuda-missing",
            "CUDA is not available to torch " + ("(this torch is a CPU-only build)"
                                                 if torch.version.cuda is None else
                                                 f"(built for CUDA {torch.version.cuda})"),
            N_("Run `llmsetup doctor` to see the GPU and driver; use --device cpu to run on the "
               "CPU anyway (slow)."),
        )
    return "cpu"


def rss_peak_mb() -> float | None:
    """Peak resident memory of this process in MB (None where the OS does not say)."""
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 1024 if sys.platform != "darwin" else peak / 1024**2, 1)


@contextmanager
def peak_memory(device: str, torch: bool = True):
    """Measure peak memory during the block; the dict it yields is filled on exit.

    ``torch=False`` (an engine that does not use torch): the process's peak RSS only.
    """
    cuda = None
    if torch and device == "cuda":
        import torch as cuda_torch

        cuda = cuda_torch.cuda
        cuda.reset_peak_memory_stats()
    result: dict = {}
    try:
        yield result
    finally:
        if cuda is not None:
            result["peak_gpu_memory_mb"] = round(cuda.max_memory_allocated() / 1024**2, 1)
        result["peak_rss_mb"] = rss_peak_mb()


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start
