"""``--from DIR`` with no source reachable: the files are adopted by size alone, and the
summary says so (issue 13, item 15), in ``download`` and in the install's download step."""

from __future__ import annotations

import json
import socket

from tests.download_server import random_bytes


def _dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_download_from_dir_offline_says_sizes_only(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", _dead_endpoint())
    local = tmp_path / "copy"
    local.mkdir()
    (local / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (local / "model.safetensors").write_bytes(random_bytes(4096, 1))
    result = cli("download", "org/offline", "--source", "hf", "--from", str(local))
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())
    assert "2 file(s) adopted without a hash to check against; sizes only" in flat
    assert "verified by size only" not in flat  # that is a different thing
