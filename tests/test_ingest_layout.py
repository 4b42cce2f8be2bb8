"""The dataset layout the query side relies on, whatever way the writer threads cut the work:
every row group holds one service, or several small ones (each under writer.MIN_GROUP_ROWS rows in it),
its rows sorted by service, then start time; a part file holds at most
FILE_ROWS rows; every span lands once; the manifest lists exactly the part files written."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import ingest
from ingest import otlp_json, writer
from ingest.dataset import dataset_path, open_handle

SERVICES = ["cart", "checkout", "ad", "payment", "email"]


def _dump(path: Path, lines: int, seed: int) -> set[str]:
    """OTLP JSON lines of several services, start times shuffled; the span ids written."""
    rng = random.Random(seed)
    ids: set[str] = set()
    out = []
    for _ in range(lines):
        groups = []
        for svc in rng.sample(SERVICES, 3):
            spans = []
            for _ in range(rng.randint(5, 30)):
                sid = f"{rng.getrandbits(64):016x}"
                ids.add(sid)
                start = 1_700_000_000_000_000_000 + rng.randint(0, 10**12)
                spans.append(
                    {
                        "traceId": f"{rng.getrandbits(128):032x}",
                        "spanId": sid,
                        "name": "op",
                        "startTimeUnixNano": str(start),
                        "endTimeUnixNano": str(start + 1000),
                        "attributes": [{"key": "k", "value": {"stringValue": "x" * rng.randint(0, 200)}}],
                    }
                )
            groups.append(
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]},
                    "scopeSpans": [{"spans": spans}],
                }
            )
        out.append(json.dumps({"resourceSpans": groups}, separators=(",", ":")))
    path.write_text("\n".join(out) + "\n")
    return ids


def _check_layout(name: str, file_rows: int) -> list[str]:
    """Asserts the layout of every span part file; the span ids read back."""
    ids: list[str] = []
    files = open_handle(name).span_files
    on_disk = sorted((dataset_path(name) / "spans").glob("*.parquet"))
    assert sorted(files) == on_disk  # the manifest lists exactly the files written
    for f in files:
        pf = pq.ParquetFile(f)
        assert pf.metadata.num_rows <= file_rows
        for i in range(pf.metadata.num_row_groups):
            rg = pf.read_row_group(i, columns=["service_name", "start_ns", "span_id"])
            services = rg.column("service_name").to_pylist()
            rows = list(zip(services, rg.column("start_ns").to_pylist(), strict=True))
            assert rows == sorted(rows), f"{f.name} row group {i} is not sorted by service, then start_ns"
            counts = Counter(services)
            if len(counts) > 1:  # small services gathered; a big one has its row groups alone
                assert max(counts.values()) < writer.MIN_GROUP_ROWS, f"{f.name} row group {i}: {counts}"
            stats = (
                pf.metadata.row_group(i).column(pf.schema_arrow.get_field_index("service_name")).statistics
            )
            assert stats.has_min_max and (stats.min, stats.max) == (services[0], services[-1])
            ids += rg.column("span_id").to_pylist()
    return ids


@pytest.mark.parametrize(
    "split_rows, min_group_rows",
    [(40, 1), (10**9, 1), (40, 60), (10**9, 60)],  # buffers cut in two halves / written whole;
)  # one service a row group / small services gathered
def test_row_groups_hold_one_service_sorted_by_time(
    tmp_path: Path, monkeypatch, split_rows: int, min_group_rows: int
):
    monkeypatch.setattr(writer, "SPLIT_MIN_ROWS", split_rows)
    monkeypatch.setattr(writer, "MIN_GROUP_ROWS", min_group_rows)
    monkeypatch.setattr(writer, "FILE_ROWS", 700)
    monkeypatch.setenv(writer.PART_BYTES_ENV, "0.1")  # many buffers
    monkeypatch.setattr(otlp_json, "BLOCK_BYTES", 32 * 1024)  # of many chunks each
    want = _dump(tmp_path / "d.jsonl", 300, seed=split_rows % 7)
    r = ingest.ingest_paths([str(tmp_path / "d.jsonl")], "lay", workers=1)
    assert r.spans == len(want)
    ids = _check_layout("lay", 700)
    assert len(ids) == len(want) and set(ids) == want
    files = open_handle("lay").span_files
    assert len(files) > 2  # FILE_ROWS rolled the files over
    # a second ingest of other spans adds files and keeps the layout; the first ones land once
    more = _dump(tmp_path / "e.jsonl", 100, seed=11)
    r2 = ingest.ingest_paths([str(tmp_path / "d.jsonl"), str(tmp_path / "e.jsonl")], "lay", workers=1)
    assert r2.spans == len(more - want)
    ids = _check_layout("lay", 700)
    assert len(ids) == len(want | more) and set(ids) == want | more


def test_small_set_columns_are_dictionary_pages_without_zstd(tmp_path: Path):
    """Columns of a few values (a closed set, or one service's resource) are stored as a dictionary
    and run-length indices, uncompressed (a zstd call costs more than it saves on such pages); the
    columns of many values stay zstd. Either way the values read back as written."""
    want = _dump(tmp_path / "d.jsonl", 50, seed=3)
    ingest.ingest_paths([str(tmp_path / "d.jsonl")], "codec", workers=1)
    files = open_handle("codec").span_files
    for f in files:
        md = pq.ParquetFile(f).metadata
        for i in range(md.num_row_groups):
            cols = {
                md.row_group(i).column(j).path_in_schema: md.row_group(i).column(j)
                for j in range(md.num_columns)
            }
            for name in (
                "kind",
                "service_name",
                "host",
                "source_id",
                "flags",
                "dropped_events_count",
                "name",
            ):
                assert cols[name].compression == "UNCOMPRESSED", name
                assert cols[name].has_dictionary_page, name
            for name in ("trace_id", "span_id", "attributes", "events", "start_ns", "resource_attributes"):
                assert cols[name].compression == "ZSTD", name
    table = pq.read_table(files, columns=["span_id", "kind", "service_name", "flags"])
    assert set(table.column("span_id").to_pylist()) == want
    assert set(table.column("service_name").to_pylist()) <= set(SERVICES)
    assert set(table.column("kind").to_pylist()) == {"UNSPECIFIED"}


@pytest.mark.parametrize(
    "values, indices",
    [
        (["cart", "ad", "cart", "email"], [0, 1, 2, 3, 0, None, 1, 2, None, 3]),  # a value twice
        (["b", "a"], [None, None, 1, 0, 1]),  # null indices sort last, by time among themselves
        (["b", None, "a"], [0, 1, 2, None, 1, 0]),  # a null value: as a null index
    ],
)
def test_sort_key_orders_a_dictionary_column_as_its_texts(values, indices):
    import pyarrow as pa
    import pyarrow.compute as pc

    col = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(values, pa.string()))
    times = pa.array([(7 * i) % 5 for i in range(len(indices))], pa.int64())
    sort_keys = [("s", "ascending"), ("t", "ascending")]
    by_text = pc.sort_indices(pa.table({"s": col.cast(pa.string()), "t": times}), sort_keys=sort_keys)
    by_key = pc.sort_indices(pa.table({"s": writer._sort_key(col), "t": times}), sort_keys=sort_keys)
    assert by_key.to_pylist() == by_text.to_pylist()
    texts = col.cast(pa.string()).take(by_text).to_pylist()
    runs = writer._runs(writer._sort_key(col).take(by_key))
    assert [texts[a] for a, _ in runs] == list(dict.fromkeys(texts))  # a run a distinct text


def test_row_groups_gather_small_services_and_leave_big_ones_alone(monkeypatch):
    monkeypatch.setattr(writer, "MIN_GROUP_ROWS", 4)
    runs = [(0, 3), (3, 100), (103, 2), (105, 2), (107, 1), (108, 5), (113, 1)]
    # 3 rows before a big run stay a group of their own; 2 + 2 make a group; 1 stays alone
    # before a big run; the last small run is a group
    assert writer._row_groups(runs) == [(0, 3), (3, 100), (103, 4), (107, 1), (108, 5), (113, 1)]
    assert writer._row_groups([(0, 1), (1, 1), (2, 1)]) == [(0, 3)]
    assert writer._row_groups([]) == []
