"""The transfer engine against a real loopback server with faults: integrity and resume.

Each test downloads a few MB from ``tests/download_server.py`` through the library API
(``llmsetup.download.download``) and checks the bytes at the final path, the manifest,
and how many bytes the server really sent.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from llmsetup.download import (
    CollectingReporter,
    is_complete,
)
from llmsetup.download.engine import parse_content_range
from llmsetup.download.errors import IntegrityError, SourceError
from llmsetup.download.http import RetryPolicy, retry_after_seconds
from llmsetup.download.partial import PartialFile, RangeSet, content_key
from tests.download_server import (
    FixtureServer,
    fast_engine,
    fetch_tiny,
    random_bytes,
    tiny_model_dir,
    tiny_model_files,
)

WEIGHTS = "model.safetensors"


@pytest.fixture
def server():
    with FixtureServer() as s:
        yield s


@pytest.fixture
def files(server, monkeypatch) -> dict[str, bytes]:
    files = tiny_model_files()
    server.add_repo("org/tiny", files)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    return files


model_dir = tiny_model_dir
fetch = fetch_tiny


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_complete(tmp_path: Path, files: dict[str, bytes]) -> None:
    for name in ("config.json", "tokenizer/tokenizer.json", WEIGHTS):
        assert (model_dir(tmp_path) / name).read_bytes() == files[name], name


class CancelAt:
    """A reporter that cancels the download once ``path`` has ``at`` bytes (like Ctrl-C)."""

    def __init__(self, path: str, at: int) -> None:
        self.path, self.at = path, at
        self.event = threading.Event()

    def emit(self, event: str, **f) -> None:
        if event == "progress" and f["path"] == self.path and f["done"] >= self.at:
            self.event.set()


def test_download_verifies_every_file_and_writes_a_manifest(tmp_path, server, files):
    server.page_size = 2  # the tree listing comes in pages: follow the Link headers
    reporter = CollectingReporter()
    manifest = fetch(tmp_path, reporter)
    assert_complete(tmp_path, files)
    # safetensors present: the .bin copy of the weights is skipped
    assert not (model_dir(tmp_path) / "pytorch_model.bin").exists()
    entries = manifest.files
    assert entries[WEIGHTS].verified_by == "sha256"
    assert entries[WEIGHTS].sha256 == sha(files[WEIGHTS])
    assert entries["config.json"].verified_by == "git-sha1"  # small non-LFS file: git blob id
    assert manifest.run["fetched_bytes"] == sum(len(files[n]) for n in entries)
    # The weights went over several connections.
    ranges = [r["range"] for r in server.requests if r["path"].endswith(WEIGHTS)]
    assert len(ranges) >= 3 and all(r and r.startswith("bytes=") for r in ranges)
    # Nothing is left behind but the manifest and the lock.
    state = model_dir(tmp_path) / ".llmsetup"
    assert not (state / "partial").exists()
    # A second run fetches nothing.
    before = server.total_sent()
    again = fetch(tmp_path)
    assert server.total_sent() == before and again.run["skipped"] == 3


def test_all_formats_fetches_the_bin_too(tmp_path, server, files):
    fetch(tmp_path, all_formats=True)
    assert (model_dir(tmp_path) / "pytorch_model.bin").read_bytes() == files["pytorch_model.bin"]


def test_connection_dropped_mid_file_resumes_from_the_last_byte(tmp_path, server, files):
    server.fault(WEIGHTS, "drop", times=3, after=200_000)
    reporter = CollectingReporter()
    fetch(tmp_path, reporter)
    assert_complete(tmp_path, files)
    assert any("broke mid-reply" in r["reason"] or "closed" in r["reason"]
               for r in reporter.of("retry"))
    # The bytes that arrived before each drop were kept: nothing fetched twice.
    assert server.total_sent(WEIGHTS) == len(files[WEIGHTS])


def test_503_then_success(tmp_path, server, files):
    server.fault(WEIGHTS, "status", times=2, code=503)
    reporter = CollectingReporter()
    fetch(tmp_path, reporter)
    assert_complete(tmp_path, files)
    assert sum("HTTP 503" in r["reason"] for r in reporter.of("retry")) == 2


def test_429_honours_retry_after(tmp_path, server, files):
    server.fault(WEIGHTS, "status", times=1, code=429, headers={"Retry-After": "1"})
    reporter = CollectingReporter()
    fetch(tmp_path, reporter)
    assert_complete(tmp_path, files)
    retry = next(r for r in reporter.of("retry") if "429" in r["reason"])
    assert retry["delay"] == 1.0  # the server's delay, not the (much shorter) test backoff


def test_retry_after_longer_than_we_wait_fails_the_source(tmp_path, server, files):
    server.fault(WEIGHTS, "status", times=None, code=503, headers={"Retry-After": "3600"})
    with pytest.raises(SourceError, match="asks to wait 3600s"):
        fetch(tmp_path, engine=fast_engine(retry=RetryPolicy(attempts=4, max_retry_after_s=60)))


def test_corrupted_byte_is_retried_then_fails_clearly_with_nothing_at_the_final_path(
        tmp_path, server, files):
    server.fault(WEIGHTS, "corrupt", times=None, offset=1_000_000)
    with pytest.raises(IntegrityError) as err:
        fetch(tmp_path)
    assert "sha256 mismatch after 2 downloads" in str(err.value)
    assert not (model_dir(tmp_path) / WEIGHTS).exists()
    assert not list((model_dir(tmp_path) / ".llmsetup" / "partial").glob("*"))
    assert server.total_sent(WEIGHTS) == 2 * len(files[WEIGHTS])
    # The files that did verify are kept and recorded.
    assert (model_dir(tmp_path) / "config.json").read_bytes() == files["config.json"]


def test_corrupted_once_is_fetched_again(tmp_path, server, files):
    server.fault(WEIGHTS, "corrupt", times=1, offset=5)
    reporter = CollectingReporter()
    fetch(tmp_path, reporter)
    assert_complete(tmp_path, files)
    assert any("sha256 mismatch" in r["reason"] for r in reporter.of("retry"))


def test_server_that_ignores_range_gets_one_connection_from_byte_0(tmp_path, server, files):
    server.fault(WEIGHTS, "ignore_range", times=None)
    reporter = CollectingReporter()
    fetch(tmp_path, reporter)
    assert_complete(tmp_path, files)
    assert any("ignores Range" in w["message"] for w in reporter.of("warning"))


def test_wrong_content_range_is_retried_never_written(tmp_path, server, files):
    server.fault(WEIGHTS, "bad_content_range", times=2)
    reporter = CollectingReporter()
    fetch(tmp_path, reporter)
    assert_complete(tmp_path, files)
    assert sum("wrong Content-Range" in r["reason"] for r in reporter.of("retry")) == 2


def test_server_answering_shorter_ranges_is_followed_without_retries(tmp_path, server,
                                                                     files):
    server.fault(WEIGHTS, "cap_range", times=None, max=100_000)
    reporter = CollectingReporter()
    fetch(tmp_path, reporter)
    assert_complete(tmp_path, files)
    assert not reporter.of("retry")
    assert server.total_sent(WEIGHTS) == len(files[WEIGHTS])


def _weight_ports(server) -> set[int]:
    return {r["client_port"] for r in server.requests if r["path"].endswith(WEIGHTS)}


def test_a_fast_first_connection_keeps_the_download_to_itself(tmp_path, server, files):
    # Loopback is far faster than 1 byte/s: the other connections never open, and the
    # one connection is kept alive from part to part (one TCP port for every request).
    manifest = fetch(tmp_path, engine=fast_engine(fast_link=1.0, probe_s=0.3))
    assert_complete(tmp_path, files)
    assert manifest.run["connections_used"] == 1 and manifest.run["connections"] == 16  # default
    assert len([r for r in server.requests if r["path"].endswith(WEIGHTS)]) >= 3
    assert len(_weight_ports(server)) == 1


def test_a_slow_first_connection_opens_the_others(tmp_path, server, files):
    server.rate = 1 << 20  # 1 MB/s per connection, well under the 8 MB/s asked for
    manifest = fetch(tmp_path, engine=fast_engine(fast_link=8e6, probe_s=0.05))
    assert_complete(tmp_path, files)
    # the others open: 16 by default, fewer where the files have fewer parts (14 here)
    assert manifest.run["connections"] == 16 and 8 < manifest.run["connections_used"] <= 16
    assert len(_weight_ports(server)) >= 2


def test_stalled_connection_times_out_and_resumes(tmp_path, server, files):
    server.fault(WEIGHTS, "stall", times=1, after=100_000, seconds=3)
    reporter = CollectingReporter()
    fetch(tmp_path, reporter)
    assert_complete(tmp_path, files)
    assert any("sent nothing for the read timeout" in r["reason"]
               for r in reporter.of("retry"))


def test_trickling_connection_is_dropped_by_the_low_speed_window(tmp_path, server, files):
    # 60 KB/s per connection, under the 200 KB/s floor: every request is given up on after
    # the window, and the download fails clearly instead of crawling for ever.
    server.rate = 60_000
    engine = fast_engine(stall_window_s=0.2, min_speed=200_000, read_timeout_s=5.0,
                         retry=RetryPolicy(attempts=2, backoff_base_s=0.01))
    with pytest.raises(SourceError, match="stalled"):
        fetch(tmp_path, engine=engine, include=[WEIGHTS])


def _partial_for(tmp_path: Path, data: bytes) -> PartialFile:
    key = content_key(WEIGHTS, len(data), sha(data), "unused")
    return PartialFile(model_dir(tmp_path) / ".llmsetup" / "partial", WEIGHTS, key, len(data))


def test_partial_file_already_complete_is_verified_not_fetched(tmp_path, server, files):
    data = files[WEIGHTS]
    partial = _partial_for(tmp_path, data)
    partial.open()
    partial.write(0, [data])
    partial.record(0, [data])
    partial.checkpoint()
    partial.close()
    fetch(tmp_path)
    assert_complete(tmp_path, files)
    assert server.total_sent(WEIGHTS) == 0


def test_partial_file_larger_than_the_remote_is_discarded(tmp_path, server, files):
    data = files[WEIGHTS]
    partial = _partial_for(tmp_path, data)
    partial.open()
    partial.write(0, [data])
    partial.record(0, [data])
    partial.checkpoint()
    partial.close()
    with partial.data_path.open("ab") as fh:  # e.g. a downloader that appended blindly
        fh.write(b"junk" * 1000)
    fetch(tmp_path)
    assert_complete(tmp_path, files)
    assert server.total_sent(WEIGHTS) == len(data)


def test_file_at_final_path_larger_than_the_remote_is_replaced(tmp_path, server, files):
    final = model_dir(tmp_path) / WEIGHTS
    final.parent.mkdir(parents=True)
    final.write_bytes(files[WEIGHTS] + files[WEIGHTS][:5000])
    fetch(tmp_path)
    assert_complete(tmp_path, files)


def test_complete_file_at_final_path_is_hashed_and_kept(tmp_path, server, files):
    final = model_dir(tmp_path) / WEIGHTS
    final.parent.mkdir(parents=True)
    final.write_bytes(files[WEIGHTS])
    reporter = CollectingReporter()
    manifest = fetch(tmp_path, reporter)
    assert server.total_sent(WEIGHTS) == 0
    assert manifest.files[WEIGHTS].verified_by == "sha256"
    assert any(s["path"] == WEIGHTS for s in reporter.of("file_skipped"))


def test_shorter_file_at_final_path_is_resumed(tmp_path, server, files):
    """What aliendao's downloader leaves after an interruption: the first bytes, in place."""
    final = model_dir(tmp_path) / WEIGHTS
    final.parent.mkdir(parents=True)
    final.write_bytes(files[WEIGHTS][: 1 << 20])
    fetch(tmp_path)
    assert_complete(tmp_path, files)
    assert server.total_sent(WEIGHTS) == len(files[WEIGHTS]) - (1 << 20)


