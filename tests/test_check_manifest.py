"""`llmsetup check` against unfinished downloads and hostile manifests (issue 12, items 8, 9)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from llmsetup.download.manifest import Entry, Manifest, lock_path, manifest_path

FILES = {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"w" * 5000,
         "tokenizer.json": b"{}"}


def make_folder(tmp_path, complete=True, expected=None, drop=()):
    """A model folder as a download leaves it; ``drop`` files not (yet) downloaded."""
    folder = tmp_path / "org" / "model"
    folder.mkdir(parents=True)
    manifest = Manifest(folder, "org/model", complete=complete, expected=expected)
    for name, data in FILES.items():
        if name in drop:
            continue
        (folder / name).write_bytes(data)
        manifest.record(name, Entry(len(data), hashlib.sha256(data).hexdigest(), "sha256",
                                    "hf", "main"))
    manifest.save()
    return folder


def edit_manifest(folder, change):
    path = manifest_path(folder)
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_a_finished_download_checks_ok(cli, tmp_path):
    folder = make_folder(tmp_path)
    result = cli("check", folder)
    assert result.exit_code == 0, result.output
    assert "3 files match the manifest" in result.stdout


def test_an_unfinished_download_is_not_ok_and_names_what_is_missing(cli, tmp_path):
    expected = {name: len(data) for name, data in FILES.items()}
    folder = make_folder(tmp_path, complete=False, expected=expected, drop={"model.safetensors"})
    result = cli("check", folder)
    assert result.exit_code == 1
    assert "the download did not finish" in result.stderr
    # The small files go beside the first shard now, so the 404 may stop config.json too.
    missing = result.stderr.split("not downloaded yet: ", 1)[1].split(")", 1)[0].split(", ")
    assert "model.safetensors" in missing, result.stderr
    assert "Rerun `llmsetup download" in result.stderr
    doc = json.loads(cli("check", folder, "--json").stdout)
    assert doc["ok"] is False and doc["complete"] is False
    assert doc["not_downloaded"] == ["model.safetensors"]


def test_an_unfinished_download_of_an_older_manifest_is_not_ok_either(cli, tmp_path):
    folder = make_folder(tmp_path, complete=False)  # no record of the selection
    result = cli("check", folder)
    assert result.exit_code == 1 and "the download did not finish (3 file(s) recorded)" \
        in result.stderr


@pytest.mark.timeout(60)
def test_check_during_a_running_download_says_so(cli, tmp_path):
    expected = {name: len(data) for name, data in FILES.items()}
    folder = make_folder(tmp_path, complete=False, expected=expected, drop={"model.safetensors"})
    # Another process holds the folder lock, as a running download does.
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, sys
        from filelock import FileLock
        lock = FileLock({str(lock_path(folder))!r})
        lock.acquire()
        open({str(lock_path(folder).with_name("lock.owner"))!r}, "w").write(str(os.getpid()))
        print("held", flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = cli("check", folder)
        assert result.exit_code == 1
        assert f"is being downloaded right now (pid {holder.pid})" in result.stderr
        assert json.loads(cli("check", folder, "--json").stdout)["downloading"] == \
            str(holder.pid)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert "being downloaded" not in cli("check", folder).stderr


@pytest.mark.parametrize("bad", ["../../../../../etc/hostname", "/etc/hostname", "a/../../x",
                                 ".llmsetup/manifest.json", "C:/Windows/win.ini"])
def test_a_manifest_path_outside_the_folder_is_refused_not_read(cli, tmp_path, bad):
    folder = make_folder(tmp_path)
    edit_manifest(folder, lambda doc: doc["files"].__setitem__(bad, {
        "size": 1, "sha256": "0" * 64, "verified_by": "sha256", "source": "hf",
        "revision": "main"}))
    result = cli("check", folder, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["refused"] == [bad] and doc["ok"] is False
    assert bad not in {f["path"] for f in doc["files"]}
    # `download` starts from the manifest as loaded: the entry is gone, and stays gone.
    manifest = Manifest.load(folder)
    assert bad not in manifest.files and manifest.refused == [bad]
    manifest.save()
    assert bad not in json.loads(manifest_path(folder).read_text())["files"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_a_special_file_in_the_folder_is_refused_without_hanging(cli, tmp_path, kind):
    folder = make_folder(tmp_path)
    target = folder / "model.safetensors"
    target.unlink()
    if kind == "dev-zero":
        target.symlink_to("/dev/zero")
    else:
        os.mkfifo(target)
    result = cli("check", folder, "--json")
    assert result.exit_code == 1
    status = {f["path"]: f["status"] for f in json.loads(result.stdout)["files"]}
    assert status["model.safetensors"] == "not a regular file (refused)"
    assert status["config.json"] == "ok"


@pytest.mark.timeout(120)
def test_a_download_that_failed_half_way_leaves_check_naming_the_file(cli, tmp_path):
    """The real download path: the manifest records the selection before any transfer."""
    from llmsetup.download import DownloadOptions, ModelRef, download
    from llmsetup.errors import LLMSetupError
    from llmsetup.settings import Settings
    from tests.download_server import FixtureServer, random_bytes

    folder = tmp_path / "org" / "tiny"
    with FixtureServer() as server:
        server.add_repo("org/tiny", {"config.json": b"{}",
                                     "model.safetensors": random_bytes(20_000, 1)})
        server.fault("model.safetensors", "status", times=None, code=404)
        ref = ModelRef(repo_id="org/tiny", model_dir=folder, sources=["hf"])
        with pytest.raises(LLMSetupError):
            download(ref, Settings.load(), DownloadOptions(endpoint=server.url))
    result = cli("check", folder)
    assert result.exit_code == 1, result.output
    # The small files go beside the first shard now, so the 404 may stop config.json too.
    missing = result.stderr.split("not downloaded yet: ", 1)[1].split(")", 1)[0].split(", ")
    assert "model.safetensors" in missing, result.stderr
