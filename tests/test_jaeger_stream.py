"""Streaming: json_stream cuts elements exactly at any read size; a generated Jaeger dump is read
with memory that does not grow with the file (the multi-hundred-MB run is bench/ingest.py)."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path

import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.gen_jaeger import write_jaeger_dump
from ingest import jaeger
from ingest.json_stream import Element, MalformedJSON, Members, iter_array
from ingest.records import SourceInfo

DOC = (
    b'\xef\xbb\xbf {"total": 3, "data" : [ {"a": "x\\"]}", "b": [1, {"c": null}]} ,\n 12345 , "s,]" ,'
    b' [] , {} ], "errors": null, "limit": 0}\n[true, false]'
)


@pytest.mark.parametrize("read_bytes", [1, 2, 3, 7, 64, 1 << 20])
def test_elements_are_cut_exactly_at_any_read_size(read_bytes: int):
    items = list(iter_array(io.BytesIO(DOC), "data", read_bytes))
    elements = [i for i in items if isinstance(i, Element)]
    assert [json.loads(e.raw) for e in elements] == [
        {"a": 'x"]}', "b": [1, {"c": None}]},
        12345,
        "s,]",
        [],
        {},
        True,
        False,
    ]
    assert [e.index for e in elements] == list(range(1, 8))
    for e in elements:  # offsets point into the original bytes
        assert DOC[e.offset : e.offset + len(e.raw)] == e.raw
    (members,) = [i for i in items if isinstance(i, Members)]
    assert members.members == {"total": b"3", "errors": b"null", "limit": b"0"}
    assert members.offset == DOC.index(b"{")


@pytest.mark.parametrize(
    ("data", "offset", "reason"),
    [
        (b'{"data":[{"a":1} {"b":1}]}', 17, "expected one of ',]', found '{'"),
        (b'{"data":[1,{"a":', 11, "input ends inside a JSON value"),
        (b'{"data":[1,2', 12, "expected one of ',]', found end of input"),
        (b'{"data":[1,tru]}', 11, "invalid character"),
        (b'"just a string"', 0, "expected a JSON object or array"),
    ],
)
def test_malformed_json_stops_with_a_position(data: bytes, offset: int, reason: str):
    it = iter_array(io.BytesIO(data), "data", 4)
    with pytest.raises(MalformedJSON) as info:
        list(it)
    assert info.value.offset == offset
    assert info.value.reason.startswith(reason)


def _read_counting(path: Path) -> tuple[int, int, int, int]:
    """(spans, ERROR spans, rejects, peak traced bytes) reading `path` chunk by chunk."""
    spans = errors = rejects = 0
    tracemalloc.start()
    try:
        with open(path, "rb") as f:
            for chunk in jaeger.read(f, SourceInfo("s", str(path))):
                rejects += len(chunk.rejects)
                if chunk.spans is not None:
                    spans += chunk.spans.num_rows
                    errors += pc.sum(pc.equal(chunk.spans.column("status_code"), "ERROR")).as_py() or 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return spans, errors, rejects, peak


def test_generated_dump_streams_with_bounded_memory(tmp_path: Path):
    small, big = tmp_path / "small.json", tmp_path / "big.json"
    s_stats = write_jaeger_dump(small, 5_000_000, seed=3)
    b_stats = write_jaeger_dump(big, 20_000_000, seed=4)
    s_spans, s_err, s_rej, s_peak = _read_counting(small)
    b_spans, b_err, b_rej, b_peak = _read_counting(big)
    assert (s_spans, s_err, s_rej) == (s_stats.spans, s_stats.error_spans, 0)
    assert (b_spans, b_err, b_rej) == (b_stats.spans, b_stats.error_spans, 0)
    assert b_stats.bytes >= 20_000_000
    # one read block + one trace + one chunk of rows: the same for 5 MB and 20 MB
    assert b_peak < b_stats.bytes / 2
    assert b_peak - s_peak < 2_000_000


def test_generator_is_deterministic_and_shaped_like_the_api(tmp_path: Path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_jaeger_dump(a, 200_000, seed=9)
    write_jaeger_dump(b, 200_000, seed=9)
    assert a.read_bytes() == b.read_bytes()
    doc = json.loads(a.read_bytes())
    assert set(doc) == {"data", "total", "limit", "offset", "errors"}
    trace = doc["data"][0]
    assert set(trace) == {"traceID", "spans", "processes", "warnings"}
    assert {s["processID"] for s in trace["spans"]} <= set(trace["processes"])
    ui = tmp_path / "ui.json"
    write_jaeger_dump(ui, 100_000, seed=9, ui_fields=True)
    span = json.loads(ui.read_bytes())["data"][0]["spans"][0]
    assert {"process", "relativeStartTime", "depth", "hasChildren", "childSpanIds"} <= set(span)
    rows = [c.spans.num_rows for c in jaeger.read(open(ui, "rb"), SourceInfo("u", str(ui))) if c.spans]
    assert sum(rows) == sum(len(t["spans"]) for t in json.loads(ui.read_bytes())["data"])


def _rows_and_rejects(chunks) -> tuple[list[tuple], list]:
    rows, rejects = [], []
    for c in chunks:
        rejects.extend(c.rejects)
        if c.spans is not None:
            rows.extend(zip(*(c.spans.column(n).to_pylist() for n in c.spans.schema.names), strict=True))
    return rows, rejects


def test_read_parallel_gives_what_read_gives(tmp_path: Path):
    import concurrent.futures as cf
    import multiprocessing

    dump = tmp_path / "dump.json"
    write_jaeger_dump(dump, 600_000, seed=5)
    doc = json.loads(dump.read_bytes())
    doc["data"].insert(3, 42)  # a trace that is not an object
    doc["data"][5]["spans"][1]["spanID"] = ""  # one bad span inside a good trace
    second = {"traceID": "00000000000000aa", "spans": [{"spanID": "b1", "startTime": 5, "processID": "x"}]}
    data = (
        json.dumps(doc).encode()
        + b"\n"
        + json.dumps(second).encode()  # a bare trace after it
        + b'\n{"data":['
        + json.dumps(doc["data"][0]).encode()[:-10]
    )  # and a truncated third document
    path = tmp_path / "mixed.json"
    path.write_bytes(data)

    serial = _rows_and_rejects(jaeger.read(io.BytesIO(data), SourceInfo("s", str(path))))
    ctx = multiprocessing.get_context("fork")
    with cf.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool, open(path, "rb") as fh:
        parallel = _rows_and_rejects(
            jaeger.read_parallel(fh, SourceInfo("s", str(path)), pool, window=3, block_bytes=64 * 1024)
        )
    assert parallel == serial
    rows, rejects = serial
    assert [r[-1] for r in rows] == sorted(r[-1] for r in rows)  # source_offset in file order
    assert [(r.unit, r.reason.split(":")[0]) for r in rejects] == [
        ("byte", "trace #4 is not a JSON object"),
        ("record", "spanID missing"),
        ("byte", "malformed JSON, the rest of the input is skipped"),
    ]
    assert rows[-1][1] == "00000000000000b1"  # the bare trace, numbered after the first document


@pytest.mark.parametrize("read_bytes", [5, 1 << 20])
def test_values_nested_deeper_than_msgspec_are_cut_by_hand(read_bytes: int):
    deep = b'{"k": "a\\"]}\\\\", "v": ' + b"[" * 3000 + b'"x]"' + b"]" * 3000 + b"}"
    data = b'{"data": [1, ' + deep + b" , 2]}"
    elements = [i for i in iter_array(io.BytesIO(data), "data", read_bytes) if isinstance(i, Element)]
    assert [e.raw.strip() for e in elements] == [b"1", deep, b"2"]


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(_JSON, max_size=6), read_bytes=st.integers(1, 40), indent=st.sampled_from([None, 1]))
def test_any_json_array_is_cut_into_its_elements(values: list, read_bytes: int, indent: int | None):
    data = json.dumps({"x": 1, "data": values, "y": [2]}, indent=indent, ensure_ascii=False).encode()
    items = list(iter_array(io.BytesIO(data), "data", read_bytes))
    elements = [i for i in items if isinstance(i, Element)]
    assert [json.loads(e.raw) for e in elements] == values
    assert items[-1] == Members({"x": b"1", "y": items[-1].members["y"]}, 0)
    assert json.loads(items[-1].members["y"]) == [2]
