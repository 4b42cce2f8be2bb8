"""A whole OTLP/JSON document (pretty-printed, compact over lines, Tempo's batches, Jaeger v3's
result) is streamed: its rows are exactly those of reading it whole (`decode_document`, the
careful path), at every block, piece and cut size; bad parts are rejected alone or end the
input with what came before kept; and the input is read as it is decoded, never whole."""

from __future__ import annotations

import concurrent.futures as cf
import gzip
import io
import json
import multiprocessing
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ingest
from ingest import otlp_json, pipeline
from ingest.dataset import open_handle
from ingest.json_stream import Run, iter_cut
from ingest.records import Chunk, SourceInfo

SRC = SourceInfo("src-test", "doc.json")
T0 = 1_714_564_800_000_000_000


def _kv(key: str, value: Any) -> dict:
    if isinstance(value, bool):
        v: dict = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    elif isinstance(value, list):
        v = {"arrayValue": {"values": [{"stringValue": x} for x in value]}}
    else:
        v = {"stringValue": value}
    return {"key": key, "value": v}


def _span(rng: random.Random, i: int) -> dict:
    start = T0 + i * 1000
    span: dict = {
        "traceId": f"{rng.getrandbits(128):032x}",
        "spanId": f"{rng.getrandbits(64):016x}",
        "parentSpanId": f"{rng.getrandbits(64):016x}" if i % 3 else "",
        "name": rng.choice(["GET /cart", 'SELECT "é"', "caf\u00e9 \U0001f600", "tab\there"]),
        "kind": rng.choice([1, 2, 3]),
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": start + rng.randint(1, 10**6),
        "attributes": [
            _kv("http.request.method", "GET"),
            _kv("http.response.status_code", rng.choice([200, 500])),
            _kv("ratio", 0.25),
            _kv("flag", True),
            _kv("tags", ["a", "ü"]),
        ],
        "status": {"code": 2, "message": "boom"} if i % 7 == 0 else {},
    }
    if i % 5 == 0:
        span["events"] = [
            {
                "timeUnixNano": str(start + 5),
                "name": "exception",
                "attributes": [_kv("exception.type", "ValueError"), _kv("exception.message", "bad\nvalue")],
            }
        ]
    if i % 11 == 0:
        span["links"] = [{"traceId": f"{rng.getrandbits(128):032x}", "spanId": f"{rng.getrandbits(64):016x}"}]
    return span


def traces(seed: int = 1, resources: int = 5, scopes: int = 2, spans: int = 6) -> dict:
    rng = random.Random(seed)
    n = 0
    out = []
    for r in range(resources):
        groups = []
        for s in range(scopes):
            group = []
            for _ in range(spans):
                group.append(_span(rng, n))
                n += 1
            groups.append({"scope": {"name": f"lib{s}", "version": "1.0"}, "spans": group})
        resource = {"attributes": [_kv("service.name", f"svc-{r}"), _kv("host.name", f"h{r % 2}")]}
        out.append({"resource": resource, "scopeSpans": groups, "schemaUrl": "https://x"})
    return {"resourceSpans": out}


def logs(seed: int = 2, resources: int = 3, records: int = 5) -> dict:
    rng = random.Random(seed)
    out = []
    for r in range(resources):
        recs = [
            {
                "timeUnixNano": str(T0 + i),
                "severityNumber": rng.choice([9, 17]),
                "severityText": "INFO",
                "body": {"stringValue": f"line {i} \u00e9"},
                "attributes": [_kv("k", i)],
                "traceId": f"{rng.getrandbits(128):032x}",
                "spanId": f"{rng.getrandbits(64):016x}",
            }
            for i in range(records)
        ]
        out.append(
            {
                "resource": {"attributes": [_kv("service.name", f"log-{r}")]},
                "scopeLogs": [{"scope": {"name": "logger"}, "logRecords": recs}],
            }
        )
    return {"resourceLogs": out}


def tempo() -> dict:
    """Tempo's /api/traces answer: batches, base64 ids, enum names, the legacy scope name."""
    doc = traces(3, resources=3, scopes=1, spans=4)
    for rs in doc["resourceSpans"]:
        rs["instrumentationLibrarySpans"] = [
            {"instrumentationLibrary": ss["scope"], "spans": ss["spans"]} for ss in rs.pop("scopeSpans")
        ]
        for sp in rs["instrumentationLibrarySpans"][0]["spans"]:
            sp["traceId"] = "W47/95gDgQPSabYzgT/GDA=="
            sp["spanId"] = "7uGbfsPBsXQ="
            sp["parentSpanId"] = ""
            sp["kind"] = "SPAN_KIND_SERVER"
            sp["status"] = {"code": "STATUS_CODE_ERROR"}
    return {"batches": doc["resourceSpans"]}


