"""The fast tiers of the OTLP/JSON reader: trusting per record, checking per column.

    block ──native scan (ingest/_otlpscan.c)──► span and log columns  the common shape, in C
      │ lines it leaves (Jaeger's API v3 wrapper, ids not lowercase hex, enums or counts
      │ written as strings, NaN doubles, repeated keys, …: see the C file's header)
      ▼
    line ──one typed msgspec decode──► records ──one tuple a row──► columns ──► checks (RE2)
      │ any error                                                      │ rows failing
      ▼                                                                ▼
    careful path (otlp_model.Sink) for that line       the rows' lines go the careful path

The native tier writes exactly what the msgspec tier writes for the lines it takes
(tests/test_ingest_native.py); it is built by pip from the repository. Without it (no
compiler) or with DCR_NATIVE=0, the msgspec tier takes every line.

Per record this does only what cannot be done column-wise (AnyValue -> JSON, string
integers -> int); ids are validated as whole columns. A line takes the careful path when it
does not decode, or when any of its rows fails a column check, so rejects are always
verbatim and worded by the careful path.
"""

from __future__ import annotations

import gc
import os
from array import array
from itertools import accumulate
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest import arrays
from ingest import otlp_model as om
from ingest.handoff import LOG_WIRE_SCHEMA, SPAN_WIRE_SCHEMA, to_wire
from ingest.records import Chunk, SourceInfo, batch_from_columns
from ingest.schema import LOG_SCHEMA, PROMOTED, SPAN_KINDS, SPAN_SCHEMA, STATUS_CODES

# `import ingest._otlpscan as`, not `from ingest import`: mypy does not find a submodule by the latter
# inside the package's import cycle (ingest/__init__ imports pipeline, which imports this module)
try:
    import ingest._otlpscan as _otlpscan
except ImportError:  # built without a C compiler: the Python tiers take every line
    _otlpscan = None  # type: ignore[assignment]  # None stands for the module not built: see native_available

__all__ = ["decode_lines_fast", "native_available", "NATIVE_ENV"]

NATIVE_ENV = "DCR_NATIVE"  # "0": skip the native tier (comparisons and benchmarks)


def native_available() -> bool:
    """Whether the native tier is built and not switched off."""
    return _otlpscan is not None and os.environ.get(NATIVE_ENV, "1") != "0"


# ---- the one-call shapes (records typed, unlike the careful path's raw records) -----------


# resource and scope stay raw JSON: they repeat line after line, so their context (service,
# host, attribute texts) is decoded once per distinct text (`_context`), not once per group
_NULL = msgspec.Raw(b"null")  # absent, or written as null: both mean none


class _FScopeSpans(msgspec.Struct, gc=False):
    scope: msgspec.Raw = _NULL
    instrumentationLibrary: msgspec.Raw = _NULL
    spans: list[om.Span] = []


class _FScopeLogs(msgspec.Struct, gc=False):
    scope: msgspec.Raw = _NULL
    instrumentationLibrary: msgspec.Raw = _NULL
    logRecords: list[om.LogRecord] = []


class _FResourceSpans(msgspec.Struct, gc=False):
    resource: msgspec.Raw = _NULL
    scopeSpans: list[_FScopeSpans] = []
    instrumentationLibrarySpans: list[_FScopeSpans] = []


class _FResourceLogs(msgspec.Struct, gc=False):
    resource: msgspec.Raw = _NULL
    scopeLogs: list[_FScopeLogs] = []
    instrumentationLibraryLogs: list[_FScopeLogs] = []


class _FResult(msgspec.Struct, gc=False):
    resourceSpans: list[_FResourceSpans] = []
    resourceLogs: list[_FResourceLogs] = []


class _FDoc(msgspec.Struct, gc=False):
    resourceSpans: list[_FResourceSpans] = []
    resourceLogs: list[_FResourceLogs] = []
    batches: list[_FResourceSpans] = []
    result: _FResult | None = None


_FDOC = msgspec.json.Decoder(_FDoc)
_RESOURCE = msgspec.json.Decoder(om.Resource | None)
_SCOPE = msgspec.json.Decoder(om.Scope | None)
_CONTEXTS: dict[tuple[bytes, bytes, bytes], om.Context] = {}
_MAX_CONTEXTS = 4096


def _context(
    resource: msgspec.Raw | bytes | memoryview,
    scope: msgspec.Raw | bytes | memoryview,
    library: msgspec.Raw | bytes | memoryview,
) -> om.Context:
    """The context of a (resource, scope) group, as the careful path builds it from the same
    JSON (`scope or instrumentationLibrary`: a present scope object wins, even an empty one)."""
    key = (bytes(resource), bytes(scope), bytes(library))
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        sc = _SCOPE.decode(scope)
        if sc is None:
            sc = _SCOPE.decode(library)
        ctx = om.Context(_RESOURCE.decode(resource), sc)
        if len(_CONTEXTS) >= _MAX_CONTEXTS:
            _CONTEXTS.clear()
        _CONTEXTS[key] = ctx
    return ctx


