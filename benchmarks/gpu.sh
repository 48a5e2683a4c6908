#!/usr/bin/env bash
# GPU benchmarks: `llmsetup bench --random-weights` of Llama-2-7b-chat (fp16, 8-bit, 4-bit)
# and Whisper-large-v3 on one NVIDIA GPU, in under 10 minutes, without any network.
#
#   benchmarks/gpu.sh OUTDIR                     # on the GPU machine
#   benchmarks/gpu.sh --cpu --tiny OUTDIR        # dry run of the same steps, here on a CPU
#   benchmarks/gpu.sh --prepare-wheels           # here, with the package index: fill .whl/
#
# Writes into OUTDIR: llama-2-7b-chat.json (`bench --all-precisions --json`),
# whisper-large-v3.json, whisper.engines.txt (with WHISPER_MODEL, see below), and, only
# while time is left, llama-2-7b-chat.attn.json
# (`--attn compare`: SDPA against eager attention) and llama-2-7b-chat.compile.json
# (`--compile`: static KV cache + torch.compile); vllm.json (vLLM serving, where vLLM is
# there, see vllm_serving); summary.txt (also printed) and gpu.log (each step's stderr and
# llmsetup's runtime logs). At most 8 files: the device tool brings back 8.
#
# What it needs on that machine: an interpreter with torch (CUDA), transformers and
# accelerate (PYTHON, default python3). Everything else comes from the wheel folder
# WHEELS (default .whl/ in the repository): the script makes a virtual environment in
# /tmp that sees the interpreter's packages (through a .pth file) and installs the wheels
# into it with --no-index --no-deps, so nothing is fetched and the interpreter's own
# environment is left as it was. The random weights (13.5 GB for the 7B in fp16) go to a
# temporary LLMSETUP_HOME that is removed at the end.
#
# The lent device machine (/work/.library/device/README.md, KINDS.md) has Python 3.12 at
# /opt/torch/.venv (the plain python3) with torch 2.11 (CUDA 13.0), transformers 5.17,
# accelerate, rich, pyyaml, requests, huggingface_hub, filelock, typer, shellingham,
# annotated-doc; it lacks bitsandbytes, pydantic (and pydantic-core, annotated-types,
# typing-inspection) and platformdirs, and cannot reach any index. Prepare .whl/ here, in
# the repository root, with `benchmarks/gpu.sh --prepare-wheels`, which runs:
#
#   echo /.whl/ >> .git/info/exclude     # (already in .gitignore)
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#       --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
#       bitsandbytes==0.50.2 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
#       typing-inspection==0.4.5 typing-extensions==4.16.0 platformdirs==4.14.8 typer==0.28.0
#   .venv/bin/python -m pip wheel --no-deps --no-build-isolation -w .whl .   # llmsetup itself
#
# (the versions the test suite runs with; bitsandbytes 0.50.2 ships CUDA 13.0 kernels;
# typer 0.28.0 because pyproject.toml bounds typer below 0.29, see docs/performance.md;
# about 47 MB in all, under the 64 MiB a call may carry). Then run it with the device tool,
# one call, carrying the wheels:
#
#   run(command="bash benchmarks/gpu.sh $OUT", carry=[".whl"], timeout_s=600)
#
# The JSON files come back under the reply's files_at. On another GPU machine with the
# network, `pip install 'llmsetup[runtime]'` and `benchmarks/gpu.sh OUTDIR` with WHEELS
# pointing at an empty or missing folder runs in that interpreter directly.
#
# Time: BUDGET_S (default 540 s) bounds the whole script; each step gets a timeout, and
# the optional steps start only when their estimate fits in what is left.

set -euo pipefail

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

CPU=0 TINY=0 PREPARE=0 OUTDIR=
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu) CPU=1 ;;
        --tiny) TINY=1 ;;
        --prepare-wheels) PREPARE=1 ;;
        -h|--help) usage ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *) OUTDIR=$1 ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-$ROOT/.whl}
BUDGET_S=${BUDGET_S:-540}

if [ "$PREPARE" = 1 ]; then
    set -x
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEELS" \
        bitsandbytes==0.50.2 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
        typing-inspection==0.4.5 typing-extensions==4.16.0 platformdirs==4.14.8 typer==0.28.0
    rm -f "$WHEELS"/llmsetup-*.whl
    "$ROOT/.venv/bin/python" -m pip wheel --no-deps --no-build-isolation -w "$WHEELS" "$ROOT"
    set +x
    du -sh "$WHEELS"
    exit 0
