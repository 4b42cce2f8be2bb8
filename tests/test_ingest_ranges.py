"""ingest/otlp_ranges.py: a byte range of OTLP/JSON lines, a huge line decoded in pieces.

Every case holds the ranges' rows and rejects, put together as the ingest does, to what
`decode_lines_fast` gives for the whole file; the sizes are shrunk so that lines of a few KB
are "huge" and are cut into pieces of about a KB."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from bench.fuzz_ranges import by_ranges
from bench.fuzz_ranges import plain as _plain
from ingest import otlp_fast, otlp_ranges
from ingest.otlp_fast import decode_lines_fast
from ingest.records import Chunk, SourceInfo, shift_chunk

SRC = SourceInfo("src-test", "test.jsonl")


def _enc(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _kv(key: str, value: object) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def span(i: int, links: int = 0) -> dict:
    s: dict = {
        "traceId": f"{i + 1:032x}",
        "spanId": f"{i + 1:016x}",
        "parentSpanId": "" if i % 5 == 0 else f"{i:016x}",
        "name": f"op-{i % 7}",
        "kind": 1 + i % 5,
        "startTimeUnixNano": str(1_700_000_000_000_000_000 + i * 1000),
        "endTimeUnixNano": str(1_700_000_000_000_000_000 + i * 1000 + 500),
        "attributes": [
            _kv("http.route", f"/r/{i % 3}"),
            _kv("n", i),
            _kv("ok", i % 2 == 0),
            # a record's start written inside a string: escaped, never a cut
            _kv("text", 'x"},{"traceId":"y ü'),
        ],
        "status": {"code": i % 3},
    }
    if i % 4 == 0:
        s["events"] = [{"timeUnixNano": str(1_700_000_000_000_000_000 + i), "name": "e", "attributes": []}]
    if links:  # links start as spans do ('{"traceId":'): a cut between two of them is no record boundary
        s["links"] = [{"traceId": f"{i + k + 7:032x}", "spanId": f"{i + k + 7:016x}"} for k in range(links)]
    return s


def resource(name: str) -> dict:
    return {"attributes": [_kv("service.name", name), _kv("host.name", "h1")]}


def group(scope: str, spans: list[dict]) -> dict:
    return {"scope": {"name": scope, "version": "1"}, "spans": spans}


def spans_line(*resources: tuple[str, list[dict]]) -> bytes:
    return _enc({"resourceSpans": [{"resource": resource(n), "scopeSpans": gs} for n, gs in resources]})


def many(start: int, n: int, links: int = 0) -> list[dict]:
    return [span(i, links if i % 3 == 0 else 0) for i in range(start, start + n)]


def logs_line(start: int, n: int) -> bytes:
    records = [
        {
            "timeUnixNano": str(1_700_000_000_000_000_000 + i),
            "severityNumber": 9,
            "severityText": "INFO",
            "body": {"stringValue": f"line {i} ü"},
            "traceId": f"{i + 1:032x}",
            "spanId": f"{i + 1:016x}",
            "attributes": [_kv("k", i)],
        }
        for i in range(start, start + n)
    ]
    rl = {"resource": resource("logger"), "scopeLogs": [{"scope": {"name": "log"}, "logRecords": records}]}
    return _enc({"resourceLogs": [rl]})


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp_ranges, "HUGE_LINE_BYTES", 4096)
    monkeypatch.setattr(otlp_ranges, "PIECE_BYTES", 2048)
    monkeypatch.setattr(otlp_ranges, "READ_BYTES", 4096)


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each huge line went in pieces (True) or was read whole (False), in order."""
    out: list[bool] = []
    orig = otlp_ranges._Line.in_pieces

    def spy(self, *args):  # type: ignore[no-untyped-def]
        ok = orig(self, *args)
        out.append(ok)
        return ok

    monkeypatch.setattr(otlp_ranges._Line, "in_pieces", spy)
    return out


def _concat(batches: list[pa.RecordBatch | None]) -> pa.Table | None:
    tables = [t for t in map(_plain, batches) if t is not None]
    return pa.concat_tables(tables) if tables else None