_NO_CONTEXT = om.Context(None, None)  # stands in for a context msgspec refused (its rows are dropped)
_encode = om.encode
_value = om.any_value
_MAX_I64 = om.MAX_I64
# looked up with a kind or code as decoded (int or str): a name misses, and the careful path takes the span
_KIND: dict[Any, str] = om.SPAN_KIND_BY_NUMBER
_STATUS: dict[Any, str] = om.STATUS_CODE_BY_NUMBER
_ZERO16 = om.ZERO_SPAN_ID


class _Surprise(Exception):
    """Something the fast path does not handle: the line goes the careful way."""


def _t(v: Any) -> int:
    if v.__class__ is not int:
        if v is None or v.__class__ is not str:
            raise _Surprise
        v = int(v)  # ValueError -> careful path
    if not 0 <= v <= _MAX_I64:
        raise _Surprise
    return v


def _attrs_json(kvs: list[om.KeyValue]) -> bytes:
    if not kvs:
        return b"{}"
    d = {}
    for kv in kvs:
        v = kv.value
        if v is not None and v.stringValue is not None:
            d[kv.key] = v.stringValue
        else:
            d[kv.key] = _value(v)
    return _encode(d)


def _events(events: list[om.Event]) -> tuple[bytes, str | None, str | None]:
    """The events column's JSON and the span's exception_type / exception_message."""
    out = [
        {
            "time_ns": _t(ev.timeUnixNano),
            "name": ev.name,
            "attributes": om.attributes(ev.attributes),
            "dropped_attributes_count": ev.droppedAttributesCount,
        }
        for ev in events
    ]
    exc_type, exc_msg = om.first_exception(out) or (None, None)
    return _encode(out), exc_type, exc_msg


def _links(links: list[om.Link]) -> bytes:
    return _encode(
        [
            {
                "trace_id": om.trace_id_hex(ln.traceId),
                "span_id": om.span_id_hex(ln.spanId),
                "trace_state": ln.traceState,
                "attributes": om.attributes(ln.attributes),
                "dropped_attributes_count": ln.droppedAttributesCount,
                "flags": ln.flags,
            }
            for ln in links
        ]
    )


# ---- spans --------------------------------------------------------------------------------

# row tuple layout (the order _FastSpans.add_group builds); the rest of a span's own columns
# are almost always empty, so only spans that have one keep a `_RARE` tuple (with their row)
_ROW = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "status_code",
    "attributes",
)
_RARE = (
    "trace_state",
    "status_message",
    "events",
    "links",
    "flags",
    "dropped_attributes_count",
    "dropped_events_count",
    "dropped_links_count",
    "exception_type",
    "exception_message",
    "warnings",
)
_JSON_COLS = frozenset({"attributes", "events", "links"})
_CTX = om.SPAN_CONTEXT_COLUMNS
_W_END = om.encode([om.WARN_END_BEFORE_START]).decode()


