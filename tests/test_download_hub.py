"""The hub sources as the real hubs behave: listing as huggingface_hub lists, errors and hints,
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
from llmsetup.download.sources.base import RemoteFile
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


# -- listing as huggingface_hub lists ------------------------------------------------------

def test_listing_reads_the_hub_api(server, files):
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
    assert tree[0]["user_agent"].startswith("llmsetup/")


def test_listing_asks_what_huggingface_hub_asks(server, files):
    """The same two requests as huggingface_hub's own ``model_info`` and
    ``list_repo_tree(recursive=True)``, against the same server: paths and query."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=server.url, token=False)
    commit = api.model_info("org/tiny", revision="main").sha
    list(api.list_repo_tree("org/tiny", revision=commit, recursive=True))
    theirs = model_requests(server)  # 2.x also asks for /api/agent-harnesses first
    server.requests.clear()
    hf(server).list_files()
    ours = model_requests(server)
    assert ours == theirs and len(ours) == 2 and len(server.requests) == 2


def model_requests(server) -> list[tuple[str, dict[str, str]]]:
    return [(r["path"], {k: v.lower() for k, v in r["query"].items()})
            for r in server.requests if r["path"].startswith("/api/models/")]


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
    lfs = entries[0].lfs  # a dict in 0.2x, a dataclass later
    assert (lfs["sha256"] if isinstance(lfs, dict) else lfs.sha256) and entries[0].last_commit


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
    with pytest.raises(SourceError, match=r"no complete reply within 1s from http://\S+/revision/main"):
        hf(server, deadline_s=1.0).list_files()
    assert time.monotonic() - started < 4


def test_unreachable_endpoint_is_a_network_error(server):
    with pytest.raises(SourceError, match=r"refused the connection .*gave up after 3 tries"):
        hf(f"http://127.0.0.1:{free_port()}").list_files()


def test_a_server_that_is_not_a_hub(server, files):
    server.api_fault(f"/api/models/org/tiny/tree/{server.repos['org/tiny'].commit}", "status",
                     times=None, code=200, headers={})
    with pytest.raises(SourceError, match=r"not the Hub's format"):
        hf(server).list_files()


def test_gated_repository_without_token_is_access_denied(server, files):
    server.repos["org/tiny"].gated = True
    with pytest.raises(AccessDenied, match=r"HTTP 401") as err:
        hf(server).list_files()
    assert "HF_TOKEN" in err.value.hint


# -- tokens: where they go, and what a refusal says (issue 12: 21, 25, 15) ---------------

def settings_with(tmp_path, **config) -> Settings:
    return Settings(home=tmp_path, models_dir=tmp_path / "models", config=config)


def ref_tiny(tmp_path) -> ModelRef:
    return ModelRef(repo_id="org/tiny", model_dir=tmp_path / "models" / "org" / "tiny",
                    sources=["hf-mirror", "hf"])


def test_token_does_not_go_to_a_default_mirror(tmp_path, monkeypatch):
    from llmsetup.download.sources import make_source

    monkeypatch.setenv("HF_TOKEN", "hf_not_for_mirrors_1")
    mirror = make_source("hf-mirror", ref_tiny(tmp_path), settings_with(tmp_path))
    hub = make_source("hf", ref_tiny(tmp_path), settings_with(tmp_path))
    assert mirror.token is None and mirror.url_and_headers(RemoteFile("a", 1))[1] == {}
    assert "download.token_to_mirrors" in mirror.denied_hint
    assert hub.endpoint == "https://huggingface.co" and hub.token.reveal() == "hf_not_for_mirrors_1"


@pytest.mark.parametrize("how", ["config", "env"])
def test_token_goes_to_a_mirror_when_the_user_opts_in(tmp_path, monkeypatch, how):
    import os

    from llmsetup.download.sources import make_source

    monkeypatch.setenv("HF_TOKEN", "hf_for_mirrors_too_1")
    if how == "config":  # the key as a user writes it in the config file
        config = Path(os.environ["LLMSETUP_CONFIG"])
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text("download:\n  token_to_mirrors: true\n")
    else:
        monkeypatch.setenv("LLMSETUP_TOKEN_TO_MIRRORS", "1")
    mirror = make_source("hf-mirror", ref_tiny(tmp_path), Settings.load())
    assert mirror.token.reveal() == "hf_for_mirrors_too_1"


