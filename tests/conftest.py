"""Shared fixtures: an isolated llmsetup home, the CLI runner, tiny models.

Every test gets its own LLMSETUP_HOME, models dir and config file under a temporary folder,
so nothing touches the user's real state.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmsetup import i18n

# Fixtures of the speech tests (tiny Whisper models, espeak recordings) and the real small
# models that PyPI packages ship (tests/real_models.py), for every module.
pytest_plugins = ["tests.speech_fixtures", "tests.real_models"]

# A suite started in the background by a shell without job control inherits SIGINT as
# ignored, and an ignored signal stays ignored across exec: the CLI processes that tests
# interrupt would never see Ctrl-C. A handler (not an ignore) is reset to the default in
# every child, so they all get Python's usual KeyboardInterrupt.
signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "src" / "llmsetup" / "runtime"

# What makes a test slow: it builds a model, a Python environment or a compatibility env,
# or it installs. `pytest -m "not slow"` is the quick subset (see README, Development).
SLOW_FIXTURES = {"tiny_llama", "tiny_gemma_no_template", "chat_llama", "chat_gemma",
                 "long_llama", "tiny_whisper", "compat_whisper", "compat_python", "speech",
                 "wheels", "short_whisper"}
SLOW_MODULES = {"test_install_e2e", "test_install_conda", "test_install_envs",
                "test_wheel_install", "test_bench", "test_lm_compat", "test_torch_check",
                "test_webui_real", "test_journey", "test_leftover_children"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or \
                item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)

TINY_LLAMA = {
    "model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "vocab_size": 400, "max_position_embeddings": 256, "torch_dtype": "float32",
}
TINY_GEMMA = {
    "model_type": "gemma", "hidden_size": 32, "intermediate_size": 64, "head_dim": 8,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
    "vocab_size": 400, "max_position_embeddings": 256, "torch_dtype": "float32",
}


@pytest.fixture(autouse=True)
def llmsetup_home(tmp_path, monkeypatch):
    """A private LLMSETUP_HOME / models dir / config for each test."""
    home = tmp_path / "home"
    models = tmp_path / "models"
    monkeypatch.setenv("LLMSETUP_HOME", str(home))
    monkeypatch.setenv("LLMSETUP_MODELS_DIR", str(models))
    monkeypatch.setenv("LLMSETUP_CONFIG", str(home / "config.yaml"))
    monkeypatch.delenv("LLMSETUP_RECIPES_PATH", raising=False)
    monkeypatch.delenv("LLMSETUP_DEBUG", raising=False)
    # English, whatever the machine's locale: tests read the English messages. The tests of
    # the Chinese interface (tests/test_i18n*.py) set their own language.
    monkeypatch.setenv("LLMSETUP_LANG", "en")
    i18n.choose()
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "LLMSETUP_ALIENDAO_TOKEN",
                "MODELSCOPE_API_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    return home


_CATALOG_BUILT = False


def build_catalog() -> None:
    """Compile the message catalog (.po -> .mo) as the build does, once per session, with
    any i18n-parts/*.po fragments filling gaps (work in progress on a branch)."""
    global _CATALOG_BUILT
    if _CATALOG_BUILT:
        return
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("llmsetup_i18n_tool", root / "scripts" / "i18n.py")
    tool = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tool
    spec.loader.exec_module(tool)
    tool.compile_catalogs(sorted((root / "i18n-parts").glob("*.po")))
    _CATALOG_BUILT = True


@pytest.fixture
def zh(monkeypatch):
    """Messages in Chinese for this test (LLMSETUP_LANG=zh; subprocesses inherit it).

    Option types shared by several commands (cli/_options.py) and the root app take their
    help when their module is imported: import every command module in English first, so
    that a Chinese test does not leave Chinese help behind for the English tests after it."""
    from llmsetup.cli import app as cli_app

    for module, _attr in cli_app.Root.table.values():
        __import__(f"llmsetup.cli.{module}")
    build_catalog()
    monkeypatch.setenv("LLMSETUP_LANG", "zh")
    i18n.choose()
    yield
    monkeypatch.setenv("LLMSETUP_LANG", "en")
    i18n.choose()


class Cli:
    """Runs llmsetup through Typer's CliRunner, with stdout and stderr kept apart."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):
        from llmsetup.cli.app import app

        return self.runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)

    def json(self, *args: str):
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def cli() -> Cli:
    return Cli()


def build_tiny_causal_lm(out: Path, arch: dict, chat_template: str = "llama-2",
                         python: str = sys.executable, train_steps: int = 0,
                         train_template: str | None = None) -> Path:
    """Build a tiny model with ``python``'s own transformers (see runtime/fixtures.py)."""
    extra = ["--train-template", train_template] if train_template else []
    subprocess.run(
        [python, str(RUNTIME / "fixtures.py"), "causal-lm", str(out),
         "--architecture", json.dumps(arch), "--chat-template", chat_template,
         "--train-steps", str(train_steps), *extra],
        check=True, capture_output=True, text=True,
    )
    return out


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A tiny Llama with a chat template (llama-2 format)."""
    return build_tiny_causal_lm(tmp_path_factory.mktemp("models") / "tiny-llama", TINY_LLAMA)


@pytest.fixture(scope="session")
def tiny_gemma_no_template(tmp_path_factory) -> Path:
    """A tiny Gemma without a chat template (the recipe's fallback applies)."""
    return build_tiny_causal_lm(tmp_path_factory.mktemp("models") / "tiny-gemma", TINY_GEMMA,
                                chat_template="none")


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def require_program(program: str) -> str:
    """The path of ``program``; the test fails (never skips) when it is missing."""
    path = shutil.which(program)
    if not path:
        pytest.fail(f"{program} is not installed: scripts/test.sh installs it")
    return path


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


# Models for verify and chat. Sizes are multiples of 32 because bitsandbytes' CPU 4-bit
# kernels pack weights in blocks of 32 rows and 64 columns: the smaller TINY_LLAMA above
# cannot be quantized to 4 bits on the CPU (real models always can).
CHAT_LLAMA = {**TINY_LLAMA, "hidden_size": 64, "intermediate_size": 128}
CHAT_GEMMA = {**TINY_GEMMA, "hidden_size": 64, "intermediate_size": 128, "head_dim": 16,
              "num_key_value_heads": 2}
CHAT_TRAIN_STEPS = 80  # enough for the dialogues to come back word for word, quantized too


@pytest.fixture(scope="session")
def chat_llama(tmp_path_factory) -> Path:
    """A tiny Llama with the llama-2 chat template, trained to answer the fixture dialogues."""
    return build_tiny_causal_lm(tmp_path_factory.mktemp("models") / "chat-llama", CHAT_LLAMA,
                                train_steps=CHAT_TRAIN_STEPS)


@pytest.fixture(scope="session")
def chat_gemma(tmp_path_factory) -> Path:
    """A tiny Gemma without a chat template that has learnt the gemma format (the fallback):
    it ends its answers with the text ``<end_of_turn>``, which is no token in its vocabulary."""
    return build_tiny_causal_lm(tmp_path_factory.mktemp("models") / "chat-gemma", CHAT_GEMMA,
                                chat_template="none", train_steps=CHAT_TRAIN_STEPS,
                                train_template="gemma")


@pytest.fixture(scope="session")
def long_llama(tmp_path_factory) -> Path:
    """An untrained tiny Llama with a long context: greedy decoding babbles for thousands of
    tokens, long enough to press Ctrl-C in the middle of an answer."""
    return build_tiny_causal_lm(tmp_path_factory.mktemp("models") / "long-llama",
                                dict(TINY_LLAMA, max_position_embeddings=32768))
