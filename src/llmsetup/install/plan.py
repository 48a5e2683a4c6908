"""An install is a plan: an ordered list of steps, each of which can describe itself (for
``--dry-run``), tell whether it is already done (for resume), and run.

State lives in ``$LLMSETUP_HOME/state/<recipe>/``: a step that finishes writes a small
record there (``steps/<key>.json``) with a fingerprint of its inputs. A rerun after a
failure or Ctrl-C skips every step whose record matches and whose result is still there
(the environment exists, the requirements are satisfied, the model files are present), and
resumes at the first one that is not done. ``--force`` ignores the records.
"""

from __future__ import annotations

import hashlib
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from llmsetup.download.options import DownloadOptions
from llmsetup.envs.base import PipOptions
from llmsetup.errors import LLMSetupError, UsageError
from llmsetup.fileio import write_json_atomic
from llmsetup.i18n import Message, _, shown
from llmsetup.proc import quote, stop_leftover_group
from llmsetup.settings import Settings


@dataclass
class WebUIOptions:
    """The ``--ui webui`` route: where the checkout goes and how the model gets into it."""

    dir: Path | None = None
    git_mirror: str | None = None
    deploy: str = "link"  # link | copy | move
    #: Check out the book's commit in an existing checkout that is elsewhere.
    yes: bool = False
    #: Use a folder that is not a git checkout even when its files do not match the commit.
    accept_tree: bool = False

    def checkout_dir(self) -> Path:
        return (self.dir.expanduser().absolute() if self.dir
                else Path("text-generation-webui").absolute())


@dataclass
class InstallOptions:
    """Everything ``llmsetup install`` was asked to do."""

    env_backend: str = "auto"
    profile: str | None = None
    python: str | None = None  # a version (3.10) or the path of an interpreter
    python_mirror: str | None = None  # UV_PYTHON_INSTALL_MIRROR, for uv
    pip: PipOptions = field(default_factory=PipOptions)
    use_lock: bool = True
    force: bool = False
    download: bool = True
    verify: bool = True
    cuda_check: bool = True
    cpu: bool = False
    quantization: str | None = None
    download_options: DownloadOptions = field(default_factory=DownloadOptions)
    ui: str | None = None
    webui_options: WebUIOptions = field(default_factory=WebUIOptions)
    #: ``--engine vllm``: install the serving engine's environment beside the model.
    #: ``--engine ctranslate2`` (speech models): faster-whisper in the model's environment,
    #: and verify runs through it.
    engine: str | None = None


class PlanReporter(Protocol):
    """Receives progress while a plan runs (the CLI renders it)."""

    def step_started(self, index: int, total: int, step: Step) -> None: ...
    def step_output(self, line: str) -> None: ...
    def notice(self, message: str) -> None: ...
    def step_finished(self, index: int, total: int, step: Step, status: str,
                      seconds: float, info: dict | None) -> None: ...


class QuietReporter:
    def step_started(self, index, total, step) -> None:
        pass

    def step_output(self, line) -> None:
        pass

    def notice(self, message) -> None:
        pass

    def step_finished(self, index, total, step, status, seconds, info) -> None:
        pass


