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

from llmsetup.download import CollectingReporter
from llmsetup.download import http as dl_http
from llmsetup.download.errors import SourceError
from llmsetup.download.http import RetryPolicy
from tests.download_server import (
    FixtureServer,
    fast_engine,
    fetch_tiny,
    random_bytes,
    tiny_model_dir,
    tiny_model_files,
)

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


model_dir = tiny_model_dir
fetch = fetch_tiny


def weights_ok(tmp_path: Path, files: dict[str, bytes]) -> bool:
    return (model_dir(tmp_path) / WEIGHTS).read_bytes() == files[WEIGHTS]


# -- 1. connection caps -------------------------------------------------------------------


def test_a_server_capping_connections_gets_fewer_and_the_download_goes_on(
        tmp_path, server, files):
    server.max_connections = 2  # more at once: 429 with Retry-After: 1
    server.rate = 1 << 20  # slow enough that the connections overlap
    reporter = CollectingReporter()
    engine = fast_engine(retry=RetryPolicy(attempts=2, backoff_base_s=0.02, backoff_max_s=0.1))
    fetch(tmp_path, reporter, engine=engine, include=[WEIGHTS], connections=8)
    assert weights_ok(tmp_path, files)
    assert any("429" in r["reason"] for r in reporter.of("retry"))


# -- 2. any saved byte is progress --------------------------------------------------------


def test_a_connection_cut_every_30_kb_is_progress_not_failure(tmp_path, server, files):
    server.fault(WEIGHTS, "drop", times=None, after=30_000)
    engine = fast_engine(retry=RetryPolicy(attempts=2, backoff_base_s=0.001,
                                           backoff_max_s=0.005))
    fetch(tmp_path, engine=engine, include=[WEIGHTS], connections=4)
    assert weights_ok(tmp_path, files)


def test_no_progress_for_the_stall_window_fails_the_source(tmp_path, server, files):
    server.fault(WEIGHTS, "status", times=None, code=500)
    engine = fast_engine(stall_window_s=0.5)
    started = time.monotonic()
    with pytest.raises(SourceError, match="no progress"):
        fetch(tmp_path, engine=engine, include=[WEIGHTS])
    assert time.monotonic() - started >= 0.5


# -- 3, 4. listings: a deadline and a cap -------------------------------------------------


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


@pytest.mark.parametrize("size", [-5, 1 << 60])
def test_an_impossible_size_is_refused_at_listing_time_nothing_written(tmp_path, server,
                                                                       size):
    server.add_repo("org/tiny", tiny_model_files(), listed_size={WEIGHTS: size})
    with pytest.raises(SourceError, match="impossible size"):
        fetch(tmp_path)
    folder = model_dir(tmp_path)
    assert not list(folder.rglob("*.part")) and not (folder / "config.json").exists()


# -- 19. the Hub's quota 429 --------------------------------------------------------------


def test_rate_limit_header_is_parsed():
    assert dl_http.rate_limit_reset('"api";r=0;t=42') == 42.0
    assert dl_http.rate_limit_reset('"api";r=12;t=42') is None  # requests left: no wait
    assert dl_http.rate_limit_reset("nonsense") is None


def test_a_quota_429_on_the_listing_waits_for_the_reset(tmp_path, server, files):
    server.rate_limit(5.0)  # longer than the listing's own retries (3.5 s at most)
    reporter = CollectingReporter()
    fetch(tmp_path, reporter, include=[WEIGHTS])
    assert weights_ok(tmp_path, files)
    waits = reporter.of("waiting")
    assert waits and waits[0]["seconds"] >= 4 and "rate limit" in waits[0]["message"]


class _LimitAfterListing(CollectingReporter):
    def __init__(self, server, seconds: float) -> None:
        super().__init__()
        self.server, self.seconds = server, seconds

    def emit(self, event: str, **fields) -> None:
        super().emit(event, **fields)
        if event == "listing":
            self.server.rate_limit(self.seconds)


def test_a_quota_429_on_the_files_waits_with_a_countdown(tmp_path, server, files):
    reporter = _LimitAfterListing(server, 2.0)
    engine = fast_engine(retry=RetryPolicy(attempts=2, backoff_base_s=0.01, backoff_max_s=0.02))
    fetch(tmp_path, reporter, engine=engine, include=[WEIGHTS])
    assert weights_ok(tmp_path, files)
    waits = reporter.of("waiting")
    assert waits and all("rate limit" in w["message"] for w in waits)
    assert waits[0]["seconds"] >= 1


def test_a_quota_window_longer_than_the_limit_fails_at_once_and_says_why(
        tmp_path, server, files):
    reporter = _LimitAfterListing(server, 600.0)
    engine = fast_engine(retry=RetryPolicy(attempts=2, max_retry_after_s=30))
    with pytest.raises(SourceError, match="asks to wait"):
        fetch(tmp_path, reporter, engine=engine, include=[WEIGHTS])


# -- 20. one resolver call per file -------------------------------------------------------


def _resolver_calls(server) -> int:
    return sum(1 for r in server.requests if r["path"].endswith(WEIGHTS)
               and not r["query"].get("redirected"))


