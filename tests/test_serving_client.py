"""The OpenAI-API client, the API check and the serving benchmark, against a real HTTP
server on 127.0.0.1 (tests/openai_server.py)."""

from __future__ import annotations

import socket

import pytest

from llmsetup.errors import CheckFailed, UsageError
from llmsetup.secret import Secret, redact
from llmsetup.serving.check import check_api, judge
from llmsetup.serving.load import LoadOptions, percentile, run_load
from llmsetup.serving.openai_client import Client, base_url
from tests.openai_server import OpenAIServer


@pytest.mark.parametrize(("given", "expected"), [
    ("127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000"),
    ("https://example.org/proxy/v1/", "https://example.org/proxy"),
])
def test_base_url_forms(given, expected):
    assert base_url(given) == expected


@pytest.mark.parametrize("bad", ["ftp://host/x", "http://", "http://host:port"])
def test_base_url_refuses_what_is_not_a_url(bad):
    with pytest.raises(UsageError):
        base_url(bad)


def test_models_and_chat():
    with OpenAIServer(model="m1") as server:
        client = Client(server.url)
        assert client.models() == ["m1"]
        reply = client.chat("What is the capital of France?", max_tokens=4)
        assert reply.text == "The capital of France"
        assert reply.completion_tokens == 4
        assert server.state.requests[-1]["max_tokens"] == 4
        assert server.state.requests[-1]["temperature"] == 0.0


def test_the_key_travels_in_the_header_and_without_it_the_server_refuses():
    key = Secret("sk-test-" + "k" * 20)
    with OpenAIServer(api_key=key.reveal()) as server:
        with pytest.raises(CheckFailed) as refused:
            Client(server.url).models()
        assert "401" in refused.value.message
        assert "API key" in (refused.value.hint or "")
        assert Client(server.url, api_key=key).models() == ["tiny"]
        assert server.state.headers[-1]["Authorization"] == f"Bearer {key.reveal()}"
        with pytest.raises(CheckFailed) as wrong:
            Client(server.url, api_key=Secret("sk-wrong-key-000")).models()
        assert "refused" in wrong.value.hint
        assert key.reveal() not in redact(str(wrong.value) + (wrong.value.hint or ""))


def test_unreachable_server_says_so_quickly():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CheckFailed) as exc:
        Client(f"http://127.0.0.1:{port}", timeout=2).models()
    assert "cannot reach" in exc.value.message
    assert "llmsetup serve" in exc.value.hint


def test_a_server_that_does_not_answer_in_time_hits_the_deadline():
    with socket.socket() as sock:  # accepts connections (backlog), never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        client = Client(f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=0.5)
        with pytest.raises(CheckFailed) as exc:
            client.models()
    assert "did not answer within" in exc.value.message


@pytest.mark.parametrize(("text", "expect", "problem"), [
    ("", None, "empty"),
    ("Paris \ufffd", None, "U+FFFD"),
    ("<unk><unk>", None, "pad/unk"),
    ("It is Lyon.", "Paris", "known answer"),
])
def test_judge_finds_what_local_verify_finds(text, expect, problem):
    problems = judge(text, expect)
    assert any(problem in p for p in problems), problems


def test_judge_passes_a_good_answer():
    assert judge("The capital of France is Paris.", "paris") == []


def test_check_api_passes_and_fails_on_the_answer():
    with OpenAIServer() as server:
        doc = check_api(Client(server.url), ["What is the capital of France?", "Hi"],
                        expect="Paris")
        assert doc["ok"] and doc["models"] == ["tiny"] and len(doc["prompts"]) == 2
    with OpenAIServer(answer="Lyon, of course.") as server:
        doc = check_api(Client(server.url), ["What is the capital of France?"],
                        expect="Paris")
        assert not doc["ok"]
        assert "known answer" in doc["problems"][0]
    with OpenAIServer(answer=" ") as server:
        doc = check_api(Client(server.url), ["Hello"])
        assert not doc["ok"] and "empty" in doc["problems"][0]


def test_check_api_refuses_a_model_the_server_does_not_have():
    with OpenAIServer(model="a") as server, pytest.raises(CheckFailed, match="does not serve"):
        check_api(Client(server.url), ["Hi"], model="b")


def test_percentile_interpolates_like_numpy():
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 99) == pytest.approx(99.0)


def test_load_keeps_n_requests_in_flight_and_counts_every_token():
    with OpenAIServer(token_delay=0.02) as server:
        doc = run_load(Client(server.url), LoadOptions(concurrency=4, requests=8,
                                                       input_tokens=16, output_tokens=5))
        assert server.state.max_in_flight == 4
        sent = server.state.requests
    assert doc["completed"] == 8 and doc["failed"] == 0
    assert doc["total_output_tokens"] == 40
    assert doc["prompt_tokens_mean"] == 16
    assert all(r["stream"] and r["max_tokens"] == 5 and r["ignore_eos"] for r in sent)
    assert len({r["prompt"] for r in sent}) == 8  # no two prompts alike (no prefix cache hits)
    for key in ("ttft_ms", "itl_ms", "tpot_ms"):
        assert doc[key]["p50"] is not None and doc[key]["p99"] >= doc[key]["p50"]
    assert doc["output_tokens_per_s"] > 0 and doc["requests_per_s"] > 0


def test_load_counts_failed_requests_instead_of_dying():
    with OpenAIServer(fail_every=3) as server:
        doc = run_load(Client(server.url), LoadOptions(concurrency=2, requests=6,
                                                       output_tokens=3))
    assert doc["completed"] + doc["failed"] == 6
    assert doc["failed"] == 2
    assert "scripted failure" in doc["errors"][0]


def test_load_with_the_key():
    key = Secret("sk-bench-" + "x" * 16)
    with OpenAIServer(api_key=key.reveal()) as server:
        with pytest.raises(CheckFailed, match="401"):
            run_load(Client(server.url), LoadOptions(requests=1, output_tokens=2))
        doc = run_load(Client(server.url, api_key=key), LoadOptions(requests=2, output_tokens=2))
    assert doc["completed"] == 2


@pytest.mark.parametrize("field", ["concurrency", "requests", "input_tokens", "output_tokens"])
def test_load_options_refuse_zero(field):
    with pytest.raises(UsageError):
        LoadOptions(**{field: 0}).checked()
