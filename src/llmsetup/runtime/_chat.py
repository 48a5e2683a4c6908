"""The chat REPL of ``causal_lm.py chat``: it owns the terminal.

Answers go to stdout as they are generated; everything else (the banner, notices, the
numbers after each answer) goes to stderr, so that ``llmsetup chat NAME < questions.txt >
answers.txt`` collects just the answers. Protocol events (``ready``, ``turn``, ``result``,
``error``) go to ``--events-fd`` for the host.

Like the book's script, an empty line quits (so do ``/exit`` and Ctrl-D). Ctrl-C during an
answer stops that answer and keeps the conversation (the part already shown stays in the
history); Ctrl-C at the prompt only reminds how to quit. Works the same with a pipe on
stdin, minus the prompt and line editing.

When the conversation no longer fits in the model's context, the oldest exchanges are
dropped from what the model sees (never from what ``/save`` writes), and the user is told.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

if __package__:
    from . import _generate, _i18n, _lm, _rt
else:
    import _generate
    import _i18n
    import _lm
    import _rt

_ = _i18n._
N_ = _i18n.N_

SAVE_FORMAT = "llmsetup-chat/1"
# Control characters a model may emit (an escape sequence could rewrite the terminal);
# tab and newline stay. Only the display is cleaned: /save keeps the text as generated.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
HELP = N_("""Commands:
  /help          this help
  /clear         forget the conversation (the system prompt stays)
  /system TEXT   set the system prompt; /system alone removes it
  /save FILE     save the conversation as JSON
  /exit          quit (so do an empty line and Ctrl-D)
