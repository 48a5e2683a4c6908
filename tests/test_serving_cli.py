"""``verify --api``, ``verify --webui`` (its API half) and ``bench --api`` through the CLI,
against a real HTTP server on loopback (tests/openai_server.py)."""

from __future__ import annotations

import json

import pytest

from llmsetup.serving import auth
from llmsetup.settings import Settings
from tests.openai_server import OpenAIServer


def test_verify_api_passes_with_the_known_answer(cli):
    with OpenAIServer(model="llama-2-7b-chat") as server:
        result = cli("verify", "llama-2-7b-chat", "--api", server.url + "/v1", "--expect",
                     "Paris", "--json")
        sent = server.state.requests[0]
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["models"] == ["llama-2-7b-chat"]
    # the recipe's first smoke prompt, with its smoke budget
    assert sent["messages"][0]["content"].startswith("What is the capital of France?")
    assert sent["max_tokens"] == 64 and sent["model"] == "llama-2-7b-chat"


def test_verify_api_fails_on_a_wrong_answer_with_exit_1(cli):
    with OpenAIServer(answer="Lyon is lovely.") as server:
        result = cli("verify", "llama-2-7b-chat", "--api", server.url, "--expect", "Paris")
    assert result.exit_code == 1
    assert "known answer 'Paris'" in result.stderr
    assert "A: Lyon is lovely." in result.stdout


def test_verify_api_human_output_and_own_prompts(cli):
    with OpenAIServer() as server:
        result = cli("verify", "demo", "--api", server.url, "--prompt", "One?", "--prompt",
                     "Two?")
        prompts = [r["messages"][0]["content"] for r in server.state.requests]
    assert result.exit_code == 0, result.output
    assert prompts == ["One?", "Two?"]
    assert "passed" in result.stdout and "Q: Two?" in result.stdout


def test_verify_api_unreachable_is_exit_1_with_a_hint(cli):
    result = cli("verify", "demo", "--api", "http://127.0.0.1:9", "--timeout", "3")
    assert result.exit_code == 1
    assert "cannot reach" in result.stderr and "llmsetup serve" in result.stderr


@pytest.mark.parametrize(("args", "words"), [
    (["--api", "ftp://x"], "not an http(s) URL"),
    (["--api", "http://127.0.0.1:1", "--webui", "http://127.0.0.1:2"], "choose one"),
    (["--expect", "Paris"], "--expect is for --api and --webui"),
])
def test_verify_api_bad_input_is_exit_2(cli, args, words):
    result = cli("verify", "demo", *args)
    assert result.exit_code == 2 and words in result.stderr


def test_verify_and_bench_send_the_stored_key(cli, llmsetup_home, monkeypatch):
    monkeypatch.delenv(auth.API_KEY_ENV, raising=False)
    settings = Settings(home=llmsetup_home, models_dir=llmsetup_home)
    key, _ = auth.ensure_api_key(settings)
    with OpenAIServer(host="127.0.0.2", api_key=key.reveal()) as server:
        assert cli("verify", "demo", "--api", server.url).exit_code == 0
        assert cli("bench", "demo", "--api", server.url, "--requests", "2",
                   "--output-tokens", "3").exit_code == 0
        auth.api_key_path(settings).unlink()
        refused = cli("verify", "demo", "--api", server.url)
    assert refused.exit_code == 1 and "401" in refused.stderr
    assert key.reveal() not in refused.output


def test_bench_api_reports_the_serving_numbers(cli):
    with OpenAIServer(model="demo", token_delay=0.005) as server:
        doc = cli.json("bench", "demo", "--api", server.url, "--concurrency", "3",
                       "--requests", "6", "--input-tokens", "20", "--output-tokens", "4")
        assert server.state.max_in_flight == 3
    assert doc["completed"] == 6 and doc["total_output_tokens"] == 24
    assert doc["model"] == "demo" and doc["concurrency"] == 3
    for key in ("output_tokens_per_s", "requests_per_s"):
        assert doc[key] > 0
    assert set(doc["ttft_ms"]) == {"mean", "p50", "p99"}


def test_bench_api_human_output(cli):
    with OpenAIServer() as server:
        result = cli("bench", "demo", "--api", server.url, "--requests", "2",
                     "--output-tokens", "2")
    assert result.exit_code == 0, result.output
    assert "tokens/s (aggregate)" in result.stdout and "time to first token p50" in result.stdout


@pytest.mark.parametrize(("args", "words"), [
    (["--api", "http://127.0.0.1:1", "--4bit"], "not with --api"),
    (["--concurrency", "4"], "Add --api URL"),
    (["--api", "http://127.0.0.1:1", "--concurrency", "0"], "concurrency"),
])
def test_bench_api_bad_input_is_exit_2(cli, args, words):
    result = cli("bench", "demo", *args)
    assert result.exit_code == 2 and words in result.output