def test_each_file_is_resolved_once_and_its_parts_use_the_final_url(tmp_path, server, files):
    server.fault(WEIGHTS, "redirect", times=None)
    fetch(tmp_path, include=[WEIGHTS], connections=8)
    assert weights_ok(tmp_path, files)
    assert _resolver_calls(server) == 1
    assert sum(1 for r in server.requests if r["query"].get("redirected")) >= 3


def test_an_expired_link_is_resolved_again(tmp_path, server, files):
    server.fault(WEIGHTS, "redirect", times=None)
    server.fault(WEIGHTS, "expired", times=1)
    fetch(tmp_path, include=[WEIGHTS], connections=1)
    assert weights_ok(tmp_path, files)
    assert _resolver_calls(server) == 2


# -- 6. signals ---------------------------------------------------------------------------


def _default_sighup() -> None:
    # A suite started under nohup hands SIG_IGN down, and llmsetup rightly keeps an ignored
    # SIGHUP ignored (cli/_signals.py): give the child the default, as a terminal would.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "llmsetup", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                            preexec_fn=_default_sighup)


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                           (signal.SIGINT, 130)])
def test_a_signal_saves_the_partial_state_and_exits_with_its_code(
        tmp_path, server, sig, code, monkeypatch, llmsetup_home):
    size = 8 << 20
    server.add_repo("org/tiny", {"config.json": b"{}", WEIGHTS: random_bytes(size, 3)})
    server.rate = 1_500_000  # per connection: the download takes a few seconds
    folder = tmp_path / "m"
    args = ("download", "org/tiny", "--source", "hf", "--connections", "4",
            "--models-dir", str(folder))
    proc = _cli(*args)
    _wait_for(lambda: server.total_sent(WEIGHTS) >= 3 << 20)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Rerun" in err
    assert "↻" not in err and "retry" not in err  # no false retry lines on the way out
    saved = server.total_sent(WEIGHTS)
    server.rate = None
    rerun = _cli(*args)
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    fetched_again = server.total_sent(WEIGHTS) - saved
    assert fetched_again <= size - (2 << 20)  # what was received before the signal was kept


# -- 7. children die with llmsetup --------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("how", ["run", "json_lines"])
def test_a_child_dies_when_llmsetup_is_killed(tmp_path, how):
    pidfile = tmp_path / "child.pid"
    child = ("import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
             "time.sleep(120)")
    start = {"run": "proc.run(argv, check=False)",
             "json_lines": "p = proc.JsonLinesProcess(argv); p.wait()"}[how]
    parent = textwrap.dedent(f"""
        import sys
        from llmsetup import proc
        argv = [sys.executable, "-c", {child!r}, {str(pidfile)!r}]
        {start}
    """)
    llmsetup = subprocess.Popen([sys.executable, "-c", parent])
    try:
        _wait_for(lambda: pidfile.is_file() and pidfile.read_text().strip())
        pid = int(pidfile.read_text())
        assert _alive(pid)
        llmsetup.kill()  # SIGKILL: no handler of ours runs
        llmsetup.wait(timeout=10)
        _wait_for(lambda: not _alive(pid), timeout=10)
    finally:
        llmsetup.kill()
        if pidfile.is_file() and pidfile.read_text().strip():
            pid = int(pidfile.read_text())
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_link_expiry_is_read_from_signed_urls():
    from llmsetup.download.link import link_expiry

    assert link_expiry("https://cdn.example/x?Expires=1700000000&Signature=abc") == 1700000000
    amz = "https://s3.example/x?X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600"
    assert link_expiry(amz) == 1767225600 + 3600
    assert link_expiry("https://cdn.example/x?v=1") is None


@pytest.mark.timeout(60)
def test_a_listing_whose_headers_trickle_ends_at_the_deadline(monkeypatch):
    """A server that sends its status line and headers one byte at a time passes every
    per-read timeout; the metadata deadline must end the request all the same."""
    import socket
    import threading

    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * 100:
                    if stop.is_set():
                        break
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break
                    time.sleep(0.2)

    threading.Thread(target=serve, daemon=True).start()
    monkeypatch.setenv("LLMSETUP_METADATA_TIMEOUT", "1.5")
    session = dl_http.new_session()
    started = time.monotonic()
    try:
        with pytest.raises(SourceError) as err:
            dl_http.get_json(session, f"http://127.0.0.1:{port}/api/models", source="modelscope",
                             what="the file list", policy=RetryPolicy(attempts=2))
    finally:
        stop.set()
        listener.close()
    assert time.monotonic() - started < 5
    assert "no complete reply within 1.5s" in str(err.value)
    assert f"127.0.0.1:{port}/api/models" in str(err.value)


@pytest.mark.timeout(60)
def test_a_file_whose_reply_headers_trickle_is_retried_and_finishes(tmp_path, server, files):
    """One connection's reply headers arrive a byte every 0.1 s for ever (each read well
    within the read timeout): the part is given up at the header deadline and fetched
    again, and the download completes."""
    server.fault("model.safetensors", "trickle_headers", times=1, seconds=0.1)
    engine = fast_engine(read_timeout_s=0.5, connect_timeout_s=0.5)
    started = time.monotonic()
    manifest = fetch(tmp_path, engine=engine)
    assert manifest.complete
    assert time.monotonic() - started < 30
    assert weights_ok(tmp_path, files)