def assert_same_as_whole(path: Path, step: int) -> list[Chunk]:
    data = path.read_bytes()
    whole, nlines = decode_lines_fast(data.removeprefix(b"\xef\xbb\xbf"), 1, SRC, compact=True)
    chunks, lines = by_ranges(path, step, SRC)
    assert lines == nlines
    for kind in ("spans", "logs"):
        got = _concat([getattr(c, kind) for c in chunks])
        want = _plain(getattr(whole, kind))
        if want is None:
            assert got is None
            continue
        assert got is not None
        # rows of one line come in its order; lines in file order (the careful path's rows of a
        # line come after the fast tiers' rows of the block: compare within a line's order)
        key = [("source_offset", "ascending")]
        assert got.sort_by(key).equals(want.sort_by(key)), kind
    assert sorted((r.offset, r.reason, r.raw) for c in chunks for r in c.rejects) == sorted(
        (r.offset, r.reason, r.raw) for r in whole.rejects
    )
    return chunks


pytestmark = pytest.mark.skipif(not otlp_fast.native_available(), reason="the native tier is not built")


def test_a_huge_line_is_decoded_in_pieces_with_the_rows_of_the_whole_line(
    tmp_path: Path, small: None, taken: list[bool]
) -> None:
    lines = [
        spans_line(("a", [group("s", many(0, 3))])),
        spans_line(("b", [group("s1", many(100, 80, links=2))])),  # huge: ~40 KB
        spans_line(("c", [group("s", many(300, 2))])),
        logs_line(1000, 120),  # huge, logs
        spans_line(("d", [group("s2", many(500, 60))])),  # huge, last, no newline at the end
    ]
    path = tmp_path / "dump.jsonl"
    path.write_bytes(b"\n".join(lines))
    for step in (3000, 4096, 10_000, 1 << 20):
        taken.clear()
        chunks = assert_same_as_whole(path, step)
        if step < 1 << 20:
            assert taken == [True, True, True]
            # a chunk a piece: none holds more than a piece's rows
            assert max(c.spans.num_rows for c in chunks if c.spans is not None) < 20


HUGE_VARIANTS = {
    # members that decide the rows after the records: the line is read whole
    "scope after spans": lambda: _enc(
        {
            "resourceSpans": [
                {"resource": resource("a"), "scopeSpans": [{"spans": many(0, 60), "scope": {"name": "late"}}]}
            ]
        }
    ),
    "resource after scopeSpans": lambda: _enc(
        {"resourceSpans": [{"scopeSpans": [group("s", many(0, 60))], "resource": resource("late")}]}
    ),
    "null scope, then instrumentationLibrary after the records": lambda: _enc(
        {
            "resourceSpans": [
                {
                    "resource": resource("a"),
                    "scopeSpans": [
                        {"scope": None, "spans": many(0, 60), "instrumentationLibrary": {"name": "lib"}}
                    ],
                }
            ]
        }
    ),
    "legacy names": lambda: _enc(
        {
            "resourceSpans": [
                {
                    "resource": resource("a"),
                    "instrumentationLibrarySpans": [
                        {"instrumentationLibrary": {"name": "old"}, "spans": many(0, 60)}
                    ],
                }
            ]
        }
    ),
    # a second group, or a second resource, whose records a piece would reach
    "two scope groups": lambda: spans_line(("a", [group("s1", many(0, 40)), group("s2", many(100, 40))])),
    "two resources": lambda: spans_line(("a", [group("s", many(0, 40))]), ("b", [group("s", many(100, 40))])),
    # records-like objects at the records' depth in an unknown member after them: pieces of it
    # would be valid documents of one group, under the wrong array
    "record-like objects after the records": lambda: _enc(
        {
            "resourceSpans": [
                {
                    "resource": resource("a"),
                    "scopeSpans": [group("s", many(0, 20))],
                    "other": [{"inner": many(100, 60)}],
                }
            ]
        }
    ),
    "a key twice after the records": lambda: (
        spans_line(("a", [group("s", many(0, 60))]))[:-6] + b',"scope":{"name":"again"}}]}]}'
    ),
    "a bad span in the middle": lambda: spans_line(
        ("a", [group("s", many(0, 30) + [{**span(30), "traceId": "zz" * 16}] + many(31, 30))])
    ),
    "a span the native scan declines": lambda: spans_line(
        ("a", [group("s", many(0, 30) + [{**span(30), "kind": "SPAN_KIND_NONSENSE"}] + many(31, 30))])
    ),
    "cut short": lambda: spans_line(("a", [group("s", many(0, 60))]))[:25_000],
    "text after the document": lambda: spans_line(("a", [group("s", many(0, 60))])) + b" {}",
    "whitespace": lambda: json.dumps(
        {"resourceSpans": [{"resource": resource("a"), "scopeSpans": [group("s", many(0, 60))]}]}
    ).encode(),
    "crlf": lambda: spans_line(("a", [group("s", many(0, 60))])) + b"\r",
    "links between every cut": lambda: spans_line(("a", [group("s", many(0, 60, links=6))])),
}


@pytest.mark.parametrize("variant", sorted(HUGE_VARIANTS))
def test_a_huge_line_of_any_shape_gives_the_rows_and_rejects_of_the_whole_line(
    tmp_path: Path, small: None, variant: str
) -> None:
    huge = HUGE_VARIANTS[variant]()
    assert len(huge) > otlp_ranges.HUGE_LINE_BYTES
    path = tmp_path / "dump.jsonl"
    path.write_bytes(
        spans_line(("x", [group("s", many(900, 2))])) + b"\n" + huge + b"\n" + logs_line(5, 2) + b"\n"
    )
    for step in (1500, 4096, 7000):
        assert_same_as_whole(path, step)


def test_the_shape_it_cuts_is_cut(tmp_path: Path, small: None, taken: list[bool]) -> None:
    """The variants above that are read whole are read whole for their shape, not by accident
    (the spy sees them go in pieces or not); a clean huge line goes in pieces."""
    path = tmp_path / "dump.jsonl"
    path.write_bytes(HUGE_VARIANTS["links between every cut"]() + b"\n")
    assert_same_as_whole(path, 3000)
    assert taken == [True]
    taken.clear()  # every span with links, which start as spans do: the cuts fall between spans still
    path.write_bytes(spans_line(("a", [group("s", [span(i, links=3) for i in range(60)])])) + b"\n")
    assert_same_as_whole(path, 3000)
    assert taken == [True]
    taken.clear()
    path.write_bytes(HUGE_VARIANTS["record-like objects after the records"]() + b"\n")
    assert_same_as_whole(path, 3000)
    assert taken == [False]


def test_a_byte_order_mark_before_a_huge_first_line(tmp_path: Path, small: None, taken: list[bool]) -> None:
    path = tmp_path / "dump.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + spans_line(("a", [group("s", many(0, 60))])) + b"\n")
    assert_same_as_whole(path, 3000)
    assert taken == [True]


class _Counting:
    """A file whose reads are noted in `reads` (their sizes)."""

    def __init__(self, fh, reads: list[int]) -> None:  # type: ignore[no-untyped-def]
        self.fh = fh
        self.reads = reads

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        self.fh.close()

    def fileno(self) -> int:
        return self.fh.fileno()

    def seek(self, pos: int) -> int:
        return self.fh.seek(pos)

    def tell(self) -> int:
        return self.fh.tell()

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.reads.append(len(data))
        return data


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    reads: list[int] = []
    real_open = open
    monkeypatch.setattr(otlp_ranges, "open", lambda p, m: _Counting(real_open(p, m), reads), raising=False)
    return reads


def test_a_range_inside_a_huge_line_reads_only_its_own_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No line starts in it: one empty chunk, no lines, and no read to the line's end."""
    path = tmp_path / "dump.jsonl"
    path.write_bytes(spans_line(("a", [group("s", many(0, 400))])) + b"\n")
    read = _count_reads(monkeypatch)
    got, n = otlp_ranges.decode_range(str(path), 10_000, 20_000, SRC, lambda c: c, lambda c: None)
    assert n == 0 and len(got) == 1 and got[0].spans is None and not got[0].rejects
    assert sum(read) <= 10_001


