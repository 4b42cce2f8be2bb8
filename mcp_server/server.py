"""The MCP server: every capability of `dcr` as tools an agent can call.

    build_server(tools=None) -> MCPServer
        tools: names of tools or groups to serve (default: DCR_TOOLS, else all)

Start-up stays fast (`initialize` + `tools/list` under a second): tool modules import only
pydantic and mcp, the packages that do the work are imported by the handlers when called.
Schemas are compacted (pydantic's per-property "title" dropped): agents pay for every
schema token in every turn.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import ValidationError

from mcp_server.errors import is_package_error, tool_message
from mcp_server.limits import BadCursor
from mcp_server.tools import GROUPS, ToolSpec, all_specs

__all__ = [
    "SERVER_NAME",
    "INSTRUCTIONS",
    "DcrServer",
    "build_server",
    "select_specs",
    "compact_schema",
    "example_of",
]

SERVER_NAME = "dcr"
INSTRUCTIONS = (
    "Trace and log evidence for hard cross-service bugs. Typical flow: list_datasets (or "
    "ingest_traces), timeline to find the onset and the window, correlate over it for ranked "
    "root-cause candidates, find_traces and get_trace (summary first, then topology, errors, spans) "
    "to check them, then escalate_analysis or start_conversation when you are stuck. Long answers "
    "carry page.total_count vs page.returned_count, a note on what was cut and a next_cursor."
)


class DcrServer(MCPServer):
    """MCPServer whose errors read as one line the agent can act on: argument errors as "bad
    arguments: depth_level: … 5", the packages' errors (and a bad cursor) as `tool_message` words
    them, their remedy a tool and its arguments (mcp_server/errors.py). The SDK shows a tool only
    the text of a ToolError; anything else stays a crash, its text on the server."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> CallToolResult | Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError):
                if is_package_error(cause) or isinstance(cause, BadCursor):
                    raise ToolError(f"Error executing tool {name}: {tool_message(cause)}") from cause
                raise
            if not isinstance(cause, ValidationError):
                raise
            raise ToolError(f"Error executing tool {name}: {self._bad_arguments(name, cause)}") from cause

    def _bad_arguments(self, name: str, cause: ValidationError) -> str:
        """ "bad arguments: a.b: problem; …", and for an argument that is an object, the shape it
        expects as JSON (the agent sent a string, or missed a field)."""
        problems, shapes = [], {}
        tool = self._tool_manager.get_tool(name)
        schema = tool.parameters if tool is not None else {}
        for e in cause.errors():
            loc = [str(p) for p in e["loc"]]
            msg = re.sub(r"a valid dictionary or instance of \w+", "an object", e["msg"])
            problems.append(f"{'.'.join(loc) or 'arguments'}: {msg}")
            prop = (schema.get("properties") or {}).get(loc[0]) if loc else None
            shape = example_of(prop, schema.get("$defs") or {}) if prop else None
            if isinstance(shape, dict) and loc[0] not in shapes:
                shapes[loc[0]] = shape
        text = "bad arguments: " + "; ".join(problems)
        for arg, shape in shapes.items():
            text += f"; {arg} is an object: {json.dumps(shape, ensure_ascii=False)}"
        return text


