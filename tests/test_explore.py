"""Exploration from Python: scan(), arrow(), polars(), sql().pl() give DuckDB's rows on every scenario;
exports, the guard, snapshots and cursors."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from correlate import CorrelateError, QueryTimeout, SqlError, open_dataset
from correlate.testing import make_dataset
from ingest import ingest_paths
from ingest.schema import LOG_SCHEMA, SPAN_SCHEMA

SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
# committed with the repo: a missing library is a broken checkout, an error here and no skip
NAMES = sorted(p.name for p in SCENARIOS.iterdir() if (p / "truth.json").is_file())
# a total order on each view's rows (logs have no key: several records share a line of input)
ORDER = {
    "spans": "trace_id, span_id",
    "logs": "ALL",
    "traces": "trace_id",
    "service_edges": "caller_service, callee_service",
}
MS = 1_000_000


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """Every scenario ingested once into one DCR_HOME: (home, name -> truth)."""
    home = tmp_path_factory.mktemp("dcr_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCR_HOME", str(home))
        truths = {}
        for name in NAMES:
            folder = SCENARIOS / name
            ingest_paths([str(folder / "traces.jsonl"), str(folder / "logs.jsonl")], name)
            truths[name] = json.loads((folder / "truth.json").read_text())
    return home, truths


@pytest.fixture
def scenarios(ingested, monkeypatch):
    home, truths = ingested
    monkeypatch.setenv("DCR_HOME", str(home))  # over the autouse fixture's empty home
    return truths


def _duckdb_rows(ds, table, where=""):
    return ds.fetch(f"SELECT * FROM {table} {where} ORDER BY {ORDER[table]}")


def _sorted(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    keys = frame.columns if ORDER[table] == "ALL" else [c.strip() for c in ORDER[table].split(",")]
    return frame.sort(keys, nulls_last=True)  # as DuckDB's ascending order


@pytest.mark.parametrize("name", NAMES)
def test_scan_and_query_frames_hold_duckdbs_rows(scenarios, name):
    with open_dataset(name) as ds:
        for table in ORDER:
            expected = _duckdb_rows(ds, table)
            assert expected, (name, table)
            scanned = _sorted(ds.scan(table).collect(), table)
            queried = ds.polars(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")
            assert scanned.rows() == expected, (name, table)
            assert queried.rows() == expected, (name, table)
            assert scanned.schema == queried.schema, (name, table)
            arrow = ds.arrow(f"SELECT * FROM {table} ORDER BY {ORDER[table]}", batch_rows=100).read_all()
            assert [tuple(r.values()) for r in arrow.to_pylist()] == expected, (name, table)


@pytest.mark.parametrize("name", NAMES)
def test_a_filtered_scan_and_the_capped_sql_agree_with_duckdb(scenarios, name):
    w = scenarios[name]["window"]
    start, end = w["incident_start_ns"], w["incident_end_ns"]
    with open_dataset(name) as ds:
        service = ds.fetch("SELECT service_name FROM spans GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0][0]
        where = f"WHERE service_name = '{service}' AND start_ns >= {start} AND start_ns < {end}"
        expected = _duckdb_rows(ds, "spans", where)
        assert expected
        scanned = (
            ds.scan()
            .filter(pl.col("service_name") == service, pl.col("start_ns") >= start, pl.col("start_ns") < end)
            .collect()
        )
        assert _sorted(scanned, "spans").rows() == expected
        query = (
            "SELECT service_name, name, count(*) AS n, min(start_ns) AS first_ns, max(duration_ns) AS max_ns "
            "FROM spans GROUP BY ALL ORDER BY ALL"
        )
        expected = ds.fetch(query)
        assert ds.sql(query, limit=10_000).pl().rows() == expected
        assert ds.polars(query).rows() == expected


def test_scan_is_typed_as_the_dataset_schema(dcr_home):
    make_dataset("d", [dict(trace_id="1" * 32, span_id="1" * 16, service_name="a", start_ns=0, end_ns=MS)])
    with open_dataset("d") as ds:
        span_types = ds.scan("spans").collect_schema()
        log_types = ds.scan("logs").collect_schema()  # no log files: an empty frame, still typed
    assert span_types.names() == SPAN_SCHEMA.names and log_types.names() == LOG_SCHEMA.names
    assert (span_types["start_ns"], span_types["code_lineno"], span_types["name"]) == (
        pl.Int64,
        pl.Int32,
        pl.String,
    )


def test_a_scan_is_a_snapshot_of_the_files_at_the_call(dcr_home, tmp_path):
    make_dataset("d", [dict(trace_id="1" * 32, span_id="1" * 16, service_name="a", start_ns=0, end_ns=MS)])
    src = tmp_path / "more.jsonl"
    src.write_text(
        json.dumps(
            {
                "resourceSpans": [
                    {
                        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "b"}}]},
                        "scopeSpans": [
                            {
                                "spans": [
                                    {
                                        "traceId": "2" * 32,
                                        "spanId": "2" * 16,
                                        "name": "x",
                                        "startTimeUnixNano": "5",
                                        "endTimeUnixNano": "9",
                                    }
                                ]
                            }
                        ],
                    }
                ]
            }
        )
        + "\n"
    )
    with open_dataset("d") as ds:
        frame = ds.scan()
        ingest_paths([str(src)], "d")  # a later ingest adds a part file
        assert frame.collect().height == 1
    with open_dataset("d") as ds:
        assert ds.scan().collect().height == 2


def test_queries_from_python_pass_the_guard(dcr_home):
    make_dataset("d", [dict(trace_id="1" * 32, span_id="1" * 16, service_name="a", start_ns=0, end_ns=MS)])
    with open_dataset("d") as ds:
        with pytest.raises(SqlError, match="COPY is not allowed"):
            ds.arrow("COPY spans TO 'x.csv'")
        with pytest.raises(SqlError, match="one statement at a time"):
            ds.polars("SELECT 1; SELECT 2")
        with pytest.raises(SqlError, match="Permission Error"):
            ds.polars("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(SqlError, match="not allowed"):
            ds.export("ATTACH 'x.db'", dcr_home / "x.parquet")
        with pytest.raises(CorrelateError, match="no table 'nope' to scan"):
            ds.scan("nope")
        assert not ds._cursors  # every refused stream gave its cursor back


def test_a_stream_gives_its_cursor_back_and_maps_errors_met_while_reading(dcr_home):
    make_dataset("d", [dict(trace_id="1" * 32, span_id="1" * 16, service_name="a", start_ns=0, end_ns=MS)])
    with open_dataset("d") as ds:
        reader = ds.arrow("SELECT i FROM range(300000) t(i)", batch_rows=1000)
        assert len(ds._cursors) == 1
        assert reader.read_all().num_rows == 300_000
        assert not ds._cursors
        reader = ds.arrow(
            "SELECT CASE WHEN i < 200000 THEN i ELSE error('boom at ' || i) END FROM range(300000) t(i)",
            batch_rows=1000,
        )
        with pytest.raises(SqlError, match="boom at"):
            reader.read_all()
        assert not ds._cursors
        reader = ds.arrow("SELECT 1")  # dropped unread
        del reader
        gc.collect()
        assert not ds._cursors


@pytest.mark.parametrize("suffix", ["parquet", "arrow", "csv"])
def test_export_writes_the_whole_result(dcr_home, tmp_path, suffix):
    spans = [
        dict(trace_id="1" * 32, span_id=f"{i + 1:016x}", service_name="a", start_ns=i, end_ns=i + MS)
        for i in range(3000)
    ]
    make_dataset("d", spans)
    out = tmp_path / f"out.{suffix}"
    with open_dataset("d") as ds:
        result = ds.export("SELECT span_id, start_ns, [start_ns, 1] AS l FROM spans ORDER BY start_ns", out)
    assert (result.rows, result.format, result.bytes) == (3000, suffix, out.stat().st_size)
    if suffix == "parquet":
        table = pq.read_table(out)
    elif suffix == "arrow":
        table = pa.ipc.open_file(out).read_all()
    else:
        table = pl.read_csv(out).to_arrow()
    assert table.num_rows == 3000 and table.column_names == ["span_id", "start_ns", "l"]
    assert table.column("start_ns").to_pylist()[-1] == 2999
    last = table.column("l").to_pylist()[-1]
    assert last == ("[2999, 1]" if suffix == "csv" else [2999, 1])  # CSV holds lists as JSON text


def test_export_is_atomic_and_honours_limit_and_timeout(dcr_home, tmp_path):
    make_dataset("d", [dict(trace_id="1" * 32, span_id="1" * 16, service_name="a", start_ns=0, end_ns=MS)])
    out = tmp_path / "out.parquet"
    with open_dataset("d") as ds:
        with pytest.raises(SqlError, match="boom"):
            ds.export(
                "SELECT CASE WHEN i < 200000 THEN i ELSE error('boom') END FROM range(300000) t(i)", out
            )
        assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
        assert ds.export("SELECT * FROM range(100000)", out, limit=70_000).rows == 70_000
        meta = pq.read_metadata(out)  # DuckDB's small batches gathered into one row group
        assert (meta.num_rows, meta.num_row_groups) == (70_000, 1)
        with pytest.raises(QueryTimeout):
            ds.export(
                "SELECT count(*) FROM range(1000000000000) t(i) WHERE i % 3 = 1",
                tmp_path / "t.csv",
                timeout_s=0.2,
            )
        with pytest.raises(CorrelateError, match="no export format"):
            ds.export("SELECT 1", tmp_path / "out.txt")
        assert not ds._cursors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]
