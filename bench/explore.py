"""Exploration benchmark: one service's 5-minute window through `scan()` (polars) and DuckDB, the
row groups each engine says it read, and the peak RSS of exporting the whole spans table.

    python bench/explore.py --dataset NAME [--home DIR] [--service S] [--runs N] [--no-export] [--json]

DIR is the DCR_HOME (default $DCR_HOME); the dataset must exist (bench/query.py makes the
10M-span one). The window is the one bench/query.py measures: the busiest service, 5 minutes in
the middle of the data. Row groups are as the engines report them: polars' verbose log
("Predicate pushdown: reading R / T row groups", one line a file it opened) and DuckDB's profiler
(`total_row_groups_scanned` of the query, from a connection of its own over the same files with
profiling on: the sealed session cannot turn profiling on). The export runs
`dcr sql NAME "SELECT * FROM spans" -o FILE` as a child process, so the peak RSS printed is the
export's own (against the issue's bar of 512 MB); the file is removed afterwards.
Exits 0 whatever the figures are; bad usage exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = ["main", "measure", "polars_row_groups", "duckdb_row_groups", "export_peak_rss"]

WINDOW_NS = 5 * 60 * 1_000_000_000
KEY_COLUMNS = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "host",
    "start_ns",
    "end_ns",
    "duration_ns",
    "status_code",
]
EXPORT_BAR_MB = 512
_POLARS_LINE = re.compile(r"Predicate pushdown: reading (\d+) / (\d+) row groups")


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Lines written to file descriptor 2 inside the block (polars logs from Rust, not sys.stderr)."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode("utf-8", "replace").splitlines())


def _scan_window(ds: Any, service: str, start_ns: int, columns: list[str] | None) -> Any:
    import polars as pl

    frame = ds.scan("spans").filter(
        pl.col("service_name") == service,
        pl.col("start_ns") >= start_ns,
        pl.col("start_ns") < start_ns + WINDOW_NS,
    )
    return (frame.select(columns) if columns else frame).collect()


def _sql_window(service: str, start_ns: int, columns: list[str] | None) -> str:
    cols = ", ".join(columns) if columns else "*"
    return (
        f"SELECT {cols} FROM spans WHERE service_name = '{service}' "
        f"AND start_ns >= {start_ns} AND start_ns < {start_ns + WINDOW_NS}"
    )


def polars_row_groups(ds: Any, service: str, start_ns: int) -> tuple[int, int, int]:
    """(row groups read, row groups of the files polars opened, files opened), from polars' log."""
    import polars as pl

    with _captured_stderr() as lines, pl.Config(verbose=True):
        _scan_window(ds, service, start_ns, KEY_COLUMNS)
    hits = [tuple(map(int, m.groups())) for m in map(_POLARS_LINE.search, lines) if m]
    return sum(r for r, _ in hits), sum(t for _, t in hits), len(hits)


def duckdb_row_groups(files: list[Path], service: str, start_ns: int) -> tuple[int, int]:
    """(row groups scanned, row groups to scan) of the same query, from DuckDB's profiler."""
    import duckdb

    from correlate import views

    con = duckdb.connect(":memory:", config={"threads": 2, "memory_limit": "1GB"})
    try:
        con.execute(views.source_view_sql("spans", files))
        con.execute("SET enable_profiling = 'no_output'")
        con.execute("SET profiling_mode = 'detailed'")
        con.sql(_sql_window(service, start_ns, KEY_COLUMNS)).to_arrow_table()
        query = json.loads(con.get_profiling_information("json")).get("query", {})
    finally:
        con.close()
    return int(query.get("total_row_groups_scanned", -1)), int(query.get("total_row_groups_to_scan", -1))


def _timed(fn: Callable[[], Any], runs: int) -> tuple[int, float, float]:
    """(rows, cold ms, warm median ms) of `fn` run 1 + `runs` times."""
    times, rows = [], 0
    for _ in range(1 + runs):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
        rows = out.num_rows if hasattr(out, "num_rows") else out.height
    return rows, times[0], statistics.median(times[1:])


# Runs argv[2:], then writes its exit code and peak RSS (KB, from wait4) to the file argv[1]. The
# export is started from this small process, not from the benchmark: on Linux a child's peak RSS
# counts the memory of the process it was forked from until its exec (hundreds of MB here).
_RUSAGE_HELPER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
child.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as fh:
    json.dump({"exit": child.returncode, "maxrss_kb": usage.ru_maxrss}, fh)
