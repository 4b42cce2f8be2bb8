"""The native tier of the OTLP/JSON line reader (`ingest/_otlpscan.c`) changes nothing but speed.

Its contract: a line it takes becomes exactly the rows the msgspec tier (DCR_NATIVE=0) makes of
it, every column value for value (JSON texts byte for byte); a line it declines goes the Python
tiers. So a whole block decodes to the same rows, rejects and line count with and without it.

    real files (fixtures, the benchmark's generator)      both tiers, compact and not
    hypothesis: span and log lines written token by token, hostile, and byte-level mutants of them
    format_double against msgspec's float encoder
    the scan itself: clean Collector lines are all taken, odd ones all declined

The mismatches this file found are regression tests at its end.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import struct
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import otlp_fast
from ingest.otlp_fast import NATIVE_ENV, decode_lines_fast
from ingest.records import Chunk, SourceInfo
from ingest.schema import PROMOTED

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
SRC = SourceInfo("src-native", "mem.jsonl")
TID = "5b8efff798038103d269b633813fc60c"
SID = "eee19b7ec3c1b174"

try:  # the build is part of the install (`pip install -e .`): its absence fails test_native_module_is_built
    from ingest import _otlpscan
except ImportError:  # pragma: no cover - reported by the test below
    _otlpscan = None

# without a C compiler the tests of the native tier skip, but not under CI=true: there they run and fail
SKIP_NATIVE = _otlpscan is None and os.environ.get("CI") != "true"
needs_native = pytest.mark.skipif(SKIP_NATIVE, reason="ingest._otlpscan is not built (see the test above)")


# ---- comparing the two tiers ----------------------------------------------------------------


def _plain(batch: pa.RecordBatch | None) -> tuple[pa.Schema | None, list[tuple]]:
    """The schema and the rows of a batch, dictionary columns read as strings, rows in a fixed order
    (source_offset, trace_id, span_id, then the whole row: the tiers append in different orders)."""
    if batch is None:
        return None, []
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    names = batch.schema.names
    rows = list(zip(*(c.to_pylist() for c in cols), strict=True)) if batch.num_rows else []
    idx = [names.index(n) for n in ("source_offset", "trace_id", "span_id") if n in names]
    rows.sort(key=lambda r: (*(("" if r[i] is None else r[i]) for i in idx), repr(r)))
    return batch.schema, rows


def _decode(
    data: bytes, first_line: int, compact: bool, native: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[Chunk, int]:
    monkeypatch.setenv(NATIVE_ENV, "1" if native else "0")
    assert otlp_fast.native_available() is native
    return decode_lines_fast(data, first_line, SRC, compact=compact)


def _around(x: Any, y: Any) -> tuple[Any, Any]:
    """Two differing values, long texts cut to where they first differ."""
    if not (isinstance(x, str) and isinstance(y, str)) or max(len(x), len(y)) < 200:
        return x, y
    at = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
    lo = max(0, at - 60)
    return f"…[{lo}:]{x[lo : at + 60]}…", f"…[{lo}:]{y[lo : at + 60]}…"


def _diff_rows(names: list[str], a: list[tuple], b: list[tuple]) -> str:
    """The first row that differs, column by column (a readable assertion message)."""
    if len(a) != len(b):
        return f"{len(a)} rows natively, {len(b)} by msgspec"
    for ra, rb in zip(a, b, strict=True):
        if ra != rb:
            cols = {n: _around(x, y) for n, x, y in zip(names, ra, rb, strict=True) if x != y}
            return f"line {ra[names.index('source_offset')]}: native vs msgspec {cols}"
    return ""


def assert_same(data: bytes, monkeypatch: pytest.MonkeyPatch, first_line: int = 1) -> dict[str, int]:
    """Both tiers, compact and not: same spans, logs, rejects and line counts. Returns counts."""
    counts: dict[str, int] = {}
    for compact in (False, True):
        nat, n_nat = _decode(data, first_line, compact, True, monkeypatch)
        ref, n_ref = _decode(data, first_line, compact, False, monkeypatch)
        assert n_nat == n_ref, "line counts differ"
        for what in ("spans", "logs"):
            schema_n, rows_n = _plain(getattr(nat, what))
            schema_r, rows_r = _plain(getattr(ref, what))
            if schema_n is not None and schema_r is not None:
                assert schema_n.equals(schema_r), f"{what}: schemas differ (compact={compact})"
            assert rows_n == rows_r, f"{what} (compact={compact}): " + _diff_rows(
                (schema_n or schema_r).names, rows_n, rows_r
            )
            counts[what] = len(rows_n)
        rej_n = [(r.offset, r.reason, r.raw, r.unit) for r in nat.rejects]
        rej_r = [(r.offset, r.reason, r.raw, r.unit) for r in ref.rejects]
        assert rej_n == rej_r, f"rejects differ (compact={compact})"
        counts["rejects"] = len(rej_n)
        counts["lines"] = n_nat
    return counts


def _scan(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """The native scan alone: (span rows, lines, declined lines)."""
    rows, lines, _groups, declined, *_ = _otlpscan.scan(data, otlp_fast._NATIVE_PROMOTED)
    return rows, lines, declined


def _log_rows(data: bytes) -> int:
    """The log rows the native scan made of `data`."""
    return _otlpscan.scan(data, otlp_fast._NATIVE_PROMOTED)[8]


def _span_count(line: bytes) -> int:
    """Spans in a line (Tempo's batches and the legacy scope name counted too)."""
    doc = json.loads(line)
    return sum(
        len(ss.get("spans") or [])
        for rs in (doc.get("resourceSpans") or []) + (doc.get("batches") or [])
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []
    )


def _log_count(line: bytes) -> int:
    doc = json.loads(line)
    return sum(
        len(sl.get("logRecords") or [])
        for rl in doc.get("resourceLogs") or []
        for sl in rl.get("scopeLogs") or rl.get("instrumentationLibraryLogs") or []
    )


# ---- 4. the build --------------------------------------------------------------------------


def test_native_module_is_built(monkeypatch: pytest.MonkeyPatch):
    """`pip install -e .` builds ingest/_otlpscan.c; without it every other test here would compare
    the msgspec tier with itself, so its absence fails loudly instead of skipping quietly."""
    import importlib

    mod = importlib.import_module("ingest._otlpscan")
    assert callable(mod.scan) and callable(mod.format_double)
    assert otlp_fast._otlpscan is mod
    monkeypatch.delenv(NATIVE_ENV, raising=False)
    assert otlp_fast.native_available()
    monkeypatch.setenv(NATIVE_ENV, "0")
    assert not otlp_fast.native_available()


# ---- 3. format_double and what the scan takes ------------------------------------------------


FLOATS = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.1,
    0.5,
    1.5,
    3.0,
    100.0,
    1e-7,
    1e-6,
    1e-5,
    1e-4,
    0.0001234,
    1e15,
    1e16,
    1e17,
    9999999999999998.0,
    1234567890123456.8,
    123456789012345680.0,
    1e21,
    1e22,
    1e100,
    1e308,
    5e-324,
    2.2250738585072014e-308,
    2.225073858507201e-308,
    1.7976931348623157e308,
    -2.5e-8,
    0.30000000000000004,
    2.0**53,
    2.0**53 + 2,
    2.0**63,
    2.0**64,
    -(2.0**63),
    1 / 3,
    -1 / 3,
    math.pi,
    math.e,
    4.35,
    0.000123,
    123e-20,
]