def spread(doc: dict) -> bytes:
    """A compact document with each resource on a line of its own."""
    (key, items), *_ = doc.items()
    return (
        f'{{"{key}":[\n' + ",\n".join(json.dumps(x, separators=(",", ":")) for x in items) + "\n]}\n"
    ).encode()


def rows(chunks: Any) -> tuple[list[dict], list[dict], list[tuple]]:
    """(spans, logs, rejects) in a comparable form: rows by their record index."""
    spans, log_rows, rejects = [], [], []
    for ch in chunks:
        if ch.spans is not None:
            t = pa.Table.from_batches([ch.spans])
            plain = [
                pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                for f in t.schema
            ]
            spans += t.cast(pa.schema(plain)).to_pylist()
        if ch.logs is not None:
            log_rows += ch.logs.to_pylist()
        rejects += [(r.source, r.offset, r.unit, r.reason, r.raw) for r in ch.rejects]
    by = lambda r: r["source_offset"]  # noqa: E731
    return sorted(spans, key=by), sorted(log_rows, key=by), rejects


def whole(data: bytes) -> tuple[list[dict], list[dict], list[tuple]]:
    return rows([otlp_json.decode_document(data, SRC)])


def streamed(
    data: bytes, block: int = otlp_json.DOC_BLOCK_BYTES
) -> tuple[list[dict], list[dict], list[tuple]]:
    return rows(otlp_json.read_document(io.BytesIO(data), SRC, block))


SHAPES = {
    "traces, pretty": json.dumps(traces(), indent=2).encode(),
    "traces, compact over lines": spread(traces(4)),
    "traces, escaped unicode": json.dumps(traces(5), indent=1, ensure_ascii=True).encode(),
    "logs, pretty": json.dumps(logs(), indent=2, ensure_ascii=False).encode(),
    "tempo batches": json.dumps(tempo(), indent=2).encode(),
    "jaeger v3 result": json.dumps({"result": traces(6, resources=2)}, indent=2).encode(),
    "with a BOM": b"\xef\xbb\xbf" + json.dumps(traces(7, resources=2), indent=4).encode(),
}
# (SPLIT_BYTES, PIECE_BYTES, block bytes): as shipped, and small enough that every resource and
# scope group is cut down to single records, decoded one per document and block
SIZES = [(16 << 20, 1 << 20, 4 << 20), (300, 2000, 3000), (1, 1, 1)]


@pytest.fixture(params=SIZES, ids=["shipped", "small", "one-by-one"])
def sizes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    split, piece, block = request.param
    monkeypatch.setattr(otlp_json, "SPLIT_BYTES", split)
    monkeypatch.setattr(otlp_json, "PIECE_BYTES", piece)
    return block


@pytest.mark.parametrize("shape", SHAPES)
def test_rows_are_those_of_the_whole_document(shape: str, sizes: int):
    data = SHAPES[shape]
    assert not otlp_json.is_line_mode(data[:65536])
    expected = whole(data)
    assert len(expected[0]) + len(expected[1]) > 0 and not expected[2]
    assert streamed(data, sizes) == expected
    assert rows(otlp_json.read(io.BytesIO(data), SRC)) == expected


def test_bad_records_are_rejected_at_their_record_index(sizes: int):
    doc = traces(8)
    doc["resourceSpans"][1]["scopeSpans"][0]["spans"][2]["traceId"] = "xyz"
    doc["resourceSpans"][3]["scopeSpans"][1]["spans"][0]["startTimeUnixNano"] = "soon"
    data = json.dumps(doc, indent=2).encode()
    expected = whole(data)
    assert [(r[1], r[2]) for r in expected[2]] == [(15, "record"), (43, "record")]
    assert streamed(data, sizes) == expected


