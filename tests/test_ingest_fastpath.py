"""The fast OTLP/JSON path (`ingest/otlp_fast.py`) gives exactly the careful path's rows and rejects.

Lines are generated with every AnyValue kind and the odd shapes real files have: 64-bit
integers as numbers and strings, base64 and upper-case ids, missing fields, null or empty
resources and scopes, legacy names, unicode and escapes, huge values, duplicate keys, repeated
resources (the fast path caches contexts by their text) and malformed records.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

from ingest import otlp_json
from ingest.otlp_fast import decode_lines_fast
from ingest.records import SourceInfo

SRC = SourceInfo("src-test", "mem.jsonl")
TEXTS = ["GET", "", "é ünïcødé ✓ 日本", 'line\nbreak\t"quoted" back\\slash', "\u2028\u0001\x7f", "x" * 70_000]


def _any(rng: random.Random, depth: int = 0) -> dict:
    kind = rng.randrange(12 if depth < 3 else 8)
    if kind == 0:
        return {"stringValue": rng.choice(TEXTS)}
    if kind == 1:
        return {"intValue": str(rng.choice([0, -5, 200, 2**63 - 1, -(2**63)]))}
    if kind == 2:
        return {"intValue": rng.choice([7, -1, 2**53 + 1])}  # a JSON number, as some exporters write
    if kind == 3:
        return {"boolValue": rng.random() < 0.5}
    if kind == 4:
        return {"doubleValue": rng.choice([0.5, 1.0, 1e300, -2.5e-8, 3])}
    if kind == 5:
        return {"doubleValue": rng.choice(["NaN", "Infinity", "-Infinity"])}
    if kind == 6:
        return {"bytesValue": base64.b64encode(rng.randbytes(rng.randrange(1, 20))).decode()}
    if kind == 7:
        return {}  # an empty AnyValue
    if kind in (8, 9):
        return {"arrayValue": {"values": [_any(rng, depth + 1) for _ in range(rng.randrange(4))]}}
    return {"kvlistValue": {"values": [_kv(rng, depth + 1) for _ in range(rng.randrange(4))]}}


PROMOTED_KEYS = [
    "http.request.method",
    "http.method",
    "http.response.status_code",
    "http.status_code",
    "db.system",
    "code.lineno",
    "code.line.number",
    "server.address",
    "peer.service",
]


def _kv(rng: random.Random, depth: int = 0) -> dict:
    key = rng.choice(PROMOTED_KEYS + ["k", "ключ", "dup", "a.b"])
    if rng.random() < 0.05:
        return {"key": key}  # no value at all
    return {"key": key, "value": _any(rng, depth)}


def _id(rng: random.Random, nbytes: int) -> str:
    raw = rng.randbytes(nbytes)
    r = rng.random()
    if r < 0.1:
        return base64.b64encode(raw).decode()
    if r < 0.15:
        return raw.hex().upper()
    return raw.hex()


def _time(rng: random.Random, t: int) -> int | str:
    return str(t) if rng.random() < 0.7 else t


def _span(rng: random.Random) -> dict:
    start = 1_700_000_000_000_000_000 + rng.randrange(10**9)
    end = start + rng.randrange(-1000, 10**8)  # sometimes before the start: a warning
    sp: dict = {
        "traceId": _id(rng, 16),
        "spanId": _id(rng, 8),
        "name": rng.choice(TEXTS[:4]),
        "startTimeUnixNano": _time(rng, start),
        "endTimeUnixNano": _time(rng, end),
        "attributes": [_kv(rng) for _ in range(rng.randrange(9))],
    }
    if rng.random() < 0.5:
        sp["parentSpanId"] = rng.choice([_id(rng, 8), "", "0000000000000000"])
    if rng.random() < 0.5:
        sp["kind"] = rng.choice([0, 1, 2, 3, 4, 5, "SPAN_KIND_SERVER", 9])
    if rng.random() < 0.3:
        sp["status"] = rng.choice(
            [{}, {"code": 2, "message": "boom"}, {"code": "STATUS_CODE_OK"}, {"code": 1}]
        )
    if rng.random() < 0.2:
        sp["events"] = [
            {
                "timeUnixNano": _time(rng, start + 5),
                "name": rng.choice(["exception", "log"]),
                "attributes": [
                    {"key": "exception.type", "value": {"stringValue": "E"}},
                    {"key": "exception.message", "value": _any(rng)},
                ],
            }
        ]
    if rng.random() < 0.1:
        sp["links"] = [{"traceId": _id(rng, 16), "spanId": _id(rng, 8), "attributes": [_kv(rng)]}]
    if rng.random() < 0.1:
        sp["traceState"] = "rojo=00f067aa0ba902b7"
    if rng.random() < 0.05:
        sp["flags"] = 257
        sp["droppedAttributesCount"] = 3
    if rng.random() < 0.03:
        del sp["spanId"]  # a reject
    if rng.random() < 0.03:
        sp["startTimeUnixNano"] = "soon"  # a reject
    return sp


RESOURCES = [
    {
        "attributes": [
            {"key": "service.name", "value": {"stringValue": "cart"}},
            {"key": "host.name", "value": {"stringValue": "h1"}},
        ]
    },
    {
        "attributes": [
            {"key": "service.name", "value": {"stringValue": "pay ✓"}},
            {"key": "host.id", "value": {"intValue": "42"}},
            {"key": "service.version", "value": {"arrayValue": {"values": [{"boolValue": True}]}}},
        ]
    },
    {},
    None,
]
SCOPES = [
    {"name": "lib", "version": "1.0", "attributes": [{"key": "s", "value": {"doubleValue": 0.25}}]},
    {},
    None,
]


def _line(rng: random.Random) -> bytes:
    groups = []
    for _ in range(rng.randrange(1, 4)):
        scope_key = rng.choice(["scopeSpans", "scopeSpans", "instrumentationLibrarySpans"])
        ss: dict = {"spans": [_span(rng) for _ in range(rng.randrange(1, 12))]}
        scope = rng.choice(SCOPES)
        if scope is not None or rng.random() < 0.5:
            ss["scope" if scope_key == "scopeSpans" else "instrumentationLibrary"] = scope
        rs: dict = {scope_key: [ss]}
        res = rng.choice(RESOURCES)
        if res is not None or rng.random() < 0.5:
            rs["resource"] = res
        groups.append(rs)
    wrapper = rng.choice(["resourceSpans", "resourceSpans", "batches"])
    doc = {wrapper: groups}
    if rng.random() < 0.1:
        doc = {"result": {"resourceSpans": groups}}
    return json.dumps(doc, ensure_ascii=rng.random() < 0.5, separators=(",", ":")).encode()


def _log_line(rng: random.Random) -> bytes:
    records = []
    for _ in range(rng.randrange(1, 6)):
        lr: dict = {
            "timeUnixNano": _time(rng, 1_700_000_000_000_000_000 + rng.randrange(10**6)),
            "body": _any(rng),
            "attributes": [_kv(rng) for _ in range(rng.randrange(4))],
            "severityNumber": rng.choice([9, 17, "SEVERITY_NUMBER_WARN"]),
            "severityText": "INFO",
        }
        if rng.random() < 0.5:
            lr["traceId"], lr["spanId"] = _id(rng, 16), _id(rng, 8)
        records.append(lr)
    doc = {
        "resourceLogs": [
            {
                "resource": rng.choice(RESOURCES[:3]),
                "scopeLogs": [{"scope": SCOPES[0], "logRecords": records}],
            }
        ]
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _table(batch: pa.RecordBatch | None) -> pa.Table | None:
    if batch is None:
        return None
    t = pa.Table.from_batches([batch])
    return t.sort_by(
        [(c, "ascending") for c in ("source_offset", "span_id" if "span_id" in t.column_names else "time_ns")]
    )


def _same(data: bytes) -> tuple[int, int]:
    careful, n1 = otlp_json.decode_lines(data, 1, SRC)
    fast, n2 = decode_lines_fast(data, 1, SRC)
    assert n1 == n2
    for a, b in ((careful.spans, fast.spans), (careful.logs, fast.logs)):
        ta, tb = _table(a), _table(b)
        assert (ta is None) == (tb is None)
        if ta is not None:
            assert ta.schema == tb.schema
            for name in ta.column_names:  # column by column: a failure names the column
                assert ta.column(name).to_pylist() == tb.column(name).to_pylist(), name
    assert [(r.offset, r.reason, r.raw) for r in careful.rejects] == [
        (r.offset, r.reason, r.raw) for r in fast.rejects
    ]
    return (fast.spans.num_rows if fast.spans is not None else 0), len(fast.rejects)


@pytest.mark.parametrize("seed", range(8))
def test_generated_span_lines_fast_equals_careful(seed: int):
    rng = random.Random(seed)
    lines = [_line(rng) for _ in range(25)]
    lines[3:3] = [lines[0], lines[1]]  # repeated resources and spans: the context cache, same rows
    lines.insert(5, b"")  # a blank line
    lines.insert(7, b'{"resourceSpans": [ {"resource": {"attributes": [] }, "scopeSpans": []} ]}')
    lines.insert(9, b"not json")
    spans, rejects = _same(b"\n".join(lines) + b"\n")
    assert spans > 100 and rejects >= 1


@pytest.mark.parametrize("seed", range(3))
def test_generated_log_lines_fast_equals_careful(seed: int):
    rng = random.Random(100 + seed)
    _same(b"\n".join(_log_line(rng) for _ in range(30)) + b"\n")


def test_clean_lines_take_the_fast_path_and_equal_careful():
    """Lines of only canonical spans: the fast path keeps them all itself (no careful redo)."""
    import bench.ingest as bench

    rng = random.Random(11)
    lines = [
        json.dumps(bench._line(rng, 1_700_000_000_000_000_000), separators=(",", ":")).encode()
        for _ in range(5)
    ]
    spans, rejects = _same(b"\n".join(lines) + b"\n")
    assert spans > 100 and rejects == 0


def test_resource_written_differently_is_a_different_context():
    """Two resources whose texts differ only in a value get their own service each (the cache
    key is the whole text)."""

    def line(svc: str) -> bytes:
        return json.dumps(
            {
                "resourceSpans": [
                    {
                        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]},
                        "scopeSpans": [
                            {
                                "spans": [
                                    {
                                        "traceId": "5b8efff798038103d269b633813fc60c",
                                        "spanId": f"{len(svc):016x}",
                                        "startTimeUnixNano": "1",
                                        "endTimeUnixNano": "2",
                                    }
                                ]
                            }
                        ],
                    }
                ]
            }
        ).encode()

    fast, _ = decode_lines_fast(line("a") + b"\n" + line("bb") + b"\n" + line("a") + b"\n", 1, SRC)
    assert fast.spans.column("service_name").to_pylist() == ["a", "bb", "a"]


def test_compact_spans_are_the_same_values_dictionary_encoded():
    """The worker's wire form (group columns dictionary-encoded) holds the same rows, and a careful
    line among fast ones is converted to it too."""
    from ingest.handoff import SPAN_WIRE_SCHEMA
    from ingest.schema import SPAN_SCHEMA

    rng = random.Random(5)
    data = b"\n".join(_line(rng) for _ in range(20)) + b"\n"
    plain, _ = decode_lines_fast(data, 1, SRC)
    compact, _ = decode_lines_fast(data, 1, SRC, compact=True)
    assert compact.spans.schema.equals(SPAN_WIRE_SCHEMA) and plain.spans.schema.equals(SPAN_SCHEMA)
    assert compact.spans.column("host").type != pa.string()
    cols = compact.spans.columns
    decoded = pa.RecordBatch.from_arrays(
        [c.cast(f.type) for c, f in zip(cols, SPAN_SCHEMA, strict=True)], schema=SPAN_SCHEMA
    )
    assert decoded.equals(plain.spans)
    assert [r.offset for r in compact.rejects] == [r.offset for r in plain.rejects] and compact.rejects


def test_compact_logs_are_the_same_values_dictionary_encoded():
    """Logs travel in a wire form too (resource and scope columns dictionary-encoded), a careful
    line's logs converted to it; the dataset's log files read back as LOG_SCHEMA."""
    from ingest.handoff import LOG_WIRE_SCHEMA
    from ingest.schema import LOG_SCHEMA

    rng = random.Random(6)
    lines = [_log_line(rng) for _ in range(20)]
    lines[7] = lines[7].replace(b'"timeUnixNano":', b'"timeUnixNano":"x",  "t":', 1)  # a careful line
    data = b"\n".join(lines) + b"\n"
    plain, _ = decode_lines_fast(data, 1, SRC)
    compact, _ = decode_lines_fast(data, 1, SRC, compact=True)
    assert compact.logs.schema.equals(LOG_WIRE_SCHEMA) and plain.logs.schema.equals(LOG_SCHEMA)
    assert compact.logs.column("resource_attributes").type != pa.string()
    decoded = pa.RecordBatch.from_arrays(
        [c.cast(f.type) for c, f in zip(compact.logs.columns, LOG_SCHEMA, strict=True)], schema=LOG_SCHEMA
    )
    assert decoded.equals(plain.logs)
    assert [(r.offset, r.reason) for r in compact.rejects] == [(r.offset, r.reason) for r in plain.rejects]


def test_dataset_files_read_back_as_span_schema(tmp_path, monkeypatch):
    """Parts are written from the wire form without its Arrow schema: readers see SPAN_SCHEMA and
    LOG_SCHEMA."""
    import pyarrow.parquet as pq

    import ingest
    from ingest.dataset import dataset_path
    from ingest.schema import LOG_SCHEMA, SPAN_SCHEMA

    monkeypatch.setenv("DCR_HOME", str(tmp_path / "home"))
    rng = random.Random(9)
    lines = [_line(rng) for _ in range(10)] + [_log_line(rng) for _ in range(10)]
    (tmp_path / "d.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    r = ingest.ingest_paths([str(tmp_path / "d.jsonl")], "wire")
    files = sorted((dataset_path("wire") / "spans").glob("*.parquet"))
    assert r.spans > 0 and files
    table = pq.read_table(files[0])
    assert table.schema.equals(SPAN_SCHEMA) and table.num_rows == r.spans
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(6).statistics.has_min_max  # service_name
    log_files = sorted((dataset_path("wire") / "logs").glob("*.parquet"))
    logs = pq.read_table(log_files)
    assert r.logs > 0 and logs.schema.equals(LOG_SCHEMA) and logs.num_rows == r.logs
    assert logs.column("resource_attributes").null_count < r.logs


def test_span_keys_same_fingerprint_on_fast_and_fallback_paths():
    """A canonical pair in a batch with an odd id is recognised as the same span as in a clean
    batch (the fallback hashes only the odd pairs)."""
    from ingest.writer import SpanKeys, _key_words

    tids = [f"{i:032x}" for i in range(1, 6)]
    sids = [f"{i:016x}" for i in range(1, 6)]
    keys = SpanKeys()
    assert keys.add_new(_key_words(pa.array(tids), pa.array(sids))).all()
    odd = _key_words(pa.array(tids + ["not-hex", None]), pa.array(sids + ["x", "y"]))
    assert keys.add_new(odd).tolist() == [False] * 5 + [True, True]
    assert not keys.add_new(odd).any()
    assert len(keys) == 7


@pytest.mark.parametrize("native", ["1", "0"])
def test_bad_utf8_where_no_record_is_decoded_is_rejected_as_the_careful_path_does(monkeypatch, native):
    """Bytes that are not UTF-8 in a resource without records: msgspec checks only what it decodes,
    and the fast structs skip that resource, so the line passed without a word; it is rejected
    (line 2) as the careful path rejects it, and the good lines beside it keep their rows."""
    from ingest.otlp_fast import NATIVE_ENV

    monkeypatch.setenv(NATIVE_ENV, native)
    rng = random.Random(5)
    good = [_line(rng) for _ in range(2)]
    bad = (
        b'{"resourceLogs":[{"resource":{"attributes":[{"key":"service.nam\xe9\xff",'
        b'"value":{"stringValue":"shop"}}]},"scopeLogs":[]}]}'
    )
    spans, rejects = _same(b"\n".join([good[0], bad, good[1]]) + b"\n")
    fast, _ = decode_lines_fast(b"\n".join([good[0], bad, good[1]]) + b"\n", 1, SRC)
    assert spans > 0 and rejects == 1
    assert [(r.offset, "UTF-8" in r.reason) for r in fast.rejects] == [(2, True)]


_NO_PANDAS = """
import os, sys
mark = sys.argv[1]
class Watch:  # notes any process (the workers are forked from this one) that imports pandas
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            with open(mark, "a") as fh:
                fh.write(f"{os.getpid()}\\n")
        return None