def test_token_goes_to_an_endpoint_the_user_set(server, files, tmp_path, monkeypatch):
    server.hf_token = "hf_for_my_endpoint_1"
    monkeypatch.setenv("HF_TOKEN", "hf_for_my_endpoint_1")
    fetch(tmp_path)
    assert server.requests and all(r["auth"] == "Bearer hf_for_my_endpoint_1"
                                   for r in server.requests if not r["query"].get("redirected"))


def test_aliendao_hash_lookup_keeps_the_token_off_the_default_mirror(tmp_path, monkeypatch):
    from llmsetup.download.sources import hf_source

    monkeypatch.setenv("HF_TOKEN", "hf_not_for_mirrors_2")
    source = hf_source("hf-mirror", ref_tiny(tmp_path), settings_with(tmp_path), None)
    assert source.token is None


def test_anonymous_401_for_a_repository_that_does_not_exist(server, files, tmp_path):
    from llmsetup.download.sources import hf_source

    source = hf_source("hf", ModelRef(repo_id="org/typo", model_dir=tmp_path / "m",
                                      sources=["hf"]), settings_with(tmp_path), server.url)
    with pytest.raises(AccessDenied, match=r"not found, or private/gated \(HTTP 401\)") as err:
        source.list_files()
    assert "check the id" in err.value.hint and "HF_TOKEN" in err.value.hint


def test_a_refused_token_is_called_refused(server, files, tmp_path, monkeypatch):
    from llmsetup.download.sources import hf_source

    server.repos["org/tiny"].gated = True
    server.hf_tokens_without_access = {"hf_valid_but_not_accepted_1"}
    monkeypatch.setenv("HF_TOKEN", "hf_valid_but_not_accepted_1")
    source = hf_source("hf", ref_tiny(tmp_path), settings_with(tmp_path), server.url)
    with pytest.raises(AccessDenied, match=r"token was refused \(HTTP 403\)") as err:
        source.list_files()
    assert "expired" in err.value.hint and "set HF_TOKEN" not in err.value.hint
    monkeypatch.setenv("HF_TOKEN", "hf_expired_token_1")
    source = hf_source("hf", ref_tiny(tmp_path), settings_with(tmp_path), server.url)
    with pytest.raises(AccessDenied, match=r"token was refused \(HTTP 401\)"):
        source.list_files()


def test_token_follows_a_redirect_to_the_hub_itself(server, files, tmp_path, monkeypatch):
    """A user-set endpoint redirecting to huggingface.co keeps the token, as huggingface_hub
    does; here ``localhost`` plays huggingface.co (the real one cannot be reached)."""
    from llmsetup.download import http

    port = int(server.url.rsplit(":", 1)[1])
    monkeypatch.setattr(http._Session, "hub_origins",
                        http._Session.hub_origins | {("http", "localhost", port)})
    server.hf_token = "hf_follows_to_the_hub_1"
    monkeypatch.setenv("HF_TOKEN", "hf_follows_to_the_hub_1")
    server.fault("model.safetensors", "redirect", times=None)
    fetch(tmp_path)
    redirected = [r for r in server.requests if r["query"].get("redirected")]
    assert redirected and all(r["auth"] == "Bearer hf_follows_to_the_hub_1" for r in redirected)


# -- aliendao ------------------------------------------------------------------------------

def alien_settings(tmp_path, server, **more) -> Settings:
    return settings_with(tmp_path, aliendao={"site": server.url, "download_host": server.url},
                         **more)


def fetch_from(tmp_path, settings, source: str, **options):
    ref = ModelRef(repo_id="org/tiny", model_dir=tmp_path / "models" / "org" / "tiny",
                   sources=[source], source_ids={"modelscope": "AI-ModelScope/tiny"})
    return download(ref, settings, DownloadOptions(engine=fast_engine(), **options))