def test_members_out_of_the_usual_order_give_the_same_rows(sizes: int):
    """Spans before their scope, scope groups before their resource, the legacy name beside
    the current one: the rows still follow the careful path's rules."""
    doc = traces(9)
    rs = doc["resourceSpans"]
    rs[0] = {"scopeSpans": rs[0]["scopeSpans"], "resource": rs[0]["resource"]}
    rs[1]["scopeSpans"] = [{"spans": ss["spans"], "scope": ss["scope"]} for ss in rs[1]["scopeSpans"]]
    rs[2] = {"instrumentationLibrarySpans": rs[3]["scopeSpans"], **rs[2]}  # ignored: scopeSpans wins
    rs[3] = {
        "instrumentationLibrarySpans": rs[3]["scopeSpans"],
        "resource": rs[3]["resource"],
        "scopeSpans": [],
    }
    rs[4]["scopeSpans"][0] = {
        "spans": rs[4]["scopeSpans"][0]["spans"],
        "instrumentationLibrary": {"name": "old"},
    }
    data = json.dumps(doc, indent=2).encode()
    expected = whole(data)
    assert {r["scope_name"] for r in expected[0]} == {"lib0", "lib1", "old"}
    assert streamed(data, sizes) == expected


def test_an_element_that_is_no_resource_is_rejected_alone(sizes: int):
    doc = traces(10)
    good = json.dumps(doc, indent=2).encode()
    doc["resourceSpans"].insert(2, {"resource": {"attributes": 5}, "scopeSpans": [{"spans": [{}]}]})
    data = json.dumps(doc, indent=2).encode()
    spans, _, rejects = streamed(data, sizes)
    assert spans == whole(good)[0]  # every other record, numbered as if it were not there
    ((path, offset, unit, reason, raw),) = rejects
    assert (path, unit) == ("doc.json", "byte")
    assert "Expected `array`, got `int`" in reason
    start = data.index(b'{\n      "resource": {\n        "attributes": 5')
    assert start <= offset < data.index(b"\n    },", start)  # the element (or, cut, its record)
    assert raw == data[offset : offset + len(raw)]


def test_a_value_nested_too_deep_is_rejected_and_the_rest_read(sizes: int):
    """A value nested deeper than msgspec decodes (Python's recursion limit) stops nothing: its
    element is rejected (or, cut down to records, its record alone), every other one is read."""
    doc = traces(12)
    deep = doc["resourceSpans"][2]["scopeSpans"][1]["spans"][3]
    deep["attributes"].append({"key": "deep", "value": "NESTED"})
    data = json.dumps(doc, indent=2).encode().replace(b'"NESTED"', b"[" * 5000 + b"]" * 5000)
    spans, _, rejects = streamed(data, sizes)
    ((path, offset, unit, reason, raw),) = rejects
    assert (path, unit) == ("doc.json", "byte") and "recursion" in reason
    assert raw == data[offset : offset + len(raw)] and b"[[[[" in raw
    kept = {r["span_id"] for r in spans}
    for i, resource in enumerate(doc["resourceSpans"]):
        ids = {sp["spanId"] for group in resource["scopeSpans"] for sp in group["spans"]}
        if i != 2:
            assert ids <= kept  # the elements after it too
        elif sizes == 1:  # cut down to single records: only the deep one goes
            assert ids - kept == {deep["spanId"]}
        else:
            assert deep["spanId"] not in kept


def test_malformed_json_ends_the_input_keeping_what_came_before(sizes: int):
    doc = traces(11)
    data = json.dumps(doc, indent=2).encode()
    third = data.index(b'"svc-2"')
    data = data[:third] + data[third:].replace(b'"value": {', b'"value" {', 1)  # a colon lost
    spans, _, rejects = streamed(data, sizes)
    before = json.dumps({"resourceSpans": doc["resourceSpans"][:2]}).encode()
    assert spans[: len(whole(before)[0])] == whole(before)[0]
    assert {r["service_name"] for r in spans} <= {"svc-0", "svc-1", "svc-2"}
    ((path, offset, unit, reason, raw),) = rejects
    assert (path, unit) == ("doc.json", "byte")
    assert reason.startswith("malformed JSON, the rest of the input is skipped: ")
    assert offset == data.rfind(b'{\n      "resource"', 0, third)  # at the broken resource's element
    assert raw == data[offset : offset + len(raw)]


