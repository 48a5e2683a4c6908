"""The download area in Chinese: errors, hints and progress lines a person reads are
translated; events (``--json`` lines, ``download.log``), manifests and ``--json`` values
stay English.

The loopback server of ``tests/download_server.py`` plays the hubs.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import pytest

from llmsetup.download import CollectingReporter, DownloadOptions, ModelRef, download
from llmsetup.download.errors import IntegrityError, NotOnSource
from llmsetup.download.manifest import check_folder, trust_notes
from llmsetup.download.messages import Joined, Message, shown
from llmsetup.download.progress import event_line
from llmsetup.i18n import N_
from llmsetup.settings import Settings
from tests.download_server import (
    FixtureServer,
    fast_engine,
    fetch_tiny,
    tiny_model_dir,
    tiny_model_files,
)

WEIGHTS = "model.safetensors"
HAN = re.compile(r"[\u4e00-\u9fff]")

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


def test_a_404_from_the_server_is_reported_in_chinese(zh, server, files, tmp_path):
    server.fault(WEIGHTS, "status", times=None, code=404)
    reporter = CollectingReporter()
    with pytest.raises(NotOnSource) as err:
        fetch_tiny(tmp_path, reporter)
    # What the terminal shows: the error and its hint.
    assert err.value.message == f"hf：未找到（HTTP 404）：{WEIGHTS} (fault)"  # (the server's reason)
    assert "请在" in err.value.hint and "核对名称和版本" in err.value.hint
    # What the events (--json lines, download.log) carry: English.
    failed = reporter.of("source_failed")[0]
    assert failed["reason"] == f"not found (HTTP 404): {WEIGHTS} (fault)"
    assert failed["hint"].startswith("Check the name and revision at ")
    assert not HAN.search(json.dumps(failed, ensure_ascii=False))
    # ... and the line a person reads for that event: Chinese.
    line = event_line("source_failed", failed)
    assert line.startswith(f"✗ hf 失败：未找到（HTTP 404）：{WEIGHTS} (fault)（请在 ")
    assert line.endswith("；尝试下一个下载源")


def test_progress_lines_are_chinese_and_the_events_english(zh, server, files, tmp_path):
    reporter = CollectingReporter()
    fetch_tiny(tmp_path, reporter)
    listing = reporter.of("listing")[0]
    assert re.fullmatch(r"版本 \w{12} 共 3 个文件（[\d.]+ MB）；需下载 3 个（[\d.]+ MB），0 个已存在",
                        event_line("listing", listing))
    done = {f["path"]: f for f in reporter.of("file_done")}
    assert event_line("file_done", done["config.json"]).startswith(
        "✓ config.json ") and "（已验证：git-sha1，来自 hf）" in event_line(
        "file_done", done["config.json"])
    # A rerun skips what is verified: the reason is English in the event, Chinese shown.
    again = CollectingReporter()
    fetch_tiny(tmp_path, again)
    skipped = again.of("file_skipped")[0]
    assert skipped["reason"] == "verified earlier"
    assert event_line("file_skipped", skipped).endswith("：此前已验证")


def test_rate_limit_countdown_and_retries_in_chinese(zh):
    from llmsetup.download.http import rate_limit_wait

    waiting = {"seconds": 12, "message": rate_limit_wait("hf-mirror", 12.4)}
    assert waiting["message"] == ("hf-mirror: rate limit reached; waiting 12s for the "
                                  "server's window to reset")
    assert event_line("waiting", waiting) == "… hf-mirror：已触发限流；等待 12s，直到服务器的限流窗口重置"
    retry = {"path": WEIGHTS, "attempt": 2, "delay": 0.5,
             "reason": Message(N_("stalled: {got:,} bytes in {seconds:.1f}s"), got=12345,
                               seconds=2.0)}
    assert retry["reason"] == "stalled: 12,345 bytes in 2.0s"
    assert event_line("retry", retry) == (f"↻ {WEIGHTS}：传输停滞：2.0s 内只收到 12,345 字节；"
                                          "0.5s 后第 2 次重试")


def test_aliendao_copy_that_differs_is_explained_in_chinese(zh, server, files, tmp_path):
    server.repos["org/tiny"].mirror_files = {WEIGHTS: bytes(reversed(files[WEIGHTS]))}
    settings = Settings(home=tmp_path, models_dir=tmp_path / "models",
                        config={"aliendao": {"site": server.url, "download_host": server.url}})
    ref = ModelRef(repo_id="org/tiny", model_dir=tiny_model_dir(tmp_path), sources=["aliendao"])
    reporter = CollectingReporter()
    with pytest.raises(IntegrityError) as err:
        download(ref, settings, DownloadOptions(engine=fast_engine()), reporter)
    assert err.value.message.startswith(f"aliendao：{WEIGHTS} 与 HF 版本不一致（那边的 sha256 是 ")
    assert err.value.message.endswith("：aliendao 的副本可能较旧")
    assert err.value.hint.startswith("可用 --accept-mirror-copy 按大小接受 aliendao 的副本")
    assert reporter.of("source_failed")[0]["reason"].startswith(
        f"{WEIGHTS} differs from the HF revision (sha256 ")


def test_check_findings_in_chinese_and_the_report_in_english(zh, server, files, tmp_path):
    fetch_tiny(tmp_path)
    folder = tiny_model_dir(tmp_path)
    (folder / "config.json").write_bytes(b"{}")
    weights = folder / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[0] ^= 0xFF
    weights.write_bytes(bytes(data))
    report = check_folder(folder)
    status = {f["path"]: f["status"] for f in report["files"]}
    # The report (what `llmsetup check --json` prints) stays English...
    assert status[WEIGHTS] == "sha256 mismatch"
    assert status["config.json"] == f"wrong size (2 bytes, expected {len(files['config.json'])})"
    assert not HAN.search(json.dumps(report, ensure_ascii=False))
    # ... and reads in Chinese where it is shown.
    assert shown(status[WEIGHTS]) == "sha256 不符"
    assert shown(status["config.json"]) == f"大小不符（2 字节，应为 {len(files['config.json'])}）"
    assert shown(status["tokenizer/tokenizer.json"]) == "ok"
    assert [shown(n) for n in trust_notes({"size": 2, "none": 1})] == [
        "1 个文件在没有哈希可比对的情况下被接管；只核对了大小",
        "2 个文件仅按大小验证（下载源未发布哈希）"]


def test_cli_download_speaks_chinese_but_logs_and_json_lines_stay_english(
        zh, cli, server, files, llmsetup_home):
    server.fault(WEIGHTS, "status", times=None, code=404)
    result = cli("download", "org/tiny", "--source", "hf")
    assert result.exit_code == 1
    assert f"hf：未找到（HTTP 404）：{WEIGHTS}" in result.stderr
    log = (Path(os.environ["LLMSETUP_HOME"]) / "logs" / "download.log")
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    failed = [e for e in events if e["event"] == "source_failed"]
    assert failed and failed[0]["reason"] == f"not found (HTTP 404): {WEIGHTS} (fault)"
    assert not any(HAN.search(json.dumps(e["reason"], ensure_ascii=False)) for e in failed)

    result = cli("download", "org/tiny", "--source", "hf", "--json")
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    failed = [e for e in lines if e.get("event") == "source_failed"]
    assert failed and failed[0]["reason"] == f"not found (HTTP 404): {WEIGHTS} (fault)"
    assert failed[0]["hint"].startswith("Check the name and revision at ")


def test_messages_are_english_data_that_shows_in_the_chosen_language(zh):
    inner = Message(N_("the file list of {repo}"), repo="org/tiny")
    outer = Message(N_("not found (HTTP {code}): {what}{detail}"), code=404, what=inner,
                    detail="")
    assert outer == "not found (HTTP 404): the file list of org/tiny"
    assert json.dumps({"reason": outer}) == '{"reason": "not found (HTTP 404): the file list of org/tiny"}'
    assert f"{outer}" == str.__str__(outer)  # f-strings and joins see the English data
    assert shown(outer) == "未找到（HTTP 404）：org/tiny 的文件列表"
    copy = pickle.loads(pickle.dumps(outer))
    assert copy == outer and shown(copy) == shown(outer)
    joined = Joined(N_("; "), [inner, "b"])
    assert joined == "the file list of org/tiny; b"
    assert shown(joined) == "org/tiny 的文件列表；b"
    assert shown(pickle.loads(pickle.dumps(joined))) == shown(joined)


def test_english_stays_exactly_as_it_was():
    outer = Message(N_("not found (HTTP {code}): {what}{detail}"), code=404,
                    what=Message(N_("the file list of {repo}"), repo="org/tiny"), detail="")
    assert shown(outer) == "not found (HTTP 404): the file list of org/tiny"
    assert type(shown(outer)) is str
    assert event_line("retry", {"path": "a", "reason": "r", "attempt": 1, "delay": 0}) == \
        "↻ a: r; retry 1"