def test_cancel_then_rerun_fetches_each_byte_once(tmp_path, server, files):
    server.rate = 1 << 20  # 1 MB/s per connection: slow enough to stop half-way
    stopper = CancelAt(WEIGHTS, 1 << 20)
    # What is in flight at the cancel (a socket buffer or so per connection) is lost; the
    # 5% bound below is for 8 connections, not the default 16.
    with pytest.raises(KeyboardInterrupt):
        fetch(tmp_path, stopper, cancel=stopper.event, connections=8)
    assert not (model_dir(tmp_path) / WEIGHTS).exists()
    assert list((model_dir(tmp_path) / ".llmsetup" / "partial").glob("*.part"))
    assert not is_complete(model_dir(tmp_path))  # the small files are in; not the weights
    server.rate = None
    fetch(tmp_path)
    assert_complete(tmp_path, files)
    assert is_complete(model_dir(tmp_path))
    assert server.total_sent(WEIGHTS) <= 1.05 * len(files[WEIGHTS])


def test_remote_changed_between_runs(tmp_path, server, files):
    server.rate = 1 << 20
    stopper = CancelAt(WEIGHTS, 1 << 20)
    with pytest.raises(KeyboardInterrupt):
        fetch(tmp_path, stopper, cancel=stopper.event)
    server.rate = None
    new = random_bytes(len(files[WEIGHTS]), seed=7)  # same size, new content
    server.repos["org/tiny"].files[WEIGHTS] = new
    manifest = fetch(tmp_path)
    assert (model_dir(tmp_path) / WEIGHTS).read_bytes() == new
    assert manifest.files[WEIGHTS].sha256 == sha(new)
    assert not (model_dir(tmp_path) / ".llmsetup" / "partial").exists()  # old partial gone
    # And once complete: a later change is fetched on the next run.
    newer = random_bytes(len(new) + 1000, seed=8)
    server.repos["org/tiny"].files[WEIGHTS] = newer
    fetch(tmp_path)
    assert (model_dir(tmp_path) / WEIGHTS).read_bytes() == newer


def test_credentials_are_not_sent_to_another_host_on_redirect(tmp_path, server, files,
                                                              monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_redirect_token")
    server.hf_token = "hf_secret_redirect_token"  # the Hub refuses a token it does not know
    server.fault(WEIGHTS, "redirect", times=None)
    fetch(tmp_path, include=[WEIGHTS])
    assert (model_dir(tmp_path) / WEIGHTS).read_bytes() == files[WEIGHTS]
    redirected = [r for r in server.requests if r["query"].get("redirected")]
    assert redirected and all(r["auth"] is None for r in redirected)
    direct = [r for r in server.requests if r["path"].endswith(WEIGHTS)
              and not r["query"].get("redirected")]
    assert all(r["auth"] == "Bearer hf_secret_redirect_token" for r in direct)


def test_404_on_a_file_fails_at_once_without_retries(tmp_path, server, files):
    server.fault(WEIGHTS, "status", times=None, code=404)
    with pytest.raises(SourceError, match="not found"):
        fetch(tmp_path)
    # at most one request per connection (16 by default): none is retried
    assert sum(r["path"].endswith(WEIGHTS) for r in server.requests) <= 16


def test_revision_is_pinned_to_a_commit(tmp_path, server, files):
    commit = server.repos["org/tiny"].commit
    manifest = fetch(tmp_path, revision=commit)
    assert manifest.run["revision"] == commit
    assert all(f"/resolve/{commit}/" in r["path"] for r in server.requests
               if "/resolve/" in r["path"])
    with pytest.raises(SourceError, match="not found"):
        fetch(tmp_path / "other", revision="no-such-branch")


# -- small pieces -------------------------------------------------------------------------


def test_range_set_merges_and_finds_gaps():
    ranges = RangeSet()
    for start, end in [(10, 20), (30, 40), (20, 30), (50, 60), (0, 5)]:
        ranges.add(start, end)
    assert ranges.as_list() == [[0, 5], [10, 40], [50, 60]]
    assert ranges.covered() == 45
    assert ranges.missing(70) == [(5, 10), (40, 50), (60, 70)]
    assert ranges.run_end(12) == 40 and ranges.run_end(5) == 5


def test_partial_file_hashes_blocks_written_in_any_order_by_many_threads(tmp_path):
    import random

    data = random_bytes(4 << 20, seed=11)
    blocks = [(off, data[off:off + 65536]) for off in range(0, len(data), 65536)]
    for round_ in range(3):
        partial = PartialFile(tmp_path / f"p{round_}", "w.bin", "k", len(data),
                              git_oid="unused")
        partial.open()
        random.Random(round_).shuffle(blocks)
        queue = list(blocks)
        lock = threading.Lock()

        def work(queue=queue, lock=lock, partial=partial) -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    off, block = queue.pop()
                partial.write(off, [block])
                partial.record(off, [block])

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sha256, git = partial.digests()
        assert sha256 == sha(data)
        assert git == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        partial.close()


def test_bytes_written_in_order_are_hashed_from_memory_and_a_resume_is_read_back(
        tmp_path, monkeypatch):
    data = random_bytes(3 << 20, seed=12)
    half = len(data) // 2
    reads: list[int] = []
    original = PartialFile._read_back

    def counting(self, offset: int, length: int) -> bytes:
        reads.append(length)
        return original(self, offset, length)

    monkeypatch.setattr(PartialFile, "_read_back", counting)
    partial = PartialFile(tmp_path, "w.bin", "k", len(data))
    partial.open()
    for off in range(0, half, 65536):  # one connection, in order: nothing is read back
        block = data[off:off + 65536]
        partial.write(off, [block])
        partial.record(off, [block])
    partial.checkpoint()
    partial.close()
    assert reads == []
    resumed = PartialFile(tmp_path, "w.bin", "k", len(data))
    assert resumed.open() == half
    resumed.write(half, [data[half:]])
    resumed.record(half, [data[half:]])
    assert resumed.digests()[0] == sha(data)
    assert sum(reads) >= half  # what the first run left is read back from the disk
    resumed.close()


def test_a_read_back_error_reaches_the_digest(tmp_path, monkeypatch):
    data = random_bytes(1 << 20, seed=13)

    def failing(self, offset: int, length: int) -> bytes:
        raise OSError("disk read error")

    monkeypatch.setattr(PartialFile, "_read_back", failing)
    partial = PartialFile(tmp_path, "w.bin", "k", len(data))
    partial.open()
    partial.write(4096, [data[4096:]])  # ahead of the prefix: to be read back
    partial.record(4096, [data[4096:]])
    partial.write(0, [data[:4096]])
    partial.record(0, [data[:4096]])
    with pytest.raises(OSError, match="disk read error"):
        partial.digests()
    partial.close()


def test_content_range_and_retry_after_parsing():
    assert parse_content_range("bytes 0-9/100") == (0, 9, 100)
    assert parse_content_range("bytes 5-9/*") == (5, 9, None)
    assert parse_content_range("bytes=0-9/100") is None
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None
