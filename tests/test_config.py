"""The config file: validated by a schema, every command stops on a bad one (exit 2)."""

from __future__ import annotations

import json
import typing

import pytest

from llmsetup.settings import Settings

# One command of each kind: a fast one that never needs the config, ones that read it.
COMMANDS = [
    ["list"],
    ["show", "demo"],
    ["doctor"],
    ["download", "gemma-2b"],
    ["check", "."],
    ["recipes", "validate", "nope.yaml"],
    ["verify", "demo"],
    ["transcribe", "whisper-tiny", "a.wav"],
]


def write_config(home, text: str):
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_a_wrong_type_stops_every_command_naming_the_key(cli, llmsetup_home, argv):
    write_config(llmsetup_home, "download:\n  sources: [hf]\n  connections: eight\n")
    result = cli(*argv)
    assert result.exit_code == 2, result.output
    assert "config.yaml:3: download.connections: expected a whole number, got 'eight'" \
        in result.stderr
    assert "bug" not in result.stderr


def test_help_works_whatever_the_config_holds(cli, llmsetup_home):
    write_config(llmsetup_home, "download:\n  connections: eight\n")
    result = cli("download", "--help")
    assert result.exit_code == 0 and "--connections" in result.stdout


def test_a_string_where_a_list_is_expected_is_a_list_of_one(llmsetup_home, tmp_path):
    write_config(llmsetup_home, f"download:\n  sources: modelscope\nrecipes_path: {tmp_path}\n")
    settings = Settings.load()
    assert settings.get("download.sources") == ["modelscope"]
    assert settings.recipe_dirs[-1] == tmp_path


def test_the_configured_source_order_reads_a_single_source(llmsetup_home, tmp_path):
    from llmsetup.download.job import DownloadOptions, source_order
    from llmsetup.download.ref import ModelRef

    write_config(llmsetup_home, "download:\n  sources: modelscope\n")
    ref = ModelRef(repo_id="org/model", model_dir=tmp_path / "m",
                   sources=["hf-mirror", "modelscope", "hf"])
    assert source_order(ref, Settings.load(), DownloadOptions()) == ["modelscope"]


@pytest.mark.parametrize(("text", "expected"), [
    ("pip:\n  mirror: ustcc\n", "pip.mirror: expected one of 'ustc', 'tuna', 'aliyun' or "
                                "'default', got 'ustcc'"),
    ("env:\n  backend: docker\n", "env.backend: expected one of"),
    ("env:\n  python_mirror: mirror\n", "env.python_mirror: expected an http"),
    ("download:\n  sources: [hf, gitee]\n", "download.sources[1]: expected one of"),
    ("download:\n  connections: 0\n", "download.connections: expected at least 1"),
    ("download:\n  connections: 8.5\n", "download.connections: expected a whole number"),
    ("download:\n  connections: '8'\n", "download.connections: expected a whole number"),
    ("download:\n  endpoint: ftp://mirror.example\n", "download.endpoint: expected an http"),
    ("download: fast\n", "download: expected a mapping of settings, got 'fast'"),
    ("tokens:\n  hf: [a, b]\n", "tokens.hf: expected a string (quote it)"),
    ("models_dir: [a, b]\n", "models_dir: expected a string"),
    ("aliendao:\n  sitee: https://x\n", "aliendao.sitee: unknown setting"),
    ("downloads:\n  sources: [hf]\n", "downloads: unknown setting"),
])
def test_each_problem_names_the_dotted_key_and_what_was_expected(cli, llmsetup_home, text,
                                                                  expected):
    write_config(llmsetup_home, text)
    result = cli("list")
    assert result.exit_code == 2
    assert expected in result.stderr, result.stderr


def test_a_token_of_the_wrong_type_is_not_echoed(cli, llmsetup_home):
    write_config(llmsetup_home, "tokens:\n  hf: 123456789\n")
    result = cli("list")
    assert result.exit_code == 2 and "tokens.hf" in result.stderr
    assert "123456789" not in result.stderr


def test_several_problems_are_listed_by_line(cli, llmsetup_home):
    write_config(llmsetup_home, "pip:\n  mirror: x\ndownload:\n  connections: eight\n")
    result = cli("list")
    assert result.exit_code == 2
    assert "2 problems" in result.stderr
    assert result.stderr.index("pip.mirror") < result.stderr.index("download.connections")


def test_empty_sections_and_an_empty_file_are_fine(cli, llmsetup_home):
    write_config(llmsetup_home, "# nothing yet\ntokens:\npip:\n")
    assert cli("list").exit_code == 0
    write_config(llmsetup_home, "")
    assert cli("list").exit_code == 0


def test_a_good_config_reads_as_before(llmsetup_home):
    write_config(llmsetup_home, "pip:\n  mirror: ustc\nenv:\n  backend: conda\n"
                 "download:\n  connections: 4\n  endpoint: https://mirror.example/hf\n"
                 "git:\n  mirror: https://ghproxy.example/\n")
    settings = Settings.load()
    assert settings.get("pip.mirror") == "ustc"
    assert settings.get("download.connections") == 4
    assert settings.get("pip.index_url") is None
    assert settings.get("pip.index_url", "d") == "d"
    assert settings.get("nope.nothing") is None


