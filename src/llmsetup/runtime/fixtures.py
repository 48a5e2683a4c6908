"""Build tiny models with real tokenizers, inside the environment that will load them.

A tokenizer.json written by a new ``tokenizers`` does not load in an old one, so these
models are always built by the transformers and tokenizers of the environment under test
(the demo recipe's "download" step runs this module too).

Usage::

    python fixtures.py causal-lm OUT_DIR --architecture '{"model_type": "llama", ...}' \
        [--chat-template llama-2|gemma|chatml|none] [--seed 0] [--train-steps N] \
        [--train-template llama-2|gemma|chatml|plain]
    python fixtures.py whisper OUT_DIR [--d-model 64] [--layers 2] [--heads 4] [--seed 0]

``--train-template`` trains through a chat format that the saved tokenizer does not carry:
a model without a chat template that has learnt the format its recipe names as
``chat_template_fallback``, the way Gemma base and the recipe's ``gemma`` fallback meet.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

if __package__:
    from . import _rt, templates, whisper_fixture
else:
    import _rt
    import templates
    import whisper_fixture

# Dialogues for training the BPE tokenizer and, with --train-steps, the model itself:
# English and Chinese, so that both tokenize into more than single bytes. The demo model
# learns these answers in about a second, so `llmsetup install demo` shows real text.
DIALOGUES = [
    ("Hello! Who are you?",
     "Hello! I am a tiny demo model that llmsetup trained on your machine in a second."),
    ("What can you do?",
     "I only know a few sentences. Real models are installed with llmsetup install."),
    ("What is llmsetup?",
     "llmsetup installs large language models and speech models in one command."),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("你好，请介绍一下你自己。", "你好！我是 llmsetup 在你的电脑上训练的小模型。"),
    ("北京是哪个国家的首都？", "北京是中国的首都。"),
]
CORPUS = [text for pair in DIALOGUES for text in pair]

SPECIALS = {
    "llama": {"bos": "<s>", "eos": "</s>", "unk": "<unk>", "pad": "<pad>"},
    "gemma": {"bos": "<bos>", "eos": "<eos>", "unk": "<unk>", "pad": "<pad>"},
}
EXTRA_SPECIALS = {"gemma": ["<start_of_turn>", "<end_of_turn>"],
                  "chatml": ["<|im_start|>", "<|im_end|>"]}


def train_tokenizer(vocab_size: int, specials: list[str]):
    """A byte-level BPE tokenizer trained on :data:`CORPUS` (covers any text)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 20, trainer=trainer)
    return tok


def build_causal_lm(out_dir: Path, architecture: dict, chat_template: str | None = "llama-2",
                    seed: int = 0, train_steps: int = 0,
                    train_template: str | None = None) -> dict:
    """Write a tiny random causal LM with a trained tokenizer to ``out_dir``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    arch = dict(architecture)
    model_type = arch.pop("model_type")
    arch.pop("architectures", None)
    dtype_name = arch.pop("torch_dtype", "float32")
    names = SPECIALS.get(model_type, SPECIALS["llama"])
    extra = EXTRA_SPECIALS.get(chat_template or "", [])
    specials = [names["pad"], names["eos"], names["bos"], names["unk"], *extra]
    vocab_size = int(arch.get("vocab_size", 512))
    tok = train_tokenizer(vocab_size, specials)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=names["bos"], eos_token=names["eos"],
        unk_token=names["unk"], pad_token=names["pad"],
        additional_special_tokens=extra or None,
    )
    if chat_template and chat_template != "none":
        tokenizer.chat_template = templates.TEMPLATES[chat_template]
    ids = {k: tokenizer.convert_tokens_to_ids(v) for k, v in names.items()}
    arch.update(vocab_size=len(tokenizer), bos_token_id=ids["bos"], eos_token_id=ids["eos"],
                pad_token_id=ids["pad"])
    torch.manual_seed(seed)
    config = AutoConfig.for_model(model_type, **arch)
    model = AutoModelForCausalLM.from_config(config)
    if train_steps:
        _train(model, tokenizer, train_steps, train_template)
    model = model.to(getattr(torch, dtype_name))
    model.generation_config.bos_token_id = ids["bos"]
    model.generation_config.eos_token_id = ids["eos"]
    model.generation_config.pad_token_id = ids["pad"]
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return {"path": str(out_dir), "model_type": model_type,
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer), "chat_template": chat_template,
            "files": sorted(p.name for p in out_dir.iterdir())}


def training_texts(tokenizer, template: str | None = None) -> list[str]:
    """Each dialogue as the model will see it: through its chat template when it has one
    (``template``, a name in :data:`templates.TEMPLATES`, overrides the tokenizer's)."""
    texts = []
    jinja = templates.TEMPLATES[template] if template else tokenizer.chat_template
    for question, answer in DIALOGUES:
        if jinja:
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                chat_template=jinja, tokenize=False)
            if not text.rstrip().endswith(tokenizer.eos_token):
                text += tokenizer.eos_token
        else:
            text = tokenizer.bos_token + question + "\n" + answer + tokenizer.eos_token
        texts.append(text)
    return texts


def _train(model, tokenizer, steps: int, template: str | None = None) -> None:
    """A few optimizer steps on the dialogues, so that the demo answers in words."""
    import torch

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = tokenizer(training_texts(tokenizer, template), return_tensors="pt", padding=True,
                      add_special_tokens=False)
    batch.pop("token_type_ids", None)  # older tokenizers return them; causal LMs refuse them
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    # Matrices this small gain nothing from threads, and beside other busy processes two
    # threads spin against each other (measured once: 17 s with two threads, 1.3 s with one, for
    # the 80 steps of a test model on a loaded 2-core machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            loss = model(**batch, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    finally:
        torch.set_num_threads(threads)
    model.eval()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    causal = sub.add_parser("causal-lm")
    causal.add_argument("out", type=Path)
    causal.add_argument("--architecture", required=True, help="config.json values as JSON")
    causal.add_argument("--chat-template", default="llama-2",
                        choices=[*templates.TEMPLATES, "none"])
    causal.add_argument("--seed", type=int, default=0)
    causal.add_argument("--train-steps", type=int, default=0)
    causal.add_argument("--train-template", choices=list(templates.TEMPLATES))
    whisper = sub.add_parser("whisper", help="a tiny random Whisper (see whisper_fixture.py)")
    whisper_fixture.add_arguments(whisper)
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.what == "whisper":
        info = whisper_fixture.build_whisper(args.out, args.d_model, args.layers, args.heads,
                                             args.seed, args.max_target_positions)
    else:
        info = build_causal_lm(args.out, json.loads(args.architecture), args.chat_template,
                               args.seed, args.train_steps, args.train_template)
    _rt.emit("result", ok=True, **info)


if __name__ == "__main__":
    raise SystemExit(_rt.run_main(main))
