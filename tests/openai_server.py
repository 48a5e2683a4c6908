"""A real HTTP server on loopback speaking the OpenAI API subset llmsetup uses.

``/v1/models``, ``/v1/chat/completions`` (plain) and ``/v1/completions`` (plain and streamed
as server-sent events, with ``stream_options.include_usage``). Answers are scripted, one word
per token, so that tests can check counts exactly; ``api_key`` makes it refuse requests
without ``Authorization: Bearer KEY`` (401), as vLLM's ``--api-key`` does. It records the
largest number of requests it served at once (``max_in_flight``) so that a test can prove a
benchmark's concurrency without looking at a clock.

Run as a script it serves until killed: ``python tests/openai_server.py --port N``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa")


class State:
    def __init__(self, answer: str, api_key: str | None, token_delay: float,
                 model: str, fail_every: int = 0) -> None:
        self.answer = answer
        self.api_key = api_key
        self.token_delay = token_delay
        self.model = model
        self.fail_every = fail_every
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict] = []
        self.headers: list[dict] = []


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self) -> bool:
            state.headers.append(dict(self.headers))
            if state.api_key and self.headers.get("Authorization") != f"Bearer {state.api_key}":
                self._send(401, {"error": "Unauthorized"})
                return False
            return True

        def do_GET(self) -> None:
            if not self._authorized():
                return
            if self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": state.model,
                                                             "object": "model"}]})
            elif self.path in ("/health", "/"):
                self._send(200, {})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self._authorized():
                return
            with state.lock:
                state.requests.append(body)
                number = len(state.requests)
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            self._counted = True
            try:
                if state.fail_every and number % state.fail_every == 0:
                    self._send(500, {"error": {"message": "scripted failure"}})
                elif self.path == "/v1/chat/completions":
                    self._chat(body)
                elif self.path == "/v1/completions":
                    self._completion(body)
                else:
                    self._send(404, {"error": "not found"})
            finally:
                self._done()

        def _done(self) -> None:
            # Before the last bytes go out: a client that has read them may send its next
            # request at once, and must not find this one still counted.
            if getattr(self, "_counted", False):
                self._counted = False
                with state.lock:
                    state.in_flight -= 1

        def _chat(self, body: dict) -> None:
            words = state.answer.split()[: body.get("max_tokens", 16)]
            time.sleep(state.token_delay * len(words))
            self._done()
            self._send(200, {
                "object": "chat.completion", "model": state.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": " ".join(words)}}],
                "usage": {"prompt_tokens": len(body["messages"][-1]["content"].split()),
                          "completion_tokens": len(words)}})

        def _completion(self, body: dict) -> None:
            n = body.get("max_tokens", 16)
            words = [WORDS[i % len(WORDS)] for i in range(n)]
            prompt_tokens = len(str(body.get("prompt", "")).split())
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n,
                     "total_tokens": prompt_tokens + n}
            if not body.get("stream"):
                time.sleep(state.token_delay * n)
                self._done()
                self._send(200, {"object": "text_completion", "usage": usage,
                                 "choices": [{"index": 0, "text": " ".join(words),
                                              "finish_reason": "length"}]})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for i, word in enumerate(words):
                time.sleep(state.token_delay)
                chunk = {"object": "text_completion", "choices": [{
                    "index": 0, "text": (" " if i else "") + word,
                    "finish_reason": "length" if i == n - 1 else None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self._done()
            if (body.get("stream_options") or {}).get("include_usage"):
                self.wfile.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
                                 .encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler


class OpenAIServer:
    """Start with ``with OpenAIServer(...) as server:``; ``server.url`` is its base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 answer: str = "The capital of France is Paris.", api_key: str | None = None,
                 token_delay: float = 0.0, model: str = "tiny", fail_every: int = 0) -> None:
        self.state = State(answer, api_key, token_delay, model, fail_every)
        self.httpd = ThreadingHTTPServer((host, port), make_handler(self.state))
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"

    def __enter__(self) -> OpenAIServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--answer", default="The capital of France is Paris.")
    args = parser.parse_args()
    server = OpenAIServer(args.host, args.port, answer=args.answer, model=args.model)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
