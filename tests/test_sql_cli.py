"""`dcr sql`: formats, row cap note, exit codes, exports to files, the query from stdin."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest

from correlate.testing import make_dataset
from mcp_server.cli import main

MS = 1_000_000


@pytest.fixture
def data(dcr_home):
    make_dataset(
        "d",
        [
            dict(
                trace_id="1" * 32,
                span_id=f"{i + 1:016x}",
                name=f"op{i}",
                service_name="front" if i else "back",
                start_ns=i * MS,
                end_ns=(i + 2) * MS,
                status_code="ERROR" if i == 1 else "UNSET",
                kind="SERVER",
                attributes='{"k": "v"}',
            )
            for i in range(5)
        ],
    )


def test_table(data, capsys):
    assert main(["sql", "d", "SELECT service_name, count(*) AS n FROM spans GROUP BY 1 ORDER BY 1"]) == 0
    out, err = capsys.readouterr()
    assert out == "service_name  n\n------------  -\nback          1\nfront         4\n"
    assert err.startswith("2 rows in ")


def test_json(data, capsys):
    assert (
        main(
            [
                "sql",
                "d",
                "SELECT name, start_ns, [1, 2] AS l, NULL AS z FROM spans ORDER BY 2",
                "--json",
                "--limit",
                "2",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["columns"] == ["name", "start_ns", "l", "z"]
    assert doc["rows"] == [["op0", 0, [1, 2], None], ["op1", MS, [1, 2], None]]
    assert (doc["row_count"], doc["truncated"], doc["row_cap"]) == (2, True, 2)
    assert "truncated at the row cap of 2" in err


def test_json_has_no_nan_or_infinity(data, capsys):
    """JSON has no NaN or Infinity: jq, JavaScript and strict parsers refuse them. They are null."""
    sql = "SELECT 1/0 AS inf, -1/0 AS ninf, 'nan'::DOUBLE AS nan, 'NaN and Infinity' AS text"
    assert main(["sql", "d", sql, "--json"]) == 0
    out = capsys.readouterr().out

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON: {constant}")

    doc = json.loads(out, parse_constant=refuse)
    assert doc["rows"] == [[None, None, None, "NaN and Infinity"]]


def test_csv(data, capsys):
    assert (
        main(
            [
                "sql",
                "d",
                "SELECT name, status_code, NULL AS z FROM spans ORDER BY name LIMIT 2",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    out, _ = capsys.readouterr()
    assert out == "name,status_code,z\nop0,UNSET,\nop1,ERROR,\n"


def test_unknown_dataset_exit_2(data, capsys):
    assert main(["sql", "nope", "SELECT 1"]) == 2
    assert capsys.readouterr().err == "dcr: no dataset named 'nope' (known datasets: d)\n"


def test_timeout_exit_1(data, capsys):
    assert (
        main(
            ["sql", "d", "SELECT count(*) FROM range(1000000000000) t(i) WHERE i % 3 = 1", "--timeout", "0.3"]
        )
        == 1
    )
    assert capsys.readouterr().err.startswith("dcr: query interrupted after 0.3 s")


def test_bad_limit_exit_2(data, capsys):
    assert main(["sql", "d", "SELECT 1", "--limit", "-1"]) == 2
    assert "--limit must be >= 0" in capsys.readouterr().err


def test_limit_zero_gives_the_columns_and_claims_no_truncation(data, capsys):
    assert main(["sql", "d", "SELECT name, service_name FROM spans", "--limit", "0", "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert (doc["columns"], doc["rows"], doc["truncated"], doc["row_cap"]) == (
        ["name", "service_name"],
        [],
        False,
        0,
    )
    assert err.startswith("columns only (--limit 0: no rows fetched)") and "truncated" not in err


def test_export_writes_every_row_past_the_cap(data, tmp_path, capsys):
    out = tmp_path / "r.parquet"
    assert main(["sql", "d", "SELECT i, i * 2 AS j FROM range(2500) t(i)", "-o", str(out)]) == 0
    _, err = capsys.readouterr()
    assert pq.read_table(out).column("j").to_pylist() == [i * 2 for i in range(2500)]
    assert err.startswith(f"wrote 2500 rows ({out.stat().st_size:,} bytes, parquet) to {out} in ")


def test_export_format_option_limit_and_json_summary(data, tmp_path, capsys):
    out = tmp_path / "r.data"
    assert (
        main(
            [
                "sql",
                "d",
                "SELECT name FROM spans ORDER BY name",
                "--format",
                "csv",
                "-o",
                str(out),
                "--limit",
                "2",
                "--json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert (doc["rows"], doc["format"], doc["path"]) == (2, "csv", str(out))
    assert out.read_text() == '"name"\n"op0"\n"op1"\n'


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--format", "parquet"], "--format parquet writes a file: add -o FILE"),
        (["-o", "x.parquet", "--format", "json"], "-o writes parquet, arrow or csv, not json"),
        (["-o", "x.txt"], "no format for 'x.txt': add --format parquet|arrow|csv"),
    ],
)
def test_export_usage_errors_exit_2(data, capsys, argv, message):
    assert main(["sql", "d", "SELECT 1", *argv]) == 2
    assert message in capsys.readouterr().err


def test_export_of_a_refused_write_leaves_no_file(data, tmp_path, capsys):
    out = tmp_path / "r.arrow"
    assert main(["sql", "d", f"COPY spans TO '{tmp_path / 'x.csv'}'", "-o", str(out)]) == 2
    assert "COPY is not allowed" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_query_from_stdin_when_it_is_not_a_terminal(data, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT count(*) AS n\nFROM spans;\n"))
    assert main(["sql", "d"]) == 0
    assert capsys.readouterr().out == "n\n-\n5\n"
