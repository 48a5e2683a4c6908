"""The config file's schema (pydantic), one model per section.

Imported only when a config file exists: pydantic costs start-up time that a run without
a config file must not pay (see benchmarks/cli_start.py). :func:`validate` turns what
pydantic finds into one line per problem: ``FILE:LINE: dotted.key: what was expected``.

Where a list is expected, one string is taken as a list of one (``sources: modelscope``
means ``sources: [modelscope]``): the natural way to write a single choice in YAML.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from llmsetup.i18n import _
from llmsetup.values import http_url_problem
from llmsetup.yamlfile import Document, format_loc, one_of, validation_message

# Kept equal to envs.base.PIP_MIRRORS, envs.BACKEND_NAMES and download's DOWNLOAD_SOURCES
# by tests/test_config.py (settings sit below those layers and do not import them).
PipMirror = Literal["ustc", "tuna", "aliyun", "default"]
Backend = Literal["auto", "conda", "uv", "venv", "current"]
SourceName = Literal["hf", "hf-mirror", "aliendao", "modelscope"]


def _one_as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _http_url(value: str) -> str:
    problem = http_url_problem(value)
    if problem:
        raise ValueError(_("expected {what}").format(what=problem))
    return value


Url = Annotated[str, AfterValidator(_http_url)]
Sources = Annotated[list[SourceName], BeforeValidator(_one_as_list)]
Folders = Annotated[list[str], BeforeValidator(_one_as_list)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipSection(_Section):
    mirror: PipMirror | None = None
    index_url: Url | None = None
    trusted_host: str | None = None
    find_links: str | None = None


class EnvSection(_Section):
    backend: Backend | None = None
    python_mirror: Url | None = None


class DownloadSection(_Section):
    sources: Sources | None = None
    endpoint: Url | None = None
    connections: Annotated[int, Field(ge=1, le=64, strict=True)] | None = None
    # Send the HF token to hf-mirror too (by default only to huggingface.co or an endpoint
    # the user set).
    token_to_mirrors: Annotated[bool, Field(strict=True)] | None = None


class AliendaoSection(_Section):
    site: Url | None = None
    download_host: Url | None = None


class ModelscopeSection(_Section):
    endpoint: Url | None = None


class GitSection(_Section):
    mirror: str | None = None


class TokensSection(_Section):
    hf: str | None = None
    aliendao: str | None = None
    modelscope: str | None = None


class ConfigFile(_Section):
    """The whole file; every key is optional."""

    pip: PipSection = PipSection()
    env: EnvSection = EnvSection()
    download: DownloadSection = DownloadSection()
    aliendao: AliendaoSection = AliendaoSection()
    modelscope: ModelscopeSection = ModelscopeSection()
    git: GitSection = GitSection()
    tokens: TokensSection = TokensSection()
    recipes_path: Folders | None = None
    models_dir: str | None = None
    # The language of messages (llmsetup/i18n.py): after --lang and LLMSETUP_LANG, before
    # the locale.
    lang: Literal["zh", "en"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        # `tokens:` with every line under it commented out is an empty section, not an error.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


def known_keys() -> list[str]:
    """Every dotted key the file may hold."""
    keys = []
    for name, info in ConfigFile.model_fields.items():
        section = info.annotation
        if isinstance(section, type) and issubclass(section, _Section):
            keys += [f"{name}.{field}" for field in section.model_fields]
        else:
            keys.append(name)
    return keys


def _expected(err: dict) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return _("unknown setting")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return _("expected a whole number")
    if kind == "string_type":
        return _("expected a string (quote it)")
    if kind == "list_type":
        return _("expected a list, or one value")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return _("expected a mapping of settings")
    if kind == "literal_error":
        return _("expected one of {values}").format(values=one_of(str(ctx.get("expected", ""))))
    if kind == "greater_than_equal":
        return _("expected at least {n}").format(n=ctx.get("ge"))
    if kind == "less_than_equal":
        return _("expected at most {n}").format(n=ctx.get("le"))
    return validation_message(err)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(doc: Document, where: str) -> tuple[ConfigFile | None, list[str]]:
    """The file's settings, or None and one ``where:LINE: key: expected`` per problem."""
    try:
        return ConfigFile.model_validate(doc.data), []
    except ValidationError as exc:
        problems: list[tuple[int, str]] = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            line = doc.line_for(loc)
            shown = "" if err["type"] in ("extra_forbidden", "missing") \
                or loc[:1] == ("tokens",) else _shown(err["input"])
            problem = _("{expected}, got {value}").format(expected=_expected(err), value=shown) \
                if shown else _expected(err)
            problems.append((line or 1, f"{where}:{line or 1}: {format_loc(loc)}: {problem}"))
        return None, [text for _line, text in sorted(problems, key=lambda p: p[0])]
