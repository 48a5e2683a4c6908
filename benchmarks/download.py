"""Benchmark: llmsetup download vs huggingface_hub, aria2c and curl, on loopback, in one run.

``--repo llama`` (the default): the server holds a repository shaped like Llama-2-7b's,
scaled down to about 300 MB (config.json, generation_config.json, tokenizer.json,
tokenizer.model, tokenizer_config.json with its chat template, special_tokens_map.json,
chat_template.jinja, README.md, model.safetensors.index.json and two shards in
Llama-2-7b's proportions, 9.98 : 3.50), every connection capped at 20 MB/s. Each round,
in a new shuffled order: ``llmsetup download ORG/REPO`` (the whole process),
``huggingface_hub.snapshot_download`` (the whole process), and, when installed,
``aria2c -x8 -s8`` on the same files (an input file listing the resolve URLs). It prints
medians with their spread, the most connections each client had open at once, each
one's share of the link's limit for those connections (connections x 20 MB/s), and the
ratios to aria2c and huggingface_hub. On this shape huggingface_hub fetches both shards at
once (one stream each), so a client held to 8 connections cannot beat it by more than
8 x 222 / 300 = 5.9x; aria2c opens up to 12 here (8 for a shard, 1 per other file) and
llmsetup 16 (its default; ``--connections N`` to compare at another number).

``--repo single``: the older measurement, described next.

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
    parser.add_argument("--repo", choices=("llama", "single"), default="llama",
                        help="llama: a whole repository shaped like Llama-2-7b's, capped "
                        "(default); single: one file, capped and uncapped")
    parser.add_argument("--baseline", metavar="SRC",
                        help="(--repo llama) also time the llmsetup whose package is in SRC "
                        "(a checkout's src/ folder), interleaved, as 'llmsetup-baseline'")
    parser.add_argument("--connections", type=int, metavar="N",
                        help="llmsetup download --connections N (default: its own default)")
    parser.add_argument("--load", action="store_true",
                        help="run a busy loop on one core meanwhile (another job)")
    args = parser.parse_args()
    if args.repo == "llama":
        return repo_main(args)
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


# -- a whole repository ------------------------------------------------------------------

LLAMA = "bench-org/Llama-2-7b-chat-hf"
#: Llama-2-7b's two shards (9.98 GB and 3.50 GB), scaled to 300 MB in all.
SHARDS = {"model-00001-of-00002.safetensors": 222_000_000,
          "model-00002-of-00002.safetensors": 78_000_000}
CONNECTIONS = 8
CHAT_TEMPLATE = ("{% for message in messages %}{% if message['role'] == 'user' %}"
                 "{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"
                 "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + "
                 "' ' + eos_token }}{% endif %}{% endfor %}")


def llama_files() -> dict[str, bytes]:
    """The files of a repository shaped like Llama-2-7b-chat-hf's (the shards scaled)."""
    vocab = {f"tok{i}": i for i in range(32000)}
    files = {
        "config.json": json.dumps({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
            "intermediate_size": 11008, "num_attention_heads": 32, "num_hidden_layers": 32,
            "num_key_value_heads": 32, "vocab_size": 32000, "torch_dtype": "float16",
            "max_position_embeddings": 4096, "rms_norm_eps": 1e-05}, indent=2).encode(),
        "generation_config.json": json.dumps({"bos_token_id": 1, "eos_token_id": 2,
                                              "pad_token_id": 0, "temperature": 0.6,
                                              "top_p": 0.9}).encode(),
        # tokenizer.json is 1.8 MB, tokenizer.model 0.5 MB in the real repository
        "tokenizer.json": json.dumps({"version": "1.0", "model": {
            "type": "BPE", "vocab": vocab, "merges": [f"tok{i} tok{i + 1}"
                                                      for i in range(31000)]}}).encode(),
        "tokenizer.model": os.urandom(499_723),
        "tokenizer_config.json": json.dumps({
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
            "model_max_length": 1000000000000000019884624838656,
            "tokenizer_class": "LlamaTokenizer", "chat_template": CHAT_TEMPLATE}).encode(),
        "special_tokens_map.json": json.dumps({"bos_token": "<s>", "eos_token": "</s>",
                                               "unk_token": "<unk>"}).encode(),
        "chat_template.jinja": CHAT_TEMPLATE.encode(),
        "README.md": b"# Llama 2 (benchmark stand-in)\n" + b"Random weights.\n" * 600,
    }
    weight_map = {}
    for i, (name, size) in enumerate(SHARDS.items()):
        files[name] = make_weights(size)
        for layer in range(i * 16, (i + 1) * 16):
            weight_map[f"model.layers.{layer}.self_attn.q_proj.weight"] = name
    files["model.safetensors.index.json"] = json.dumps({
        "metadata": {"total_size": sum(SHARDS.values())}, "weight_map": weight_map},
        indent=2).encode()
    return files


