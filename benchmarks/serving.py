"""The same serving load against several OpenAI-compatible servers, side by side.

    # two servers with the same model, e.g. the webui's API and vLLM:
    llmsetup serve llama-2-7b-chat --api --api-port 5000 &
    llmsetup serve llama-2-7b-chat --engine vllm --port 8000 &
    .venv/bin/python benchmarks/serving.py --api webui=http://127.0.0.1:5000 \
        --api vllm=http://127.0.0.1:8000 --concurrency 8 --requests 32

    # or let it start vLLM itself on a model folder (and stop it afterwards):
    .venv/bin/python benchmarks/serving.py --vllm-python ENV/bin/python --model DIR --cpu

Each server gets the load of ``llmsetup bench NAME --api URL`` (llmsetup.serving.load): N
streamed requests in flight, exactly O output tokens each. Printed: aggregate output tokens/s,
requests/s, time to first token p50/p99 and inter-token latency p50, and each server's
throughput as a ratio of the first one's. The numbers of this project's machines are in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from llmsetup.serving.load import LoadOptions, run_load  # noqa: E402
from llmsetup.serving.openai_client import Client  # noqa: E402
from llmsetup.serving.vllm import VllmOptions, server_command, server_env  # noqa: E402
from llmsetup.settings import Settings  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_vllm(python: str, model: Path, cpu: bool, home: Path) -> tuple[subprocess.Popen, str]:
    """vLLM as ``serve --engine vllm`` starts it (benchmarks may start processes directly)."""
    opts = VllmOptions(model=model, served_name="bench", port=_free_port(), cpu=cpu).checked()
    settings = Settings(home=home, models_dir=home)
    env = {**os.environ, **server_env(settings, opts)}
    log = (home / "vllm.log").open("w")
    proc = subprocess.Popen(server_command(python, opts), env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{opts.port}"
    client = Client(url, timeout=5)
    started = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"vLLM exited with {proc.returncode}; see {home / 'vllm.log'}")
        try:
            if client.models():
                break
        except Exception:
            time.sleep(1)
    print(f"vLLM ready after {time.monotonic() - started:.0f} s at {url}", file=sys.stderr)
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", action="append", default=[], metavar="NAME=URL")
    parser.add_argument("--vllm-python", help="start vLLM with this interpreter")
    parser.add_argument("--model", type=Path, help="the model folder vLLM serves")
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--input-tokens", type=int, default=64)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    servers = [tuple(item.split("=", 1)) for item in args.api]
    started = None
    with tempfile.TemporaryDirectory(prefix="llmsetup-serving-") as tmp:
        if args.vllm_python:
            if not args.model:
                parser.error("--vllm-python needs --model DIR")
            started, url = start_vllm(args.vllm_python, args.model.absolute(), args.cpu,
                                      Path(tmp))
            servers.append(("vllm", url))
        if not servers:
            parser.error("give --api NAME=URL (repeatable) or --vllm-python with --model")
        rows = []
        try:
            for concurrency in args.concurrency:
                for name, url in servers:
                    opts = LoadOptions(concurrency=concurrency, requests=args.requests,
                                       input_tokens=args.input_tokens,
                                       output_tokens=args.output_tokens)
                    doc = run_load(Client(url, timeout=600), opts)
                    rows.append({"server": name, **doc})
        finally:
            if started:
                stop(started)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'server':<10} {'conc':>4} {'done':>6} {'tok/s':>9} {'req/s':>7} {'TTFT p50':>9} "
          f"{'TTFT p99':>9} {'ITL p50':>8} {'x first':>7}")
    for row in rows:
        first = next(r for r in rows if r["concurrency"] == row["concurrency"])
        ratio = row["output_tokens_per_s"] / first["output_tokens_per_s"]
        print(f"{row['server']:<10} {row['concurrency']:>4} "
              f"{row['completed']:>3}/{row['requests']:<2} {row['output_tokens_per_s']:>9.1f} "
              f"{row['requests_per_s']:>7.2f} {row['ttft_ms']['p50']:>7.1f}ms "
              f"{row['ttft_ms']['p99']:>7.1f}ms {row['itl_ms']['p50'] or 0:>6.1f}ms "
              f"{ratio:>6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
