"""The core's messages in Chinese: config file problems, recipe validation, value checks,
YAML problems, subprocess failures, `prune`'s report; and what stays English in both
languages (``--json`` keys and kinds, log files, pydantic's own words in English)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmsetup import i18n
from llmsetup.errors import ProcessError, RecipeError, UsageError
from tests.test_recipes_validate import GOOD

# Six problems on six lines: a literal, a pattern, our own validator, a number, a bound,
# an unknown field.
BROKEN = (GOOD.replace("kind: causal-lm", "kind: chatbot")
          .replace("python: '3.10'", "python: 'three'")
          .replace("torch==2.0.1", "torch=2.0.1")
          .replace("params: 1.0e9", "params: lots")
          + "prams: 3\nsmoke:\n  max_new_tokens: -5\n")


def _speak(lang: str, monkeypatch) -> None:
    monkeypatch.setenv("LLMSETUP_LANG", lang)
    i18n.choose()


# -- the config file ------------------------------------------------------------------------


def test_config_file_problems_in_chinese_name_file_line_and_dotted_key(zh, tmp_path):
    from llmsetup.settings import load_config

    path = tmp_path / "config.yaml"
    path.write_text("download:\n  connections: 100\n  sources: [hf, nope]\npip:\n  mirrr: x\n")
    with pytest.raises(UsageError) as err:
        load_config(path)
    message = err.value.message
    assert f"{path}: 配置文件中有 3 个问题" in message
    assert f"{path}:2: download.connections: 应不大于 64，实际为 100" in message
    assert (f"{path}:3: download.sources[1]: 应为以下之一："
            "'hf', 'hf-mirror', 'aliendao' 或 'modelscope'，实际为 'nope'") in message
    assert f"{path}:5: pip.mirrr: 未知的设置项" in message
    assert err.value.hint.startswith("已知的设置项：pip.mirror, ")


def test_config_file_errors_through_the_cli_in_chinese(zh, cli, llmsetup_home):
    config = Path(os.environ["LLMSETUP_CONFIG"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("download:\n  endpoint: ftp://mirror\n")
    result = cli("list")
    assert result.exit_code == 2
    assert (f"{config}:2: download.endpoint: 应为带主机名的 http:// 或 https:// URL，例如 "
            "https://hf-mirror.com，实际为 'ftp://mirror'") in result.stderr
    config.write_text("download: [unclosed\n")
    result = cli("list")
    assert result.exit_code == 2
    assert "配置文件不是有效的 YAML：" in result.stderr
    assert "请检查该行附近的缩进和引号。" in result.stderr


def test_config_warning_and_models_dir_in_chinese(zh, tmp_path, monkeypatch):
    from llmsetup.settings import Settings, config_warnings

    path = tmp_path / "config.yaml"
    path.write_text("tokens:\n  hf: hf_abcdefgh\n")
    path.chmod(0o644)
    assert config_warnings(path, {"tokens": {"hf": "x"}}) == [
        f"{path} 中有访问令牌，且其他用户可读；请运行 `chmod 600 {path}`"]
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("LLMSETUP_MODELS_DIR", str(tmp_path / "afile" / "models"))
    with pytest.raises(UsageError) as err:
        Settings.load()
    assert f"LLMSETUP_MODELS_DIR: '{tmp_path / 'afile' / 'models'}': 应为目录（" \
           f"{tmp_path / 'afile'} 是一个文件）" == err.value.message
    assert err.value.hint == "请让它指向存放模型的目录（不存在时会自动创建）。"


# -- recipes ----------------------------------------------------------------------------


def test_recipe_validation_problems_in_chinese_keep_file_line_and_field(zh, cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BROKEN)
    result = cli("recipes", "validate", path)
    assert result.exit_code == 2
    err = result.stderr
    assert f"{path}:2: kind: 应为 'causal-lm' 或 'asr'" in err
    assert f"{path}:7: env.python: 字符串应匹配模式 '^3\\.\\d{{1,2}}$'" in err
    assert (f"{path}:9: profiles.book[0]: 'torch=2.0.1' 不是有效的依赖声明"
            "（应形如 'torch==2.0.1'）") in err
    assert f"{path}:10: params: 应为有效的数字，无法把字符串解析为数字" in err
    assert f"{path}:11: prams: 未知字段（请检查拼写；配方的字段说明见 docs/recipes.md）" in err
    assert f"{path}:13: smoke.max_new_tokens: 应大于或等于 1" in err
    assert "Input should" not in err and "String should" not in err


def test_recipe_file_problems_in_chinese(zh, tmp_path):
    from llmsetup.recipes.loader import Catalog, load_file

    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(RecipeError) as err:
        load_file(empty)
    assert err.value.message == f"{empty}: 文件为空"
    assert err.value.hint == "配方是一个 YAML 映射；示例见 `llmsetup show demo`。"
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text(GOOD.replace("kind: causal-lm", "kind: !custom asr"))
    with pytest.raises(RecipeError) as err:
        load_file(tagged)
    assert err.value.message == f"{tagged}:2: 不允许使用标签（!custom）"
    missing = tmp_path / "missing.yaml"
    missing.write_text(GOOD.replace("kind: causal-lm\n", "") + "kind: asr\nkind: asr\n")
    with pytest.raises(RecipeError) as err:
        load_file(missing)
    assert err.value.problems[0] == f"{missing}:11: kind: 键重复"
    with pytest.raises(Exception) as err:
        Catalog().get("gema")
    assert err.value.message == "没有名为 'gema' 的配方"
    assert err.value.hint.startswith("你要找的是不是 gemma-")


def _keys(doc):
    """The keys of a JSON document, at every level, with list positions."""
    if isinstance(doc, dict):
        return {k: _keys(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_keys(v) for v in doc]
    return None


def test_recipes_validate_json_keys_are_the_same_in_both_languages(cli, tmp_path, monkeypatch):
    from tests.conftest import build_catalog

    build_catalog()
    (tmp_path / "bad.yaml").write_text(BROKEN)
    (tmp_path / "good.yaml").write_text(GOOD)
    docs = {}
    for lang in ("en", "zh"):
        _speak(lang, monkeypatch)
        result = cli("recipes", "validate", tmp_path / "good.yaml", tmp_path / "bad.yaml",
                     "--json")
        assert result.exit_code == 2
        docs[lang] = json.loads(result.stdout)
    _speak("en", monkeypatch)
    en, zh_doc = docs["en"], docs["zh"]
    assert _keys(en) == _keys(zh_doc)
    assert en["valid"] is zh_doc["valid"] is False
    assert [(f["file"], f["ok"], f.get("name")) for f in en["files"]] == \
        [(f["file"], f["ok"], f.get("name")) for f in zh_doc["files"]]
    assert "required" not in json.dumps(zh_doc)
    assert en["files"][1]["problems"][0].endswith("kind: Input should be 'causal-lm' or 'asr'")
    assert zh_doc["files"][1]["problems"][0].endswith("kind: 应为 'causal-lm' 或 'asr'")


def test_the_recipe_index_keeps_its_problems_per_language(tmp_path, monkeypatch):
    """`llmsetup list` reads a cached index: a broken recipe's warning must not stay in the
    language of the run that cached it."""
    from llmsetup.recipes.loader import Catalog
    from tests.conftest import build_catalog

    build_catalog()
    user = tmp_path / "recipes"
    user.mkdir()
    (user / "bad.yaml").write_text(GOOD.replace("kind: causal-lm\n", ""))
    cache = tmp_path / "cache"
    Catalog([user], include_bundled=False, cache_dir=cache).index()
    _speak("zh", monkeypatch)
    try:
        catalog = Catalog([user], include_bundled=False, cache_dir=cache)
        catalog.index()
        assert catalog.problem_messages == [f"{user / 'bad.yaml'}:1: kind: 缺少必填字段"]
    finally:
        _speak("en", monkeypatch)
    catalog = Catalog([user], include_bundled=False, cache_dir=cache)
    catalog.index()
    assert catalog.problem_messages == [f"{user / 'bad.yaml'}:1: kind: required field is missing"]


# -- values, YAML, pydantic --------------------------------------------------------------


def test_value_checks_in_chinese_and_constants_untranslated(zh):
    from llmsetup import values

    assert values.number_problem(3.0, low=0, high=2) == "取值在 [0, 2] 内的数"
    assert values.http_url_problem("ftp://x") == \
        "带主机名的 http:// 或 https:// URL，例如 https://hf-mirror.com"
    assert values.max_memory_problem("gpu=1").startswith("以逗号分隔的 DEVICE=SIZE 对")
    assert values.override_problem("num_hidden_layers=0") == "不小于 1 的整数（num_hidden_layers）"
    # Marked where defined, translated where shown: the constant itself stays English.
    assert values.MAX_MEMORY_ACCEPTED.startswith("DEVICE=SIZE pairs separated by commas")


def test_pydantic_words_stay_pydantic_own_in_english_and_are_translated_in_chinese(
        monkeypatch):
    from typing import Literal

    from pydantic import BaseModel, Field, ValidationError

    from llmsetup.yamlfile import validation_message
    from tests.conftest import build_catalog

    class Model(BaseModel):
        a: Literal["x", "y", "z"]
        b: str = Field(pattern=r"^3\.\d$")
        c: int = Field(ge=1, le=5)
        d: float = Field(gt=0)
        e: bool
        f: list[str] = Field(min_length=1)
        g: dict[str, str]
        h: str = Field(min_length=2)
        i: int
        j: float
        k: str

    def errors(data):
        with pytest.raises(ValidationError) as exc:
            Model.model_validate(data)
        return exc.value.errors(include_url=False)

    errs = errors(dict(a="q", b="x", c=0, d=0, e="maybe", f=[], g=[], h="", i="x", j="x", k=3)) \
        + errors(dict(a=1, b="3.1", c=9, d=1, e=[], f="s", g={}, h="ab", i=1.5, j=[], k="k"))
    assert len(errs) > 15
    assert [validation_message(e) for e in errs] == [e["msg"] for e in errs]
    build_catalog()
    _speak("zh", monkeypatch)
    try:
        shown = [validation_message(e) for e in errs]
    finally:
        _speak("en", monkeypatch)
    assert not [s for s in shown if "should" in s], shown
    assert "应为 'x', 'y' 或 'z'" in shown
    assert "列表至少应有 1 项，实际为 0 项" in shown
    assert "字符串至少应有 2 个字符" in shown


# -- proc ---------------------------------------------------------------------------------


def test_a_failed_command_in_chinese_and_its_log_in_english(zh, tmp_path):
    from llmsetup import proc

    log = tmp_path / "logs" / "step.log"
    with pytest.raises(ProcessError) as err:
        proc.run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
                 what="pip install", log=log)
    assert err.value.message == "pip install 失败（退出状态 3）"
    assert err.value.hint == f"完整输出见 {log}"
    text = log.read_text(encoding="utf-8")
    assert "=== exit status 3 after" in text and "boom" in text
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in text)  # no Chinese in the log
    with pytest.raises(ProcessError) as err:
        proc.run([str(tmp_path / "no-such-program")], what="conda")
    assert err.value.message == f"conda：无法运行 '{tmp_path / 'no-such-program'}'：找不到该程序"
    assert err.value.hint.startswith("请安装它或检查 PATH；")


# -- housekeeping -------------------------------------------------------------------------


def _prunable(home: Path) -> int:
    models = Path(os.environ["LLMSETUP_MODELS_DIR"])
    state = models / "org" / "tiny" / ".llmsetup"
    (state / "partial").mkdir(parents=True)
    (state / "partial" / "model.safetensors.part").write_bytes(b"x" * 100)
    (state / "lock").write_text("")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (state / "lock.owner").write_text(str(dead.pid))
    (home / "envs" / "orphan").mkdir(parents=True)
    logs = home / "logs" / "r"
    logs.mkdir(parents=True)
    (logs / "old.log").write_text("old\n")
    month_ago = time.time() - 40 * 86400
    os.utime(logs / "old.log", (month_ago, month_ago))
    return dead.pid


def test_prune_dry_run_says_why_in_chinese_and_json_kinds_stay_english(
        cli, llmsetup_home, monkeypatch):
    from tests.conftest import build_catalog

    build_catalog()
    pid = _prunable(llmsetup_home)
    _speak("zh", monkeypatch)
    try:
        result = cli("prune", "--dry-run")
        assert result.exit_code == 0, result.output
        out = result.stdout
        assert "tiny 未完成的下载" in out
        assert f"pid {pid} 留下的下载锁，该进程已不在运行" in out
        assert "没有任何配方的记录指向它" in out
        assert "超过 30 天" in out
        zh_doc = json.loads(cli("prune", "--dry-run", "--json").stdout)
    finally:
        _speak("en", monkeypatch)
    en_doc = json.loads(cli("prune", "--dry-run", "--json").stdout)
    assert _keys(zh_doc) == _keys(en_doc)
    assert [i["kind"] for i in zh_doc["remove"]] == [i["kind"] for i in en_doc["remove"]] \
        == ["partial", "lock", "env", "log"]
    assert [i["note"] for i in en_doc["remove"]] == [
        "unfinished download of tiny", f"download lock left by pid {pid}, not running",
        "no recipe's record points to it", "older than 30 days"]


def test_rm_refuses_outside_paths_in_chinese(zh, tmp_path):
    from llmsetup.housekeeping.disk import Item, remove_item

    outside = tmp_path / "elsewhere" / "file"
    outside.parent.mkdir()
    outside.write_text("x")
    with pytest.raises(UsageError) as err:
        remove_item(Item("model", outside, 1), [tmp_path / "models"])
    assert err.value.message == f"拒绝删除 {outside}：它不在 llmsetup 管理的目录中"
    assert err.value.hint == "如果确定，请手动删除。"
    assert outside.is_file()