"""


def export_peak_rss(name: str, home: Path) -> dict[str, Any]:
    """`dcr sql NAME "SELECT * FROM spans" -o FILE` in a child process: rows, bytes, seconds, peak RSS
    (the export's own)."""
    env = dict(os.environ, DCR_HOME=str(home))
    with tempfile.TemporaryDirectory(prefix="dcr-bench-export-") as tmp:
        out, usage = Path(tmp) / "spans.parquet", Path(tmp) / "usage.json"
        t0 = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _RUSAGE_HELPER,
                str(usage),
                sys.executable,
                "-m",
                "mcp_server.cli",
                "sql",
                name,
                "SELECT * FROM spans",
                "-o",
                str(out),
                "--json",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            return {"error": lines[-1] if lines else f"exit {done.returncode}"}
        doc, rusage = json.loads(done.stdout), json.loads(usage.read_text())
    return {
        "rows": doc["rows"],
        "bytes": doc["bytes"],
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(rusage["maxrss_kb"] / 1024, 1),
    }


def _busiest_window(ds: Any) -> tuple[str, int, int]:
    """(busiest service, start of a 5-minute window in the middle of the data, spans in the dataset)."""
    ((spans, start_ns, end_ns),) = ds.fetch("SELECT count(*), min(start_ns), max(end_ns) FROM spans")
    service = ds.fetch("SELECT service_name FROM spans GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0][0]
    return service, start_ns + (end_ns - start_ns) // 2 - WINDOW_NS // 2, spans


def measure(ds: Any, service: str, start_ns: int, runs: int) -> dict[str, Any]:
    """Times of the window through scan() and DuckDB (key columns and all), and the row groups read."""
    import polars as pl
    import pyarrow.parquet as pq

    files = ds.handle.span_files
    pl.LazyFrame({"a": [1]}).collect()  # start polars' thread pool: cold means cold files, not a cold library
    timings = []
    for what, columns in (("key columns", KEY_COLUMNS), ("all columns", None)):
        sql = _sql_window(service, start_ns, columns)
        for engine, fn in (
            ("polars scan()", lambda c=columns: _scan_window(ds, service, start_ns, c)),
            ("duckdb arrow()", lambda q=sql: ds.arrow(q).read_all()),
        ):
            rows, cold, warm = _timed(fn, runs)
            timings.append(
                {
                    "engine": engine,
                    "what": what,
                    "rows": rows,
                    "cold_ms": round(cold, 1),
                    "warm_ms": round(warm, 1),
                }
            )
    pl_read, pl_total, pl_files = polars_row_groups(ds, service, start_ns)
    dd_read, dd_total = duckdb_row_groups(files, service, start_ns)
    return {
        "timings": timings,
        "row_groups_in_dataset": sum(pq.ParquetFile(f).metadata.num_row_groups for f in files),
        "polars_row_groups": {"read": pl_read, "of": pl_total, "files_opened": pl_files},
        "duckdb_row_groups": {"scanned": dd_read, "to_scan": dd_total},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/explore.py", description=__doc__.splitlines()[0])
    p.add_argument(
        "--dataset", required=True, help="the dataset to measure (bench/query.py makes a 10M-span one)"
    )
    p.add_argument("--home", type=Path, default=None, help="DCR_HOME holding it (default $DCR_HOME)")
    p.add_argument("--service", default=None, help="the service of the window (default: the busiest)")
    p.add_argument("--runs", type=int, default=5, help="warm runs after the cold one (default 5)")
    p.add_argument("--no-export", action="store_true", help="skip the export of the whole spans table")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.home:
        os.environ["DCR_HOME"] = str(args.home)
    home = Path(os.environ.get("DCR_HOME") or ".")

    import ingest
    from correlate import open_dataset

    if args.dataset not in ingest.list_datasets():
        print(
            f"bench/explore.py: no dataset {args.dataset!r} under {home} (bench/query.py makes one)",
            file=sys.stderr,
        )
        return 2
    with open_dataset(args.dataset) as ds:
        service, start_ns, spans = _busiest_window(ds)
        service = args.service or service
        result = {
            "dataset": args.dataset,
            "spans": spans,
            "span_files": len(ds.handle.span_files),
            "service": service,
            "window_start_ns": start_ns,
            **measure(ds, service, start_ns, args.runs),
        }
    if not args.no_export:
        result["export"] = export_peak_rss(args.dataset, home)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result, args.runs)
    return 0


def _print(r: dict[str, Any], runs: int) -> None:
    print(
        f"dataset {r['dataset']}: {r['spans']:,} spans in {r['span_files']} files, "
        f"{r['row_groups_in_dataset']:,} row groups"
    )
    print(f"window: service={r['service']}, 5 minutes from {r['window_start_ns']} (the middle of the data)")
    for t in r["timings"]:
        print(
            f"  {t['engine']:<15} {t['what']:<11} {t['rows']:>9,} rows  cold {t['cold_ms']:>8.1f} ms  "
            f"warm {t['warm_ms']:>8.1f} ms (median of {runs})"
        )
    pg, dg = r["polars_row_groups"], r["duckdb_row_groups"]
    print(
        f"row groups read (as the engine reports them): polars {pg['read']} of {pg['of']} "
        f"in the {pg['files_opened']} files it opened; duckdb {dg['scanned']} of {dg['to_scan']}"
    )
    e = r.get("export")
    if e is None:
        return
    if "error" in e:
        print(f"export of all spans to Parquet: failed: {e['error']}")
        return
    verdict = "PASS" if e["peak_rss_mb"] < EXPORT_BAR_MB else "FAIL"
    print(
        f"export of all spans to Parquet: {e['rows']:,} rows, {e['bytes'] / 1e6:,.1f} MB in {e['seconds']} s, "
        f"peak RSS {e['peak_rss_mb']:.0f} MB (bar < {EXPORT_BAR_MB} MB: {verdict})"
    )


if __name__ == "__main__":
    sys.exit(main())