def test_documents_one_after_another_are_read_in_turn(sizes: int):
    one = json.dumps(traces(12, resources=2), indent=2).encode()
    two = json.dumps(logs(13), indent=2).encode() + b"\n" + json.dumps(traces(14, resources=1)).encode()
    spans, log_rows, rejects = streamed(one + b"\n" + two, sizes)
    first = whole(one)[0]
    assert spans[: len(first)] == first
    n = len(first) + len(whole(json.dumps(logs(13)).encode())[1])
    later = whole(json.dumps(traces(14, resources=1)).encode())[0]
    assert spans[len(first) :] == [r | {"source_offset": r["source_offset"] + n} for r in later]
    assert [r["source_offset"] for r in log_rows] == list(range(len(first) + 1, n + 1))
    assert not rejects


def test_members_that_are_no_arrays_are_read_the_careful_way():
    data = b'{"resourceSpans": null, "other": [1, 2]}'
    ((path, offset, unit, reason, _),) = streamed(data)[2]
    assert (path, offset, unit) == ("doc.json", 0, "byte")
    assert reason == whole(data)[2][0][3]  # the careful path's wording
    assert streamed(b'{"other": [1, 2], "resourceLogs": []}') == ([], [], [])


class _Counting(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, n: int | None = -1) -> bytes:
        got = super().read(n)
        self.taken += len(got)
        return got


@pytest.mark.parametrize("one_scope", [False, True], ids=["many resources", "one scope group"])
def test_the_document_is_read_as_it_is_decoded(one_scope: bool, monkeypatch: pytest.MonkeyPatch):
    """The first rows come out when a small part of the input has been read: nothing holds the
    whole document, even one whose single resource holds every span (cut at SPLIT_BYTES)."""
    doc = traces(15, resources=1 if one_scope else 250, scopes=1, spans=2500 if one_scope else 10)
    data = json.dumps(doc, indent=2).encode()
    assert len(data) > 4_000_000
    monkeypatch.setattr(otlp_json, "SPLIT_BYTES", 200_000)
    monkeypatch.setattr(otlp_json, "PIECE_BYTES", 50_000)
    stream = _Counting(data)
    chunks = otlp_json.read_document(stream, SRC, 100_000)
    first = next(chunks)
    assert first.spans is not None and first.spans.num_rows > 0
    assert stream.taken < len(data) / 3
    assert rows([first, *chunks]) == whole(data)


@pytest.mark.parametrize("from_file", [False, True], ids=["bytes sent", "read from the file"])
def test_read_parallel_gives_what_read_gives(
    from_file: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(otlp_json, "DOC_BLOCK_BYTES", 20_000)
    monkeypatch.setattr(otlp_json, "SPLIT_BYTES", 10_000)  # the second resource is cut into pieces
    monkeypatch.setattr(otlp_json, "PIECE_BYTES", 5_000)
    doc = traces(16, resources=30)
    doc["resourceSpans"][1]["scopeSpans"][0]["spans"] *= 6
    doc["resourceSpans"][7]["scopeSpans"][0]["spans"][1]["spanId"] = ""
    data = json.dumps(doc, indent=2).encode() + b"\n" + json.dumps(logs(17), indent=2).encode() + b"\n{"
    path = tmp_path / "doc.json"
    path.write_bytes(data)
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        stream = open(path, "rb") if from_file else io.BytesIO(data)
        with stream:
            where = str(path) if from_file else None
            parallel = rows(otlp_json.read_parallel(stream, SRC, pool, window=2, path=where))
    serial = rows(otlp_json.read(io.BytesIO(data), SRC))
    assert parallel == serial
    assert [r[2:4] for r in serial[2]] == [
        ("record", "span id missing"),
        ("byte", "malformed JSON, the rest of the input is skipped: input ends inside a JSON value"),
    ]
    assert len(serial[0]) == 30 * 12 + 5 * 6 - 1 and len(serial[1]) == 15


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_big_pretty_document_is_ingested_by_the_decoding_processes(
    compress: bool, tmp_path: Path, monkeypatch
):
    """The pipeline hands a big document to `read_parallel` (the dataset's rows are the careful
    path's), and a malformed tail is one reject naming the file and the byte."""
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 100_000)
    monkeypatch.setattr(otlp_json, "DOC_BLOCK_BYTES", 30_000)
    calls: list[int] = []
    real = otlp_json.read_parallel

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(otlp_json, "read_parallel", spy)
    data = json.dumps(traces(18, resources=40), indent=2).encode()
    path = tmp_path / "export.json"
    path.write_bytes(gzip.compress(data + b"\n{") if compress else data + b"\n{")
    r = ingest.ingest_paths([str(path)], "doc", workers=2)
    assert calls == [1]
    expected = whole(data)[0]
    assert (r.spans, r.rejected) == (len(expected), 1)
    h = open_handle("doc")
    got = pa.concat_tables([pq.read_table(f) for f in h.span_files]).to_pylist()
    drop = ("source_id",)
    key = lambda row: row["source_offset"]  # noqa: E731
    assert [{k: v for k, v in row.items() if k not in drop} for row in sorted(got, key=key)] == [
        {k: v for k, v in row.items() if k not in drop} for row in expected
    ]
    assert r.rejects_path is not None
    (reject,) = [json.loads(line) for line in Path(r.rejects_path).read_text().splitlines()]
    assert (reject["source"], reject["offset"], reject["unit"]) == (str(path), len(data) + 2, "byte")
    assert reject["reason"].endswith("input ends inside a JSON value")


