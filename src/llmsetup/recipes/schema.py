"""The recipe schema. Pure data: no I/O beyond what a validator needs.

A recipe describes one model: where its weights live, which environment and pinned
requirements it needs, how to prove it works, and what it costs in memory. Unknown keys are
errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    model_validator,
)

from llmsetup.i18n import _
from llmsetup.recipes.memory import memory_gb
from llmsetup.recipes.names import DEFAULT_SOURCES, NAME_RE, REPO_RE

Kind = Literal["causal-lm", "asr"]
SourceName = Literal["hf", "hf-mirror", "aliendao", "modelscope", "generate"]
Backend = Literal["auto", "conda", "uv", "venv", "current"]
ChatTemplate = Literal["llama-2", "gemma", "chatml", "plain"]

ALL_SOURCES: tuple[str, ...] = ("hf", "hf-mirror", "aliendao", "modelscope", "generate")


def _check_pin(value: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(value)
    except InvalidRequirement:
        raise ValueError(_("{value} is not a valid requirement (expected e.g. 'torch==2.0.1')"
                           ).format(value=repr(value))) from None
    if req.url:
        raise ValueError(_("{value}: direct URLs are not allowed in a profile; pin a version"
                           ).format(value=repr(value)))
    return value


Pin = Annotated[str, AfterValidator(_check_pin)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, str_strip_whitespace=True)


PythonVersion = Annotated[str, Field(pattern=r"^3\.\d{1,2}$")]


class EnvSpec(_Strict):
    """The model's environment: its name (conda env or folder) and Python version.

    The recipe's default profile (the book's) uses ``name`` and ``python``; any other
    profile gets the environment ``<name>-<profile>``, with the Python version from
    ``profile_python`` where it differs (current transformers needs Python 3.11).
    """

    name: str = Field(pattern=NAME_RE)
    python: PythonVersion = Field(description="Python version, e.g. '3.10'")
    profile_python: dict[str, PythonVersion] = Field(default_factory=dict)
    backend: Backend | None = Field(
        default=None, description="preferred backend when --env-backend is auto"
    )


class Memory(_Strict):
    """GPU memory the model needs, in GB, per precision."""

    fp16_gb: float = Field(gt=0)
    int8_gb: float = Field(gt=0)
    int4_gb: float = Field(gt=0)


class AudioSpec(_Strict):
    """Pipeline settings for speech recognition (the book's by default)."""

    chunk_length_s: float = Field(default=30, gt=0, le=30)
    batch_size: int = Field(default=16, ge=1, le=512)
    max_new_tokens: int = Field(default=128, ge=1, le=444)
    return_timestamps: bool = True
    language: str | None = None
    task: Literal["transcribe", "translate"] = "transcribe"


class SmokeSpec(_Strict):
    """What `llmsetup verify` runs by default."""

    prompts: list[str] = Field(default_factory=list)
    max_new_tokens: int = Field(default=64, ge=1, le=4096)
    audio: AudioSpec | None = None


class WebUISpec(_Strict):
    """How the book serves this model through text-generation-webui."""

    repo_url: str
    commit: str = Field(pattern=r"^[0-9a-f]{7,40}$")
    env: EnvSpec
    requirements_cutoff: str = Field(
        min_length=1, description="keep requirements.txt up to and including this package"
    )
    model_dir_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    profiles: dict[str, list[Pin]] = Field(default_factory=dict)
    locks: dict[str, str] = Field(default_factory=dict)
    constraints: list[Pin] = Field(
        default_factory=list, description="extra constraints on top of the trimmed file"
    )
    tree_blobs: dict[str, Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]] = Field(
        default_factory=dict, description="git blob ids of a few files at the commit: a tree "
        "that is not a git checkout (a release archive) is accepted when these match")
    port: int = Field(default=7860, ge=1, le=65535)
    api_port: int = Field(default=5000, ge=1, le=65535)


class UpstreamSpec(_Strict):
    """The original repository when ``repo_id`` is a public copy of it."""

    repo_id: str = Field(pattern=REPO_RE)
    gated: bool = False


class GenerateSpec(_Strict):
    """How the ``generate`` source builds a tiny model locally (the demo)."""

    chat_template: ChatTemplate | Literal["none"] = "llama-2"
    train_steps: int = Field(default=0, ge=0, le=5000)
    seed: int = 0


