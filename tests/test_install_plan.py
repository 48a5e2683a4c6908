"""`llmsetup install --dry-run`: the exact commands, for every bundled recipe and backend,
with nothing changed on disk."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from llmsetup.recipes import Catalog
from tests.test_recipes import BOOK_GEMMA

BACKENDS = ["conda", "uv", "venv", "current"]
RECIPES = [r.name for r in Catalog().all()]
PY = "{}.{}".format(*sys.version_info[:2])


def _plan(cli, *args) -> dict:
    result = cli("install", *args, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_gemma_2b_like_the_book(cli, monkeypatch, llmsetup_home):
    monkeypatch.setenv("PATH", "/nonexistent")  # no conda here: the plan still shows it
    doc = _plan(cli, "gemma-2b", "--env-backend", "conda", "--pip-mirror", "ustc")
    steps = doc["steps"]
    assert [s["key"] for s in steps] == ["env", "requirements", "cuda-check", "download",
                                         "verify"]
    assert steps[0]["commands"] == ["conda create -n gemma python=3.10 -y"]
    (pip,) = steps[1]["commands"]
    assert pip.startswith("conda run -n gemma --no-capture-output python -m pip install -r ")
    assert pip.endswith(" -i https://pypi.mirrors.ustc.edu.cn/simple "
                        "--trusted-host pypi.mirrors.ustc.edu.cn")
    assert steps[1]["requirements"] == BOOK_GEMMA
    assert steps[1]["lock"].endswith("gemma.book.txt") and " -c " in pip
    assert steps[2]["commands"][0].startswith("conda run -n gemma --no-capture-output python ")
    assert steps[2]["commands"][0].endswith("torch_check.py --require-cuda")
    assert steps[3]["commands"] == ["llmsetup download gemma-2b"]
    assert steps[4]["commands"] == ["llmsetup verify gemma-2b"]
    assert not llmsetup_home.exists()  # a dry run writes nothing


def test_human_dry_run_prints_the_pins(cli):
    result = cli("install", "gemma-2b", "--dry-run", "--env-backend", "conda",
                 "--pip-mirror", "ustc")
    assert result.exit_code == 0
    assert "$ conda create -n gemma python=3.10 -y" in result.stdout
    for pin in BOOK_GEMMA:
        assert f"#   {pin}" in result.stdout


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_and_backend(cli, name, backend, llmsetup_home):
    recipe = Catalog().get(name)
    doc = _plan(cli, name, "--env-backend", backend, "--python", PY)
    keys = [s["key"] for s in doc["steps"]]
    assert keys == ["env", "requirements", "cuda-check", "download", "verify"]
    env, req, check, download, verify = doc["steps"]
    if backend == "current":
        assert env["commands"] == []
    elif backend == "conda":
        assert env["commands"] == [f"conda create -n {recipe.env.name} python={PY} -y"] or \
            env["commands"] == [f"conda create -n {recipe.env_name(recipe.default_profile)} "
                                f"python={PY} -y"]
        assert req["commands"][0].startswith(f"conda run -n {recipe.env.name} ")
    else:
        folder = llmsetup_home / "envs" / recipe.env.name
        assert str(folder) in env["commands"][0] and str(folder) in req["commands"][0]
        if backend == "uv":
            assert " pip install --python " in req["commands"][0]
    assert req["requirements"] == recipe.profiles[recipe.default_profile]
    assert req["lock"] and Path(req["lock"]).is_file()
    if recipe.needs_gpu:
        assert check["commands"][0].endswith("--require-cuda")
    if recipe.sources == ["generate"]:
        assert "fixtures.py causal-lm" in download["commands"][0]
    else:
        assert download["commands"] == [f"llmsetup download {name}"]
    assert verify["commands"][0].startswith(f"llmsetup verify {name}")
    assert not llmsetup_home.exists()


@pytest.mark.parametrize(("mirror", "index"), [
    ("tuna", "https://pypi.tuna.tsinghua.edu.cn/simple"),
    ("aliyun", "https://mirrors.aliyun.com/pypi/simple/"),
])
def test_pip_mirror_presets(cli, mirror, index):
    doc = _plan(cli, "whisper-large-v3", "--env-backend", "venv", "--python", PY,
                "--pip-mirror", mirror)
    assert f"-i {index} --trusted-host " in doc["steps"][1]["commands"][0]


def test_default_mirror_and_explicit_index(cli):
    doc = _plan(cli, "whisper-large-v3", "--env-backend", "venv", "--python", PY,
                "--pip-mirror", "default")
    assert " -i " not in doc["steps"][1]["commands"][0]
    doc = _plan(cli, "whisper-large-v3", "--env-backend", "uv", "--python", PY,
                "--index-url", "https://mirror.example/simple", "--trusted-host",
                "mirror.example")
    cmd = doc["steps"][1]["commands"][0]
    assert "--index-url https://mirror.example/simple --allow-insecure-host mirror.example" in cmd


def test_config_file_sets_the_mirror(cli, llmsetup_home):
    llmsetup_home.mkdir()
    (llmsetup_home / "config.yaml").write_text("pip:\n  mirror: ustc\nenv:\n  backend: conda\n")
    doc = _plan(cli, "gemma-2b")
    assert doc["steps"][0]["commands"] == ["conda create -n gemma python=3.10 -y"]
    assert "-i https://pypi.mirrors.ustc.edu.cn/simple" in doc["steps"][1]["commands"][0]


def test_modern_profile_gets_its_own_env_and_python(cli):
    doc = _plan(cli, "gemma-2b", "--env-backend", "conda", "--profile", "modern")
    assert doc["steps"][0]["commands"] == ["conda create -n gemma-modern python=3.11 -y"]
    assert doc["steps"][1]["lock"].endswith("gemma.modern.txt")


def test_skips_and_flags_show_in_the_plan(cli):
    doc = _plan(cli, "llama-2-7b-chat", "--env-backend", "uv", "--python", PY, "--no-download",
                "--4bit", "--cpu", "--no-lock", "--source", "aliendao")
    keys = [s["key"] for s in doc["steps"]]
    assert keys == ["env", "requirements", "cuda-check", "verify"]
    assert {s["key"] for s in doc["skipped"]} == {"download"}
    assert doc["steps"][1]["lock"] is None
    assert not doc["steps"][2]["commands"][0].endswith("--require-cuda")
    assert doc["steps"][3]["commands"] == ["llmsetup verify llama-2-7b-chat --4bit --cpu"]


def test_webui_plan_for_both_llama_recipes(cli, tmp_path):
    for name, folder in (("llama-2-7b-chat", "Llama-2-7b-chat-hf"),
                         ("chinese-llama-2-7b", "Chinese-Llama-2-7b")):
        doc = _plan(cli, name, "--ui", "webui", "--webui-dir", tmp_path / "tgw",
                    "--env-backend", "conda", "--pip-mirror", "ustc", "--git-mirror",
                    "https://ghproxy.example/")
        steps = {s["key"]: s for s in doc["steps"]}
        assert list(steps) == ["webui-clone", "env", "requirements", "cuda-check", "download",
                               "deploy", "verify"]
        assert steps["webui-clone"]["commands"] == [
            "git clone https://ghproxy.example/https://github.com/oobabooga/text-generation-webui "
            f"{tmp_path / 'tgw'}", f"git -C {tmp_path / 'tgw'} checkout --detach 1934cb6"]
        assert steps["env"]["commands"] == ["conda create -n text-generation-webui python=3.10 -y"]
        assert steps["requirements"]["cutoff"] == "tiktoken"
        assert steps["requirements"]["requirements"] == ["torch==2.2.1"]
        assert steps["deploy"]["commands"][0].endswith(f"tgw/models/{folder}")


def test_speech_models_refuse_quantization(cli):
    result = cli("install", "whisper-large-v3", "--4bit", "--dry-run")
    assert result.exit_code == 2 and "speech model" in result.stderr


def test_state_dirs_come_from_the_environment(cli, llmsetup_home):
    doc = _plan(cli, "demo")
    req = doc["steps"][1]
    assert req["requirements_file"].startswith(str(llmsetup_home / "state" / "demo"))
    assert doc["steps"][3]["commands"][0].split()[3].startswith(
        os.environ["LLMSETUP_MODELS_DIR"])


# -- which Python an environment is made from -------------------------------------------

def _fake_pyenv(root: Path, version: str, target: str) -> Path:
    """A pyenv root with one installed version; its python is a link to ``target``."""
    bin_dir = root / "versions" / version / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(target)
    return bin_dir / "python"


def _inactive_shim(folder: Path, minor: str) -> None:
    """What pyenv puts on PATH for a version that is installed but not active."""
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / f"python{minor}"
    shim.write_text(f"#!/bin/sh\necho 'pyenv: python{minor}: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)


def test_pyenv_versions_count_even_when_not_active(cli, monkeypatch, tmp_path):
    """A pyenv root whose 3.10 is installed but not active; its shim on PATH fails. The
    env is made from the version under $PYENV_ROOT/versions, never from the shim."""
    real = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = sorted(real.glob("3.10.*/bin/python")) if real.is_dir() else []
    if not found:
        pytest.skip("this machine has no pyenv-installed Python 3.10")
    root = tmp_path / "pyenv"
    python = _fake_pyenv(root, found[0].parent.parent.name, str(found[0]))
    _inactive_shim(tmp_path / "shims", "3.10")
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.setenv("PATH", str(tmp_path / "shims"))
    for backend in ("venv", "uv"):
        doc = _plan(cli, "gemma-2b", "--env-backend", backend)
        create = doc["steps"][0]["commands"][0]
        assert str(python) in create, create
        assert "shims" not in create


def test_python_as_a_path(cli, tmp_path):
    doc = _plan(cli, "gemma-2b", "--env-backend", "venv", "--python", sys.executable)
    assert doc["steps"][0]["commands"][0].startswith(f"{sys.executable} -m venv ")
    assert doc["steps"][0]["env"]["python"] == PY


@pytest.mark.parametrize("value", ["2.7", "banana", "3", "3.10.x"])
def test_a_python_that_is_no_version_is_bad_usage(cli, value):
    result = cli("install", "gemma-2b", "--env-backend", "venv", "--python", value, "--dry-run")
    assert result.exit_code == 2
    assert f"--python {value}: expected a Python version such as 3.10" in result.stderr


def test_a_path_that_is_no_python_is_bad_usage(cli, tmp_path):
    result = cli("install", "gemma-2b", "--python", "/etc/passwd", "--dry-run")
    assert result.exit_code == 2 and "not an executable file" in result.stderr
    script = tmp_path / "python3"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    result = cli("install", "gemma-2b", "--python", str(script), "--dry-run")
    assert result.exit_code == 2 and "does not run as a Python interpreter" in result.stderr


def test_a_missing_python_names_every_way_out_in_the_dry_run(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "empty"))
    monkeypatch.setenv("PATH", str(tmp_path))
    doc = _plan(cli, "gemma-2b", "--env-backend", "venv", "--python", "3.9")
    (create,) = doc["steps"][0]["commands"]
    assert "# cannot create: Python 3.9 is not on this machine" in create
    result = cli("install", "gemma-2b", "--env-backend", "venv", "--python", "3.9")
    assert result.exit_code == 1
    assert "Python 3.9 is not on this machine" in result.stderr
    assert f"--python X.Y with a version this machine has ({PY})" in result.stderr
    assert "--env-backend conda" in result.stderr


def test_uv_says_it_will_download_and_where(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "empty"))
    monkeypatch.setenv("PATH", str(tmp_path))
    doc = _plan(cli, "gemma-2b", "--env-backend", "uv", "--python", "3.9")
    assert "--python 3.9 " in doc["steps"][0]["commands"][0]
    assert "uv will download it" in doc["steps"][0]["env"]["python_download"]
    doc = _plan(cli, "gemma-2b", "--env-backend", "uv", "--python", "3.9",
                "--python-mirror", "https://mirror.example/python-build-standalone")
    assert "from https://mirror.example/python-build-standalone" in \
        doc["steps"][0]["env"]["python_download"]


def test_engine_ctranslate2_adds_faster_whisper_and_verifies_through_it(cli):
    doc = _plan(cli, "whisper-large-v3", "--engine", "ctranslate2", "--env-backend", "venv")
    steps = {s["key"]: s for s in doc["steps"]}
    keys = [s["key"] for s in doc["steps"]]
    assert keys.index("requirements") < keys.index("engine") < keys.index("verify")
    engine = steps["engine"]
    assert [p.split("==")[0] for p in engine["requirements"]] == ["faster-whisper",
                                                                  "ctranslate2"]
    # The model's lock constrains what the engine shares with it (numpy, tokenizers).
    assert "-c" in engine["commands"][0] and engine["commands"][0].endswith(".book.txt")
    assert steps["verify"]["commands"][0].endswith("--engine ctranslate2")
    refused = cli("install", "gemma-2b", "--engine", "ctranslate2", "--dry-run")
    assert refused.exit_code == 2 and "for speech models" in refused.stderr
