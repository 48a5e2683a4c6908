"""``llmsetup rm``: what llmsetup made for a recipe, and removing it.

Only what llmsetup made or recorded is removed:

- model: the files the folder's manifest lists and llmsetup's ``.llmsetup/`` folder (or the
  whole folder the demo's generate step built); files the user added stay, and so does a
  file adopted with ``--from`` in place (the user's own). A file adopted by hard link is
  removed as a link: the user's original stays where it was;
- deploy: the link (or llmsetup's copy) in the recorded webui checkout's ``models/``; never
  the checkout itself;
- env: a venv/uv folder under ``$LLMSETUP_HOME/envs`` and the record of it, unless another
  installed recipe's record points to it too; conda environments and the current
  interpreter are never removed (the hint says how);
- state, logs (``--all``): ``$LLMSETUP_HOME/state/<recipe>`` and ``logs/<recipe>``.

Every path must really lie in the models dir, ``LLMSETUP_HOME`` or the recorded webui
checkout (see :func:`llmsetup.housekeeping.disk.remove_item`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from llmsetup.download.sources.base import STATE_DIR
from llmsetup.errors import UsageError
from llmsetup.housekeeping.disk import (
    Item,
    Kept,
    Removal,
    files_size,
    inside,
    linked_folder_between,
    remove_empty_parents,
    remove_item,
    tree_size,
)
from llmsetup.housekeeping.records import (
    EnvUse,
    all_env_uses,
    deployment,
    env_uses,
    install_running,
    lock_held,
    webui_checkout,
)
from llmsetup.i18n import N_, _
from llmsetup.settings import Settings

GENERATED_MARK = "llmsetup-generated.json"  # written by the demo's generate step
DEPLOYED_MARK = ".llmsetup-deployed.json"  # written into a deployed copy
# The note of a deployed folder, by the way it was deployed.
_DEPLOYED_NOTE = {"copy": N_("copied by llmsetup"), "move": N_("moved by llmsetup")}


@dataclass
class Parts:
    """What ``rm`` was asked to remove."""

    model: bool = True
    deploy: bool = True
    env: bool = False
    records: bool = False  # state and logs

    @classmethod
    def from_flags(cls, model: bool, env: bool, webui_deploy: bool, all_: bool) -> Parts:
        if all_:
            return cls(True, True, True, True)
        if not model and not webui_deploy:  # the default: the model and its deployment
            return cls(True, True, env, False)
        return cls(model, webui_deploy, env, False)


def roots(settings: Settings, recipe: str) -> list[Path]:
    """The folders ``rm`` may delete in."""
    found = [settings.models_dir, settings.home]
    checkout = webui_checkout(settings, recipe)
    if checkout is not None:
        found.append(checkout / "models")
    return found


def plan_removal(settings: Settings, recipe: str, model_dir: Path, parts: Parts,
                 not_installed: set[str]) -> Removal:
    """What ``rm`` would remove for ``recipe`` (reads only). ``not_installed``: the recipes
    whose model is not there (their records do not keep a shared environment)."""
    if install_running(settings, recipe):
        raise UsageError(_("`llmsetup install {recipe}` is running").format(recipe=recipe),
                         hint=_("Wait for it to finish (or stop it), then rerun."))
    removal = Removal()
    allowed = roots(settings, recipe)
    deployed = deployment(settings, recipe)
    # A folder moved into the webui and the link left at the model's path are one model.
    moved = bool(deployed and deployed[1] == "move")
    if parts.model or (parts.deploy and moved):
        _model(removal, model_dir, deployed, allowed)
    # A link into the removed model folder would dangle: it goes with the model.
    if parts.deploy or (parts.model and deployed and deployed[1] in ("link", "move")):
        _deploy(removal, settings, recipe, deployed, allowed)
    if parts.env:
        _envs(removal, settings, recipe, not parts.records, not_installed)
    if parts.records:
        for kind, folder in (("state", settings.state_dir / recipe),
                             ("logs", settings.logs_dir / recipe)):
            if folder.is_dir() and not folder.is_symlink():
                removal.items.append(Item(kind, folder, tree_size(folder)))
    _check_inside(removal, allowed)
    return removal


def _check_inside(removal: Removal, allowed: list[Path]) -> None:
    ok = []
    for item in removal.items:
        if inside(item.path, allowed):
            ok.append(item)
        else:
            removal.kept.append(Kept(item.kind, item.path, _(
                "outside the models dir, LLMSETUP_HOME and the recorded webui checkout")))
    removal.items = ok


def _model(removal: Removal, model_dir: Path, deployed: tuple[Path, str] | None,
           allowed: list[Path]) -> None:
    if not os.path.lexists(model_dir):
        return
    if model_dir.is_symlink():
        target = Path(os.path.realpath(model_dir))
        if deployed and deployed[1] == "move" and target == Path(os.path.realpath(deployed[0])):
            removal.items.append(Item("model", model_dir, 0, _("link to the deployed folder")))
        else:
            removal.kept.append(Kept("model", model_dir, _(
                "a symlink to {target} that llmsetup did not make: not followed").format(
                target=target)))
        return
    if not model_dir.is_dir():
        removal.kept.append(Kept("model", model_dir, _("not a folder")))
        return
    state = model_dir / STATE_DIR
    owner = state / "lock.owner"
    if lock_held(state / "lock"):
        pid = owner.read_text(encoding="utf-8").strip() if owner.is_file() else "?"
        raise UsageError(_("{folder} is being downloaded (pid {pid})").format(
            folder=model_dir, pid=pid),
            hint=_("Wait for the download to finish (or stop it), then rerun."))
    if (model_dir / GENERATED_MARK).is_file():
        removal.items.append(Item("model", model_dir, tree_size(model_dir),
                                  _("built by llmsetup")))
        return
    from llmsetup.download.manifest import Manifest

    manifest = Manifest.load(model_dir)
    if manifest is None:
        if state.is_dir():  # a download that never recorded a file: only our own folder
            removal.items.append(Item("model", model_dir, tree_size(state),
                                      files=_walk_files(state)))
        removal.kept.append(Kept("model", model_dir, _(
            "no llmsetup manifest: not made by llmsetup (delete it by hand if you are sure)")))
        return
    _manifest_files(removal, model_dir, manifest, state)


def _walk_files(folder: Path) -> list[Path]:
    out = []
    for root, _dirs, files in os.walk(folder):
        out += [Path(root) / f for f in files]
    return out


def _manifest_files(removal: Removal, model_dir: Path, manifest, state: Path) -> None:
    files: list[Path] = []
    links = 0
    for rel, entry in sorted(manifest.files.items()):
        path = model_dir / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            removal.kept.append(Kept("model", path,
                                     _("the manifest names it outside the folder")))
            continue
        if not os.path.lexists(path):
            continue
        via = linked_folder_between(model_dir, path)
        if via is not None:
            removal.kept.append(Kept("model", path, _(
                "reached through the symlink {link}: not followed").format(link=via)))
            continue
        how = entry.adopted
        nlink = path.lstat().st_nlink
        if how == "in-place":
            removal.kept.append(Kept("model", path,
                                     _("adopted with --from in place: your file")))
            continue
        if entry.source == "local" and how is None and nlink == 1:
            removal.kept.append(Kept("model", path, _(
                "adopted with --from by an llmsetup that did not record how (maybe in place): "
                "kept")))
            continue
        if entry.source == "local" and how != "copy" and nlink > 1:
            links += 1
        files.append(path)
    size = files_size(files)
    linked = files_size([p for p in files if p.lstat().st_nlink > 1])
    files += _walk_files(state)
    size += tree_size(state)
    if links:
        note = _("{n} files; {links} hard link(s) to files adopted with --from: removing a "
                 "link frees nothing ({bytes} bytes stay in the original folder)").format(
            n=len(files), links=links, bytes=f"{linked:,}")
    else:
        note = _("{n} files").format(n=len(files))
    removal.items.append(Item("model", model_dir, size, note, files=files))
    recorded = {model_dir / rel for rel in manifest.files} | set(files)
    extra = [p for p in _walk_files(model_dir) if p not in recorded
             and linked_folder_between(model_dir, p) is None]
    extra += [Path(r) / d for r, ds, _f in os.walk(model_dir) for d in ds
              if (Path(r) / d).is_symlink()]
    for path in extra[:20]:
        removal.kept.append(Kept("model", path, _("not made by llmsetup")))
    if len(extra) > 20:
        removal.kept.append(Kept("model", model_dir, _(
            "and {n} more files not made by llmsetup").format(n=len(extra) - 20)))


def _deploy(removal: Removal, settings: Settings, recipe: str,
            deployed: tuple[Path, str] | None, allowed: list[Path]) -> None:
    if deployed is None:
        return
    target, mode = deployed
    checkout = webui_checkout(settings, recipe)
    if checkout is None or target.parent != checkout / "models":
        removal.kept.append(Kept("deploy", target, _(
            "not in the recorded webui checkout's models/ folder")))
        return
    if target.is_symlink():
        removal.items.append(Item("deploy", target, 0, _("link to {target}").format(
            target=os.readlink(target))))
    elif (target / DEPLOYED_MARK).is_file():
        note = _(_DEPLOYED_NOTE[mode]) if mode in _DEPLOYED_NOTE \
            else _("deployed by llmsetup ({mode})").format(mode=mode)
        removal.items.append(Item("deploy", target, tree_size(target), note))
    elif os.path.lexists(target):
        removal.kept.append(Kept("deploy", target, _("not deployed by llmsetup")))
    if checkout.is_dir():
        removal.kept.append(Kept("webui", checkout, _(
            "the text-generation-webui checkout: other recipes may use it; delete it by hand "
            "if you want")))


def _users(settings: Settings, use: EnvUse, not_installed: set[str]) -> list[str]:
    """The other recipes whose records point to ``use``'s environment and that are installed
    (a recipe the catalog no longer has counts as installed: its env stays)."""
    return sorted({other.recipe for other in all_env_uses(settings)
                   if other.recipe != use.recipe and other.key == use.key
                   and other.recipe not in not_installed})


def _envs(removal: Removal, settings: Settings, recipe: str, drop_records: bool,
          not_installed: set[str]) -> None:
    for use in env_uses(settings, recipe):
        folder = use.folder
        if folder is None:
            if use.backend == "conda":
                reason = _("a {backend} environment llmsetup does not delete; to remove it: "
                           "`conda env remove -n {name}`")
            else:
                reason = _("a {backend} environment llmsetup does not delete; to remove it: "
                           "nothing: it is the interpreter llmsetup runs in")
            removal.kept.append(Kept(use.kind, Path(use.location or use.name),
                                     reason.format(backend=use.backend, name=use.name)))
            continue
        others = _users(settings, use, not_installed)
        if others:
            removal.kept.append(Kept(use.kind, folder, _("also used by {recipes}").format(
                recipes=", ".join(others))))
            continue
        if not folder.is_relative_to(settings.envs_dir) or folder.is_symlink():
            removal.kept.append(Kept(use.kind, folder, _("not a folder under {folder}").format(
                folder=settings.envs_dir)))
            continue
        if folder.is_dir():
            removal.items.append(Item(use.kind, folder, tree_size(folder),
                                      _("{backend} environment {name}").format(
                                          backend=use.backend, name=use.name)))
        if drop_records:
            removal.items.append(Item("record", use.record, tree_size(use.record)))


def execute(removal: Removal, settings: Settings, recipe: str) -> None:
    """Remove every item of ``removal`` (planned by :func:`plan_removal`)."""
    allowed = roots(settings, recipe)
    for item in removal.items:
        remove_item(item, allowed)
        if item.kind == "model" and item.path.is_relative_to(settings.models_dir):
            remove_empty_parents(item.path, settings.models_dir)
