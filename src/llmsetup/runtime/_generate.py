"""Generate an answer with a loaded model: streaming, stop markers, timing, Ctrl-C.

Shared by ``causal_lm.py verify`` (greedy, timed) and the chat REPL (sampled, streamed).
Works with transformers 4.38.1 through 5.x: ``generate`` is given a plain streamer object
(it only calls ``put`` and ``end``), a ``StoppingCriteria`` for marker texts (``stop_strings``
arrived in 4.39) and for Ctrl-C, and a copy of the model's generation config.

Ctrl-C in the chat does not raise ``KeyboardInterrupt`` into ``generate``: an exception
raised at an arbitrary point can land in code called back from C that swallows it (the
answer then runs on to ``max_new_tokens``). A SIGINT handler sets a flag instead, and the
stopping criteria end the answer at the next token.
"""

from __future__ import annotations

import contextlib
import copy
import signal
import time
from dataclasses import dataclass

if __package__:
    from ._lm import Loaded
else:
    from _lm import Loaded

# How many trailing tokens to decode when looking for a stop marker.
_MARKER_WINDOW = 16


def _held_back(text: str, markers: list[str]) -> int:
    """How many trailing characters might still become a stop marker or a character.

    Only the last few bytes of a decoded text can still change (the rest of a cut UTF-8
    sequence is at most 3 bytes away), so at most 3 trailing U+FFFD are held back; more
    than that before them is garbage for good, and is shown as such.
    """
    keep = 0
    for marker in markers:
        for n in range(min(len(marker), len(text)), 0, -1):
            if marker.startswith(text[-n:]):
                keep = max(keep, n)
                break
    partial = 0
    while keep < len(text) and text[len(text) - keep - 1] == "\ufffd" and partial < 3:
        keep += 1
        partial += 1
    return keep


class AnswerStream:
    """The ``streamer`` of ``generate``: collects new tokens, times them, shows the text.

    ``generate`` only calls ``put`` and ``end``, in every transformers version from 4.38
    on, so no base class is needed. Text is passed to ``on_text`` as soon as it can no
    longer turn into a stop marker or an incomplete character.
    """

    def __init__(self, loaded: Loaded, on_text=None) -> None:
        self.loaded = loaded
        self.on_text = on_text
        self.ids: list[int] = []
        self.shown = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:  # the first call hands over the prompt
            self._prompt_seen = True
            return
        now = time.perf_counter()
        self.first_at = self.first_at or now
        self.last_at = now
        self.ids.extend(int(v) for v in value.reshape(-1).tolist())
        if self.on_text:
            text = self.text()
            upto = len(text) - _held_back(text, self.loaded.stop_texts)
            upto = len(text[:upto].rstrip())  # trailing spaces wait for what follows them
            if upto > self.shown:
                self.on_text(text[self.shown:upto])
                self.shown = upto

    def end(self) -> None:
        """Called by ``generate``; :meth:`finish` shows the rest once the stop is known."""

    def finish(self, text: str) -> None:
        if self.on_text and len(text) > self.shown:
            self.on_text(text[self.shown:])
            self.shown = len(text)

    def raw_text(self) -> str:
        return self.loaded.tokenizer.decode(self.ids, skip_special_tokens=True)

    def text(self) -> str:
        """The answer so far, cut at the first stop marker."""
        text = self.raw_text().lstrip()
        for marker in self.loaded.stop_texts:
            cut = text.find(marker)
            if cut >= 0:
                text = text[:cut]
        return text

    def marker_seen(self) -> bool:
        tail = self.loaded.tokenizer.decode(self.ids[-_MARKER_WINDOW:], skip_special_tokens=True)
        return any(m in tail for m in self.loaded.stop_texts)


