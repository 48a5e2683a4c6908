"""What ``install`` runs as its last step: the verifier of the target's kind.

``install`` (``steps.VerifyStep``) calls :func:`verify_target` and reads ``passed`` and
``reason`` from what it returns; the rest of the document is the kind's own verify result
(for causal LMs, the ``verify --json`` document of docs/verify.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from llmsetup.errors import CheckFailed, UsageError
from llmsetup.i18n import _
from llmsetup.settings import Settings
from llmsetup.targets import Target

BITS = {None: None, "8bit": 8, "4bit": 4}


def verify_target(target: Target, settings: Settings, python: str, *,
                  quantization: str | None = None, device: str = "auto",
                  engine: str | None = None,
                  on_line: Callable[[str], None] | None = None,
                  log: Path | None = None) -> dict:
    """Verify ``target`` with ``python``; the result has ``passed`` and ``reason``.

    ``engine``: the speech engine (``ctranslate2``; None: transformers).
    """
    if target.kind == "asr":
        return _speech(target, settings, python, device, engine or "transformers")
    from llmsetup.host import causal_lm as lm

    if quantization not in BITS:
        raise UsageError(_("unknown quantization {value!r}").format(value=quantization),
                         hint=_("Use 8bit or 4bit."))

    def progress(event: dict) -> None:
        line = lm.progress_line(event)
        if line and on_line:
            on_line(line)

    doc = lm.verify(target, settings, python, lm.LMOptions(bits=BITS[quantization],
                                                            device=device),
                    on_event=progress, log=log)
    return {**doc, "passed": doc["ok"], "reason": "; ".join(doc["problems"]) or None}


def _speech(target: Target, settings: Settings, python: str, device: str, engine: str) -> dict:
    from llmsetup.host.asr import verify_speech

    try:
        report = verify_speech(target=target, settings=settings, python=python, audio=None,
                               language=None, task=None, save_converted=None, device=device,
                               json_mode=True, engine=engine)
    except CheckFailed as exc:
        return {"passed": False, "reason": exc.message}
    return {**report, "passed": bool(report.get("ok", True)), "reason": None}