@needs_native
def test_format_double_equals_msgspec():
    """Every float as msgspec writes it: the listed corners, every power of ten, and 60,000 random
    bit patterns (all exponents) plus 20,000 short decimals (the common values)."""
    rng = random.Random(1234)
    values = list(FLOATS) + [10.0**e for e in range(-323, 309)] + [-(10.0**e) for e in range(-20, 20)]
    values += [
        x for x in (struct.unpack("<d", rng.randbytes(8))[0] for _ in range(60_000)) if math.isfinite(x)
    ]
    values += [round(rng.uniform(-1e6, 1e6), rng.randrange(0, 7)) for _ in range(20_000)]
    values += [math.nextafter(x, math.inf) for x in FLOATS] + [math.nextafter(x, -math.inf) for x in FLOATS]
    wrong = [
        (x, _otlpscan.format_double(x), msgspec.json.encode(x))
        for x in values
        if _otlpscan.format_double(x) != msgspec.json.encode(x)
    ]
    assert not wrong, wrong[:10]
    # non-finite values are written as null, as msgspec writes them
    for x in (math.inf, -math.inf, math.nan):
        assert _otlpscan.format_double(x) == msgspec.json.encode(x) == b"null"


def _bench_lines(n: int, seed: int) -> list[bytes]:
    import bench.ingest as bench

    rng = random.Random(seed)
    enc = msgspec.json.Encoder()
    return [enc.encode(bench._line(rng, 1_714_564_800_000_000_000 + i * 40_000_000)) for i in range(n)]


@needs_native
def test_clean_collector_lines_are_all_taken():
    """The scan takes every line of the benchmark's Collector dump and of the recorded scenarios
    (so the parity tests cannot pass by the native tier declining everything)."""
    lines = _bench_lines(6, 21)
    for path in sorted((FIXTURES / "scenarios").glob("*/traces.jsonl"))[:3]:
        lines += path.read_bytes().splitlines()
    lines = [ln for ln in lines if ln.strip()]
    data = b"\n".join(lines) + b"\n"
    rows, nlines, declined = _scan(data)
    assert declined == []
    assert nlines == len(lines)
    assert rows == sum(_span_count(ln) for ln in lines) > 2000


def _doc(span: dict | None = None, **top: Any) -> bytes:
    sp = {
        "traceId": TID,
        "spanId": SID,
        "name": "op",
        "kind": 2,
        "startTimeUnixNano": "1000",
        "endTimeUnixNano": "2000",
        "attributes": [{"key": "k", "value": {"stringValue": "v"}}],
    }
    sp.update(span or {})
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                "scopeSpans": [{"scope": {"name": "lib"}, "spans": [sp]}],
            }
        ]
    }
    body.update(top)
    return json.dumps(body, separators=(",", ":")).encode()


CLEAN = _doc()
DECLINED = [  # (why the native tier leaves it to the Python tiers, the line)
    # (upper-case ids, log records' base64 ids, severity names: taken, tests/test_ingest_native_tempo.py)
    ("base64 trace id of 17 bytes", _doc({"traceId": base64.b64encode(bytes.fromhex(TID) + b"x").decode()})),
    ("base64 trace id of zeros", _doc({"traceId": base64.b64encode(bytes(16)).decode()})),
    (
        "base64 span id without its padding",
        _doc({"spanId": base64.b64encode(bytes.fromhex(SID)).decode()[:-1]}),
    ),
    ("all-zero trace id", _doc({"traceId": "0" * 32})),
    ("span id of wrong length", _doc({"spanId": SID[:15]})),
    ("missing span id", CLEAN.replace(b'"spanId":"' + SID.encode() + b'",', b"")),
    ("missing start", CLEAN.replace(b'"startTimeUnixNano":"1000",', b"")),
    ("escaped id", CLEAN.replace(TID.encode(), b"\\u0035" + TID[1:].encode())),
    (
        "scopeLogs beside instrumentationLibraryLogs",
        b'{"resourceLogs":[{"scopeLogs":[],"instrumentationLibraryLogs":[{"logRecords":[{"timeUnixNano":"1"}]}]}]}',
    ),
    (
        "resourceSpans beside Tempo batches",
        CLEAN.replace(b'{"resourceSpans"', b'{"batches":[],"resourceSpans"'),
    ),
    ("a result wrapper", b'{"result":' + CLEAN + b"}"),
    (
        "scopeSpans beside instrumentationLibrarySpans",
        CLEAN.replace(b'"scopeSpans"', b'"scopeSpans":[],"instrumentationLibrarySpans"'),
    ),
    (
        "duplicate attribute key",
        _doc(
            {
                "attributes": [
                    {"key": "k", "value": {"stringValue": "a"}},
                    {"key": "k", "value": {"stringValue": "b"}},
                ]
            }
        ),
    ),
    (
        "duplicate key, one escaped",
        _doc({"attributes": [{"key": "k", "value": {"intValue": "1"}}]}).replace(
            b'[{"key":"k"', b'[{"key":"\\u006b","value":{"boolValue":true}},{"key":"k"'
        ),
    ),
    (
        "duplicate key in a kvlist",
        _doc(
            {
                "attributes": [
                    {
                        "key": "k",
                        "value": {
                            "kvlistValue": {
                                "values": [
                                    {"key": "a", "value": {"intValue": "1"}},
                                    {"key": "a", "value": {"intValue": "2"}},
                                ]
                            }
                        },
                    }
                ]
            }
        ),
    ),
    ("duplicate span field", CLEAN.replace(b'"name":"op"', b'"name":"op","name":"op2"')),
    (
        "duplicate field in an AnyValue",
        CLEAN.replace(b'{"stringValue":"v"}', b'{"stringValue":"v","stringValue":"w"}'),
    ),
    (
        "two kinds in one AnyValue",
        CLEAN.replace(b'{"stringValue":"v"}', b'{"stringValue":"v","intValue":"5"}'),
    ),
    ("doubleValue NaN as a string", _doc({"attributes": [{"key": "d", "value": {"doubleValue": "NaN"}}]})),
    ("doubleValue out of range", CLEAN.replace(b'{"stringValue":"v"}', b'{"doubleValue":1e400}')),
    ("intValue '+5'", _doc({"attributes": [{"key": "i", "value": {"intValue": "+5"}}]})),
    ("intValue past int64", _doc({"attributes": [{"key": "i", "value": {"intValue": str(2**63)}}]})),
    (
        "string for an int promoted column",
        _doc({"attributes": [{"key": "http.response.status_code", "value": {"stringValue": "200"}}]}),
    ),
    ("kind as a digit string", _doc({"kind": "2"})),
    ("kind as an unknown name", _doc({"kind": "SPAN_KIND_SERVERLESS"})),
    ("status code as an unknown name", _doc({"status": {"code": "STATUS_CODE_MAYBE"}})),
    ("kind out of range", _doc({"kind": 6})),
    ("status code out of range", _doc({"status": {"code": 3}})),
    ("time as a float", _doc({"startTimeUnixNano": 1.5})),
    ("negative time", _doc({"startTimeUnixNano": -1})),
    ("time past int64", _doc({"endTimeUnixNano": str(2**63)})),
    ("flags past int32", _doc({"flags": 2**31})),
    ("negative dropped count", _doc({"droppedAttributesCount": -1})),
    (
        "exception.type not a string",
        _doc(
            {
                "events": [
                    {
                        "name": "exception",
                        "attributes": [{"key": "exception.type", "value": {"intValue": "7"}}],
                    }
                ]
            }
        ),
    ),
    (
        "escaped event name",
        _doc({"events": [{"name": "exceptio\u006e"}]}).replace(b"exception", b"exceptio\\u006e"),
    ),
    ("link id of wrong length", _doc({"links": [{"traceId": TID[:30], "spanId": SID}]})),
    ("escaped field name", CLEAN.replace(b'"name":"op"', b'"n\\u0061me":"op"')),
    ("lone surrogate", _doc({"name": "a\ud800b"})),
    ("invalid UTF-8", CLEAN.replace(b'"op"', b'"o\xffp"')),
    ("surrogate as UTF-8 bytes", CLEAN.replace(b'"op"', b'"o\xed\xa0\x80p"')),
    ("overlong UTF-8", CLEAN.replace(b'"op"', b'"o\xc0\xafp"')),
    ("a BOM", b"\xef\xbb\xbf" + CLEAN),
    ("truncated", CLEAN[:-7]),
    ("trailing text", CLEAN + b" x"),
    ("not an object", b"[" + CLEAN + b"]"),
    ("resource as a string", CLEAN.replace(b'"resource":{', b'"resource":"x","x":{')),
]


