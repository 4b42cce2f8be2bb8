"""Query-speed benchmark: one service's spans in a 5-minute window, a correlate, peak RSS.

    python bench/query.py [--dataset NAME] [--scale N] [--scenario NAME] [--home DIR] [--json]

With no usable --dataset it makes one: the scenario generator's `--scale` (default 15000, about
10 million spans of the healthy shop) into DIR/gen, then `dcr ingest` into DIR (the DCR_HOME
used; default $DCR_HOME or /tmp/dcr-bench-query). Both run as child processes so the peak RSS
printed is the query process's own. The dataset is kept for the next run.

It prints the figures against the bars (extraction < 100 ms warm on >= 10M spans, correlate over
a 1-hour window < 10 s, peak RSS < 2 GB) and exits 0 whatever they are; bad usage exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = ["main", "extraction_ms", "make_dataset_at_scale"]

HOUR_NS = 3600 * 1_000_000_000
WINDOW_NS = 5 * 60 * 1_000_000_000
WARM_RUNS = 7
_WHERE = "WHERE service_name = ? AND start_ns >= ? AND start_ns < ?"
KEY_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, kind, host, start_ns, end_ns, duration_ns, status_code"
)
# what "extracting one service's spans" can mean, cheapest first; the bar is judged on "key columns"
EXTRACTS = {
    "count": f"SELECT count(*) FROM spans {_WHERE}",
    "key columns": f"SELECT {KEY_COLUMNS} FROM spans {_WHERE}",
    "all columns": f"SELECT * FROM spans {_WHERE}",
}


def make_dataset_at_scale(name: str, home: Path, scenario: str, scale: float) -> None:
    """Generate the scenario at `scale` and ingest it as dataset `name` (child processes)."""
    gen = home / "gen" / f"scale-{scale:g}"  # a scale of its own: another scale's files are not reused
    env = dict(os.environ, DCR_HOME=str(home))
    if not (gen / scenario / "traces.jsonl").is_file():
        print(f"generating {scenario} at scale {scale:g} into {gen} ...", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "scenarios.generate",
                "--scenario",
                scenario,
                "--out",
                str(gen),
                "--scale",
                f"{scale:g}",
            ],
            check=True,
            cwd=REPO,
            env=env,
        )
    print(f"ingesting into dataset {name} ...", file=sys.stderr)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_server.cli",
            "ingest",
            str(gen / scenario / "traces.jsonl"),
            str(gen / scenario / "logs.jsonl"),
            "--dataset",
            name,
        ],
        check=True,
        cwd=REPO,
        env=env,
    )


def extraction_ms(ds: Any, sql: str, service: str, start_ns: int) -> tuple[int, float, float]:
    """(rows, cold ms, warm median ms) of `sql` for one service's spans in [start, start + 5 min)."""
    params = [service, start_ns, start_ns + WINDOW_NS]
    times = []
    rows = 0
    for _ in range(1 + WARM_RUNS):
        t0 = time.perf_counter()
        table = ds.con.sql(sql, params=params).to_arrow_table()
        times.append((time.perf_counter() - t0) * 1000)
        rows = table.num_rows
    return rows, times[0], statistics.median(times[1:])


def _correlate_seconds(ds: Any, start_ns: int, end_ns: int) -> tuple[float | None, str]:
    from correlate import CorrelateError, Window

    window = Window(max(start_ns, end_ns - HOUR_NS), end_ns)
    t0 = time.perf_counter()
    try:
        report = ds.correlate(window)
    except CorrelateError as exc:
        return None, str(exc)
    return time.perf_counter() - t0, f"{len(report.candidates)} candidates, {len(report.findings)} findings"


