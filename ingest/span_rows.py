"""Span rows as tuples, turned into one `SPAN_SCHEMA` record batch a chunk (Jaeger, Zipkin).

Building a batch column by column from one tuple a span (one list append in the hot loop,
one `zip` to transpose) is much cheaper than a dict a row. A row is

    (trace_id, span_id, parent_span_id, trace_state, name, kind, scope_name, scope_version,
     start_ns, end_ns, status_code, status_message, attributes, events, links, flags, warnings,
     exception_type, exception_message, source_offset, resource, attributes_dict)

with attributes / events / links as UTF-8 JSON bytes, `resource` a `Resource` (shared by the
spans of one process: its columns are filled by index), and `attributes_dict` the span's
attributes, from which the promoted columns are taken (the promotion table and value rule of
`ingest/otlp_model.py`). `duration_ns` is end_ns - start_ns
unless a reader gives it (Zipkin spans without a timestamp): see `SpanRows.set_duration`.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from ingest.normalize import host_from_resource
from ingest.otlp_model import PROMOTED_COLUMNS, promoted_value
from ingest.records import batch_from_columns
from ingest.schema import PROMOTED, SPAN_SCHEMA

__all__ = ["MAX_NS", "ROW_COLUMNS", "Resource", "SpanRows", "dumpb", "dumps", "text"]

MAX_NS = 2**63 - 1
_encode = msgspec.json.Encoder().encode

ROW_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "trace_state",
    "name",
    "kind",
    "scope_name",
    "scope_version",
    "start_ns",
    "end_ns",
    "status_code",
    "status_message",
    "attributes",
    "events",
    "links",
    "flags",
    "warnings",
    "exception_type",
    "exception_message",
    "source_offset",
)
_RES = (
    ("service_name", "service_name"),
    ("service_version", "service_version"),
    ("service_instance_id", "service_instance_id"),
    ("host", "host"),
    ("resource_attributes", "attributes"),
)


def text(v: Any) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else dumps(v)


def dumpb(v: Any) -> bytes:
    """Compact UTF-8 JSON; integers beyond 64 bits and odd types fall back to the json module."""
    try:
        return _encode(v)
    except (OverflowError, TypeError, msgspec.EncodeError):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def dumps(v: Any) -> str:
    return dumpb(v).decode()


class Resource:
    """What the spans of one process share: the resource columns, computed once."""

    __slots__ = ("service_name", "service_version", "service_instance_id", "host", "attributes")

    def __init__(self, attrs: dict[str, Any], fallback_host: str | None = None) -> None:
        self.service_name = text(attrs.get("service.name"))
        self.service_version = text(attrs.get("service.version"))
        self.service_instance_id = text(attrs.get("service.instance.id"))
        self.host = host_from_resource(attrs) or fallback_host
        self.attributes = dumps(attrs)


class SpanRows:
    """One chunk of span rows (tuples, see the module docstring), turned into columns once."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.durations: dict[int, int] = {}  # row -> duration_ns, for rows without start_ns

    def set_duration(self, duration_ns: int) -> None:
        """The duration of the row just appended, which has no start (and so no end)."""
        self.durations[len(self.rows) - 1] = duration_ns

    def __len__(self) -> int:
        return len(self.rows)

    def to_batch(self, source_id: str) -> pa.RecordBatch:
        n = len(self.rows)
        columns = list(zip(*self.rows, strict=True))
        cols: dict[str, pa.Array] = {}
        for i, name in enumerate(ROW_COLUMNS):
            if name in ("attributes", "events", "links"):
                cols[name] = pa.array(columns[i], type=pa.binary()).view(pa.string())
            else:
                cols[name] = pa.array(columns[i], type=SPAN_SCHEMA.field(name).type)
        # a chunk has few distinct processes: take() their columns by index
        index: dict[int, int] = {}
        distinct: list[Resource] = []
        for r in columns[len(ROW_COLUMNS)]:
            if id(r) not in index:
                index[id(r)] = len(distinct)
                distinct.append(r)
        take = pa.array([index[id(r)] for r in columns[len(ROW_COLUMNS)]], type=pa.int32())
        for name, attr in _RES:
            cols[name] = pa.array([getattr(r, attr) for r in distinct], type=pa.string()).take(take)
        cols["duration_ns"] = pc.subtract(cols["end_ns"], cols["start_ns"])
        if self.durations:
            durations = cols["duration_ns"].to_pylist()
            for row, ns in self.durations.items():
                durations[row] = ns
            cols["duration_ns"] = pa.array(durations, type=pa.int64())
        cols.update(_promoted_columns(columns[len(ROW_COLUMNS) + 1]))
        cols["source_id"] = pa.repeat(pa.scalar(source_id, pa.string()), n)
        return batch_from_columns(SPAN_SCHEMA, cols, n)


def _promotion_plan(keys: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    """For spans whose attributes have exactly these keys: (promoted column, attribute) pairs."""
    present = set(keys)
    return tuple(
        (ci, next(name for name in PROMOTED[col] if name in present))
        for ci, col in enumerate(PROMOTED_COLUMNS)
        if not present.isdisjoint(PROMOTED[col])
    )


_PLANS: dict[tuple[str, ...], tuple[tuple[int, str], ...]] = {}


def _promoted_columns(attrs: tuple[dict[str, Any], ...]) -> dict[str, pa.Array]:
    """The promoted columns of a chunk; for each, the first of its names that a span carries.

    Spans of one operation carry the same attribute keys, so the plan is cached by key tuple.
    A None value does not fall back to the next name (JSON null attributes are rare).
    """
    n = len(attrs)
    out: list[list[Any]] = [[None] * n for _ in PROMOTED_COLUMNS]
    used: dict[int, tuple[tuple[int, str], ...]] = {}
    plans = _PLANS
    for row, a in enumerate(attrs):
        if not a:
            continue
        keys = tuple(a)
        plan = plans.get(keys)
        if plan is None:
            if len(plans) > 20_000:
                plans.clear()
            plan = plans[keys] = _promotion_plan(keys)
        used[id(plan)] = plan
        for ci, key in plan:
            out[ci][row] = a[key]
    result: dict[str, pa.Array] = {}
    for ci in {ci for plan in used.values() for ci, _ in plan}:
        name = PROMOTED_COLUMNS[ci]
        typ = SPAN_SCHEMA.field(name).type
        try:  # the usual case: every value already has the column's type
            result[name] = pa.array(out[ci], type=typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            result[name] = pa.array([promoted_value(ci, v) for v in out[ci]], type=typ)
    return result
