"""The install plan with ``--ui webui``: the book's text-generation-webui route.

clone at the commit -> webui environment -> trimmed requirements + the profile's torch
(with the lock) -> torch/CUDA check -> download -> deploy into ``models/`` -> verify.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from llmsetup.envs import choose_backend, make_backend
from llmsetup.errors import UsageError
from llmsetup.fileio import write_json_atomic, write_text_atomic
from llmsetup.i18n import N_, Joined, Message, _
from llmsetup.install.plan import Plan, PlanReporter, Step, file_digest, fingerprint
from llmsetup.install.steps import CudaCheckStep, EnvStep, RequirementsStep, add_download, add_verify
from llmsetup.proc import run
from llmsetup.webui import repo as webui


def checkout_record_path(plan: Plan) -> Path:
    """Where the checkout's folder and commit are recorded (``serve`` reads it)."""
    return plan.state_dir / "webui.json"


def _source_text(source: webui.CloneSource) -> Message:
    """Where the clone comes from, in both languages."""
    return Message(webui.SOURCE_WORDS[source.style], url=source.url)


class CloneStep(Step):
    """Get the webui at the recipe's commit: clone it, check out the commit in an existing
    checkout, or accept a tree that is not a checkout (a release archive, ``git archive``)
    when a few of its files match the commit's blob ids (or with ``--accept-tree``).

    However the folder was obtained, it is recorded in ``webui.json`` so that ``serve`` finds
    it; the step is done only once that record names this folder.
    """

    key = "webui-clone"

    def __init__(self, plan: Plan) -> None:
        super().__init__(plan)
        self.spec = plan.recipe.webui
        self.options = plan.options.webui_options
        self.dir = self.options.checkout_dir()
        # Validated here, so that the dry run refuses a mirror git could not use.
        self.source = (webui.clone_source(self.spec.repo_url, self.options.git_mirror)
                       if self._found() == "nothing" else None)
        self.url = self.source.url if self.source else self.spec.repo_url
        if self.source and self.source.style != "direct":
            self.set_title(N_("Get text-generation-webui at {commit} into {dir} ({via})"),
                           commit=self.spec.commit, dir=self.dir, via=_source_text(self.source))
        else:
            self.set_title(N_("Get text-generation-webui at {commit} into {dir}"),
                           commit=self.spec.commit, dir=self.dir)

    def _found(self) -> str:
        """What is at the folder: a checkout, a tree (files, no .git) or nothing."""
        if (self.dir / ".git").exists():
            return "checkout"
        if self.dir.is_dir() and any(self.dir.iterdir()):
            return "tree"
        return "nothing"

    def fingerprint(self) -> str:
        return fingerprint(str(self.dir), self.spec.commit)

    def commands(self) -> list[list[str]]:
        found = self._found()
        checkout = ["git", "-C", str(self.dir), "checkout", "--detach", self.spec.commit]
        if found == "tree" or (found == "checkout" and webui.at_commit(self.dir,
                                                                       self.spec.commit)):
            return []
        if found == "checkout":
            return [checkout]
        return [["git", "clone", self.url, str(self.dir)], checkout]

    def details(self) -> dict:
        if self.source:
            return {"clone_url": self.source.url, "mirror_style": self.source.style}
        return {"found": self._found()}

    def _recorded(self) -> dict:
        try:
            rec = json.loads(checkout_record_path(self.plan).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return rec if rec.get("dir") == str(self.dir) else {}

    def is_done(self) -> bool:
        rec, found = self._recorded(), self._found()
        if not rec:
            return False
        if found == "checkout":
            return webui.at_commit(self.dir, self.spec.commit)
        if found == "tree":
            return rec.get("kind") == "tree" and (
                rec.get("verified_by") == "--accept-tree"
                or (bool(self.spec.tree_blobs)
                and not webui.tree_mismatches(self.dir, self.spec.tree_blobs)))
        return False

    def _save(self, **facts) -> dict:
        record = {"dir": str(self.dir), **facts}
        write_json_atomic(checkout_record_path(self.plan), record)
        return record

    def run(self, reporter: PlanReporter) -> dict:
        found = self._found()
        if found == "tree":
            return self._accept_tree()
        if found == "checkout" and webui.at_commit(self.dir, self.spec.commit):
            return {**self._save(kind="checkout", commit=webui.head_commit(self.dir)),
                    "summary": self.summarize(Message(
                        N_("found {dir} already at {commit}; recorded"),
                        dir=self.dir, commit=self.spec.commit))}
        if found == "checkout":
            if not webui.is_clean(self.dir):
                raise UsageError(_("{dir} has local changes and is not at {commit}").format(
                                     dir=self.dir, commit=self.spec.commit),
                                 hint=_("Commit or stash them first; llmsetup never discards "
                                        "your work."))
            if not self.options.yes:
                raise UsageError(_("{dir} is at {head}, not the book's {commit}").format(
                                     dir=self.dir, head=webui.head_commit(self.dir)[:10],
                                     commit=self.spec.commit),
                                 hint=_("Rerun with --yes to check out the book's commit "
                                        "there."))
        log = self.plan.log_path(self.key)
        for argv in self.commands():
            run(argv, log=log, on_line=reporter.step_output, what=" ".join(argv[:2]),
                env={"GIT_TERMINAL_PROMPT": "0"},
                hints=[("could not resolve host", _("GitHub is unreachable: try --git-mirror.")),
                       ("timed out", _("GitHub is slow or blocked: try --git-mirror.")),
                       ("did not match any",
                        _("The commit is not in that repository or mirror."))])
        how = (Message(N_("cloned {source}"), source=_source_text(self.source)) if self.source
               else Message(N_("checked out {commit} in the existing checkout"),
                         commit=self.spec.commit))
        return {**self._save(kind="checkout", commit=webui.head_commit(self.dir)),
                "summary": self.summarize(how)}

    def _accept_tree(self) -> dict:
        """A folder of the webui's files without .git: check it against the commit."""
        blobs = self.spec.tree_blobs
        bad = webui.tree_mismatches(self.dir, blobs) if blobs else None
        if blobs and not bad:
            record = self._save(kind="tree", commit=self.spec.commit,
                                verified_by="git blob ids of " + ", ".join(blobs))
            return {**record, "summary": self.summarize(Message(
                N_("{dir} is not a git checkout; its {files} match {commit}: accepted"),
                dir=self.dir, files=", ".join(blobs), commit=self.spec.commit))}
        if not self.options.accept_tree:
            if bad:
                message = _("{dir} exists and is not a git checkout, and its {files} do not "
                            "match {commit}").format(dir=self.dir, files=", ".join(bad),
                                                     commit=self.spec.commit)
            else:
                message = _("{dir} exists and is not a git checkout, and the recipe records "
                            "no file ids to check it against {commit}").format(
                                dir=self.dir, commit=self.spec.commit)
            raise UsageError(message, hint=_("Pass --accept-tree to use it as it is, or "
                                             "choose an empty folder with --webui-dir to "
                                             "clone into."))
        record = self._save(kind="tree", commit=None, verified_by="--accept-tree",
                            mismatches=bad or [])
        accepted = Message(N_("{dir} is not a git checkout; accepted as it is (--accept-tree)"),
                        dir=self.dir)
        if bad:
            accepted = Joined("; ", [accepted, Message(N_("differs from {commit} in {files}"),
                                                    commit=self.spec.commit,
                                                    files=", ".join(bad))])
        return {**record, "summary": self.summarize(accepted)}


class WebUIRequirementsStep(RequirementsStep):
    """The webui's requirements.txt trimmed at the cut-off line, plus the profile's torch."""

    def __init__(self, plan: Plan, backend, profile: str, clone: CloneStep) -> None:
        spec = plan.recipe.webui
        lock = plan.recipe.lock_path(profile, webui=True) if plan.options.use_lock else None
        super().__init__(plan, backend, profile, spec.profiles.get(profile, []), lock)
        self.spec = spec
        self.clone = clone
        if lock:
            self.set_title(N_("Install the webui's requirements up to {cutoff} (profile "
                              "{profile}, lock {lock})"), cutoff=spec.requirements_cutoff,
                           profile=profile, lock=lock.name)
        else:
            self.set_title(N_("Install the webui's requirements up to {cutoff} (profile "
                              "{profile}, no lock)"), cutoff=spec.requirements_cutoff,
                           profile=profile)

    @property
    def requirements_file(self) -> Path:
        return self.plan.state_dir / f"requirements.webui.{self.profile}.txt"

    def _source(self) -> Path:
        return self.clone.dir / "requirements.txt"

    def trimmed(self) -> str | None:
        try:
            text = self._source().read_text(encoding="utf-8")
        except OSError:
            return None
        return webui.trim_requirements(text, self.spec.requirements_cutoff)

    def requirements_text(self) -> str:
        trimmed = self.trimmed()
        if trimmed is None:
            raise UsageError(_("{file} is missing").format(file=self._source()),
                             hint=_("The clone step did not finish."))
        pins = "".join(p + "\n" for p in self.pins)
        return (f"# llmsetup: text-generation-webui {self.spec.commit} requirements.txt up to "
                f"{self.spec.requirements_cutoff}\n{trimmed}# llmsetup: profile {self.profile}\n"
                f"{pins}")

    def constraints_file(self) -> Path:
        return self.plan.state_dir / f"constraints.webui.{self.profile}.txt"

    def write_inputs(self) -> None:
        super().write_inputs()
        parts = [self.lock.read_text(encoding="utf-8")] if self.lock else []
        parts.append("".join(c + "\n" for c in self.spec.constraints))
        write_text_atomic(self.constraints_file(), "".join(parts))

    def all_pins(self) -> list[str]:
        trimmed = self.trimmed() or ""
        return webui.requirement_lines(trimmed) + self.pins

    def fingerprint(self) -> str:
        trimmed = self.trimmed() or ""
        return fingerprint(self.backend.describe(), self.pins, self.spec.constraints,
                           hashlib.sha256(trimmed.encode()).hexdigest()[:16],
                           file_digest(self.lock))

    def details(self) -> dict:
        return {**super().details(), "trimmed_from": str(self._source()),
                "cutoff": self.spec.requirements_cutoff, "constraints": self.spec.constraints}


class DeployStep(Step):
    key = "deploy"

    def __init__(self, plan: Plan, clone: CloneStep) -> None:
        super().__init__(plan)
        mode = plan.options.webui_options.deploy
        target = clone.dir / "models" / plan.recipe.webui.model_dir_name
        self.deployment = webui.Deployment(plan.target.model_dir, target, mode)
        self.set_title(N_("Deploy the model into {target} ({mode})"), target=target, mode=mode)

    def fingerprint(self) -> str:
        d = self.deployment
        return fingerprint(str(d.source), str(d.target), d.mode)

    def commands(self) -> list[list[str]]:
        d = self.deployment
        if d.mode == "link":
            return [["ln", "-s", str(d.source), str(d.target)]]
        verb = ["mv"] if d.mode == "move" else ["cp", "-r"]
        return [[*verb, str(d.source), str(d.target)]]

    def is_done(self) -> bool:
        return self.deployment.is_done()

    def run(self, reporter: PlanReporter) -> dict:
        mode = self.deployment.run()
        return {"target": str(self.deployment.target), "mode": mode}


def add_steps(plan: Plan) -> None:
    """The webui route's steps (see the module docstring)."""
    recipe, options = plan.recipe, plan.options
    spec = recipe.webui
    if spec is None:
        raise UsageError(_("{name} has no webui section").format(name=recipe.name),
                         hint=_("Only the Llama-2 recipes are served through "
                                "text-generation-webui; use `llmsetup chat` for the others."))
    profile = options.profile or recipe.default_profile
    if profile not in spec.profiles:
        raise UsageError(_("{name}'s webui has no profile {profile}").format(
                             name=recipe.name, profile=repr(profile)),
                         hint=_("Profiles: {profiles}").format(profiles=", ".join(spec.profiles)))
    env_name = spec.env.name if profile == recipe.default_profile else f"{spec.env.name}-{profile}"
    python = options.python or spec.env.profile_python.get(profile, spec.env.python)
    backend = make_backend(choose_backend(options.env_backend, spec.env.backend), env_name,
                           python, plan.settings, python_mirror=options.python_mirror)
    clone = CloneStep(plan)
    plan.steps.append(clone)
    plan.steps.append(EnvStep(plan, backend, plan.state_dir / "webui-env.json"))
    requirements = WebUIRequirementsStep(plan, backend, profile, clone)
    plan.steps.append(requirements)
    if options.cuda_check:
        plan.steps.append(CudaCheckStep(plan, backend, requirements))
    add_download(plan, backend)
    plan.steps.append(DeployStep(plan, clone))
    add_verify(plan, backend)