@needs_native
def test_clean_log_lines_are_taken_and_decode_the_same(monkeypatch: pytest.MonkeyPatch):
    """The committed scenarios' logs (written by the OpenTelemetry SDK) are all taken natively."""
    for path in sorted((REPO / "fixtures" / "scenarios").glob("*/logs.jsonl")):
        data = path.read_bytes()
        _rows, nlines, _groups, declined, *_rest, log_rows, _log_groups, _ls, _li = _otlpscan.scan(
            data, otlp_fast._NATIVE_PROMOTED
        )
        assert declined == [], path
        assert log_rows == sum(
            len(sl.get("logRecords") or [])
            for ln in data.splitlines()
            if ln.strip()
            for rl in json.loads(ln).get("resourceLogs") or []
            for sl in rl.get("scopeLogs") or []
        )
        assert_same(data, monkeypatch)


@needs_native
def test_clean_line_is_taken():
    rows, nlines, declined = _scan(CLEAN + b"\n")
    assert (rows, nlines, declined) == (1, 1, [])


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


TAKEN = [  # other shapes real files have, which the native tier reads as the Python tiers do
    ("Tempo batches", CLEAN.replace(b'{"resourceSpans"', b'{"batches"')),
    (
        "Tempo's base64 ids and enum names",
        _doc(
            {
                "traceId": _b64(TID),
                "spanId": _b64(SID),
                "parentSpanId": _b64("00000000000000ff"),
                "kind": "SPAN_KIND_SERVER",
                "status": {"code": "STATUS_CODE_ERROR"},
                "links": [{"traceId": _b64("ff" * 16), "spanId": _b64("ab" * 8)}],
            }
        ).replace(b'{"resourceSpans"', b'{"batches"'),
    ),
    ("a base64 parent of zeros (a root)", _doc({"parentSpanId": _b64("00" * 8)})),
    ("bare enum names", _doc({"kind": "CONSUMER", "status": {"code": "OK"}})),
    ("legacy instrumentationLibrarySpans", CLEAN.replace(b'"scopeSpans"', b'"instrumentationLibrarySpans"')),
    (
        "legacy instrumentationLibrary",
        CLEAN.replace(b'"scopeSpans"', b'"instrumentationLibrarySpans"').replace(
            b'"scope":', b'"instrumentationLibrary":'
        ),
    ),
    (
        "legacy instrumentationLibraryLogs",
        b'{"resourceLogs":[{"instrumentationLibraryLogs":[{"instrumentationLibrary":{"name":"lib"},'
        b'"logRecords":[{"timeUnixNano":"1"}]}]}]}',
    ),
]


@needs_native
@pytest.mark.parametrize("line", [ln for _, ln in TAKEN], ids=[why for why, _ in TAKEN])
def test_legacy_shape_is_taken_and_decodes_the_same(line: bytes, monkeypatch: pytest.MonkeyPatch):
    data = CLEAN + b"\n" + line + b"\n"
    assert _scan(data)[2] == []
    counts = assert_same(data, monkeypatch)
    assert counts["spans"] + counts["logs"] == 2 and counts["rejects"] == 0


@needs_native
@pytest.mark.parametrize("line", [ln for _, ln in DECLINED], ids=[why for why, _ in DECLINED])
def test_odd_line_is_declined_and_decodes_the_same(line: bytes, monkeypatch: pytest.MonkeyPatch):
    """The scan rolls the whole line back (even the clean line before it stays), and the Python
    tiers give the same result as without the native tier."""
    data = CLEAN + b"\n" + line + b"\n"
    rows, nlines, declined = _scan(data)
    assert (rows, nlines) == (1, 2)
    assert declined == [(2, len(CLEAN) + 1, len(CLEAN) + 1 + len(line))]
    assert_same(data, monkeypatch)


