"""`dcr sql NAME ["SELECT …"] [--format table|json|csv|parquet|arrow] [-o FILE] [--limit N] [--timeout S]`.

dcr sql NAME "SELECT …"                  at most --limit rows (1000) as a table, JSON or CSV
dcr sql NAME "SELECT …" -o out.parquet   the whole result, streamed into a file (no row cap)
dcr sql NAME                             an interactive prompt on a terminal (_sql_prompt.py),
                                         else the query is read from stdin
"""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

from mcp_server.errors import UsageError
from mcp_server.output import cell_text, emit_json, info, print_table

NAME = "sql"
HELP = "run one read-only SELECT over the views spans, logs, traces, service_edges"

_ROW_CAP = 1000
_TIMEOUT_S = 30.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="dataset")
    p.add_argument(
        "query",
        metavar="SQL",
        nargs="?",
        default=None,
        help='one SELECT, e.g. "SELECT service_name, count(*) FROM spans GROUP BY 1"; '
        "none: a SQL prompt on a terminal, else the query from stdin",
    )
    p.add_argument(
        "--format",
        choices=["table", "json", "csv", "parquet", "arrow"],
        default=None,
        help="output (default: table; with -o: from the file's suffix)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default=None,
        help="write the whole result (no row cap) to FILE as parquet, arrow (IPC file) or csv",
    )
    p.add_argument(
        "--json", action="store_true", help="same as --format json (with -o: the export's summary)"
    )
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help=f"row cap (default {_ROW_CAP}, none with -o; 0: the columns only)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help=f"time limit in seconds (default {_TIMEOUT_S:g}; none with -o or at the prompt)",
    )


def _cell(value: Any) -> Any:
    """A JSON-friendly value: lists/dicts stay, other non-JSON types become text."""
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return str(value)


def run(args: argparse.Namespace) -> int:
    import correlate

    _check(args)
    if args.query is None and sys.stdin.isatty():
        from mcp_server.commands._sql_prompt import run_prompt

        if args.output or args.format or args.json:
            raise UsageError("the prompt prints tables: give the query to use --format, -o or --json")
        with correlate.open_dataset(args.name) as ds:
            return run_prompt(ds, limit=_or(args.limit, _ROW_CAP), timeout_s=args.timeout)
    query = args.query if args.query is not None else sys.stdin.read()
    with correlate.open_dataset(args.name) as ds:
        if args.output:
            return _export(ds, query, args)
        result = ds.sql(query, limit=_or(args.limit, _ROW_CAP), timeout_s=_or(args.timeout, _TIMEOUT_S))
    _print(result, "json" if args.json else (args.format or "table"))
    return 0


def _check(args: argparse.Namespace) -> None:
    if args.limit is not None and args.limit < 0:
        raise UsageError(f"--limit must be >= 0, got {args.limit}")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be > 0, got {args.timeout}")
    if args.format in ("parquet", "arrow") and not args.output:
        raise UsageError(f"--format {args.format} writes a file: add -o FILE")
    if args.output and args.format in ("table", "json"):
        raise UsageError(
            f"-o writes parquet, arrow or csv, not {args.format}: use --format parquet|arrow|csv"
        )


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _export(ds: Any, query: str, args: argparse.Namespace) -> int:
    from correlate.export import format_for

    fmt = args.format or format_for(args.output)
    if fmt is None:
        raise UsageError(
            f"no format for {args.output!r}: add --format parquet|arrow|csv "
            "or end the file name in .parquet, .arrow or .csv"
        )
    result = ds.export(query, args.output, format=fmt, limit=args.limit, timeout_s=args.timeout)
    if args.json:
        emit_json(result.to_dict())
    info(
        f"wrote {result.rows} rows ({result.bytes:,} bytes, {fmt}) to {result.path} in {result.seconds:.3f} s"
    )
    return 0


def _print(result: Any, fmt: str) -> None:
    note = f"{len(result.rows)} rows in {result.seconds:.3f} s"
    if result.row_cap == 0:
        note = f"columns only (--limit 0: no rows fetched) in {result.seconds:.3f} s"
    elif result.truncated:
        note += (
            f"; truncated at the row cap of {result.row_cap} (more rows exist: raise --limit or add LIMIT)"
        )
    if fmt == "json":
        emit_json(
            {
                "columns": list(result.columns),
                "rows": [[_cell(v) for v in row] for row in result.rows],
                "row_count": len(result.rows),
                "truncated": result.truncated,
                "row_cap": result.row_cap,
                "seconds": result.seconds,
            }
        )
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[cell_text(v) if v is not None else "" for v in row] for row in result.rows])
    else:
        print_table(result.columns, result.rows)
    info(note)
