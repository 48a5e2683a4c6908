"""The torch/CUDA check, run inside the model's environment.

Like the book's ``python -c "import torch; print(torch.cuda.is_available())"``, but it
reports the torch and CUDA versions and each GPU, and when CUDA is missing it says why:
a CPU-only wheel, a driver too old for the wheel's CUDA, or a GPU newer than the wheel has
kernels for.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess

if __package__:
    from . import _i18n, _rt
else:
    import _i18n
    import _rt

# Fixed hints are marked with N_ for the catalog: the JSON event carries them in English,
# and the host shows them in the user's language (host/runner.py).
N_ = _i18n.N_


def nvidia_smi_gpus() -> list[dict]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,compute_cap",
             "--format=csv,noheader"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    gpus = []
    for line in proc.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2:
            gpus.append({"name": parts[0], "driver": parts[1],
                         "compute_capability": parts[2] if len(parts) > 2 else None})
    return gpus


def diagnose(info: dict, smi: list[dict]) -> tuple[str, str]:
    """Why CUDA is not available: (message, hint)."""
    if info["cuda_version"] is None:
        return ("torch " + info["torch"] + " is a CPU-only build",
                N_("Reinstall with a CUDA build of torch (the recipe's profile pins one; check the "
                   "mirror did not serve a +cpu wheel), or rerun the same command with --cpu to run "
                   "on the CPU."))
    if not smi:
        return (f"torch is built for CUDA {info['cuda_version']} but no NVIDIA GPU or driver "
                "was found (nvidia-smi is missing or lists no GPU)",
                N_("Install the NVIDIA driver, or rerun the same command with --cpu to run on "
                   "the CPU."))
    for gpu in smi:
        cc = gpu.get("compute_capability")
        if cc and _rt.version_at_least(cc, "10") and not _rt.version_at_least(info["torch"], "2.7"):
            return (f"{gpu['name']} (compute capability {cc}) is newer than torch "
                    f"{info['torch']} supports",
                    N_("Install with --profile modern (a torch that knows this GPU)."))
    driver = smi[0].get("driver", "?")
    return (f"the NVIDIA driver {driver} is too old for torch's CUDA {info['cuda_version']}",
            N_("Update the driver, or use a profile whose torch is built for an older CUDA."))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--require-cuda", action="store_true")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise _rt.Failure("no-torch", f"torch cannot be imported: {exc}",
                          N_("The requirements step did not finish; rerun `llmsetup install`.")) from None
    info = _rt.torch_info()
    info["versions"] = _rt.versions()
    if not info["cuda_available"]:
        info["diagnosis"], info["hint"] = diagnose(info, nvidia_smi_gpus())
    _rt.emit("torch", **info)
    if args.require_cuda and not info["cuda_available"]:
        raise _rt.Failure("cuda-missing", "CUDA is not available: " + info["diagnosis"],
                          info["hint"])
    _rt.emit("result", ok=True, **{k: info[k] for k in ("torch", "cuda_available")})


if __name__ == "__main__":
    raise SystemExit(_rt.run_main(main))
