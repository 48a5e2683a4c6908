"""Check a causal-LM folder before loading it (standard library only).

Loading a folder with a shard missing or cut short fails deep inside transformers with a
message that names neither the file nor the fix, often after minutes of loading. These
checks read only ``config.json``, the shard index and each safetensors header, so they take
milliseconds and say exactly which file is missing or truncated.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

if __package__:
    from . import _i18n, _rt
else:
    import _i18n
    import _rt

# Fixed hints are marked with N_ for the catalog: the JSON event carries them in English,
# and the host shows them in the user's language (host/runner.py).
N_ = _i18n.N_

INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
SINGLE_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer.tiktoken")
# Architectures that are models of another kind, whatever else the folder holds.
OTHER_KINDS = ("ForConditionalGeneration", "ForSpeechSeq2Seq", "ForSequenceClassification",
               "ForMaskedLM", "ForTokenClassification", "ForQuestionAnswering")
INCOMPLETE_HINT = N_("Run `llmsetup check NAME` to see what is missing, then "
                     "`llmsetup download NAME` to fetch it (it resumes).")


def _incomplete(folder: Path, what: str) -> _rt.Failure:
    return _rt.Failure("incomplete-model", f"{folder}: the model folder is incomplete: {what}",
                       INCOMPLETE_HINT, exit_code=2)


def read_config(folder: Path) -> dict:
    """``config.json`` as a dict; a clear failure when the folder is not a model."""
    if not folder.is_dir():
        raise _rt.Failure("incomplete-model", f"{folder}: no such model folder",
                          INCOMPLETE_HINT, exit_code=2)
    path = folder / "config.json"
    if not path.is_file():
        raise _incomplete(folder, "no config.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _incomplete(folder, f"config.json is not readable JSON ({exc})") from None


def check_kind(folder: Path, config: dict) -> None:
    """Refuse a model that is not a causal LM (a Whisper folder given to chat)."""
    model_type = str(config.get("model_type", ""))
    archs = [str(a) for a in config.get("architectures") or []]
    causal = [a for a in archs if a.endswith(("ForCausalLM", "LMHeadModel"))]
    if model_type == "whisper" or (archs and not causal
                                   and any(a.endswith(OTHER_KINDS) for a in archs)):
        what = "a speech recognition model" if model_type == "whisper" else \
            f"not a text generation model ({', '.join(archs) or model_type})"
        raise _rt.Failure(
            "wrong-kind", f"{folder} is {what}; verify and chat need a causal language model",
            N_("Use `llmsetup verify NAME --audio FILE` or `llmsetup transcribe` for Whisper "
               "models, and `llmsetup chat` for text models (`llmsetup list` shows each kind)."),
            exit_code=2)


def check_remote_code(folder: Path, config: dict, trusted: bool) -> None:
    """A model that ships its own Python code runs it only when the user said so."""
    auto_map = config.get("auto_map") or {}
    if not trusted and any("CausalLM" in key for key in auto_map):
        raise _rt.Failure(
            "remote-code",
            f"{folder}: this model ships its own Python code (auto_map in config.json), which "
            "llmsetup does not run unless told to",
            N_("Read the model's .py files, then pass --trust-remote-code (or set "
               "trust_remote_code: true in its recipe)."), exit_code=2)


def safetensors_complete(path: Path) -> str | None:
    """None when ``path``'s size matches its header, else what is wrong with it."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"{path.name} is empty or cut short ({size} bytes)"
            (length,) = struct.unpack("<Q", head)
            if length > size - 8:
                return f"{path.name} is cut short ({size} bytes, header says more)"
            header = json.loads(fh.read(length))
    except (OSError, ValueError) as exc:
        return f"{path.name} is not a readable safetensors file ({exc})"
    end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
              default=0)
    expected = 8 + length + end
    if size < expected:
        return f"{path.name} is cut short ({size} of {expected} bytes)"
    return None


def weight_files(folder: Path) -> list[Path]:
    """The weight files the folder promises, checked to exist and be whole."""
    for index_name in INDEX_FILES:
        index = folder / index_name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                                    .values()))
            except (OSError, ValueError, KeyError, AttributeError) as exc:
                raise _incomplete(folder, f"{index_name} is not a valid index ({exc})") from None
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise _incomplete(folder, f"{len(missing)} of {len(shards)} weight shards "
                                  f"missing: {', '.join(missing)}")
            files = [folder / s for s in shards]
            break
    else:
        files = [folder / name for name in SINGLE_FILES if (folder / name).is_file()]
        if not files:
            raise _incomplete(folder, "no weights (no *.safetensors or pytorch_model*.bin)")
    for path in files:
        if path.suffix == ".safetensors":
            problem = safetensors_complete(path)
            if problem:
                raise _incomplete(folder, problem)
    return files


def inspect(folder: Path, trust_remote_code: bool = False) -> dict:
    """Everything checked before loading: config, kind, weights and tokenizer files."""
    config = read_config(folder)
    check_kind(folder, config)
    check_remote_code(folder, config, trust_remote_code)
    files = weight_files(folder)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise _incomplete(folder, "no tokenizer (tokenizer.json or tokenizer.model)")
    return {"config": config, "weights": [p.name for p in files],
            "safetensors": all(p.suffix == ".safetensors" for p in files)}
