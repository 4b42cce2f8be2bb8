"""A local HTTP server that speaks the documented Gemini REST API, for tests of the real client.

    POST /v1beta/models/{model}:generateContent
    POST /v1beta/models/{model}:countTokens

It records every request (path, headers, raw body, parsed JSON) in `received` and answers from
a script of actions, then with a default answer:

    stub.reply(analysis_dict)                   a 200 generateContent answer whose text is that JSON
    stub.fail(429, retry_delay="0.2s")          an error with google.rpc.RetryInfo (or none)
    stub.fail(500)                              a server error
    stub.slow(seconds, analysis)                answer after a delay (timeouts)
    stub.raw(200, b"{not json")                 a malformed body
    stub.text_reply("not json at all")          a 200 answer whose text part is not JSON
    stub.call("query_spans", {"sql": "…"})      a 200 answer that calls a function (the model asks
    stub.calls([(name, args), …])               for data within its turn); several in one answer

countTokens answers `totalTokens` = whitespace-separated words x 1.3 of all text parts (or
`stub.count_tokens_value` when set).

    with GeminiStub() as stub:
        monkeypatch.setenv("DCR_GEMINI_BASE_URL", stub.url)
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["GeminiStub", "Received", "DEFAULT_ANALYSIS"]

DEFAULT_ANALYSIS: dict[str, Any] = {
    "summary": "The payments service times out calling the ledger database.",
    "root_causes": [
        {
            "title": "ledger lock contention",
            "service": "ledger",
            "operation": "UPDATE balances",
            "mechanism": "lock_expiry",
            "confidence": 0.7,
            "explanation": "E2 and E5 show it.",
            "evidence": ["E2", "E5"],
        }
    ],
    "fixes": [{"description": "Shorten the transaction.", "files": ["ledger/db.py"], "risk": "low"}],
    "tests_to_run": [
        {"description": "Run the load test.", "command": "make load", "expected": "p95 < 200ms"}
    ],
    "open_questions": ["Does the lock wait show in the DB metrics?"],
}

_PATH = re.compile(r"^/(v1beta|v1)/models/([^/:]+):(generateContent|countTokens)$")


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any

    @property
    def action(self) -> str:
        return self.path.rsplit(":", 1)[-1]


class GeminiStub:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: deque[tuple[str, Any]] = deque()
        self._lock = threading.Lock()
        self.count_tokens_value: int | None = None
        self._call_seq = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                stub._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # life cycle --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> GeminiStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # the script --------------------------------------------------------------------------------

    def reply(
        self, analysis: dict[str, Any] | None = None, *, usage: tuple[int, int, int] = (1200, 300, 800)
    ) -> None:
        self._push("reply", (analysis or DEFAULT_ANALYSIS, usage))

    def text_reply(self, text: str) -> None:
        self._push("text", text)

    def fail(self, status: int, *, retry_delay: str | None = None, retry_after: str | None = None) -> None:
        self._push("fail", (status, retry_delay, retry_after))

    def slow(self, seconds: float, analysis: dict[str, Any] | None = None) -> None:
        self._push("slow", (seconds, analysis or DEFAULT_ANALYSIS))

    def raw(self, status: int, body: bytes) -> None:
        self._push("raw", (status, body))

    def call(self, name: str, args: dict[str, Any], *, usage: tuple[int, int, int] = (1000, 20, 50)) -> None:
        """An answer that calls one function (with an id and a thought signature, as Gemini 3
        answers): the client must run it and send its result back in the same turn."""
        self.calls([(name, args)], usage=usage)

    def calls(
        self, calls: list[tuple[str, dict[str, Any]]], *, usage: tuple[int, int, int] = (1000, 20, 50)
    ) -> None:
        self._push("call", (calls, usage))

    def function_responses(self, request: Received) -> list[dict[str, Any]]:
        """The functionResponse parts a generateContent request carries, in order."""
        return [
            part["functionResponse"]
            for content in (request.json or {}).get("contents", [])
            for part in content.get("parts", [])
            if "functionResponse" in part
        ]

    def _push(self, kind: str, arg: Any) -> None:
        with self._lock:
            self._script.append((kind, arg))

    def generate_requests(self) -> list[Received]:
        return [r for r in self.received if r.action == "generateContent"]

    def all_bytes(self) -> bytes:
        return (
            b"\n".join(r.body for r in self.received)
            + b"\n"
            + b"\n".join(json.dumps(r.headers).encode() for r in self.received)
        )

    # the handler -------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body or b"null")
        except ValueError:
            parsed = None
        m = _PATH.match(h.path.split("?", 1)[0])
        with self._lock:
            self.received.append(
                Received("POST", h.path, {k.lower(): v for k, v in h.headers.items()}, body, parsed)
            )
        if not m:
            return self._send(
                h, 404, {"error": {"code": 404, "message": f"no route {h.path}", "status": "NOT_FOUND"}}
            )
        model, action = m.group(2), m.group(3)
        if action == "countTokens":
            return self._send(h, 200, {"totalTokens": self._count(parsed)})
        with self._lock:
            kind, arg = (
                self._script.popleft() if self._script else ("reply", (DEFAULT_ANALYSIS, (1200, 300, 800)))
            )
        if kind == "fail":
            status, delay, after = arg
            err: dict[str, Any] = {
                "code": status,
                "message": "scripted failure",
                "status": "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL",
            }
            if delay:
                err["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]
            return self._send(h, status, {"error": err}, {"Retry-After": after} if after else None)
        if kind == "raw":
            return self._send_bytes(h, arg[0], arg[1])
        if kind == "slow":
            time.sleep(arg[0])
            return self._send(h, 200, self._answer(json.dumps(arg[1]), model, (100, 50, 0)))
        if kind == "text":
            return self._send(h, 200, self._answer(arg, model, (100, 50, 0)))
        if kind == "call":
            calls, usage = arg
            with self._lock:
                self._call_seq += 1
                seq = self._call_seq
            parts = [
                {
                    "functionCall": {"id": f"call-{seq}-{i}", "name": name, "args": args},
                    # Gemini 3 signs the first call part; the client must send it back as it came
                    **(
                        {"thoughtSignature": base64.b64encode(f"sig-{seq}".encode()).decode()}
                        if i == 0
                        else {}
                    ),
                }
                for i, (name, args) in enumerate(calls)
            ]
            body = self._answer("", model, usage)
            body["candidates"][0]["content"]["parts"] = parts
            return self._send(h, 200, body)
        return self._send(h, 200, self._answer(json.dumps(arg[0]), model, arg[1]))

    def _count(self, parsed: Any) -> int:
        if self.count_tokens_value is not None:
            return self.count_tokens_value
        words = 0
        for content in (parsed or {}).get("contents", []):
            for part in content.get("parts", []):
                words += len(str(part.get("text", "")).split())
        return int(words * 1.3) + 1

    @staticmethod
    def _answer(text: str, model: str, usage: tuple[int, int, int]) -> dict[str, Any]:
        return {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": usage[0],
                "candidatesTokenCount": usage[1],
                "thoughtsTokenCount": usage[2],
                "totalTokenCount": sum(usage),
            },
            "modelVersion": model,
        }

    def _send(
        self, h: BaseHTTPRequestHandler, status: int, obj: Any, headers: dict[str, str] | None = None
    ) -> None:
        self._send_bytes(h, status, json.dumps(obj).encode(), headers)

    @staticmethod
    def _send_bytes(
        h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str] | None = None
    ) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json; charset=UTF-8")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass
