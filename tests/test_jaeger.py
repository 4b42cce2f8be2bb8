"""Jaeger UI JSON reader: CRISP cases, the OTLP <-> Jaeger pair, mapping rules, bad input."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pyarrow as pa
import pytest

from ingest import formats, jaeger, otlp_json
from ingest.records import Reject, SourceInfo
from ingest.schema import SPAN_SCHEMA

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "public"
CRISP = FIX / "crisp"


def read_bytes(data: bytes, path: str = "t.json") -> tuple[list[dict], list[Reject]]:
    chunks = list(jaeger.read(io.BytesIO(data), SourceInfo("src1", path)))
    for c in chunks:
        assert c.spans is None or c.spans.schema == SPAN_SCHEMA
    batches = [c.spans for c in chunks if c.spans is not None]
    rows = pa.Table.from_batches(batches, schema=SPAN_SCHEMA).to_pylist() if batches else []
    return rows, [r for c in chunks for r in c.rejects]


def read_file(path: Path) -> tuple[list[dict], list[Reject]]:
    return read_bytes(path.read_bytes(), str(path))


def expected_span_id(text: str) -> str:
    """The documented id rule, written out independently of the reader."""
    if all(c in "0123456789abcdefABCDEF" for c in text) and len(text) <= 16:
        return text.lower().rjust(16, "0")
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


# ---- CRISP --------------------------------------------------------------------------------

# file, spans, services, parent edges "child<parent" (ids as written), spans with status ERROR
# (error=true tags, and http.status_code 4xx/5xx on spans without span.kind, as the translator)
CRISP_CASES = [
    ("1.json", 1, "S1", "", 0),
    ("2.json", 2, "S1 S2", "B<A", 0),
    ("3.json", 2, "S1 S2", "B<A", 0),
    ("4.json", 3, "S1 S2 S3", "B<A C<B", 0),
    ("5.json", 4, "S1 S2", "B1<A B2<A B3<A", 0),
    ("6.json", 4, "S1 S2 S3 S4", "B<A C<A D<A", 0),
    ("7.json", 3, "S1 S2 S3", "B<A C<B", 0),
    ("8.json", 3, "S1 S2 S3", "B<A C<B", 0),
    ("9.json", 4, "S1 S2 S3 S4", "B<A C<B D<A", 0),
    ("10.json", 4, "S1 S2 S3 S4", "B<A C<A D<A", 0),
    ("11.json", 2, "S1 S2", "B<A", 1),
    ("12.json", 4, "S1 S2 S3 S4", "B<A C<B D<B", 0),
    ("13.json", 4, "S1 S2 S3 S4", "B<A C<B D<B", 0),
    ("14.json", 4, "S1 S2 S3 S4", "B<A C<A D<A", 0),
    ("15.json", 7, "S1 S2 S3 S4 S5 S6 S7", "B<A C<A D<A E<A F<A G<A", 1),
    ("16.json", 7, "S1 S2 S3 S4 S5 S6 S7", "B<A C<A D<A E<A F<A G<F", 2),
    ("17.json", 4, "S1 S2 S3 S4", "B<A C<B D<A", 1),
    ("18.json", 9, "S1 S2 S3 S4 S5 S6 S7 S8 S9", "B<A C<B D<B E<B F<A G<F H<G I<G", 1),
    ("19.json", 4, "S1 S2 S3 S4", "B<A C<A D<A", 3),
    ("20.json", 4, "S1 S2 S3 S4", "B<A C<A D<A", 2),
    ("21.json", 4, "S1 S2 S3 S4", "B<A C<A D<A", 2),
    ("22.json", 4, "S1 S2", "B<A C<A D<A", 3),
    ("23.json", 9, "S1 S2 S3", "B<A C<B D<B E<B F<A G<F H<F I<F", 6),
    ("24.json", 9, "S1 S2 S3", "B<A C<B D<B E<B F<A G<F H<F I<F", 7),
    ("25.json", 9, "S1 S2 S3", "B<A C<B D<B E<B F<A G<F H<F I<F", 4),
    ("err_pattern1/err1.json", 2, "S1 S2", "B<A", 2),
    ("err_pattern1/err2.json", 2, "S1 S2", "B<A", 2),
    ("err_pattern2/err1.json", 2, "S1 S2", "B<A", 1),
    ("err_pattern2/err2.json", 2, "S1 S2", "B<A", 1),
    ("err_pattern3/err1.json", 3, "S1 S2 S3", "B<A C<B", 2),
    ("err_pattern3/err2.json", 3, "S1 S2 S3", "B<A C<B", 2),
    ("err_pattern4/err1.json", 3, "S1 S2 S3", "B<A C<B", 1),
    ("err_pattern4/err2.json", 3, "S1 S2 S3", "B<A C<B", 2),
]


def test_the_table_covers_every_crisp_file():
    assert sorted(c[0] for c in CRISP_CASES) == sorted(
        str(p.relative_to(CRISP)) for p in CRISP.rglob("*.json")
    )


@pytest.mark.parametrize(
    ("name", "n_spans", "services", "edges", "n_errors"), CRISP_CASES, ids=[c[0] for c in CRISP_CASES]
)
def test_crisp_case(name: str, n_spans: int, services: str, edges: str, n_errors: int):
    rows, rejects = read_file(CRISP / name)
    assert rejects == []
    assert len(rows) == n_spans
    assert sorted({r["service_name"] for r in rows}) == services.split()
    assert {r["trace_id"] for r in rows} == {"0" * 31 + "a"}  # "A": short hex, left-padded
    want_parents = {
        expected_span_id(c): expected_span_id(p) for c, p in (e.split("<") for e in edges.split())
    }
    got_parents = {r["span_id"]: r["parent_span_id"] for r in rows if r["parent_span_id"] is not None}
    assert got_parents == want_parents
    roots = [r for r in rows if r["parent_span_id"] is None]
    assert [r["span_id"] for r in roots] == ["000000000000000a"]
    assert sum(r["status_code"] == "ERROR" for r in rows) == n_errors
    assert [r["source_offset"] for r in rows] == list(range(1, n_spans + 1))


def test_crisp_non_hex_ids_are_hashed_and_kept():
    rows, _ = read_file(CRISP / "18.json")
    by_name = {r["name"]: r for r in rows}
    g, h = by_name["O7"], by_name["O8"]
    assert g["span_id"] == hashlib.blake2b(b"G", digest_size=8).hexdigest()
    assert json.loads(g["attributes"])["jaeger.original_span_id"] == "G"
    assert g["parent_span_id"] == "000000000000000f"  # "F" is hex: padded, no attribute
    assert h["parent_span_id"] == g["span_id"]
    assert "jaeger.original_span_id" not in json.loads(by_name["O6"]["attributes"])
    # a string error tag is not an error status (the translator reads only error=true)
    assert json.loads(h["attributes"])["error"] == "ClientSideError" and h["status_code"] == "UNSET"


def test_crisp_times_are_microseconds():
    rows, _ = read_file(CRISP / "12.json")
    c = next(r for r in rows if r["name"] == "O3")
    assert (c["start_ns"], c["end_ns"], c["duration_ns"]) == (25_000, 45_000, 20_000)
    assert json.loads(c["events"]) == [
        {"time_ns": 100_000, "name": "error", "attributes": {}, "dropped_attributes_count": 0}
    ]


# ---- the same trace as OTLP (-in) and as Jaeger UI JSON (-out) ----------------------------


def _otlp_rows(path: Path) -> list[dict]:
    chunks = list(otlp_json.read(io.BytesIO(path.read_bytes()), SourceInfo("o", str(path))))
    assert not [r for c in chunks for r in c.rejects]
    return pa.Table.from_batches([c.spans for c in chunks if c.spans is not None]).to_pylist()


def test_ui_format_pair_gives_the_same_spans():
    otlp = _otlp_rows(FIX / "jaeger" / "ui-format" / "otlp2jaeger-in.json")
    jrows, rejects = read_file(FIX / "jaeger" / "ui-format" / "otlp2jaeger-out.json")
    assert rejects == []
    assert len(otlp) == len(jrows) == 2
    cols = (
        "trace_id",
        "span_id",
        "parent_span_id",
        "service_name",
        "name",
        "kind",
        "start_ns",
        "end_ns",
        "duration_ns",
        "status_code",
        "scope_name",
        "peer_service",
    )
    for o, j in zip(otlp, jrows, strict=True):
        assert {c: o[c] for c in cols} == {c: j[c] for c in cols}
        oa, ja = json.loads(o["attributes"]), json.loads(j["attributes"])
        assert oa == ja == {"net.peer.ip": "1.2.3.4", "peer.service": "telemetrygen-client"}
    # and the values themselves, from the files
    assert jrows[0]["trace_id"] == "83a9efd15c1c98a977e0711cc93ee28b"
    assert (jrows[0]["span_id"], jrows[0]["parent_span_id"]) == ("e127af99e3b3e074", "909541b92cf05311")
    assert (jrows[0]["start_ns"], jrows[0]["end_ns"]) == (1706678909209712000, 1706678909209835000)
    assert (jrows[0]["kind"], jrows[0]["service_name"], jrows[0]["scope_name"]) == (
        "SERVER",
        "telemetrygen",
        "telemetrygen",
    )


# ---- mapping rules on a hand-written document ---------------------------------------------

TID = "5b8aa5a2d2c872e8321cf37308d69df2"


def _span(span_id: str, **kw) -> dict:
    base = {
        "traceID": TID,
        "spanID": span_id,
        "operationName": f"op-{span_id}",
        "references": [],
        "startTime": 1_700_000_000_000_000,
        "duration": 1500,
        "tags": [],
        "logs": [],
        "processID": "p1",
        "warnings": None,
    }
    base.update(kw)
    return base


def _tag(key, value, typ="string"):
    return {"key": key, "type": typ, "value": value}


PROCESSES = {
    "p1": {
        "serviceName": "frontend",
        "tags": [_tag("hostname", "fe-1"), _tag("ip", "10.0.0.1"), _tag("jaeger.version", "Go-2.30.0")],
    },
    "p2": {"serviceName": "redis", "tags": [_tag("ip", "10.0.0.9")]},
}


def _doc(spans: list[dict], processes: dict = PROCESSES, trace_id: str = TID) -> bytes:
    return json.dumps(
        {
            "data": [{"traceID": trace_id, "spans": spans, "processes": processes, "warnings": None}],
            "total": 0,
            "limit": 0,
            "offset": 0,
            "errors": None,
        }
    ).encode()


def test_mapping_rules():
    root = _span(
        "0000000000000001",
        tags=[
            _tag("span.kind", "server"),
            _tag("http.status_code", 404, "int64"),
            _tag("otel.scope.name", "lib"),
            _tag("otel.scope.version", "1.2"),
            _tag("w3c.tracestate", "k=v"),
            _tag("sampler.param", 0.5, "float64"),
        ],
    )
    client = _span(
        "00000000000000c1",
        processID="p2",
        references=[{"refType": "CHILD_OF", "traceID": TID, "spanID": "0000000000000001"}],
        tags=[_tag("span.kind", "client"), _tag("http.status_code", "404"), _tag("db.system", "redis")],
        warnings=["clock skew adjustment disabled"],
    )
    failed = _span(
        "00000000000000e1",
        references=[{"refType": "CHILD_OF", "spanID": "1"}],
        tags=[
            _tag("error", True, "bool"),
            _tag("otel.status_code", "OK"),
            _tag("otel.status_description", "boom"),
        ],
        logs=[
            {
                "timestamp": 1_700_000_000_000_500,
                "fields": [
                    _tag("event", "error"),
                    _tag("error.kind", "Timeout"),
                    _tag("message", "deadline exceeded"),
                ],
            }
        ],
    )
    ok = _span(
        "00000000000000f1",
        references=[{"refType": "CHILD_OF", "spanID": "1"}],
        tags=[
            _tag("otel.status_code", "ERROR"),
            _tag("otel.status_description", "bad"),
            _tag("span.kind", "producer"),
        ],
    )
    rows, rejects = read_bytes(_doc([root, client, failed, ok]))
    assert rejects == []
    r, c, f, o = rows
    assert (r["kind"], r["status_code"], r["scope_name"], r["scope_version"], r["trace_state"]) == (
        "SERVER",
        "UNSET",
        "lib",
        "1.2",
        "k=v",
    )  # 404 on a server is not its error
    assert json.loads(r["attributes"]) == {"http.status_code": 404, "sampler.param": 0.5}
    assert r["http_status_code"] == 404 and r["parent_span_id"] is None
    assert (c["kind"], c["status_code"], c["parent_span_id"]) == ("CLIENT", "ERROR", "0000000000000001")
    assert (c["service_name"], c["host"], c["db_system"]) == ("redis", "10.0.0.9", "redis")
    assert json.loads(c["warnings"]) == ["clock skew adjustment disabled"]
    assert (f["status_code"], f["status_message"], f["parent_span_id"]) == (
        "ERROR",
        "boom",
        "0000000000000001",
    )
    assert json.loads(f["attributes"]) == {}  # error, otel.status_* consumed
    assert (f["exception_type"], f["exception_message"]) == ("Timeout", "deadline exceeded")
    assert json.loads(f["events"]) == [
        {
            "time_ns": 1_700_000_000_000_500_000,
            "name": "error",
            "attributes": {"error.kind": "Timeout", "message": "deadline exceeded"},
            "dropped_attributes_count": 0,
        }
    ]
    assert (o["status_code"], o["status_message"], o["kind"]) == ("ERROR", "bad", "PRODUCER")
    res = json.loads(r["resource_attributes"])
    assert res == {
        "service.name": "frontend",
        "host.name": "fe-1",
        "ip": "10.0.0.1",
        "jaeger.version": "Go-2.30.0",
    }
    assert r["host"] == "fe-1"
    assert (r["start_ns"], r["end_ns"], r["duration_ns"]) == (
        1_700_000_000_000_000_000,
        1_700_000_000_001_500_000,
        1_500_000,
    )


def test_references_parent_and_links():
    other = "00000000000000000000000000000abc"
    follows_only = _span(
        "0000000000000002",
        references=[{"refType": "FOLLOWS_FROM", "traceID": TID, "spanID": "0000000000000001"}],
    )
    mixed = _span(
        "0000000000000003",
        references=[
            {"refType": "FOLLOWS_FROM", "traceID": TID, "spanID": "0000000000000002"},
            {"refType": "CHILD_OF", "traceID": other, "spanID": "00000000000000aa"},
            {"refType": "CHILD_OF", "traceID": TID, "spanID": "0000000000000001"},
        ],
    )
    rows, rejects = read_bytes(_doc([_span("0000000000000001"), follows_only, mixed]))
    assert rejects == []
    _, f, m = rows
    # no CHILD_OF: the FOLLOWS_FROM reference is the parent (Jaeger's Span.ParentSpanID) and a link
    assert f["parent_span_id"] == "0000000000000001"
    assert json.loads(f["links"]) == [
        {
            "trace_id": TID,
            "span_id": "0000000000000001",
            "trace_state": "",
            "attributes": {"opentracing.ref_type": "follows_from"},
            "type": "FOLLOWS_FROM",
        }
    ]
    # the first CHILD_OF into the same trace wins; the cross-trace CHILD_OF is a plain link
    assert m["parent_span_id"] == "0000000000000001"
    assert json.loads(m["links"]) == [
        {
            "trace_id": TID,
            "span_id": "0000000000000002",
            "trace_state": "",
            "attributes": {"opentracing.ref_type": "follows_from"},
            "type": "FOLLOWS_FROM",
        },
        {
            "trace_id": other,
            "span_id": "00000000000000aa",
            "trace_state": "",
            "attributes": {"opentracing.ref_type": "child_of"},
        },
    ]


def test_64_bit_trace_ids_are_padded_and_ui_fields_ignored():
    short = "321cf37308d69df2"
    ui_span = _span(
        "00000000000000b1",
        traceID=short,
        processID="p-unknown",
        process={"serviceName": "embedded", "tags": [_tag("host.name", "h-9")]},
        references=[
            {
                "refType": "CHILD_OF",
                "traceID": short,
                "spanID": "00000000000000a1",
                "span": {"spanID": "00000000000000a1", "depth": 0, "hasChildren": True},
            }
        ],
        relativeStartTime=12,
        depth=1,
        hasChildren=False,
        childSpanIds=[],
    )
    rows, rejects = read_bytes(_doc([_span("00000000000000a1", traceID=short), ui_span], trace_id=short))
    assert rejects == []
    assert {r["trace_id"] for r in rows} == {"0" * 16 + short}
    assert (rows[1]["service_name"], rows[1]["host"], rows[1]["parent_span_id"]) == (
        "embedded",
        "h-9",
        "00000000000000a1",
    )
    assert rows[1]["warnings"] is None


def test_unknown_process_is_kept_with_a_warning():
    rows, rejects = read_bytes(_doc([_span("0000000000000001", processID="nope")]))
    assert rejects == [] and rows[0]["service_name"] is None
    assert json.loads(rows[0]["warnings"]) == ["processID is not in the trace's processes: no service"]


# ---- bad input ----------------------------------------------------------------------------


def test_bad_records_are_rejected_and_good_ones_kept():
    good = _span("0000000000000001")
    no_id = _span("x")
    del no_id["spanID"]
    bad_time = _span("0000000000000003", startTime="soon")
    zero_id = _span("0000000000000000")
    doc = json.loads(_doc([good, no_id, bad_time, 7, zero_id, _span("0000000000000006")]))
    doc["data"].insert(0, "not a trace")
    doc["data"].append({"traceID": TID, "spans": "nope"})
    data = json.dumps(doc).encode()
    rows, rejects = read_bytes(data, "bad.json")
    assert [r["span_id"] for r in rows] == ["0000000000000001", "0000000000000006"]
    assert [r["source_offset"] for r in rows] == [1, 6]
    not_obj, *span_rejects, bad_trace = rejects
    assert [(r.offset, r.unit) for r in span_rejects] == [
        (2, "record"),
        (3, "record"),
        (4, "record"),
        (5, "record"),
    ]
    assert [r.reason for r in span_rejects] == [
        "spanID missing",
        "Expected `int | null`, got `str` - at `$.startTime`",
        "Expected `object`, got `int`",
        "spanID is all zeros",
    ]
    assert json.loads(span_rejects[0].raw) == no_id  # verbatim
    assert span_rejects[2].raw == b"7"
    assert all(r.source == "bad.json" for r in rejects)
    assert (not_obj.unit, not_obj.offset, not_obj.raw) == (
        "byte",
        data.index(b'"not a trace"'),
        b'"not a trace"',
    )
    assert not_obj.reason == "trace #1 is not a JSON object"
    assert bad_trace.unit == "byte" and bad_trace.reason.startswith(
        "trace #3 is not readable: Expected `array | null`"
    )


def test_a_span_nested_too_deep_is_rejected_alone():
    spans = [
        _span("0000000000000001"),
        _span("0000000000000002", tags=[_tag("x", "DEEP")]),
        _span("0000000000000003"),
    ]
    data = _doc(spans).replace(b'"DEEP"', b"[" * 3000 + b"]" * 3000)
    rows, rejects = read_bytes(data)
    assert [r["span_id"] for r in rows] == ["0000000000000001", "0000000000000003"]
    assert [(r.offset, r.unit) for r in rejects] == [(2, "record")]
    assert rejects[0].reason.startswith("maximum recursion depth exceeded")
    assert rejects[0].raw.startswith(b'{"traceID"') and b'"spanID": "0000000000000002"' in rejects[0].raw


def test_truncated_file_keeps_the_traces_before_the_cut():
    doc = json.loads(_doc([_span("0000000000000001")]))
    doc["data"].append(json.loads(_doc([_span("0000000000000002")]))["data"][0])
    full = json.dumps(doc).encode()
    cut = full.index(b'"0000000000000002"')
    rows, rejects = read_bytes(full[:cut])
    assert [r["span_id"] for r in rows] == ["0000000000000001"]
    (rej,) = rejects
    trace2 = full.index(f', {{"traceID": "{TID}", "spans"'.encode()) + 2
    assert (rej.unit, rej.offset) == ("byte", trace2)
    assert rej.reason == "malformed JSON, the rest of the input is skipped: input ends inside a JSON value"
    assert full[:cut].endswith(rej.raw)


def test_api_error_response_is_a_reject_and_an_empty_result_is_nothing():
    err = b'{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}'
    rows, rejects = read_bytes(err)
    assert rows == [] and [r.reason for r in rejects] == [
        "the Jaeger API response reports an error: trace not found"
    ]
    assert read_bytes(b'{"data":[],"total":0,"limit":0,"offset":0,"errors":null}') == ([], [])


def test_bare_trace_and_concatenated_documents():
    trace = json.loads(_doc([_span("0000000000000001")]))["data"][0]
    rows, rejects = read_bytes(json.dumps(trace).encode())
    assert rejects == [] and len(rows) == 1
    two = _doc([_span("0000000000000001")]) + b"\n" + _doc([_span("0000000000000002")])
    rows, rejects = read_bytes(two)
    assert rejects == [] and [r["source_offset"] for r in rows] == [1, 2]


# ---- format detection ---------------------------------------------------------------------

SNIFF_CASES = [
    (CRISP / "1.json", "jaeger"),
    (FIX / "jaeger" / "ui-format" / "otlp2jaeger-out.json", "jaeger"),
    (FIX / "jaeger" / "ui-format" / "otlp2jaeger-in.json", "otlp_json"),
    (FIX / "otlp-examples" / "trace.json", "otlp_json"),
    (FIX / "jaeger" / "otlp-traces" / "example_trace.json", "otlp_json"),
    (FIX / "zipkin" / "sample3.json", "zipkin"),
]


@pytest.mark.parametrize(("path", "fmt"), SNIFF_CASES, ids=[p.name for p, _ in SNIFF_CASES])
def test_detect(path: Path, fmt: str):
    head = path.read_bytes()[: formats.HEAD_BYTES]
    assert formats.detect(head).name == fmt
    assert jaeger.sniff(head) is (fmt == "jaeger")


@pytest.mark.parametrize(
    "head",
    [
        b'{"result":{"resourceSpans":[{"resource":{}}]}}',
        b'{"batches":[{"resource":{},"scopeSpans":[]}]}',
        b'[{"traceId":"a","id":"b","name":"x"}]',
        b'{"data":"x"}',
    ],
)
def test_sniff_says_no(head: bytes):
    assert not jaeger.sniff(head)


def test_sniff_accepts_an_empty_search_result():
    assert jaeger.sniff(b'{"data":[],"total":0,"limit":0,"offset":0,"errors":null}')
