"""The MCP tools, one module per group. Each tool has three layers:

    types     pydantic input arguments (Annotated with descriptions) and an output model
    handler   a function of a few dozen lines: validate, call ingest/correlate/escalation, shape
    algorithm lives in ingest/, correlate/ or escalation/, never here

A module declares `TOOLS = [spec(fn, …), …]`; `mcp_server/server.py` builds the server from the
modules listed in GROUPS. Modules import only pydantic and mcp at the top: the packages that do
the work (DuckDB, PyArrow, google-genai) are imported inside the handlers, so that `initialize`
and `tools/list` stay fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["GROUPS", "ToolSpec", "spec", "all_specs"]

# group name -> module; the order is the order of tools/list.
GROUPS: dict[str, str] = {
    "datasets": "mcp_server.tools.datasets",
    "explore": "mcp_server.tools.explore",
    "correlation": "mcp_server.tools.correlation",
    "escalation": "mcp_server.tools.escalation",
    "conversations": "mcp_server.tools.conversations",
    "focused": "mcp_server.tools.focused",
}


@dataclass(frozen=True)
class ToolSpec:
    fn: Callable[..., Any]
    name: str
    title: str
    group: str
    read_only: bool
    idempotent: bool
    open_world: bool
    destructive: bool = False


def spec(
    fn: Callable[..., Any],
    title: str,
    *,
    read_only: bool,
    idempotent: bool,
    open_world: bool = False,
    destructive: bool = False,
) -> ToolSpec:
    group = fn.__module__.rsplit(".", 1)[-1]
    return ToolSpec(fn, fn.__name__, title, group, read_only, idempotent, open_world, destructive)


def all_specs() -> list[ToolSpec]:
    """Every tool of every group, in GROUPS order."""
    specs: list[ToolSpec] = []
    for module in GROUPS.values():
        specs.extend(importlib.import_module(module).TOOLS)
    return specs
