"""The Chinese interface (issue 17): which language is chosen, what is translated, what is
not (``--json``), and the catalog's completeness. The console script runs as a user runs
it, in a subprocess with the locale set; each area has its own tests too
(tests/test_i18n_*.py)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmsetup import i18n
from tests.conftest import build_catalog

ROOT = Path(__file__).resolve().parent.parent
LLMSETUP = [sys.executable, "-m", "llmsetup"]
LOCALE_VARS = ("LLMSETUP_LANG", "LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")


def run(*args: str, lang: str | None = None, llmsetup_lang: str | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``llmsetup ARGS`` with LANG=``lang`` and LLMSETUP_LANG=``llmsetup_lang`` (unset when
    None), nothing else of the locale set."""
    build_catalog()
    env = {k: v for k, v in os.environ.items() if k not in LOCALE_VARS}
    if lang:
        env["LANG"] = lang
    if llmsetup_lang:
        env["LLMSETUP_LANG"] = llmsetup_lang
    return subprocess.run([*LLMSETUP, *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


ZH = "zh_CN.UTF-8"


# ---- which language -----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("zh_CN.UTF-8", "zh"), ("zh_TW", "zh"), ("zh-Hans", "zh"), ("ZH", "zh"), ("en_US.UTF-8", "en"),
    ("C", "en"), ("POSIX", "en"), ("C.UTF-8", "en"), ("fr_FR.UTF-8", None), ("", None),
])
def test_language_names_are_read_as_users_write_them(value, expected):
    assert i18n.normalize(value) == expected


def test_locale_order_is_lc_all_then_lc_messages_then_lang():
    assert i18n.from_locale({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}) == "zh"
    assert i18n.from_locale({"LC_MESSAGES": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert i18n.from_locale({"LANG": "zh_SG.UTF-8"}) == "zh"
    assert i18n.from_locale({"LANG": "de_DE.UTF-8"}) == "en"
    assert i18n.from_locale({}) == "en"


def test_choice_order_flag_then_env_then_config_then_locale(monkeypatch):
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.delenv("LLMSETUP_LANG")
    try:
        assert i18n.choose() == "zh"
        assert i18n.choose(config_lang=lambda: "en") == "en"
        monkeypatch.setenv("LLMSETUP_LANG", "zh")
        assert i18n.choose(config_lang=lambda: "en") == "zh"
        assert i18n.choose("en", config_lang=lambda: "zh") == "en"
        # A broken config file does not stop the choice (the command reports the file).
        monkeypatch.delenv("LLMSETUP_LANG")

        def broken() -> str:
            raise ValueError("bad config")

        assert i18n.choose(config_lang=broken) == "zh"
    finally:
        monkeypatch.setenv("LLMSETUP_LANG", "en")
        i18n.choose()


def test_messages_follow_the_choice_within_one_process(zh):
    assert i18n._("Show this message and exit.") == "显示本帮助并退出。"
    assert i18n.child_env() == {"LLMSETUP_LANG": "zh"}
    i18n.choose("en")
    assert i18n._("Show this message and exit.") == "Show this message and exit."


# ---- what a user sees ---------------------------------------------------------------------

def test_root_help_is_chinese_under_a_chinese_locale():
    out = run("--help", lang=ZH)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("用法：llmsetup")
    assert "一条命令安装本地大语言模型和语音模型" in out.stdout
    assert "显示本帮助并退出。" in out.stdout
    assert "Usage:" not in out.stdout and "Show this message" not in out.stdout


@pytest.mark.parametrize("how", [
    {"lang": ZH, "llmsetup_lang": "en"},  # LLMSETUP_LANG=en under a Chinese locale
    {"lang": "C.UTF-8"},
    {"lang": None},
])
def test_root_help_is_english_otherwise(how):
    out = run("--help", **how)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: llmsetup")
    assert "Install local LLMs and speech models in one command" in out.stdout
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in out.stdout)


def test_lang_flag_wins_over_environment_and_locale():
    assert run("--lang", "en", "--help", lang=ZH).stdout.startswith("Usage:")
    assert run("--lang", "zh", "--help", llmsetup_lang="en").stdout.startswith("用法：")
    assert run("--lang=zh", "--help", lang="C.UTF-8").stdout.startswith("用法：")
    bad = run("--lang", "fr", "list", lang="C.UTF-8")
    assert bad.returncode == 2 and "expected zh or en" in bad.stderr


def test_config_lang_is_read_before_the_locale(tmp_path, llmsetup_home):
    llmsetup_home.mkdir(parents=True, exist_ok=True)
    (llmsetup_home / "config.yaml").write_text("lang: zh\n")
    assert run("--help", lang="C.UTF-8").stdout.startswith("用法：")
    assert run("--help", lang=ZH, llmsetup_lang="en").stdout.startswith("Usage:")
    (llmsetup_home / "config.yaml").write_text("lang: fr\n")
    wrong = run("list", lang="C.UTF-8")
    assert wrong.returncode == 2 and "lang" in wrong.stderr


def test_install_help_is_chinese():
    out = run("install", "--help", lang=ZH)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("用法：llmsetup install")
    assert "选项" in out.stdout and "--dry-run" in out.stdout
    english = run("install", "--help", lang="C.UTF-8").stdout
    # Every option's help is translated: no English help line is left as it was.
    zh_lines = set(out.stdout.splitlines())
    same = [line for line in english.splitlines()
            if line in zh_lines and len(line.split()) > 4 and not line.strip().startswith("-")]
    assert same == []


def test_an_error_and_its_hint_are_chinese(tmp_path):
    missing = tmp_path / "no-such-model"
    out = run("verify", str(missing), lang=ZH)
    assert out.returncode == 2
    assert out.stderr.startswith("错误：")
    assert str(missing) in out.stderr
    assert "提示：" in out.stderr
    english = run("verify", str(missing), lang="C.UTF-8")
    assert english.returncode == 2 and english.stderr.startswith("Error: ")


def test_a_bad_command_line_is_reported_in_chinese():
    out = run("list", "--jsn", lang=ZH)
    assert out.returncode == 2
    assert "用法：llmsetup list" in out.stderr
    assert "错误：没有这个选项：--jsn" in out.stderr
    assert "--json" in out.stderr  # click's suggestion, kept


def test_dry_run_plan_is_chinese(tmp_path):
    zh = run("install", "demo", "--dry-run", lang=ZH, cwd=tmp_path)
    en = run("install", "demo", "--dry-run", lang="C.UTF-8", cwd=tmp_path)
    assert zh.returncode == 0 and en.returncode == 0, zh.stderr + en.stderr
    assert zh.stdout != en.stdout
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in zh.stdout)
    assert han > 20, zh.stdout
    # Names and paths are not translated.
    assert "demo" in zh.stdout


