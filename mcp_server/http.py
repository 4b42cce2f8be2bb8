"""Streamable HTTP for `dcr serve --transport http`.

    127.0.0.1 (default), localhost, ::1   no token needed (DCR_HTTP_TOKEN, when set, is still required)
    any other address                     DCR_HTTP_TOKEN required, sent as `Authorization: Bearer …`;
                                          ingest_traces reads only under DCR_INGEST_ROOTS

Every request's `Origin`, when present, must be a loopback origin (http(s)://localhost,
127.0.0.1 or [::1], any port): a web page elsewhere cannot drive the server through the
user's browser (DNS rebinding). Clients that are not browsers send no Origin. On loopback the
SDK's own Host-header check runs as well.
"""

from __future__ import annotations

import hmac
import json
import os
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["LOOPBACK_HOSTS", "is_loopback", "http_token", "guard", "build_app", "run"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_LOOPBACK_ORIGIN = re.compile(r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?")
MCP_PATH = "/mcp"

Scope = dict[str, Any]


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS


def http_token(host: str) -> str | None:
    """DCR_HTTP_TOKEN; ValueError when the bind address needs one and it is not set."""
    token = os.environ.get("DCR_HTTP_TOKEN", "").strip() or None
    if token is None and not is_loopback(host):
        raise ValueError(
            f"binding {host} exposes the server beyond this machine: set DCR_HTTP_TOKEN to a secret "
            "(clients send 'Authorization: Bearer <token>'), or bind 127.0.0.1"
        )
    return token


async def _refuse(send: Any, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def guard(app: Any, token: str | None) -> Any:
    """ASGI middleware: refuse a foreign Origin (403) and a missing or wrong bearer token (401)."""
    expected = f"Bearer {token}".encode() if token else None

    async def guarded(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1")
        if origin and not _LOOPBACK_ORIGIN.fullmatch(origin):
            await _refuse(send, 403, f"origin {origin!r} is not allowed: only loopback origins may call")
            return
        if expected is not None and not hmac.compare_digest(headers.get(b"authorization", b""), expected):
            await _refuse(
                send,
                401,
                "missing or wrong bearer token (DCR_HTTP_TOKEN)",
                [(b"www-authenticate", b'Bearer realm="dcr"')],
            )
            return
        await app(scope, receive, send)

    return guarded


def build_app(server: Any, host: str, token: str | None) -> Any:
    from mcp.server.transport_security import TransportSecuritySettings

    from mcp_server.exposure import set_exposed

    set_exposed(not is_loopback(host))  # tools that read files confine themselves (mcp_server/exposure.py)
    security = None if is_loopback(host) else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    starlette_app = server.streamable_http_app(
        streamable_http_path=MCP_PATH, host=host, transport_security=security
    )
    return guard(starlette_app, token)


def run(server: Any, host: str, port: int, log_level: str = "warning") -> None:
    """Serve until interrupted; uvicorn logs to stderr."""
    import uvicorn

    token = http_token(host)
    app = build_app(server, host, token)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level.lower(), lifespan="on")
    uvicorn.Server(config).run()