def fingerprint(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_digest(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class Step(ABC):
    """One step of an install.

    Its title and the summary of its run are :class:`~llmsetup.i18n.Message`: ``title`` (English) is what
    ``--dry-run --json``, the install's ``--json`` and the step records hold;
    ``shown_title`` and :meth:`shown_summary` are what the terminal shows.
    """

    key: str = ""
    _title: Message | None = None
    _summary: Message | None = None

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    @property
    def title(self) -> str:
        """What the step does, in English (records and ``--json``)."""
        return self._title if self._title is not None else ""

    @property
    def shown_title(self) -> str:
        """What the step does, in the chosen language (the terminal)."""
        return self._title.shown() if self._title is not None else ""

    def set_title(self, msgid: str, **values: Any) -> None:
        self._title = Message(msgid, **values)

    def summarize(self, summary: Message) -> str:
        """Remember the summary of this run for :meth:`shown_summary`; its English text
        (for ``info["summary"]``, which is recorded)."""
        self._summary = summary
        return str(summary)

    def shown_summary(self, info: dict | None) -> str | None:
        """The summary of the run that returned ``info``, in the chosen language."""
        if self._summary is not None:
            return self._summary.shown()
        return shown((info or {}).get("summary"))

    @property
    def step_record_path(self) -> Path:
        """This step's record of its last successful run (fingerprint, facts)."""
        return self.plan.state_dir / "steps" / f"{self.key}.json"

    def record(self) -> dict | None:
        try:
            return json.loads(self.step_record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def save_record(self, info: dict | None) -> None:
        write_json_atomic(self.step_record_path, {"step": self.key, "fingerprint": self.fingerprint(),
                                             "finished": time.time(), "info": info or {}})

    def record_matches(self) -> bool:
        rec = self.record()
        return bool(rec) and rec.get("fingerprint") == self.fingerprint()

    @abstractmethod
    def fingerprint(self) -> str:
        """A digest of the step's inputs; a change means the step must run again."""

    @abstractmethod
    def commands(self) -> list[list[str]]:
        """The commands this step runs (shown by --dry-run)."""

    def details(self) -> dict:
        """Anything else worth showing in --dry-run (requirements, paths)."""
        return {}

    @abstractmethod
    def is_done(self) -> bool:
        """Whether the step's result is in place already (never changes anything)."""

    @abstractmethod
    def run(self, reporter: PlanReporter) -> dict | None:
        """Do the step; return facts worth recording."""

    def describe(self) -> dict:
        return {"key": self.key, "title": self.title,
                "commands": [quote(c) for c in self.commands()], **self.details()}


@dataclass
class StepResult:
    key: str
    title: str
    #: done (by an earlier run of this install) | satisfied (found in place, never run by
    #: llmsetup here: the current interpreter, a hand-made env) | ran | skipped | failed |
    #: interrupted
    status: str
    seconds: float = 0.0
    info: dict | None = None
    error: str | None = None


class Plan:
    """The ordered steps of one install, and the state they share."""

    def __init__(self, target, settings: Settings, options: InstallOptions) -> None:
        self.target = target
        self.recipe = target.recipe
        self.settings = settings
        self.options = options
        self.state_dir = settings.state_dir / self.recipe.name
        self.logs_dir = settings.logs_dir / self.recipe.name
        self.steps: list[Step] = []
        #: (step key, why): ``why`` in English, a message marked with N_() or an option
        #: (see :meth:`shown_skipped`).
        self.skipped: list[tuple[str, str]] = []

    @property
    def group_record(self) -> Path:
        """Names the process group of the command a step runs, while it runs."""
        return self.state_dir / "running-command.json"

    def log_path(self, step_key: str) -> Path:
        return self.logs_dir / f"{step_key}.log"

    def describe(self) -> list[dict]:
        return [step.describe() for step in self.steps]

    def shown_skipped(self) -> list[tuple[str, str]]:
        """:attr:`skipped` with each reason in the chosen language."""
        return [(key, _(why)) for key, why in self.skipped]

    def status(self) -> list[dict]:
        """Each step with whether it is done now (reads, never writes)."""
        rows = []
        for step in self.steps:
            try:
                done = not self.options.force and step.is_done()
            except LLMSetupError:
                done = False
            rows.append({**step.describe(), "done": done,
                         "satisfied": done and not step.record_matches()})
        return rows

    def run(self, reporter: PlanReporter | None = None) -> list[StepResult]:
        """Run every step not done yet, in order; stop at the first failure."""
        from filelock import FileLock, Timeout

        reporter = reporter or QuietReporter()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.state_dir / ".install.lock"))
        try:
            lock.acquire(timeout=1)
        except Timeout:
            raise UsageError(
                _("another `llmsetup install {name}` is running").format(name=self.recipe.name),
                hint=_("Wait for it to finish (or stop it), then rerun.")) from None
        try:
            if self.group_record.exists():
                stopped = stop_leftover_group(self.group_record)
                if stopped:
                    reporter.notice(_(
                        "stopped {count} process(es) left running by an earlier install of "
                        "{name} that was killed (still installing into its environment); this "
                        "run starts that step again").format(count=stopped,
                                                              name=self.recipe.name))
            return self._run_steps(reporter)
        finally:
            lock.release()

    def _run_steps(self, reporter: PlanReporter) -> list[StepResult]:
        results: list[StepResult] = []
        total = len(self.steps)
        for index, step in enumerate(self.steps, 1):
            if not self.options.force and step.is_done():
                # Only a record of our own run makes it "done"; else it was found in place.
                status = "done" if step.record_matches() else "satisfied"
                results.append(StepResult(step.key, step.title, status))
                reporter.step_finished(index, total, step, status, 0.0, None)
                continue
            reporter.step_started(index, total, step)
            started = time.monotonic()
            try:
                info = step.run(reporter)
            except KeyboardInterrupt:
                reporter.step_finished(index, total, step, "interrupted",
                                       time.monotonic() - started, None)
                raise
            except LLMSetupError as exc:
                reporter.step_finished(index, total, step, "failed",
                                       time.monotonic() - started, {"error": exc.message})
                raise
            seconds = time.monotonic() - started
            step.save_record(info)
            results.append(StepResult(step.key, step.title, "ran", seconds, info))
            reporter.step_finished(index, total, step, "ran", seconds, info)
        return results