def check_tree(folder: Path, files: dict[str, bytes]) -> None:
    """Every file present with its content; then the folder is removed (disk space)."""
    for name, data in files.items():
        got = folder / name
        if not got.is_file() or got.stat().st_size != len(data):
            raise SystemExit(f"{got}: missing or wrong size")
        if len(data) < (1 << 20) and got.read_bytes() != data:
            raise SystemExit(f"{got}: wrong content")
    for name in SHARDS:  # the big ones by their hash
        h = hashlib.sha256()
        with (folder / name).open("rb") as fh:
            while chunk := fh.read(16 << 20):
                h.update(chunk)
        if h.hexdigest() != hashlib.sha256(files[name]).hexdigest():
            raise SystemExit(f"{folder / name}: wrong content")
    shutil.rmtree(folder)


def busy_core() -> subprocess.Popen:
    """Another job: a busy loop on one core (a process, so that it holds a core)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def repo_main(args) -> None:
    import random

    import huggingface_hub

    files = llama_files()
    total = sum(len(d) for d in files.values())
    limit_s = total / (CONNECTIONS * CAP)  # the line of reference: eight connections
    aria2c = shutil.which("aria2c")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, huggingface_hub {huggingface_hub.__version__}"
          + (f", {subprocess.run([aria2c, '--version'], capture_output=True, text=True).stdout.splitlines()[0]}"  # noqa: E501
             if aria2c else ", aria2c not installed"))
    print(f"repository: {LLAMA}, {len(files)} files, {total / 1e6:.1f} MB; every connection "
          f"capped at {CAP / 1e6:.0f} MB/s; the link's limit ({CONNECTIONS} x "
          f"{CAP / 1e6:.0f} MB/s): {limit_s:.2f} s; {args.repeat} round(s), interleaved; "
          f"load average before: {os.getloadavg()[0]:.2f}; another job on one core: "
          f"{'yes' if args.load else 'no'}")
    load = busy_core() if args.load else None
    runs: dict[str, list[float]] = {}
    peaks: dict[str, list[int]] = {}
    others: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="llmsetup-bench-") as tmp, \
                FixtureServer(rate=CAP) as server:
            server.add_repo(LLAMA, files)
            for name in files:
                server.repos[LLAMA].sha256(name)  # hash once, before timing
            work = Path(tmp)
            env = clean_env(work, server.url)
            base = f"{server.url}/{LLAMA}/resolve/main"
            (work / "aria2.txt").write_text("".join(
                f"{base}/{name}\n  out={name}\n" for name in files))

            def llmsetup(tag: str, src: str | None = None) -> tuple[float, Path]:
                out = work / f"llmsetup-{tag}"
                conn = ["--connections", str(args.connections)] if args.connections else []
                seconds, _ = timed([sys.executable, "-m", "llmsetup", "download", LLAMA,
                                    "--source", "hf", "--models-dir", str(out), "--json",
                                    *conn],
                                   env if src is None else {**env, "PYTHONPATH": src})
                return seconds, out / LLAMA

            def hf(tag: str) -> tuple[float, Path]:
                out = work / f"hf-{tag}"
                return run_hf_repo(work, env, server.url, out), out

            def aria(tag: str) -> tuple[float, Path]:
                out = work / f"aria2c-{tag}"
                seconds, _ = timed([aria2c, "-x8", "-s8", "-q", "--allow-overwrite=true",
                                    "--file-allocation=none", "-d", str(out),
                                    "-i", str(work / "aria2.txt")], env)
                return seconds, out

            clients = {"llmsetup": llmsetup, "huggingface_hub": hf}
            if aria2c:
                clients["aria2c"] = aria
            if args.baseline:
                clients["llmsetup-baseline"] = lambda tag: llmsetup(
                    f"baseline-{tag}", str(Path(args.baseline).resolve()))
            names = list(clients)
            rng = random.Random(0)
            for i in range(args.repeat):
                rng.shuffle(names)
                for name in names:
                    server.peak_active = 0
                    seconds, folder = clients[name](f"{i}")
                    runs.setdefault(name, []).append(round(seconds, 3))
                    peaks.setdefault(name, []).append(server.peak_active)
                    others.setdefault(name, []).append(round(CPU["others"], 2))
                    cpu.setdefault(name, []).append(round(CPU["client"], 2))
                    check_tree(folder, files)
    finally:
        if load is not None:
            load.kill()
            load.wait()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("all runs (s):", json.dumps(runs))
    print("most connections at once (per run):", json.dumps(peaks))
    print("CPU seconds of the client process (user + system) in each run:", json.dumps(cpu))
    print("CPU seconds of the machine's other jobs during each run:", json.dumps(others))
    from benchmarks._common import spread

    med = {name: statistics.median(v) for name, v in runs.items()}
    print(f"\n[whole repository, capped at {CAP / 1e6:.0f} MB/s per connection]  "
          "wall-clock s, median (p25-p75)")
    for name, values in runs.items():
        lo, hi = spread(values)
        opened = max(1, round(statistics.median(peaks[name])))
        own_limit = total / (opened * CAP)
        print(f"  {name:16} {med[name]:6.2f} s ({lo:.2f}-{hi:.2f})  "
              f"{total / med[name] / 1e6:6.1f} MB/s  {opened:2} connections: "
              f"{own_limit / med[name]:.2f} of their limit ({own_limit:.2f} s)")
    ours = runs["llmsetup"]

    def ratio(peer: str) -> str:
        pairs = sorted(p / o for p, o in zip(runs[peer], ours, strict=True))
        return (f"{med[peer] / med['llmsetup']:.2f}x of medians (per round "
                f"{pairs[0]:.2f}-{pairs[-1]:.2f})")

    print(f"  llmsetup vs the limit of 8 connections ({limit_s:.2f} s): "
          f"{limit_s / med['llmsetup']:.2f}")
    print(f"  llmsetup vs huggingface_hub: {ratio('huggingface_hub')} (target >= 6x)")
    if aria2c:
        print(f"  llmsetup vs aria2c -x8 -s8: {ratio('aria2c')} (target >= 0.9x)")
    if args.baseline:
        print(f"  llmsetup vs llmsetup-baseline: {ratio('llmsetup-baseline')}")
        print(f"  llmsetup-baseline vs huggingface_hub: "
              f"{med['huggingface_hub'] / med['llmsetup-baseline']:.2f}x; vs aria2c: "
              + (f"{med['aria2c'] / med['llmsetup-baseline']:.2f}x" if aria2c else "-"))


def run_hf_repo(work: Path, env: dict, url: str, out: Path) -> float:
    code = ("import sys; from huggingface_hub import snapshot_download; "
            "snapshot_download(sys.argv[1], local_dir=sys.argv[2], endpoint=sys.argv[3])")
    seconds, _ = timed([sys.executable, "-c", code, LLAMA, str(out), url], env)
    shutil.rmtree(out / ".cache", ignore_errors=True)
    return seconds


if __name__ == "__main__":
    main()
