"""Build a tiny random Whisper model that loads and runs like whisper-large-v3.

Only the size is small. The parts the speech pipeline depends on are the real ones:

- a real ``WhisperTokenizer``: a byte-level BPE vocabulary (every UTF-8 text encodes, so
  Chinese and English both decode) followed, in the order of the released checkpoints, by
  ``<|endoftext|>``, ``<|startoftranscript|>``, the 100 language tokens, the task tokens,
  ``<|startoflm|>``, ``<|startofprev|>``, ``<|nospeech|>``, ``<|notimestamps|>`` and the
  1501 timestamp tokens ``<|0.00|>`` .. ``<|30.00|>``. transformers finds the first
  timestamp as ``<|notimestamps|>`` + 1, so this order matters;
- a ``WhisperFeatureExtractor`` with 128 mel bins like large-v3 (30 s windows, 16 kHz);
- a generation config with ``lang_to_id``, ``task_to_id``, ``no_timestamps_token_id``,
  ``decoder_start_token_id``, ``prev_sot_token_id``, ``max_initial_timestamp_index``,
  ``begin_suppress_tokens`` and ``alignment_heads`` (word timestamps need them), which
  transformers 4.38.1 and 5.x both read.

It is built by the transformers of the environment that will load it, because a tokenizer
saved by a newer ``tokenizers`` does not load in an older one. ``config.json`` carries a
``llmsetup_fixture`` marker: the speech verifier sees it and only asks such a model to run,
not to transcribe correctly.

Usage (through the fixtures module)::

    python fixtures.py whisper OUT_DIR [--d-model 64] [--layers 2] [--heads 4] [--seed 0]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

if __package__:
    from . import _rt
else:
    import _rt

MARKER = "llmsetup_fixture"
TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|> in steps of 0.02 s
TASKS = ("translate", "transcribe")


def byte_alphabet() -> list[str]:
    """The 256 printable stand-ins that byte-level BPE uses for the bytes 0..255.

    Printable Latin-1 bytes stand for themselves; the others are shifted to code points
    from 256 up, so that every byte has a visible, non-space character (GPT-2's scheme,
    which Whisper's vocabulary shares).
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    table, shifted = {}, 0
    for byte in range(256):
        if byte in keep:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + shifted)
            shifted += 1
    return [table[b] for b in range(256)]


def special_tokens(languages: list[str]) -> list[str]:
    """Whisper's special tokens in the released order (without the timestamps)."""
    return ["<|endoftext|>", "<|startoftranscript|>", *(f"<|{code}|>" for code in languages),
            "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
            "<|nospeech|>", "<|notimestamps|>"]


def build_tokenizer(out_dir: Path):
    """A WhisperTokenizer made from vocab.json and merges.txt, as the hub ships it."""
    from transformers import WhisperTokenizer
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    languages = list(LANGUAGES)  # the order of the released checkpoints (100 for large-v3)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        vocab = {ch: i for i, ch in enumerate(byte_alphabet())}
        (src / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (src / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        tokenizer = WhisperTokenizer.from_pretrained(str(src), pad_token="<|endoftext|>")
    specials = special_tokens(languages)
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    # Timestamps are ordinary added tokens in the released checkpoints (not "special"):
    # decode(skip_special_tokens=True) keeps them out by id range instead.
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)])
    ids = tokenizer.convert_tokens_to_ids(specials)
    if ids != list(range(256, 256 + len(specials))):
        raise _rt.Failure("fixture", f"unexpected special token ids {ids[:3]}...")
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer, languages


def generation_settings(tokenizer, languages: list[str], decoder_layers: int,
                        heads: int) -> dict:
    """The generation config values of a multilingual Whisper, for this vocabulary."""
    def tid(token: str) -> int:
        return tokenizer.convert_tokens_to_ids(token)

    eot = tid("<|endoftext|>")
    return {
        "decoder_start_token_id": tid("<|startoftranscript|>"),
        "bos_token_id": eot, "eos_token_id": eot, "pad_token_id": eot,
        "is_multilingual": True,
        "lang_to_id": {f"<|{code}|>": tid(f"<|{code}|>") for code in languages},
        "task_to_id": {task: tid(f"<|{task}|>") for task in TASKS},
        "no_timestamps_token_id": tid("<|notimestamps|>"),
        "prev_sot_token_id": tid("<|startofprev|>"),
        "max_initial_timestamp_index": 50,
        # As the released checkpoints ship it: any language, then transcribe. Both versions
        # ignore it when the caller names a task or language, which llmsetup always does.
        "forced_decoder_ids": [[1, None], [2, tid("<|transcribe|>")]],
        # Whisper never starts a transcript with a bare space or an end of text.
        "begin_suppress_tokens": [tid("Ġ"), eot],
        "suppress_tokens": [],
        # Cross-attention heads of the last decoder layer, for word-level timestamps.
        "alignment_heads": [[decoder_layers - 1, h] for h in range(heads)],
        "max_length": 448,
        "return_timestamps": False,
    }


def build_whisper(out_dir: Path, d_model: int = 64, layers: int = 2, heads: int = 4,
                  seed: int = 0, max_target_positions: int = 448) -> dict:
    """Write the tiny model, tokenizer, feature extractor and generation config.

    ``max_target_positions`` below large-v3's 448 makes a decoder that holds fewer tokens
    than the usual max_new_tokens, as small and custom Whisper models do."""
    import torch
    import transformers
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer, languages = build_tokenizer(out_dir)
    WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160,
                            chunk_length=30, n_fft=400).save_pretrained(str(out_dir))
    gen = generation_settings(tokenizer, languages, layers, heads)
    config = WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=128, d_model=d_model,
        encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=heads,
        decoder_attention_heads=heads, encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model, max_source_positions=1500,
        max_target_positions=max_target_positions,
        pad_token_id=gen["pad_token_id"], bos_token_id=gen["bos_token_id"],
        eos_token_id=gen["eos_token_id"], decoder_start_token_id=gen["decoder_start_token_id"],
        # WhisperConfig defaults to large-v2 ids (220, 50256): keep them in generation_config.json.
        begin_suppress_tokens=None, suppress_tokens=None,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(**gen)
    model.save_pretrained(str(out_dir))
    config_file = out_dir / "config.json"
    data = json.loads(config_file.read_text(encoding="utf-8"))
    data[MARKER] = {"random_weights": True, "built_with": transformers.__version__}
    config_file.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return {"path": str(out_dir), "model_type": "whisper",
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer), "num_mel_bins": 128,
            "files": sorted(p.name for p in out_dir.iterdir())}


def add_arguments(parser) -> None:
    """The options of ``fixtures.py whisper``."""
    parser.add_argument("out", type=Path)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-target-positions", type=int, default=448)