def test_line_mode_is_still_told_from_a_document():
    assert otlp_json.is_line_mode(b'{"resourceSpans":[]}\n{"resourceSpans":[]}\n')
    assert otlp_json.is_line_mode(b'{"x":1}\n{"resourceLogs":[]}\n')
    assert not otlp_json.is_line_mode(spread(traces()))
    assert isinstance(next(iter(otlp_json.read(io.BytesIO(spread(traces())), SRC))), Chunk)


@pytest.mark.parametrize("indent", [None, 1, 2, 4])
@pytest.mark.parametrize("read_bytes", [7, 200, 1 << 17])
@pytest.mark.parametrize("run_bytes", [1, 300, 1 << 19])
def test_runs_of_records_are_whole_elements(indent: int | None, read_bytes: int, run_bytes: int):
    """json_stream's runs (several records in one step, told by the closing brace's indentation)
    hold exactly the array's elements, also where what follows the array is indented alike."""
    groups = [
        {"scope": {"n": g}, "spans": [{"i": i, "a": [{"}": "},\n"}], "o": {"p": {}}} for i in range(g * 7)]}
        for g in range(4)
    ]
    doc = {"resourceSpans": [{"resource": {}, "scopeSpans": groups, "x": [{"i": -1}]}]}
    data = json.dumps(doc, indent=indent).encode()
    split = {"resourceSpans": ["scopeSpans"], "resourceSpans[].scopeSpans": ["spans"]}
    runs = ["resourceSpans[].scopeSpans[].spans"]
    events = list(iter_cut(io.BytesIO(data), ["resourceSpans"], split, 1, read_bytes, runs, run_bytes))
    got = [json.loads(b"[" + e.raw + b"]") for e in events if isinstance(e, Run)]
    assert [x for run in got for x in run] == [sp for g in groups for sp in g["spans"]]
    assert all(data[e.offset : e.offset + len(e.raw)] == e.raw for e in events if isinstance(e, Run))
    if indent and run_bytes > 1000:
        assert max(map(len, got)) > 1  # several records a step


@pytest.mark.parametrize("workers", [1, 2])
def test_a_cut_compressed_document_keeps_every_record_before_the_cut(
    tmp_path: Path, monkeypatch, workers: int
):
    """A pretty-printed document in a .zst cut short: the records cut from it before the break land,
    as many as its readable part gives uncompressed (the last block being put together was dropped
    with the error), in process and through the workers."""
    import zstandard

    from bench.shapes import write_shape
    from ingest import formats

    doc = tmp_path / "doc.json"
    write_shape(doc, "pretty", 3 * 1024 * 1024)
    packed = zstandard.ZstdCompressor().compress(doc.read_bytes())
    cut = tmp_path / "cut.bin"
    cut.write_bytes(packed[: len(packed) * 7 // 10])
    stream, _ = formats.decompressed(io.BytesIO(cut.read_bytes()))
    readable = bytearray()
    try:
        while chunk := stream.read1(1 << 16):
            readable += chunk
    except formats.CORRUPT_ERRORS:
        pass
    (tmp_path / "prefix.json").write_bytes(bytes(readable))
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 1024 if workers > 1 else 1 << 40)
    monkeypatch.setattr(otlp_json, "DOC_BLOCK_BYTES", 64 * 1024)  # many blocks
    got = ingest.ingest_paths([str(cut)], "cut", workers=workers)
    want = ingest.ingest_paths([str(tmp_path / "prefix.json")], "prefix", workers=workers)
    assert got.spans == want.spans > 500
