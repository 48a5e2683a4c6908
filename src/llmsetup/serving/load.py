"""``bench --api``: a serving benchmark against any OpenAI-compatible endpoint.

The numbers are the ones vLLM's own serving benchmark reports, so that the webui and vLLM
can be compared on the same load: N workers keep N streamed ``/v1/completions`` requests in
flight until M have been sent; each asks for exactly O output tokens (``ignore_eos``) after a
prompt of about I tokens. Reported: aggregate output tokens/s and requests/s over the whole
run, time to first token (TTFT) p50/p99, inter-token latency (ITL: the gaps between streamed
chunks, over all requests) p50/p99, and time per output token (TPOT: a request's decode time
over its tokens after the first).

The prompt is I words from a fixed list (about one token each in the usual tokenizers); the
server's ``usage`` gives the true prompt length, reported as ``prompt_tokens_mean``.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time
from dataclasses import dataclass

from llmsetup.errors import CheckFailed, UsageError
from llmsetup.i18n import _
from llmsetup.serving.openai_client import Client, StreamStats

_WORDS = ("the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "was", "on",
          "be", "by", "at", "this", "from", "or", "an", "are", "which", "have", "not", "but",
          "had", "his", "they", "you", "were", "her", "she", "there", "been", "one", "all", "we",
          "can", "has", "more", "will", "if", "no", "out", "so", "said", "what", "up", "its",
          "about", "into", "than", "them", "only", "other", "new", "some", "could", "time",
          "these", "two", "may", "then", "do", "first", "any", "my", "now", "such", "like", "our",
          "over", "man", "me", "even", "most", "made", "after", "also", "did", "many", "before",
          "must", "through", "back", "years", "where", "much", "your", "way", "well", "down",
          "should", "because", "each", "just", "those", "people", "how", "too", "little", "state",
          "good", "very", "make", "world", "still", "own", "see", "men", "work", "long", "get",
          "here", "between", "both", "life", "being", "under", "never", "day", "same", "another",
          "know", "while", "last", "might", "us", "great", "old", "year", "off", "come", "since",
          "against", "go", "came", "right", "used", "take", "three")


@dataclass
class LoadOptions:
    concurrency: int = 1
    requests: int | None = None  # default: 4 per worker, at least 8
    input_tokens: int = 128
    output_tokens: int = 128
    model: str | None = None
    deadline_s: float = 600.0
    exact: bool = True

    def checked(self) -> LoadOptions:
        for name, value, low in (("--concurrency", self.concurrency, 1),
                                 ("--input-tokens", self.input_tokens, 1),
                                 ("--output-tokens", self.output_tokens, 1)):
            if value < low:
                raise UsageError(_("{option} must be at least {low}").format(option=name,
                                                                            low=low))
        if self.requests is not None and self.requests < 1:
            raise UsageError(_("--requests must be at least 1"))
        if self.requests is None:
            self.requests = max(8, 4 * self.concurrency)
        return self


def prompt_of(tokens: int, salt: int) -> str:
    """About ``tokens`` tokens of text, different per request (no prefix cache between them)."""
    start = (salt * 7919) % len(_WORDS)
    return " ".join(_WORDS[(start + i) % len(_WORDS)] for i in range(tokens))


def percentile(values: list[float], pct: float) -> float | None:
    """The ``pct`` percentile by linear interpolation (numpy's default); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def run_load(client: Client, opts: LoadOptions, on_progress=None) -> dict:
    """Send the load; one JSON-ready document with the aggregate numbers."""
    opts.checked()
    model = opts.model
    if model is None:  # asking first fails early, and clearly, when the server is not there
        served = client.models()
        if not served:
            raise CheckFailed(_("{url}/v1/models lists no model").format(url=client.base),
                              hint=_("The server started without a model; load one first."))
        model = served[0]
    jobs: queue.Queue[int] = queue.Queue()
    for number in range(opts.requests):
        jobs.put(number)
    results: list[StreamStats] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                number = jobs.get_nowait()
            except queue.Empty:
                return
            stats = client.stream_completion(prompt_of(opts.input_tokens, number), model=model,
                                             max_tokens=opts.output_tokens,
                                             deadline_s=opts.deadline_s, exact=opts.exact)
            with lock:
                results.append(stats)
                if on_progress:
                    on_progress(len(results), opts.requests)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True)
               for _worker in range(min(opts.concurrency, opts.requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    duration = time.monotonic() - started
    return summarize(results, duration, opts, model, client.base)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def summarize(results: list[StreamStats], duration: float, opts: LoadOptions, model: str,
              api: str) -> dict:
    """The aggregate numbers of a run (see the module docstring)."""
    done = [r for r in results if r.ok]
    ttft = [r.ttft_s for r in done if r.ttft_s is not None]
    itl = [b - a for r in done for a, b in zip(r.chunk_times, r.chunk_times[1:], strict=False)]
    tpot = [(r.latency_s - r.ttft_s) / (r.output_tokens - 1) for r in done
            if r.output_tokens > 1 and r.latency_s is not None and r.ttft_s is not None]
    output = sum(r.output_tokens for r in done)
    prompts = [r.prompt_tokens for r in done if r.prompt_tokens is not None]
    errors = sorted({r.error for r in results if not r.ok and r.error})
    return {
        "api": api, "model": model, "concurrency": opts.concurrency,
        "requests": opts.requests, "completed": len(done), "failed": len(results) - len(done),
        "errors": errors[:5], "input_tokens": opts.input_tokens,
        "output_tokens": opts.output_tokens,
        "prompt_tokens_mean": round(statistics.fmean(prompts), 1) if prompts else None,
        "total_output_tokens": output, "duration_s": round(duration, 3),
        "output_tokens_per_s": round(output / duration, 2) if duration > 0 else None,
        "requests_per_s": round(len(done) / duration, 3) if duration > 0 else None,
        "ttft_ms": {"mean": _ms(statistics.fmean(ttft)) if ttft else None,
                    "p50": _ms(percentile(ttft, 50)), "p99": _ms(percentile(ttft, 99))},
        "itl_ms": {"mean": _ms(statistics.fmean(itl)) if itl else None,
                   "p50": _ms(percentile(itl, 50)), "p99": _ms(percentile(itl, 99))},
        "tpot_ms": {"mean": _ms(statistics.fmean(tpot)) if tpot else None,
                    "p50": _ms(percentile(tpot, 50)), "p99": _ms(percentile(tpot, 99))},
    }


def describe(doc: dict) -> list[str]:
    """The result for people, a few lines."""
    def num(value, unit: str) -> str:
        return "?" if value is None else f"{value:g} {unit}"

    lines = [_("{model} at {api}: {completed}/{requests} requests, concurrency {concurrency}, "
               "{input_tokens} in / {output_tokens} out tokens, {duration:g} s").format(
                 model=doc["model"], api=doc["api"], completed=doc["completed"],
                 requests=doc["requests"], concurrency=doc["concurrency"],
                 input_tokens=doc["input_tokens"], output_tokens=doc["output_tokens"],
                 duration=doc["duration_s"]),
             "  " + _("output {tokens_per_s} (aggregate), {requests_per_s}").format(
                 tokens_per_s=num(doc["output_tokens_per_s"], "tokens/s"),
                 requests_per_s=num(doc["requests_per_s"], "requests/s")),
             "  " + _("time to first token p50 {p50}, p99 {p99}").format(
                 p50=num(doc["ttft_ms"]["p50"], "ms"), p99=num(doc["ttft_ms"]["p99"], "ms")),
             "  " + _("inter-token latency p50 {p50}, p99 {p99}; time per output token mean "
                      "{mean}").format(p50=num(doc["itl_ms"]["p50"], "ms"),
                                       p99=num(doc["itl_ms"]["p99"], "ms"),
                                       mean=num(doc["tpot_ms"]["mean"], "ms"))]
    if doc["failed"]:
        lines.append("  " + _("{count} request(s) failed: {errors}").format(
            count=doc["failed"], errors="; ".join(doc["errors"])))
    return lines