def test_a_range_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A range whose last line runs past its end: its lines' bytes in one read, that line's
    end included (not the range and then the rest of the line, put together: a copy of it all)."""
    lines = [spans_line(("a", [group("s", many(i * 10, 10))])) for i in range(6)]
    path = tmp_path / "dump.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    first_end = len(lines[0]) + 1
    start, end = first_end - 5, first_end + len(lines[1]) + 20  # lines 2 and 3 start in it
    read = _count_reads(monkeypatch)
    got, n = otlp_ranges.decode_range(str(path), start, end, SRC, lambda c: c, lambda c: None)
    assert n == 2 and sum(c.spans.num_rows for c in got if c.spans is not None) == 20
    assert read == [len(lines[1]) + len(lines[2]) + 2]


def test_the_ingest_puts_the_pieces_of_a_range_together_in_order(
    tmp_path: Path, small: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pipeline._parallel_chunks over the ranges' parcels (a list for a range whose huge line
    went in pieces): rows, line numbers, rejects and bytes as for the whole file."""
    import concurrent.futures as cf

    from ingest import pipeline

    lines = [
        spans_line(("a", [group("s", many(0, 3))])),
        spans_line(("b", [group("s1", many(100, 80, links=2))])),
        HUGE_VARIANTS["a bad span in the middle"](),
        logs_line(1000, 120),
        spans_line(("c", [group("s", many(300, 2))])),
    ]
    path = tmp_path / "dump.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setattr(pipeline, "_range_bytes", lambda: 5000)
    whole, _ = decode_lines_fast(path.read_bytes(), 1, SRC, compact=True)
    size = path.stat().st_size
    with open(path, "rb") as fh, cf.ThreadPoolExecutor(2) as pool:
        opened = pipeline._Opened(path, size, fh, b"", None)
        got = list(pipeline._parallel_chunks(pool, 2, opened, SRC, "otlp_json", tmp_path))  # type: ignore[arg-type]
    assert sum(nbytes for _, nbytes in got) == size
    assert len(got) > len(range(0, size, 5000)), "the huge lines' pieces came as chunks of their own"
    key = [("source_offset", "ascending")]
    for kind in ("spans", "logs"):
        rows = _concat([getattr(c, kind) for c, _ in got])
        want = _plain(getattr(whole, kind))
        assert rows is not None and want is not None
        assert rows.sort_by(key).equals(want.sort_by(key)), kind
    rejects = [(r.offset, r.reason, r.raw) for c, _ in got for r in c.rejects]
    assert rejects == [(r.offset, r.reason, r.raw) for r in whole.rejects] and rejects


def by_blocks(data: bytes, step: int, spool: Path | None = None) -> tuple[list[Chunk], int]:
    """A compressed input's blocks of whole lines (formats.iter_lines_spooled), each through
    decode_block, put together as the ingest does; with a `spool` folder, a huge line goes to a
    file there and through pipeline._decode_spooled, as the ingest's workers decode it."""
    import io

    from ingest import pipeline
    from ingest.formats import iter_lines_spooled
    from ingest.handoff import unpack

    chunks: list[Chunk] = []
    lines = spooled = 0
    for block in iter_lines_spooled(io.BytesIO(data), step, spool, otlp_ranges.HUGE_LINE_BYTES):
        if isinstance(block, Path):
            parcels, n = pipeline._decode_spooled(str(block), min(step, otlp_ranges.HUGE_LINE_BYTES), SRC)
            got = [unpack(p) for p in parcels]
            assert n == 1 and not block.exists()
            spooled += 1
        else:
            got, n = otlp_ranges.decode_block(block, SRC, lambda c: c, lambda c: None)
        assert got
        for c in got:
            chunks.append(shift_chunk(c, lines))
        lines += n
    assert (spooled > 0) == (spool is not None and step < 2 * otlp_ranges.HUGE_LINE_BYTES), spooled
    assert (spooled > 0) == (spool is not None and step < 2 * otlp_ranges.HUGE_LINE_BYTES), spooled
    return chunks, lines


@pytest.mark.parametrize("variant", sorted(HUGE_VARIANTS))
def test_a_compressed_inputs_huge_line_gives_the_rows_and_rejects_of_the_whole_line(
    small: None, taken: list[bool], variant: str, tmp_path: Path
) -> None:
    huge = HUGE_VARIANTS[variant]()
    data = (
        spans_line(("x", [group("s", many(900, 2))]))
        + b"\n\n"
        + huge
        + b"\n"
        + logs_line(5, 2)
        + b"\n"
        + huge
        + b"\nnot json\n"
        + spans_line(("y", [group("s", many(950, 2))]))
    )
    whole, nlines = decode_lines_fast(data, 1, SRC, compact=True)
    for step, spool in [(st, sp) for st in (1500, 4096, 7000, 1 << 20) for sp in (None, tmp_path)]:
        chunks, lines = by_blocks(data, step, spool)
        assert lines == nlines
        assert spool is None or not list(spool.iterdir())  # each spooled line's file went
        for kind in ("spans", "logs"):
            got = _concat([getattr(c, kind) for c in chunks])
            want = _plain(getattr(whole, kind))
            key = [("source_offset", "ascending")]
            assert (got is None) == (want is None)
            if want is not None:
                assert got is not None and got.sort_by(key).equals(want.sort_by(key)), (kind, step)
        assert sorted((r.offset, r.reason, r.raw) for c in chunks for r in c.rejects) == sorted(
            (r.offset, r.reason, r.raw) for r in whole.rejects
        )
    if variant == "links between every cut":
        assert True in taken  # this shape does go in pieces


