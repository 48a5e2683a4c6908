"""``llmsetup verify`` on tiny causal LMs: full precision, 8-bit and 4-bit, all for real on
the CPU (bitsandbytes has a CPU backend), the JSON schema, and the errors users hit."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from tests.lm_helpers import no_traceback, validate, write_recipe

HELLO = "Hello! Who are you?"
NIHAO = "你好，请介绍一下你自己。"


def test_full_precision_json_matches_the_schema(cli, chat_llama):
    result = cli("verify", chat_llama, "--cpu", "--json", "--prompt", HELLO, "--prompt", NIHAO,
                 "--max-new-tokens", "12")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    validate(doc)
    assert doc["ok"] is True and doc["problems"] == []
    assert (doc["device"], doc["dtype"], doc["quantization"]) == ("cpu", "float32",
                                                                 {"method": "none"})
    assert doc["chat_template"] == "tokenizer" and doc["context_length"] == 256
    english, chinese = doc["prompts"]
    # The model learnt these answers through its chat template: they come back only when
    # the prompt is built with that template.
    assert english["answer"].startswith("Hello! I am")
    assert chinese["answer"].startswith("你好！我是")
    for item in doc["prompts"]:
        assert item["new_tokens"] == 12 and item["stop_reason"] == "max_new_tokens"
        assert item["ttft_s"] > 0 and item["decode_tokens_per_s"] > 0
    assert doc["peak_rss_mb"] > 0 and doc["peak_gpu_memory_mb"] is None
    assert doc["versions"]["transformers"] and doc["target"] == "chat-llama"


@pytest.mark.parametrize("flags, method", [
    (["--8bit"], "llm.int8"),
    (["--4bit", "--double-quant"], "nf4"),
])
def test_quantized_on_the_cpu(cli, chat_llama, flags, method):
    result = cli("verify", chat_llama, "--device", "cpu", *flags, "--json",
                 "--prompt", HELLO, "--max-new-tokens", "8")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    validate(doc)
    quant = doc["quantization"]
    assert quant["method"] == method
    # 2 layers x 7 linear projections each; the output head stays in full precision.
    assert quant["layers"] == 14
    if method == "nf4":
        assert quant["compute_dtype"] == "bfloat16" and quant["double_quant"] is True
    assert doc["ok"] is True
    assert doc["prompts"][0]["answer"].startswith("Hello!")


def test_recipe_fallback_template_and_human_summary(cli, chat_gemma, tmp_path):
    """A tokenizer without a chat template gets the recipe's (gemma); the model ends its
    answer with <end_of_turn> as text, which stops generation and never shows."""
    recipes = write_recipe(tmp_path / "recipes", "tiny-gemma", chat_gemma,
                           chat_template_fallback="gemma",
                           smoke={"prompts": ["What is the capital of France?"],
                                  "max_new_tokens": 40})
    result = cli("--recipes-dir", recipes, "verify", "tiny-gemma", "--cpu")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "tiny-gemma: passed" in out and "chat template fallback:gemma" in out
    assert "A: The capital of France is Paris." in out
    assert "stopped by stop_marker" in out and "<end_of_turn>" not in out
    assert "peak RSS" in out and "tokens/s" in out
    assert "Loaded in" in result.stderr  # progress goes to stderr


def test_garbled_output_fails_the_check(cli, tiny_llama):
    """An untrained model babbles bytes that do not decode: verify exits 1, and --json still
    prints the whole document."""
    result = cli("verify", tiny_llama, "--cpu", "--json", "--max-new-tokens", "16")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    validate(doc)
    assert doc["ok"] is False and doc["prompts"][0]["ok"] is False
    assert any("U+FFFD" in p or "pad/unk" in p for p in doc["problems"])
    assert "failed its smoke test" in result.stderr and "Hint:" in result.stderr
    no_traceback(result)


def test_truncated_weights_exit_2_with_advice(cli, chat_llama, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(chat_llama, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    result = cli("verify", broken, "--cpu")
    assert result.exit_code == 2
    assert "incomplete" in result.stderr and "model.safetensors is cut short" in result.stderr
    assert "llmsetup check" in result.stderr and "llmsetup download" in result.stderr
    no_traceback(result)


def test_cuda_asked_of_a_cpu_only_torch(cli, chat_llama):
    result = cli("verify", chat_llama, "--device", "cuda")
    assert result.exit_code == 1
    assert "CUDA is not available" in result.stderr and "CPU-only build" in result.stderr
    assert "--device cpu" in result.stderr
    no_traceback(result)


def test_a_speech_model_is_refused_by_the_text_verifier(tmp_path):
    """The runtime checks the kind itself too (the host routes Whisper to the speech
    verifier before it gets there)."""
    from llmsetup.errors import UsageError
    from llmsetup.host import runner

    folder = tmp_path / "whisper"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(
        {"model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"]}))
    with pytest.raises(UsageError) as info:
        runner.run_module(sys.executable, "causal_lm", ["verify", str(folder), "--device", "cpu"])
    assert info.value.code == "wrong-kind"
    assert "speech recognition model" in info.value.message and "transcribe" in info.value.hint


def test_a_recipe_not_downloaded(cli, tmp_path):
    recipes = write_recipe(tmp_path / "recipes", "absent", None)
    write_recipe(recipes, "gated-one", None, gated=True)
    result = cli("--recipes-dir", recipes, "verify", "absent")
    assert result.exit_code == 2
    assert "not downloaded" in result.stderr and "llmsetup download absent" in result.stderr
    gated = cli("--recipes-dir", recipes, "verify", "gated-one")
    assert gated.exit_code == 2 and "HF_TOKEN" in gated.stderr and "licence" in gated.stderr


@pytest.mark.parametrize("flags, message", [
    (["--4bit", "--8bit"], "exclude each other"),
    (["--double-quant"], "--double-quant applies to --4bit only"),
    (["--cpu", "--device", "cuda"], "contradict"),
    (["--device", "tpu"], "'tpu': expected auto, cuda or cpu"),
    (["--audio", __file__], "for speech models only"),  # a file that exists: the check runs
])
def test_option_mistakes_exit_2(cli, chat_llama, flags, message):
    result = cli("verify", chat_llama, *flags)
    assert result.exit_code == 2 and message in result.stderr
    no_traceback(result)


def test_install_verify_step_entry_point(chat_llama, tmp_path):
    """``install`` ends with verification.verify_target: passed/reason and the document."""
    from llmsetup.host.verify import verify_target
    from llmsetup.settings import Settings
    from llmsetup.targets import resolve

    settings = Settings.load()
    target = resolve(str(chat_llama), settings, None)
    lines: list[str] = []
    result = verify_target(target, settings, sys.executable, quantization="8bit", device="cpu",
                           on_line=lines.append, log=tmp_path / "verify.log")
    assert result["passed"] is True and result["reason"] is None
    assert result["quantization"]["method"] == "llm.int8"
    assert lines[0].startswith("Loading ") and any(" 8-bit LLM.int8)" in ln for ln in lines)
    assert '"event": "result"' in (tmp_path / "verify.log").read_text()
