"""Smoke test and chat for a causal LM, run inside the model's environment.

Usage::

    python causal_lm.py verify MODEL_DIR [--prompt TEXT]... [--max-new-tokens N]
        [--device auto|cuda|cpu] [--8bit | --4bit [--double-quant]] [--max-memory SPEC]
        [--chat-template-fallback NAME] [--memory-gb fp16=13,int8=9,int4=5]
        [--trust-remote-code]
    python causal_lm.py chat MODEL_DIR [same loading options] [--system TEXT]
        [--temperature T] [--top-p P] [--max-new-tokens N] [--no-stream] [--events-fd FD]

``verify`` prints JSON lines (``torch``, ``progress``, then one ``result``). ``chat`` owns
the terminal and sends its events to ``--events-fd`` (see ``_chat.py``).

The smoke test decodes greedily, so that a rerun gives the same answer and a change in the
answer means a change in the model or the stack. A prompt passes when its answer is not
empty and decodes cleanly: no undecodable bytes (a broken tokenizer or garbled weights)
and no pad/unk tokens (what argmax picks from NaN logits, e.g. fp16 overflow). Every
answer stops, at the latest after ``--max-new-tokens``; ``stop_reason`` says whether the
model ended it itself (``eos`` or a turn-end ``stop_marker``) or was cut off.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

if __package__:
    from . import _generate, _i18n, _lm, _rt, templates
else:
    import _generate
    import _i18n
    import _lm
    import _rt
    import templates

# The fixed problems of an answer are marked with N_ for the catalog: the result event
# carries them in English, and the host can show them translated.
N_ = _i18n.N_

DEFAULT_PROMPTS = ["Hello! Who are you?"]


def _loading_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the model folder")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    bits = parser.add_mutually_exclusive_group()
    bits.add_argument("--8bit", dest="bits", action="store_const", const=8,
                      help="LLM.int8 with bitsandbytes")
    bits.add_argument("--4bit", dest="bits", action="store_const", const=4,
                      help="NF4 with half-precision compute, bitsandbytes")
    parser.add_argument("--double-quant", action="store_true",
                        help="with --4bit: quantize the quantization constants too")
    parser.add_argument("--max-memory", help="per device, e.g. 0=10GiB,cpu=30GiB")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--chat-template-fallback", choices=sorted(templates.TEMPLATES),
                        help="template for a tokenizer without one (default: plain)")
    parser.add_argument("--memory-gb", help="the recipe's GPU needs, for advice on OOM")
    parser.add_argument("--max-new-tokens", type=int, default=None)


def load_options(args: argparse.Namespace) -> _lm.LoadOptions:
    if args.double_quant and args.bits != 4:
        raise _rt.Failure("bad-input", "--double-quant applies to --4bit only",
                          "Add --4bit, or leave out --double-quant.", exit_code=2)
    return _lm.LoadOptions(
        device=args.device, bits=args.bits, double_quant=args.double_quant,
        max_memory=_lm.parse_max_memory(args.max_memory),
        trust_remote_code=args.trust_remote_code,
        chat_template_fallback=args.chat_template_fallback,
        memory_gb=_lm.parse_memory_gb(args.memory_gb),
    )


def judge(answer: _generate.Answer, loaded: _lm.Loaded) -> list[str]:
    """What is wrong with an answer (nothing: it passes)."""
    problems = []
    text = answer.text
    if not text.strip():
        problems.append(N_("the answer is empty (the model ended at once: a chat template "
                           "that does not match the model, or broken weights)"))
    # (A cut-off answer has already lost a last character that had no room to finish.)
    if "\ufffd" in text:
        problems.append(N_("the answer has undecodable bytes (U+FFFD): a tokenizer that does "
                           "not match the weights, or garbled weights"))
    bad = sum(1 for i in answer.ids if i in loaded.bad_ids)
    if bad:
        problems.append(f"the model produced {bad} pad/unk token(s) of {answer.new_tokens}: "
                        "its logits are probably NaN (fp16 overflow or broken weights)")
    return problems


def _budget(loaded: _lm.Loaded, prompt_tokens: int, wanted: int) -> int:
    room = loaded.context_length - prompt_tokens
    if room <= 0:
        raise _rt.Failure("bad-input", f"the prompt has {prompt_tokens} tokens; the model's "
                          f"context holds {loaded.context_length}", "Use a shorter --prompt.",
                          exit_code=2)
    return min(wanted, room)


def verify(args: argparse.Namespace) -> None:
    opts = load_options(args)
    info = _rt.torch_info()  # torch and CUDA first: the cheapest thing that can fail
    _rt.emit("torch", **info)
    opts.device = _rt.resolve_device(opts.device)
    prompts = args.prompt or DEFAULT_PROMPTS
    max_new = args.max_new_tokens or 64
    with _rt.peak_memory(opts.device) as memory:
        _rt.emit("progress", stage="load", message=f"loading {args.model}",
                 model=str(args.model))
        loaded = _lm.load(args.model, opts)
        _rt.emit("progress", stage="loaded", load_s=loaded.load_s, dtype=loaded.dtype,
                 device=loaded.device, quantization=loaded.quantization)
        answers, results, notes = [], [], []
        for number, prompt in enumerate(prompts, 1):
            _rt.emit("progress", stage="prompt", index=number, total=len(prompts),
                     prompt=prompt)
            ids = _lm.prompt_ids(loaded, [{"role": "user", "content": prompt}])
            budget = _budget(loaded, len(ids), max_new)
            if budget < max_new:
                note = (f"prompt {number}: max_new_tokens {max_new} does not fit the model's "
                        f"context of {loaded.context_length} tokens after the {len(ids)}-token "
                        f"prompt: using {budget}")
                notes.append(note)
                _rt.emit("progress", stage="note", message=note, note="budget", index=number,
                         wanted=max_new, context=loaded.context_length,
                         prompt_tokens=len(ids), budget=budget)
            answer = _generate.generate(loaded, ids, budget)
            problems = judge(answer, loaded)
            answers.append(answer)
            results.append({
                "prompt": prompt, "answer": answer.text, "ok": not problems,
                "problems": problems, "prompt_tokens": answer.prompt_tokens,
                "new_tokens": answer.new_tokens, "stop_reason": answer.stop_reason,
                "ttft_s": answer.ttft_s, "decode_tokens_per_s": answer.decode_tokens_per_s,
                "seconds": answer.seconds,
            })
    _rt.emit("result", **summary(loaded, answers, results, memory, max_new), notes=notes)


def summary(loaded: _lm.Loaded, answers: list[_generate.Answer], results: list[dict],
            memory: dict, max_new: int) -> dict:
    """The ``result`` event of verify (the host adds the recipe's name)."""
    ttfts = [a.ttft_s for a in answers if a.ttft_s is not None]
    decode_s = sum(a.decode_s for a in answers)
    decode_tokens = sum(a.decode_tokens for a in answers)
    problems = [f"prompt {i}: {p}" for i, r in enumerate(results, 1) for p in r["problems"]]
    return {
        "ok": not problems,
        "kind": "causal-lm",
        "model_dir": str(loaded.path),
        "device": loaded.device,
        "dtype": loaded.dtype,
        "quantization": loaded.quantization,
        "device_map": loaded.device_map,
        "chat_template": loaded.template_source,
        "context_length": loaded.context_length,
        "max_new_tokens": max_new,
        "load_s": loaded.load_s,
        "ttft_s": round(statistics.median(ttfts), 4) if ttfts else None,
        "decode_tokens_per_s": round(decode_tokens / decode_s, 2)
        if decode_tokens and decode_s > 0 else None,
        "peak_gpu_memory_mb": memory.get("peak_gpu_memory_mb"),
        "peak_rss_mb": memory.get("peak_rss_mb"),
        "versions": _rt.versions(),
        "prompts": results,
        "problems": problems,
    }


def chat(args: argparse.Namespace) -> None:
    if __package__:
        from . import _chat
    else:
        import _chat

    opts = load_options(args)
    opts.device = _rt.resolve_device(opts.device)
    _chat.quiet_libraries()
    loaded = _lm.load(args.model, opts)
    session = _chat.Chat(loaded, system=args.system, max_new_tokens=args.max_new_tokens or 512,
                         temperature=args.temperature, top_p=args.top_p,
                         stream=not args.no_stream)
    turns = session.run()
    _rt.emit("result", ok=True, turns=turns)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="causal_lm.py", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = root.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="load the model and run smoke prompts")
    _loading_options(check)
    check.add_argument("--prompt", action="append", help="a smoke prompt (repeatable)")
    talk = sub.add_parser("chat", help="an interactive chat in the terminal")
    _loading_options(talk)
    talk.add_argument("--system", help="the system prompt")
    talk.add_argument("--temperature", type=float, default=0.7,
                      help="0 decodes greedily (the same answer every time)")
    talk.add_argument("--top-p", type=float, default=0.9)
    talk.add_argument("--no-stream", action="store_true", help="print each answer whole")
    talk.add_argument("--events-fd", type=int, help="write protocol events to this fd")
    return root


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    if args.command == "chat":
        # stdout carries the answers: events go to the host's pipe, or to stderr when the
        # module is run by hand.
        _rt.set_events_fd(args.events_fd if args.events_fd is not None else os.dup(2))
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise _rt.Failure("bad-input", "--max-new-tokens must be at least 1", None, exit_code=2)
    _rt.emit("start", module="causal_lm", command=args.command, protocol=_rt.PROTOCOL)
    (verify if args.command == "verify" else chat)(args)


if __name__ == "__main__":
    sys.exit(_rt.run_main(main))
