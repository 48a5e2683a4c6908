"""Download sources: each a small module behind :class:`~.base.Source`.

:func:`make_source` builds one by name for a :class:`~llmsetup.download.ref.ModelRef`,
with its endpoint and token from the options, the environment and the config file.
"""

from __future__ import annotations

import threading

from llmsetup.download.errors import SourceError
from llmsetup.download.http import RetryPolicy, describe_network_error, is_network_error
from llmsetup.download.ref import ModelRef
from llmsetup.download.sources.aliendao import AliendaoSource
from llmsetup.download.sources.base import Listing, RemoteFile, Source, safe_relpath
from llmsetup.download.sources.hf import (
    HF_ENDPOINT,
    HF_MIRROR_ENDPOINT,
    HFSource,
    configured_endpoint,
    hf_token,
)
from llmsetup.download.sources.modelscope import ModelScopeSource, modelscope_endpoint
from llmsetup.errors import UsageError

__all__ = ["Listing", "RemoteFile", "Source", "list_source", "make_source", "safe_relpath"]


def _hf_denied_hint(ref: ModelRef, endpoint: str) -> str:
    base = (f"{ref.repo_id} may be gated or private: set HF_TOKEN to a token of an account "
            f"that accepted its terms at {endpoint}/{ref.repo_id}")
    return f"{base}, or {ref.public_copy}." if ref.public_copy else f"{base}."


def make_source(name: str, ref: ModelRef, settings, *, endpoint: str | None = None,
                cancel: threading.Event | None = None,
                retry_policy: RetryPolicy | None = None) -> Source:
    """The source ``name`` for ``ref``; ``endpoint`` is ``--endpoint`` (HF only)."""
    repo_id = ref.id_for(name)
    if name in ("hf", "hf-mirror"):
        url = (HF_MIRROR_ENDPOINT if name == "hf-mirror"
               else configured_endpoint(settings, endpoint) or HF_ENDPOINT)
        return HFSource(repo_id, ref.revision, url, name=name, token=hf_token(settings),
                        denied_hint=_hf_denied_hint(ref, url), cancel=cancel,
                        max_connections=8 if name == "hf-mirror" else None,
                        retry_policy=retry_policy)
    if name == "aliendao":
        return AliendaoSource(
            repo_id, ref.revision,
            site=settings.get("aliendao.site") or "https://e.aliendao.cn",
            download_host=settings.get("aliendao.download_host"),
            token=settings.token("aliendao"),
            hash_lookup=lambda: hf_reference(ref, settings, endpoint, cancel),
            cancel=cancel, retry_policy=retry_policy)
    if name == "modelscope":
        return ModelScopeSource(repo_id, ref.revision, modelscope_endpoint(settings),
                                token=settings.token("modelscope"), cancel=cancel,
                                retry_policy=retry_policy)
    if name == "generate":
        raise UsageError("the generate source builds a model locally; it is not a download",
                         hint="Run `llmsetup install NAME` for recipes that generate their model.")
    raise UsageError(f"unknown download source {name!r}",
                     hint="Sources: hf, hf-mirror, aliendao, modelscope.")


def hf_reference(ref: ModelRef, settings, endpoint: str | None,
                 cancel: threading.Event | None) -> tuple[Listing | None, str]:
    """An HF listing of ``ref`` for its hashes: the chosen endpoint, else the presets."""
    chosen = configured_endpoint(settings, endpoint)
    endpoints = [chosen] if chosen else [HF_MIRROR_ENDPOINT, HF_ENDPOINT]
    reasons = []
    for url in endpoints:
        source = HFSource(ref.id_for("hf"), ref.revision, url, token=hf_token(settings),
                          cancel=cancel, retry_policy=RetryPolicy(attempts=2, backoff_max_s=2),
                          timeout=(5.0, 15.0))
        try:
            return source.list_files(), url
        except SourceError as exc:
            reasons.append(f"{url}: {exc.reason}")
        except Exception as exc:
            if not is_network_error(exc):
                raise
            reasons.append(f"{url}: {describe_network_error(exc)}")
        finally:
            source.close()
    return None, "no HF endpoint answered (" + "; ".join(reasons) + ")"


def list_source(source: Source) -> Listing:
    """``source.list_files()`` with network errors as :class:`SourceError`."""
    try:
        return source.list_files()
    except SourceError:
        raise
    except Exception as exc:
        if not is_network_error(exc):
            raise
        raise SourceError(source.name, f"unreachable: {describe_network_error(exc)}",
                          hint="Check the network, or try another source.") from None
