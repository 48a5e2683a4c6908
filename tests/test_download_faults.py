"""Hostile servers, faults and signals (issue 12): each test failed before its fix.

The loopback server of ``tests/download_server.py`` answers as the real hubs do under
load: per-client connection caps (429 + Retry-After), the Hub's quota 429 (``RateLimit``
header, no Retry-After), trickled and huge listings, impossible sizes, CDN redirects
whose signed links expire. Every test of a hang has a timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llmsetup.download import CollectingReporter, DownloadOptions, ModelRef, download
from llmsetup.download import http as dl_http
from llmsetup.download.errors import SourceError
from llmsetup.download.http import RetryPolicy
from llmsetup.settings import Settings
from tests.download_server import FixtureServer, fast_engine, random_bytes, tiny_model_files

WEIGHTS = "model.safetensors"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server(monkeypatch):
    with FixtureServer() as s:
        monkeypatch.setenv("HF_ENDPOINT", s.url)
        yield s


@pytest.fixture
def files(server) -> dict[str, bytes]:
    files = tiny_model_files()
    server.add_repo("org/tiny", files)
    return files


def model_dir(tmp_path: Path) -> Path:
    return tmp_path / "models" / "org" / "tiny"


def fetch(tmp_path: Path, reporter=None, engine=None, **options):
    ref = ModelRef(repo_id="org/tiny", model_dir=model_dir(tmp_path), sources=["hf"])
    return download(ref, Settings.load(), DownloadOptions(engine=engine or fast_engine(),
                                                          **options),
                    reporter if reporter is not None else CollectingReporter())


def weights_ok(tmp_path: Path, files: dict[str, bytes]) -> bool:
    return (model_dir(tmp_path) / WEIGHTS).read_bytes() == files[WEIGHTS]


# -- 1. connection caps -------------------------------------------------------------------


def test_a_trickled_listing_ends_at_the_deadline_naming_the_url(tmp_path, server, files,
                                                               monkeypatch):
    monkeypatch.setenv("LLMSETUP_METADATA_TIMEOUT", "1.5")
    server.fault("@tree", "trickle", times=None, seconds=0.2)
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        fetch(tmp_path)
    assert time.monotonic() - started < 10
    assert "/api/models/org/tiny/tree/" in str(err.value)
    assert "1.5s" in str(err.value)


def test_a_huge_listing_is_refused_without_reading_it_all(tmp_path, server, files,
                                                          monkeypatch):
    monkeypatch.setattr(dl_http, "METADATA_MAX_BYTES", 1 << 20)
    server.fault("@tree", "huge", times=None, bytes=64 << 20)
    with pytest.raises(SourceError, match="larger than 1 MiB"):
        fetch(tmp_path)
    time.sleep(0.2)
    assert server.total_sent("@tree") < 16 << 20


# -- 5. impossible sizes ------------------------------------------------------------------


def test_rate_limit_header_is_parsed():
    assert dl_http.rate_limit_reset('"api";r=0;t=42') == 42.0
    assert dl_http.rate_limit_reset('"api";r=12;t=42') is None  # requests left: no wait
    assert dl_http.rate_limit_reset("nonsense") is None


def test_a_quota_429_on_the_listing_waits_for_the_reset(tmp_path, server, files):
    server.rate_limit(5.0)  # longer than the listing's own retries (3.5 s at most)
    fetch(tmp_path, include=[WEIGHTS])
    assert weights_ok(tmp_path, files)


