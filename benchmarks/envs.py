#!/usr/bin/env python3
"""Environment backends: `llmsetup install` with uv against venv, same requirements, same
local wheel folder, measured side by side in one run.

    python benchmarks/envs.py [--packages 60] [--repeat 3]

Each run creates a fresh environment and installs a recipe whose requirements are
``--packages`` generated wheels (a dependency chain, each with a little code) from a
``--find-links`` folder with ``--no-index``: no network, so only the backends differ. The
two backends take turns, in a shuffled order each round.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from _common import interleaved, llmsetup_cmd, report, temp_home, timed
from tests.wheels import make_wheel


def write_recipe(folder, count: int) -> None:
    py = "{}.{}".format(*sys.version_info[:2])
    pins = ", ".join(f"bench-pkg-{i}==1.0" for i in range(count))
    (folder / "bench-envs.yaml").write_text(
        "name: bench-envs\nkind: causal-lm\ndescription: benchmark recipe\n"
        "repo_id: bench/envs\n"
        f"env: {{name: bench-envs, python: '{py}'}}\n"
        f"profiles:\n  book: [{pins}]\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packages", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with temp_home() as tmp:
        wheels = tmp / "wheels"
        for i in range(args.packages):
            requires = [f"bench-pkg-{i + 1}==1.0"] if i + 1 < args.packages else []
            make_wheel(wheels, f"bench-pkg-{i}", "1.0", requires)
        recipes = tmp / "recipes"
        recipes.mkdir()
        write_recipe(recipes, args.packages)

        def install(backend: str) -> float:
            home = tmp / "home"
            import shutil

            shutil.rmtree(home, ignore_errors=True)
            return timed([*llmsetup_cmd(), "--recipes-dir", str(recipes), "install",
                          "bench-envs", "--env-backend", backend, "--find-links", str(wheels),
                          "--no-index", "--no-lock", "--no-cuda-check", "--no-download",
                          "--no-verify"])

        times = interleaved({backend: lambda b=backend: install(b)
                             for backend in ("venv", "uv")}, args.repeat)
    report(f"install: create env + {args.packages} wheels from a local folder "
           f"(median of {args.repeat}, interleaved)", list(times.items()), baseline="venv")
    venv_s, uv_s = (statistics.median(times[b]) for b in ("venv", "uv"))
    print(f"\n  uv is {venv_s / uv_s:.1f}x faster than venv")


if __name__ == "__main__":
    main()