def example_of(schema: Any, defs: dict[str, Any], depth: int = 0) -> Any:
    """A small JSON example of a schema: objects with every property (required ones first), one
    item a list, "…" a string, the first value of an enum."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "$ref" in schema:
        return example_of(defs.get(schema["$ref"].rsplit("/", 1)[-1]), defs, depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [b for b in schema[key] if b.get("type") != "null"]
            return example_of(branches[0], defs, depth + 1) if branches else None
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        required = [k for k in schema.get("required", []) if k in props]
        order = required + [k for k in props if k not in required]
        return {k: example_of(props[k], defs, depth + 1) for k in order}
    if kind == "array":
        item = example_of(schema.get("items") or {}, defs, depth + 1)
        return [] if item is None else [item]
    return {"string": "…", "integer": 0, "number": 0, "boolean": False}.get(kind or "", "…")


def select_specs(selection: str | Iterable[str] | None) -> list[ToolSpec]:
    """The tools named (tool or group names, comma-separated); ValueError lists the known ones."""
    specs = all_specs()
    if selection is None:
        return specs
    names = [s.strip() for s in (selection.split(",") if isinstance(selection, str) else selection)]
    names = [n for n in names if n]
    if not names:
        return specs
    known_tools = {s.name for s in specs}
    unknown = [n for n in names if n not in known_tools and n not in GROUPS]
    if unknown:
        raise ValueError(
            f"DCR_TOOLS names unknown tools {', '.join(unknown)}: use tool names "
            f"({', '.join(sorted(known_tools))}) or groups ({', '.join(GROUPS)})"
        )
    wanted = set(names)
    return [s for s in specs if s.name in wanted or s.group in wanted]


def compact_schema(schema: Any, *, output: bool = False) -> Any:
    """The same contract in fewer tokens.

    Everywhere: drop the "title" keywords pydantic adds (not properties named "title"),
    `additionalProperties: true` (the default) and defaults that say "empty" (null, [], an object
    of empty lists); write `anyOf: [{type: A}, {type: B}]` as `type: [A, B]`. In input schemas an
    optional argument loses its `null` type (leaving the argument out means null). In output
    schemas `required` goes: it constrains nothing a client needs to read the answer.
    """
    if isinstance(schema, list):
        return [compact_schema(v, output=output) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and (value is None or value == [] or isinstance(value, dict)):
            continue
        if key == "additionalProperties" and value is True:
            continue
        if output and key == "required":
            continue
        if key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(value, dict):
            out[key] = {k: compact_schema(v, output=output) for k, v in value.items()}
        else:
            out[key] = compact_schema(value, output=output)
    branches = out.get("anyOf")
    if isinstance(branches, list) and branches:
        if all(isinstance(b, dict) and set(b) == {"type"} and isinstance(b["type"], str) for b in branches):
            del out["anyOf"]
            out["type"] = [b["type"] for b in branches]
        elif not output and len(branches) == 2 and {"type": "null"} in branches:
            del out["anyOf"]
            out.update(next(b for b in branches if b != {"type": "null"}))
    types = out.get("type")
    if not output and isinstance(types, list) and "null" in types:
        rest = [t for t in types if t != "null"]
        out["type"] = rest[0] if len(rest) == 1 else rest
    return out


def _tool(s: ToolSpec) -> Tool:
    annotations = ToolAnnotations(
        read_only_hint=s.read_only,
        destructive_hint=None if s.read_only else s.destructive,
        idempotent_hint=s.idempotent,
        open_world_hint=s.open_world,
    )
    tool = Tool.from_function(s.fn, name=s.name, title=s.title, annotations=annotations)
    tool.description = " ".join((tool.description or "").split())
    tool.parameters = compact_schema(tool.parameters)
    if tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = compact_schema(tool.fn_metadata.output_schema, output=True)
    return tool


def build_server(tools: str | Iterable[str] | None = None, *, log_level: str | None = None) -> MCPServer:
    if tools is None:
        tools = os.environ.get("DCR_TOOLS") or None
    level = (log_level or os.environ.get("DCR_LOG_LEVEL") or "WARNING").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"DCR_LOG_LEVEL={level!r}: use DEBUG, INFO, WARNING or ERROR")
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg_version = version("deep-code-reasoning")
    except PackageNotFoundError:
        pkg_version = "0"
    server = DcrServer(
        SERVER_NAME,
        title="deep-code-reasoning",
        instructions=INSTRUCTIONS,
        version=pkg_version,
        tools=[_tool(s) for s in select_specs(tools)],
        log_level=level,  # type: ignore[arg-type]  # a str checked above against the Literal's five names
    )
    from mcp_server import resources

    resources.register(server)
    return server
