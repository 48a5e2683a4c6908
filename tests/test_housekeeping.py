"""`llmsetup list` sizes, `llmsetup rm` and `llmsetup prune`, with real environments (venv
and uv, from wheels the test builds) and real downloads from the loopback server.

Sizes are checked to the byte against `find -type f -printf %s` (apparent sizes of the
regular files, each hard-linked inode once). The webui deployment is a stand-in (records
and a `models/` folder as the deploy step leaves them): the real text-generation-webui
checkout cannot exist on these machines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from llmsetup.download import is_complete
from tests.download_server import FixtureServer, random_bytes, tiny_model_files
from tests.wheels import make_wheel

PY = "{}.{}".format(*sys.version_info[:2])


def recipe(name: str, repo_id: str, env: str) -> dict:
    return {"name": name, "kind": "causal-lm", "repo_id": repo_id, "sources": ["hf"],
            "description": "A test recipe: wheels from a folder, weights from loopback",
            "env": {"name": env, "python": PY}, "default_profile": "book",
            "profiles": {"book": ["llmsetup-test-alpha==1.0"]}}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    make_wheel(folder, "llmsetup-test-alpha", "1.0")
    return folder


@pytest.fixture
def server(monkeypatch, tmp_path, llmsetup_home):
    """The loopback server with two repositories, and recipes tiny-a and tiny-b for them
    that share the environment `shared`; tiny-c has one of its own."""
    with FixtureServer() as s:
        monkeypatch.setenv("HF_ENDPOINT", s.url)
        s.add_repo("org/tiny-a", tiny_model_files(seed=1))
        s.add_repo("org/tiny-b", tiny_model_files(weights=1 << 20, seed=2))
        s.add_repo("org/tiny-c", tiny_model_files(weights=1 << 19, seed=3))
        recipes = tmp_path / "recipes"
        recipes.mkdir()
        for doc in (recipe("tiny-a", "org/tiny-a", "shared"),
                    recipe("tiny-b", "org/tiny-b", "shared"),
                    recipe("tiny-c", "org/tiny-c", "tiny-c")):
            (recipes / f"{doc['name']}.yaml").write_text(yaml.safe_dump(doc))
        monkeypatch.setenv("LLMSETUP_RECIPES_PATH", str(recipes))
        yield s


def models() -> Path:
    return Path(os.environ["LLMSETUP_MODELS_DIR"])


def install(cli, wheels: Path, name: str, backend: str = "venv"):
    result = cli("install", name, "--env-backend", backend, "--find-links", wheels,
                 "--no-index", "--no-lock", "--no-cuda-check", "--no-verify", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def apparent(path: Path) -> int:
    """Bytes of the regular files under ``path``, by find(1), each inode once."""
    out = subprocess.run(["find", str(path), "-type", "f", "-printf", "%D:%i %s\n"],
                         capture_output=True, text=True, check=True).stdout
    return sum(int(size) for size in dict(line.split() for line in out.splitlines()).values())


def snapshot(*folders: Path) -> dict[str, int]:
    """Every path and its size (the catalog's index cache aside: reading recipes makes it)."""
    return {str(p): p.lstat().st_size for f in folders for p in sorted(f.rglob("*"))
            if "cache" not in p.relative_to(f).parts[:1]}


def rows(cli) -> dict[str, dict]:
    doc = cli.json("list")
    return {r["name"]: r for r in doc["recipes"]} | {"": doc}


# -- list ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["venv", "uv"])
def test_list_sizes_to_the_byte_with_a_shared_env_counted_once(cli, server, wheels,
                                                               llmsetup_home, backend):
    for name in ("tiny-a", "tiny-b"):
        install(cli, wheels, name, backend)
    env = llmsetup_home / "envs" / "shared"
    a, b = models() / "org" / "tiny-a", models() / "org" / "tiny-b"
    got = rows(cli)
    for name, folder, other in (("tiny-a", a, "tiny-b"), ("tiny-b", b, "tiny-a")):
        disk = got[name]["disk"]
        assert got[name]["installed"]
        assert disk["model_bytes"] == apparent(folder)
        assert [(e["path"], e["bytes"], e["shared_with"]) for e in disk["envs"]] == \
            [(str(env), apparent(env), [other])]
        assert disk["total_bytes"] == apparent(folder) + apparent(env)
    assert got["tiny-c"]["disk"] is None and not got["tiny-c"]["installed"]
    assert got[""]["disk_total_bytes"] == apparent(a) + apparent(b) + apparent(env)
    human = cli("list")
    assert human.exit_code == 0
    assert "shared with other recipes, counted once" in human.stdout
    assert "total on disk" in human.stdout


def test_list_measures_an_env_once_until_packages_come_or_go(cli, server, wheels,
                                                              llmsetup_home):
    install(cli, wheels, "tiny-c")
    env = llmsetup_home / "envs" / "tiny-c"
    size = apparent(env)
    assert rows(cli)["tiny-c"]["disk"]["envs"][0]["bytes"] == size
    assert (llmsetup_home / "cache" / "env-sizes.json").is_file()
    # Remembered: bytes written inside an installed package's folder are not walked again
    # (site-packages itself did not change) ...
    site = next(env.glob("lib/python*/site-packages"))
    package = next(p for p in site.iterdir() if p.is_dir() and not p.name.endswith("-info"))
    (package / "blob.bin").write_bytes(b"x" * 4096)
    assert rows(cli)["tiny-c"]["disk"]["envs"][0]["bytes"] == size
    # ... and measured again as soon as a package comes or goes.
    (site / "newpkg").mkdir()
    (site / "newpkg" / "__init__.py").write_bytes(b"y" * 100)
    assert rows(cli)["tiny-c"]["disk"]["envs"][0]["bytes"] == apparent(env) == size + 4196
    # A cache file that is not ours is measured over, not believed.
    (llmsetup_home / "cache" / "env-sizes.json").write_text("[1, 2")
    assert rows(cli)["tiny-c"]["disk"]["envs"][0]["bytes"] == size + 4196


# -- rm -----------------------------------------------------------------------------------


def test_rm_without_yes_off_a_terminal_exits_2_and_removes_nothing(cli, server, wheels,
                                                                   llmsetup_home):
    install(cli, wheels, "tiny-c")
    before = snapshot(models(), llmsetup_home)
    result = cli("rm", "tiny-c", "--all")
    assert result.exit_code == 2
    assert "--yes" in result.stderr and "Traceback" not in result.output
    dry = cli("rm", "tiny-c", "--all", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    doc = json.loads(dry.stdout)
    assert not doc["removed"] and {i["kind"] for i in doc["remove"]} == \
        {"model", "env", "state", "logs"}
    assert snapshot(models(), llmsetup_home) == before


def test_rm_all_removes_exactly_what_was_recorded_and_install_works_again(cli, server, wheels,
                                                                          llmsetup_home):
    install(cli, wheels, "tiny-c")
    folder = models() / "org" / "tiny-c"
    env = llmsetup_home / "envs" / "tiny-c"
    expected = {"model": apparent(folder), "env": apparent(env),
                "state": apparent(llmsetup_home / "state" / "tiny-c"),
                "logs": apparent(llmsetup_home / "logs" / "tiny-c")}
    (llmsetup_home / "envs" / "other").mkdir()  # not tiny-c's: stays
    doc = cli.json("rm", "tiny-c", "--all", "--yes")
    assert doc["removed"]
    assert {i["kind"]: i["bytes"] for i in doc["remove"]} == expected
    assert doc["bytes"] == sum(expected.values())
    assert not folder.exists() and not folder.parent.exists()  # the ORG folder left empty
    assert not env.exists() and (llmsetup_home / "envs" / "other").is_dir()
    assert not (llmsetup_home / "state" / "tiny-c").exists()
    assert rows(cli)["tiny-c"]["disk"] is None and not rows(cli)["tiny-c"]["installed"]
    again = install(cli, wheels, "tiny-c")
    assert all(s["status"] == "ran" for s in again["steps"])
    assert rows(cli)["tiny-c"]["installed"]


def test_rm_env_keeps_a_shared_env_and_says_who_uses_it(cli, server, wheels, llmsetup_home):
    for name in ("tiny-a", "tiny-b"):
        install(cli, wheels, name)
    env = llmsetup_home / "envs" / "shared"
    doc = cli.json("rm", "tiny-a", "--env", "--yes")
    assert [i["kind"] for i in doc["remove"]] == ["model"]
    assert {"kind": "env", "path": str(env), "reason": "also used by tiny-b"} in doc["kept"]
    assert env.is_dir() and not (models() / "org" / "tiny-a").exists()
    assert (models() / "org" / "tiny-b" / "config.json").is_file()
    # tiny-a is not installed any more: its record no longer holds the env.
    doc = cli.json("rm", "tiny-b", "--env", "--yes")
    assert {i["kind"] for i in doc["remove"]} == {"model", "env", "record"}
    assert not env.exists()
    again = install(cli, wheels, "tiny-a")
    assert again["steps"][0]["status"] == "ran"


def test_rm_never_goes_through_a_symlink_or_takes_user_files(cli, server, tmp_path):
    assert cli("download", "tiny-a").exit_code == 0
    folder = models() / "org" / "tiny-a"
    outside = tmp_path / "outside"
    outside.mkdir()
    # The user moved the tokenizer out and linked it back; added notes and a linked file.
    (folder / "tokenizer").rename(outside / "tokenizer")
    (folder / "tokenizer").symlink_to(outside / "tokenizer", target_is_directory=True)
    (outside / "big.bin").write_bytes(b"x" * 1000)
    (folder / "big.bin").symlink_to(outside / "big.bin")
    (folder / "notes.txt").write_text("mine")
    before = snapshot(outside)
    doc = cli.json("rm", "tiny-a", "--yes")
    kept = {Path(k["path"]).name: k["reason"] for k in doc["kept"]}
    assert "not followed" in kept["tokenizer.json"]
    assert kept["notes.txt"] == "not made by llmsetup" and "big.bin" in kept
    assert snapshot(outside) == before
    assert sorted(p.name for p in folder.iterdir()) == ["big.bin", "notes.txt", "tokenizer"]
    assert not rows(cli)["tiny-a"]["installed"]


def test_rm_of_an_adopted_folder_removes_the_links_only(cli, server, tmp_path):
    local = tmp_path / "dataroot" / "org" / "tiny-a"
    for rel, data in tiny_model_files(seed=1).items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
    before = {p: p.read_bytes() for p in local.rglob("*") if p.is_file()}
    assert cli("download", "tiny-a", "--from", local).exit_code == 0
    folder = models() / "org" / "tiny-a"
    assert (folder / "config.json").stat().st_ino == (local / "config.json").stat().st_ino
    doc = cli.json("rm", "tiny-a", "--yes")
    assert "hard link" in doc["remove"][0]["note"]
    assert not folder.exists()
    assert {p: p.read_bytes() for p in local.rglob("*") if p.is_file()} == before
    assert all(p.stat().st_nlink == 1 for p in before)
    # Adopted in place (--from names the model folder itself): the files are the user's.
    folder.mkdir(parents=True)
    for p in before:
        (folder / p.relative_to(local)).parent.mkdir(parents=True, exist_ok=True)
        (folder / p.relative_to(local)).write_bytes(before[p])
    assert cli("download", "tiny-a", "--from", folder).exit_code == 0
    doc = cli.json("rm", "tiny-a", "--yes")
    reasons = {Path(k["path"]).name: k["reason"] for k in doc["kept"]}
    assert "in place" in reasons["config.json"] and "in place" in reasons["model.safetensors"]
    assert reasons["pytorch_model.bin"] == "not made by llmsetup"  # not selected: not adopted
    assert all((folder / p.relative_to(local)).read_bytes() == before[p] for p in before)
    assert not (folder / ".llmsetup").exists()


def test_rm_a_copied_adoption_and_the_webui_deployment(cli, server, tmp_path, llmsetup_home):
    """The deployment is a stand-in: the records and models/ entries the deploy step writes."""
    local = tmp_path / "dataroot" / "tiny-a"
    for rel, data in tiny_model_files(seed=1).items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
    assert cli("download", "tiny-a", "--from", local, "--copy").exit_code == 0
    folder = models() / "org" / "tiny-a"
    checkout = tmp_path / "text-generation-webui"
    (checkout / "models").mkdir(parents=True)
    (checkout / "models" / "tiny-a").symlink_to(folder, target_is_directory=True)
    state = llmsetup_home / "state" / "tiny-a"
    (state / "steps").mkdir(parents=True)
    (state / "webui.json").write_text(json.dumps({"dir": str(checkout), "commit": "abc"}))
    (state / "steps" / "deploy.json").write_text(json.dumps(
        {"step": "deploy", "info": {"target": str(checkout / "models" / "tiny-a"),
                                    "mode": "link"}}))
    size = apparent(folder)
    doc = cli.json("rm", "tiny-a", "--yes")
    assert [(i["kind"], i["bytes"]) for i in doc["remove"]] == [("model", size), ("deploy", 0)]
    assert not folder.exists() and not os.path.lexists(checkout / "models" / "tiny-a")
    assert checkout.is_dir() and all(p.is_file() for p in local.rglob("*.json"))
    # A copy deployed into the checkout goes with --webui-deploy; the checkout stays.
    copy = checkout / "models" / "tiny-a"
    copy.mkdir()
    (copy / "config.json").write_text("{}")
    (copy / ".llmsetup-deployed.json").write_text("{}")
    (checkout / "models" / "mine").mkdir()
    size = apparent(copy)
    doc = cli.json("rm", "tiny-a", "--webui-deploy", "--yes")
    assert [(i["kind"], i["bytes"]) for i in doc["remove"]] == [("deploy", size)]
    assert not copy.exists() and (checkout / "models" / "mine").is_dir()


def test_rm_on_a_terminal_asks_first(server, tmp_path):
    """The real console script on a pseudo-terminal: no removes nothing, yes removes."""
    pexpect = pytest.importorskip("pexpect")
    script = str(Path(sys.executable).parent / "llmsetup")
    assert subprocess.run([script, "download", "tiny-a"], capture_output=True).returncode == 0
    folder = models() / "org" / "tiny-a"
    for answer, code in (("n", 1), ("y", 0)):
        child = pexpect.spawn(script, ["rm", "tiny-a"], env=dict(os.environ), timeout=60,
                              encoding="utf-8")
        child.expect(r"Remove these \(.*\)\?")
        child.sendline(answer)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == code, child.before
        assert folder.exists() == (answer == "n")


def test_rm_usage_errors_and_envs_it_does_not_own(cli, server, llmsetup_home, tmp_path):
    result = cli("rm", "no-such-recipe", "--yes")
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = cli("rm", str(tmp_path), "--yes")
    assert result.exit_code == 2 and "not a folder" in result.stderr
    result = cli("rm", "tiny-a", "--yes")
    assert result.exit_code == 0 and "Nothing to remove" in result.output
    state = llmsetup_home / "state" / "tiny-a"
    state.mkdir(parents=True)
    (state / "env.json").write_text(json.dumps({"backend": "conda", "name": "gemma",
                                                "location": "conda env gemma"}))
    doc = cli.json("rm", "tiny-a", "--env", "--yes")
    assert doc["remove"] == [] and "conda env remove -n gemma" in doc["kept"][0]["reason"]
    (state / "env.json").write_text(json.dumps({"backend": "venv", "name": "x",
                                                "location": str(tmp_path / "elsewhere")}))
    (tmp_path / "elsewhere").mkdir()
    doc = cli.json("rm", "tiny-a", "--env", "--yes")
    assert (tmp_path / "elsewhere").is_dir()
    assert any("not a folder under" in k["reason"] for k in doc["kept"])


# -- prune --------------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_prune_removes_partials_stale_locks_orphan_envs_old_logs(cli, server, llmsetup_home):
    assert cli("download", "tiny-a").exit_code == 0
    complete = models() / "org" / "tiny-a"
    # A finished download leaves its (free) lock file but no owner: not a stale lock.
    assert (complete / ".llmsetup" / "lock").is_file()
    assert not (complete / ".llmsetup" / "lock.owner").exists()
    state = models() / "org" / "tiny-b" / ".llmsetup"
    (state / "partial").mkdir(parents=True)
    (state / "partial" / "model.safetensors.abc").write_bytes(random_bytes(12345))
    (state / "lock").write_text("")
    dead = str(_dead_pid())
    (state / "lock.owner").write_text(dead)
    envs = llmsetup_home / "envs"
    (envs / "orphan" / "lib").mkdir(parents=True)
    (envs / "orphan" / "lib" / "x.py").write_text("x = 1\n")
    (envs / "kept").mkdir()
    (llmsetup_home / "state" / "r").mkdir(parents=True)
    # Any record naming a backend and a location holds its env (an engine's, say).
    (llmsetup_home / "state" / "r" / "engine-env.json").write_text(json.dumps(
        {"backend": "uv", "name": "kept", "location": str(envs / "kept")}))
    logs = llmsetup_home / "logs" / "r"
    logs.mkdir(parents=True)
    (logs / "old.log").write_text("old\n")
    (logs / "new.log").write_text("new\n")
    month_ago = time.time() - 40 * 86400
    os.utime(logs / "old.log", (month_ago, month_ago))
    before = snapshot(models(), llmsetup_home)
    assert cli("prune").exit_code == 2
    assert snapshot(models(), llmsetup_home) == before

    doc = cli.json("prune", "--yes", "--older-than", "30")
    got = {(i["kind"], Path(i["path"]).name): i["bytes"] for i in doc["remove"]}
    assert got == {("partial", "partial"): 12345, ("lock", ".llmsetup"): len(dead),
                   ("env", "orphan"): 6, ("log", "old.log"): 4}
    assert not (state / "partial").exists() and not (state / "lock").exists()
    assert not (envs / "orphan").exists() and (envs / "kept").is_dir()
    assert not (logs / "old.log").exists() and (logs / "new.log").is_file()
    assert is_complete(complete)  # the finished download is untouched


def test_prune_leaves_a_running_download_alone(cli, server, llmsetup_home):
    state = models() / "org" / "tiny-b" / ".llmsetup"
    (state / "partial").mkdir(parents=True)
    (state / "partial" / "part").write_bytes(b"x" * 10)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from filelock import FileLock; "
         f"l = FileLock({str(state / 'lock')!r}); l.acquire(); print('held', flush=True); "
         "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        (state / "lock.owner").write_text(str(holder.pid))
        doc = cli.json("prune", "--yes")
        assert doc["remove"] == []
        assert "a download is running" in doc["kept"][0]["reason"]
        assert (state / "partial" / "part").is_file()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_rm_a_model_moved_into_the_webui(cli, server, tmp_path, llmsetup_home):
    """Stand-in for `--deploy move`: the folder moved into models/, a link left behind."""
    assert cli("download", "tiny-a").exit_code == 0
    folder = models() / "org" / "tiny-a"
    checkout = tmp_path / "text-generation-webui"
    (checkout / "models").mkdir(parents=True)
    target = checkout / "models" / "tiny-a"
    folder.rename(target)
    (target / ".llmsetup-deployed.json").write_text("{}")
    folder.symlink_to(target, target_is_directory=True)
    state = llmsetup_home / "state" / "tiny-a"
    (state / "steps").mkdir(parents=True)
    (state / "webui.json").write_text(json.dumps({"dir": str(checkout), "commit": "abc"}))
    (state / "steps" / "deploy.json").write_text(json.dumps(
        {"step": "deploy", "info": {"target": str(target), "mode": "move"}}))
    size = apparent(target)
    assert rows(cli)["tiny-a"]["disk"]["model_bytes"] == 0  # the link: counted once, below
    assert rows(cli)["tiny-a"]["disk"]["deploy_bytes"] == size
    doc = cli.json("rm", "tiny-a", "--webui-deploy", "--yes")
    assert [(i["kind"], i["bytes"]) for i in doc["remove"]] == [("model", 0), ("deploy", size)]
    assert not os.path.lexists(folder) and not target.exists() and checkout.is_dir()
