"""`dcr serve` as a real subprocess: stdio (SDK client, raw pipes, MCP Inspector CLI) and Streamable HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from mcp_server import limits
from tests import mcp_inspector
from tests.mcp_helpers import ingest_fixture

DCR = [sys.executable, "-m", "mcp_server.cli", "serve"]
REPO = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DCR_HTTP_TOKEN", "DCR_TOOLS")}
    env.update(extra)
    return env


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_stdio_subprocess_with_sdk_client(mode, dcr_home):
    r = ingest_fixture()
    params = StdioServerParameters(
        command=DCR[0], args=DCR[1:], cwd=str(REPO), env={"DCR_HOME": str(dcr_home), "PYTHONPATH": str(REPO)}
    )

    async def main():
        async with Client(params, mode=mode) as client:
            tools = await client.list_tools()
            listed = await client.call_tool("list_datasets", {})
            count = await client.call_tool(
                "query_spans", {"dataset": "jaeger", "sql": "SELECT count(*) FROM spans"}
            )
            return tools, listed, count

    tools, listed, count = anyio.run(main)
    assert {"list_datasets", "query_spans", "correlate"} <= {t.name for t in tools.tools}
    assert listed.structured_content["datasets"][0]["name"] == "jaeger"
    assert count.structured_content["rows"] == [[r.spans]]


def test_stdout_carries_only_protocol(dcr_home):
    """Every stdout line is a JSON-RPC message, even when a tool fails; logs go to stderr."""
    msgs = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "query_spans", "arguments": {"dataset": "x", "sql": "1"}},
        },
        {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
    ]
    proc = subprocess.Popen(
        DCR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(DCR_HOME=str(dcr_home), DCR_LOG_LEVEL="DEBUG"),
        cwd=REPO,
    )
    for m in msgs:
        proc.stdin.write((json.dumps(m) + "\n").encode())
        proc.stdin.flush()
    answers = {}
    while len(answers) < 3:
        line = proc.stdout.readline()
        assert line, proc.stderr.read().decode()
        msg = json.loads(line)
        assert msg["jsonrpc"] == "2.0"
        answers[msg.get("id")] = msg
    proc.stdin.close()
    proc.wait(timeout=10)
    assert proc.stdout.read() == b""
    assert len(answers[3]["result"]["tools"]) == 18
    wire = json.dumps(answers[3], separators=(",", ":"), ensure_ascii=False)
    assert len(wire) / limits.CHARS_PER_TOKEN < 8_000  # the tools/list budget, on the wire
    assert answers[2]["result"]["isError"] is True
    assert "no dataset named 'x'" in answers[2]["result"]["content"][0]["text"]
    assert proc.stderr.read()  # DEBUG logging went somewhere: stderr


def test_serve_rejects_bad_settings(monkeypatch, capsys):
    """Refused before serving: exit 2, one line on stderr that names the setting."""
    from mcp_server.cli import main

    monkeypatch.delenv("DCR_HTTP_TOKEN", raising=False)
    assert main(["serve", "--transport", "http", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "DCR_HTTP_TOKEN" in err and err.count("\n") == 1
    monkeypatch.setenv("DCR_TOOLS", "correlate,nope")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "correlate" in err
    monkeypatch.delenv("DCR_TOOLS")
    monkeypatch.setenv("MAX_MCP_OUTPUT_TOKENS", "lots")
    assert main(["serve"]) == 2
    assert "MAX_MCP_OUTPUT_TOKENS" in capsys.readouterr().err


# ---- Streamable HTTP ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_http(home: Path, host: str, token: str | None = None) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = _env(DCR_HOME=str(home), **({"DCR_HTTP_TOKEN": token} if token else {}))
    proc = subprocess.Popen(
        DCR + ["--transport", "http", "--host", host, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode()) from None
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("dcr serve --transport http did not listen within 20 s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _post(port: int, headers: dict[str, str]):
    import httpx2

    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    return httpx2.post(
        f"http://127.0.0.1:{port}/mcp",
        json=body,
        timeout=10,
        headers={"accept": "application/json, text/event-stream", **headers},
    )


def _call_over_http(port: int, headers: dict[str, str], mode: str = "legacy") -> dict:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async def main():
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            transport = streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)
            async with Client(transport, mode=mode) as client:
                return await client.call_tool("list_datasets", {})

    result = anyio.run(main)
    assert not result.is_error
    return result.structured_content


def test_http_loopback_tool_call_and_origin(dcr_home):
    ingest_fixture()
    proc, port = _start_http(dcr_home, "127.0.0.1")
    try:
        for mode in ("legacy", "auto"):
            assert _call_over_http(port, {}, mode)["datasets"][0]["name"] == "jaeger"
        refused = _post(port, {"origin": "http://evil.example"})
        assert refused.status_code == 403 and "evil.example" in refused.json()["error"]
        assert _post(port, {"origin": "http://localhost:3000"}).status_code == 200
    finally:
        _stop(proc)


def test_http_off_loopback_requires_the_token(dcr_home):
    ingest_fixture()
    proc, port = _start_http(dcr_home, "0.0.0.0", token="s3cret-token")
    try:
        missing = _post(port, {})
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert _post(port, {"authorization": "Bearer wrong"}).status_code == 401
        assert (
            _post(port, {"authorization": "Bearer s3cret-token", "origin": "http://evil.example"}).status_code
            == 403
        )
        out = _call_over_http(port, {"authorization": "Bearer s3cret-token"})
        assert out["datasets"][0]["name"] == "jaeger"
    finally:
        _stop(proc)


# ---- MCP Inspector CLI: an independent client ---------------------------------------------------


def _inspector(args: list[str], home: Path) -> dict:
    run = subprocess.run(
        [str(mcp_inspector.inspector_bin()), "--cli", *DCR, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=_env(DCR_HOME=str(home), PYTHONPATH=str(REPO)),
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _npm() -> None:
    """npm and node, or a skip (a failure under CI=true)."""
    if not mcp_inspector.npm_available():
        missing = "npm (and node) not found: the MCP Inspector test needs Node.js 20+"
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)


def test_inspector_cli_lists_tools_and_calls_them(dcr_home):
    _npm()
    mcp_inspector.ensure_installed()
    ingest_fixture()
    tools = _inspector(["--method", "tools/list"], dcr_home)["tools"]
    assert {"list_datasets", "correlate", "query_spans"} <= {t["name"] for t in tools}
    assert all("outputSchema" in t and "annotations" in t for t in tools)
    listed = _inspector(["--method", "tools/call", "--tool-name", "list_datasets"], dcr_home)
    assert listed["structuredContent"]["datasets"][0]["name"] == "jaeger"
    report = _inspector(
        ["--method", "tools/call", "--tool-name", "correlate", "--tool-arg", "dataset=jaeger"], dcr_home
    )
    assert not report.get("isError"), report
    assert report["structuredContent"]["dataset"] == "jaeger"
    assert report["structuredContent"]["window"]["start_ns"] < report["structuredContent"]["window"]["end_ns"]
