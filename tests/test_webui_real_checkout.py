"""Opt-in: the checkout journeys against the real text-generation-webui repository.

    LLMSETUP_WEBUI_MIRROR=/path/to/a/clone/of/text-generation-webui \
        .venv/bin/python -m pytest tests/test_webui_real_checkout.py

LLMSETUP_WEBUI_MIRROR is a git repository that holds the book's commit (a clone or a
``git clone --mirror`` of the upstream project; no network is used). With the real recipe
``llama-2-7b-chat`` this runs only the install's first step (the checkout), so nothing is
installed: a mirror root in the dry run, an existing checkout at 1934cb6 recorded and
accepted under --force (the short id resolved to the full one), and a ``git archive``
export accepted by the blob ids the recipe records. Skipped without the variable.

Files whose blobs a partial mirror lacks are left out of the checkout and the export
(sparse checkout), so a mirror without its large files works too.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from llmsetup.install.build import build_plan
from llmsetup.install.plan import InstallOptions, QuietReporter, WebUIOptions
from llmsetup.recipes import Catalog
from llmsetup.settings import Settings
from llmsetup.targets import resolve

MIRROR = os.environ.get("LLMSETUP_WEBUI_MIRROR")
pytestmark = pytest.mark.skipif(not MIRROR, reason="LLMSETUP_WEBUI_MIRROR is not set")
RECIPE = "llama-2-7b-chat"


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def _absent_blobs(commit: str) -> list[str]:
    """Paths at ``commit`` whose blobs the mirror does not hold (a partial mirror)."""
    listing = _git("ls-tree", "-r", commit, cwd=Path(MIRROR))
    paths = {line.split()[2]: line.split("\t", 1)[1] for line in listing.splitlines()}
    checked = subprocess.run(["git", "cat-file", "--batch-check"], cwd=MIRROR, check=True,
                             input="\n".join(paths), capture_output=True, text=True).stdout
    return [paths[line.split()[0]] for line in checked.splitlines() if line.endswith("missing")]


def _checkout(tgw: Path, commit: str) -> None:
    _git("clone", "-q", "--no-checkout", MIRROR, str(tgw))
    absent = _absent_blobs(commit)
    if absent:
        _git("sparse-checkout", "set", "--no-cone", "/*", *[f"!/{p}" for p in absent], cwd=tgw)
    _git("checkout", "-q", "--detach", commit, cwd=tgw)


def _clone_step(tgw: Path, **webui):
    settings = Settings.load()
    target = resolve(RECIPE, settings, Catalog())
    options = InstallOptions(ui="webui", webui_options=WebUIOptions(dir=tgw, **webui))
    return build_plan(target, settings, options).steps[0], settings


def test_real_mirror_root_existing_checkout_and_force(tmp_path):
    spec = Catalog().get(RECIPE).webui
    root = tmp_path / "root"
    (root / "oobabooga").mkdir(parents=True)
    os.symlink(MIRROR, root / "oobabooga" / "text-generation-webui.git")
    step, _ = _clone_step(tmp_path / "tgw", git_mirror=f"{root}/")
    print("mirror root:", step.title, step.commands())
    assert step.source.style == "root"
    assert step.commands()[0][:3] == ["git", "clone",
                                      str(root / "oobabooga" / "text-generation-webui.git")]

    tgw = tmp_path / "tgw"
    _checkout(tgw, spec.commit)
    step, settings = _clone_step(tgw)
    assert not step.is_done()  # not recorded yet
    info = step.run(QuietReporter())
    print("existing checkout:", info["summary"], info["commit"])
    assert info["commit"].startswith("1934cb61ef") and len(info["commit"]) == 40
    record = json.loads((settings.state_dir / RECIPE / "webui.json").read_text())
    assert record["dir"] == str(tgw)
    assert step.is_done()
    again, _ = _clone_step(tgw, yes=False)  # what --force runs: run() on a done step
    assert "already at" in again.run(QuietReporter())["summary"]


def test_real_archive_export_matches_the_recorded_blob_ids(tmp_path):
    spec = Catalog().get(RECIPE).webui
    tree = tmp_path / "tgw"
    tree.mkdir()
    exclude = [f":(exclude){p}" for p in _absent_blobs(spec.commit)]
    archive = subprocess.run(["git", "archive", spec.commit, "--", ".", *exclude], cwd=MIRROR,
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    step, _ = _clone_step(tree)
    info = step.run(QuietReporter())
    print("archive export:", info["summary"])
    assert info["kind"] == "tree" and info["commit"] == spec.commit
    assert step.is_done()