@pytest.mark.parametrize("code", [405, 403])
def test_aliendao_sizes_by_a_ranged_get_when_head_is_refused(server, files, tmp_path, code):
    server.repos["org/tiny"].aliendao_sizes = False
    for name in files:
        server.fault(name, "head_status", times=None, code=code)
    manifest = fetch_from(tmp_path, alien_settings(tmp_path, server), "aliendao")
    assert manifest.files["model.safetensors"].size == len(files["model.safetensors"])
    probes = [r for r in server.requests if r["method"] == "GET" and r["range"] == "bytes=0-0"]
    assert {r["path"].rsplit("/", 1)[-1] for r in probes} >= {"config.json", "model.safetensors"}


# -- ModelScope ------------------------------------------------------------------------------

def ms_source(server, repo="AI-ModelScope/big"):
    from llmsetup.download.sources.modelscope import ModelScopeSource

    return ModelScopeSource(repo, "main", server.url, retry_policy=FAST)


def test_modelscope_list_at_the_cap_is_listed_again_folder_by_folder(server):
    """3,500 files: the hub's reply stops at 3,000 without a word."""
    files = {f"a/{i:04}.json": b"a" for i in range(2000)}
    files |= {f"b/c/{i:04}.json": b"b" for i in range(1400)}
    files |= {f"b/{i:03}.txt": b"c" for i in range(98)} | {"config.json": b"{}", "x.md": b"#"}
    server.add_repo("org/big", files, modelscope_id="AI-ModelScope/big")
    listing = ms_source(server).list_files()
    assert sorted(f.path for f in listing.files) == sorted(files)
    roots = [r["query"].get("Root") for r in server.requests if r["path"].endswith("/repo/files")]
    assert roots[0] is None and {"a", "b"} <= set(roots)


def test_modelscope_folder_beyond_the_cap_fails_instead_of_downloading_part(server):
    server.modelscope_cap = 50  # the same rule as at 3,000, on a smaller repository
    from llmsetup.download.sources import modelscope

    files = {f"flat/{i:03}.bin": b"x" for i in range(60)}
    server.add_repo("org/flat", files, modelscope_id="AI-ModelScope/flat")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(modelscope, "LISTING_CAP", 50)
        with pytest.raises(SourceError, match=r"folder flat holds 50 or more entries"):
            ms_source(server, "AI-ModelScope/flat").list_files()


def test_modelscope_endpoint_variable(tmp_path, monkeypatch):
    from llmsetup.download.sources.modelscope import modelscope_endpoint

    monkeypatch.setenv("MODELSCOPE_ENDPOINT", "https://ms.example.org/")
    monkeypatch.setenv("MODELSCOPE_DOMAIN", "old.example.org")
    assert modelscope_endpoint(settings_with(tmp_path)) == "https://ms.example.org"
    config = {"modelscope": {"endpoint": "http://mine.example.org"}}
    assert modelscope_endpoint(settings_with(tmp_path, **config)) == "http://mine.example.org"


def test_aliendao_copy_that_differs_from_the_hf_revision(server, files, tmp_path):
    """Same size, other content (the mirror's copy is older): one download, never two; the
    error names the file and the way out; --accept-mirror-copy takes the kept bytes."""
    from llmsetup.download.errors import IntegrityError

    older = bytes(reversed(files["model.safetensors"]))
    server.repos["org/tiny"].mirror_files = {"model.safetensors": older}
    settings = alien_settings(tmp_path, server)
    with pytest.raises(IntegrityError, match=r"model.safetensors differs from the HF revision") \
            as err:
        fetch_from(tmp_path, settings, "aliendao")
    assert "--accept-mirror-copy" in err.value.hint
    sent = server.total_sent("model.safetensors")  # a split range may send a little twice
    assert len(older) <= sent < 1.5 * len(older)  # once, not twice
    manifest = fetch_from(tmp_path, settings, "aliendao", accept_mirror_copy=True)
    assert server.total_sent("model.safetensors") == sent  # the kept copy, no re-download
    entry = manifest.files["model.safetensors"]
    assert entry.verified_by == "size"
    assert (tmp_path / "models/org/tiny/model.safetensors").read_bytes() == older
    assert manifest.files["config.json"].verified_by == "git-sha1"  # the rest still checked
    fetch_from(tmp_path, settings, "aliendao")  # a plain rerun keeps the accepted copy
    assert server.total_sent("model.safetensors") == sent


