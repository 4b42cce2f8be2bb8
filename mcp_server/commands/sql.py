"""`dcr sql NAME "SELECT …" [--format table|json|csv] [--limit N] [--timeout S]`: read-only SQL."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from mcp_server.commands._correlate import mapped_errors
from mcp_server.errors import UsageError
from mcp_server.output import emit_json, info

NAME = "sql"
HELP = "run one read-only SELECT over the views spans, logs, traces, service_edges"

_CELL_CHARS = 60


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="dataset")
    p.add_argument("query", metavar="SQL", help='one SELECT, e.g. "SELECT service_name, count(*) FROM spans GROUP BY 1"')
    p.add_argument("--format", choices=["table", "json", "csv"], default=None, help="output (default: table)")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("--limit", type=int, default=1000, metavar="N", help="row cap (default 1000; 0: the columns only)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="time limit in seconds (default 30)")


def _cell(value: Any) -> Any:
    """A JSON-friendly value: lists/dicts stay, other non-JSON types become text."""
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _table(columns: tuple[str, ...], rows: tuple[tuple[Any, ...], ...]) -> None:
    cells = [[_text(v).replace("\n", " ") for v in row] for row in rows]
    cells = [[c if len(c) <= _CELL_CHARS else c[: _CELL_CHARS - 1] + "…" for c in row] for row in cells]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    print("  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def run(args: argparse.Namespace) -> int:
    import correlate

    if args.limit < 0:
        raise UsageError(f"--limit must be >= 0, got {args.limit}")
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be > 0, got {args.timeout}")
    fmt = "json" if args.json else (args.format or "table")
    with mapped_errors(), correlate.open_dataset(args.name) as ds:
        result = ds.sql(args.query, limit=args.limit, timeout_s=args.timeout)
    note = f"{len(result.rows)} rows in {result.seconds:.3f} s"
    if args.limit == 0:
        note = f"columns only (--limit 0: no rows fetched) in {result.seconds:.3f} s"
    elif result.truncated:
        note += f"; truncated at the row cap of {result.row_cap} (more rows exist: raise --limit or add LIMIT)"
    if fmt == "json":
        emit_json({
            "columns": list(result.columns),
            "rows": [[_cell(v) for v in row] for row in result.rows],
            "row_count": len(result.rows),
            "truncated": result.truncated,
            "row_cap": result.row_cap,
            "seconds": result.seconds,
        })
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_text(v) if v is not None else "" for v in row] for row in result.rows])
    else:
        _table(result.columns, result.rows)
    info(note)
    return 0