class DownloadSpec(_Strict):
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class Recipe(_Strict):
    """One model: weights, environment, pins, smoke test, memory needs."""

    name: str = Field(pattern=NAME_RE)
    kind: Kind
    description: str = Field(min_length=1)
    repo_id: str = Field(pattern=REPO_RE)
    revision: str = "main"
    sources: list[SourceName] = Field(default_factory=lambda: list(DEFAULT_SOURCES), min_length=1)
    source_ids: dict[SourceName, str] = Field(default_factory=dict)
    target_dir: str | None = Field(
        default=None, description="folder under the models dir (default: repo_id)"
    )
    gated: bool = False
    upstream: UpstreamSpec | None = None
    license: str | None = None
    env: EnvSpec
    default_profile: str = "book"
    profiles: dict[str, list[Pin]] = Field(min_length=1)
    locks: dict[str, str] = Field(default_factory=dict)
    params: float | None = Field(default=None, gt=0, description="parameter count")
    memory: Memory | None = None
    smoke: SmokeSpec = Field(default_factory=SmokeSpec)
    chat_template_fallback: ChatTemplate | None = None
    trust_remote_code: bool = False
    needs_gpu: bool = Field(
        default=True, description="false: runs well on a CPU (the CUDA check accepts a CPU torch)"
    )
    download: DownloadSpec = Field(default_factory=DownloadSpec)
    architecture: dict[str, Any] | None = Field(
        default=None, description="config.json values, for benchmarks with random weights"
    )
    generate: GenerateSpec | None = None
    webui: WebUISpec | None = None
    notes: str | None = None

    _origin: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        if self.default_profile not in self.profiles:
            raise ValueError(
                _("default_profile {profile} is not one of the profiles ({profiles})").format(
                    profile=repr(self.default_profile), profiles=", ".join(self.profiles))
            )
        for profile in [*self.locks, *self.env.profile_python]:
            if profile not in self.profiles:
                raise ValueError(_("{profile} (in locks or env.profile_python) is not one of "
                                   "the profiles").format(profile=repr(profile)))
        if self.kind == "asr" and self.smoke.audio is None:
            self.smoke.audio = AudioSpec()
        if self.kind == "causal-lm" and self.smoke.audio is not None:
            raise ValueError(_("smoke.audio is for speech models (kind: asr)"))
        if self.target_dir is not None and (
            Path(self.target_dir).is_absolute() or ".." in Path(self.target_dir).parts
        ):
            raise ValueError(_("target_dir must be a relative folder under the models dir"))
        if "generate" in self.sources:
            if not self.architecture or "model_type" not in self.architecture:
                raise ValueError(_("the generate source needs architecture (with "
                                   "model_type)"))
            if self.generate is None:
                self.generate = GenerateSpec()
        for name in self.profiles:
            if not re.fullmatch(NAME_RE, name):
                raise ValueError(_("profile name {name} must be lowercase letters and "
                                   "digits").format(name=repr(name)))
        return self

    # -- derived values ---------------------------------------------------------------

    @property
    def origin(self) -> Path | None:
        """The file this recipe was read from (None for a recipe made from a folder)."""
        return self._origin

    def id_for(self, source: str) -> str:
        """The repository id at ``source`` (the same as ``repo_id`` unless overridden)."""
        base = "hf" if source == "hf-mirror" else source
        return self.source_ids.get(source) or self.source_ids.get(base) or self.repo_id

    def env_name(self, profile: str) -> str:
        """The environment of ``profile``: the recipe's own for the default profile."""
        return self.env.name if profile == self.default_profile else f"{self.env.name}-{profile}"

    def python_version(self, profile: str) -> str:
        return self.env.profile_python.get(profile, self.env.python)

    def lock_path(self, profile: str, webui: bool = False) -> Path | None:
        """The lock (constraints) file of ``profile`` (of the webui section with ``webui``)."""
        if self._origin is None:
            return None
        locks = (self.webui.locks if self.webui else {}) if webui else self.locks
        if profile in locks:
            return (self._origin.parent / locks[profile]).resolve()
        if webui:
            return None
        candidate = self._origin.parent / "locks" / f"{self.name}.{profile}.txt"
        return candidate if candidate.is_file() else None

    def memory_gb(self) -> dict[str, float | None]:
        """GPU memory needed per precision: the recipe's figures, else an estimate."""
        return memory_gb(self.memory.model_dump() if self.memory else None, self.params)
