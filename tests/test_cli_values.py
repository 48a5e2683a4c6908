"""Command-line values that cannot work: exit 2 at once, one line naming the option, the
value and what is accepted, before any environment, download or model is touched
(issue 12, item 16)."""

from __future__ import annotations

import pytest

BAD = [
    (["transcribe", "whisper-tiny", "a.wav", "--device", "tpu"], "'--device': 'tpu'",
     "auto, cuda or cpu"),
    (["download", "demo", "--endpoint", "not a url"], "'--endpoint': 'not a url'", "http"),
    (["download", "demo", "--endpoint", "ftp://mirror.example/hf"], "'--endpoint'", "http"),
    (["download", "demo", "--endpoint", "http://[::1"], "'--endpoint': 'http://[::1'",
     "Invalid IPv6 URL"),
    (["install", "demo", "--endpoint", "not a url"], "'--endpoint'", "http"),
    (["install", "demo", "--index-url", "pypi"], "'--index-url'", "http"),
    (["bench", "demo", "--audio-seconds", "0"], "'--audio-seconds'", "(0, 3600]"),
    (["bench", "demo", "--audio-seconds", "-1"], "'--audio-seconds'", "(0, 3600]"),
    (["bench", "demo", "--random-weights", "--override", "hidden_size=-64"],
     "'--override': 'hidden_size=-64'", "whole number of at least 1"),
    (["bench", "demo", "--random-weights", "--override", "rope_theta=NaN"], "'--override'",
     "finite"),
    (["bench", "demo", "--random-weights", "--override", "=3"], "'--override'", "KEY=VALUE"),
    (["verify", "demo", "--max-memory", "0=-5GiB"], "'--max-memory': '0=-5GiB'",
     "DEVICE=SIZE"),
    (["verify", "demo", "--max-memory", "cpu=lots"], "'--max-memory': 'cpu=lots'",
     "DEVICE=SIZE"),
    (["chat", "demo", "--max-memory", "0=99999999999GiB"], "'--max-memory'", "64TiB"),
    (["chat", "demo", "--max-memory", "cpu=1KiB"], "'--max-memory'", "from 100MiB"),
    (["chat", "demo", "--max-memory", "0=10GiB,0=12GiB"], "'--max-memory'", "DEVICE=SIZE"),
    (["chat", "demo", "--temperature", "nan"], "'--temperature': 'nan'", "[0, 100]"),
    (["chat", "demo", "--temperature", "inf"], "'--temperature': 'inf'", "[0, 100]"),
    (["chat", "demo", "--top-p", "0"], "'--top-p'", "(0, 1]"),
    # install --python (a version or a path) is checked by envs.pythons: see
    # tests/test_install_plan.py.
    (["install", "demo", "--python-mirror", "mirror"], "'--python-mirror'", "http"),
    (["--recipes-dir", "/nonexistent/recipes", "list"], "'--recipes-dir'",
     "existing folder (there is no such folder)"),
    (["--recipes-dir", "/etc/passwd", "list"], "'--recipes-dir': '/etc/passwd'",
     "existing folder (this is a file)"),
    (["download", "demo", "--models-dir", "/etc/passwd"], "'--models-dir': '/etc/passwd'",
     "a folder"),
    (["download", "demo", "--models-dir", "/etc/passwd/models"], "'--models-dir'",
     "/etc/passwd is a file"),
    (["verify", "demo", "--python", "/etc/passwd"], "'--python': '/etc/passwd'",
     "executable Python interpreter"),
    (["verify", "demo", "--python", "/nonexistent/python"], "'--python'", "no such file"),
    (["transcribe", "whisper-tiny", "--python", "/etc/passwd", "a.wav"], "'--python'",
     "executable"),
    (["bench", "demo", "--python", "/etc/passwd"], "'--python'", "executable"),
    (["transcribe", "whisper-tiny", "/dev/null"], "'/dev/null'", "a regular file"),
    (["transcribe", "whisper-tiny", "/nonexistent.wav"], "'/nonexistent.wav'",
     "no such file"),
    (["verify", "whisper-tiny", "--audio", "/dev/null"], "'--audio': '/dev/null'",
     "a regular file"),
]


@pytest.mark.parametrize(("argv", "names", "accepted"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_a_value_that_cannot_work_exits_2_at_once_naming_it(cli, argv, names, accepted):
    result = cli(*argv)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert names in errors[0] and accepted in errors[0], errors[0]


def test_the_models_dir_variable_naming_a_file_stops_every_command(cli, monkeypatch):
    monkeypatch.setenv("LLMSETUP_MODELS_DIR", "/etc/passwd")
    result = cli("list")
    assert result.exit_code == 2
    assert "LLMSETUP_MODELS_DIR: '/etc/passwd': expected a folder" in result.stderr


@pytest.mark.parametrize("argv", [
    ["download", "nope", "--endpoint", "https://mirror.example:8443/hf"],
    ["chat", "nope", "--temperature", "0", "--top-p", "1", "--max-memory", "0=10GiB,cpu=30GiB",
     "--device", "CPU"],
    ["bench", "nope", "--audio-seconds", "30", "--random-weights", "--override",
     "num_hidden_layers=4"],
])
def test_good_values_pass_their_checks(cli, argv):
    result = cli(*argv)  # the command runs, and finds no recipe of that name
    assert result.exit_code == 2 and "no recipe named 'nope'" in result.stderr, result.stderr


def test_good_values_are_accepted_by_the_checks():
    from llmsetup import values

    assert values.http_url_problem("https://hf-mirror.com") is None
    assert values.http_url_problem("http://127.0.0.1:8080/x") is None
    assert values.max_memory_problem("0=10GiB,1=10GiB,cpu=30GiB") is None
    assert values.max_memory_problem("cpu=512MiB, disk=2TB") is None
    assert values.override_problem("num_hidden_layers=4") is None
    assert values.override_problem("hidden_act=gelu") is None
    assert values.override_problem("pad_token_id=-1") is None
    assert values.override_problem("attention_dropout=0.0") is None


def test_the_device_choices_are_those_the_runtime_takes():
    from llmsetup.cli._options import DEVICES, SPEECH_ENGINES
    from llmsetup.host.asr import ENGINES
    from llmsetup.host.causal_lm import DEVICES as HOST_DEVICES

    assert DEVICES == HOST_DEVICES
    assert SPEECH_ENGINES == ENGINES
