"""`llmsetup recipes validate`: ten broken recipes, ten clear messages, exit status 2."""

from __future__ import annotations

import itertools

import pytest

GOOD = """\
name: my-model
kind: causal-lm
description: A model of my own
repo_id: me/my-model
env:
  name: my-model
  python: '3.10'
profiles:
  book: [torch==2.0.1, transformers==4.38.1]
params: 1.0e9
"""

# (name, recipe text, what the message must say: line number and words)
BROKEN = [
    ("missing-field", GOOD.replace("kind: causal-lm\n", ""),
     [":1:", "kind", "required field is missing"]),
    ("wrong-type", GOOD.replace("params: 1.0e9", "params: lots"),
     [":10:", "params", "number"]),
    ("unknown-key", GOOD + "prams: 3\n", [":11:", "prams", "unknown field"]),
    ("bad-yaml", GOOD.replace("  python: '3.10'", "  python: '3.10\n  oops: [1,"),
     ["not valid YAML"]),
    ("bad-kind", GOOD.replace("kind: causal-lm", "kind: chatbot"),
     [":2:", "kind", "'causal-lm' or 'asr'"]),
    ("bad-pin", GOOD.replace("torch==2.0.1", "torch=2.0.1"),
     [":9:", "profiles.book[0]", "not a valid requirement"]),
    ("bad-python", GOOD.replace("python: '3.10'", "python: 'three'"),
     [":7:", "env.python", "pattern"]),
    ("duplicate-key", GOOD + "kind: asr\n", [":11:", "kind", "duplicate key"]),
    ("not-a-mapping", "- just\n- a list\n", [":1:", "mapping"]),
    ("default-profile-missing", GOOD + "default_profile: modern\n",
     ["default_profile", "'modern' is not one of the profiles"]),
    ("negative-tokens", GOOD + "smoke:\n  max_new_tokens: -5\n",
     [":12:", "smoke.max_new_tokens", "greater than or equal to 1"]),
    ("empty-file", "", ["empty"]),
]


