"""OTLP protobuf (Collector file exporter framing) ingests to the same rows as its JSON twin."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from google.protobuf import json_format
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, LogsData, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status, TracesData

import ingest
from ingest.dataset import open_handle
from ingest.otlp_proto import message_kind, sniff

TID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


def kv(key: str, **value) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def resource(service: str) -> Resource:
    return Resource(
        attributes=[
            kv("service.name", string_value=service),
            kv("host.name", string_value="node-7"),
            kv("service.version", string_value="2.1"),
        ]
    )


def traces(n: int, service: str) -> TracesData:
    spans = []
    for i in range(n):
        sp = Span(
            trace_id=TID,
            span_id=(i + 1).to_bytes(8, "big") + b"",
            name=f"op-{i}",
            kind=Span.SPAN_KIND_SERVER if i == 0 else Span.SPAN_KIND_CLIENT,
            parent_span_id=b"" if i == 0 else (1).to_bytes(8, "big"),
            trace_state="k=v" if i else "",
            start_time_unix_nano=1_700_000_000_000_000_000 + i * 1000,
            end_time_unix_nano=1_700_000_000_000_500_000 + i * 1000,
            flags=257,
            dropped_attributes_count=i,
            attributes=[
                kv("http.request.method", string_value="POST"),
                kv("http.response.status_code", int_value=500),
                kv("ok", bool_value=False),
                kv("ratio", double_value=0.25),
                kv("blob", bytes_value=b"\x00\x01\xff"),
                kv(
                    "tags", array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(int_value=2)])
                ),
                kv("nested", kvlist_value=KeyValueList(values=[kv("inner", string_value="x")])),
            ],
        )
        if i == 1:
            sp.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="upstream 500"))
            ev = sp.events.add(time_unix_nano=1_700_000_000_000_400_000, name="exception")
            ev.attributes.extend(
                [
                    kv("exception.type", string_value="IOError"),
                    kv("exception.message", string_value="reset by peer"),
                ]
            )
            ln = sp.links.add(trace_id=bytes(range(16)), span_id=bytes(range(8)))
            ln.attributes.append(kv("why", string_value="retry"))
        spans.append(sp)
    scope = InstrumentationScope(name="io.opentelemetry.test", version="1.0")
    return TracesData(
        resource_spans=[
            ResourceSpans(resource=resource(service), scope_spans=[ScopeSpans(scope=scope, spans=spans)])
        ]
    )


def logs() -> LogsData:
    recs = [
        LogRecord(
            time_unix_nano=1_700_000_000_000_000_100,
            observed_time_unix_nano=1_700_000_000_000_000_200,
            severity_number=17,
            severity_text="ERROR",
            body=AnyValue(string_value="payment failed"),
            trace_id=TID,
            span_id=(2).to_bytes(8, "big"),
            attributes=[kv("order", int_value=42)],
        ),
        LogRecord(
            observed_time_unix_nano=1_700_000_000_000_000_300,
            severity_number=9,
            body=AnyValue(kvlist_value=KeyValueList(values=[kv("event", string_value="login")])),
        ),
    ]
    return LogsData(
        resource_logs=[ResourceLogs(resource=resource("auth"), scope_logs=[ScopeLogs(log_records=recs)])]
    )


def framed(*messages) -> bytes:
    out = b""
    for m in messages:
        data = m.SerializeToString()
        out += len(data).to_bytes(4, "big") + data
    return out


def rows(name: str, kind: str) -> list[dict]:
    h = open_handle(name)
    files = h.span_files if kind == "spans" else h.log_files
    t = pa.concat_tables([pq.read_table(f) for f in files]).drop_columns(["source_id", "source_offset"])
    return sorted(
        t.to_pylist(), key=lambda r: (r.get("span_id") or "", r.get("time_ns") or 0, r.get("name") or "")
    )


def test_protobuf_and_json_twin_give_the_same_rows(tmp_path: Path):
    msgs = [traces(3, "checkout"), traces(2, "cart"), logs()]
    msgs[1].resource_spans[0].scope_spans[0].spans[0].trace_id = bytes.fromhex("11" * 16)
    msgs[1].resource_spans[0].scope_spans[0].spans[1].trace_id = bytes.fromhex("11" * 16)
    (tmp_path / "dump.binpb").write_bytes(framed(*msgs))
    # protobuf JSON mapping: ids as base64, enums as names, 64-bit ints as strings
    twin = "\n".join(json_format.MessageToJson(m, indent=None) for m in msgs) + "\n"
    (tmp_path / "dump.json").write_text(twin)
    rp = ingest.ingest_paths([str(tmp_path / "dump.binpb")], "pb")
    rj = ingest.ingest_paths([str(tmp_path / "dump.json")], "js")
    assert (rp.spans, rp.logs, rp.rejected) == (rj.spans, rj.logs, rj.rejected) == (5, 2, 0)
    assert rp.sources[0].format == "otlp_proto" and rj.sources[0].format == "otlp_json"
    pspans, jspans = rows("pb", "spans"), rows("js", "spans")
    assert pspans == jspans
    assert rows("pb", "logs") == rows("js", "logs")
    err = next(r for r in pspans if r["status_code"] == "ERROR" and r["service_name"] == "checkout")
    assert err["exception_type"] == "IOError" and err["status_message"] == "upstream 500"
    assert err["http_method"] == "POST" and err["http_status_code"] == 500 and err["host"] == "node-7"
    assert '"blob":"AAH/"' in err["attributes"] and '"nested":{"inner":"x"}' in err["attributes"]
    assert '"trace_id":"000102030405060708090a0b0c0d0e0f"' in err["links"]


def test_protobuf_offsets_and_truncated_tail(tmp_path: Path):
    first, second = traces(1, "a"), traces(1, "b")
    second.resource_spans[0].scope_spans[0].spans[0].span_id = (9).to_bytes(8, "big")
    data = framed(first, second)
    (tmp_path / "cut.pb").write_bytes(data + data[:30])  # a third message cut short
    r = ingest.ingest_paths([str(tmp_path / "cut.pb")], "cut")
    assert (r.spans, r.rejected) == (2, 1)
    offsets = sorted(x["source_offset"] for x in pq.read_table(open_handle("cut").span_files[0]).to_pylist())
    assert offsets == [0, len(framed(first))]
    import json

    [rej] = [json.loads(x) for x in Path(r.rejects_path).read_text().splitlines()]
    assert (rej["offset"], rej["unit"], rej["reason"]) == (len(data), "byte", "truncated message")


def test_bad_span_in_protobuf_is_rejected_alone(tmp_path: Path):
    td = traces(3, "x")
    td.resource_spans[0].scope_spans[0].spans[2].span_id = b"\x01\x02"  # 2 bytes, not 8
    (tmp_path / "bad.pb").write_bytes(framed(td))
    r = ingest.ingest_paths([str(tmp_path / "bad.pb")], "bad")
    assert (r.spans, r.rejected) == (2, 1)


def test_a_first_span_without_trace_id_is_rejected_alone(tmp_path: Path):
    """An empty field is not written: such a span starts with its span_id, and the message was
    taken for logs, its 2 good spans rejected with it ("Wire format was corrupt")."""
    td = traces(3, "x")
    td.resource_spans[0].scope_spans[0].spans[0].trace_id = b""
    (tmp_path / "first.pb").write_bytes(framed(td))
    r = ingest.ingest_paths([str(tmp_path / "first.pb")], "first")
    assert (r.spans, r.logs, r.rejected) == (2, 0, 1)
    [rej] = [json.loads(x) for x in Path(r.rejects_path).read_text().splitlines()]
    assert rej["reason"] == "trace id missing"


def test_kind_by_the_fields_only_one_record_type_has():
    span, log = Span(), LogRecord()
    span.span_id, span.kind = b"\x01" * 8, 2  # no trace id: the first field is span_id
    log.severity_number = 9  # no time: the first field is severity_number
    t = TracesData(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    lg = LogsData(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[log])])])
    assert message_kind(t.SerializeToString()) == "traces"
    assert message_kind(lg.SerializeToString()) == "logs"
    bare = LogRecord(severity_text="WARN", body=AnyValue(string_value="x"))  # fields both kinds have
    only = LogsData(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[bare])])])
    assert message_kind(only.SerializeToString()) == "logs"


def test_sniff_and_kind():
    t, lg = traces(1, "a").SerializeToString(), logs().SerializeToString()
    assert message_kind(t) == "traces" and message_kind(lg) == "logs"
    assert sniff(framed(traces(1, "a"))) and sniff(framed(logs()))
    assert not sniff(b'{"resourceSpans": []}') and not sniff(b"\x00\x00\x00\x05hello")


def test_parallel_protobuf_ranges_match_in_process(tmp_path: Path, monkeypatch):
    from ingest import pipeline

    msgs = []
    for i in range(300):
        td = traces(3, f"svc-{i % 7}")
        for sp in td.resource_spans[0].scope_spans[0].spans:
            sp.trace_id = (i + 1).to_bytes(16, "big")
        msgs.append(td)
    msgs.insert(150, logs())
    data = framed(*msgs)
    (tmp_path / "big.pb").write_bytes(data + b"\x00\x00\x10")  # a broken prefix at the very end
    serial = ingest.ingest_paths([str(tmp_path / "big.pb")], "serial")
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setenv("DCR_INGEST_RANGE_MB", "0.0625")  # 64 KiB ranges: several per worker
    from ingest import otlp_proto

    seen: list[int] = []
    original = otlp_proto.message_ranges

    def ranges(*args):
        out = original(*args)
        seen.append(len(out))
        return out

    monkeypatch.setattr(pipeline.otlp_proto, "message_ranges", ranges)
    par = ingest.ingest_paths([str(tmp_path / "big.pb")], "parallel")
    assert seen and seen[0] > 3, par  # the parallel path ran, over several ranges
    assert (par.spans, par.logs, par.rejected) == (serial.spans, serial.logs, serial.rejected) == (900, 2, 1)
    for kind in ("spans", "logs"):
        a = pa.concat_tables([pq.read_table(f) for f in getattr(open_handle("serial"), f"{kind[:-1]}_files")])
        b = pa.concat_tables(
            [pq.read_table(f) for f in getattr(open_handle("parallel"), f"{kind[:-1]}_files")]
        )
        key = [("source_offset", "ascending"), ("span_id", "ascending")]
        assert a.drop_columns(["source_id"]).sort_by(key).equals(b.drop_columns(["source_id"]).sort_by(key))


def test_a_cut_compressed_protobuf_dump_keeps_every_message_before_the_cut(tmp_path: Path):
    """A .zst of framed messages cut short: the messages read before the break land (the sink's
    records were dropped with the error), as many as the readable part gives uncompressed."""
    import contextlib
    import io

    import zstandard

    from ingest import formats

    messages = []
    for i in range(300):
        msg = traces(40, f"svc-{i % 3}")
        for sp in (sp for rs in msg.resource_spans for ss in rs.scope_spans for sp in ss.spans):
            sp.trace_id = (i + 1).to_bytes(16, "big")  # spans of their own, not duplicates
        messages.append(msg)
    data = framed(*messages)
    packed = zstandard.ZstdCompressor().compress(data)
    (tmp_path / "cut.bin").write_bytes(packed[: len(packed) * 7 // 10])
    stream, _ = formats.decompressed(io.BytesIO((tmp_path / "cut.bin").read_bytes()))
    readable = bytearray()
    with contextlib.suppress(*formats.CORRUPT_ERRORS):
        while chunk := stream.read1(1 << 16):
            readable += chunk
    (tmp_path / "prefix.binpb").write_bytes(bytes(readable))
    got = ingest.ingest_paths([str(tmp_path / "cut.bin")], "cut")
    want = ingest.ingest_paths([str(tmp_path / "prefix.binpb")], "prefix")
    assert got.sources[0].format == "otlp_proto" and got.sources[0].compression == "zstd"
    assert got.spans == want.spans > 1000
