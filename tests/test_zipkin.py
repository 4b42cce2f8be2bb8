"""Zipkin v2 JSON reader: the collector's sample, shared spans, mapping rules, bad input."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pyarrow as pa
import pytest

from ingest import zipkin
from ingest.records import Reject, SourceInfo
from ingest.schema import SPAN_SCHEMA

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "public"


def read_bytes(data: bytes, path: str = "z.json") -> tuple[list[dict], list[Reject]]:
    chunks = list(zipkin.read(io.BytesIO(data), SourceInfo("src1", path)))
    batches = [c.spans for c in chunks if c.spans is not None]
    for b in batches:
        assert b.schema == SPAN_SCHEMA
    rows = pa.Table.from_batches(batches, schema=SPAN_SCHEMA).to_pylist() if batches else []
    return rows, [r for c in chunks for r in c.rejects]


def test_collector_sample_with_its_error_status():
    path = FIX / "zipkin" / "sample3.json"
    rows, rejects = read_bytes(path.read_bytes(), str(path))
    assert rejects == []
    (r,) = rows
    assert (r["trace_id"], r["span_id"], r["parent_span_id"]) == (
        "4d1e00c0db9010db86154a4ba6e91385",
        "4d1e00c0db9010db",
        "86154a4ba6e91385",
    )
    assert (r["status_code"], r["status_message"]) == ("ERROR", "Something failed")
    assert (r["kind"], r["name"], r["service_name"]) == (
        "CLIENT",
        "get",
        None,
    )  # no localEndpoint.serviceName
    assert (r["start_ns"], r["end_ns"], r["duration_ns"]) == (
        1472470996199000000,
        1472470996406000000,
        207000000,
    )
    assert json.loads(r["attributes"]) == {
        "peer.service": "backend",
        "network.peer.address": "192.168.99.101",
        "network.peer.port": 9000,
        "http.path": "/api",
        "clnt/finagle.version": "6.45.0",
    }  # otel.status_* consumed
    assert (r["peer_service"], r["http_route"]) == ("backend", "/api")
    assert json.loads(r["resource_attributes"]) == {"host.ip": "7::0.128.128.127"}
    assert r["host"] == "7::0.128.128.127"
    assert [(e["time_ns"], e["name"]) for e in json.loads(r["events"])] == [
        (1472470996238000000, "foo"),
        (1472470996403000000, "bar"),
    ]
    assert (r["source_id"], r["source_offset"]) == ("src1", 1)


TRACE = "463ac35c9f6413ad48485a3953bb6124"
CLIENT = {
    "traceId": TRACE,
    "id": "a2fb4a1d1a96d312",
    "parentId": "0000000000000000",
    "kind": "CLIENT",
    "name": "get /api",
    "timestamp": 1_600_000_000_000_000,
    "duration": 900,
    "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1", "port": 8080},
    "remoteEndpoint": {"serviceName": "backend", "ipv6": "::1", "port": 9000},
}
SERVER = {
    "traceId": TRACE,
    "id": "a2fb4a1d1a96d312",
    "kind": "SERVER",
    "shared": True,
    "name": "get /api",
    "timestamp": 1_600_000_000_000_100,
    "duration": 700,
    "localEndpoint": {"serviceName": "backend"},
}


@pytest.mark.parametrize("order", ["client first", "server first"])
def test_shared_server_span_keeps_both_halves(order: str):
    spans = [CLIENT, SERVER] if order == "client first" else [SERVER, CLIENT]
    rows, rejects = read_bytes(json.dumps(spans).encode())
    assert rejects == []
    by_kind = {r["kind"]: r for r in rows}
    client, server = by_kind["CLIENT"], by_kind["SERVER"]
    assert (client["span_id"], client["parent_span_id"]) == ("a2fb4a1d1a96d312", None)  # zero parent: a root
    want = hashlib.blake2b(f"zipkin-shared:{TRACE}:a2fb4a1d1a96d312".encode(), digest_size=8).hexdigest()
    assert server["span_id"] == want == zipkin.shared_span_id(TRACE, "a2fb4a1d1a96d312")
    assert server["parent_span_id"] == "a2fb4a1d1a96d312"
    assert json.loads(server["attributes"]) == {"zipkin.shared_span_id": "a2fb4a1d1a96d312"}
    assert (server["service_name"], client["service_name"]) == ("backend", "frontend")
    assert json.loads(client["attributes"]) == {
        "peer.service": "backend",
        "network.peer.address": "::1",
        "network.peer.port": 9000,
        "network.local.port": 8080,
    }


def test_shared_spans_survive_ingest_dedupe(tmp_path: Path):
    import ingest

    f = tmp_path / "rpc.json"
    f.write_text(json.dumps([CLIENT, SERVER]))
    result = ingest.ingest_paths([str(f)], "zipkin")
    assert (result.spans, result.rejected, result.duplicates) == (2, 0, 0)
    assert result.sources[0].format == "zipkin"


def _z(**kw) -> dict:
    base = {
        "traceId": "48485a3953bb6124",
        "id": "0000000000000001",
        "name": "op",
        "timestamp": 1_000_000,
        "duration": 5,
    }
    base.update(kw)
    return base


@pytest.mark.parametrize(
    ("tags", "kind", "status", "message", "attrs"),
    [
        ({"error": "true"}, "CLIENT", "ERROR", None, {}),
        ({"error": ""}, "CLIENT", "ERROR", None, {}),
        (
            {"error": "connection refused"},
            "CLIENT",
            "ERROR",
            "connection refused",
            {"error": "connection refused"},
        ),
        ({"otel.status_code": "OK"}, "CLIENT", "OK", None, {}),
        (
            {"otel.status_code": "ERROR", "otel.status_description": "x", "error": "y"},
            "CLIENT",
            "ERROR",
            "x",
            {"error": "y"},
        ),
        ({"http.status_code": "500"}, "CLIENT", "UNSET", None, {"http.status_code": "500"}),
    ],
)
def test_status_from_tags(tags, kind, status, message, attrs):
    rows, _ = read_bytes(json.dumps([_z(kind=kind, tags=tags)]).encode())
    r = rows[0]
    assert (r["status_code"], r["status_message"]) == (status, message)
    assert json.loads(r["attributes"]) == attrs


@pytest.mark.parametrize(
    ("kind", "tags", "want"),
    [
        ("SERVER", {}, "SERVER"),
        ("PRODUCER", {}, "PRODUCER"),
        ("CONSUMER", {}, "CONSUMER"),
        (None, {}, "UNSPECIFIED"),
        (None, {"span.kind": "internal"}, "INTERNAL"),
        ("nonsense", {}, "UNSPECIFIED"),
    ],
)
def test_kinds(kind, tags, want):
    span = _z(tags=tags)
    if kind is not None:
        span["kind"] = kind
    rows, _ = read_bytes(json.dumps([span]).encode())
    assert rows[0]["kind"] == want
    assert "span.kind" not in json.loads(rows[0]["attributes"])


def test_ids_times_and_absent_timestamp():
    no_ts = _z(id="2", parentId="1", timestamp=None, duration=40)
    del no_ts["timestamp"]
    rows, rejects = read_bytes(json.dumps([_z(), no_ts]).encode())
    assert rejects == []
    a, b = rows
    assert a["trace_id"] == "0" * 16 + "48485a3953bb6124"  # 64-bit ids join 128-bit OTLP ids
    assert (b["span_id"], b["parent_span_id"]) == ("0000000000000002", "0000000000000001")
    assert (a["start_ns"], a["end_ns"], a["duration_ns"]) == (1_000_000_000, 1_000_005_000, 5_000)  # µs -> ns
    assert (b["start_ns"], b["end_ns"], b["duration_ns"]) == (None, None, 40_000)


def test_list_of_traces_and_bad_records():
    good1, good2 = _z(id="a1"), _z(id="a2")
    bad_hex = _z(id="zzzz")
    no_trace = _z(id="a3")
    del no_trace["traceId"]
    bad_type = _z(id="a4", timestamp="yesterday")
    data = json.dumps([[good1, bad_hex], [no_trace, 5, bad_type, good2]]).encode()
    rows, rejects = read_bytes(data, "traces.json")
    assert [r["span_id"] for r in rows] == ["00000000000000a1", "00000000000000a2"]
    assert [r["source_offset"] for r in rows] == [1, 6]
    assert [(r.offset, r.unit, r.reason) for r in rejects] == [
        (2, "record", "id is not hex of at most 16 characters"),
        (3, "record", "traceId missing"),
        (4, "record", "span is not a JSON object"),
        (5, "record", "Expected `int | null`, got `str` - at `$.timestamp`"),
    ]
    assert json.loads(rejects[0].raw) == bad_hex and rejects[2].raw == b"5"
    assert all(r.source == "traces.json" for r in rejects)


def test_a_span_nested_too_deep_is_rejected_alone():
    data = json.dumps([_z(id="1"), _z(id="2", tags={"a": "DEEP"}), _z(id="3")]).encode()
    rows, rejects = read_bytes(data.replace(b'"DEEP"', b"[" * 3000 + b"]" * 3000))
    assert [r["span_id"] for r in rows] == ["0000000000000001", "0000000000000003"]
    assert [(r.offset, r.unit) for r in rejects] == [(2, "record")]


def test_an_object_is_not_zipkin_and_truncation_is_one_reject():
    rows, rejects = read_bytes(b'{"spans": []}')
    assert rows == [] and [r.reason for r in rejects] == ["not a Zipkin v2 list of spans (a JSON object)"]
    data = json.dumps([_z(id="1"), _z(id="2")]).encode()
    rows, rejects = read_bytes(data[: data.index(b'"id": "2"')])
    assert [r["span_id"] for r in rows] == ["0000000000000001"]
    assert [(r.unit, r.reason) for r in rejects] == [
        ("byte", "malformed JSON, the rest of the input is skipped: input ends inside a JSON value")
    ]


@pytest.mark.parametrize(
    ("head", "yes"),
    [
        (b'[{"traceId":"a","id":"b"}]', True),
        (b' [\n [ {"traceId": "a", "parentId": "c", "id": "b"}]]', True),
        (b"[]", True),
        (b'[{"traceId":"a","id":"b","binaryAnnotations":[]}]', False),  # Zipkin v1
        (b'[{"traceID":"a","spans":[{"spanID":"b"}]}]', False),  # Jaeger traces
        (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"a","id":"b"}]}]}]}', False),
        (b'{"data":[{"traceID":"a"}]}', False),
    ],
)
def test_sniff(head: bytes, yes: bool):
    assert zipkin.sniff(head) is yes
