"""The pieces of the causal-LM runtime that need no model: folder checks and advice.

These run in-process on real files (the runtime modules import as package members); the
end-to-end runs are in test_verify.py and test_chat.py.
"""

from __future__ import annotations

import json
import struct

import pytest

from llmsetup.runtime import _chat, _generate, _lm, _model_folder, _rt


def _safetensors(path, n_floats: int = 4, cut: int = 0) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_floats],
                               "data_offsets": [0, 4 * n_floats]}}).encode()
    data = struct.pack("<Q", len(header)) + header + b"\0" * (4 * n_floats)
    path.write_bytes(data[:len(data) - cut] if cut else data)


def _folder(tmp_path, config=None, tokenizer=True):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(
        config or {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    if tokenizer:
        (folder / "tokenizer.json").write_text("{}")
    return folder


def _failure(folder, **kwargs) -> _rt.Failure:
    with pytest.raises(_rt.Failure) as info:
        _model_folder.inspect(folder, **kwargs)
    return info.value


def test_a_whole_sharded_folder_passes(tmp_path):
    folder = _folder(tmp_path)
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    for shard in shards:
        _safetensors(folder / shard)
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": shards[0], "b": shards[1], "c": shards[1]}}))
    info = _model_folder.inspect(folder)
    assert info["weights"] == shards and info["safetensors"] is True


def test_missing_shards_are_listed(tmp_path):
    folder = _folder(tmp_path)
    _safetensors(folder / "model-00001-of-00003.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00003.safetensors", "b": "model-00002-of-00003.safetensors",
        "c": "model-00003-of-00003.safetensors"}}))
    failure = _failure(folder)
    assert failure.code == "incomplete-model" and failure.exit_code == 2
    assert "2 of 3 weight shards missing" in failure.message
    assert "model-00002-of-00003.safetensors, model-00003-of-00003.safetensors" in failure.message
    assert "llmsetup check" in failure.hint and "llmsetup download" in failure.hint


def test_a_truncated_safetensors_file_is_caught_before_loading(tmp_path):
    folder = _folder(tmp_path)
    _safetensors(folder / "model.safetensors", n_floats=1000, cut=100)
    failure = _failure(folder)
    assert failure.code == "incomplete-model"
    assert "model.safetensors is cut short" in failure.message


def test_no_weights_and_no_tokenizer(tmp_path):
    folder = _folder(tmp_path)
    assert "no weights" in _failure(folder).message
    _safetensors(folder / "model.safetensors")
    (folder / "tokenizer.json").unlink()
    assert "no tokenizer" in _failure(folder).message


def test_pickle_weights_are_accepted_but_not_preferred(tmp_path):
    folder = _folder(tmp_path)
    (folder / "pytorch_model.bin").write_bytes(b"\0" * 16)
    assert _model_folder.inspect(folder)["safetensors"] is False


@pytest.mark.parametrize("config", [
    {"model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"]},
    {"model_type": "bert", "architectures": ["BertForMaskedLM"]},
])
def test_other_kinds_of_model_are_refused(tmp_path, config):
    failure = _failure(_folder(tmp_path, config))
    assert failure.code == "wrong-kind" and failure.exit_code == 2
    assert "causal language model" in failure.message


def test_remote_code_needs_consent(tmp_path):
    config = {"model_type": "chatglm", "architectures": ["ChatGLMForCausalLM"],
              "auto_map": {"AutoModelForCausalLM": "modeling_chatglm.ChatGLMForCausalLM"}}
    folder = _folder(tmp_path, config)
    _safetensors(folder / "model.safetensors")
    assert _failure(folder).code == "remote-code"
    assert _model_folder.inspect(folder, trust_remote_code=True)["config"]["auto_map"]


def test_max_memory_spec():
    assert _lm.parse_max_memory("0=10GiB, 1=12GiB,cpu=30GiB") == {
        0: "10GiB", 1: "12GiB", "cpu": "30GiB"}
    assert _lm.parse_max_memory(None) is None
    with pytest.raises(_rt.Failure) as info:
        _lm.parse_max_memory("gpu0:10GiB")
    assert info.value.code == "bad-input" and "0=10GiB" in info.value.hint


def test_out_of_memory_advice_names_the_lighter_precisions_and_their_needs():
    import torch

    exc = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    memory = _lm.parse_memory_gb("fp16=13,int8=9,int4=5")
    full = _lm.oom_failure(exc, None, memory)
    assert full.code == "oom" and "Tried to allocate 2.00 GiB" in full.message
    assert "--8bit (about 9 GB) or --4bit (about 5 GB)" in full.hint
    eight = _lm.oom_failure(exc, 8, memory)
    assert "--4bit (about 5 GB)" in eight.hint and "--8bit" not in eight.hint
    four = _lm.oom_failure(exc, 4, memory)
    assert "--max-memory" in four.hint and "--4bit" not in four.hint


def test_stream_holds_back_what_may_become_a_marker_or_a_character():
    markers = ["<end_of_turn>"]
    assert _generate._held_back("Paris.<end_of", markers) == len("<end_of")
    assert _generate._held_back("Paris.", markers) == 0
    assert _generate._held_back("你好\ufffd\ufffd", []) == 2
    # More undecodable characters than a cut UTF-8 sequence can leave are garbage.
    assert _generate._held_back("\ufffd" * 6, []) == 3


def test_saved_chats_are_recognised(tmp_path):
    saved = tmp_path / "chat.json"
    saved.write_text(json.dumps({"format": _chat.SAVE_FORMAT, "messages": []}))
    other = tmp_path / "notes.json"
    other.write_text('{"mine": true}')
    assert _chat._is_saved_chat(saved) and not _chat._is_saved_chat(other)
