"""What every tool handler shares: argument types, time windows, the result envelope.

The packages' errors need no handling here: `server.DcrServer` turns each into a ToolError the
agent reads (`mcp_server/errors.py`), whichever tool raised it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BeforeValidator, Field, WithJsonSchema

from correlate.times import format_ns, parse_time_ns
from mcp_server import limits

__all__ = [
    "DatasetArg",
    "TimeArg",
    "ServicesArg",
    "CursorArg",
    "Page",
    "DocPage",
    "JsonObject",
    "JsonObjects",
    "ToolError",
    "parse_bound",
    "parse_window",
    "structured",
    "shaped",
    "paged",
    "document",
    "iso",
    "iso_end",
    "ms",
    "sparse",
]


def _as_text(value: Any) -> Any:
    return None if value is None else str(value)


DatasetArg = Annotated[str, Field(description="see list_datasets")]
TimeArg = Annotated[
    str | None,
    BeforeValidator(_as_text),
    WithJsonSchema({"type": ["string", "number", "null"]}),
]
ServicesArg = Annotated[list[str] | None, Field(description="default: all")]
CursorArg = Annotated[str | None, Field(description="page.next_cursor")]


# Output fields: nested shapes are named in a description rather than spelled as sub-schemas,
# and an output schema names the fields an agent reads, not every field the answer holds (it
# allows others), because every schema token is paid by the agent in every turn.
# page: total_count, returned_count, next_cursor, spill_path, note; the tools' descriptions say
# how to read it.
Page = dict[str, Any]
# The same object on one-document answers (cut only when a text is too long: page.note says so).
DocPage = dict[str, Any]


# An object (or a list of objects) of an answer whose keys its field's description names:
# `field: JsonObject = Field(description="…")`.
JsonObject = dict[str, Any]
JsonObjects = list[dict[str, Any]]


def parse_bound(value: str | None, name: str) -> int | None:
    """One time argument -> ns; the error names the argument."""
    if value is None or str(value).strip() == "":
        return None
    try:
        return parse_time_ns(value)
    except ValueError as exc:
        raise ToolError(f"{name}: {exc}") from None


def parse_window(
    start: str | None, end: str | None, names: tuple[str, str] = ("start", "end")
) -> tuple[int | None, int | None]:
    """Two optional bounds -> ns; ToolError names the bound that cannot be read or is out of order."""
    start_ns, end_ns = parse_bound(start, names[0]), parse_bound(end, names[1])
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise ToolError(f"{names[1]} ({format_ns(end_ns)}) must be after {names[0]} ({format_ns(start_ns)})")
    return start_ns, end_ns


def iso(ns: int | None) -> str | None:
    return format_ns(ns)


def iso_end(ns: int | None) -> str | None:
    """An exclusive end as a time to pass back: rounded UP to the microsecond (iso's precision),
    so the end read again is not before the last nanosecond it closes (last start + 1 ns)."""
    return None if ns is None else format_ns(-(-ns // 1000) * 1000)


def ms(ns: float | None) -> float | int | None:
    """Nanoseconds as milliseconds to 3 significant digits (whole above 100 ms): what a reader
    compares, in a third of the characters."""
    if ns is None:
        return None
    value = ns / 1e6
    if abs(value) >= 100:
        return round(value)
    out = float(f"{value:.3g}")
    return int(out) if out.is_integer() else out


def sparse(obj: Any, drop: tuple[str, ...] = ()) -> Any:
    """`obj` without null and empty fields (None, "", [], {}) at any depth, nor the keys in `drop`."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in drop:
                continue
            v = sparse(v, drop)
            if v is None or v == "" or (isinstance(v, (list, dict, tuple)) and not v):
                continue
            out[k] = v
        return out
    if isinstance(obj, (list, tuple)):
        return [sparse(v, drop) for v in obj]
    return obj


def structured(payload: dict[str, Any]) -> CallToolResult:
    """The answer: structured content, and the same JSON (compact) as text for older clients."""
    return CallToolResult(
        content=[TextContent(type="text", text=limits.dumps(payload))],
        structured_content=payload,
    )


def shaped(
    payload: dict[str, Any],
    list_key: str,
    tool: str,
    *,
    pageable: bool = True,
    bind: str | None = None,
    also: tuple[str, ...] = (),
) -> CallToolResult:
    """`structured`, cut to MAX_MCP_OUTPUT_TOKENS with a page (see mcp_server/limits.py)."""
    return structured(limits.shape(payload, list_key, tool, pageable=pageable, bind=bind, also=also).payload)


def document(payload: dict[str, Any], tool: str, list_key: str = "warnings") -> CallToolResult:
    """One document (no cursor argument): cut and spilled when too long, never paged."""
    return shaped(payload, list_key, tool, pageable=False)


def paged(
    cursor: str | None,
    list_key: str,
    tool: str,
    build: Callable[[], dict[str, Any]],
    args: dict[str, Any] | None = None,
    *,
    also: tuple[str, ...] = (),
) -> CallToolResult:
    """The page a cursor names, or the first page of `build()`. `args`: the call's other arguments,
    which the cursor is bound to; limits.BadCursor when the cursor names no page, or names one of
    a call with other arguments (another SQL text, another trace)."""
    bind = limits.bind_key(args) if args is not None else None
    if cursor:
        names = ", ".join(sorted(k for k in args or {} if k != "cursor")) or "arguments"
        return structured(
            limits.resume(
                cursor, list_key, tool, bind=bind, also=also, arguments=f"arguments ({names})"
            ).payload
        )
    return shaped(build(), list_key, tool, bind=bind, also=also)
