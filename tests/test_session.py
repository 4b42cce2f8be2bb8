"""The read-only session: views and their columns, derived views' values, summary, errors, API."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pyarrow as pa
import pytest

import correlate
from correlate import CorrelateError, DatasetNotFound, TraceNotFound, Window, open_dataset
from correlate.testing import make_dataset, write_parquet
from ingest.records import span_builder
from ingest.schema import LOG_SCHEMA, SPAN_SCHEMA

MS = 1_000_000
T1, T2, T3 = "1" * 32, "2" * 32, "3" * 32


def _span(trace, sid, parent, service, name, start_ms, end_ms, status="UNSET", **kw):
    return dict(
        trace_id=trace,
        span_id=sid,
        parent_span_id=parent,
        service_name=service,
        name=name,
        start_ns=start_ms * MS,
        end_ns=end_ms * MS,
        status_code=status,
        kind="SERVER",
        **kw,
    )


def _shop_spans():
    spans = [
        # T1: front -> cart (error) -> db (same service as cart: not an edge)
        _span(T1, "a" * 16, None, "front", "GET /cart", 0, 100),
        _span(T1, "b" * 16, "a" * 16, "cart", "get", 10, 60, status="ERROR"),
        _span(T1, "c" * 16, "b" * 16, "cart", "select", 20, 30),
        # T2: only an orphan whose parent never arrived; its earliest span is the root
        _span(T2, "d" * 16, "f" * 16, "cart", "get", 200, 260),
        _span(T2, "e" * 16, "d" * 16, "db", "query", 210, 220),
    ]
    # T3: front calls pricing 10 times, 10..100 ms
    spans.append(_span(T3, "9" * 16, None, "front", "GET /price", 1000, 2000))
    for i in range(10):
        spans.append(_span(T3, f"{i:016x}", "9" * 16, "pricing", "quote", 1000 + i, 1000 + i + 10 * (i + 1)))
    return spans


@pytest.fixture
def shop(dcr_home: Path):
    make_dataset("shop", _shop_spans())
    with open_dataset("shop") as ds:
        yield ds


def test_public_api_exports():
    for name in correlate.__all__:
        assert getattr(correlate, name) is not None
    assert issubclass(DatasetNotFound, CorrelateError) and issubclass(
        correlate.QueryTimeout, correlate.SqlError
    )


def test_unknown_dataset_lists_the_known_ones(shop):
    with pytest.raises(DatasetNotFound, match=r"no dataset named 'nope' \(known datasets: shop\)"):
        open_dataset("nope")


def test_bad_name_is_a_correlate_error(dcr_home):
    with pytest.raises(CorrelateError, match="bad dataset name"):
        open_dataset("../etc")


def test_spans_and_logs_views_have_the_schema_columns(shop):
    assert shop.sql("SELECT * FROM spans LIMIT 0").columns == tuple(SPAN_SCHEMA.names)
    assert shop.sql("SELECT * FROM logs LIMIT 0").columns == tuple(LOG_SCHEMA.names)
    types_ = dict(shop.sql("SELECT column_name, column_type FROM (DESCRIBE spans)").rows)
    assert types_["start_ns"] == "BIGINT" and types_["http_status_code"] == "INTEGER"
    assert types_["trace_id"] == "VARCHAR"


def test_empty_dataset_has_empty_views_of_the_right_types(dcr_home):
    make_dataset("empty")
    with open_dataset("empty") as ds:
        for view in ("spans", "logs", "traces", "service_edges"):
            assert ds.sql(f"SELECT count(*) FROM {view}").rows == ((0,),)
        types_ = dict(ds.sql("SELECT column_name, column_type FROM (DESCRIBE spans)").rows)
        assert types_["start_ns"] == "BIGINT" and types_["code_lineno"] == "INTEGER"
        assert ds.summary()["spans"] == 0


def test_traces_view(shop):
    rows = shop.sql("SELECT * FROM traces ORDER BY trace_id").rows
    cols = shop.sql("SELECT * FROM traces LIMIT 0").columns
    got = [dict(zip(cols, r, strict=True)) for r in rows]
    assert got[0] == dict(
        trace_id=T1,
        root_service="front",
        root_operation="GET /cart",
        start_ns=0,
        end_ns=100 * MS,
        duration_ns=100 * MS,
        has_error=True,
        error_count=1,
        span_count=3,
        service_count=2,
        services=["cart", "front"],
    )
    assert (got[1]["root_service"], got[1]["root_operation"], got[1]["has_error"]) == ("cart", "get", False)
    assert got[2]["span_count"] == 11 and got[2]["duration_ns"] == 1000 * MS


def test_service_edges_view(shop):
    rows = shop.sql("SELECT * FROM service_edges ORDER BY caller_service, callee_service").rows
    cols = shop.sql("SELECT * FROM service_edges LIMIT 0").columns
    got = {(r[0], r[1]): dict(zip(cols, r, strict=True)) for r in rows}
    # cart -> cart (select) is not an edge; cart -> db comes from the orphan trace
    assert set(got) == {("front", "cart"), ("front", "pricing"), ("cart", "db")}
    assert got[("front", "cart")]["calls"] == 1 and got[("front", "cart")]["error_rate"] == 1.0
    pricing = got[("front", "pricing")]
    # callee durations 10, 20, ..., 100 ms: continuous quantiles 55, 95.5, 99.1 ms
    assert (pricing["calls"], pricing["errors"], pricing["error_rate"]) == (10, 0, 0.0)
    assert (pricing["p50_ns"], pricing["p95_ns"], pricing["p99_ns"]) == (55 * MS, 95_500_000, 99_100_000)


def test_derived_views_are_materialised_once(shop):
    before = shop.sql("SELECT count(*) FROM traces").rows
    tables = shop.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    assert ("_dcr_traces",) in tables and ("_dcr_service_edges",) not in tables
    assert shop.sql("SELECT count(*) FROM traces").rows == before == ((3,),)
    shop.ensure_materialized("service_edges")
    assert shop.con.execute("SELECT count(*) FROM service_edges").fetchall() == [(3,)]


def test_summary(shop):
    s = shop.summary()
    assert (s["spans"], s["traces"], s["error_spans"], s["logs"]) == (16, 3, 1, 0)
    assert (s["start_ns"], s["end_ns"]) == (0, 2000 * MS)
    assert s["services"][0] == {"service": "pricing", "spans": 10, "error_spans": 0}
    assert s["top_operations"][0]["operation"] == "quote" and s["top_operations"][0]["p50_ns"] == 55 * MS


def test_every_manifest_file_is_read(dcr_home):
    handle = make_dataset("two", [_span(T1, "a" * 16, None, "front", "x", 0, 10)])
    b = span_builder()
    b.add(_span(T2, "b" * 16, None, "back", "y", 5, 10) | {"duration_ns": 5 * MS})
    write_parquet(handle.path / "spans" / "part-1.parquet", pa.Table.from_batches([b.flush()]))
    manifest = json.loads((handle.path / "manifest.json").read_text())
    manifest["files"]["spans"].append("spans/part-1.parquet")
    (handle.path / "manifest.json").write_text(json.dumps(manifest))
    (handle.path / "spans" / "garbage.parquet").write_bytes(b"not listed, never read")
    with open_dataset("two") as ds:
        assert ds.sql("SELECT service_name FROM spans ORDER BY 1").rows == (("back",), ("front",))


def test_a_missing_listed_file_is_a_clear_error(dcr_home):
    handle = make_dataset("broken", [_span(T1, "a" * 16, None, "front", "x", 0, 10)])
    (handle.path / "spans" / "part-0.parquet").unlink()
    with pytest.raises(
        CorrelateError, match="is damaged: .*part-0.parquet is listed in its manifest but missing"
    ):
        open_dataset("broken")


def test_trace_accepts_id_forms_and_reports_missing(shop):
    assert shop.trace(T1.upper()).trace_id == T1
    assert len(shop.trace(T1).spans) == 3
    with pytest.raises(TraceNotFound, match="no spans of trace '" + "7" * 32 + "' in dataset 'shop'"):
        shop.trace("7" * 32)


def test_trace_with_orphan_root(shop):
    view = shop.trace(T2)
    assert [s.span_id for s in view.spans] == ["d" * 16, "e" * 16]
    assert view.warnings == (
        f"span {'d' * 16} (cart get): parent span ID={'f' * 16} is not in the trace; treated as a root",
    )


def test_correlate_delegates_to_the_engine(shop, monkeypatch):
    calls = []
    fake = types.ModuleType("correlate.engine")
    fake.run_correlation = lambda session, window, baseline, services: (
        calls.append((session, window, baseline, services)) or "report"
    )
    monkeypatch.setitem(sys.modules, "correlate.engine", fake)
    w = Window(0, 10)
    assert shop.correlate(w, None, ["front"]) == "report"
    assert calls == [(shop, w, None, ["front"])]


def test_close_removes_the_private_temp_folder(dcr_home):
    make_dataset("tmp", [_span(T1, "a" * 16, None, "front", "x", 0, 10)])
    ds = open_dataset("tmp")
    folder = Path(ds._tmpdir)
    assert folder.is_dir()
    ds.close()
    assert not folder.exists()


def test_every_duckdb_error_maps_to_one_line():
    import duckdb

    from correlate.errors import SqlError, map_duckdb_error

    classes = [
        getattr(duckdb, n)
        for n in dir(duckdb)
        if isinstance(getattr(duckdb, n), type) and issubclass(getattr(duckdb, n), duckdb.Error)
    ]
    assert len(classes) > 10
    for cls in classes:
        mapped = map_duckdb_error(
            cls('Binder Error: {"exception_message": "bad\\nthing", "position": "3"}'), "SELECT nope"
        )
        assert isinstance(mapped, SqlError) and "\n" not in str(mapped)
        assert mapped.position == 3 and str(mapped).endswith("(at position 3, near 'ECT nope')")
    plain = map_duckdb_error(duckdb.IOException("IO Error: disk\n\nLINE 1: x\n  ^"))
    assert str(plain) == "IO Error: disk" and plain.position is None


def test_an_unclosed_session_still_removes_its_temp_folder(dcr_home):
    import gc

    make_dataset("leak", [_span(T1, "a" * 16, None, "front", "x", 0, 10)])
    ds = open_dataset("leak")
    folder = Path(ds._tmpdir)
    ds.con.close()
    ds._user.close()
    del ds
    gc.collect()
    assert not folder.exists()
