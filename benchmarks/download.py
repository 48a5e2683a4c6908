"""Benchmark: llmsetup download vs huggingface_hub vs curl, on loopback, in one run.

A loopback server (tests/download_server.py) serves one 300 MB safetensors file through
the HF API subset. Twice: with every connection capped at 20 MB/s (what many mirrors do),
and uncapped. In each, three clients fetch the same file into fresh folders:

- ``llmsetup download`` (the real CLI, a subprocess; default settings, sha256 verified);
- ``huggingface_hub.snapshot_download`` pointed at the server through ``endpoint=``;
- ``curl`` on the resolve URL: one stream, no verification (and, for the same work as
  llmsetup, ``sha256sum`` of its file afterwards, timed apart).

Every result is checked against the file's sha256, and the script prints wall-clock times
and the ratios, and the CPU time each client and the server used (on loopback the CPU
is the limit). Targets (issue 4): capped, llmsetup at least 6x faster than
huggingface_hub; uncapped, llmsetup's throughput within 10% of curl's, verification
included. Not a test: run it by hand,
``python benchmarks/download.py [--size-mb N] [--repeat N] [--only uncapped|capped]``.
On a machine shared with other jobs, each run also records how much CPU the rest of the
machine used meanwhile (Linux): on loopback a client that needs both cores (llmsetup:
one receives and writes, one hashes) is slowed more by a busy neighbour than curl.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.download_server import FixtureServer  # noqa: E402

REPO = "bench/model"
CAP = 20_000_000  # bytes/s per connection


def make_weights(size: int) -> bytes:
    # Random bytes (not zeros): no layer can cheat by compressing them.
    chunks, left = [], size
    while left:
        n = min(left, 16 << 20)
        chunks.append(os.urandom(n))
        left -= n
    return b"".join(chunks)


def clean_env(work: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "LLMSETUP_"))}
    env.update({"HF_ENDPOINT": url, "HF_HOME": str(work / "hf-home"),
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "LLMSETUP_HOME": str(work / "llmsetup-home"),
                "LLMSETUP_CONFIG": str(work / "llmsetup-home" / "config.yaml")})
    return env


#: CPU seconds of the last timed client, of the server (this process's threads), and of
#: everything else on the machine meanwhile (other jobs).
CPU: dict[str, float] = {}


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _machine_busy() -> float:
    """CPU seconds every core has spent busy since boot (0 where /proc/stat is absent)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    # Start every client with no dirty pages from the one before, so that none of them
    # pays for another's disk writes.
    os.sync()
    client, server = _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF)
    busy = _machine_busy()
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    CPU["client"] = _cpu(resource.RUSAGE_CHILDREN) - client
    CPU["server"] = _cpu(resource.RUSAGE_SELF) - server  # the server threads; main waits
    CPU["others"] = max(0.0, _machine_busy() - busy - CPU["client"] - CPU["server"])
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def check(path: Path, want: str) -> None:
    """The client's file must be the right one; then it is removed to free the disk."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(16 << 20):
            h.update(chunk)
    if h.hexdigest() != want:
        raise SystemExit(f"{path}: wrong content")
    path.unlink()


def run_llmsetup(work: Path, env: dict, label: str) -> tuple[float, float, int]:
    """Wall-clock, the run's own seconds (no process start-up), connections it used."""
    out = work / f"llmsetup-{label}"
    seconds, stdout = timed([sys.executable, "-m", "llmsetup", "download", REPO, "--source",
                             "hf", "--models-dir", str(out), "--json"], env)
    run = json.loads(stdout)["run"]
    # (before the connection ramp, every connection opened: "connections")
    return seconds, run["seconds"], run.get("connections_used", run["connections"])


def run_hf(work: Path, env: dict, url: str, label: str) -> float:
    out = work / f"hf-{label}"
    code = ("import sys; from huggingface_hub import snapshot_download; "
            "snapshot_download(sys.argv[1], local_dir=sys.argv[2], endpoint=sys.argv[3])")
    seconds, _ = timed([sys.executable, "-c", code, REPO, str(out), url], env)
    return seconds


def run_curl(work: Path, env: dict, url: str, label: str) -> tuple[float, float, float]:
    """curl's wall-clock and transfer time, and the time of ``sha256sum`` afterwards."""
    out = work / f"curl-{label}.safetensors"
    seconds, stdout = timed(["curl", "-sS", "--fail", "-o", str(out), "-w", "%{time_total}",
                             f"{url}/{REPO}/resolve/main/model.safetensors"], env)
    start = time.perf_counter()  # the page cache still holds the file, as after a download
    subprocess.run(["sha256sum", str(out)], check=True, capture_output=True)
    return seconds, float(stdout.strip()), time.perf_counter() - start