def _bar_ms(extracts: list[dict[str, Any]], service: str) -> float:
    """The bar's figure: key columns of the busiest service, warm."""
    return next(e["warm_ms"] for e in extracts if e["service"] == service and e["what"] == "key columns")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/query.py", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", help="an existing dataset to measure (default: bench-<scenario>-<scale>)")
    p.add_argument("--scale", type=float, default=15000.0, help="generator scale when making the dataset")
    p.add_argument("--scenario", default="healthy", help="scenario to generate (default healthy)")
    p.add_argument(
        "--home", type=Path, default=None, help="DCR_HOME to use (default $DCR_HOME or /tmp/dcr-bench-query)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    home = args.home or Path(os.environ.get("DCR_HOME") or "/tmp/dcr-bench-query")
    os.environ["DCR_HOME"] = str(home)
    name = args.dataset or f"bench-{args.scenario}-{args.scale:g}"

    import ingest
    from correlate import open_dataset

    if name not in ingest.list_datasets():
        if args.dataset:
            print(f"bench/query.py: no dataset {name!r} under {home}", file=sys.stderr)
            return 2
        make_dataset_at_scale(name, home, args.scenario, args.scale)

    with open_dataset(name) as ds:
        t0 = time.perf_counter()
        ((spans, start_ns, end_ns),) = ds.fetch("SELECT count(*), min(start_ns), max(end_ns) FROM spans")
        count_s = time.perf_counter() - t0
        # the busiest and the median service, in a 5-minute window in the middle of the data
        by_count = [
            r[0] for r in ds.fetch("SELECT service_name FROM spans GROUP BY 1 ORDER BY count(*) DESC")
        ]
        services = list(dict.fromkeys([by_count[0], by_count[len(by_count) // 2]]))
        mid = start_ns + (end_ns - start_ns) // 2 - WINDOW_NS // 2
        extracts = [
            {
                "service": svc,
                "what": what,
                **dict(zip(("rows", "cold_ms", "warm_ms"), extraction_ms(ds, sql, svc, mid), strict=True)),
            }
            for svc in services
            for what, sql in EXTRACTS.items()
        ]
        corr_s, corr_note = _correlate_seconds(ds, start_ns, end_ns)
        derived_s = {}
        for view in ("traces", "service_edges"):
            t0 = time.perf_counter()
            ds.ensure_materialized(view)
            derived_s[view] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        ds.trace(ds.fetch("SELECT trace_id FROM traces ORDER BY span_count DESC LIMIT 1")[0][0])
        trace_s = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    files = len(ingest.open_handle(name).span_files)
    result = {
        "dataset": name,
        "spans": spans,
        "span_files": files,
        "hours": round((end_ns - start_ns) / HOUR_NS, 3),
        "count_seconds": round(count_s, 3),
        "extracts": extracts,
        "correlate_seconds": None if corr_s is None else round(corr_s, 2),
        "correlate_note": corr_note,
        "materialise_seconds": derived_s,
        "trace_seconds": round(trace_s, 3),
        "peak_rss_mb": round(rss_mb, 1),
        "bars": {
            "spans >= 10M": spans >= 10_000_000,
            "extract warm < 100 ms": _bar_ms(extracts, services[0]) < 100,
            "correlate 1 h < 10 s": None if corr_s is None else corr_s < 10,
            "peak RSS < 2 GB": rss_mb < 2048,
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"dataset {name}: {spans:,} spans in {files} files over {result['hours']} h (count {count_s:.2f} s)"
    )
    for e in extracts:
        print(
            f"extract {e['what']:<11} service={e['service']}, 5 min window: {e['rows']:,} rows, "
            f"cold {e['cold_ms']:.1f} ms, warm {e['warm_ms']:.1f} ms (median of {WARM_RUNS})"
        )
    if corr_s is None:
        print(f"correlate: not measured ({corr_note})")
    else:
        print(f"correlate over {min(1.0, result['hours']):g} h window: {corr_s:.2f} s ({corr_note})")
    print(
        f"materialise traces {derived_s['traces']:.2f} s, service_edges {derived_s['service_edges']:.2f} s; "
        f"dcr trace of the largest trace {trace_s:.2f} s"
    )
    print(f"peak RSS: {rss_mb:.0f} MB")
    for bar, ok in result["bars"].items():
        print(f"  {bar:<24} {'n/a' if ok is None else ('PASS' if ok else 'FAIL')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
