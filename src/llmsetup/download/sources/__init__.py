"""Download sources: each a small module behind :class:`~.base.Source`.

:func:`make_source` builds one by name for a :class:`~llmsetup.download.ref.ModelRef`,
with its endpoint and token from the options, the environment and the config file.
"""

from __future__ import annotations

import os
import threading
from urllib.parse import urlsplit

from llmsetup.download.errors import SourceError
from llmsetup.download.http import RetryPolicy, describe_network_error, is_network_error
from llmsetup.download.messages import Joined, Message
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
from llmsetup.i18n import N_, _
from llmsetup.secret import Secret, mask_url

__all__ = ["Listing", "RemoteFile", "Source", "list_source", "make_source", "safe_relpath"]


#: Where an HF token may always go: the Hub's own hosts (as huggingface_hub's ``_HUB_ORIGINS``).
HUB_HOSTS = frozenset({"huggingface.co", "hf.co"})


def token_to_mirrors(settings) -> bool:
    """Whether the user opted in to sending the HF token to mirrors (hf-mirror, presets)."""
    env = os.environ.get("LLMSETUP_TOKEN_TO_MIRRORS", "").strip().lower()
    if env:
        return env in ("1", "true", "yes", "on")
    return settings.get("download.token_to_mirrors") is True


def hf_token_for(url: str, settings, chosen: bool) -> tuple[Secret | None, bool]:
    """The HF token for ``url`` and whether one was held back from it.

    The token goes to huggingface.co and hf.co, to an endpoint the user set
    (``chosen``: ``--endpoint``, ``HF_ENDPOINT``, ``download.endpoint``), and to a mirror
    only when the user opted in (:func:`token_to_mirrors`): a default mirror of a recipe
    is someone else's server.
    """
    token = hf_token(settings)
    if not token:
        return None, False
    host = (urlsplit(url).hostname or "").lower()
    if host in HUB_HOSTS or chosen or token_to_mirrors(settings):
        return token, False
    return None, True


def _hf_hints(ref: ModelRef, endpoint: str, token: Secret | None,
              held_back: bool) -> tuple[str, str]:
    """(hint for a gated repository, hint for a 401 that may be "not found")."""
    page = f"{endpoint}/{ref.repo_id}"
    # A clause at the end of the hint: ", or <how to get the public copy>".
    copy = Message(N_(", or {public_copy}"), public_copy=ref.public_copy) \
        if ref.public_copy else ""
    if token:
        refused = Message(N_("The HF token was refused: it may be expired or revoked, or its "
                             "account has no access to {repo} (accept its terms at {page})"
                             "{copy}. Check it with `hf auth whoami`."),
                          repo=ref.repo_id, page=page, copy=copy)
        return refused, refused
    if held_back:
        why = Message(N_("Your HF token was not sent to {endpoint}: it goes only to "
                         "huggingface.co or an endpoint you set. To send it to mirrors too, "
                         "set download.token_to_mirrors: true (or LLMSETUP_TOKEN_TO_MIRRORS=1),"
                         " or use --endpoint {endpoint}{copy}."), endpoint=endpoint, copy=copy)
        return why, why
    gated = Message(N_("{repo} may be gated or private: set HF_TOKEN to a token of an account "
                       "that accepted its terms at {page}{copy}."),
                    repo=ref.repo_id, page=page, copy=copy)
    unknown = Message(N_("Not found, or private/gated: check the id at {page}, or set HF_TOKEN "
                         "to a token of an account that may read it{copy}."),
                      page=page, copy=copy)
    return gated, unknown


def hf_source(name: str, ref: ModelRef, settings, endpoint: str | None, **kw) -> HFSource:
    """The ``hf`` or ``hf-mirror`` source of ``ref``, with the token where it may go."""
    chosen = configured_endpoint(settings, endpoint) if name == "hf" else None
    url = chosen or (HF_MIRROR_ENDPOINT if name == "hf-mirror" else HF_ENDPOINT)
    token, held_back = hf_token_for(url, settings, chosen=bool(chosen))
    gated, unknown = _hf_hints(ref, url, token, held_back)
    return HFSource(ref.id_for(name), ref.revision, url, name=name, token=token,
                    denied_hint=gated, unknown_hint=unknown, **kw)


def make_source(name: str, ref: ModelRef, settings, *, endpoint: str | None = None,
                cancel: threading.Event | None = None,
                retry_policy: RetryPolicy | None = None,
                accept_mirror_copy: bool = False) -> Source:
    """The source ``name`` for ``ref``; ``endpoint`` is ``--endpoint`` (HF only);
    ``accept_mirror_copy`` takes aliendao's copy by size where it differs from HF's."""
    if name in ("hf", "hf-mirror"):
        return hf_source(name, ref, settings, endpoint, cancel=cancel,
                         max_connections=8 if name == "hf-mirror" else None,
                         retry_policy=retry_policy)
    repo_id = ref.id_for(name)
    if name == "aliendao":
        return AliendaoSource(
            repo_id, ref.revision,
            site=settings.get("aliendao.site") or "https://e.aliendao.cn",
            download_host=settings.get("aliendao.download_host"),
            token=settings.token("aliendao"),
            hash_lookup=lambda: hf_reference(ref, settings, endpoint, cancel),
            accept_mirror_copy=accept_mirror_copy, cancel=cancel, retry_policy=retry_policy)
    if name == "modelscope":
        return ModelScopeSource(repo_id, ref.revision, modelscope_endpoint(settings),
                                token=settings.token("modelscope"), cancel=cancel,
                                retry_policy=retry_policy)
    if name == "generate":
        raise UsageError(_("the generate source builds a model locally; it is not a download"),
                         hint=_("Run `llmsetup install NAME` for recipes that generate their "
                                "model."))
    raise UsageError(_("unknown download source {name}").format(name=repr(name)),
                     hint=_("Sources: {sources}.").format(
                         sources="hf, hf-mirror, aliendao, modelscope"))


def hf_reference(ref: ModelRef, settings, endpoint: str | None,
                 cancel: threading.Event | None) -> tuple[Listing | None, str]:
    """An HF listing of ``ref`` for its hashes: the chosen endpoint, else the presets."""
    chosen = configured_endpoint(settings, endpoint)
    names = ["hf"] if chosen else ["hf-mirror", "hf"]
    reasons = []
    for name in names:
        source = hf_source(name, ref, settings, endpoint, cancel=cancel,
                           retry_policy=RetryPolicy(attempts=2, backoff_max_s=2),
                           timeout=(5.0, 15.0))
        url = mask_url(source.endpoint)
        try:
            return source.list_files(), url
        except SourceError as exc:
            reasons.append(Message(N_("{source}: {reason}"), source=url, reason=exc.reason))
        except Exception as exc:
            if not is_network_error(exc):
                raise
            reasons.append(Message(N_("{source}: {reason}"), source=url,
                                   reason=describe_network_error(exc)))
        finally:
            source.close()
    return None, Message(N_("no HF endpoint answered ({reasons})"),
                         reasons=Joined(N_("; "), reasons))


def list_source(source: Source) -> Listing:
    """``source.list_files()`` with network errors as :class:`SourceError`."""
    try:
        return source.list_files()
    except SourceError:
        raise
    except Exception as exc:
        if not is_network_error(exc):
            raise
        raise SourceError(source.name, Message(N_("unreachable: {error}"),
                                               error=describe_network_error(exc)),
                          hint=Message(N_("Check the network, or try another source."))) from None
