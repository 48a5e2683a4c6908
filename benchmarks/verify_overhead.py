#!/usr/bin/env python3
"""Verifier overhead: ``llmsetup verify DIR --device cpu`` against a bare transformers
script doing the same load and generate, interleaved in one run.

    python benchmarks/verify_overhead.py [--rounds 10] [--max-new-tokens 32]

A tiny Llama (``runtime/fixtures.py``, built by this interpreter's transformers and
trained for a moment on the fixture dialogues, so that it answers in words and passes the
smoke test) is loaded by both: the bare script loads tokenizer and model, renders the same prompt
through the same chat template, tokenizes it and generates greedily; ``llmsetup verify``
does that and everything it adds (the host CLI's start, the runtime protocol, the torch
check, the folder inspection, the stop criteria, the judging, the JSON). Both run as fresh
processes of the same interpreter, in a shuffled order each round; the script checks that
both saw the same prompt tokens and generated the same number of tokens, then prints the
medians, their spread and the ratio. Target (issue 8): within 1.1x.

On a tiny model nearly all of either run is Python's start and the imports of torch and
transformers (about 2-3 s here), so the ratio is the verifier's fixed cost; on a real
model both add the same load and generation time and the ratio only shrinks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, interleaved, llmsetup_cmd, spread

RUNTIME = ROOT / "src" / "llmsetup" / "runtime"

ARCH = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 400, "max_position_embeddings": 512, "torch_dtype": "float32"}

# What a user would write to try a model: load, chat template, greedy generate.
BARE = '''\
import json, sys
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

path, prompt, max_new = sys.argv[1], sys.argv[2], int(sys.argv[3])
tokenizer = AutoTokenizer.from_pretrained(path)
dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
model = AutoModelForCausalLM.from_pretrained(path, **{dtype_key: torch.float32})
model.eval()
text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                     add_generation_prompt=True)
ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
with torch.no_grad():
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                         max_new_tokens=max_new, pad_token_id=pad)
new = out[0, ids.shape[1]:].tolist()
print(json.dumps({"prompt_tokens": ids.shape[1], "generated": len(new),
                  "answer": tokenizer.decode(new, skip_special_tokens=True)}))
'''


def build_model(folder: Path) -> Path:
    model = folder / "tiny-llama"
    subprocess.run([sys.executable, str(RUNTIME / "fixtures.py"), "causal-lm",
                    str(model), "--architecture", json.dumps(ARCH), "--chat-template",
                    "llama-2", "--train-steps", "80"], check=True, capture_output=True)
    return model


def run(argv: list[str]) -> tuple[float, dict]:
    """Seconds ``argv`` took, and the last JSON document (or JSON line) it printed."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    try:
        return elapsed, json.loads(proc.stdout)
    except ValueError:  # the runtime module alone speaks JSON lines: its result is last
        return elapsed, json.loads(proc.stdout.strip().splitlines()[-1])


def same_work(verify: dict, bare: dict) -> None:
    """Both must have run the same prompt tokens and generated as many tokens."""
    answer = verify["prompts"][0]
    # verify leaves a final eos out of new_tokens; generate() keeps it.
    generated = answer["new_tokens"] + (answer["stop_reason"] == "eos")
    if (answer["prompt_tokens"], generated) != (bare["prompt_tokens"], bare["generated"]):
        sys.exit(f"not the same work: verify {answer['prompt_tokens']} prompt tokens, "
                 f"{generated} generated; bare {bare['prompt_tokens']}, {bare['generated']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--prompt", default="What is the capital of France?")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmsetup-bench-verify-") as tmp:
        folder = Path(tmp)
        os.environ.update(LLMSETUP_HOME=str(folder / "home"),
                          LLMSETUP_CONFIG=str(folder / "home" / "config.yaml"))
        model = build_model(folder)
        bare_py = folder / "bare.py"
        bare_py.write_text(BARE)
        commands = {
            "llmsetup verify": [*llmsetup_cmd(), "verify", str(model), "--device", "cpu",
                                "--prompt", args.prompt, "--max-new-tokens",
                                str(args.max_new_tokens), "--json"],
            "bare transformers": [sys.executable, str(bare_py), str(model), args.prompt,
                                  str(args.max_new_tokens)],
            # Where the time goes: the verifier without the host CLI in front of it.
            "runtime module alone": [sys.executable, str(RUNTIME / "causal_lm.py"), "verify",
                                     str(model), "--device", "cpu", "--prompt", args.prompt,
                                     "--max-new-tokens", str(args.max_new_tokens)],
        }
        docs = {name: run(argv)[1] for name, argv in commands.items()}  # warm-up, and a check
        for name in ("llmsetup verify", "runtime module alone"):
            same_work(docs[name], docs["bare transformers"])
        times = interleaved({name: lambda a=argv: run(a)[0] for name, argv in commands.items()},
                            args.rounds, args.seed)
    answer = docs["llmsetup verify"]["prompts"][0]
    print(f"tiny Llama ({ARCH['hidden_size']} hidden, {ARCH['num_hidden_layers']} layers), "
          f"{answer['prompt_tokens']} prompt tokens, {answer['new_tokens']} new tokens "
          f"(stop: {answer['stop_reason']}), CPU, {args.rounds} interleaved rounds; "
          f"load average {os.getloadavg()[0]:.2f}")
    base = times["bare transformers"]
    for name, values in times.items():
        paired = statistics.median(v / b for v, b in zip(values, base, strict=True))
        lo, hi = spread(values)
        print(f"  {name:<20} median {statistics.median(values):.3f} s  (p25-p75 "
              f"{lo:.3f}-{hi:.3f} s)  {statistics.median(values) / statistics.median(base):.3f}x"
              f"  per-round {paired:.3f}x")
    ratio = statistics.median(times["llmsetup verify"]) / statistics.median(base)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n  verify overhead: {ratio:.3f}x of the bare script "
          f"({'within' if ratio <= 1.1 else 'OVER'} the 1.1x target), "
          f"{median['llmsetup verify'] - median['bare transformers']:+.3f} s: "
          f"{median['runtime module alone'] - median['bare transformers']:+.3f} s in the "
          f"runtime module, {median['llmsetup verify'] - median['runtime module alone']:+.3f} s "
          f"in the host CLI (its start, the target, the protocol)")


if __name__ == "__main__":
    main()
