"""`llmsetup bench`: tiny real models in every precision the CPU supports, and random
weights for every bundled recipe's architecture at a reduced size."""

from __future__ import annotations

import json

import pytest

from llmsetup.host.bench import shrink
from llmsetup.recipes import Catalog


def _bench(cli, *args):
    result = cli("bench", *args, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_bench_folder_all_precisions(cli, chat_llama):
    doc = _bench(cli, chat_llama, "--all-precisions", "--prompt-tokens", "12",
                 "--new-tokens", "6", "--batch-size", "3")
    assert [r["precision"] for r in doc["results"]] == ["full", "int8", "int4"]
    methods = [r["quantization"]["method"] for r in doc["results"]]
    assert methods == ["none", "llm.int8", "nf4"]
    for result in doc["results"]:
        assert [run["batch_size"] for run in result["runs"]] == [1, 3]
        for run in result["runs"]:
            assert run["decode_tokens_per_s"] > 0 and run["ttft_s"] > 0
        assert result["new_tokens"] == 6 and result["peak_rss_mb"] > 0
        assert result["weights_bytes"] > 0 and result["load_s"] > 0
    # On the CPU there is no GPU bandwidth to compare with.
    assert "roofline" not in doc["results"][0]


def test_bench_whisper_folder(cli, tiny_whisper):
    doc = _bench(cli, tiny_whisper, "--audio-seconds", "35", "--new-tokens", "6")
    result = doc["results"][0]
    assert doc["kind"] == "asr" and result["windows"] == 2  # 35 s = two 30 s windows
    # A folder has no recipe batch size: the defaults (16, and twice that).
    assert [r["batch_size"] for r in result["runs"]] == [16, 32]
    assert all(r["real_time_factor"] > 0 for r in result["runs"])
    assert result["new_tokens"] == 6


def _distinct_architectures():
    seen = {}
    for recipe in Catalog().all():
        key = json.dumps(shrink(recipe.architecture), sort_keys=True)
        seen.setdefault(key, recipe.name)
    return sorted(seen.values())


@pytest.mark.parametrize("name", _distinct_architectures())
def test_random_weights_for_every_bundled_architecture(cli, name, llmsetup_home):
    recipe = Catalog().get(name)
    if recipe.kind == "asr":
        doc = _bench(cli, name, "--random-weights", "--tiny", "--audio-seconds", "10",
                     "--new-tokens", "4")
        runs = doc["results"][0]["runs"]
        assert runs[0]["batch_size"] == recipe.smoke.audio.batch_size
    else:
        doc = _bench(cli, name, "--random-weights", "--tiny", "--prompt-tokens", "8",
                     "--new-tokens", "4", "--batch-size", "2")
        assert doc["results"][0]["runs"][1]["batch_size"] == 2
    arch = doc["architecture"]
    assert arch["model_type"] == recipe.architecture["model_type"]
    # The vocabulary (and for Whisper the mel bins) stay the real ones.
    for key in ("vocab_size", "num_mel_bins"):
        if key in recipe.architecture:
            assert arch[key] == recipe.architecture[key]
    # The temporary checkpoint is gone afterwards.
    assert not list((llmsetup_home / "cache" / "random-weights").glob(f"{name}-*"))


def test_override_and_keep_weights(cli, llmsetup_home):
    doc = _bench(cli, "gemma-2b", "--random-weights", "--tiny", "--override",
                 "num_hidden_layers=3", "--keep-weights", "--new-tokens", "3",
                 "--prompt-tokens", "4", "--batch-size", "1")
    assert doc["architecture"]["num_hidden_layers"] == 3
    kept = list((llmsetup_home / "cache" / "random-weights").glob("gemma-2b-*"))
    assert len(kept) == 1 and (kept[0] / "config.json").is_file()
    assert json.loads((kept[0] / "config.json").read_text())["num_hidden_layers"] == 3


def test_bench_errors(cli):
    result = cli("bench", "gemma-2b")
    assert result.exit_code == 2 and "--random-weights" in result.stderr
    result = cli("bench", "gemma-2b", "--tiny")
    assert result.exit_code == 2 and "Add --random-weights" in result.stderr
    result = cli("bench", "gemma-2b", "--4bit", "--8bit")
    assert result.exit_code == 2


def test_attn_compare_reports_both_paths_and_the_speedup(cli, chat_llama):
    doc = _bench(cli, chat_llama, "--attn", "compare", "--prompt-tokens", "8",
                 "--new-tokens", "4", "--batch-size", "1")
    variants = [(r["precision"], r.get("variant"), r["attn"]) for r in doc["results"]]
    assert variants == [("full", None, "sdpa"), ("full", "eager", "eager")]
    # Decode speed of SDPA over eager, batch 1, from the two runs above.
    runs = [r["runs"][0]["decode_tokens_per_s"] for r in doc["results"]]
    assert doc["speedups"]["sdpa_over_eager"] == round(runs[0] / runs[1], 3)


def test_progress_is_shown_in_words_not_raw_fields(cli, chat_llama):
    result = cli("bench", str(chat_llama), "--prompt-tokens", "8", "--new-tokens", "4",
                 "--batch-size", "2", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "ttft_s=" not in result.stderr and "causal:" not in result.stderr
    assert "batch 1: first token" in result.stderr and "tokens/s" in result.stderr
