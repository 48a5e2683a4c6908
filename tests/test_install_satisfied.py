"""A step found in place was not done by us: the first `install demo` (current interpreter)
says "already satisfied", not "already done" (issue 13, item 4)."""

from __future__ import annotations

import json


def test_first_demo_install_says_satisfied_not_done(cli):
    args = ("install", "demo", "--no-download", "--no-verify", "--no-cuda-check")
    dry = cli(*args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "1. Use the current interpreter" in dry.stdout
    assert dry.stdout.count("[already satisfied]") == 2 and "[done]" not in dry.stdout
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("(already satisfied)") == 2
    assert "already done" not in result.stderr
    assert "0 steps ran, 2 already satisfied" in " ".join(result.stderr.split())
    doc = json.loads(cli(*args, "--json").stdout)
    assert [s["status"] for s in doc["steps"]] == ["satisfied", "satisfied"]
