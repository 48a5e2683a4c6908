"""`--json` on failure: one JSON document on stdout, whatever failed (issue 12, item 17)."""

from __future__ import annotations

import json

import pytest

FAILING = [
    (["list"], 2, "config"),  # with a broken config file (see the test)
    (["show", "nope"], 2, "not_found_error"),
    (["doctor", "nope"], 2, "not_found_error"),
    (["install", "nope"], 2, "not_found_error"),
    (["download", "nope"], 2, "not_found_error"),
    (["check", "/nonexistent/folder"], 2, "not_found_error"),
    (["verify", "nope"], 2, "not_found_error"),
    (["serve", "nope"], 2, "not_found_error"),
    (["transcribe", "nope", __file__], 2, "not_found_error"),
    (["transcribe", "nope", "missing.wav"], 2, "bad_parameter"),
    (["bench", "nope"], 2, "not_found_error"),
    (["download", "demo", "--connections", "99"], 2, "bad_parameter"),
    (["download", "demo", "--bogus"], 2, "no_such_option"),
    (["show"], 2, "missing_parameter"),
]


def document(stdout: str) -> dict:
    doc = json.loads(stdout)  # exactly one document: json.loads refuses trailing data
    assert set(doc) == {"ok", "error", "exit_code"}
    assert set(doc["error"]) == {"message", "hint", "code"}
    return doc


@pytest.mark.parametrize(("argv", "exit_code", "code"), FAILING, ids=lambda v: str(v))
def test_a_failure_under_json_is_one_document_on_stdout(cli, llmsetup_home, argv, exit_code,
                                                        code):
    if code == "config":
        llmsetup_home.mkdir(parents=True, exist_ok=True)
        (llmsetup_home / "config.yaml").write_text("download:\n  connections: eight\n")
        code = "usage_error"
    result = cli(*argv, "--json")
    assert result.exit_code == exit_code, result.output
    doc = document(result.stdout)
    assert doc["ok"] is False and doc["exit_code"] == exit_code
    assert doc["error"]["code"] == code
    assert doc["error"]["message"]
    assert "Error:" in result.stderr  # people still read stderr


def test_the_message_and_hint_are_those_people_see(cli):
    result = cli("show", "gemma2b", "--json")
    doc = document(result.stdout)
    assert doc["error"]["message"] == "no recipe named 'gemma2b'"
    assert "gemma-2b" in doc["error"]["hint"]
    assert f"Error: {doc['error']['message']}" in result.stderr


def test_a_command_that_printed_its_result_then_failed_prints_nothing_more(cli, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    result = cli("check", folder, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)  # one document: check's own report, which says ok false
    assert doc["ok"] is False and "has_manifest" in doc


def test_without_json_stdout_stays_empty_on_failure(cli):
    result = cli("show", "nope")
    assert result.exit_code == 2 and result.stdout == ""


def test_a_value_that_happens_to_be_the_word_json_is_not_the_flag(cli):
    result = cli("show", "nope", "--", "--json")
    assert result.exit_code == 2 and result.stdout == ""


def test_the_failure_document_is_documented():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "json.md").read_text()
    for words in ('"ok": false', '"exit_code"', '"code"', "not_found_error", "bad_parameter"):
        assert words in text
