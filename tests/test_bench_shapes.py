"""The ingest benchmark's shapes (bench/shapes.py) are dumps `dcr ingest` takes whole: at a small
size each ingests with no reject, exactly the spans and log records its generator counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import ingest as bench
from bench.shapes import SHAPES, write_shape
from ingest import ingest_paths


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_shape_ingests_exactly_what_was_generated(shape: str, tmp_path: Path) -> None:
    path = tmp_path / f"{shape}.json"
    counts = write_shape(path, shape, 150_000, seed=3)
    assert counts.spans + counts.logs > 50
    r = ingest_paths([str(path)], "shapes")
    assert (r.spans, r.logs, r.rejected, r.duplicates) == (counts.spans, counts.logs, 0, 0)


def test_shapes_are_what_they_say(tmp_path: Path) -> None:
    """The forms that make each shape: one document, Tempo's batches and jsonpb ids, logs, one batch."""
    docs = {}
    for shape in ("pretty", "tempo", "logs", "hugebatch", "smallbatches"):
        write_shape(tmp_path / shape, shape, 120_000, seed=5)
        docs[shape] = (tmp_path / shape).read_bytes()
    pretty = docs["pretty"]
    assert (
        pretty.startswith(b'{\n  "resourceSpans": [\n    {\n')
        and len(json.loads(pretty)["resourceSpans"]) > 1
    )
    tempo = [json.loads(ln) for ln in docs["tempo"].splitlines()]
    span = tempo[0]["batches"][0]["scopeSpans"][0]["spans"][0]
    assert (
        len(span["spanId"]) == 12 and span["spanId"].endswith("=") and span["kind"].startswith("SPAN_KIND_")
    )
    assert {
        len({s["traceId"] for b in t["batches"] for s in b["scopeSpans"][0]["spans"]}) for t in tempo
    } == {1}
    kinds = {next(iter(json.loads(ln))) for ln in docs["logs"].splitlines()}
    assert "resourceLogs" in kinds
    huge = [json.loads(ln) for ln in docs["hugebatch"].splitlines()]
    assert all(len(h["resourceSpans"]) == 1 for h in huge)
    small = json.loads(docs["smallbatches"].splitlines()[0])["resourceSpans"]
    assert len(small) >= 50 and all(1 <= len(b["scopeSpans"][0]["spans"]) <= 3 for b in small)


def test_same_seed_same_dump(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert write_shape(a, "attrs", 60_000, seed=9) == write_shape(b, "attrs", 60_000, seed=9)
    write_shape(c, "attrs", 60_000, seed=10)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_matrix_flags_a_count_that_differs() -> None:
    """The matrix fails loudly when the ingest stores other than what was generated."""
    dump = bench.Dump("attrs", Path("x.jsonl"), spans=100, logs=0)
    out = {"spans": 100, "logs": 0, "rejected": 0, "duplicates": 0, "cpu_s_main": 1.0, "cpu_s_workers": 1.0}
    ok = bench.Run(1.0, 100.0, 90.0, json.dumps(out), "", 2.0, 0)
    assert bench._ours_cells(dump, ok, 10**6, 1.0)[1] is None
    short = bench.Run(1.0, 100.0, 90.0, json.dumps({**out, "spans": 99, "rejected": 1}), "", 2.0, 0)
    wrong = bench._ours_cells(dump, short, 10**6, 1.0)[1]
    assert wrong is not None and "stored 99 spans" in wrong and "rejected 1" in wrong
    failed = bench.Run(1.0, 100.0, 90.0, "", "Traceback…\nValueError: boom\n", 2.0, 1)
    assert bench._ours_cells(dump, failed, 10**6, 1.0)[1] == "exit 1: ValueError: boom"


def test_matrix_names_why_duckdb_could_not_read() -> None:
    err = 'Traceback (most recent call last):\n  File "<string>", line 30\n_duckdb.InvalidInputException: Invalid Input Error: "maximum_object_size" of 4294967295 bytes exceeded\n'
    assert bench._error_line(err) == 'Invalid Input Error: "maximum_object_size" of 4294967295 bytes exceeded'


def test_a_compressed_dump_holds_the_plain_one_and_is_measured_by_its_size(tmp_path: Path) -> None:
    import zstandard

    plain = tmp_path / "attrs.jsonl"
    counts = write_shape(plain, "attrs", 80_000, seed=3)
    d = bench.compressed(bench.Dump("attrs", plain, counts.spans, counts.logs))
    assert d.path.name == "attrs.jsonl.zst" and d.plain == plain and d.size == plain.stat().st_size
    assert zstandard.ZstdDecompressor().stream_reader(d.path.open("rb")).read() == plain.read_bytes()
    got = ingest_paths([str(d.path)], "zst")
    assert (got.spans, got.rejected) == (counts.spans, 0)