# -- credentials inside URLs (issue 12: 14) ---------------------------------------------------

def test_redact_masks_userinfo_and_credential_query_values():
    from llmsetup.secret import redact

    text = ("Trying hf (http://user:Pa55word@mirror.example:8080/x) and "
            "https://TOKENVALUE@git.example/r.git, "
            "https://cdn.example/f?X-Amz-Signature=abc123&Expires=9&Key-Pair-Id=K1&token=t0k")
    out = redact(text)
    for secret in ("Pa55word", "user:", "TOKENVALUE", "abc123", "K1", "t0k"):
        assert secret not in out, secret
    assert "mirror.example:8080/x" in out and "Expires=9" in out


@pytest.mark.parametrize("where", ["flag", "env"])
def test_a_password_in_the_endpoint_url_is_never_shown_or_stored(server, files, tmp_path,
                                                                 monkeypatch, where):
    from tests.conftest import Cli

    endpoint = server.url.replace("http://", "http://alice:S3cretPassw0rd@")
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    args = ["--endpoint", endpoint] if where == "flag" else ["--source", "hf"]
    ok = Cli()("download", "org/tiny", *args, "--json")
    assert ok.exit_code == 0, ok.stderr
    missing = Cli()("download", "org/typo", *args)
    assert missing.exit_code != 0 and "127.0.0.1" in missing.stderr
    home = Path(tmp_path / "home")
    written = [p.read_text(errors="replace") for p in [*home.rglob("*.log"),
               *(tmp_path / "models").rglob("*.json")] if p.is_file()]
    assert written  # the log and the manifest
    for text in (ok.stdout, ok.stderr, missing.stdout, missing.stderr, *written):
        assert "S3cretPassw0rd" not in text and "alice" not in text


def test_a_huge_chunked_listing_is_cut_at_the_cap(server, files, monkeypatch):
    """No Content-Length to refuse it by: the cap counts the bytes as they arrive."""
    from llmsetup.download import http as dl_http

    monkeypatch.setattr(dl_http, "METADATA_MAX_BYTES", 1 << 20)
    server.fault("@tree", "huge_chunked", times=None, bytes=64 << 20)
    with pytest.raises(SourceError, match="larger than 1 MiB"):
        hf(server).list_files()
    time.sleep(0.2)
    assert server.total_sent("@tree") < 16 << 20


def test_a_listing_retried_after_a_503_stays_quiet_and_redacted(server, files, tmp_path):
    """A real process, so that any library's own log handler would show: nothing of the
    retry reaches stderr unredacted (huggingface_hub's http_backoff, when it listed,
    logged "HTTP Error 503 thrown while requesting URL" there)."""
    import os
    import subprocess
    import sys

    commit = server.repos["org/tiny"].commit
    server.api_fault(f"/api/models/org/tiny/tree/{commit}", "status", times=1, code=503)
    env = {**os.environ, "HF_ENDPOINT": server.url.replace("http://", "http://bob:Pw0rd99@")}
    done = subprocess.run([sys.executable, "-m", "llmsetup", "download", "org/tiny",
                           "--source", "hf", "--include", "config.json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "thrown while requesting" not in done.stderr and "Pw0rd99" not in done.stderr


@pytest.mark.parametrize("value", ["1", "yes", "TRUE"])
def test_hf_hub_offline_keeps_the_hf_sources_offline(server, files, monkeypatch, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    with pytest.raises(SourceError, match="HF_HUB_OFFLINE is set") as err:
        hf(server).list_files()
    assert "--from DIR" in err.value.hint and not server.requests
