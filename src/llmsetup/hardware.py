"""What the machine has: GPUs through ``nvidia-smi``, and whether a model fits.

Never imports torch: the host learns about GPUs from ``nvidia-smi`` alone. The torch/CUDA
check inside a model's environment is a separate step of the install plan.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass

from llmsetup.i18n import _
from llmsetup.proc import Captured, capture

# The book profile's torch 2.0.1 (CUDA 11.7/11.8) has kernels up to sm_90 (Hopper); GPUs of
# compute capability 10 and later (Blackwell) need a newer torch.
BOOK_TORCH_NEWEST_UNSUPPORTED_CC = 10.0
PRECISIONS = ("fp16", "int8", "int4")
PRECISION_FLAG = {"fp16": "", "int8": "--8bit", "int4": "--4bit"}


@dataclass
class GPU:
    index: int
    name: str
    memory_total_mb: int
    memory_free_mb: int
    driver: str
    compute_capability: str | None

    @property
    def memory_total_gb(self) -> float:
        return round(self.memory_total_mb / 1024, 1)

    def as_dict(self) -> dict:
        return {**asdict(self), "memory_total_gb": self.memory_total_gb}


@dataclass
class GPUProbe:
    """The result of asking ``nvidia-smi``: the GPUs, or why there are none."""

    gpus: list[GPU]
    available: bool
    error: str | None = None

    def as_dict(self) -> dict:
        return {"available": self.available, "error": self.error,
                "gpus": [g.as_dict() for g in self.gpus]}


_FIELDS = "index,name,memory.total,memory.free,driver_version"


def _query(fields: str) -> Captured | None:
    return capture(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                   timeout=20)


def probe_gpus() -> GPUProbe:
    """GPUs as ``nvidia-smi`` reports them (name, memory, driver, compute capability)."""
    if not shutil.which("nvidia-smi"):
        return GPUProbe([], False, _("nvidia-smi not found: no NVIDIA driver, or no GPU"))
    proc = _query(_FIELDS + ",compute_cap")
    with_cc = proc is not None and proc.returncode == 0
    if proc is not None and not with_cc:  # drivers before 510 do not know compute_cap
        proc = _query(_FIELDS)
    if proc is None:
        return GPUProbe([], False,
                        _("nvidia-smi failed: it did not answer (or could not start)"))
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        if detail:
            why = _("nvidia-smi failed: {detail}").format(detail=detail[0])
        else:
            why = _("nvidia-smi failed: exit status {status}").format(status=proc.returncode)
        return GPUProbe([], False, why)
    gpus = []
    for line in proc.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 5:
            continue
        try:
            gpus.append(GPU(
                index=int(parts[0]), name=parts[1], memory_total_mb=int(float(parts[2])),
                memory_free_mb=int(float(parts[3])), driver=parts[4],
                compute_capability=parts[5] if with_cc and len(parts) > 5 else None,
            ))
        except ValueError:
            continue
    return GPUProbe(gpus, bool(gpus), None if gpus else _("nvidia-smi lists no GPU"))


def fit(need_gb: dict[str, float | None], gpus: list[GPU]) -> dict:
    """Whether each precision fits, and the book's advice (use --4bit when memory is short).

    A precision fits when the largest GPU holds it; with several GPUs, ``device_map="auto"``
    can also spread it over all of them, which is reported as ``fits_across_gpus``.
    """
    largest = max((g.memory_total_mb / 1024 for g in gpus), default=0.0)
    total = sum(g.memory_total_mb / 1024 for g in gpus)
    rows = {}
    for precision in PRECISIONS:
        need = need_gb.get(precision)
        rows[precision] = {
            "needs_gb": need,
            "fits": None if need is None or not gpus else need <= largest,
            "fits_across_gpus": None if need is None or not gpus else need <= total,
        }
    best = next((p for p in PRECISIONS if rows[p]["fits"] or rows[p]["fits_across_gpus"]), None)
    if not gpus:
        advice = _("No GPU found: models run on the CPU only (slowly); tests and the demo are "
                   "fine.")
    elif best is None:
        advice = _("Does not fit even in 4-bit: needs about {need} GB, the GPUs have {total} GB "
                   "in all.").format(need=need_gb.get("int4"), total=f"{total:.1f}")
    elif best == "fp16":
        advice = _("Fits in full precision (fp16).")
    else:
        flag = PRECISION_FLAG[best]
        advice = _("Not enough GPU memory for fp16 (needs about {need} GB, largest GPU has "
                   "{largest} GB): use {flag} (about {need_flag} GB).").format(
                       need=need_gb["fp16"], largest=f"{largest:.1f}", flag=flag,
                       need_flag=need_gb[best])
    return {"precisions": rows, "best": best, "advice": advice}


def profile_advice(gpus: list[GPU]) -> str | None:
    """Advice for GPUs newer than what the book profile's torch 2.0.1 supports."""
    for gpu in gpus:
        try:
            cc = float(gpu.compute_capability or 0)
        except ValueError:
            continue
        if cc >= BOOK_TORCH_NEWEST_UNSUPPORTED_CC:
            return _("{gpu} (compute capability {cc}) is newer than the book's torch 2.0.1 "
                     "supports: install with --profile modern.").format(
                         gpu=gpu.name, cc=gpu.compute_capability)
    return None