@needs_native
def test_native_columns_outlive_the_scan(monkeypatch: pytest.MonkeyPatch):
    """The scan hands its column memory to Arrow without a copy: the batch stays intact after the
    scan's own objects are gone and the allocator has handed that memory out again."""
    import gc

    data = (FIXTURES / "scenarios" / "retry_storm" / "traces.jsonl").read_bytes()
    kept = [_decode(data, 1, compact, True, monkeypatch)[0].spans.slice(3) for compact in (False, True)]
    gc.collect()
    for _ in range(4):  # churn: more scans, and big allocations of the freed sizes
        _scan(data)
        junk = [bytearray(b"\xa5" * (len(data) // k)) for k in (1, 2, 3, 5, 8)]
        del junk
    ref = _decode(data, 1, False, False, monkeypatch)[0].spans.slice(3)
    for batch in kept:
        assert _plain(batch)[1] == _plain(ref)[1]


# ---- 1. parity on real inputs --------------------------------------------------------------


def _one_line_docs(paths: list[Path]) -> list[bytes]:
    """Public OTLP/JSON documents written one a line (ASCII-escaped and raw UTF-8)."""
    out = []
    for path in paths:
        doc = json.loads(path.read_bytes())
        out.append(json.dumps(doc, separators=(",", ":")).encode())
        out.append(json.dumps(doc, ensure_ascii=False).encode())
    return out


@needs_native
@pytest.mark.parametrize("name", sorted(p.name for p in (FIXTURES / "scenarios").iterdir() if p.is_dir()))
def test_scenario_files_decode_the_same(name: str, monkeypatch: pytest.MonkeyPatch):
    folder = FIXTURES / "scenarios" / name
    traces = assert_same((folder / "traces.jsonl").read_bytes(), monkeypatch)
    assert traces["spans"] > 100 and traces["rejects"] == 0
    logs = assert_same((folder / "logs.jsonl").read_bytes(), monkeypatch)
    assert logs["logs"] > 10 and logs["rejects"] == 0
    both = (folder / "logs.jsonl").read_bytes() + (folder / "traces.jsonl").read_bytes()  # mixed, numbered on
    assert_same(both, monkeypatch, first_line=1000)


@needs_native
def test_public_otlp_files_decode_the_same(monkeypatch: pytest.MonkeyPatch):
    """The specification's examples and Jaeger's OTLP traces: as pretty-printed files (every line a
    reject) and as one document a line."""
    paths = sorted((FIXTURES / "public" / "otlp-examples").glob("*.json"))
    paths += sorted((FIXTURES / "public" / "jaeger" / "otlp-traces").glob("*.json"))
    paths.append(FIXTURES / "public" / "jaeger" / "ui-format" / "otlp2jaeger-in.json")
    counts = assert_same(b"\n".join(_one_line_docs(paths)) + b"\n", monkeypatch)
    assert counts["spans"] > 50 and counts["logs"] > 0
    for path in paths[:3]:
        assert_same(path.read_bytes(), monkeypatch)


@needs_native
def test_benchmark_dump_decodes_the_same(monkeypatch: pytest.MonkeyPatch):
    lines = _bench_lines(8, 3)
    counts = assert_same(b"\n".join(lines) + b"\n", monkeypatch, first_line=7)
    assert counts["spans"] == sum(_span_count(ln) for ln in lines) and counts["rejects"] == 0


# ---- 2. hypothesis: hostile lines, written token by token ------------------------------------
#
# The lines are written by hand, token by token, from a random.Random that hypothesis seeds (a
# generator of hypothesis draws was 100x slower: too slow for enough lines a run); a failure
# prints the differing column, so the seed is enough to replay it. `odd` parts are anything the
# native tier must decline or must get exactly right anyway; a line with no odd part
# (`Gen(rng, 0)`) is one the native tier takes whole. Known limits of the scan the clean lines stay
# within: 24 JSON levels (AnyValues nested 2 deep), 128 keys an object, 64 KiB of escaped keys.

PROMOTED_NAMES = [name for names in PROMOTED.values() for name in names]
INT_NAMES = {name for col in ("http_status_code", "code_lineno") for name in PROMOTED[col]}
KEYS = PROMOTED_NAMES + [
    "exception.type",
    "exception.message",
    "k",
    "dup",
    "a.b",
    "ключ",
    "",
    "service.name",
    "exception.stacktrace",
]
CHARS = list("aZ0 /'\"\\\n\r\t\b\f") + [
    "\x00",
    "\x01",
    "\x1f",
    "\x7f",
    "\x80",
    "\x9f",
    "é",
    "ß",
    "日",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\uffff",
    "\U0001f600",
    "\U0010ffff",
    "\u0663",
]
LONE = ["\ud800", "\udbff", "\udc00", "\udfff"]
BAD_UTF8 = [
    b"\xff",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe0\x80",
    b"\x80",
    b"\xc3",
    b"\xf8\x88",
]
WS = ["", "", "", " ", "\t", "\r", " \t "]
UNKNOWN = ["foo", "x-extra", "Name", "traceid", "droppedLinks", "kind2"]
UNKNOWN_ODD = UNKNOWN + [
    "values",
    "key",
    "value",
    "spans",
    "resource",
    "name",
    "scopeSpans",
]  # may collide with a known field
ANY_KINDS = ["string", "int", "bool", "double", "bytes", "array", "kvlist", "empty", "null"]

INT_CLEAN = [
    "0",
    "7",
    "-5",
    "200",
    "404",
    "2147483647",
    "-2147483648",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "-9223372036854775808",
    "-0",
]
INT_ODD = [
    '"+5"',
    '" 5"',
    '"5 "',
    '"1_000"',
    '"abc"',
    '""',
    '"9223372036854775808"',
    '"-9223372036854775809"',
    '"99999999999999999999"',
    '"\\u0035"',
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "5.0",
    "1e3",
    "true",
    '"0x10"',
    '"5.5"',
    '"\u0663"',
    "007",
    '"-"',
    "null",
    '"00000000000000000000005"',
]
DBL_CLEAN = [
    "0.0",
    "-0.0",
    "-0e0",
    "0",
    "-0",
    "3",
    "-1",
    "1.5",
    "0.1",
    "1e-7",
    "1e16",
    "1E5",
    "1e+5",
    "5e-324",
    "1e308",
    "-2.5e-8",
    "1.7976931348623157e308",
    "2.2250738585072014e-308",
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    "9007199254740993",
    "18446744073709551615",
    "0.30000000000000004",
    "100",
    "1e-5",
    "1e15",
    "4.35",
    "2147483647.9",
    "-2147483648.5",
    "2147483648.0",
    "1e-400",
    "0e999",
]
DBL_ODD = [
    '"NaN"',
    '"Infinity"',
    '"-Infinity"',
    '"1.5"',
    '"abc"',
    "1e400",
    "-1e400",
    "true",
    '"1e5"',
    "1.",
    ".5",
    "01",
    "-",
    "1e",
    "+1",
    "null",
    '"-0"',
]
EDGE_FLOATS = [
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    1e16,
    1e15,
    1e-5,
    1e-6,
    0.1,
    1 / 3,
    2.0**53,
    2.0**63,
    123456.789,
]


def arr(items: list[bytes], ws: bytes = b"") -> bytes:
    return b"[" + ws + (b"," + ws).join(items) + ws + b"]"


class Gen:
    """Writes OTLP/JSON lines from `rng`; odd_rate: how often each place that can be hostile is
    (0: a line the native tier takes whole; small: one odd thing in a line it mostly takes)."""

    def __init__(self, rng: random.Random, odd_rate: float) -> None:
        self.rng = rng
        self.odd_rate = odd_rate
        self.ws = rng.choice(WS).encode()  # one spacing a line (and sometimes one an object)

    @property
    def odd(self) -> bool:
        """Whether this place is hostile (decided anew at each place)."""
        return self.odd_rate > 0 and self.rng.random() < self.odd_rate

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # -- strings

    def text(self, key: bool = False) -> str:
        rng = self.rng
        if rng.random() < 0.002 and (not key or self.odd):  # long values; keys past the scan's 64 KiB arena
            return rng.choice(["x", "\u00e9", "\n", "\U0001f600"]) * rng.choice([33_000, 70_000])
        out = []
        for _ in range(rng.choice([0, 1, 2, 3, 5, 8, 12])):
            r = rng.random()
            if r < 0.45:
                out.append(rng.choice(CHARS))
            elif r < 0.6 and self.odd:
                out.append(rng.choice(LONE))
            elif r < 0.75:
                out.append(chr(rng.randrange(0x20, 0x7F)))
            else:
                c = rng.choice(
                    [
                        rng.randrange(0x80, 0x800),
                        rng.randrange(0x800, 0xD800),
                        rng.randrange(0xE000, 0x10000),
                        rng.randrange(0x10000, 0x110000),
                    ]
                )
                out.append(chr(c))
        return "".join(out)

    def jstr(self, text: str) -> bytes:
        """`text` as a JSON string: json.dumps ASCII or raw UTF-8, or escaped char by char in every
        way JSON allows (\\uXXXX either case, surrogate pairs, \\/); odd: invalid UTF-8 bytes too."""
        rng = self.rng
        mode = rng.choice(["ascii", "utf8", "utf8", "mixed"])
        if mode == "ascii":
            out = json.dumps(text).encode()
        elif mode == "utf8":
            out = json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")
        else:
            parts = []
            for ch in text:
                c = ord(ch)
                r = rng.random()
                if ch == "/" and r < 0.5:
                    parts.append("\\/")
                elif ch in '"\\\b\f\n\r\t' and r < 0.6:
                    parts.append(json.dumps(ch)[1:-1])
                elif r < 0.5 or c < 0x20 or ch in '"\\':
                    if c >= 0x10000:
                        hi, lo = 0xD800 + ((c - 0x10000) >> 10), 0xDC00 + ((c - 0x10000) & 0x3FF)
                        parts.append(f"\\u{hi:04x}\\u{lo:04X}" if r < 0.25 else f"\\u{hi:04X}\\u{lo:04x}")
                    else:
                        parts.append(f"\\u{c:04x}" if r < 0.25 else f"\\u{c:04X}")
                else:
                    parts.append(ch)
            out = ('"' + "".join(parts) + '"').encode("utf-8", "surrogatepass")
        if self.odd and self.chance(0.03):
            at = rng.randint(1, len(out) - 1)
            out = out[:at] + rng.choice(BAD_UTF8) + out[at:]
        return out

    def name(self, name: str) -> bytes:
        """A field name: plain, or (odd, rarely) with an escaped letter."""
        if self.odd and name and self.chance(0.02):
            return f'"\\u{ord(name[0]):04x}'.encode() + json.dumps(name[1:]).encode()[1:]
        return json.dumps(name).encode()

    # -- structure

    def unknown_value(self, depth: int = 0) -> bytes:
        """Any JSON value (what an unknown field may hold)."""
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            return rng.choice(
                [
                    "1e400",
                    "-0",
                    "1E+2",
                    "0.0e-0",
                    "123456789012345678901234567890",
                    "[]",
                    "{}",
                    "true",
                    '{"a":{"b":[1,{"c":null}]}}',
                    '"\\u0000\\ud83d\\ude00"',
                    "null",
                    "false",
                    "-1.5e-300",
                ]
            ).encode()
        if r < 0.5 and depth < 2:
            return arr([self.unknown_value(depth + 1) for _ in range(rng.randint(0, 3))], self.ws)
        if r < 0.7 and depth < 2:
            return self.obj(
                [(self.text(), self.unknown_value(depth + 1)) for _ in range(rng.randint(0, 3))],
                unknown=False,
            )
        if r < 0.85:
            return self.jstr(self.text())
        return repr(
            rng.choice([rng.randint(-(2**70), 2**70), rng.random() * 10 ** rng.randint(-20, 20)])
        ).encode()

    def obj(self, fields: list[tuple[str, bytes]], unknown: bool = True) -> bytes:
        """A JSON object of (name, value text) fields, in any order, with unknown fields and
        whitespace between tokens; odd: a field written twice, an escaped name."""
        rng = self.rng
        fields = list(fields)
        if self.chance(0.3):
            rng.shuffle(fields)
        if unknown and self.chance(0.15):
            fields.insert(
                rng.randint(0, len(fields)),
                (rng.choice(UNKNOWN_ODD if self.odd else UNKNOWN), self.unknown_value()),
            )
        if self.odd and fields and self.chance(0.04):
            fields.append(rng.choice(fields))
        ws = rng.choice(WS).encode() if self.chance(0.2) else self.ws
        items = [ws + self.name(name) + ws + b":" + ws + value for name, value in fields]
        return b"{" + b",".join(items) + ws + b"}"

    # -- values

    def number(self, kind: str) -> bytes:
        rng = self.rng
        r = rng.random()
        if kind == "int":
            if self.odd and r < 0.15:
                return rng.choice(INT_ODD).encode()
            if r < 0.45:
                return rng.choice(INT_CLEAN).encode()
            if r < 0.65:
                return b'"' + rng.choice(INT_CLEAN + ["007", "000"]).encode() + b'"'
            n = rng.choice(
                [rng.randint(-(2**63), 2**63 - 1), rng.randint(-(2**31), 2**31), rng.randint(-999, 999)]
            )
            return (str(n) if self.chance(0.5) else f'"{n}"').encode()
        if self.odd and r < 0.15:
            return rng.choice(DBL_ODD).encode()
        if r < 0.45:
            return rng.choice(DBL_CLEAN).encode()
        if r < 0.6:
            x = rng.choice(EDGE_FLOATS) * rng.choice([1, -1])
            return repr(x).encode()
        if r < 0.8:  # a decimal of many digits: the float parser's rounding
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25))).lstrip("0") or "1"
            frac = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 20)))
            sign = rng.choice(["", "-"])
            return f"{sign}{digits}{'.' + frac if frac else ''}e{rng.randint(-330, 280)}".encode()
        x = struct.unpack("<d", rng.randbytes(8))[0]
        return repr(x).encode() if math.isfinite(x) and x != 0 else b"2.5"

    def any_value(self, depth: int, kinds: list[str] = ANY_KINDS) -> bytes:
        """An AnyValue of any kind, nested arrays and kvlists included."""
        rng = self.rng
        if depth >= (4 if self.odd else 2):  # the scan's depth limit (24 JSON levels) is for odd lines only
            kinds = [k for k in kinds if k not in ("array", "kvlist")] or ["null"]
        kind = rng.choice(kinds)
        if kind == "null":
            return b"null"
        if kind == "empty":
            return self.obj([])
        if kind == "string":
            field = ("stringValue", self.jstr(self.text()))
        elif kind == "int":
            field = ("intValue", self.number("int"))
        elif kind == "double":
            field = ("doubleValue", self.number("double"))
        elif kind == "bool":
            field = ("boolValue", rng.choice([b"true", b"false"] + ([b'"true"', b"1"] if self.odd else [])))
        elif kind == "bytes":
            raw = base64.b64encode(rng.randbytes(rng.randint(0, 12))).decode()
            field = ("bytesValue", self.jstr(raw if not self.odd or self.chance(0.5) else self.text()))
        elif kind == "array":
            # a null element (an AnyValue written as null) only in odd lines: msgspec refuses it
            items = [
                self.any_value(depth + 1, ANY_KINDS if self.odd else [k for k in ANY_KINDS if k != "null"])
                for _ in range(rng.randint(0, 3))
            ]
            field = ("arrayValue", self.obj([("values", arr(items, self.ws))]) if self.chance(0.9) else b"{}")
        else:
            field = (
                "kvlistValue",
                self.obj([("values", self.kv_list(depth + 1))]) if self.chance(0.9) else b"{}",
            )
        fields = [field]
        if self.chance(0.15):  # a null other kind: absent, as msgspec reads it
            other = rng.choice(
                [
                    "stringValue",
                    "intValue",
                    "boolValue",
                    "doubleValue",
                    "arrayValue",
                    "kvlistValue",
                    "bytesValue",
                ]
            )
            if other != field[0]:
                fields.append((other, b"null"))
        if self.odd and self.chance(0.03):  # two kinds at once
            fields.append(("stringValue" if kind != "string" else "intValue", b'"5"'))
        return self.obj(fields)

    def deep_value(self) -> bytes:
        """An AnyValue nested 10-40 levels (the scan's depth limit is 24)."""
        v = b'{"stringValue":"leaf"}'
        for _ in range(self.rng.randint(10, 40)):
            v = (
                b'{"arrayValue":{"values":[' + v + b"]}}"
                if self.chance(0.5)
                else b'{"kvlistValue":{"values":[{"key":"k","value":' + v + b"}]}}"
            )
        return v

    def key_text(self) -> str:
        return self.rng.choice(KEYS) if self.chance(0.8) else self.text(key=True)

    def key_value(self, depth: int, key: str) -> bytes:
        """A KeyValue; not odd: one the native tier takes (an int column's name gets no string)."""
        fields = [("key", self.jstr(key))]
        kinds = (
            ANY_KINDS
            if self.odd or key not in INT_NAMES
            else [k for k in ANY_KINDS if k not in ("string", "bytes")]
        )
        shape = self.rng.randrange(20)
        if shape == 0:
            pass  # no value at all
        elif shape == 1 and self.odd:
            fields = [("value", self.any_value(depth))]  # no key: ""
        elif shape == 2 and self.odd:
            fields[0] = ("key", b"null")
        else:
            fields.append(
                ("value", self.deep_value() if shape == 3 and self.odd else self.any_value(depth, kinds))
            )
        return self.obj(fields)

    def kv_list(self, depth: int, max_size: int = 3, keys: list[str] | None = None) -> bytes:
        """KeyValues, their keys distinct unless odd (then now and then one written twice)."""
        if keys is None:
            keys = list(dict.fromkeys(self.key_text() for _ in range(self.rng.randint(0, max_size))))
        kvs = [self.key_value(depth, k) for k in keys]
        if self.odd and kvs and self.chance(0.15):
            kvs.append(self.rng.choice(kvs))
        return arr(kvs, self.ws)

    def attributes(self, promoted: bool = True) -> bytes:
        """A span's KeyValues: promoted names with every kind of value, several names of one column in
        either order; odd: now and then a key written twice."""
        keys = list(dict.fromkeys(self.key_text() for _ in range(self.rng.randint(0, 6))))
        if self.chance(0.01):  # as many keys as the scan keeps (128), or (odd) more
            many = self.rng.choice([129, 200]) if self.odd else 124 - len(keys)
            keys += [f"many.{i}" for i in range(many)]
        if promoted and self.chance(0.5):
            names = list(PROMOTED[self.rng.choice(list(PROMOTED))])
            self.rng.shuffle(names)
            keys += [name for name in names if name not in keys]
        return self.kv_list(0, keys=keys)

    # -- ids, times

    def an_id(self, nbytes: int, upper_ok: bool = False) -> bytes:
        rng = self.rng
        raw = rng.randbytes(nbytes)
        raw = raw if any(raw) else raw[:-1] + b"\x01"
        h = raw.hex()
        if upper_ok and self.chance(0.5):
            h = h.upper()
        if not self.odd or self.chance(0.85):
            return f'"{h}"'.encode()
        return rng.choice(
            [
                f'"{h.upper()}"',
                f'"{base64.b64encode(raw).decode()}"',
                '"' + "0" * 2 * nbytes + '"',
                f'"{h[:-1]}"',
                f'"{h}0"',
                '""',
                "null",
                "5",
                f'"\\u00{h[0].encode().hex()}{h[1:]}"',
                f'"{h[:-1]}G"',
                f'"{h[:nbytes]}{h[nbytes:].upper()}"',
                f'"{h[:-1]}\\u00{h[-1].encode().hex()}"',
            ]
        ).encode()

    def a_time(self, t: int) -> bytes:
        if self.odd and self.chance(0.08):
            return self.rng.choice(
                [
                    '"-5"',
                    "-5",
                    str(2**63),
                    f'"{2**63}"',
                    f'"{2**64}"',
                    '""',
                    '"+5"',
                    '" 5"',
                    "-0",
                    "1.5e18",
                    '"soon"',
                    "null",
                    "true",
                    '"0005"',
                    f'"{"0" * 25}1"',
                    '"1_0"',
                    str(2**63 - 1),
                    f'"{2**63 - 1}"',
                    "0",
                    '"0"',
                ]
            ).encode()
        return (str(t) if self.chance(0.25) else f'"{t}"').encode()

    # -- span parts

    def event(self, t: int) -> bytes:
        rng = self.rng
        keys = ["exception.type", "exception.message", "exception.stacktrace"]
        rng.shuffle(keys)
        kinds = ANY_KINDS if self.odd else ["string", "string", "empty", "null"]
        kvs = [
            self.obj([("key", json.dumps(k).encode()), ("value", self.any_value(1, kinds))])
            for k in keys[: rng.randint(0, 3)]
        ]
        if self.chance(0.5):
            kvs.append(self.key_value(1, rng.choice(["k", "a.b", "ключ"])))
        if self.odd and kvs and self.chance(0.1):
            kvs.append(rng.choice(kvs))
        names = [b'"exception"', b'"exception"', b'"log"', b'""', b'"Exception"'] + (
            [b'"exceptio\\u006e"'] if self.odd else []
        )
        fields = [("name", rng.choice(names))]
        if self.chance(0.8):
            fields.append(("timeUnixNano", self.a_time(t)))
        if self.chance(0.75):
            fields.append(("attributes", arr(kvs)))
        if self.chance(0.2):
            fields.append(
                (
                    "droppedAttributesCount",
                    rng.choice([b"0", b"3", b"2147483647", b"-1", b"9223372036854775807"]),
                )
            )
        return self.obj(fields)

    def link(self) -> bytes:
        rng = self.rng
        fields = [("traceId", self.an_id(16, upper_ok=True)), ("spanId", self.an_id(8, upper_ok=True))]
        if self.chance(0.5):
            fields.append(("traceState", self.jstr(rng.choice(["", "rojo=00f067aa0ba902b7", "a=1,b=2"]))))
        if self.chance(0.5):
            fields.append(("attributes", self.attributes(promoted=False)))
        for name in ("droppedAttributesCount", "flags"):
            if self.chance(0.25):
                fields.append(
                    (
                        name,
                        rng.choice(
                            [b"0", b"1", b"257", b"2147483647", b"2147483648", b"-3", b"9223372036854775807"]
                        ),
                    )
                )
        return self.obj(fields)

    def span(self) -> bytes:
        rng = self.rng
        start = 1_700_000_000_000_000_000 + rng.randrange(10**9)
        end = start + rng.choice([0, 1, 1000, 10**8, -1, -1000])
        fields: list[tuple[str, bytes]] = [
            ("traceId", self.an_id(16)),
            ("spanId", self.an_id(8)),
            ("startTimeUnixNano", self.a_time(start)),
        ]
        if self.chance(0.85):
            fields.append(("endTimeUnixNano", self.a_time(end) if self.chance(0.9) else b"null"))
        if self.chance(0.5):
            parent = rng.choice([b'""', b'"0000000000000000"', b"id", b"id"])
            fields.append(("parentSpanId", self.an_id(8) if parent == b"id" else parent))
        if self.chance(0.8):
            fields.append(("name", self.jstr(self.text())))
        if self.chance(0.5):
            kinds = [b"0", b"1", b"2", b"3", b"4", b"5"] + (
                [b"6", b"-1", b'"SPAN_KIND_SERVER"', b'"2"', b"2.0", b"null", b"-0"] if self.odd else []
            )
            fields.append(("kind", rng.choice(kinds)))
        if self.chance(0.8):
            fields.append(("attributes", self.attributes()))
        if self.chance(0.35):
            status = [
                b"null",
                b"{}",
                b'{"code":0}',
                b'{"code":1}',
                b'{"code":2,"message":"boom"}',
                b'{"message":"m"}',
                b'{"message":""}',
                b'{"code":2,"message":"a\\nb \\u00e9"}',
                b'{"x":[1],"code":2}',
            ]
            status += (
                [
                    b'{"code":3}',
                    b'{"code":-1}',
                    b'{"code":"STATUS_CODE_ERROR"}',
                    b'{"code":null}',
                    b'{"code":2,"code":1}',
                    b'{"message":null}',
                    b'{"code":"2"}',
                    b"[]",
                ]
                if self.odd
                else []
            )
            fields.append(("status", rng.choice(status)))
        if self.chance(0.25):
            fields.append(("events", arr([self.event(start + 5) for _ in range(rng.randint(0, 3))])))
        if self.chance(0.2):
            fields.append(("links", arr([self.link() for _ in range(rng.randint(0, 2))])))
        if self.chance(0.2):
            fields.append(("traceState", self.jstr(rng.choice(["rojo=00f067aa0ba902b7", "", "k=v\u00e9"]))))
        for name in ("flags", "droppedAttributesCount", "droppedEventsCount", "droppedLinksCount"):
            if self.chance(0.15):
                values = [b"0", b"1", b"256", b"257", b"2147483647"] + (
                    [b"2147483648", b"-1", b'"3"', b"1.0", b"null", b"-0", b"2147483647 "] if self.odd else []
                )
                fields.append((name, rng.choice(values)))
        return self.obj(fields)

    def span_line(self) -> bytes:
        """One TracesData line: groups of (resource, scope, spans), resource before or after its scopes."""
        rng = self.rng
        groups = []
        for _ in range(rng.randint(1, 3)):
            scope_spans = []
            for _ in range(rng.randint(1, 2)):
                ss = [
                    (
                        "spans",
                        arr([self.span() for _ in range(rng.randint(0 if self.odd else 1, 4))], self.ws),
                    )
                ]
                if self.chance(0.6):
                    ss.append(("scope", rng.choice(SCOPES)))
                if self.chance(0.15):
                    ss.append(("instrumentationLibrary", rng.choice(SCOPES)))
                scope_spans.append(self.obj(ss))
            rs = self.legacy_pair("scopeSpans", "instrumentationLibrarySpans", arr(scope_spans))
            if self.chance(0.8):
                rs.append(("resource", rng.choice(RESOURCES + (RESOURCES_ODD if self.odd else []))))
            groups.append(self.obj(rs))
        body = arr(groups)
        if self.odd and self.chance(0.05):
            return b'{"result":{"resourceSpans":' + body + b"}}"
        return self.obj(self.legacy_pair("resourceSpans", "batches", body))

    def legacy_pair(self, name: str, legacy: str, value: bytes) -> list[tuple[str, bytes]]:
        """The field under its current name or its other one (legacy, Tempo's); odd: under both,
        one of them now and then empty (the Python tiers decide which counts)."""
        if self.odd and self.chance(0.1):
            other = value if self.chance(0.5) else b"[]"
            return [(name, value), (legacy, other)] if self.chance(0.5) else [(name, other), (legacy, value)]
        return [(legacy if self.chance(0.12) else name, value)]

    def log_record(self) -> bytes:
        """A LogRecord with every field now and then: times as text or numbers (or 0), severities
        in range or (odd) named, out of range or fractional, ids canonical, "" or (odd) not."""
        rng = self.rng
        t = 1_700_000_000_000_000_000 + rng.randrange(10**9)
        fields: list[tuple[str, bytes]] = []
        if self.chance(0.8):
            fields.append(
                ("timeUnixNano", self.a_time(t) if self.chance(0.9) else rng.choice([b'"0"', b"0"]))
            )
        if self.chance(0.5):
            fields.append(("observedTimeUnixNano", self.a_time(t + 7) if self.chance(0.9) else b'"0"'))
        if self.chance(0.8):
            sev = [b"0", b"1", b"9", b"13", b"17", b"21", b"24", b"2147483647", b"-0"] + (
                [b'"SEVERITY_NUMBER_WARN"', b'"9"', b"-1", b"2147483648", b"9.0", b"null", b'"INFO"', b"1e1"]
                if self.odd
                else []
            )
            fields.append(("severityNumber", rng.choice(sev)))
        if self.chance(0.6):
            fields.append(("severityText", self.jstr(rng.choice(["INFO", "", "WARN", self.text()]))))
        if self.chance(0.85):
            fields.append(
                ("body", self.deep_value() if self.odd and self.chance(0.05) else self.any_value(0))
            )
        if self.chance(0.6):
            fields.append(("attributes", self.attributes()))
        for name in ("droppedAttributesCount", "flags"):
            if self.chance(0.15):
                values = [b"0", b"1", b"256", b"2147483647", b"-0"] + (
                    [b"2147483648", b"-1", b'"3"', b"1.0", b"null"] if self.odd else []
                )
                fields.append((name, rng.choice(values)))
        if self.chance(0.5):
            fields.append(("traceId", self.an_id(16) if self.chance(0.85) else b'""'))
        if self.chance(0.5):
            fields.append(("spanId", self.an_id(8) if self.chance(0.85) else b'""'))
        if self.chance(0.2):
            fields.append(("eventName", self.jstr(rng.choice(["", "browser.click", self.text()]))))
        return self.obj(fields)

    def resource_logs(self) -> bytes:
        rng = self.rng
        scope_logs = []
        for _ in range(rng.randint(1, 2)):
            sl = [
                (
                    "logRecords",
                    arr([self.log_record() for _ in range(rng.randint(0 if self.odd else 1, 4))], self.ws),
                )
            ]
            if self.chance(0.6):
                sl.append(("scope", rng.choice(SCOPES)))
            if self.chance(0.15):
                sl.append(("instrumentationLibrary", rng.choice(SCOPES)))
            scope_logs.append(self.obj(sl))
        rl = self.legacy_pair("scopeLogs", "instrumentationLibraryLogs", arr(scope_logs))
        if self.chance(0.8):
            rl.append(("resource", rng.choice(RESOURCES + (RESOURCES_ODD if self.odd else []))))
        return self.obj(rl)

    def log_line(self) -> bytes:
        """One LogsData line (now and then with spans beside the logs)."""
        rng = self.rng
        fields = [("resourceLogs", arr([self.resource_logs() for _ in range(rng.randint(1, 3))]))]
        if self.chance(0.1):
            fields.append(
                (
                    "resourceSpans",
                    arr([self.obj([("scopeSpans", arr([self.obj([("spans", arr([self.span()]))])]))])]),
                )
            )
        if self.odd and self.chance(0.05):
            return b'{"result":' + self.obj(fields) + b"}"
        return self.obj(fields)


