"""Verify a running OpenAI-compatible server: ``verify --api`` and the API half of ``--webui``.

The server must list a model on ``/v1/models`` and answer each smoke prompt (the recipe's,
or ``--prompt``) with text that passes the same checks ``verify`` applies to local answers:
not empty, no undecodable bytes, no pad/unk tokens; and, with ``expect``, the known answer
in it (``Paris`` for "What is the capital of France?").
"""

from __future__ import annotations

from llmsetup.errors import CheckFailed
from llmsetup.i18n import _
from llmsetup.serving.openai_client import Client

# How special tokens show in text when a server decodes them instead of skipping them.
_BAD_TOKENS = ("<unk>", "<pad>", "[PAD]", "[UNK]")


def judge(text: str, expect: str | None = None) -> list[str]:
    """What is wrong with an answer (nothing: it passes); the local verifier's checks."""
    problems = []
    if not text.strip():
        problems.append(_("the answer is empty (a chat template that does not match the "
                          "model, or broken weights)"))
    if "\ufffd" in text:
        problems.append(_("the answer has undecodable bytes (U+FFFD): a tokenizer that does "
                          "not match the weights, or garbled weights"))
    bad = sum(text.count(token) for token in _BAD_TOKENS)
    if bad:
        problems.append(_("the answer has {count} pad/unk token(s): its logits are probably "
                          "NaN (fp16 overflow, a dtype the device cannot take, or broken "
                          "weights)").format(count=bad))
    if expect and text.strip() and expect.lower() not in text.lower():
        problems.append(_("the answer does not contain the known answer {expect!r}").format(
            expect=expect))
    return problems


def check_api(client: Client, prompts: list[str], *, max_tokens: int = 64,
              expect: str | None = None, model: str | None = None) -> dict:
    """Models, then one chat answer per prompt; the document ``verify --api --json`` prints.

    Raises :class:`CheckFailed` when the server cannot be reached or lists no model; a bad
    answer is reported in the document (``ok`` false, ``problems``), not raised.
    """
    models = client.models()
    if not models:
        raise CheckFailed(_("{url}/v1/models lists no model").format(url=client.base),
                          hint=_("The server started without a model; load one first."))
    chosen = model or models[0]
    if model and model not in models:
        raise CheckFailed(_("{url} does not serve {model!r}; it lists {models}").format(
            url=client.base, model=model, models=", ".join(models)))
    answers = []
    for prompt in prompts:
        reply = client.chat(prompt, model=chosen, max_tokens=max_tokens)
        problems = judge(reply.text, expect if prompt == prompts[0] else None)
        answers.append({"prompt": prompt, "answer": reply.text, "ok": not problems,
                        "problems": problems, "finish_reason": reply.finish_reason,
                        "prompt_tokens": reply.prompt_tokens,
                        "new_tokens": reply.completion_tokens, "seconds": round(reply.seconds, 3)})
    problems = [_("prompt {index}: {problem}").format(index=i, problem=p)
                for i, a in enumerate(answers, 1) for p in a["problems"]]
    return {"api": client.base, "models": models, "model": chosen, "prompts": answers,
            "ok": not problems, "problems": problems}