# ---- what is the same in both languages ---------------------------------------------------

# Prose: what a person reads, in the chosen language (docs/json.md). Everything else (keys,
# codes, enumerated values, names, paths, numbers) is what programs read.
HUMAN_KEYS = {"message", "hint", "description", "detail", "note", "notes", "problems",
              "summary", "advice", "warnings", "reason", "text", "error", "errors", "gpu_check"}


def _shape(value, key: str = ""):
    """The document with the human text (under HUMAN_KEYS) blanked: keys, codes, numbers,
    names and paths are what programs read and must not change with the language."""
    if isinstance(value, dict):
        return {k: _shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v, key) for v in value]
    if isinstance(value, str) and key in HUMAN_KEYS:
        return "<text>"
    return value


@pytest.mark.parametrize("args", [
    ("list",), ("show", "demo"), ("show", "gemma-2b"), ("doctor", "gemma-2b"),
    ("install", "demo", "--dry-run"), ("verify", "/no/such/model"), ("check", "demo"),
    ("prune", "--dry-run"), ("list", "--bogus"),
])
def test_json_is_the_same_in_both_languages(args, tmp_path):
    zh = run(*args, "--json", lang=ZH, cwd=tmp_path)
    en = run(*args, "--json", lang="C.UTF-8", cwd=tmp_path)
    assert zh.returncode == en.returncode
    zh_doc, en_doc = json.loads(zh.stdout), json.loads(en.stdout)
    assert _shape(zh_doc) == _shape(en_doc)
    if not en_doc.get("ok", True):
        assert zh_doc["error"]["code"] == en_doc["error"]["code"] if "error" in en_doc \
            else zh_doc.get("code") == en_doc.get("code")


# ---- the catalog --------------------------------------------------------------------------

def _tool():
    build_catalog()
    return sys.modules["llmsetup_i18n_tool"]


def _check(*paths: Path) -> subprocess.CompletedProcess:
    """``scripts/i18n.py check [PATHS]``, as a developer runs it."""
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "i18n.py"), "check",
                           *map(str, paths)], capture_output=True, text=True)


def test_every_message_has_a_chinese_translation_with_the_same_placeholders():
    proc = _check()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("; 0 problems")


def test_the_check_fails_for_a_new_message_without_translation(tmp_path):
    source = tmp_path / "new.py"
    source.write_text('from llmsetup.i18n import _\n\nprint(_("A brand new message {x}").format(x=1))\n'
                      'print(_("Show this message and exit."))\n')
    proc = _check(source)
    assert proc.returncode == 1
    assert "A brand new message {x}" in proc.stdout and "1 problems" in proc.stdout


