"""`dcr serve`: the MCP server, over stdio (default) or Streamable HTTP. Logs go to stderr only."""

from __future__ import annotations

import argparse
import sys

from mcp_server.errors import UsageError

NAME = "serve"
HELP = "run the MCP server (stdio by default; --transport http for Streamable HTTP)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address; off loopback needs DCR_HTTP_TOKEN")
    p.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    p.add_argument("--tools", help="comma-separated tools or groups to serve (default: DCR_TOOLS, else all)")


def run(args: argparse.Namespace) -> int:
    from mcp_server import http, limits
    from mcp_server.server import build_server

    try:
        limits.max_output_tokens()
        if args.transport == "http":
            http.http_token(args.host)  # refuse a non-loopback bind without a token, before starting
        server = build_server(args.tools)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.transport == "stdio":
        server.run("stdio")
        return 0
    level = server.settings.log_level
    print(f"dcr: serving MCP on http://{_url_host(args.host)}:{args.port}{http.MCP_PATH}", file=sys.stderr)
    http.run(server, args.host, args.port, log_level=level)
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