def test_yaml_tags_in_the_config_are_refused(cli, llmsetup_home):
    write_config(llmsetup_home, "pip:\n  mirror: !!python/object/apply:os.system [ls]\n")
    result = cli("list")
    assert result.exit_code == 2
    assert "config.yaml:2: tags are not allowed" in result.stderr


def test_a_key_set_twice_is_named(cli, llmsetup_home):
    write_config(llmsetup_home, "pip:\n  mirror: ustc\n  mirror: tuna\n")
    result = cli("list")
    assert result.exit_code == 2 and "config.yaml:3: pip.mirror: set twice" in result.stderr


def test_json_mode_of_a_command_with_a_bad_config_exits_2(cli, llmsetup_home):
    write_config(llmsetup_home, "download:\n  connections: eight\n")
    result = cli("list", "--json")
    assert result.exit_code == 2
    assert "download.connections" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and "download.connections" in doc["error"]["message"]


def test_the_schema_names_the_same_choices_as_the_code_that_uses_them():
    from llmsetup import config_schema
    from llmsetup.download.ref import DOWNLOAD_SOURCES
    from llmsetup.envs import BACKEND_NAMES
    from llmsetup.envs.base import PIP_MIRRORS

    assert set(typing.get_args(config_schema.PipMirror)) == set(PIP_MIRRORS)
    assert set(typing.get_args(config_schema.Backend)) == set(BACKEND_NAMES)
    assert set(typing.get_args(config_schema.SourceName)) == set(DOWNLOAD_SOURCES)


def test_a_config_that_validated_is_not_validated_again(llmsetup_home, monkeypatch):
    from llmsetup import config_schema

    write_config(llmsetup_home, "download:\n  sources: modelscope\n")
    assert Settings.load().get("download.sources") == ["modelscope"]
    monkeypatch.setattr(config_schema, "validate", lambda *a: pytest.fail("validated again"))
    assert Settings.load().get("download.sources") == ["modelscope"]
    # Any change to the file is seen.
    write_config(llmsetup_home, "download:\n  sources: hf\n")
    with pytest.raises(pytest.fail.Exception):
        Settings.load()


def test_a_config_with_tokens_is_never_cached(llmsetup_home):
    write_config(llmsetup_home, "tokens:\n  hf: hf_secret_value\n")
    assert Settings.load().token("hf").reveal() == "hf_secret_value"
    cache = llmsetup_home / "cache" / "config.json"
    assert not cache.exists() or "hf_secret_value" not in cache.read_text()


def test_a_config_with_tokens_readable_by_others_warns_with_the_fix(llmsetup_home, tmp_path):
    """A plain `Warning:` line from the CLI, not a raw Python UserWarning."""
    import subprocess
    import sys

    path = write_config(llmsetup_home, "tokens:\n  hf: hf_secret_value\n")
    path.chmod(0o644)
    proc = subprocess.run([sys.executable, "-W", "default", "-m", "llmsetup", "list"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"Warning: {path} holds tokens and is readable by other users; run `chmod 600 {path}`"]
    assert "hf_secret_value" not in proc.stderr + proc.stdout
    path.chmod(0o600)
    proc = subprocess.run([sys.executable, "-m", "llmsetup", "list"], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and proc.stderr == ""


def test_token_to_mirrors_is_a_yes_or_no(cli, llmsetup_home):
    write_config(llmsetup_home, "download:\n  token_to_mirrors: true\n")
    assert Settings.load().get("download.token_to_mirrors") is True
    write_config(llmsetup_home, "download:\n  token_to_mirrors: 'sure'\n")
    result = cli("list")
    assert result.exit_code == 2 and "download.token_to_mirrors" in result.stderr


@pytest.mark.parametrize("where", ["env", "config"])
def test_a_recipe_folder_that_does_not_exist_is_named_not_skipped(cli, llmsetup_home, tmp_path,
                                                                   monkeypatch, where):
    """A typo in the path would otherwise hide the user's recipes without a word."""
    good = tmp_path / "recipes"
    good.mkdir()
    typo = tmp_path / "recipies"
    if where == "env":
        monkeypatch.setenv("LLMSETUP_RECIPES_PATH", f"{good}:{typo}")
    else:
        write_config(llmsetup_home, f"recipes_path:\n  - {good}\n  - {typo}\n")
    result = cli("list")
    assert result.exit_code == 2, result.output
    flat = " ".join(result.stderr.split())
    named = "LLMSETUP_RECIPES_PATH" if where == "env" else "recipes_path in "
    assert named in flat and f"'{typo}': expected an existing folder (there is no such" in flat
    assert "separated by ':'" in flat and "Traceback" not in result.stderr
    typo.write_text("a file")
    assert "(this is a file)" in " ".join(cli("list").stderr.split())
    typo.unlink()
    typo.mkdir()
    assert cli("list").exit_code == 0
