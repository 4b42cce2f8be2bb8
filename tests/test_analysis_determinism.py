"""Analyses give the same answer every run: DuckDB's plain mode() returns any value of a tie, and which
one changed with its threads (the offline report differed between two runs on the same data)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

ANALYSES = Path(__file__).resolve().parent.parent / "correlate" / "analyses"


def test_no_analysis_uses_an_unordered_mode():
    loose = []
    for path in sorted(ANALYSES.glob("*.py")):
        for m in re.finditer(r"\bmode\(([^()]+)\)", path.read_text()):
            if "ORDER BY" not in m.group(1).upper():
                loose.append(f"{path.name}: {m.group(0)}")
    assert loose == []


def test_an_ordered_mode_breaks_ties_by_the_smallest_value_across_threads():
    """What the fix relies on: with ORDER BY the tie goes to the first value in that order, every run."""
    con = duckdb.connect(config={"threads": 4})
    con.execute(
        "CREATE TABLE t AS SELECT (i % 500)::INT AS g, 'v' || ((i * 7919) % 3)::VARCHAR AS x "
        "FROM range(1500000) r(i)"
    )
    assert con.execute(
        "SELECT count(DISTINCT n) FROM (SELECT g, x, count(*) AS n FROM t GROUP BY ALL)"
    ).fetchone() == (1,)  # every group is a three-way tie
    results = {
        con.execute("SELECT list(m ORDER BY g) FROM (SELECT g, mode(x ORDER BY x) AS m FROM t GROUP BY g)")
        .fetchone()[0]
        .count("v0")
        for _ in range(4)
    }
    assert results == {500}