RESOURCES = [
    b'{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}},'
    b'{"key":"host.name","value":{"stringValue":"h1"}}]}',
    b'{"attributes":[{"key":"service.name","value":{"stringValue":"pay \\u2713"}},'
    b'{"key":"host.id","value":{"intValue":"42"}},'
    b'{"key":"service.version","value":{"arrayValue":{"values":[{"boolValue":true}]}}}]}',
    b"{}",
    b"null",
    b'{"droppedAttributesCount":2,"attributes":[]}',
]
RESOURCES_ODD = [
    b'{"attributes":5}',
    b'{"attributes":[{"key":"service.name","value":{"intValue":"x"}}]}',
    b'"resource"',
    b"[]",
    b'{"attributes":[{"key":"service.name","value":{"stringValue":"a"}},'
    b'{"key":"service.name","value":{"stringValue":"b"}}]}',
]
SCOPES = [
    b'{"name":"lib","version":"1.0","attributes":[{"key":"s","value":{"doubleValue":0.25}}]}',
    b"{}",
    b"null",
    b'{"name":"\\u00e9t\\u00e9"}',
]


MUTANT_BYTES = [
    b'"',
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"0",
    b"-",
    b"e",
    b".",
    b" ",
    b"\x00",
    b"\xff",
    b"\\u",
    b"\\ud800",
    b"null",
    b"1e400",
    b'""',
    b"\xc3",
    b"\r",
]