def test_good_recipe_validates(cli, tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    result = cli("recipes", "validate", path)
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout and "my-model" in result.stdout


@pytest.mark.parametrize(("name", "text", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_recipe_gives_a_clear_message_and_exit_2(cli, tmp_path, name, text, expected):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    result = cli("recipes", "validate", path)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    message = result.stderr
    assert str(path) in message
    for words in expected:
        assert words in message, (words, message)


def test_json_lists_every_problem(cli, tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(GOOD.replace("kind: causal-lm", "kind: chatbot") + "prams: 3\n")
    result = cli("recipes", "validate", path, "--json")
    assert result.exit_code == 2
    import json

    doc = json.loads(result.stdout)
    assert doc["valid"] is False
    assert len(doc["files"][0]["problems"]) == 2


def test_broken_user_recipe_is_skipped_by_list_with_a_warning(cli, tmp_path):
    (tmp_path / "bad.yaml").write_text(GOOD.replace("kind: causal-lm\n", ""))
    (tmp_path / "good.yaml").write_text(GOOD)
    result = cli("--recipes-dir", tmp_path, "list", "--json")
    assert result.exit_code == 0
    import json

    names = [r["name"] for r in json.loads(result.stdout)["recipes"]]
    assert "my-model" in names and "gemma-2b" in names
    assert "skipped a broken recipe" in result.stderr


def test_show_of_a_broken_recipe_exits_2(cli, tmp_path):
    (tmp_path / "my-model.yaml").write_text(GOOD.replace("params: 1.0e9", "params: lots"))
    result = cli("--recipes-dir", tmp_path, "show", "my-model")
    assert result.exit_code == 2
    assert "params" in result.stderr and "Traceback" not in result.output


# -- hostile YAML (issue 12, items 10 and 11) ------------------------------------------

TAGGED = [
    ("custom-tag", GOOD.replace("kind: causal-lm", "kind: !custom asr"), ":2:"),
    ("python-tag", GOOD + "x: !!python/object/apply:os.system ['echo pwned']\n", ":11:"),
    ("python-name", GOOD.replace("params: 1.0e9", "params: !!python/name:os.system"), ":10:"),
    ("binary-tag", GOOD.replace("description: A model of my own",
                                "description: !!binary aGVsbG8="), ":3:"),
    ("tagged-mapping", GOOD.replace("env:\n", "env: !!python/object:argparse.Namespace\n"),
     ":5:"),
]


@pytest.mark.parametrize(("name", "text", "line"), TAGGED, ids=[t[0] for t in TAGGED])
def test_yaml_tags_are_refused_with_file_and_line(cli, tmp_path, name, text, line):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    result = cli("recipes", "validate", path)
    assert result.exit_code == 2, result.output
    assert f"{path}{line} tags are not allowed" in result.stderr
    assert "bug" not in result.output and "Traceback" not in result.output


def test_a_tagged_user_recipe_is_skipped_by_list_and_download(cli, tmp_path):
    (tmp_path / "tagged.yaml").write_text(GOOD.replace("kind: causal-lm", "kind: !custom asr"))
    (tmp_path / "good.yaml").write_text(GOOD)
    result = cli("--recipes-dir", tmp_path, "list")
    assert result.exit_code == 0, result.output
    assert "my-model" in result.stdout
    assert "Warning: skipped a broken recipe" in result.stderr
    assert "tags are not allowed" in result.stderr
    result = cli("--recipes-dir", tmp_path, "download", "nope-model")
    assert result.exit_code == 2 and "no recipe named 'nope-model'" in result.stderr


def billion_laughs(levels: int) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in itertools.pairwise("abcdefghijklmnop"[:levels]):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return GOOD + "\n".join(lines) + "\n"


@pytest.mark.timeout(20)
def test_an_alias_bomb_is_refused_at_once(cli, tmp_path):
    import time

    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs(9))  # 9**9 values once expanded: gigabytes, a minute
    start = time.monotonic()
    result = cli("recipes", "validate", path)
    elapsed = time.monotonic() - start
    assert result.exit_code == 2
    assert "aliases expand to more than" in result.stderr
    assert f"{path}:15:" in result.stderr  # the first list that is too big
    assert elapsed < 10  # a bound far above the ~0.1 s it takes: a hang is what this catches


def test_a_recursive_alias_is_refused(cli, tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text(GOOD + "extra: &loop [1, *loop]\n")
    result = cli("recipes", "validate", path)
    assert result.exit_code == 2 and "refers to a value that contains it" in result.stderr


def test_a_few_honest_aliases_still_work(cli, tmp_path):
    path = tmp_path / "aliases.yaml"
    path.write_text(GOOD.replace("profiles:\n  book: [torch==2.0.1, transformers==4.38.1]",
                                 "profiles:\n  book: &pins [torch==2.0.1, transformers==4.38.1]\n"
                                 "  modern: *pins"))
    result = cli("recipes", "validate", path)
    assert result.exit_code == 0, result.output


# -- one name, two files (issue 12, item 12) --------------------------------------------


def test_validate_refuses_two_files_with_one_name_naming_both(cli, tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD.replace("A model of my own", "Another"))
    result = cli("recipes", "validate", tmp_path / "a.yaml", tmp_path / "b.yaml")
    assert result.exit_code == 2
    assert f"'my-model' is defined in {tmp_path / 'a.yaml'} and {tmp_path / 'b.yaml'}" \
        in result.stderr


def test_show_warns_about_two_user_files_with_one_name_and_says_which_wins(cli, tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    (first / "x.yaml").write_text(GOOD.replace("A model of my own", "From one"))
    (second / "y.yaml").write_text(GOOD.replace("A model of my own", "From two"))
    result = cli("--recipes-dir", first, "--recipes-dir", second, "show", "my-model", "--json")
    assert result.exit_code == 0, result.output
    import json

    assert json.loads(result.stdout)["recipe"]["description"] == "From one"
    assert (f"Warning: recipe 'my-model' is defined in {first / 'x.yaml'} and "
            f"{second / 'y.yaml'}; using {first / 'x.yaml'} (precedence: --recipes-dir")\
        in result.stderr
    result = cli("--recipes-dir", first, "--recipes-dir", second, "list")
    assert result.exit_code == 0 and "is defined in" in result.stderr
    result = cli("--recipes-dir", first, "--recipes-dir", second, "list")  # the cached index
    assert "is defined in" in result.stderr


def test_the_file_named_after_the_recipe_wins_in_one_folder(cli, tmp_path):
    (tmp_path / "a-copy.yaml").write_text(GOOD.replace("A model of my own", "The copy"))
    (tmp_path / "my-model.yaml").write_text(GOOD)
    result = cli("--recipes-dir", tmp_path, "list", "--json")
    import json

    rows = {r["name"]: r for r in json.loads(result.stdout)["recipes"]}
    assert rows["my-model"]["description"] == "A model of my own"
    assert "is defined in" in result.stderr


def test_an_earlier_folder_wins_over_a_named_file_in_a_later_one(cli, tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    (first / "other-name.yaml").write_text(GOOD.replace("A model of my own", "From one"))
    (second / "my-model.yaml").write_text(GOOD.replace("A model of my own", "From two"))
    doc = cli.json("--recipes-dir", first, "--recipes-dir", second, "show", "my-model")
    assert doc["recipe"]["description"] == "From one"


def test_overriding_a_bundled_recipe_is_not_a_duplicate(cli, tmp_path):
    from llmsetup.recipes import bundled_dir

    (tmp_path / "gemma-2b.yaml").write_text((bundled_dir() / "gemma-2b.yaml").read_text())
    result = cli("--recipes-dir", tmp_path, "show", "gemma-2b")
    assert result.exit_code == 0 and "Warning" not in result.stderr


@pytest.mark.parametrize("depth", [999, 5000])
def test_values_nested_hundreds_deep_are_refused_not_a_crash(cli, tmp_path, depth):
    path = tmp_path / "deep.yaml"
    path.write_text(GOOD + "extra: " + "[" * depth + "]" * depth + "\n")
    result = cli("recipes", "validate", path)
    assert result.exit_code == 2, result.output
    assert "nested too deeply" in result.stderr or "maximum nesting depth" in result.stderr
    assert "bug" not in result.stderr
