#!/usr/bin/env python3
"""CLI start-up: ``llmsetup --help``, ``list`` and ``--version`` against
``python -c "import typer, rich"`` (the same interpreter), interleaved in one run.

    python benchmarks/cli_start.py [--rounds 40]

Each round runs every command once, in a shuffled order, so that load from other jobs on
a shared machine falls on all of them alike; the script prints the median of each, its
spread (25th-75th percentile), and two ratios to the baseline: median over median, and
the median of the per-round ratios (each command against the baseline of its own round,
which cancels load that comes and goes; the verdict uses it). Target (issue 8): within
1.5x of importing typer and rich. Then each command in Chinese (``LLMSETUP_LANG=zh``)
against the same command in English, round by round: target (issue 17) within 1.1x.

Before timing, it checks the host's import graph with ``-X importtime`` for ``--help``,
``list``, ``show gemma-2b`` and ``doctor``: the host CLI must never import the ML stack
(torch, transformers, ...). If one does, it prints the chain of imports that pulled it in
and exits with status 1. It also says which commands import pydantic: typer 0.29 and later
do on every command with parameters (see docs/performance.md and pyproject.toml).

To compare another typer, put it first on the path: ``pip install --target DIR
typer==X --no-deps`` then ``PYTHONPATH=DIR python benchmarks/cli_start.py``.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from importlib.metadata import version

from _common import interleaved, llmsetup_cmd, spread, temp_home

# The ML stack lives in the model's environment, never in the host CLI's process.
FORBIDDEN = ("torch", "transformers", "accelerate", "bitsandbytes", "tokenizers", "safetensors")
GRAPH_COMMANDS = [["--help"], ["list"], ["show", "gemma-2b"], ["doctor"]]


def imported_modules(argv: list[str]) -> list[tuple[int, str]]:
    """(depth, module) for each import of ``llmsetup ARGV``, in ``-X importtime`` order."""
    cmd = llmsetup_cmd()
    if cmd[0] != sys.executable:  # the console script: run it by this interpreter
        cmd = [sys.executable, *cmd]
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:], *argv], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        errors = "\n".join(line for line in proc.stderr.splitlines()
                           if not line.startswith("import time:"))
        sys.exit(f"llmsetup {' '.join(argv)} failed ({proc.returncode}):\n{errors[-2000:]}")
    found = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        name = line.split("|")[2]
        found.append(((len(name) - len(name.lstrip())) // 2, name.strip()))
    return found


def chain(modules: list[tuple[int, str]], index: int) -> list[str]:
    """The modules whose import pulled in ``modules[index]``, outermost first.

    importtime prints a module after everything it imported, one indent level deeper."""
    depth, name = modules[index]
    out = [name]
    for d, parent in modules[index + 1:]:
        if d < depth:
            out.append(parent)
            depth = d
    return out[::-1]


def check_import_graph() -> None:
    failures = []
    for argv in GRAPH_COMMANDS:
        modules = imported_modules(argv)
        names = [n for _, n in modules]
        bad = [i for i, n in enumerate(names) if n.split(".")[0] in FORBIDDEN]
        pydantic = any(n.split(".")[0] == "pydantic" for n in names)
        print(f"  llmsetup {' '.join(argv):<16} {len(names):4d} modules, "
              f"pydantic {'yes' if pydantic else 'no '}, ML stack "
              f"{'YES' if bad else 'none'}")
        for i in bad[:3]:
            failures.append(f"llmsetup {' '.join(argv)} imports {names[i]}: "
                            + " -> ".join(chain(modules, i)))
    if failures:
        print("\nFAIL: the host CLI imports the ML stack:", *failures, sep="\n  ",
              file=sys.stderr)
        sys.exit(1)


def run_once(argv: list[str], lang: str | None = None) -> float:
    env = None if lang is None else {**os.environ, "LLMSETUP_LANG": lang}
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{argv} failed ({proc.returncode}): {proc.stderr.decode()[-1000:]}")
    return elapsed


def measure(commands: dict[str, list[str] | tuple[list[str], str]], rounds: int,
            seed: int) -> dict[str, list[float]]:
    """``commands``: name -> argv, or (argv, language) to run it with LLMSETUP_LANG set."""
    runs = {name: (spec if isinstance(spec, tuple) else (spec, None))
            for name, spec in commands.items()}
    for argv, lang in runs.values():  # warm-up: the OS file cache, the recipe index cache
        run_once(argv, lang)
    return interleaved({name: lambda a=argv, la=lang: run_once(a, la)
                        for name, (argv, lang) in runs.items()}, rounds, seed)


def report(times: dict[str, list[float]], baseline: str, target: float) -> bool:
    """Print the table; True when every llmsetup command is within ``target``.

    The verdict uses the per-round ratio: each run against the baseline of its own round,
    moments apart, so that a load that comes and goes cancels out. Both ratios agree on a
    quiet machine; under load the median over median drifts with whatever ran when."""
    base = times[baseline]
    base_med = statistics.median(base)
    ok = True
    print(f"\n  {'command':<28} {'median':>8} {'p25-p75':>15} {'ratio':>6} {'per-round':>18}")
    for name, values in times.items():
        med = statistics.median(values)
        lo, hi = spread(values)
        paired = [v / b for v, b in zip(values, base, strict=True)]
        plo, phi = spread(paired)
        line = (f"  {name:<28} {med * 1000:6.1f}ms {lo * 1000:6.1f}-{hi * 1000:5.1f}ms "
                f"{med / base_med:5.2f}x {statistics.median(paired):5.2f}x "
                f"({plo:.2f}-{phi:.2f})")
        if name != baseline and name != "python -c pass":
            met = statistics.median(paired) <= target
            ok = ok and met
            line += "  ok" if met else f"  OVER {target}x"
        print(line)
    return ok


def compile_llmsetup() -> str:
    """Write llmsetup's bytecode, as pip does when it installs the wheel.

    An editable checkout run with PYTHONDONTWRITEBYTECODE=1 (as on this project's
    machines) would otherwise compile every llmsetup module from source at each start:
    about 10 ms more, which no installed copy pays."""
    spec = importlib.util.find_spec("llmsetup")
    assert spec is not None and spec.origin is not None
    package = os.path.dirname(spec.origin)
    if not compileall.compile_dir(package, quiet=1):
        sys.exit(f"could not compile {package}")
    return package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=1.5)
    parser.add_argument("--lang-target", type=float, default=1.1)
    args = parser.parse_args()
    package = compile_llmsetup()
    print(f"Python {sys.version.split()[0]}, typer {version('typer')}, rich {version('rich')}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}\n"
          f"llmsetup from {package} (bytecode compiled)")
    with temp_home():
        run_once([*llmsetup_cmd(), "list"])  # builds the recipe index cache, as any first run
        print("\nImport graph (-X importtime, recipe index cached):")
        check_import_graph()
        llmsetup = llmsetup_cmd()
        commands = {
            'python -c "import typer, rich"': [sys.executable, "-c", "import typer, rich"],
            "llmsetup --help": ([*llmsetup, "--help"], "en"),
            "llmsetup list": ([*llmsetup, "list"], "en"),
            "llmsetup --version": ([*llmsetup, "--version"], "en"),
            "python -c pass": [sys.executable, "-c", "pass"],
            # The Chinese interface (issue 17): the catalog is read on the first message.
            "zh: llmsetup --help": ([*llmsetup, "--help"], "zh"),
            "zh: llmsetup list": ([*llmsetup, "list"], "zh"),
            "zh: llmsetup install --help": ([*llmsetup, "install", "--help"], "zh"),
            "llmsetup install --help": ([*llmsetup, "install", "--help"], "en"),
        }
        times = measure(commands, args.rounds, args.seed)
    print(f"\nStart-up, {args.rounds} interleaved rounds (ratio: median over the baseline's "
          f"median; per-round: median and p25-p75 of each round's ratio, the verdict):")
    ok = report(times, 'python -c "import typer, rich"', args.target)
    print(f"\n  load average after: {os.getloadavg()[0]:.2f}; "
          f"{'all within' if ok else 'NOT all within'} {args.target}x")
    ok_zh = report_languages(times, args.lang_target)
    print(f"  Chinese start {'within' if ok_zh else 'NOT within'} {args.lang_target}x of English")


def report_languages(times: dict[str, list[float]], target: float) -> bool:
    """Each command in Chinese against the same command in English, round by round."""
    print(f"\nChinese against English (per-round ratio, target {target}x):")
    ok = True
    for name, values in times.items():
        if not name.startswith("zh: "):
            continue
        english = times[name[len("zh: "):]]
        paired = [z / e for z, e in zip(values, english, strict=True)]
        lo, hi = spread(paired)
        met = statistics.median(paired) <= target
        ok = ok and met
        print(f"  {name[4:]:<28} {statistics.median(values) * 1000:6.1f}ms vs "
              f"{statistics.median(english) * 1000:6.1f}ms  {statistics.median(paired):5.2f}x "
              f"({lo:.2f}-{hi:.2f})  {'ok' if met else 'OVER'}")
    return ok


if __name__ == "__main__":
    main()