def test_the_check_fails_for_an_f_string_or_a_sum(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text('from llmsetup.i18n import _\nname = "x"\n'
                      'a = _(f"{name} is missing")\nb = _("a" + name)\nc = _("{n}".format(n=1))\n')
    proc = _check(source)
    assert proc.returncode == 1
    assert proc.stderr.count("needs a plain string literal") == 3


def test_placeholders_that_differ_are_found():
    tool = _tool()
    entry = tool.Entry("{name} is missing ({count})", None, [""], ["x.py:1"])
    good = tool.Entry(entry.msgid, None, ["缺少 {name}（{count}）"])
    bad = tool.Entry(entry.msgid, None, ["缺少 {名字}（{count}）"])
    assert tool.problems_of({entry.key: entry}, {entry.key: good}) == []
    [problem] = tool.problems_of({entry.key: entry}, {entry.key: bad})
    assert "placeholders differ" in problem


def test_the_compiled_catalog_is_read_by_gettext(tmp_path):
    """The .mo the build writes is a GNU catalog: the standard library reads it."""
    import gettext

    tool = _tool()
    header, entries = tool.read_po(tool.po_path())
    mo = tmp_path / "llmsetup.mo"
    mo.write_bytes(tool.mo_bytes(header, entries))
    with mo.open("rb") as fp:
        catalog = gettext.GNUTranslations(fp)
    translated = [e for e in entries.values() if e.translated and e.plural is None]
    assert len(translated) > 300
    for e in translated:
        assert catalog.gettext(e.msgid) == e.msgstr[0]
    assert catalog.info()["language"] == "zh_CN"


def _binds_underscore(scope: ast.AST) -> list[int]:
    """Lines where ``scope`` itself (not a nested function or class) binds the name ``_``."""
    lines = []
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if (isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, ast.Store)) or (isinstance(node, ast.ExceptHandler) and node.name == "_") or (isinstance(node, ast.arg) and node.arg == "_"):
            lines.append(node.lineno)
        stack.extend(ast.iter_child_nodes(node))
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        lines += [a.lineno for a in scope.args.args + scope.args.kwonlyargs if a.arg == "_"]
    return lines


def _calls_underscore(scope: ast.AST) -> bool:
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_":
            return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def _plain_rebinding(tree: ast.Module, line: int) -> bool:
    """``_ = <something>`` at module level: how a runtime module names its translator."""
    return any(isinstance(n, ast.Assign) and n.lineno == line and len(n.targets) == 1
               and isinstance(n.targets[0], ast.Name) for n in tree.body)


def test_no_function_hides_the_translation_function_behind_a_throwaway_variable():
    """``for _ in ...`` in a function that also calls ``_()`` makes ``_`` a local there:
    the call fails (UnboundLocalError), in English as in Chinese, only on that path."""
    found = []
    for path in sorted((ROOT / "src" / "llmsetup").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(ROOT)
        if not _calls_underscore(tree) and not any(
                _calls_underscore(n) for n in ast.walk(tree)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            continue
        for scope in ast.walk(tree):
            if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and _calls_underscore(scope):
                found += [f"{where}:{line}" for line in _binds_underscore(scope)]
        found += [f"{where}:{line} (module level)" for line in _binds_underscore(tree)
                  if not _plain_rebinding(tree, line)]
    assert found == []


def test_the_throwaway_check_finds_one():
    tree = ast.parse("def f(xs):\n    for _ in xs:\n        pass\n    return _('x')\n")
    [fn] = tree.body
    assert _calls_underscore(fn) and _binds_underscore(fn) == [2]


COMMANDS = ["list", "show", "doctor", "install", "download", "check", "verify", "chat", "serve",
            "transcribe", "bench", "rm", "prune", "recipes"]


def test_chinese_help_fits_the_terminal_width():
    """Click wraps by characters; a Chinese character takes two columns. The help of every
    command fits 80 columns as the terminal shows them."""
    from llmsetup.cli._click_text import display_width

    build_catalog()
    env = {k: v for k, v in os.environ.items() if k not in LOCALE_VARS}
    env.update(LANG=ZH, COLUMNS="80")
    for args in [[], *([c] for c in COMMANDS)]:
        out = subprocess.run([*LLMSETUP, *args, "--help"], capture_output=True, text=True,
                             env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        wide = [line for line in out.stdout.splitlines() if display_width(line) > 80]
        assert wide == [], (args, wide)


def test_the_wide_wrapper_breaks_chinese_between_characters_and_keeps_punctuation(zh):
    from llmsetup.cli._click_text import WideWrapper, display_width

    wrapper = WideWrapper(width=20, replace_whitespace=False)
    lines = wrapper.wrap("安装模型：环境、固定版本的依赖、CUDA 检查、下载、验证。")
    assert all(display_width(line) <= 20 for line in lines)
    assert "".join(lines) == "安装模型：环境、固定版本的依赖、CUDA 检查、下载、验证。"
    assert not any(line[0] in "，。、：）" for line in lines)
    assert not any(line.endswith("（") for line in wrapper.wrap("一二三四五六七八（九十）"))
    # A line break inside a Chinese paragraph is no space.
    assert WideWrapper(width=30).wrap("过期的下载锁、\n没有任何") == ["过期的下载锁、没有任何"]
    # English words are never cut.
    assert WideWrapper(width=12).wrap("install demo --dry-run") == ["install demo", "--dry-run"]
