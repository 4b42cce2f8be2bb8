"""`dcr trace NAME TRACE_ID [--json]`: the span tree, its critical path and warnings."""

from __future__ import annotations

import argparse
from typing import Any

from correlate.times import format_ns
from mcp_server.commands._correlate import format_ms
from mcp_server.output import emit_json, warn

NAME = "trace"
HELP = "show one trace: span tree with timings, critical path, clock-skew and orphan warnings"

# attributes worth a glance in the tree, in this order (current and older convention names)
KEY_ATTRIBUTES = (
    "http.request.method",
    "http.method",
    "http.route",
    "url.path",
    "http.target",
    "http.response.status_code",
    "http.status_code",
    "rpc.service",
    "rpc.method",
    "db.system",
    "db.statement",
    "db.query.text",
    "messaging.destination.name",
    "peer.service",
    "exception.type",
    "exception.message",
    "service.version",
)
_ATTR_CHARS = 60


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="dataset")
    p.add_argument("trace_id", metavar="TRACE_ID", help="32 hex characters (16 are zero-padded)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _key_attributes(span: Any) -> str:
    parts = []
    for key in KEY_ATTRIBUTES:
        value = span.attributes.get(key)
        if value is None or value == "":
            continue
        text = " ".join(str(value).split())
        parts.append(f"{key}={text[:_ATTR_CHARS] + ('…' if len(text) > _ATTR_CHARS else '')}")
    if span.status_message:
        parts.append(f"status.message={span.status_message[:_ATTR_CHARS]}")
    return "  ".join(parts)


def _render(view: Any) -> None:
    total = view.end_ns - view.start_ns
    print(
        f"trace {view.trace_id}: {len(view.spans)} span{'' if len(view.spans) == 1 else 's'}, {format_ms(total)}, started {format_ns(view.start_ns)}"
    )
    print("  * on the critical path; offset from the trace start; self = time not spent in children")
    print(f"  {'':1} {'offset':>12} {'duration':>12} {'self':>12} {'status':<6} span")
    for s in view.spans:
        mark = "*" if s.on_critical_path else " "
        status = {"ERROR": "ERROR", "OK": "ok"}.get(s.status_code, "-")
        name = f"{'  ' * s.depth}{s.service}: {s.operation}"
        attrs = _key_attributes(s)
        print(
            f"  {mark} {'+' + format_ms(s.start_ns - view.start_ns):>12} {format_ms(s.duration_ns):>12} "
            f"{format_ms(s.self_time_ns):>12} {status:<6} {name}" + (f"  [{attrs}]" if attrs else "")
        )
    print("critical path:")
    for seg in view.critical_path:
        print(
            f"  {'+' + format_ms(seg.start_ns - view.start_ns):>12} .. {'+' + format_ms(seg.end_ns - view.start_ns):>12}"
            f"  {format_ms(seg.end_ns - seg.start_ns):>12}  {seg.service}: {seg.operation} ({seg.span_id})"
        )


def _as_json(view: Any) -> dict[str, Any]:
    data = view.to_dict()
    data["duration_ns"] = view.end_ns - view.start_ns
    data["span_count"] = len(view.spans)
    return data


def run(args: argparse.Namespace) -> int:
    import correlate

    with correlate.open_dataset(args.name) as ds:
        view = ds.trace(args.trace_id)
    if args.json:
        emit_json(_as_json(view))
    else:
        _render(view)
    for w in view.warnings:
        warn(w)
    return 0
