"""``llmsetup download`` and ``llmsetup check`` end to end: sources, CLI, processes, secrets.

The loopback server of ``tests/download_server.py`` plays every source at once (HF API,
aliendao, ModelScope). Tests that need real processes (Ctrl-C, two downloads at once,
the argv of running processes) run the installed CLI with ``python -m llmsetup``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from llmsetup.download import DownloadOptions, ModelRef, download
from llmsetup.download.errors import UnsafeListing
from llmsetup.settings import Settings
from tests.download_server import FixtureServer, random_bytes, tiny_model_files

WEIGHTS = "model.safetensors"
RECIPE = {
    "name": "tiny", "kind": "causal-lm", "repo_id": "org/tiny",
    "description": "Tiny test model served by the loopback fixture server",
    "sources": ["aliendao", "modelscope", "hf"],
    "source_ids": {"modelscope": "AI-ModelScope/tiny"},
    "env": {"name": "tiny", "python": "3.11"},
    "default_profile": "modern", "profiles": {"modern": []},
    "download": {"exclude": ["*.gguf"]},
}


@pytest.fixture
def server(monkeypatch, tmp_path, llmsetup_home):
    """The server, a recipe ``tiny`` for its repository, and a config that points at it."""
    with FixtureServer() as s:
        monkeypatch.setenv("HF_ENDPOINT", s.url)
        recipes = tmp_path / "recipes"
        recipes.mkdir()
        (recipes / "tiny.yaml").write_text(yaml.safe_dump(RECIPE))
        monkeypatch.setenv("LLMSETUP_RECIPES_PATH", str(recipes))
        llmsetup_home.mkdir(parents=True, exist_ok=True)
        write_config({"aliendao": {"site": s.url, "download_host": s.url},
                      "modelscope": {"endpoint": s.url}})
        yield s


@pytest.fixture
def files(server) -> dict[str, bytes]:
    files = tiny_model_files()
    server.add_repo("org/tiny", files, modelscope_id="AI-ModelScope/tiny")
    return files


def write_config(doc: dict) -> None:
    path = Path(os.environ["LLMSETUP_CONFIG"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)


def model_dir() -> Path:
    return Path(os.environ["LLMSETUP_MODELS_DIR"]) / "org" / "tiny"


def run_cli(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "llmsetup", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env or dict(os.environ), **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the command line ---------------------------------------------------------------------


def test_download_a_recipe_json_result_and_json_events(cli, server, files):
    result = cli("download", "tiny", "--source", "hf", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["model_dir"] == str(model_dir())
    assert doc["verified_by"] == {"sha256": 1, "git-sha1": 2}
    assert doc["entries"][WEIGHTS]["sha256"] == sha(files[WEIGHTS])
    assert doc["run"]["source"] == "hf" and doc["run"]["fetched_files"] == 3
    events = [json.loads(line) for line in result.stderr.splitlines()]
    kinds = {e["event"] for e in events}
    assert {"source", "listing", "file_start", "file_done"} <= kinds
    # and `check` agrees
    check = cli("check", "tiny", "--json")
    assert check.exit_code == 0 and json.loads(check.stdout)["ok"] is True


def test_download_human_output_names_each_file(cli, server, files):
    result = cli("download", "org/tiny", "--source", "hf")  # ORG/REPO finds the recipe
    assert result.exit_code == 0, result.stderr
    assert "✓ model.safetensors" in result.stderr and "sha256 verified" in result.stderr
    assert "org/tiny" in result.stdout and "verified by" in result.stdout


def test_download_demo_says_it_is_built_by_install(cli):
    for args in (("download", "demo"), ("download", "demo", "--source", "hf")):
        result = cli(*args)
        assert result.exit_code == 2
        assert "llmsetup install demo" in result.stderr


def test_several_sources_are_tried_in_the_order_given(cli, server, files):
    server.repos["org/tiny"].modelscope_id = None
    result = cli("download", "tiny", "--source", "modelscope", "--source", "hf")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.index("Trying modelscope") < result.stderr.index("Trying hf")
    assert "aliendao" not in result.stderr


def test_unknown_name_exits_2_with_suggestions(cli):
    result = cli("download", "gemma-2")
    assert result.exit_code == 2 and "gemma-2b" in result.stderr


def test_disk_full_preflight_fails_before_any_transfer(cli, server, files):
    # The listing announces a 100 TiB shard (possible, under the 1 PiB that is refused as
    # impossible): the real free-disk check must refuse it.
    server.repos["org/tiny"].listed_size[WEIGHTS] = 100 << 40
    result = cli("download", "tiny", "--source", "hf")
    assert result.exit_code == 1
    assert "not enough free disk" in result.stderr and "need" in result.stderr \
        and "free" in result.stderr
    assert server.total_sent() == 0
    assert not (model_dir() / WEIGHTS).exists()


def test_include_exclude_and_recipe_filters(cli, server, files):
    server.repos["org/tiny"].files["q4/model.gguf"] = b"gguf" * 100
    assert cli("download", "tiny", "--source", "hf", "--include", "*.json").exit_code == 0
    present = sorted(p.relative_to(model_dir()).as_posix() for p in model_dir().rglob("*")
                     if p.is_file() and ".llmsetup" not in p.parts)
    assert present == ["config.json", "tokenizer/tokenizer.json"]
    assert cli("download", "tiny", "--source", "hf", "--exclude", "tokenizer/*").exit_code == 0
    assert (model_dir() / WEIGHTS).is_file()
    assert not (model_dir() / "q4" / "model.gguf").exists()  # the recipe excludes *.gguf


def test_download_model_is_the_install_plans_entry_point(server, files):
    from llmsetup.download import download_model
    from llmsetup.recipes.loader import Catalog
    from llmsetup.targets import resolve

    settings = Settings.load()
    target = resolve("tiny", settings, Catalog(settings.recipe_dirs))
    manifest = download_model(target, settings, DownloadOptions(sources=["hf"]))
    assert manifest.model_dir == model_dir() == target.model_dir
    assert (model_dir() / WEIGHTS).read_bytes() == files[WEIGHTS]


def test_install_runs_the_download_step_and_knows_when_it_is_done(cli, server, files):
    from llmsetup.download import is_complete

    args = ("install", "tiny", "--env-backend", "current", "--no-cuda-check", "--no-verify",
            "--source", "hf")
    first = cli(*args)
    assert first.exit_code == 0, first.stderr
    assert (model_dir() / WEIGHTS).read_bytes() == files[WEIGHTS]
    assert is_complete(model_dir())
    sent = server.total_sent()
    again = cli(*args)
    assert again.exit_code == 0 and server.total_sent() == sent  # step already done
    with (model_dir() / "config.json").open("ab") as fh:  # damaged since: not done any more
        fh.write(b" ")
    assert not is_complete(model_dir())
    third = cli(*args)
    assert third.exit_code == 0, third.stderr
    assert server.total_sent() - sent == len(files["config.json"])
    assert (model_dir() / "config.json").read_bytes() == files["config.json"]


def test_rich_progress_renders_bars_and_lines(server, files):
    from io import StringIO

    from rich.console import Console

    from llmsetup.cli._progress import DownloadBars

    stream = StringIO()
    console = Console(file=stream, force_terminal=True, width=100)
    ref = ModelRef("org/tiny", model_dir(), sources=["hf"])
    with DownloadBars(console) as reporter:
        download(ref, Settings.load(), DownloadOptions(), reporter)
    text = stream.getvalue()
    assert "model.safetensors" in text and "sha256 verified" in text and "total" in text


# -- sources --------------------------------------------------------------------------------


def test_sources_are_tried_in_order_and_each_failure_is_shown(cli, server, files):
    server.repos["org/tiny"].incomplete = True  # aliendao still syncing
    server.repos["org/tiny"].modelscope_id = None  # not on ModelScope
    result = cli("download", "tiny")
    assert result.exit_code == 0, result.stderr
    assert "aliendao failed: the mirror is still syncing org/tiny" in result.stderr
    assert "modelscope failed" in result.stderr and "not exists" in result.stderr
    assert json.loads((model_dir() / ".llmsetup" / "manifest.json").read_text())[
        "files"][WEIGHTS]["source"] == "hf"


def test_all_sources_failing_lists_why_each_failed(cli, server):
    result = cli("download", "tiny")
    assert result.exit_code == 1
    assert "could not download org/tiny from any source" in result.stderr
    for name in ("aliendao", "modelscope", "hf"):
        assert f"  - {name}: " in result.stderr


def test_aliendao_refuses_a_repository_still_syncing(server, files):
    server.repos["org/tiny"].incomplete = True
    ref = ModelRef("org/tiny", model_dir(), sources=["aliendao"])
    with pytest.raises(Exception, match="still syncing"):
        download(ref, Settings.load(), DownloadOptions())
    assert not (model_dir() / WEIGHTS).exists()


def test_aliendao_takes_hashes_from_hf_and_respects_two_connections(cli, server, files):
    server.repos["org/tiny"].aliendao_sizes = False  # sizes from HEAD on the download host
    result = cli("download", "tiny", "--source", "aliendao", "--connections", "8", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["run"]["connections"] == 2
    assert doc["verified_by"] == {"sha256": 1, "git-sha1": 2}
    assert any(r["path"].startswith("/download/models/org/tiny/") for r in server.requests)


def test_aliendao_without_a_reachable_hf_endpoint_verifies_by_size_and_says_so(
        cli, server, files, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    result = cli("download", "tiny", "--source", "aliendao", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["verified_by"] == {"size": 3}
    assert "verified by size only" in result.stderr
    assert (model_dir() / WEIGHTS).read_bytes() == files[WEIGHTS]


def test_modelscope_with_its_own_ids_and_sha256_for_every_file(cli, server, files,
                                                             monkeypatch):
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", "ms-secret-token-42")
    result = cli("download", "tiny", "--source", "modelscope", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["verified_by"] == {"sha256": 3}
    ms = [r for r in server.requests if r["path"].startswith("/api/v1/models/AI-ModelScope/tiny")]
    assert ms and all(r["cookie"] == "m_session_id=ms-secret-token-42" for r in ms)
    assert any(r["query"].get("Revision") == "master" for r in ms)


def test_gated_repository_fails_at_once_with_a_hint(cli, server):
    server.add_repo("google/gemma-2b", {"config.json": b"{}"}, gated=True)
    result = cli("download", "google/gemma-2b", "--source", "hf")
    assert result.exit_code == 1
    assert "access denied (HTTP 401)" in result.stderr and "HF_TOKEN" in result.stderr
    # The recipe whose upstream this is offers its public copy.
    assert "llmsetup download gemma-2b" in result.stderr
    assert len(server.requests) == 1  # no retries on 401
    assert not (Path(os.environ["LLMSETUP_MODELS_DIR"]) / "google").exists()  # nothing left


def test_token_saved_by_hf_login_is_used(cli, server, tmp_path, monkeypatch):
    server.hf_token = "hf_saved_login_token_9"
    server.add_repo("org/tiny", tiny_model_files(), gated=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    (tmp_path / "hf-home").mkdir()
    (tmp_path / "hf-home" / "token").write_text("hf_saved_login_token_9\n")
    result = cli("download", "tiny", "--source", "hf")
    assert result.exit_code == 0, result.stderr
    assert "hf_saved_login_token_9" not in result.stderr + result.stdout


def test_index_naming_a_shard_the_source_lacks_fails_that_source(cli, server):
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors",
                            "b": "model-00002-of-00002.safetensors"}}
    server.add_repo("org/tiny", {"config.json": b"{}",
                                 "model.safetensors.index.json": json.dumps(index).encode(),
                                 "model-00001-of-00002.safetensors": random_bytes(1000)})
    result = cli("download", "tiny", "--source", "hf")
    assert result.exit_code == 1
    assert "names the shard model-00002-of-00002.safetensors" in result.stderr


@pytest.mark.parametrize("name", ["../evil.txt", "/tmp/evil.txt", "C:/evil.txt",
                                  "\\\\host\\share\\evil.txt", "a/../../evil.txt",
                                  ".llmsetup/manifest.json", "ok/./evil.txt"])
def test_unsafe_names_are_refused_before_touching_the_disk(server, files, name, tmp_path):
    server.repos["org/tiny"].extra_names = [name]
    ref = ModelRef("org/tiny", model_dir(), sources=["hf"])
    with pytest.raises(UnsafeListing):
        download(ref, Settings.load(), DownloadOptions())
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*"))
    assert not Path("/tmp/evil.txt").exists()
    assert not (model_dir() / "config.json").exists()


def test_unsafe_names_from_aliendao_are_refused(server, files, tmp_path):
    server.repos["org/tiny"].extra_names = ["../../evil.txt"]
    ref = ModelRef("org/tiny", model_dir(), sources=["aliendao"])
    with pytest.raises(UnsafeListing):
        download(ref, Settings.load(), DownloadOptions())
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*"))


# -- check ------------------------------------------------------------------------------------


def test_check_finds_a_corrupted_file_a_missing_file_and_a_missing_shard(cli, server):
    shards = {f"model-0000{i}-of-00002.safetensors": random_bytes(50_000, i) for i in (1, 2)}
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors",
                            "b": "model-00002-of-00002.safetensors"}}
    server.add_repo("org/tiny", {"config.json": b'{"model_type": "llama"}',
                                 "model.safetensors.index.json": json.dumps(index).encode(),
                                 **shards})
    assert cli("download", "tiny", "--source", "hf").exit_code == 0
    ok = cli("check", str(model_dir()))
    assert ok.exit_code == 0 and "4 files match the manifest" in ok.stdout
    shard1 = model_dir() / "model-00001-of-00002.safetensors"
    data = bytearray(shard1.read_bytes())
    data[123] ^= 0xFF
    shard1.write_bytes(bytes(data))
    (model_dir() / "config.json").unlink()
    (model_dir() / "model-00002-of-00002.safetensors").unlink()
    result = cli("check", "tiny", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    status = {f["path"]: f["status"] for f in report["files"]}
    assert status == {"config.json": "missing", "model-00001-of-00002.safetensors":
                      "sha256 mismatch", "model-00002-of-00002.safetensors": "missing",
                      "model.safetensors.index.json": "ok"}
    assert report["missing_shards"] == [{"index": "model.safetensors.index.json",
                                         "shard": "model-00002-of-00002.safetensors"}]
    assert "4 problem(s)" in result.stderr
    # A rerun of download repairs exactly what is wrong.
    before = server.total_sent()
    assert cli("download", "tiny", "--source", "hf").exit_code == 0
    assert server.total_sent() - before == 100_000 + len(b'{"model_type": "llama"}')
    assert cli("check", "tiny").exit_code == 0


def test_check_a_folder_without_manifest_says_how_to_adopt(cli, tmp_path):
    folder = tmp_path / "some-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    result = cli("check", str(folder))
    assert result.exit_code == 1
    assert "no llmsetup manifest" in result.stderr and "--from" in result.stderr


# -- adopting a local folder ----------------------------------------------------------------


def _local_copy(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "dataroot" / "models" / "org" / "tiny"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def test_from_dir_adopts_what_matches_and_downloads_the_rest(cli, server, files, tmp_path):
    local = _local_copy(tmp_path, {**files, WEIGHTS: random_bytes(len(files[WEIGHTS]), 9)})
    result = cli("download", "tiny", "--source", "hf", "--from", str(local), "--json")
    assert result.exit_code == 0, result.stderr
    assert (model_dir() / WEIGHTS).read_bytes() == files[WEIGHTS]
    assert server.total_sent(WEIGHTS) == len(files[WEIGHTS])
    assert server.total_sent("config.json") == 0
    # Same file system: adopted by hard link, not copied.
    assert (model_dir() / "config.json").stat().st_ino == (local / "config.json").stat().st_ino
    assert (local / WEIGHTS).read_bytes() != files[WEIGHTS]  # the user's file is untouched


def test_from_dir_copy_mode(cli, server, files, tmp_path):
    local = _local_copy(tmp_path, files)
    result = cli("download", "tiny", "--source", "hf", "--from", str(local), "--copy")
    assert result.exit_code == 0, result.stderr
    assert server.total_sent() == 0
    assert (model_dir() / WEIGHTS).stat().st_ino != (local / WEIGHTS).stat().st_ino


def test_from_dir_offline_adopts_unverified_and_says_so(cli, server, files, tmp_path,
                                                        monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    local = _local_copy(tmp_path, files)
    result = cli("download", "tiny", "--source", "hf", "--from", str(local), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["verified_by"] == {"none": 4}
    assert "without the publisher's hashes" in result.stderr
    (local / "~incomplete.txt").write_text("")
    again = cli("download", "org/other", "--source", "hf", "--from", str(local))
    assert again.exit_code == 1 and "did not finish" in again.stderr


# -- processes: Ctrl-C, two at once, secrets -------------------------------------------------


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def test_sigint_then_rerun_fetches_each_byte_about_once(server):
    size = 8 << 20
    server.add_repo("org/tiny", {"config.json": b"{}", WEIGHTS: random_bytes(size, 3)})
    server.rate = 1_500_000  # per connection: the download takes a few seconds
    proc = run_cli("download", "tiny", "--source", "hf", "--connections", "4")
    _wait_for(lambda: server.total_sent(WEIGHTS) >= 3 << 20)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Rerun" in err
    assert not (model_dir() / WEIGHTS).exists()
    server.rate = None
    rerun = run_cli("download", "tiny", "--source", "hf", "--connections", "4")
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert hashlib.sha256((model_dir() / WEIGHTS).read_bytes()).hexdigest() == \
        hashlib.sha256(server.repos["org/tiny"].files[WEIGHTS]).hexdigest()
    assert server.total_sent(WEIGHTS) <= 1.05 * size


def test_two_concurrent_downloads_of_one_model(server):
    size = 6 << 20
    server.add_repo("org/tiny", {"config.json": b"{}", WEIGHTS: random_bytes(size, 4)})
    server.rate = 2_000_000
    procs = [run_cli("download", "tiny", "--source", "hf") for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert any("waiting for it to finish" in err for _, err in outputs)
    assert (model_dir() / WEIGHTS).read_bytes() == server.repos["org/tiny"].files[WEIGHTS]
    assert server.total_sent(WEIGHTS) <= 1.05 * size


def test_tokens_never_reach_output_logs_or_any_argv(server, files, monkeypatch):
    alien, hf = "ALIEN-secret-7f3a9c", "hf_secretTOKENxyz123"
    server.aliendao_token, server.hf_token = alien, hf
    server.repos["org/tiny"].gated = True  # the HF hash lookup needs the HF token
    server.rate = 3_000_000
    monkeypatch.setenv("LLMSETUP_ALIENDAO_TOKEN", alien)
    monkeypatch.setenv("HF_TOKEN", hf)
    monkeypatch.setenv("LLMSETUP_DEBUG", "1")  # tracebacks too must be redacted
    seen_argv: list[str] = []
    stop = threading.Event()

    def scan_argv() -> None:
        while not stop.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                with contextlib.suppress(OSError):
                    seen_argv.append(cmdline.read_bytes().decode(errors="replace"))
            time.sleep(0.05)

    scanner = threading.Thread(target=scan_argv, daemon=True)
    scanner.start()
    try:
        ok = run_cli("download", "tiny", "--source", "aliendao")
        ok_out = ok.communicate(timeout=60)
        assert ok.returncode == 0, ok_out
        assert json.loads((model_dir() / ".llmsetup" / "manifest.json").read_text())[
            "files"][WEIGHTS]["verified_by"] == "sha256"
        server.aliendao_token = "another-token"  # now the service refuses ours: error paths
        (model_dir() / WEIGHTS).unlink()
        bad = run_cli("download", "tiny", "--source", "aliendao")
        bad_out = bad.communicate(timeout=60)
        assert bad.returncode == 1 and "access denied (HTTP 403)" in bad_out[1]
    finally:
        stop.set()
        scanner.join()
    # The token did travel where the protocol puts it (the query string, to the server).
    assert any(r["query"].get("token") == alien for r in server.requests)
    logs = [p.read_text() for p in Path(os.environ["LLMSETUP_HOME"]).rglob("*.log")]
    assert logs and "access denied" in logs[0]
    assert any("llmsetup\0download\0tiny" in argv for argv in seen_argv)  # saw our children
    for text in [*ok_out, *bad_out, *logs, *seen_argv]:
        assert alien not in text and hf not in text