fi

[ -n "$OUTDIR" ] || usage
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG=$OUTDIR/gpu.log
: > "$LOG"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/llmsetup-gpu.XXXXXX")
export LLMSETUP_HOME=$WORK/home LLMSETUP_CONFIG=$WORK/home/config.yaml
trap 'cat "$LLMSETUP_HOME"/logs/*.log >> "$LOG" 2>/dev/null || true; rm -rf "$WORK"' EXIT

say() { echo "[gpu.sh $(date +%H:%M:%S) +${SECONDS}s] $*" | tee -a "$LOG" >&2; }

# -- the interpreter: PY's packages plus the carried wheels ------------------------------
VPY=$PY
if compgen -G "$WHEELS/*.whl" > /dev/null; then
    say "installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into a venv over $PY"
    "$PY" -m venv --without-pip "$WORK/venv"
    VPY=$WORK/venv/bin/python
    SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    # The venv sees PY's packages after its own (addsitedir also runs their .pth files).
    "$PY" -c 'import sys
for p in sys.path:
    if p.endswith(("site-packages", "dist-packages")):
        print(f"import site; site.addsitedir({p!r})")' > "$SITE/_llmsetup_base_env.pth"
    # --target: installs next to nothing and uninstalls nothing of PY's environment.
    "$PY" -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target "$SITE" \
        "$WHEELS"/*.whl 2>&1 | tee -a "$LOG"
fi
"$VPY" - <<'EOF' 2>&1 | tee -a "$LOG"
import importlib.metadata as md, torch
names = ["llmsetup", "torch", "transformers", "accelerate", "bitsandbytes", "typer", "pydantic"]
have = {}
for n in names:
    try:
        have[n] = md.version(n)
    except md.PackageNotFoundError:
        have[n] = "MISSING"
print("versions:", ", ".join(f"{k} {v}" for k, v in have.items()))
print("cuda:", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
EOF
if [ "$CPU" = 0 ] && ! "$VPY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    say "torch sees no GPU: run with --cpu --tiny for a dry run"; exit 1
fi

# -- the steps ---------------------------------------------------------------------------
COMMON=(--random-weights --json --python "$VPY")
CAUSAL=()
ASR=()
if [ "$CPU" = 1 ]; then COMMON+=(--device cpu); else COMMON+=(--device cuda); fi
if [ "$TINY" = 1 ]; then
    COMMON+=(--tiny)
    CAUSAL=(--prompt-tokens 16 --new-tokens 8 --batch-size 2)
    ASR=(--audio-seconds 35 --new-tokens 8)
fi
FAILED=0

# step NAME ESTIMATE_S RESERVE_S REQUIRED ARGS...: `llmsetup bench ARGS` into
# OUTDIR/NAME.json, with a timeout that leaves RESERVE_S of the budget to later steps. An
# optional step (REQUIRED=0) is skipped when its estimate does not fit in what is left.
step() {
    local name=$1 estimate=$2 reserve=$3 required=$4 left status=0
    shift 4
    left=$((BUDGET_S - SECONDS - reserve))
    if [ "$required" = 0 ] && [ "$estimate" -gt "$left" ]; then
        say "skip $name: about ${estimate}s needed, ${left}s left"; return 0
    fi
    [ "$left" -gt 10 ] || { say "no time left for $name"; FAILED=1; return 0; }
    say "$name: llmsetup bench $* (timeout ${left}s)"
    echo "== $name" >> "$LOG"
    timeout -k 20 "$left" "$VPY" -m llmsetup bench "$@" "${COMMON[@]}" \
        > "$OUTDIR/$name.json" 2>> "$LOG" || status=$?
    if [ "$status" != 0 ]; then
        say "$name failed (exit $status): see gpu.log"; FAILED=1
        [ -s "$OUTDIR/$name.json" ] || rm -f "$OUTDIR/$name.json"
    fi
}

# The 7B checkpoint is written once and kept (--keep-weights) for the optional steps;
# the whole LLMSETUP_HOME goes at exit.
step llama-2-7b-chat 300 120 1 \
    llama-2-7b-chat --all-precisions --keep-weights ${CAUSAL[@]+"${CAUSAL[@]}"}
step whisper-large-v3 90 0 1 whisper-large-v3 ${ASR[@]+"${ASR[@]}"}
# The speech engines side by side (benchmarks/asr.py engines: llmsetup transformers and
# ctranslate2 against the bare pipeline and bare faster-whisper), optional: only where PY has
# faster-whisper and a real Whisper folder is given as WHISPER_MODEL (random weights decode
# a different number of tokens in each engine, so their times would not compare). The
# recording is spoken by espeak-ng, or ASR_RECORDING with its text in ASR_TEXT where the
# machine has no espeak-ng.
engines() {
    local left=$((BUDGET_S - SECONDS - 60)) status=0 dev=cuda extra=()
    [ "$CPU" = 1 ] && dev=cpu
    if [ -z "${WHISPER_MODEL:-}" ] || ! "$VPY" -c 'import faster_whisper' 2>/dev/null; then
        say "skip whisper.engines: needs faster-whisper in $PY and WHISPER_MODEL"; return 0
    fi
    [ "$left" -gt 120 ] || { say "skip whisper.engines: ${left}s left"; return 0; }
    [ -n "${ASR_RECORDING:-}" ] && extra=(--recording "$ASR_RECORDING" --text "${ASR_TEXT:?}")
    say "whisper.engines: benchmarks/asr.py engines --device $dev (timeout ${left}s)"
    timeout -k 20 "$left" "$VPY" "$ROOT/benchmarks/asr.py" engines --device "$dev" \
        --rounds 3 --model "$WHISPER_MODEL" ${extra[@]+"${extra[@]}"} \
        > "$OUTDIR/whisper.engines.txt" 2>> "$LOG" || status=$?
    [ "$status" = 0 ] || { say "whisper.engines failed (exit $status): see gpu.log"; FAILED=1; }
}
engines
# vLLM serving of the 7B with random weights (issue 14): `llmsetup serve --engine vllm
# --random-weights`, fp16 then 4-bit, each loaded with `llmsetup bench --api` at
# concurrency 1 and 32; one file, vllm.json. Optional: only where VLLM_PYTHON (default: the
# benchmark's interpreter) imports vllm. The lent device machine has no vLLM and cannot
# fetch it (its wheel is larger than what a call carries); on a GPU machine with the
# network, `pip install vllm` and point VLLM_PYTHON at that interpreter. VLLM_MODEL (a model
# folder) replaces the recipe: the CPU dry run uses a small one (`--cpu` skips 4-bit, which
# vLLM's CPU build lacks).
vllm_serving() {
    local vpy=${VLLM_PYTHON:-$VPY} target=${VLLM_MODEL:-llama-2-7b-chat} left port pid
    local precisions=(fp16 4bit) flags=() tokens=128 status=0
    if ! "$vpy" -c 'import vllm' 2>/dev/null; then
        say "skip vllm: $vpy has no vllm (VLLM_PYTHON)"; return 0
    fi
    if [ "$CPU" = 1 ]; then precisions=(float32); flags=(--cpu); fi  # vLLM on a CPU: fp32
    [ "$TINY" = 1 ] && tokens=16
    : > "$WORK/vllm.jsonl"
    for precision in "${precisions[@]}"; do
        left=$((BUDGET_S - SECONDS - 40))
        [ "$left" -gt 180 ] || { say "skip vllm $precision: ${left}s left"; break; }
        port=$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        local quant=()
        [ "$precision" = 4bit ] && quant=(--4bit)
        say "vllm $precision: llmsetup serve $target --engine vllm --random-weights (port $port)"
        setsid "$VPY" -m llmsetup serve "$target" --engine vllm --random-weights \
            --python "$vpy" --port "$port" ${quant[@]+"${quant[@]}"} ${flags[@]+"${flags[@]}"} \
            >> "$LOG" 2>&1 &
        pid=$!
        if ! "$VPY" "$ROOT/benchmarks/_wait_http.py" "http://127.0.0.1:$port/v1/models" \
                "$((left - 60))" "$pid" 2>> "$LOG"; then
            say "vllm $precision: the server did not answer: see gpu.log"; FAILED=1
        else
            for concurrency in 1 32; do
                "$VPY" -m llmsetup bench "$target" --api "http://127.0.0.1:$port" \
                    --concurrency "$concurrency" --requests "$((concurrency * 4))" \
                    --input-tokens "$tokens" --output-tokens "$tokens" --json \
                    > "$WORK/vllm.one.json" 2>> "$LOG" || status=$?
                if [ "$status" = 0 ]; then
                    "$VPY" -c 'import json, sys; d = json.load(open(sys.argv[1])); d["precision"] = sys.argv[2]; print(json.dumps(d))' \
                        "$WORK/vllm.one.json" "$precision" >> "$WORK/vllm.jsonl"
                else
                    say "vllm $precision: bench at concurrency $concurrency failed: see gpu.log"
                    FAILED=1 status=0
                fi
            done
        fi
        kill -INT -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -s "$WORK/vllm.jsonl" ]; then
        "$VPY" -c 'import json, sys
print(json.dumps({"kind": "vllm-serving", "runs": [json.loads(l) for l in open(sys.argv[1])]}, indent=1))' \
            "$WORK/vllm.jsonl" > "$OUTDIR/vllm.json"
    fi
    return 0
}
vllm_serving
step llama-2-7b-chat.attn 120 0 0 \
    llama-2-7b-chat --attn compare --keep-weights ${CAUSAL[@]+"${CAUSAL[@]}"}
step llama-2-7b-chat.compile 180 0 0 \
    llama-2-7b-chat --compile --keep-weights ${CAUSAL[@]+"${CAUSAL[@]}"}

# -- summary -----------------------------------------------------------------------------
"$VPY" - "$OUTDIR" <<'EOF' | tee "$OUTDIR/summary.txt"
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
for path in sorted(out.glob("*.json")):
    doc = json.loads(path.read_text())
    if doc.get("kind") == "vllm-serving":
        print(f"{path.name}: vLLM serving with random weights")
        for run in doc["runs"]:
            print(f"  {run['precision']:<5} concurrency {run['concurrency']:>3}: "
                  f"{run['output_tokens_per_s']:8.1f} tok/s, {run['requests_per_s']:6.2f} req/s, "
                  f"TTFT p50 {run['ttft_ms']['p50']:7.1f} ms, p99 {run['ttft_ms']['p99']:7.1f} ms")
        continue
    first = doc["results"][0] if doc["results"] else {}
    print(f"{path.name}: {doc['target']} on {first.get('gpu') or first.get('device')}, "
          f"{first.get('versions', {}).get('torch')} / "
          f"transformers {first.get('versions', {}).get('transformers')}")
    if doc["kind"] == "asr":
        for run in first["runs"]:
            print(f"  batch {run['batch_size']:>3}: {run['seconds']:.2f} s for "
                  f"{first['audio_s']:g} s of audio, real-time factor "
                  f"{run['real_time_factor']:.4f}; load {first['load_s']:.1f} s")
        continue
    for r in doc["results"]:
        b1, bn = r["runs"][0], r["runs"][-1]
        mem = r.get("peak_gpu_memory_mb") or r.get("peak_rss_mb") or 0
        roof = r.get("roofline")
        label = r["precision"] + (f" ({r['variant']})" if r.get("variant") else "")
        print(f"  {label:<16} load {r['load_s']:6.1f} s  TTFT {b1['ttft_s'] * 1000:7.1f} ms  "
              f"{b1['decode_tokens_per_s']:8.1f} tok/s (b=1)  "
              f"{bn['decode_tokens_per_s']:8.1f} tok/s (b={bn['batch_size']})  "
              f"peak {mem / 1024:5.1f} GB  weights {r['weights_bytes'] / 1e9:5.2f} GB"
              + (f"  {roof['fraction']:.0%} of the {roof['tokens_per_s']:.0f} tok/s roofline"
                 if roof else ""))
    for name, value in doc.get("speedups", {}).items():
        print(f"  {name}: {value:.2f}x")
EOF
[ -s "$OUTDIR/whisper.engines.txt" ] && tee -a "$OUTDIR/summary.txt" < "$OUTDIR/whisper.engines.txt"
say "done in ${SECONDS}s; results in $OUTDIR"
exit "$FAILED"