class Interrupt:
    """While active, Ctrl-C (SIGINT) only sets :attr:`hit`; see the module docstring."""

    def __init__(self) -> None:
        self.hit = False

    def _handler(self, signum, frame) -> None:
        self.hit = True

    @contextlib.contextmanager
    def catching(self):
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def _stopping(stream: AnswerStream, interrupt: Interrupt | None):
    """Stop on a marker text that is not a single token, or on Ctrl-C."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            done = (interrupt is not None and interrupt.hit) or \
                (bool(stream.loaded.stop_texts) and stream.marker_seen())
            # A bool per sequence works with 4.38 (any()) and with 4.39+ (tensor or).
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool,
                              device=input_ids.device)

    return StoppingCriteriaList([Stop()])


@dataclass
class Answer:
    """One generated answer and how it went."""

    text: str
    ids: list[int]
    prompt_tokens: int
    stop_reason: str  # eos, stop_marker, max_new_tokens or interrupted
    ttft_s: float | None
    decode_tokens_per_s: float | None
    seconds: float
    decode_tokens: int = 0  # tokens generated after the first (an eos included)
    decode_s: float = 0.0  # the time they took

    @property
    def new_tokens(self) -> int:
        return len(self.ids)


def generation_config(loaded: Loaded, max_new_tokens: int, temperature: float = 0.0,
                      top_p: float = 1.0):
    """The model's generation config with our length, sampling and stop settings."""
    config = copy.deepcopy(loaded.model.generation_config)
    config.max_new_tokens = max_new_tokens
    config.do_sample = temperature > 0
    # Neutral values when greedy, so that a checkpoint's sampling defaults do not warn.
    config.temperature = temperature if temperature > 0 else 1.0
    config.top_p = top_p if temperature > 0 else 1.0
    config.top_k = config.top_k if temperature > 0 else 50
    config.eos_token_id = list(loaded.eos_ids) or None
    if config.pad_token_id is None:
        config.pad_token_id = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id \
            is not None else (loaded.eos_ids[0] if loaded.eos_ids else None)
    return config


def generate(loaded: Loaded, ids: list[int], max_new_tokens: int, *, temperature: float = 0.0,
             top_p: float = 1.0, on_text=None, interruptible: bool = False) -> Answer:
    """Generate an answer to ``ids``.

    With ``interruptible`` (the chat), Ctrl-C ends the answer early with stop_reason
    ``interrupted``; without it (verify), Ctrl-C raises ``KeyboardInterrupt`` as usual.
    """
    import torch

    model = loaded.model
    # model.device is where the first layers live, which is where the input goes even when
    # device_map="auto" spreads the model over several GPUs.
    input_ids = torch.tensor([ids], device=model.device)
    stream = AnswerStream(loaded, on_text)
    config = generation_config(loaded, max_new_tokens, temperature, top_p)
    interrupt = Interrupt() if interruptible else None
    started = time.perf_counter()
    with torch.no_grad(), (interrupt.catching() if interrupt else contextlib.nullcontext()):
        model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                       generation_config=config, streamer=stream,
                       stopping_criteria=_stopping(stream, interrupt))
    seconds = time.perf_counter() - started
    stop_reason = "interrupted" if interrupt and interrupt.hit else None
    if stop_reason is None:
        if stream.ids and stream.ids[-1] in loaded.eos_ids:
            stop_reason = "eos"
        elif loaded.stop_texts and stream.marker_seen():
            stop_reason = "stop_marker"
        else:
            stop_reason = "max_new_tokens"
    text = stream.text().rstrip()
    if stop_reason in ("max_new_tokens", "interrupted"):
        # Cut off: drop the start of a marker or of a character that had no room to finish.
        text = text[:len(text) - _held_back(text, loaded.stop_texts)].rstrip()
    if stop_reason != "interrupted":  # an interrupted answer shows nothing more
        stream.finish(text)
    answer_ids = stream.ids[:-1] if stop_reason == "eos" else stream.ids
    ttft = (stream.first_at - started) if stream.first_at else None
    decode_tokens = max(len(stream.ids) - 1, 0)
    decode_s = (stream.last_at - stream.first_at) if stream.first_at and stream.last_at else 0.0
    rate = decode_tokens / decode_s if decode_tokens and decode_s > 0 else None
    return Answer(text=text, ids=answer_ids, prompt_tokens=len(ids),
                  stop_reason=stop_reason, ttft_s=round(ttft, 4) if ttft is not None else None,
                  decode_tokens_per_s=round(rate, 2) if rate else None,
                  seconds=round(seconds, 4), decode_tokens=decode_tokens, decode_s=decode_s)
