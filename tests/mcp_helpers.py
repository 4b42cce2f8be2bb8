"""Shared by the tests of the MCP facade: an in-process client, a fixture dataset, result reading."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from mcp_server.server import build_server

REPO = Path(__file__).resolve().parent.parent
TRACES = REPO / "fixtures" / "public" / "jaeger" / "otlp-traces"
OTLP_EXAMPLES = REPO / "fixtures" / "public" / "otlp-examples"
SCENARIO = REPO / "fixtures" / "scenarios" / "dependency_failure"
# the scenario's truth.json: baseline 09:00-09:15, incident 09:15-09:30 UTC
INCIDENT = {"start": "2025-06-12T09:15:00Z", "end": "2025-06-12T09:30:00Z"}
BASELINE = {"baseline_start": "2025-06-12T09:00:00Z", "baseline_end": "2025-06-12T09:15:00Z"}
MODES = ("legacy", "auto")  # the initialize handshake (<= 2025-11-25) and the 2026-07-28 era


def ingest_fixture(dataset: str = "jaeger", path: Path = TRACES) -> Any:
    import ingest

    return ingest.ingest_paths([str(path)], dataset)


def ingest_scenario(dataset: str = "shop") -> Any:
    return ingest_fixture(dataset, SCENARIO)


def truth() -> dict[str, Any]:
    return json.loads((SCENARIO / "truth.json").read_text())


def run_client(mode: str, body: Callable[[Client], Awaitable[Any]], tools: str | None = None) -> Any:
    """Run `body(client)` against a fresh in-process server; its return value."""

    async def main() -> Any:
        async with Client(build_server(tools), mode=mode) as client:
            return await body(client)

    return anyio.run(main)


def call(mode: str, tool: str, args: dict[str, Any] | None = None, **kw: Any) -> Any:
    async def body(client: Client) -> Any:
        return await client.call_tool(tool, args or {}, **kw)

    return run_client(mode, body)


def ok(result: Any) -> dict[str, Any]:
    """The structured content of a successful call (and check the text says the same)."""
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    text = result.content[0].text
    assert "Traceback" not in text
    return text
