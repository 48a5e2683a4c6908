"""Where llmsetup keeps its state, models and configuration, and where tokens come from.

Resolution order for every setting: command-line option (where one exists), environment
variable, config file, built-in default. Tokens are never taken from the command line:
only from environment variables or the config file (which should be readable by its owner
alone; :func:`config_warnings` says so otherwise).

Environment variables:

- ``LLMSETUP_HOME``: state, environments, logs (default: the platform's user data dir).
- ``LLMSETUP_MODELS_DIR``: where models are stored (default ``./dataroot/models``, as the
  book lays it out).
- ``LLMSETUP_CONFIG``: the config file (default ``$LLMSETUP_HOME/config.yaml``).
- ``LLMSETUP_RECIPES_PATH``: extra recipe folders, separated by ``os.pathsep``.
- ``HF_TOKEN``, ``LLMSETUP_ALIENDAO_TOKEN``, ``MODELSCOPE_API_TOKEN``: tokens.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmsetup.errors import UsageError
from llmsetup.i18n import _, ngettext
from llmsetup.secret import Secret

DEFAULT_MODELS_DIR = Path("dataroot") / "models"

# Token name -> the environment variables read for it, in order.
TOKEN_ENV = {
    "hf": ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
    "aliendao": ("LLMSETUP_ALIENDAO_TOKEN",),
    "modelscope": ("MODELSCOPE_API_TOKEN", "LLMSETUP_MODELSCOPE_TOKEN"),
}


def home() -> Path:
    """The llmsetup state folder (``LLMSETUP_HOME``)."""
    env = os.environ.get("LLMSETUP_HOME")
    if env:
        return Path(env).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_data_dir("llmsetup", appauthor=False))


def config_path() -> Path:
    env = os.environ.get("LLMSETUP_CONFIG")
    return Path(env).expanduser().absolute() if env else home() / "config.yaml"


def load_config(path: Path | None = None) -> dict[str, Any]:
    """Read and validate the config file (see :mod:`llmsetup.config_schema`).

    A missing file is an empty config. A file that is not plain YAML data, or holds an
    unknown key or a value of the wrong type, is a :class:`UsageError` (exit 2) naming
    ``file:line`` and the dotted key. Returns the settings given, lists normalised
    (``sources: modelscope`` reads as ``[modelscope]``).

    Validating costs YAML and pydantic, about twice the start-up of a short command
    (benchmarks/cli_start.py). A file that validated once is known by its sha256 in
    ``$LLMSETUP_HOME/cache/config.json``, with its settings, so that later runs need
    neither; a file that holds tokens is never cached (no secret in a second file).
    """
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return {}
    digest = hashlib.sha256(raw).hexdigest()
    cache = home() / "cache" / "config.json"
    known = _cached_config(cache, digest)
    if known is not None:
        return known
    config = _validate(path, raw)
    if not config.get("tokens"):
        _remember_config(cache, digest, config)
    return config


def _cache_key(digest: str) -> str:
    from llmsetup import __version__

    return f"{__version__}:{digest}"


def _cached_config(cache: Path, digest: str) -> dict[str, Any] | None:
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        return data["config"] if data.get("key") == _cache_key(digest) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remember_config(cache: Path, digest: str, config: dict[str, Any]) -> None:
    from llmsetup.fileio import write_json_atomic

    with contextlib.suppress(OSError):  # a read-only home only costs speed
        write_json_atomic(cache, {"key": _cache_key(digest), "config": config})


def _validate(path: Path, raw: bytes) -> dict[str, Any]:
    from llmsetup import yamlfile

    hint = _("Fix or remove the file; `llmsetup doctor` shows which config file is read.")
    try:
        doc = yamlfile.parse(raw.decode("utf-8"))
    except yamlfile.YamlProblem as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        if exc.kind == "syntax":
            message = _("{where}: the config file is not valid YAML: {problem}").format(
                where=where, problem=exc.detail)
        else:
            message = f"{where}: {exc.problem}"
        raise UsageError(message, hint=f"{exc.hint} {hint}") from None
    except UnicodeDecodeError:
        raise UsageError(_("{path}: the config file is not UTF-8 text").format(path=path),
                         hint=hint) from None
    if doc is None:
        return {}
    if not isinstance(doc.data, dict):
        raise UsageError(_("{where}: the config file must be a mapping of settings").format(
            where=f"{path}:1"), hint=hint)
    if doc.duplicates:
        loc, line = doc.duplicates[0]
        raise UsageError(_("{where}: {key}: set twice").format(
            where=f"{path}:{line}", key=yamlfile.format_loc(loc)), hint=hint)
    from llmsetup.config_schema import known_keys, validate

    config, problems = validate(doc, str(path))
    if config is None:
        head = ngettext("{path}: {n} problem in the config file",
                        "{path}: {n} problems in the config file",
                        len(problems)).format(path=path, n=len(problems))
        message = problems[0] if len(problems) == 1 else "\n  ".join([head, *problems])
        raise UsageError(message, hint=_("Known settings: {keys}.").format(
            keys=", ".join(known_keys())))
    return config.model_dump(exclude_none=True)


def config_warnings(path: Path, config: dict[str, Any]) -> list[str]:
    """What the user should fix in a config file that works: tokens readable by others."""
    if os.name != "posix" or not config.get("tokens"):
        return []
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return [_("{path} holds tokens and is readable by other users; "
                  "run `chmod 600 {path}`").format(path=path)]
    return []


@dataclass
class Settings:
    """Settings resolved from the environment and the config file."""

    home: Path
    models_dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    recipe_dirs: list[Path] = field(default_factory=list)
    # Problems worth a line on stderr that do not stop the run (a config readable by others).
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, recipes_dir: list[Path] | None = None) -> Settings:
        path = config_path()
        config = load_config(path)
        models = os.environ.get("LLMSETUP_MODELS_DIR") or config.get("models_dir")
        if models:
            from llmsetup.values import folder_problem

            problem = folder_problem(Path(models).expanduser())
            if problem:
                where = ("LLMSETUP_MODELS_DIR" if os.environ.get("LLMSETUP_MODELS_DIR")
                         else _("models_dir in {path}").format(path=path))
                raise UsageError(_("{where}: {value}: expected {what}").format(
                    where=where, value=repr(models), what=problem),
                    hint=_("Point it at a folder for the models (it is made if missing)."))
        dirs = list(recipes_dir or [])
        env_path = os.environ.get("LLMSETUP_RECIPES_PATH", "")
        from_env = [Path(p) for p in env_path.split(os.pathsep) if p]
        from_config = [Path(p) for p in config.get("recipes_path", []) or []]
        _check_recipe_folders(from_env, "LLMSETUP_RECIPES_PATH")
        _check_recipe_folders(from_config, _("recipes_path in {path}").format(path=path))
        dirs += from_env + from_config
        return cls(
            home=home(),
            models_dir=Path(models).expanduser().absolute() if models
            else DEFAULT_MODELS_DIR.absolute(),
            config=config,
            recipe_dirs=[d.expanduser().absolute() for d in dirs],
            warnings=config_warnings(path, config) if config else [],
        )

    def get(self, key: str, default: Any = None) -> Any:
        """A dotted config key (``pip.mirror``) or ``default``."""
        node: Any = self.config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def token(self, name: str) -> Secret | None:
        """A token from its environment variables, else the config file; never argv."""
        for var in TOKEN_ENV[name]:
            value = os.environ.get(var)
            if value:
                return Secret(value.strip())
        value = self.get(f"tokens.{name}")
        return Secret(str(value).strip()) if value else None

    # Folders under LLMSETUP_HOME.
    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def envs_dir(self) -> Path:
        return self.home / "envs"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"


def _check_recipe_folders(folders: list[Path], where: str) -> None:
    """Recipe folders named by the environment or the config file must exist: a typo would
    otherwise hide the user's recipes without a word."""
    from llmsetup.values import existing_folder_problem

    for folder in folders:
        what = existing_folder_problem(folder)
        if what:
            raise UsageError(_("{where}: {value}: expected {what}").format(
                where=where, value=repr(str(folder)), what=what),
                hint=_("Fix the folder or remove it from the list (folders are separated by "
                       "{sep}).").format(sep=repr(os.pathsep)))
