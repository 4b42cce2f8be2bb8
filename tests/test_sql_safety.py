"""Escape attempts through `DatasetSession.sql` / `dcr sql`: every one fails with one clear line.

Two fences are tested: the statement guard (one SELECT) and the locked-down connection
underneath it (no file or network access but the dataset's own files, no extensions, no
setting changes), which must hold even for statements that reach DuckDB directly.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from correlate import QueryTimeout, SqlError, open_dataset
from correlate.sql_guard import MAX_QUERY_CHARS
from correlate.testing import make_dataset
from mcp_server.cli import main

T = "a" * 32


@pytest.fixture
def ds(dcr_home: Path):
    make_dataset(
        "safe",
        [
            dict(
                trace_id=T,
                span_id="1" * 16,
                name="GET /",
                service_name="front",
                start_ns=0,
                end_ns=100,
                status_code="UNSET",
                kind="SERVER",
            ),
        ],
    )
    with open_dataset("safe") as session:
        yield session


def _target(tmp_path: Path, name: str) -> str:
    return str(tmp_path / name)


ESCAPES = [
    # (what, query, a word the one-line message must contain)
    ("read a file as CSV", "SELECT * FROM read_csv('/etc/passwd')", "Permission"),
    ("read a file with auto-detection", "SELECT * FROM read_csv_auto('/etc/passwd')", "Permission"),
    ("read a file as text", "SELECT * FROM read_text('/etc/passwd')", "Permission"),
    ("read a file as blob", "SELECT * FROM read_blob('/etc/hostname')", "Permission"),
    ("read a file as JSON", "SELECT * FROM read_json('/etc/passwd')", "Permission"),
    ("sniff a file", "SELECT * FROM sniff_csv('/etc/passwd')", "Permission"),
    ("parquet metadata of another file", "SELECT * FROM parquet_metadata('/etc/passwd')", "Permission"),
    ("list files", "SELECT * FROM glob('/etc/*')", "Permission"),
    ("a file path as a table", "SELECT * FROM '/etc/passwd'", "does not exist"),
    ("the network", "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')", "Permission"),
    (
        "a statement smuggled through query()",
        "SELECT * FROM query('COPY (SELECT 1) TO ''/tmp/x.csv''')",
        "SELECT",
    ),
    ("COPY a view to a file", "COPY spans TO '{tmp}/out.csv'", "COPY is not allowed"),
    (
        "COPY a query to a file",
        "COPY (SELECT 1) TO '{tmp}/out.parquet' (FORMAT parquet)",
        "COPY is not allowed",
    ),
    ("EXPORT DATABASE", "EXPORT DATABASE '{tmp}/export'", "EXPORT DATABASE is not allowed"),
    ("ATTACH a database file", "ATTACH '{tmp}/x.duckdb' AS x", "ATTACH is not allowed"),
    ("ATTACH in memory", "ATTACH ':memory:' AS m", "ATTACH is not allowed"),
    ("DETACH", "DETACH memory", "DETACH is not allowed"),
    ("INSTALL an extension", "INSTALL httpfs", "INSTALL/LOAD is not allowed"),
    ("FORCE INSTALL", "FORCE INSTALL httpfs", "INSTALL/LOAD is not allowed"),
    ("LOAD an extension", "LOAD httpfs", "INSTALL/LOAD is not allowed"),
    ("turn external access back on", "SET enable_external_access = true", "SET/RESET/USE is not allowed"),
    ("unlock the configuration", "SET lock_configuration = false", "SET/RESET/USE is not allowed"),
    ("widen the allowed paths", "SET allowed_paths = ['/etc/passwd']", "SET/RESET/USE is not allowed"),
    ("RESET a setting", "RESET enable_external_access", "SET/RESET/USE is not allowed"),
    ("SET a variable", "SET VARIABLE x = 1", "not allowed"),
    ("PRAGMA", "PRAGMA enable_profiling", "PRAGMA is not allowed"),
    ("CALL", "CALL pragma_version()", "CALL is not allowed"),
    ("CREATE TABLE", "CREATE TABLE t AS SELECT 1", "CREATE statements are not allowed"),
    ("CREATE MACRO", "CREATE MACRO m(x) AS x", "CREATE statements are not allowed"),
    (
        "CREATE SECRET",
        "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
        "CREATE statements are not allowed",
    ),
    ("INSERT", "INSERT INTO spans (trace_id) VALUES ('x')", "INSERT statements are not allowed"),
    ("UPDATE", "UPDATE spans SET name = 'x'", "UPDATE statements are not allowed"),
    ("DELETE", "DELETE FROM spans", "DELETE statements are not allowed"),
    ("DROP a view", "DROP VIEW spans", "DROP statements are not allowed"),
    ("ALTER", "ALTER VIEW spans RENAME TO s2", "ALTER statements are not allowed"),
    ("VACUUM", "VACUUM", "VACUUM statements are not allowed"),
    ("CHECKPOINT", "CHECKPOINT", "CALL is not allowed"),
    ("USE another catalog", "USE memory", "SET/RESET/USE is not allowed"),
    ("two statements", "SELECT 1; SELECT 2", "one statement at a time"),
    ("a write behind a SELECT", "SELECT 1; COPY spans TO '{tmp}/x.csv'", "one statement at a time"),
    ("a very long query", "SELECT " + "1+" * MAX_QUERY_CHARS + "1", "query too long"),
    ("a very deep expression", "SELECT " + "(" * 20_000 + "1" + ")" * 20_000, "expression depth"),
    ("an empty query", "  -- nothing\n", "empty query"),
]


@pytest.mark.parametrize("what,query,expected", ESCAPES, ids=[e[0] for e in ESCAPES])
def test_escape_attempt_fails_with_one_clear_line(ds, tmp_path, what, query, expected):
    with pytest.raises(SqlError) as info:
        ds.sql(query.replace("{tmp}", str(tmp_path)))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert not any(tmp_path.iterdir())  # nothing was written


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY spans TO '{tmp}/x.csv'",
        "ATTACH '{tmp}/x.duckdb' AS x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET allowed_paths",
        "EXPORT DATABASE '{tmp}/e'",
    ],
)
def test_the_connection_itself_refuses(ds, tmp_path, query):
    """Second fence: even statements that bypass the guard cannot touch files or settings."""
    import duckdb

    for con in (ds.con, ds.con.cursor(), ds._user):
        with pytest.raises(duckdb.Error):
            con.execute(query.replace("{tmp}", str(tmp_path)))
    assert not any(tmp_path.iterdir())


def test_views_still_read_the_dataset_after_lockdown(ds):
    assert ds.sql("SELECT count(*) FROM spans").rows == ((1,),)


def test_only_the_manifest_files_are_readable(ds):
    with pytest.raises(SqlError, match="Permission"):
        ds.sql(f"SELECT * FROM read_json('{ds.handle.path / 'manifest.json'}')")


def test_statement_timeout_interrupts(ds):
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="interrupted after 0.5 s"):
        ds.sql("SELECT count(*) FROM range(1000000000000) a(i) WHERE i % 7 = 3", timeout_s=0.5)
    assert time.monotonic() - started < 10
    assert ds.sql("SELECT 42").rows == ((42,),)  # the session is still usable


def test_row_cap_says_when_it_truncated(ds):
    capped = ds.sql("SELECT i FROM range(10) t(i) ORDER BY i", limit=3)
    assert capped.rows == ((0,), (1,), (2,)) and capped.truncated and capped.row_cap == 3
    exact = ds.sql("SELECT i FROM range(3) t(i) ORDER BY i", limit=3)
    assert len(exact.rows) == 3 and not exact.truncated


def test_row_cap_streams_a_huge_result(ds):
    started = time.monotonic()
    result = ds.sql("SELECT a.i, b.i FROM range(100000) a(i), range(100000) b(i)", limit=5)
    assert len(result.rows) == 5 and result.truncated
    assert time.monotonic() - started < 10


def test_sql_error_has_its_position(ds):
    with pytest.raises(SqlError) as info:
        ds.sql("SELECT trace_id, nope FROM spans")
    assert info.value.position == 17
    assert "at position 17, near 'nope FROM spans'" in str(info.value)


@pytest.mark.parametrize(
    "query,exit_code,needle",
    [
        ("SELECT * FROM read_csv('/etc/passwd')", 2, "Permission Error"),
        ("COPY spans TO '/tmp/dcr-never.csv'", 2, "COPY is not allowed"),
        ("SELEC 1", 2, "at position 0"),
    ],
)
def test_cli_refusals_are_one_line_exit_2(ds, capsys, query, exit_code, needle):
    assert main(["sql", "safe", query]) == exit_code
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("dcr: ") and needle in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_a_capped_result_leaves_the_connections_free(ds):
    assert ds.sql("SELECT i FROM range(100) t(i)", limit=2).truncated
    assert ds.con.sql("SELECT 1").fetchall() == [(1,)]
    assert ds._user.sql("SELECT 2").fetchall() == [(2,)]