def mutate(rng: random.Random, line: bytes) -> bytes:
    """A few byte-level edits (delete, insert a JSON-ish token, duplicate, swap) of a line."""
    for _ in range(rng.randint(1, 3)):
        if len(line) < 4:
            break
        a = rng.randrange(len(line))
        b = min(len(line), a + rng.choice([1, 1, 2, 5, 20]))
        op = rng.randrange(4)
        if op == 0:
            line = line[:a] + line[b:]
        elif op == 1:
            line = line[:a] + rng.choice(MUTANT_BYTES) + line[a:]
        elif op == 2:
            line = line[:b] + line[a:b] + line[b:]
        else:
            c = rng.randrange(len(line))
            line = line[:a] + line[c : c + 1] + line[a + 1 :]
    return line


def any_line(rng: random.Random) -> bytes:
    """A line of any sort: clean or odd spans, logs, blank, truncated, mutated byte-wise, with a BOM
    or trailing text."""
    what = rng.choice(
        [
            "clean",
            "clean",
            "odd",
            "odd",
            "odd",
            "odd",
            "log",
            "log",
            "log",
            "blank",
            "cut",
            "bom",
            "trail",
            "mutant",
            "mutant",
        ]
    )
    if what == "odd":
        return Gen(rng, rng.choice([0.02, 0.1, 0.3, 1.0])).span_line()
    if what == "log":
        return Gen(rng, rng.choice([0, 0.02, 0.1, 0.3, 1.0])).log_line()
    if what == "blank":
        return rng.choice([b"", b" ", b"\t", b"\r", b"  ", b" \r", b"   ", b"\x0c", b"\x0b"])
    line = Gen(rng, 0).span_line() if what != "mutant" or rng.random() < 0.6 else Gen(rng, 0).log_line()
    if what == "mutant":
        return mutate(rng, line)
    if what == "cut":
        return line[: rng.randint(1, len(line) - 1)]
    if what == "bom":
        return b"\xef\xbb\xbf" + line
    if what == "trail":
        return line + rng.choice([b" ", b"\r", b" x", b"{}", b"\t\r ", b"\x00"])
    return line


SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CLEAN_SETTINGS = settings(SETTINGS, max_examples=150)  # bigger lines: ~20 ms an example


@needs_native
@SETTINGS
@given(
    seed=st.integers(0, 2**64 - 1),
    nlines=st.integers(1, 6),
    first_line=st.sampled_from([1, 1, 41]),
    sep=st.sampled_from([b"\n", b"\n", b"\r\n"]),
    end=st.booleans(),
)
def test_hostile_lines_decode_the_same(
    seed: int, nlines: int, first_line: int, sep: bytes, end: bool, monkeypatch: pytest.MonkeyPatch
):
    """Any mix of clean, odd, log, blank, cut, BOM'd and trailing-text lines (LF or CRLF, with or
    without a last newline) decodes the same with and without the native tier."""
    rng = random.Random(seed)
    lines = [any_line(rng) for _ in range(nlines)]
    assert_same(sep.join(lines) + (sep if end else b""), monkeypatch, first_line)


@needs_native
@CLEAN_SETTINGS
@given(seed=st.integers(0, 2**64 - 1), nlines=st.integers(1, 4))
def test_clean_generated_lines_are_taken_and_decode_the_same(
    seed: int, nlines: int, monkeypatch: pytest.MonkeyPatch
):
    """Span and log lines with nothing odd, yet every escape, every AnyValue kind (nested too),
    every promoted name, fields in any order with unknown ones and whitespace between tokens: all
    taken natively."""
    rng = random.Random(seed)
    lines = [Gen(rng, 0).span_line() if rng.random() < 0.6 else Gen(rng, 0).log_line() for _ in range(nlines)]
    data = b"\n".join(lines) + b"\n"
    rows, _, declined = _scan(data)
    assert declined == [], [lines[d[0] - 1] for d in declined]
    assert rows == sum(_span_count(ln) for ln in lines)
    assert _log_rows(data) == sum(_log_count(ln) for ln in lines)
    assert_same(data, monkeypatch)