def _binary_column(values: Any) -> pa.Array:
    """bytes objects (valid UTF-8: msgspec wrote them) -> a string array, built from one join
    (much cheaper than pa.array)."""
    data = b"".join(values)
    if len(data) < 2**31:
        offsets = array("i", [0])
        offsets.extend(accumulate(map(len, values)))
        return pa.Array.from_buffers(
            pa.string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
    offsets = array("q", [0])
    offsets.extend(accumulate(map(len, values)))
    return pa.Array.from_buffers(
        pa.large_string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _context_index(runs: list[tuple[om.Context, int]]) -> tuple[list[om.Context], pa.Array]:
    """The distinct contexts of `runs` (in order of first use: `_context` hands out one object
    per resource and scope) and each row's index among them. A block holds hundreds of groups
    but a few dozen contexts: the per-name work below is done once a context, not once a group."""
    seen: dict[int, int] = {}
    distinct: list[om.Context] = []
    ids = []
    for ctx, _ in runs:
        i = seen.get(id(ctx))
        if i is None:
            i = seen[id(ctx)] = len(distinct)
            distinct.append(ctx)
        ids.append(i)
    rows = np.repeat(np.array(ids, np.int32), [count for _, count in runs])
    return distinct, arrays.numbers(rows)


def _context_columns(runs: list[tuple[om.Context, int]], names: tuple[str, ...]) -> dict[str, pa.Array]:
    """Columns shared by runs of rows: one value a context, repeated by `take`."""
    distinct, index = _context_index(runs)
    return {name: arrays.texts([getattr(ctx, name) for ctx in distinct]).take(index) for name in names}


def _context_dict_columns(runs: list[tuple[om.Context, int]], names: tuple[str, ...]) -> dict[str, pa.Array]:
    """`_context_columns` dictionary-encoded (SPAN_WIRE_SCHEMA): the values are not repeated."""
    distinct, index = _context_index(runs)
    out = {}
    for name in names:
        enc = arrays.texts([getattr(ctx, name) for ctx in distinct]).dictionary_encode()
        # safe=False: the indices come from the dictionary's own encoding, no need to check them
        out[name] = pa.DictionaryArray.from_arrays(enc.indices.take(index), enc.dictionary, safe=False)
    return out


def _run_offsets(runs: list[tuple[int, int]], n: int) -> pa.Array:
    """source_offset: one line number a run of rows."""
    lines = np.repeat(np.array([line for line, _ in runs], np.int64), [count for _, count in runs])
    return arrays.int64s(lines)


def _rare_columns(rare: list[tuple], n: int) -> dict[str, pa.Array]:
    """The `_RARE` columns: defaults everywhere but the rows listed (row first in each tuple)."""
    rows = np.array([r[0] for r in rare], np.int64)
    cols: dict[str, pa.Array] = {}
    for i, name in enumerate(_RARE, start=1):
        typ = SPAN_SCHEMA.field(name).type
        vals = [r[i] for r in rare]
        if pa.types.is_integer(typ):
            full = np.zeros(n, np.int64)
            full[rows] = vals
            cols[name] = pa.array(full).cast(typ)
        elif name in _JSON_COLS:
            full_json: list[Any] = [None] * n
            for r, v in zip(rows.tolist(), vals, strict=True):
                full_json[r] = v
            cols[name] = _json_column(full_json, _EMPTY_JSON[name])
        else:
            full_text: list[Any] = [None] * n
            for r, v in zip(rows.tolist(), vals, strict=True):
                full_text[r] = v
            cols[name] = pa.array(full_text, type=typ)
    return cols


_I64 = pa.int64()
_I32 = pa.int32()
_STR = pa.string()


def _typed(ci: int, values: list[Any], typ: pa.DataType) -> pa.Array:
    """Attribute values as a promoted column's type (as `otlp_model.promoted_value` does).

    Arrow's own type inference is the check: all ints within int64 infer int64, all str infer
    string; anything else (bools, floats, mixtures, JSON values, huge ints) goes value by value."""
    try:
        arr = pa.array(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        arr = None
    if arr is not None:
        if ci in om.INT_PROMOTED_INDEXES and arr.type == _I64:
            fits = pc.and_(pc.greater_equal(arr, -(2**31)), pc.less(arr, 2**31))
            return pc.if_else(fits, arr, pa.scalar(None, _I64)).cast(typ)
        if ci not in om.INT_PROMOTED_INDEXES and arr.type == _STR:
            return arr
    return pa.array([om.promoted_value(ci, v) for v in values], typ)


_EMPTY_JSON = {"attributes": "{}", "events": "[]", "links": "[]"}


def _json_column(values: Any, empty: str) -> pa.Array:
    """JSON texts (bytes, None meaning `empty`) -> a string column."""
    present = [v for v in values if v is not None]
    if not present:
        return pa.repeat(pa.scalar(empty, pa.string()), len(values))
    if len(present) == len(values):
        return _binary_column(values).cast(pa.string())
    return pc.fill_null(pa.array(values, pa.binary()).cast(pa.string()), empty)


def _span_batch(
    cols: dict[str, pa.Array],
    ctx_runs: list[tuple[om.Context, int]],
    line_runs: list[tuple[int, int]],
    source_id: str,
    n: int,
    compact: bool,
) -> pa.RecordBatch:
    """A span batch from its own columns: time, provenance and group columns added (both tiers)."""
    cols["duration_ns"] = pc.subtract(cols["end_ns"], cols["start_ns"])
    cols["source_offset"] = _run_offsets(line_runs, n)
    if compact:
        for name in ("kind", "status_code"):  # the msgspec tier's are texts
            if not pa.types.is_dictionary(cols[name].type):
                cols[name] = cols[name].dictionary_encode()
        cols.update(_context_dict_columns(ctx_runs, _CTX))
        cols["source_id"] = pa.DictionaryArray.from_arrays(
            arrays.numbers(np.zeros(n, np.int32)), arrays.texts([source_id]), safe=False
        )
        return batch_from_columns(SPAN_WIRE_SCHEMA, cols, n)
    cols.update(_context_columns(ctx_runs, _CTX))
    cols["source_id"] = arrays.texts([source_id]).take(arrays.numbers(np.zeros(n, np.int32)))
    return batch_from_columns(SPAN_SCHEMA, cols, n)


def _log_batch(
    cols: dict[str, pa.Array],
    ctx_runs: list[tuple[om.Context, int]],
    source_id: str,
    n: int,
    compact: bool,
) -> pa.RecordBatch:
    """A log batch from its own columns (source_offset included): group columns added (both tiers);
    `compact`: in LOG_WIRE_SCHEMA."""
    if compact:
        cols.update(_context_dict_columns(ctx_runs, _LCTX))
        cols["source_id"] = pa.DictionaryArray.from_arrays(
            arrays.numbers(np.zeros(n, np.int32)), arrays.texts([source_id]), safe=False
        )
        return batch_from_columns(LOG_WIRE_SCHEMA, cols, n)
    cols.update(_context_columns(ctx_runs, _LCTX))
    cols["source_id"] = arrays.texts([source_id]).take(arrays.numbers(np.zeros(n, np.int32)))
    return batch_from_columns(LOG_SCHEMA, cols, n)


class _FastSpans:
    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.rare: list[tuple] = []  # (row, *_RARE) of the spans that have any of those
        self.ctx_runs: list[tuple[om.Context, int]] = []
        self.line_runs: list[tuple[int, int]] = []  # (line number, rows)
        # promoted attributes: per attribute name, the rows that have it and their values
        self.promo: dict[str, tuple[list[int], list[Any]]] = {
            name: ([], []) for name in om.PROMOTED_BY_ATTRIBUTE
        }

    def mark(self) -> tuple[int, int, int, dict[str, int]]:
        return (
            len(self.rows),
            len(self.ctx_runs),
            len(self.rare),
            {k: len(v[0]) for k, v in self.promo.items() if v[0]},
        )

    def undo(self, mark: tuple[int, int, int, dict[str, int]]) -> None:
        del self.rows[mark[0] :]
        del self.ctx_runs[mark[1] :]
        del self.line_runs[mark[1] :]
        del self.rare[mark[2] :]
        for k, (rows, vals) in self.promo.items():
            del rows[mark[3].get(k, 0) :]
            del vals[mark[3].get(k, 0) :]

    def add_group(self, ctx: om.Context, spans: list[om.Span], line_no: int) -> None:
        rows = self.rows
        append = rows.append
        rare = self.rare
        promo_get = self.promo.get
        kinds, statuses, value, encode = _KIND, _STATUS, _value, _encode
        # the values as decoded: a None or odd one raises TypeError (or _Surprise) below, and the careful
        # path takes the line (see _FAST_ERRORS)
        start: Any
        end: Any
        code: str | None
        msg: str | None
        v: Any
        x: Any
        events: bytes | None
        exc_type: str | None
        exc_msg: str | None
        for sp in spans:
            start = sp.startTimeUnixNano
            if start.__class__ is str:
                start = int(start)
            end = sp.endTimeUnixNano
            if end is None:
                end = start
            elif end.__class__ is str:
                end = int(end)
            if not (0 <= start <= _MAX_I64 and 0 <= end <= _MAX_I64):
                raise _Surprise
            kind = kinds.get(sp.kind)
            counts = sp.flags | sp.droppedAttributesCount | sp.droppedEventsCount | sp.droppedLinksCount
            if kind is None or counts >> 31:
                raise _Surprise  # an odd kind, or a count out of its column's range (or negative)
            st = sp.status
            if st is None:
                code, msg = "UNSET", None
            else:
                code = statuses.get(st.code)
                if code is None:
                    raise _Surprise
                msg = st.message or None
            row = len(rows)
            kvs = sp.attributes
            if kvs:
                d = {}
                for kv in kvs:
                    key = kv.key
                    v = kv.value
                    if v is not None:
                        x = v.stringValue
                        if x is None:
                            x = v.intValue
                            if x is None:
                                x = value(v)
                            elif x.__class__ is str:
                                x = int(x)  # ValueError: the careful path words the reject
                        v = x
                    d[key] = v
                    hits = promo_get(key)
                    if hits is not None:
                        hits[0].append(row)
                        hits[1].append(v)
                attrs = encode(d)
            else:
                attrs = None  # "{}", filled column-wise
            if counts or msg is not None or sp.events or sp.links or sp.traceState or end < start:
                if sp.events:
                    events, exc_type, exc_msg = _events(sp.events)
                else:
                    events = exc_type = exc_msg = None  # "[]", filled column-wise
                rare.append(
                    (
                        row,
                        sp.traceState or None,
                        msg,
                        events,
                        _links(sp.links) if sp.links else None,
                        sp.flags,
                        sp.droppedAttributesCount,
                        sp.droppedEventsCount,
                        sp.droppedLinksCount,
                        exc_type,
                        exc_msg,
                        _W_END if end < start else None,
                    )
                )
            parent = sp.parentSpanId
            append(
                (
                    sp.traceId,
                    sp.spanId,
                    None if not parent or parent == _ZERO16 else parent,
                    sp.name,
                    kind,
                    start,
                    end,
                    code,
                    attrs,
                )
            )
        self.ctx_runs.append((ctx, len(spans)))
        self.line_runs.append((line_no, len(spans)))

    def _promoted(self, n: int) -> dict[str, pa.Array]:
        """The promoted columns: per column, the values of its attribute names, preferred last."""
        out = {}
        for ci, col in enumerate(om.PROMOTED_COLUMNS):
            typ = SPAN_SCHEMA.field(col).type
            names = [name for name in reversed(PROMOTED[col]) if self.promo[name][0]]
            if not names:
                out[col] = pa.nulls(n, typ)
                continue
            index = np.full(n, -1, np.int64)
            values: list[Any] = []
            for name in names:  # later names overwrite earlier ones: the preferred name wins
                rows, vals = self.promo[name]
                if None in vals:  # an empty AnyValue does not count as present
                    pairs = [(r, v) for r, v in zip(rows, vals, strict=True) if v is not None]
                    rows, vals = [r for r, _ in pairs], [v for _, v in pairs]
                index[np.array(rows, np.int64)] = np.arange(len(values), len(values) + len(vals))
                values.extend(vals)
            out[col] = _typed(ci, values, typ).take(pa.array(index, mask=index < 0))
        return out

    def to_batch(self, source_id: str, compact: bool = False) -> pa.RecordBatch | None:
        n = len(self.rows)
        if not n:
            return None
        cols: dict[str, pa.Array] = {}
        for name, values in zip(_ROW, zip(*self.rows, strict=True), strict=True):
            if name in _JSON_COLS:
                cols[name] = _json_column(values, _EMPTY_JSON[name])
            else:
                cols[name] = pa.array(values, type=SPAN_SCHEMA.field(name).type)
        self.rows = []
        cols.update(_rare_columns(self.rare, n))
        cols.update(self._promoted(n))
        return _span_batch(cols, self.ctx_runs, self.line_runs, source_id, n, compact)


def _bad_span_rows(batch: pa.RecordBatch) -> pa.Array | None:
    """Mask of rows whose ids are not canonical (lowercase hex, not all zeros), or None."""
    tid, sid, pid = batch.column("trace_id"), batch.column("span_id"), batch.column("parent_span_id")
    ok = pc.and_(pc.match_substring_regex(tid, "^[0-9a-f]{32}$"), pc.not_equal(tid, "0" * 32))
    ok = pc.and_(ok, pc.and_(pc.match_substring_regex(sid, "^[0-9a-f]{16}$"), pc.not_equal(sid, _ZERO16)))
    ok = pc.and_(ok, pc.or_kleene(pc.is_null(pid), pc.match_substring_regex(pid, "^[0-9a-f]{16}$")))
    ok = pc.fill_null(ok, False)
    if pc.all(ok).as_py():
        return None
    return pc.invert(ok)


# ---- logs ---------------------------------------------------------------------------------

_LROW = (
    "time_ns",
    "observed_time_ns",
    "severity_number",
    "severity_text",
    "body",
    "trace_id",
    "span_id",
    "event_name",
    "attributes",
    "flags",
    "dropped_attributes_count",
    "source_offset",
)
_LCTX = om.LOG_CONTEXT_COLUMNS


class _FastLogs:
    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.ctx_runs: list[tuple[om.Context, int]] = []

    def mark(self) -> tuple[int, int]:
        return len(self.rows), len(self.ctx_runs)

    def undo(self, mark: tuple[int, int]) -> None:
        del self.rows[mark[0] :]
        del self.ctx_runs[mark[1] :]

    def add_group(self, ctx: om.Context, records: list[om.LogRecord], line_no: int) -> None:
        append = self.rows.append
        for lr in records:
            t = _t(lr.timeUnixNano)
            ot = _t(lr.observedTimeUnixNano)
            sev = lr.severityNumber
            if sev.__class__ is not int or (sev | lr.flags | lr.droppedAttributesCount) >> 31:
                raise _Surprise
            av = lr.body
            if av is not None and av.stringValue is not None:
                body = av.stringValue
            else:
                body = _value(av)
                if body is not None and not isinstance(body, str):
                    body = _encode(body).decode()
            append(
                (
                    t or ot or None,
                    ot or None,
                    sev,
                    lr.severityText or None,
                    body,
                    lr.traceId or None,
                    lr.spanId or None,
                    lr.eventName or None,
                    _attrs_json(lr.attributes).decode(),
                    lr.flags,
                    lr.droppedAttributesCount,
                    line_no,
                )
            )
        self.ctx_runs.append((ctx, len(records)))

    def to_batch(self, source_id: str, compact: bool = False) -> pa.RecordBatch | None:
        n = len(self.rows)
        if not n:
            return None
        cols: dict[str, pa.Array] = {}
        for name, values in zip(_LROW, zip(*self.rows, strict=True), strict=True):
            cols[name] = pa.array(values, type=LOG_SCHEMA.field(name).type)
        self.rows = []
        return _log_batch(cols, self.ctx_runs, source_id, n, compact)


def _bad_log_rows(batch: pa.RecordBatch) -> pa.Array | None:
    tid, sid = batch.column("trace_id"), batch.column("span_id")
    ok = pc.or_kleene(
        pc.is_null(tid), pc.and_(pc.match_substring_regex(tid, "^[0-9a-f]{32}$"), pc.not_equal(tid, "0" * 32))
    )
    ok = pc.and_(
        ok,
        pc.or_kleene(
            pc.is_null(sid),
            pc.and_(pc.match_substring_regex(sid, "^[0-9a-f]{16}$"), pc.not_equal(sid, _ZERO16)),
        ),
    )
    ok = pc.fill_null(ok, False)
    if pc.all(ok).as_py():
        return None
    return pc.invert(ok)


# ---- the native tier -----------------------------------------------------------------------

# which promoted columns are integers, and every attribute name that fills one: (name, column, priority)
_NATIVE_PROMOTED = (
    tuple(ci in om.INT_PROMOTED_INDEXES for ci in range(len(om.PROMOTED_COLUMNS))),
    tuple((name, ci, pri) for name, (ci, pri) in om.PROMOTED_BY_ATTRIBUTE.items()),
)
_KIND_NAMES = arrays.texts(SPAN_KINDS)
_STATUS_NAMES = arrays.texts(STATUS_CODES)


def _native_strings(t: tuple[bytes | None, bytes, bytes], n: int) -> pa.Array:
    bitmap, offsets, data = t
    return pa.Array.from_buffers(
        _STR, n, [None if bitmap is None else pa.py_buffer(bitmap), pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _native_ints(t: tuple[bytes | None, bytes], n: int, typ: pa.DataType) -> pa.Array:
    bitmap, values = t
    arr = pa.Array.from_buffers(
        _I64, n, [None if bitmap is None else pa.py_buffer(bitmap), pa.py_buffer(values)]
    )
    return arr if typ == _I64 else arr.cast(typ)  # values fit: the scan checked the ranges


def _line_bounds(data: bytes | memoryview, at: int) -> tuple[int, int]:
    data = bytes(data) if isinstance(data, memoryview) else data  # a piece of a long line (rare)
    end = data.find(b"\n", at)
    return data.rfind(b"\n", 0, at) + 1, len(data) if end < 0 else end


def _native_contexts(
    data: bytes | memoryview, groups: list[tuple], shift: int, refused: dict[int, tuple[int, int]]
) -> tuple[list[tuple[om.Context, int]], list[tuple[int, int]]]:
    """Per group of the scan: its context and its line (shifted), as runs of rows. A resource or
    scope msgspec refuses puts its line in `refused` (line -> bounds): that line goes the Python way."""
    ctx_runs: list[tuple[om.Context, int]] = []
    line_runs: list[tuple[int, int]] = []
    for line, r_off, r_len, s_off, s_len, l_off, l_len, count, _ in groups:
        resource = data[r_off : r_off + r_len] if r_off >= 0 else _NULL
        scope = data[s_off : s_off + s_len] if s_off >= 0 else _NULL
        library = data[l_off : l_off + l_len] if l_off >= 0 else _NULL
        try:
            ctx = _context(resource, scope, library)
        except _FAST_ERRORS:
            ctx = _NO_CONTEXT
            refused[line + shift] = _line_bounds(data, max(r_off, s_off, l_off))
        ctx_runs.append((ctx, count))
        line_runs.append((line + shift, count))
    return ctx_runs, line_runs


def _native_span_batch(
    n: int,
    ctx_runs: list,
    line_runs: list,
    strings: dict,
    ints: dict,
    pstrings: dict,
    pints: dict,
    source: SourceInfo,
    compact: bool,
) -> pa.RecordBatch:
    cols: dict[str, pa.Array] = {name: _native_strings(t, n) for name, t in strings.items()}
    for name, t in ints.items():
        if name in ("kind", "status_code"):
            names = _KIND_NAMES if name == "kind" else _STATUS_NAMES
            codes = _native_ints(t, n, _I32)
            cols[name] = pa.DictionaryArray.from_arrays(codes, names) if compact else names.take(codes)
        else:
            cols[name] = _native_ints(t, n, SPAN_SCHEMA.field(name).type)
    for ci, t in pstrings.items():
        cols[om.PROMOTED_COLUMNS[ci]] = _native_strings(t, n)
    for ci, t in pints.items():
        col = om.PROMOTED_COLUMNS[ci]
        cols[col] = _native_ints(t, n, SPAN_SCHEMA.field(col).type)
    return _span_batch(cols, ctx_runs, line_runs, source.source_id, n, compact)


def _native_log_batch(
    n: int, ctx_runs: list, line_runs: list, strings: dict, ints: dict, source: SourceInfo, compact: bool
) -> pa.RecordBatch:
    cols: dict[str, pa.Array] = {name: _native_strings(t, n) for name, t in strings.items()}
    for name, t in ints.items():
        cols[name] = _native_ints(t, n, LOG_SCHEMA.field(name).type)
    cols["source_offset"] = _run_offsets(line_runs, n)
    return _log_batch(cols, ctx_runs, source.source_id, n, compact)


def _native_chunk(
    data: bytes, first_line: int, source: SourceInfo, compact: bool
) -> tuple[pa.RecordBatch | None, pa.RecordBatch | None, list[tuple[int, int, int]], int]:
    """The native scan of a block: its span and log batches, the lines it left to the Python
    tiers ((line number, start, end)), and the number of lines in the block."""
    spans, logs, left, nlines, _ = _native(data, first_line, source, compact)
    return spans, logs, left, nlines


def scan_piece(
    data: bytes | memoryview, line_no: int, source: SourceInfo, *, compact: bool
) -> tuple[pa.RecordBatch | None, pa.RecordBatch | None, list[int]] | None:
    """The native scan of one document, a piece of a long line (`ingest/otlp_ranges.py`), its
    rows numbered `line_no`: its span and log batches and where each of its (resource, scope)
    groups' records arrays end (offsets into `data`); None when the scan leaves any of it to
    the Python tiers."""
    spans, logs, left, _, ends = _native(data, line_no, source, compact)
    return None if left else (spans, logs, ends)


def _native(
    data: bytes | memoryview, first_line: int, source: SourceInfo, compact: bool
) -> tuple[pa.RecordBatch | None, pa.RecordBatch | None, list[tuple[int, int, int]], int, list[int]]:
    (
        n,
        nlines,
        groups,
        declined,
        strings,
        ints,
        pstrings,
        pints,
        nlogs,
        log_groups,
        log_strings,
        log_ints,
    ) = _otlpscan.scan(data, _NATIVE_PROMOTED)
    shift = first_line - 1
    left = [(line + shift, start, end) for line, start, end in declined]
    refused: dict[int, tuple[int, int]] = {}
    spans = logs = None
    if n:
        ctx_runs, line_runs = _native_contexts(data, groups, shift, refused)
        spans = _native_span_batch(n, ctx_runs, line_runs, strings, ints, pstrings, pints, source, compact)
    if nlogs:
        ctx_runs, line_runs = _native_contexts(data, log_groups, shift, refused)
        logs = _native_log_batch(nlogs, ctx_runs, line_runs, log_strings, log_ints, source, compact)
    if refused:  # a line lands whole from one tier: its rows of both kinds go
        spans = _drop_lines(spans, None, set(refused))
        logs = _drop_lines(logs, None, set(refused))
        left.extend((line, start, end) for line, (start, end) in refused.items())
        left.sort()
    return spans, logs, left, nlines, [g[8] for g in groups] + [g[8] for g in log_groups]


# ---- a block of lines ---------------------------------------------------------------------


def _take(doc: _FDoc, spans: _FastSpans, logs: _FastLogs, line_no: int) -> None:
    rs_lists = [doc.resourceSpans, doc.batches]
    rl_lists = [doc.resourceLogs]
    if doc.result is not None:
        rs_lists.append(doc.result.resourceSpans)
        rl_lists.append(doc.result.resourceLogs)
    for rss in rs_lists:
        for rs in rss:
            for ss in rs.scopeSpans or rs.instrumentationLibrarySpans:
                if ss.spans:
                    ctx = _context(rs.resource, ss.scope, ss.instrumentationLibrary)
                    spans.add_group(ctx, ss.spans, line_no)
    for rls in rl_lists:
        for rl in rls:
            for sl in rl.scopeLogs or rl.instrumentationLibraryLogs:
                if sl.logRecords:
                    ctx = _context(rl.resource, sl.scope, sl.instrumentationLibrary)
                    logs.add_group(ctx, sl.logRecords, line_no)


_FAST_ERRORS = (
    _Surprise,
    msgspec.ValidationError,
    msgspec.DecodeError,
    ValueError,
    UnicodeDecodeError,
    RecursionError,
    TypeError,
    OverflowError,
)


def _drop_lines(batch: pa.RecordBatch | None, bad: pa.Array | None, lines: set[int]) -> pa.RecordBatch | None:
    """`batch` without the rows of lines that must go the careful path (adds to `lines`)."""
    if batch is None:
        return None
    if bad is not None:
        lines.update(pc.unique(pc.filter(batch.column("source_offset"), bad)).to_pylist())
    if not lines:
        return batch
    keep = pc.invert(pc.is_in(batch.column("source_offset"), pa.array(sorted(lines), pa.int64())))
    return batch.filter(keep)


def _concat(a: pa.RecordBatch | None, b: pa.RecordBatch | None) -> pa.RecordBatch | None:
    if a is None or not a.num_rows:
        return b
    if b is None or not b.num_rows:
        return a
    return pa.concat_batches([a, b])


def decode_lines_fast(
    data: bytes, first_line: int, source: SourceInfo, *, compact: bool = False
) -> tuple[Chunk, int]:
    """Like `otlp_json.decode_lines` (same rows, same rejects), faster on clean input.

    compact: spans in `handoff.SPAN_WIRE_SCHEMA` (the same values, group columns dictionary-encoded)."""
    was_enabled = gc.isenabled()
    gc.disable()  # millions of small acyclic objects: collections would only cost time
    try:
        return _decode(data, first_line, source, compact)
    finally:
        if was_enabled:
            gc.enable()


def _lines(data: bytes, first_line: int) -> tuple[list[tuple[int, int, int]], int]:
    """(line number, start, end) of every line that is not blank, and the number of lines."""
    out = []
    line_no = first_line - 1
    pos, size = 0, len(data)
    while pos < size:
        nl = data.find(b"\n", pos)
        end = size if nl < 0 else nl
        line_no += 1
        start, pos = pos, end + 1
        if end - start <= 2 and not data[start:end].strip():
            continue
        out.append((line_no, start, end))
    return out, line_no - first_line + 1


def _utf8(data: bytes, start: int, end: int) -> bool:
    """Whether data[start:end] is valid UTF-8."""
    try:
        data[start:end].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode(data: bytes, first_line: int, source: SourceInfo, compact: bool) -> tuple[Chunk, int]:
    native = native_logs = None
    if native_available():
        native, native_logs, todo, nlines = _native_chunk(data, first_line, source, compact)
    else:
        todo, nlines = _lines(data, first_line)
    spans, logs = _FastSpans(), _FastLogs()
    careful: dict[int, tuple[int, int]] = {}  # line number -> (start, end) in data
    where: dict[int, tuple[int, int]] = {}
    view = memoryview(data)
    # msgspec checks UTF-8 only in what it decodes, so a line whose bad bytes sit in a part the fast
    # structs skip (a resource without records) would pass without the reject the careful path gives
    unchecked = bool(todo) and not data.isascii()
    for line_no, start, end in todo:
        where[line_no] = (start, end)
        if unchecked and not _utf8(data, start, end):
            careful[line_no] = (start, end)
            continue
        smark, lmark = spans.mark(), logs.mark()
        try:
            _take(_FDOC.decode(view[start:end]), spans, logs, line_no)
        except _FAST_ERRORS:
            spans.undo(smark)
            logs.undo(lmark)
            careful[line_no] = (start, end)
    sid = source.source_id
    redo: set[int] = set(careful)
    span_batch = spans.to_batch(sid, compact)
    log_batch = logs.to_batch(sid, compact)
    extra: set[int] = set()
    span_batch = _drop_lines(
        span_batch, _bad_span_rows(span_batch) if span_batch is not None else None, extra
    )
    log_batch = _drop_lines(log_batch, _bad_log_rows(log_batch) if log_batch is not None else None, extra)
    if extra:  # a line must land whole from one path: drop its fast rows everywhere, redo it
        span_batch = _drop_lines(span_batch, None, set(extra))
        log_batch = _drop_lines(log_batch, None, set(extra))
        redo |= extra
    span_batch = _concat(native, span_batch)
    log_batch = _concat(native_logs, log_batch)
    if not redo:
        return Chunk(spans=span_batch, logs=log_batch), nlines
    sink = om.Sink(source, "line")
    for ln in sorted(redo):
        start, end = where[ln]
        sink.take_line(view[start:end], ln)
    slow = sink.chunk()
    slow_spans = to_wire(slow.spans) if compact and slow.spans is not None else slow.spans
    slow_logs = to_wire(slow.logs) if compact and slow.logs is not None else slow.logs
    return Chunk(
        spans=_concat(span_batch, slow_spans), logs=_concat(log_batch, slow_logs), rejects=slow.rejects
    ), nlines