Ctrl-C stops an answer; the conversation goes on.""")


def quiet_libraries() -> None:
    """Keep library warnings out of the conversation on the terminal."""
    warnings.filterwarnings("ignore")
    for name in ("transformers", "bitsandbytes", "accelerate", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # transformers is always there when we chat; logging still works
        pass


class Chat:
    """One conversation with a loaded model."""

    def __init__(self, loaded: _lm.Loaded, *, system: str | None, max_new_tokens: int,
                 temperature: float, top_p: float, stream: bool = True) -> None:
        self.loaded = loaded
        self.system = system or None
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.stream = stream
        self.history: list[dict] = []  # user and assistant messages, alternating
        self.stats: list[dict] = []  # one per assistant message
        self.visible_from = 0  # the oldest message the model still sees
        self.answers = 0  # in the whole session, /clear or not
        self.interactive = sys.stdin.isatty()

    # -- the loop -------------------------------------------------------------------

    def run(self) -> int:
        """Read and answer until the user quits; return the number of answers."""
        if self.interactive:
            with contextlib.suppress(ImportError):  # not on every platform
                import readline  # noqa: F401  (line editing and history for input())
        loaded = self.loaded
        _rt.emit("ready", device=loaded.device, dtype=loaded.dtype,
                 quantization=loaded.quantization, chat_template=loaded.template_source,
                 context_length=loaded.context_length, load_s=loaded.load_s)
        quant = loaded.quantization.get("method")
        self.note(_("{model}: {device}, {dtype}{quantization}, loaded in {seconds:.1f}s. "
                    "Type /help for commands; an empty line quits.").format(
            model=loaded.path.name, device=loaded.device, dtype=loaded.dtype,
            quantization="" if quant == "none" else ", " + quant, seconds=loaded.load_s))
        while True:
            line = self.read()
            if line is None or not line.strip():
                break
            line = line.strip()
            if line.startswith("/"):
                if not self.command(line):
                    break
                continue
            try:
                self.answer(line)
            except KeyboardInterrupt:  # landed outside generate(): still only this answer
                sys.stdout.write("\n")
                self.note(_("(answer stopped)"))
        return self.answers

    def read(self) -> str | None:
        """The next line, or None at the end of input."""
        if not self.interactive:
            line = sys.stdin.readline()
            return line.rstrip("\n") if line else None
        while True:
            try:
                return input("> ")
            except KeyboardInterrupt:
                sys.stdout.write("\n")
                self.note(_("(Ctrl-C stops an answer; to quit, enter an empty line or /exit)"))
            except EOFError:
                sys.stdout.write("\n")
                return None

    def note(self, message: str) -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    # -- commands -------------------------------------------------------------------

    def command(self, line: str) -> bool:
        """Run a /command; False means quit."""
        name, _sep, rest = line.partition(" ")
        rest = rest.strip()
        if name in ("/exit", "/quit"):
            return False
        if name == "/help":
            self.note(_(HELP))
        elif name == "/clear":
            self.history, self.stats, self.visible_from = [], [], 0
            self.note(_("(conversation cleared)"))
        elif name == "/system":
            self.system = rest or None
            self.note(_("(system prompt set: {text})").format(text=rest) if rest
                      else _("(system prompt removed)"))
        elif name == "/save":
            if not rest:
                self.note(_("usage: /save FILE"))
            else:
                self.save(Path(rest).expanduser())
        else:
            self.note(_("unknown command {name}; /help lists the commands").format(name=name))
        return True

    def conversation(self) -> dict:
        """The whole conversation as saved by /save."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return {
            "format": SAVE_FORMAT,
            "model": str(self.loaded.path),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "settings": {"temperature": self.temperature, "top_p": self.top_p,
                         "max_new_tokens": self.max_new_tokens,
                         "chat_template": self.loaded.template_source,
                         "quantization": self.loaded.quantization,
                         "dtype": self.loaded.dtype, "device": self.loaded.device},
            "messages": system + self.history,
            "turns": self.stats,
        }

    def save(self, path: Path) -> None:
        """Write the conversation to ``path`` whole or not at all.

        An existing file is replaced only when it is an earlier /save (saving again as the
        talk goes on is the common case); anything else is left alone.
        """
        if path.exists() and not _is_saved_chat(path):
            self.note(_("{path} exists and is not a saved chat: not overwritten; "
                        "choose another name").format(path=path))
            return
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.conversation(), fh, ensure_ascii=False, indent=2)
                fh.write("\n")
            os.replace(tmp, path)
        except OSError as exc:
            if tmp and os.path.exists(tmp):
                os.unlink(tmp)
            self.note(_("could not save to {path}: {reason}").format(
                path=path, reason=exc.strerror or exc))
            return
        messages = self.conversation()["messages"]
        if self.system:
            self.note(_("(saved the system prompt and {count} message(s) to {path})").format(
                count=len(messages) - 1, path=path))
        else:
            self.note(_("(saved {count} message(s) to {path})").format(count=len(messages),
                                                                       path=path))

    # -- answering ------------------------------------------------------------------

    def _messages(self, upto: list[dict]) -> list[dict]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + upto

    def reserve(self) -> int:
        """Room kept free for the answer when deciding what history still fits.

        Reserving all of ``max_new_tokens`` would drop every earlier exchange whenever it is
        near the context's length (512 and 512 on the demo): a quarter of the context is
        kept instead, and the answer may still use all the room the prompt leaves.
        """
        return max(1, min(self.max_new_tokens, self.loaded.context_length // 4))

    def fit(self, user: dict) -> tuple[list[int], int] | None:
        """Prompt ids for the next answer and its token budget, dropping old exchanges."""
        context = self.loaded.context_length
        dropped = 0
        while True:
            ids = _lm.prompt_ids(self.loaded,
                                 self._messages([*self.history[self.visible_from:], user]))
            if len(ids) + self.reserve() <= context \
                    or self.visible_from >= len(self.history):
                break
            self.visible_from += 2  # one user message and its answer
            dropped += 1
        if dropped:
            self.note(_("(the oldest {dropped} exchange(s) no longer fit in the model's "
                        "context of {context} tokens; the model no longer sees them)").format(
                dropped=dropped, context=context))
        if len(ids) >= context:
            self.note(_("(that message is {tokens} tokens with the system prompt; the "
                        "model's context holds {context}: please shorten it)").format(
                tokens=len(ids), context=context))
            return None
        return ids, min(self.max_new_tokens, context - len(ids))

    def answer(self, text: str) -> None:
        user = {"role": "user", "content": text}
        fitted = self.fit(user)
        if fitted is None:
            return
        ids, budget = fitted
        shown: list[str] = []

        def show(piece: str) -> None:
            shown.append(piece)
            sys.stdout.write(_CONTROL.sub("", piece))
            sys.stdout.flush()

        result = _generate.generate(self.loaded, ids, budget, temperature=self.temperature,
                                    top_p=self.top_p, on_text=show if self.stream else None,
                                    interruptible=True)
        if result.stop_reason == "interrupted":
            # Keep what the user saw; the rest of the answer was never shown.
            reply = "".join(shown).strip()
            sys.stdout.write("\n")
            self.note(_("(answer stopped)"))
        else:
            reply = result.text
            sys.stdout.write(("" if self.stream else _CONTROL.sub("", reply)) + "\n")
        sys.stdout.flush()
        self.history += [user, {"role": "assistant", "content": reply}]
        stats = {"prompt_tokens": result.prompt_tokens, "new_tokens": result.new_tokens,
                 "stop_reason": result.stop_reason, "ttft_s": result.ttft_s,
                 "decode_tokens_per_s": result.decode_tokens_per_s,
                 "seen_from": self.visible_from}
        self.stats.append(stats)
        self.answers += 1
        _rt.emit("turn", **stats)
        if not reply and result.stop_reason == "eos":
            self.note(_("(the model ended its answer at once: its first token was the "
                        "end-of-sequence token; try rephrasing, or /clear to start over)"))
        elif self.interactive and result.decode_tokens_per_s:
            self.note(_("({tokens} tokens, {rate:.1f} tokens/s)").format(
                tokens=result.new_tokens, rate=result.decode_tokens_per_s))
        elif self.interactive:
            self.note(_("({tokens} tokens)").format(tokens=result.new_tokens))


def _is_saved_chat(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh).get("format") == SAVE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False