# ---- mismatches this file found, fixed: kept as regression tests --------------------------------


def _span_with_attribute(value: bytes) -> bytes:
    return (
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"'
        + TID.encode()
        + b'","spanId":"'
        + SID.encode()
        + b'","startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"x","value":'
        + value
        + b"}]}]}]}]}\n"
    )


@needs_native
def test_known_double_negative_zero_integer(monkeypatch: pytest.MonkeyPatch):
    assert_same(_span_with_attribute(b'{"doubleValue":-0}'), monkeypatch)


@needs_native
def test_known_null_array_element(monkeypatch: pytest.MonkeyPatch):
    assert_same(_span_with_attribute(b'{"arrayValue":{"values":[{"intValue":"5"},null]}}'), monkeypatch)


@pytest.mark.parametrize("native", [True, False], ids=["native", "msgspec"])
def test_known_careful_log_partial_row(native: bool, monkeypatch: pytest.MonkeyPatch):
    line = (
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"k","value":{"intValue":"x"}}]},'
        b"{}]}]}]}\n"
    )
    if native and SKIP_NATIVE:
        pytest.skip("ingest._otlpscan is not built")
    chunk, _ = _decode(line, 1, False, native, monkeypatch)
    assert chunk.logs is not None and chunk.logs.num_rows == 1 and len(chunk.rejects) == 1


@needs_native
def test_deep_values_are_taken_whether_the_resource_comes_first_or_last(monkeypatch: pytest.MonkeyPatch):
    """scopeSpans read after a later resource are skipped over first: that pass must not decline
    what the reading pass takes (nesting the scan writes out: 24 levels of AnyValue JSON)."""
    value: dict = {"stringValue": "leaf"}
    for _ in range(6):  # 18 levels of the scan's count, 78 of JSON below the span
        value = {"kvlistValue": {"values": [{"key": "k", "value": {"arrayValue": {"values": [value]}}}]}}
    span = {
        "traceId": TID,
        "spanId": SID,
        "startTimeUnixNano": "1",
        "attributes": [{"key": "deep", "value": value}],
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}
    first = json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]})
    last = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}], "resource": resource}]})
    data = (first + "\n" + last + "\n").encode()
    rows, nlines, declined = _scan(data)
    assert (rows, nlines, declined) == (2, 2, [])
    assert assert_same(data, monkeypatch)["spans"] == 2