def test_blocks_in_flight_are_bounded_by_bytes_as_well_as_by_count() -> None:
    """A compressed input's block is whole lines: a block of one 30 MB line counts its bytes, so
    no more than the budget's worth (and always one) waits in flight, whatever the window."""
    import concurrent.futures as cf

    from ingest import pipeline

    submitted: list[int] = []

    class Pool:
        def submit(self, fn, *args):  # type: ignore[no-untyped-def]
            submitted.append(args[0])
            f: cf.Future = cf.Future()
            f.set_result(fn(*args))
            return f

    def task(i: int) -> tuple[list[int], int]:
        return [i], 1

    def tasks(sizes: list[int]):  # type: ignore[no-untyped-def]
        return ((task, n, i) for i, n in enumerate(sizes))

    def most_in_flight(sizes: list[int]) -> int:
        submitted.clear()
        most = 0
        for k, (parcel, _, _) in enumerate(pipeline._ordered(Pool(), tasks(sizes), window=8, budget=32)):  # type: ignore[arg-type]
            most = max(most, len(submitted) - k)
            assert parcel == [k]  # in order
        return most

    assert most_in_flight([4] * 20) == 8  # small blocks: the window
    assert most_in_flight([30] * 6) == 2  # huge ones: the budget
    assert most_in_flight([100] * 3) == 1  # one over the budget still goes


def test_a_compressed_input_with_huge_lines_ingests_as_the_plain_one(
    tmp_path: Path, small: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the ingest and its worker processes: a zstd input whose huge lines are spooled
    to files (and decoded in pieces from there) gives the rows and line numbers of the same
    lines uncompressed, its reject too, and leaves no spooled file behind."""
    import pyarrow.parquet as pq
    import zstandard

    import ingest
    from ingest import pipeline
    from ingest.dataset import dataset_path, open_handle

    lines = [spans_line(("x", [group("s", many(i * 1000, 3))])) for i in range(40)]
    for i in (3, 17, 30):
        lines[i] = spans_line(("h", [group("s", many(100_000 + i * 100, 60, links=6))]))
        assert len(lines[i]) > 2 * otlp_ranges.HUGE_LINE_BYTES
    lines[25] = b"not json"
    assert b"},{" in lines[30]
    lines[30] = lines[30].replace(b"},{", b"},,{", 1)  # a huge line that is not JSON: rejected whole
    raw = b"\n".join(lines) + b"\n"
    (tmp_path / "plain.jsonl").write_bytes(raw)
    (tmp_path / "packed.bin").write_bytes(zstandard.ZstdCompressor().compress(raw))
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 1024)  # the workers decode both
    monkeypatch.setattr(pipeline, "_range_bytes", lambda: 3000)
    spooled: list[Path] = []
    orig = pipeline.iter_lines_spooled

    def spy(*args):  # type: ignore[no-untyped-def]
        for block in orig(*args):
            if isinstance(block, Path):
                spooled.append(block)
            yield block

    monkeypatch.setattr(pipeline, "iter_lines_spooled", spy)
    got, rejects = {}, {}
    for name, file in (("plain", "plain.jsonl"), ("packed", "packed.bin")):
        r = ingest.ingest_paths([str(tmp_path / file)], name, workers=2)
        assert (r.rejected, r.sources[0].compression) == (2, None if name == "plain" else "zstd")
        assert r.rejects_path is not None
        rejects[name] = [
            (j["offset"], j["unit"], j["reason"])
            for j in map(json.loads, Path(r.rejects_path).read_text().splitlines())
        ]
        tables = [
            pq.read_table(f, columns=["span_id", "source_offset"]) for f in open_handle(name).span_files
        ]
        got[name] = pa.concat_tables(tables)
        assert not (dataset_path(name) / ".staging").exists()
    assert len(spooled) == 3  # the huge lines, and no other
    key = [("source_offset", "ascending"), ("span_id", "ascending")]
    assert got["packed"].sort_by(key).equals(got["plain"].sort_by(key))
    assert got["plain"].num_rows == 36 * 3 + 2 * 60  # 40 lines: 3 huge (one not JSON), 1 not JSON
    assert rejects["packed"] == rejects["plain"] and [o for o, *_ in rejects["plain"]] == [26, 31]