def one_round(server: FixtureServer, work: Path, size: int, want: str, label: str,
              repeat: int) -> dict:
    """Each client ``repeat`` times, interleaved; the median of each measure."""
    env = clean_env(work, server.url)
    runs: dict[str, list[float]] = {}

    def add(keys: tuple[str, ...], values: tuple, name: str) -> None:
        for key, value in zip(keys, values, strict=True):
            runs.setdefault(key, []).append(value)
        runs.setdefault(f"{name}_cpu", []).append(round(CPU["client"], 3))
        runs.setdefault(f"{name}_server_cpu", []).append(round(CPU["server"], 3))
        runs.setdefault(f"{name}_others_cpu", []).append(round(CPU["others"], 3))

    for i in range(repeat):
        tag = f"{label}{i}"
        add(("llmsetup", "llmsetup_transfer", "llmsetup_connections"),
            run_llmsetup(work, env, tag), "llmsetup")
        check(work / f"llmsetup-{tag}" / REPO / "model.safetensors", want)
        add(("huggingface_hub",), (run_hf(work, env, server.url, tag),), "huggingface_hub")
        check(work / f"hf-{tag}" / "model.safetensors", want)
        add(("curl", "curl_transfer", "sha256sum"), run_curl(work, env, server.url, tag),
            "curl")
        check(work / f"curl-{tag}.safetensors", want)
    results = {key: statistics.median(values) for key, values in runs.items()}
    results["runs"] = runs
    for name in ("llmsetup", "huggingface_hub", "curl"):
        results[f"{name}_MBps"] = size / results[name] / 1e6
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each client per setting; the median is reported")
    parser.add_argument("--only", choices=("capped", "uncapped"),
                        help="run one setting only")
    args = parser.parse_args()
    if not shutil.which("curl"):
        raise SystemExit("curl is needed for this benchmark")
    size = args.size_mb * 1_000_000
    weights = make_weights(size)
    want = hashlib.sha256(weights).hexdigest()
    import huggingface_hub

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, huggingface_hub {huggingface_hub.__version__}")
    print(f"file: {size / 1e6:.0f} MB safetensors on loopback (127.0.0.1); "
          f"median of {args.repeat} run(s) per client; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    capped = uncapped = None
    with tempfile.TemporaryDirectory(prefix="llmsetup-bench-") as tmp, FixtureServer() as server:
        server.add_repo(REPO, {"config.json": b'{"model_type": "llama"}',
                               "model.safetensors": weights})
        server.repos[REPO].sha256("model.safetensors")  # hash once, before timing
        work = Path(tmp)
        if args.only != "uncapped":
            server.rate = CAP
            capped = one_round(server, work, size, want, "capped", args.repeat)
        if args.only != "capped":
            server.rate = None
            uncapped = one_round(server, work, size, want, "uncapped", args.repeat)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("\nall runs (s; CPU seconds):", json.dumps(
        {"capped": capped and capped["runs"], "uncapped": uncapped and uncapped["runs"]}))
    if capped:
        print_capped(capped)
    if uncapped:
        print_uncapped(uncapped, size)


def print_cpu(results: dict) -> None:
    print("  CPU seconds during each run (median; the client process / the loopback server's "
          "threads / the machine's other jobs):")
    for name in ("llmsetup", "huggingface_hub", "curl"):
        runs = results["runs"]
        print(f"    {name:16} {statistics.median(runs[f'{name}_cpu']):.2f} / "
              f"{statistics.median(runs[f'{name}_server_cpu']):.2f} / "
              f"{statistics.median(runs[f'{name}_others_cpu']):.2f}")


def print_capped(capped: dict) -> None:
    print(f"\n[capped: {CAP / 1e6:.0f} MB/s per connection]   wall-clock seconds (MB/s)")
    for name in ("llmsetup", "huggingface_hub", "curl"):
        print(f"  {name:16} {capped[name]:7.2f} s  ({capped[f'{name}_MBps']:6.1f} MB/s)")
    print(f"  llmsetup is {capped['huggingface_hub'] / capped['llmsetup']:.1f}x faster than "
          f"huggingface_hub (target >= 6x) and {capped['curl'] / capped['llmsetup']:.1f}x "
          "faster than curl")
    print(f"  llmsetup opened {statistics.median(capped['runs']['llmsetup_connections']):.0f} "
          "connection(s)")
    print_cpu(capped)


def print_uncapped(uncapped: dict, size: int) -> None:
    print("\n[uncapped]   wall-clock seconds (MB/s)")
    for name in ("llmsetup", "huggingface_hub", "curl"):
        print(f"  {name:16} {uncapped[name]:7.2f} s  ({uncapped[f'{name}_MBps']:6.1f} MB/s)")
    ours = size / uncapped["llmsetup_transfer"] / 1e6
    theirs = size / uncapped["curl_transfer"] / 1e6
    print(f"  transfer only (without process start-up): llmsetup {ours:.0f} MB/s with sha256 "
          f"verified ({uncapped['llmsetup_transfer']:.2f} s), curl {theirs:.0f} MB/s unverified "
          f"({uncapped['curl_transfer']:.2f} s)")
    print(f"  llmsetup/curl throughput: {ours / theirs:.2f} (target >= 0.90) transfer only; "
          f"{uncapped['curl'] / uncapped['llmsetup']:.2f} wall-clock")
    both = uncapped["curl"] + uncapped["sha256sum"]
    print(f"  curl followed by sha256sum (the same work: fetch and verify): {both:.2f} s; "
          f"llmsetup/that throughput {both / uncapped['llmsetup']:.2f} wall-clock")
    print(f"  llmsetup opened "
          f"{statistics.median(uncapped['runs']['llmsetup_connections']):.0f} connection(s)")
    print_cpu(uncapped)


if __name__ == "__main__":
    main()
