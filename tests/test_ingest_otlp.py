"""OTLP/JSON ingest of the public fixtures and of the shapes real files have: exact rows."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

import ingest
from ingest import otlp_json
from ingest.dataset import open_handle
from ingest.otlp_fast import decode_lines_fast
from ingest.records import SourceInfo

PUBLIC = Path(__file__).resolve().parent.parent / "fixtures" / "public"
EXAMPLES = PUBLIC / "otlp-examples"
JAEGER_OTLP = PUBLIC / "jaeger" / "otlp-traces"


def spans_of(name: str) -> list[dict]:
    h = open_handle(name)
    return pa.concat_tables([pq.read_table(f) for f in h.span_files]).to_pylist() if h.span_files else []


def logs_of(name: str) -> list[dict]:
    h = open_handle(name)
    return pa.concat_tables([pq.read_table(f) for f in h.log_files]).to_pylist() if h.log_files else []


def compact_line(path: Path) -> bytes:
    return json.dumps(json.loads(path.read_text()), separators=(",", ":")).encode()


def test_spec_trace_example_exact_row():
    r = ingest.ingest_paths([str(EXAMPLES / "trace.json")], "ex")
    assert (r.spans, r.logs, r.rejected) == (1, 0, 0)
    [row] = spans_of("ex")
    assert row["trace_id"] == "5b8efff798038103d269b633813fc60c"  # written upper case in the file
    assert row["span_id"] == "eee19b7ec3c1b174"
    assert row["parent_span_id"] == "eee19b7ec3c1b173"
    assert row["name"] == "I'm a server span"
    assert row["kind"] == "SERVER"
    assert row["service_name"] == "my.service"
    assert (row["scope_name"], row["scope_version"]) == ("my.library", "1.0.0")
    assert json.loads(row["scope_attributes"]) == {"my.scope.attribute": "some scope attribute"}
    assert (row["start_ns"], row["end_ns"], row["duration_ns"]) == (
        1544712660000000000,
        1544712661000000000,
        1_000_000_000,
    )
    assert json.loads(row["attributes"]) == {"my.span.attr": "some value"}
    assert json.loads(row["resource_attributes"]) == {"service.name": "my.service"}
    assert row["status_code"] == "UNSET" and row["events"] == "[]" and row["links"] == "[]"
    assert row["source_id"] == r.sources[0].source_id and row["source_offset"] == 1


def test_spec_logs_examples_every_anyvalue_kind():
    r = ingest.ingest_paths([str(EXAMPLES / "logs.json"), str(EXAMPLES / "events.json")], "lg")
    assert (r.spans, r.logs, r.rejected) == (0, 2, 0)
    rows = sorted(logs_of("lg"), key=lambda x: x["severity_number"])
    log, event = rows[1], rows[0]
    assert json.loads(log["attributes"]) == {
        "string.attribute": "some string",
        "boolean.attribute": True,
        "int.attribute": 10,
        "double.attribute": 637.704,
        "array.attribute": ["many", "values"],
        "map.attribute": {"some.map.key": "some value"},
    }
    assert (log["severity_number"], log["severity_text"], log["body"]) == (
        10,
        "Information",
        "Example log record",
    )
    assert (log["trace_id"], log["span_id"]) == ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    assert log["time_ns"] == 1544712660300000000 and log["service_name"] == "my.service"
    assert event["event_name"] == "browser.page_view"
    assert json.loads(event["body"]) == {  # a kvlist body becomes JSON text
        "type": 0,
        "url": "https://www.guidgenerator.com/online-guid-generator.aspx",
        "referrer": "https://wwww.google.com",
        "title": "Free Online GUID Generator",
    }


def test_jaeger_integration_fixtures_counts_and_summary():
    r = ingest.ingest_paths([str(JAEGER_OTLP)], "jg")
    assert (r.spans, r.logs, r.rejected, r.duplicates) == (38, 0, 0, 0)
    assert len(r.sources) == 32
    s = ingest.dataset_summary("jg")
    assert (s["spans"], s["logs"], s["rejected"]) == (38, 0, 0)
    assert len(s["services"]) == 28 and "example-service-3" in s["services"]
    assert s["time_range"]["start_ns"] == min(row["start_ns"] for row in spans_of("jg"))
    assert len(s["sources"]) == 32


def test_example_trace_ids_parents_events():
    ingest.ingest_paths([str(JAEGER_OTLP / "example_trace.json")], "et")
    rows = {r["span_id"]: r for r in spans_of("et")}
    assert sorted(rows) == [
        "0000000000000003",
        "0000000000000004",
        "0000000000000005",
        "0000000000000006",
        "0000000000000007",
    ]
    assert all(r["trace_id"] == "00000000000000000000000000000011" for r in rows.values())
    assert rows["0000000000000006"]["kind"] == "SERVER" and rows["0000000000000007"]["kind"] == "CLIENT"
    assert rows["0000000000000004"]["service_name"] == "example-service-2"
    assert len(json.loads(rows["0000000000000004"]["events"])) == 2


def test_link_attributes_all_kinds_kept():
    ingest.ingest_paths([str(JAEGER_OTLP / "link_attributes_trace.json")], "la")
    [row] = spans_of("la")
    links = json.loads(row["links"])
    assert links[0]["trace_id"] == "000000000000000000000000000000ff"
    assert links[0]["attributes"] == {
        "opentracing.ref_type": "child_of",
        "sameplacelinkattribute1": "sameplacevalue",
        "sameplacelinkattribute2": 123,
        "sameplacelinkattribute4": True,
        "sameplacelinkattribute3": 72.5,
        "linkblob": "AAAwOQ==",
    }
    assert links[1]["span_id"] == "0000000000000002"


def test_span_file_sorted_by_service_then_start():
    ingest.ingest_paths([str(JAEGER_OTLP)], "srt")
    for f in open_handle("srt").span_files:
        t = pq.read_table(f, columns=["service_name", "start_ns"]).to_pylist()
        keys = [(r["service_name"], r["start_ns"]) for r in t]
        assert keys == sorted(keys)
        meta = pq.ParquetFile(f).metadata
        assert meta.row_group(0).column(6).statistics.has_min_max  # service_name


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_compressed_collector_lines(tmp_path: Path, compress: str):
    lines = [compact_line(f) for f in sorted(JAEGER_OTLP.glob("*.json"))]
    raw = b"\n".join(lines) + b"\n"
    data = gzip.compress(raw) if compress == "gzip" else zstandard.ZstdCompressor().compress(raw)
    path = tmp_path / "dump.bin"  # no telling suffix: the magic bytes decide
    path.write_bytes(data)
    r = ingest.ingest_paths([str(path)], "cz")
    assert (r.spans, r.rejected) == (38, 0)
    assert r.sources[0].compression == compress and r.sources[0].format == "otlp_json"
    offsets = {row["name"]: row["source_offset"] for row in spans_of("cz")}
    names = [json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] for line in lines]
    assert offsets[names[-1]] == len(lines)  # line numbers survive decompression


def test_pretty_printed_document_with_utf8_bom(tmp_path: Path):
    """A pretty-printed OTLP file saved with a BOM (Windows editors) lands whole; it was one reject."""
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + (PUBLIC / "otlp-examples" / "trace.json").read_bytes())
    r = ingest.ingest_paths([str(path)], "bom")
    assert (r.spans, r.rejected) == (1, 0)
    assert spans_of("bom")[0]["name"] == spans_of_example()[0]["name"]


def spans_of_example() -> list[dict]:
    ingest.ingest_paths([str(PUBLIC / "otlp-examples" / "trace.json")], "bom-ref")
    return spans_of("bom-ref")


def test_shapes_real_files_have(tmp_path: Path):
    span = {
        "traceId": "W47/95gDgQPSabYzgT/GDA==",
        "spanId": "7uGbfsPBsXQ=",  # base64 (grpc-gateway)
        "name": "b64",
        "kind": "SPAN_KIND_CLIENT",
        "startTimeUnixNano": 1000,
        "endTimeUnixNano": "2000",
        "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
        "unknownField": [1, 2],
    }
    tempo = {
        "batches": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "t"}}]},
                "instrumentationLibrarySpans": [{"instrumentationLibrary": {"name": "old"}, "spans": [span]}],
            }
        ]
    }
    v3 = {
        "result": {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": "v3"}},
                            {"key": "host.name", "value": {"stringValue": "node-1"}},
                        ]
                    },
                    "scopeSpans": [
                        {"spans": [{**span, "traceId": "AB" * 16, "spanId": "CD" * 8, "kind": 4}]}
                    ],
                }
            ]
        }
    }
    legacy_logs = {
        "resourceLogs": [
            {
                "instrumentationLibraryLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "5",
                                "severityNumber": "SEVERITY_NUMBER_WARN",
                                "body": {"stringValue": "w"},
                            }
                        ]
                    }
                ]
            }
        ]
    }
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in (tempo, v3, legacy_logs)) + "\n")
    r = ingest.ingest_paths([str(path)], "shapes")
    assert (r.spans, r.logs, r.rejected) == (2, 1, 0)
    rows = {r["service_name"]: r for r in spans_of("shapes")}
    assert rows["t"]["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert rows["t"]["span_id"] == "eee19b7ec3c1b174"
    assert rows["t"]["kind"] == "CLIENT" and rows["t"]["scope_name"] == "old"
    assert (rows["t"]["status_code"], rows["t"]["status_message"]) == ("ERROR", "boom")
    assert (rows["t"]["start_ns"], rows["t"]["end_ns"]) == (1000, 2000)
    assert rows["v3"]["trace_id"] == "ab" * 16 and rows["v3"]["kind"] == "PRODUCER"
    assert rows["v3"]["host"] == "node-1"
    [log] = logs_of("shapes")
    assert (log["severity_number"], log["time_ns"], log["body"]) == (13, 5, "w")


def test_promoted_columns_and_exception(tmp_path: Path):
    def kv(k, v):
        key = {str: "stringValue", int: "intValue"}[type(v)]
        return {"key": k, "value": {key: str(v) if key == "intValue" else v}}

    span = {
        "traceId": "1" * 32,
        "spanId": "2" * 16,
        "name": "GET /x",
        "startTimeUnixNano": "1",
        "endTimeUnixNano": "9",
        "attributes": [
            kv("http.method", "OLD"),
            kv("http.request.method", "GET"),
            kv("http.response.status_code", 503),
            kv("db.system", "redis"),
            kv("code.lineno", 42),
        ],
        "events": [
            {
                "timeUnixNano": "5",
                "name": "exception",
                "attributes": [kv("exception.type", "TimeoutError"), kv("exception.message", "slow")],
            }
        ],
    }
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    (tmp_path / "p.json").write_text(json.dumps(doc))
    ingest.ingest_paths([str(tmp_path / "p.json")], "promo")
    [row] = spans_of("promo")
    assert row["http_method"] == "GET"  # the current semantic-convention name wins
    assert row["http_status_code"] == 503 and row["db_system"] == "redis" and row["code_lineno"] == 42
    assert (row["exception_type"], row["exception_message"]) == ("TimeoutError", "slow")
    assert row["service_name"] is None


def test_fast_path_equals_careful_path():
    import random

    from bench.ingest import _line

    rng = random.Random(3)
    lines = [
        json.dumps(_line(rng, 1_700_000_000_000_000_000), separators=(",", ":")).encode() for _ in range(6)
    ]
    lines[2] = lines[2].replace(b'"spanId":"', b'"spanId":"ZZ', 1)  # one bad span: that line goes careful
    data = b"\n".join(lines) + b"\n"
    src = SourceInfo("s", "mem")
    careful, n1 = otlp_json.decode_lines(data, 1, src)
    fast, n2 = decode_lines_fast(data, 1, src)
    assert n1 == n2 == 6
    key = [("span_id", "ascending")]
    assert (
        pa.Table.from_batches([careful.spans])
        .sort_by(key)
        .equals(pa.Table.from_batches([fast.spans]).sort_by(key))
    )
    assert [(r.offset, r.reason) for r in careful.rejects] == [(r.offset, r.reason) for r in fast.rejects]
    assert len(fast.rejects) == 1 and fast.rejects[0].offset == 3


def test_demo_command_ingests_fixtures(capsys):
    from mcp_server.cli import main

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "spans " in out
    s = ingest.dataset_summary("demo")
    assert s["spans"] >= 40 and s["logs"] == 2
    assert main(["demo"]) == 0  # again: nothing new, same totals
    assert ingest.dataset_summary("demo")["spans"] == s["spans"]


def test_copy_with_other_name_adds_nothing(tmp_path: Path):
    shutil.copy(EXAMPLES / "logs.json", tmp_path / "copy.json")
    ingest.ingest_paths([str(EXAMPLES / "logs.json")], "cp")
    r = ingest.ingest_paths([str(tmp_path / "copy.json")], "cp")
    assert (r.spans, r.logs) == (0, 0) and r.sources[0].skipped == "already ingested"


def test_fast_path_equals_careful_path_for_logs():
    logs = json.loads((EXAMPLES / "logs.json").read_text())
    events = json.loads((EXAMPLES / "events.json").read_text())
    text = json.dumps(logs)
    assert "5B8EFFF798038103D269B633813FC60C" in text  # upper case ids: the careful path's job
    lower = json.loads(
        text.replace("5B8EFFF798038103D269B633813FC60C", "5b8efff798038103d269b633813fc60c").replace(
            "EEE19B7EC3C1B174", "eee19b7ec3c1b174"
        )
    )  # canonical: the fast path keeps it
    lines = [json.dumps(d, separators=(",", ":")).encode() for d in (lower, events, logs, lower)]
    data = b"\n".join(lines) + b"\n"
    src = SourceInfo("s", "mem")
    careful, _ = otlp_json.decode_lines(data, 1, src)
    fast, _ = decode_lines_fast(data, 1, src)
    key = [("source_offset", "ascending")]
    a = pa.Table.from_batches([careful.logs]).sort_by(key)
    b = pa.Table.from_batches([fast.logs]).sort_by(key)
    assert a.num_rows == 4 and a.equals(b)
    assert a.column("trace_id").to_pylist()[2] == "5b8efff798038103d269b633813fc60c"