sys.meta_path.insert(0, Watch())
from ingest import pipeline
pipeline.PARALLEL_MIN_BYTES = 64 * 1024  # the worker processes decode these small files too
from mcp_server import cli
code = cli.main(["ingest", *sys.argv[2:], "--dataset", "np", "--json"])
print("pandas" in sys.modules, file=sys.stderr)
sys.exit(code)
"""


def test_an_ingest_through_the_native_tier_never_imports_pandas(tmp_path, monkeypatch):
    """pa.array() of a list imports pandas (0.16 s a process); the native tier's path, from the
    first import to the written dataset, builds its arrays without it (ingest/arrays.py), in the
    main process and in the decoding workers, for spans, logs, a whole document, duplicates."""
    import subprocess
    import sys

    from bench.shapes import write_shape
    from ingest import otlp_fast

    if not otlp_fast.native_available():
        pytest.skip("the native tier is not built")
    files = []
    for shape in ("attrs", "logs", "tempo", "pretty"):
        path = tmp_path / f"{shape}.json"
        write_shape(path, shape, 1024 * 1024)
        files.append(str(path))
    again = tmp_path / "again.json"  # the same spans in another file: the duplicates' path
    again.write_bytes((tmp_path / "attrs.json").read_bytes() + b"\n")
    mark = tmp_path / "pandas-imported"
    monkeypatch.setenv("DCR_INGEST_RANGE_MB", "0.25")
    monkeypatch.setenv("DCR_INGEST_WORKERS", "2")
    r = subprocess.run(
        [sys.executable, "-c", _NO_PANDAS, str(mark), *files, str(again)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["spans"] > 1000 and out["logs"] > 1000 and out["duplicates"] > 1000
    assert r.stderr.strip().endswith("False") and not mark.exists(), mark.read_text() if mark.exists() else ""


def test_shift_chunk_moves_rows_and_the_rejects_of_its_unit():
    """records.shift_chunk: a part's line (or record) numbers counted from the whole input: the rows'
    source_offset, every reject, or only the rejects of one unit (a document's byte offsets stay)."""
    from ingest.records import Chunk, Reject, shift_chunk

    rng = random.Random(3)
    chunk, _ = decode_lines_fast(b"\n".join(_line(rng) for _ in range(3)) + b"\n", 1, SRC, compact=True)
    rejects = [Reject("p", 2, "bad", b"x", "record"), Reject("p", 900, "bad", b"y", "byte")]
    chunk = Chunk(spans=chunk.spans, rejects=rejects)
    moved = shift_chunk(chunk, 10)
    assert moved.spans.column("source_offset").to_pylist() == [
        o + 10 for o in chunk.spans.column("source_offset").to_pylist()
    ]
    assert [r.offset for r in moved.rejects] == [12, 910]
    assert [r.offset for r in shift_chunk(chunk, 10, "record").rejects] == [12, 900]
    assert shift_chunk(chunk, 0) is chunk and moved.logs is None
