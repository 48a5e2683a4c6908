"""Where llmsetup keeps its state, models and configuration, and where tokens come from.

Resolution order for every setting: command-line option (where one exists), environment
variable, config file, built-in default. Tokens are never taken from the command line:
only from environment variables or the config file (which should be readable by its owner
alone; :func:`load_config` warns otherwise).

Environment variables:

- ``LLMSETUP_HOME``: state, environments, logs (default: the platform's user data dir).
- ``LLMSETUP_MODELS_DIR``: where models are stored (default ``./dataroot/models``, as the
  book lays it out).
- ``LLMSETUP_CONFIG``: the config file (default ``$LLMSETUP_HOME/config.yaml``).
- ``LLMSETUP_RECIPES_PATH``: extra recipe folders, separated by ``os.pathsep``.
- ``HF_TOKEN``, ``LLMSETUP_ALIENDAO_TOKEN``, ``MODELSCOPE_API_TOKEN``: tokens.
"""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmsetup.errors import UsageError
from llmsetup.secret import Secret

DEFAULT_MODELS_DIR = Path("dataroot") / "models"

# Token name -> the environment variables read for it, in order.
TOKEN_ENV = {
    "hf": ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
    "aliendao": ("LLMSETUP_ALIENDAO_TOKEN",),
    "modelscope": ("MODELSCOPE_API_TOKEN", "LLMSETUP_MODELSCOPE_TOKEN"),
}

CONFIG_KEYS = {
    # key: (type, description)
    "pip.mirror": (str, "pip mirror preset: ustc, tuna, aliyun or default"),
    "pip.index_url": (str, "pip index URL"),
    "pip.trusted_host": (str, "pip trusted host"),
    "pip.find_links": (str, "folder of wheels for offline installs"),
    "env.backend": (str, "environment backend: auto, conda, uv, venv or current"),
    "env.python_mirror": (str, "where uv downloads a Python this machine lacks"),
    "download.sources": (list, "ordered list of download sources"),
    "download.endpoint": (str, "Hugging Face endpoint URL"),
    "download.connections": (int, "connections per file"),
    "aliendao.site": (str, "aliendao listing site URL"),
    "aliendao.download_host": (str, "aliendao download host URL"),
    "modelscope.endpoint": (str, "ModelScope hub URL"),
    "git.mirror": (str, "git mirror URL prefix for GitHub clones"),
    "tokens.hf": (str, "Hugging Face token"),
    "tokens.aliendao": (str, "aliendao enterprise token"),
    "tokens.modelscope": (str, "ModelScope token"),
    "recipes_path": (list, "extra recipe folders"),
    "models_dir": (str, "models folder"),
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
    """Read the config file; a missing file is an empty config, a broken one an error."""
    path = path or config_path()
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UsageError(
            f"{where}: the config file is not valid YAML",
            hint="Fix or remove the file; `llmsetup doctor` shows which config file is read.",
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the config file must be a mapping of settings")
    unknown = sorted(k for k in _flatten(data) if k not in CONFIG_KEYS)
    if unknown:
        raise UsageError(
            f"{path}: unknown setting(s): {', '.join(unknown)}",
            hint="Known settings: " + ", ".join(sorted(CONFIG_KEYS)),
        )
    if _flatten(data).keys() & {f"tokens.{name}" for name in TOKEN_ENV}:
        _warn_if_readable_by_others(path)
    return data


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _warn_if_readable_by_others(path: Path) -> None:
    if os.name != "posix":
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(
            f"{path} holds tokens and is readable by other users; run `chmod 600 {path}`",
            stacklevel=2,
        )


@dataclass
class Settings:
    """Settings resolved from the environment and the config file."""

    home: Path
    models_dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    recipe_dirs: list[Path] = field(default_factory=list)

    @classmethod
    def load(cls, recipes_dir: list[Path] | None = None) -> Settings:
        config = load_config()
        models = os.environ.get("LLMSETUP_MODELS_DIR") or config.get("models_dir")
        dirs = list(recipes_dir or [])
        env_path = os.environ.get("LLMSETUP_RECIPES_PATH", "")
        dirs += [Path(p) for p in env_path.split(os.pathsep) if p]
        dirs += [Path(p) for p in config.get("recipes_path", []) or []]
        return cls(
            home=home(),
            models_dir=Path(models).expanduser().absolute() if models
            else DEFAULT_MODELS_DIR.absolute(),
            config=config,
            recipe_dirs=[d.expanduser().absolute() for d in dirs],
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
