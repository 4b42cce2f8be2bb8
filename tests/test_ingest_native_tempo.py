"""OTLP/JSON as Go's protojson writes it (Grafana Tempo, grpc-gateway exporters) goes the native tier.

protojson writes bytes as standard base64 and enums by name: trace ids of 24 characters ending
"==", span ids of 12 ending "=", "kind": "SPAN_KIND_SERVER", "code": "STATUS_CODE_ERROR",
"severityNumber": "SEVERITY_NUMBER_INFO". The native scan (ingest/_otlpscan.c: id_hex, read_enum,
read_severity) takes those lines and writes what the reference (otlp_model.Sink) writes: ids as
lowercase hex, enums as otlp_model maps them. What the reference decides otherwise (a reject, a
warning, a padded 16-hex trace id, an unknown name) the scan declines, and the Python tiers decide.

    a Tempo dump as bench/shapes.py writes it      all taken; rows equal the reference's
    one field at a time: taken                     rows equal the reference's, values pinned
    one field at a time: declined                  the same chunk with and without the native tier
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pyarrow as pa
import pytest

from bench.shapes import SHAPES, Gen
from ingest import otlp_fast
from ingest import otlp_model as om
from ingest.otlp_fast import NATIVE_ENV, decode_lines_fast
from ingest.records import Chunk, SourceInfo
from tests.test_ingest_native import _plain, _scan, assert_same, needs_native

SRC = SourceInfo("src-tempo", "tempo.jsonl")
TID = "5b8efff798038103d269b633813fc60c"
SID = "eee19b7ec3c1b174"
PID = "00f067aa0ba902b7"


def b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def reference(data: bytes) -> Chunk:
    """The careful path alone, a line at a time: the rows every tier must write."""
    sink = om.Sink(SRC, "line")
    for n, line in enumerate(data.split(b"\n"), 1):
        if line.strip():
            sink.take_line(line, n)
    return sink.chunk()


def native(data: bytes, monkeypatch: pytest.MonkeyPatch) -> Chunk:
    monkeypatch.setenv(NATIVE_ENV, "1")
    assert otlp_fast.native_available()
    return decode_lines_fast(data, 1, SRC, compact=False)[0]


def assert_as_reference(data: bytes, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    """The native tier's chunk of `data` equals the reference's, row for row; its rows as dicts."""
    got, want = native(data, monkeypatch), reference(data)
    out = {}
    for what in ("spans", "logs"):
        (sg, rg), (sw, rw) = _plain(getattr(got, what)), _plain(getattr(want, what))
        assert (sg is None) == (sw is None), what
        if sg is not None and sw is not None:
            # same columns; the fast tiers may order or type-annotate them otherwise (dictionary columns)
            assert sorted(sg.names) == sorted(sw.names)
            order = [sw.names.index(n) for n in sg.names]
            rw = sorted((tuple(r[i] for i in order) for r in rw), key=repr)
            rg = sorted(rg, key=repr)
            assert rg == rw, what
            out[what] = [dict(zip(sg.names, r, strict=True)) for r in rg]
        else:
            out[what] = []
    assert [(r.offset, r.reason, r.raw) for r in got.rejects] == [
        (r.offset, r.reason, r.raw) for r in want.rejects
    ]
    return out


def span_line(span: dict[str, Any] | None = None, wrapper: str = "batches") -> bytes:
    sp: dict[str, Any] = {
        "traceId": b64(TID),
        "spanId": b64(SID),
        "parentSpanId": b64(PID),
        "name": "GET /",
        "kind": "SPAN_KIND_SERVER",
        "startTimeUnixNano": "1000",
        "endTimeUnixNano": "2000",
        "attributes": [{"key": "http.route", "value": {"stringValue": "/"}}],
        "status": {},
    }
    sp.update(span or {})
    sp = {k: v for k, v in sp.items() if v is not None}
    doc = {
        wrapper: [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                "scopeSpans": [{"scope": {"name": "lib"}, "spans": [sp]}],
            }
        ]
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def log_line(record: dict[str, Any]) -> bytes:
    lr = {"timeUnixNano": "5", "body": {"stringValue": "hi"}, **record}
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [lr]}]}]}
    return json.dumps(doc, separators=(",", ":")).encode()


def tempo_lines(n: int, seed: int) -> bytes:
    g = Gen(seed)
    make = SHAPES["tempo"].line
    assert make is not None
    return b"".join(make(g, 200_000)[0].encode() + b"\n" for _ in range(n))


# ---- a Tempo dump -----------------------------------------------------------------------------


@needs_native
def test_tempo_dump_is_taken_natively_with_the_reference_rows(monkeypatch: pytest.MonkeyPatch):
    data = tempo_lines(6, seed=3)
    assert b'"kind":"SPAN_KIND_' in data and b'=","' in data  # enum names and base64 ids, as Tempo writes
    rows, nlines, declined = _scan(data)
    assert (nlines, declined) == (6, [])
    spans = assert_as_reference(data, monkeypatch)["spans"]
    assert len(spans) == rows > 50
    assert all(len(s["trace_id"]) == 32 and len(s["span_id"]) == 16 for s in spans)
    assert {s["kind"] for s in spans} >= {"SERVER", "CLIENT"}
    roots = sum(
        "parentSpanId" not in sp
        for line in data.splitlines()
        for rs in json.loads(line)["batches"]
        for ss in rs["scopeSpans"]
        for sp in ss["spans"]
    )
    assert sum(s["parent_span_id"] is None for s in spans) == roots > 0
    assert_same(data, monkeypatch)


# ---- one field at a time: taken -----------------------------------------------------------------

TAKEN: list[tuple[str, bytes, dict[str, Any]]] = [  # (what, the line, column values of its one row)
    ("base64 ids", span_line(), {"trace_id": TID, "span_id": SID, "parent_span_id": PID, "kind": "SERVER"}),
    ("root without parentSpanId", span_line({"parentSpanId": None}), {"parent_span_id": None}),
    ("root with an empty parentSpanId", span_line({"parentSpanId": ""}), {"parent_span_id": None}),
    ("root with base64 zeros", span_line({"parentSpanId": "AAAAAAAAAAA="}), {"parent_span_id": None}),
    # Python's b64decode ignores the bits past the last byte: "R" ends the id as "Q" does
    ("trailing bits past the last byte", span_line({"spanId": b64(SID)[:10] + "R="}), {"span_id": SID}),
    ("trailing bits of a trace id", span_line({"traceId": b64(TID)[:21] + "N=="}), {"trace_id": TID}),
    ("'+' and '/' in base64", span_line({"spanId": b64("fbff" * 4)}), {"span_id": "fbff" * 4}),
    ("upper-case hex ids", span_line({"traceId": TID.upper(), "spanId": SID.upper()}), {"trace_id": TID}),
    ("upper-case hex parent", span_line({"parentSpanId": PID.upper()}), {"parent_span_id": PID}),
    ("Collector wrapper", span_line(wrapper="resourceSpans"), {"trace_id": TID}),
    *(
        (f"kind {name}", span_line({"kind": name}), {"kind": kind})
        for i, kind in enumerate(("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"))
        for name in (f"SPAN_KIND_{kind}", kind)
        if i in (0, 1, 5) or name.startswith("SPAN_KIND_")
    ),
    *(
        (f"status {name}", span_line({"status": {"code": name, "message": "m"}}), {"status_code": code})
        for code in ("UNSET", "OK", "ERROR")
        for name in (f"STATUS_CODE_{code}", code)
    ),
    (
        "base64 link ids",
        span_line({"links": [{"traceId": b64(PID * 2), "spanId": b64(PID)}]}),
        {
            "links": json.dumps(
                [
                    {
                        "trace_id": PID * 2,
                        "span_id": PID,
                        "trace_state": "",
                        "attributes": {},
                        "dropped_attributes_count": 0,
                        "flags": 0,
                    }
                ],
                separators=(",", ":"),
            )
        },
    ),
    (
        "log: base64 ids",
        log_line({"traceId": b64(TID), "spanId": b64(SID)}),
        {"trace_id": TID, "span_id": SID},
    ),
    ("log: upper-case ids", log_line({"traceId": TID.upper(), "spanId": SID.upper()}), {"span_id": SID}),
    (
        "log: SEVERITY_NUMBER_WARN",
        log_line({"severityNumber": "SEVERITY_NUMBER_WARN"}),
        {"severity_number": 13},
    ),
    (
        "log: SEVERITY_NUMBER_INFO3",
        log_line({"severityNumber": "SEVERITY_NUMBER_INFO3"}),
        {"severity_number": 11},
    ),
    (
        "log: SEVERITY_NUMBER_FATAL4",
        log_line({"severityNumber": "SEVERITY_NUMBER_FATAL4"}),
        {"severity_number": 24},
    ),
    (
        "log: SEVERITY_NUMBER_TRACE",
        log_line({"severityNumber": "SEVERITY_NUMBER_TRACE"}),
        {"severity_number": 1},
    ),
    ("log: unspecified", log_line({"severityNumber": "SEVERITY_NUMBER_UNSPECIFIED"}), {"severity_number": 0}),
]


@needs_native
@pytest.mark.parametrize("line,want", [(ln, w) for _, ln, w in TAKEN], ids=[what for what, _, _ in TAKEN])
def test_go_protojson_line_is_taken_with_the_reference_rows(
    line: bytes, want: dict[str, Any], monkeypatch: pytest.MonkeyPatch
):
    data = line + b"\n"
    assert _scan(data)[2] == []
    out = assert_as_reference(data, monkeypatch)
    (row,) = out["spans"] or out["logs"]
    assert {k: row[k] for k in want} == want
    assert row.get("warnings") is None
    assert_same(data, monkeypatch)


# ---- one field at a time: declined, the reference decides ---------------------------------------

DECLINED: list[tuple[str, bytes]] = [
    ("base64 zeros trace id (a reject)", span_line({"traceId": "A" * 22 + "=="})),
    ("base64 zeros span id (a reject)", span_line({"spanId": "AAAAAAAAAAA="})),
    ("base64 trace id of 17 bytes", span_line({"traceId": b64(TID)[:22] + "A="})),
    ("base64 span id of 9 bytes", span_line({"spanId": b64(SID)[:11] + "A"})),
    ("base64 span id of 7 bytes", span_line({"spanId": b64(SID)[:10] + "=="})),
    ("url-safe base64", span_line({"spanId": "-_" + b64(SID)[2:]})),
    ("a space in base64", span_line({"spanId": " " + b64(SID)[1:]})),
    ("escaped base64", span_line().replace(b64(SID).encode(), b"\\u0037" + b64(SID)[1:].encode(), 1)),
    ("16-hex trace id (the reference pads it)", span_line({"traceId": TID[:16]})),
    ("base64 trace id without padding", span_line({"traceId": b64(TID)[:22]})),
    ("bad base64 parent (a reject)", span_line({"parentSpanId": "!" + b64(PID)[1:]})),
    ("unknown kind name (UNSPECIFIED, warned)", span_line({"kind": "SPAN_KIND_SERVERS"})),
    ("lower-case kind name", span_line({"kind": "span_kind_server"})),
    ("kind prefix alone", span_line({"kind": "SPAN_KIND_"})),
    ("kind as digits", span_line({"kind": "2"})),
    ("kind name twice prefixed", span_line({"kind": "SPAN_KIND_SPAN_KIND_SERVER"})),
    ("unknown status name (UNSET)", span_line({"status": {"code": "STATUS_CODE_FAIL"}})),
    ("status as digits", span_line({"status": {"code": "2"}})),
    ("bad base64 link id (kept, warned)", span_line({"links": [{"traceId": "x" * 24, "spanId": b64(SID)}]})),
    (
        "base64 zeros link id (kept, warned)",
        span_line({"links": [{"traceId": b64(TID), "spanId": "AAAAAAAAAAA="}]}),
    ),
    ("log: base64 zeros trace id", log_line({"traceId": "A" * 22 + "=="})),
    ("log: bad base64 span id", log_line({"spanId": b64(SID)[:11] + "*"})),
    ("log: SEVERITY_NUMBER_INFO1 (none)", log_line({"severityNumber": "SEVERITY_NUMBER_INFO1"})),
    ("log: SEVERITY_NUMBER_INFO5 (none)", log_line({"severityNumber": "SEVERITY_NUMBER_INFO5"})),
    ("log: bare severity name (none)", log_line({"severityNumber": "INFO"})),
    ("log: severity as digits", log_line({"severityNumber": "9"})),
]


@needs_native
@pytest.mark.parametrize("line", [ln for _, ln in DECLINED], ids=[what for what, _ in DECLINED])
def test_odd_go_protojson_line_is_declined_and_decodes_as_the_reference(
    line: bytes, monkeypatch: pytest.MonkeyPatch
):
    clean = span_line()
    data = clean + b"\n" + line + b"\n"
    rows, _nlines, declined = _scan(data)
    assert rows == 1 and declined == [(2, len(clean) + 1, len(data) - 1)]
    assert_as_reference(data, monkeypatch)
    assert_same(data, monkeypatch)


def test_reference_outcomes_the_scan_leaves_alone():
    """What the declined lines above come to in the reference: the scan must not guess these."""
    chunk = reference(
        b"\n".join(
            [
                span_line({"traceId": "A" * 22 + "=="}),
                span_line({"kind": "SPAN_KIND_SERVERS"}),
                span_line({"traceId": TID[:16]}),
                span_line({"links": [{"traceId": "x" * 24, "spanId": b64(SID)}]}),
                span_line({"spanId": b64(SID)[:11] + "A"}),
            ]
        )
    )
    assert [(r.offset, r.reason) for r in chunk.rejects] == [
        (1, "trace id is all zeros"),
        (5, "span id is not 16 hex characters"),
    ]
    rows = pa.Table.from_batches([chunk.spans]).to_pylist()
    assert [(r["kind"], r["warnings"]) for r in rows] == [
        ("UNSPECIFIED", '["unknown span kind, stored as UNSPECIFIED"]'),
        ("SERVER", None),
        ("SERVER", '["a link has an invalid id, kept as written"]'),
    ]
    assert rows[1]["trace_id"] == "0" * 16 + TID[:16]


# ---- mutants of base64 ids and enum names ---------------------------------------------------------


def _id_mutant(rng: random.Random, text: str) -> str:
    s = list(text)
    op = rng.randrange(6)
    i = rng.randrange(len(s))
    if op == 0:
        s[i] = rng.choice("Aa0+/=-_ zZ9")
    elif op == 1:
        del s[i]
    elif op == 2:
        s.insert(i, rng.choice("A=/"))
    elif op == 3:
        s[-1] = rng.choice("A=")
    elif op == 4:
        return "A" * (len(s) - text.count("=")) + "=" * text.count("=")
    return "".join(s)


@needs_native
def test_mutated_ids_and_names_decode_as_the_reference(monkeypatch: pytest.MonkeyPatch):
    rng = random.Random(16)
    lines = []
    for _ in range(300):
        field = rng.choice(["traceId", "spanId", "parentSpanId", "kind", "status"])
        if field == "kind":
            value: Any = rng.choice(["SPAN_KIND_CLIENT", "CLIENT", "SPAN_KIND_CLIENTX", "SPAN_KIND", "", "5"])
        elif field == "status":
            value = {"code": rng.choice(["STATUS_CODE_OK", "OK", "STATUS_CODE_ok", "ERRORS", "0"])}
        else:
            width = 32 if field == "traceId" else 16
            hex_id = "".join(rng.choice("0123456789abcdef") for _ in range(width))
            value = _id_mutant(rng, b64(hex_id)) if rng.random() < 0.8 else b64(hex_id)
        lines.append(span_line({field: value}))
    data = b"\n".join(lines) + b"\n"
    _rows, _nlines, declined = _scan(data)
    assert 0 < len(declined) < len(lines)  # both kinds: the scan's own reading and its refusals
    assert_as_reference(data, monkeypatch)
