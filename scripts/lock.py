#!/usr/bin/env python3
"""Write the lock (constraints) files under recipes/locks/ from the recipes' profiles.

Every recipe profile names a lock in its ``locks:`` mapping; recipes that share pins share a
lock. Each lock is resolved by ``uv pip compile --universal`` (valid for every Python from
the recipe's version up and every platform, with markers) with a date bound: the book's
profiles resolve as of the book's era, because the book's direct pins alone now resolve to
broken sets (numpy 2 under torch 2.0.1, datasets 5 under trl 0.7.11). The installer then
uses the lock with ``-c`` from any mirror and needs no date filter (mirrors often lack the
upload times that such filters need).

    python scripts/lock.py            # write every lock
    python scripts/lock.py gemma.book # write one
    python scripts/lock.py --check    # fail if a lock does not match its recipes' pins
    python scripts/lock.py text-generation-webui.book --webui-dir ~/text-generation-webui

The text-generation-webui locks resolve the webui's requirements.txt at the recipe's commit,
trimmed at the recipe's cut-off line, plus the webui profile's pins and constraints; they
need a checkout of the webui (``--webui-dir``) that contains that commit.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from llmsetup.recipes import Catalog  # noqa: E402

# "Resolved as of" per lock: the book's profiles use the dates of the book's era.
DATES = {
    "gemma.book": "2024-03-01",
    "llama-2.book": "2024-03-10",
    "whisper.book": "2024-03-15",
    "text-generation-webui.book": "2024-03-10",
}
MODERN_DATE = "2026-11-26"
# The versions the test suite runs (its torch is the local CPU build of 2.13.0): modern locks
# resolve within them, so that what is tested is what users get.
TESTED = ["torch==2.13.0", "transformers==5.24.0", "tokenizers==0.23.3", "accelerate==1.15.0"]
# The webui's modern profile keeps the rest of the webui's world at its commit date and lets
# only torch and what comes with it be current.
TORCH_FAMILY = ["torch", "torchvision", "triton", "sympy", "setuptools", "cuda-toolkit",
                "cuda-bindings", "cuda-pathfinder", "nvidia-cublas", "nvidia-cuda-cupti",
                "nvidia-cuda-nvrtc", "nvidia-cuda-runtime", "nvidia-cudnn-cu13", "nvidia-cufft",
                "nvidia-cufile", "nvidia-curand", "nvidia-cusolver", "nvidia-cusparse",
                "nvidia-cusparselt-cu13", "nvidia-nccl-cu13", "nvidia-nvjitlink",
                "nvidia-nvshmem-cu13", "nvidia-nvtx"]


def lock_groups() -> dict[Path, dict]:
    """Lock file -> {pins, python, recipes}, checking that sharing recipes agree."""
    groups: dict[Path, dict] = {}
    for recipe in Catalog(include_bundled=True).all():
        for profile, pins in recipe.profiles.items():
            path = recipe.lock_path(profile)
            if path is None:
                raise SystemExit(f"{recipe.name}: profile {profile} names no lock")
            python = recipe.python_version(profile)
            group = groups.setdefault(path, {"pins": pins, "python": python, "recipes": []})
            if group["pins"] != pins:
                raise SystemExit(f"{path.name}: {recipe.name} pins {pins}, others "
                                 f"{group['pins']}")
            group["python"] = min(group["python"], python,
                                  key=lambda v: tuple(map(int, v.split("."))))
            group["recipes"].append(f"{recipe.name}:{profile}")
        if recipe.webui:
            web = recipe.webui
            for profile, pins in web.profiles.items():
                path = recipe.lock_path(profile, webui=True)
                if path is None:
                    raise SystemExit(f"{recipe.name}: webui profile {profile} names no lock")
                group = groups.setdefault(path, {
                    "pins": pins, "python": web.env.profile_python.get(profile, web.env.python),
                    "recipes": [], "webui": web})
                group["recipes"].append(f"{recipe.name}:webui:{profile}")
    return groups


def header(name: str, group: dict, date: str) -> str:
    web = group.get("webui")
    source = (f"# plus text-generation-webui {web.commit} requirements.txt up to "
              f"{web.requirements_cutoff}, constraints {' '.join(web.constraints)}\n"
              if web else "")
    regenerate = f"python scripts/lock.py {name}" + (" --webui-dir DIR" if web else "")
    return (f"# llmsetup lock {name}: every transitive pin of {', '.join(group['recipes'])}\n"
            f"# pins: {' '.join(group['pins'])}\n"
            f"{source}"
            f"# python: >={group['python']} (universal), resolved as of {date}\n"
            f"# regenerate: {regenerate}\n")


def read_header_pins(path: Path) -> list[str]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# pins: "):
            return line[len("# pins: "):].split()
    return []


def webui_inputs(group: dict, webui_dir: Path | None, tmp: Path) -> list[str]:
    """Extra uv arguments for a webui lock: the trimmed requirements and constraints."""
    from llmsetup.webui.repo import trim_requirements

    web = group["webui"]
    if webui_dir is None:
        raise SystemExit("the text-generation-webui locks need --webui-dir (a checkout)")
    text = subprocess.run(["git", "-C", str(webui_dir), "show", f"{web.commit}:requirements.txt"],
                          check=True, capture_output=True, text=True).stdout
    trimmed = tmp / "webui-requirements.txt"
    trimmed.write_text(trim_requirements(text, web.requirements_cutoff))
    constraints = tmp / "webui-constraints.txt"
    constraints.write_text("\n".join(web.constraints) + "\n")
    return [str(trimmed), "-c", str(constraints)]


def compile_lock(path: Path, group: dict, webui_dir: Path | None = None) -> None:
    name = path.stem
    date = DATES.get(name, MODERN_DATE)
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.txt"
        src.write_text("\n".join(group["pins"]) + "\n")
        out = Path(tmp) / "out.txt"
        extra: list[str] = []
        if group.get("webui") is not None:
            extra += webui_inputs(group, webui_dir, Path(tmp))
            if name.endswith(".modern"):
                date = DATES["text-generation-webui.book"]
                for package in TORCH_FAMILY:
                    extra += ["--exclude-newer-package", f"{package}={MODERN_DATE}"]
        elif name.endswith(".modern"):
            tested = Path(tmp) / "tested.txt"
            tested.write_text("\n".join(TESTED) + "\n")
            extra = ["-c", str(tested)]
        subprocess.run([uv, "pip", "compile", str(src), *extra, "--universal",
                        "--python-version", group["python"], "--exclude-newer", date,
                        "--no-header", "--no-annotate", "-q", "-o", str(out)], check=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header(name, group, date) + out.read_text(), encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="locks to write (default: all)")
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    parser.add_argument("--webui-dir", type=Path, help="a text-generation-webui checkout")
    args = parser.parse_args()
    groups = lock_groups()
    bad = 0
    for path, group in sorted(groups.items()):
        if args.check:
            if not path.is_file() or read_header_pins(path) != group["pins"]:
                print(f"stale or missing: {path.relative_to(ROOT)}")
                bad += 1
            continue
        if args.names and path.stem not in args.names:
            continue
        if group.get("webui") is not None and args.webui_dir is None:
            print(f"skipped {path.name}: needs --webui-dir")
            continue
        compile_lock(path, group, args.webui_dir)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
