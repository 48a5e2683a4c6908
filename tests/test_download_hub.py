"""The hub sources as the real hubs behave: listing through huggingface_hub, errors and hints,
tokens only where they belong, mirror quirks (aliendao, ModelScope).

The loopback server of ``tests/download_server.py`` answers as the hubs do (read against
huggingface_hub's ``hf_raise_for_status``/``_paginate_pages`` and modelscope's hub client).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from llmsetup.download import DownloadOptions, ModelRef, download
from llmsetup.download.errors import AccessDenied, NotOnSource, SourceError
from llmsetup.download.http import RetryPolicy
from llmsetup.download.sources.hf import HFSource
from llmsetup.secret import Secret
from llmsetup.settings import Settings
from tests.download_server import FixtureServer, fast_engine, tiny_model_files

FAST = RetryPolicy(attempts=3, backoff_base_s=0.01, backoff_max_s=0.05)


@pytest.fixture
def server():
    with FixtureServer() as s:
        yield s


@pytest.fixture
def files(server, monkeypatch) -> dict[str, bytes]:
    files = tiny_model_files()
    server.add_repo("org/tiny", files, modelscope_id="AI-ModelScope/tiny")
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    return files


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hf(server, repo="org/tiny", revision="main", token=None, **kw) -> HFSource:
    return HFSource(repo, revision, server.url if not isinstance(server, str) else server,
                    token=Secret(token) if token else None, retry_policy=kw.pop("policy", FAST),
                    **kw)


def fetch(tmp_path: Path, **options):
    ref = ModelRef(repo_id="org/tiny", model_dir=tmp_path / "models" / "org" / "tiny",
                   sources=["hf"])
    return download(ref, Settings.load(), DownloadOptions(engine=fast_engine(), **options))


def tree_requests(server) -> list[dict]:
    return [r for r in server.requests if "/tree/" in r["path"]]


# -- listing through huggingface_hub ------------------------------------------------------

def test_listing_goes_through_huggingface_hub(server, files):
    source = hf(server)
    listing = source.list_files()
    repo = server.repos["org/tiny"]
    assert listing.revision == repo.commit
    by_path = {f.path: f for f in listing.files}
    assert by_path["model.safetensors"].sha256 == repo.sha256("model.safetensors")
    assert by_path["config.json"].git_oid == repo.git_oid("config.json")
    assert by_path["tokenizer/tokenizer.json"].size == len(files["tokenizer/tokenizer.json"])
    revision, *_ = [r for r in server.requests if "/revision/" in r["path"]]
    assert revision["path"] == "/api/models/org/tiny/revision/main"
    tree = tree_requests(server)
    assert [r["path"] for r in tree] == [f"/api/models/org/tiny/tree/{repo.commit}"]
    assert tree[0]["query"]["recursive"].lower() == "true"
    assert tree[0]["query"].get("expand", "false").lower() == "false"  # 1,000 a page, not 50
    assert "hf_hub/" in tree[0]["user_agent"] and "llmsetup/" in tree[0]["user_agent"]


def test_no_token_is_sent_unless_we_chose_one(server, files, tmp_path, monkeypatch):
    """huggingface_hub would otherwise send the token saved by `hf auth login` itself."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    (tmp_path / "hf-home").mkdir()
    (tmp_path / "hf-home" / "token").write_text("hf_saved_but_not_chosen_1\n")
    hf(server).list_files()
    assert server.requests and all(r["auth"] is None for r in server.requests)


def test_next_pages_stay_on_the_endpoint_host(server, files, tmp_path, monkeypatch):
    """hf-mirror's Link header names huggingface.co: the next page is asked of our host."""
    server.page_size = 2
    server.link_host = "localhost"
    server.hf_token = "hf_paging_token_1"
    monkeypatch.setenv("HF_TOKEN", "hf_paging_token_1")
    fetch(tmp_path)
    tree = tree_requests(server)
    assert len(tree) >= 3
    assert {r["host"] for r in tree} == {server.url.removeprefix("http://")}
    assert all(r["auth"] == "Bearer hf_paging_token_1" for r in tree)
    for name in ("config.json", "tokenizer/tokenizer.json", "model.safetensors"):
        assert (tmp_path / "models/org/tiny" / name).read_bytes() == files[name]


def test_the_server_pages_expanded_trees_by_50_like_the_hub(server):
    """The fixture itself, read by huggingface_hub: expand=True pages by 50, Link followed."""
    from huggingface_hub import HfApi

    server.add_repo("org/many", {f"f{i:03}.bin": bytes([i]) * 3 for i in range(120)})
    entries = list(HfApi(endpoint=server.url, token=False).list_repo_tree(
        "org/many", recursive=True, expand=True))
    assert len(entries) == 120 and len(tree_requests(server)) == 3
    assert entries[0].lfs.sha256 and entries[0].last_commit and entries[0].security


# -- huggingface_hub's errors as ours -------------------------------------------------------

def test_missing_revision_is_not_found(server, files):
    with pytest.raises(NotOnSource, match=r"revision nope of org/tiny"):
        hf(server, revision="nope").list_files()


def test_rate_limit_on_the_revision_call_is_waited_out(server, files):
    server.api_fault("/api/models/org/tiny/revision/main", "status", code=429,
                     headers={"Retry-After": "1"})
    started = time.monotonic()
    assert hf(server).list_files().files
    assert time.monotonic() - started >= 0.9
    assert sum("/revision/" in r["path"] for r in server.requests) == 2


def test_server_errors_give_up_with_the_reason(server, files):
    server.api_fault("/api/models/org/tiny/revision/main", "status", times=None, code=500)
    with pytest.raises(SourceError, match=r"HTTP 500 .*gave up after 3 tries"):
        hf(server).list_files()


def test_a_listing_that_never_arrives_hits_the_deadline(server, files):
    server.api_fault("/api/models/org/tiny/revision/main", "stall", seconds=5)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"did not arrive within 1s"):
        hf(server, deadline_s=1.0).list_files()
    assert time.monotonic() - started < 4


def test_unreachable_endpoint_is_a_network_error(server):
    with pytest.raises(SourceError, match=r"refused the connection .*gave up after 3 tries"):
        hf(f"http://127.0.0.1:{free_port()}").list_files()


def test_a_server_that_is_not_a_hub(server, files):
    server.api_fault("/api/models/org/tiny/revision/main", "status", times=None, code=200,
                     headers={})
    with pytest.raises(SourceError, match=r"not the Hub's format"):
        hf(server).list_files()


def test_gated_repository_without_token_is_access_denied(server, files):
    server.repos["org/tiny"].gated = True
    with pytest.raises(AccessDenied, match=r"HTTP 401") as err:
        hf(server).list_files()
    assert "HF_TOKEN" in err.value.hint
