"""`dcr correlate NAME [--start T --end T] [--baseline-start T --baseline-end T] [--service S]… [--json]`."""

from __future__ import annotations

import argparse
from typing import Any

from correlate.times import format_ns, parse_time_ns
from mcp_server.errors import UsageError
from mcp_server.output import emit_json, info, warn

NAME = "correlate"
HELP = "rank root-cause candidates (service, operation, mechanism, score, evidence) for a time window"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="dataset")
    add_window_arguments(p)
    p.add_argument(
        "--top", type=int, default=10, metavar="N", help="candidates to print as text (default 10)"
    )
    p.add_argument("--json", action="store_true", help="the whole report as one JSON document")


def _time(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_time_ns(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def add_window_arguments(p: argparse.ArgumentParser) -> None:
    """--start/--end/--baseline-start/--baseline-end/--service, as `dcr correlate` takes them."""
    p.add_argument(
        "--start", metavar="T", help="window start (ISO-8601 or epoch s/ms/ns; default: dataset start)"
    )
    p.add_argument("--end", metavar="T", help="window end, exclusive (default: dataset end)")
    p.add_argument(
        "--baseline-start", metavar="T", help="baseline start (default: an equal span before the window)"
    )
    p.add_argument("--baseline-end", metavar="T", help="baseline end, exclusive (give both or neither)")
    p.add_argument(
        "--service", action="append", default=[], metavar="S", help="report only on this service (repeat)"
    )


def windows_from_args(
    args: argparse.Namespace, time_range: tuple[int | None, int | None]
):  # -> (Window|None, Window|None)
    """The window and baseline the window arguments name (None: correlate's default)."""
    from correlate import Window

    start, end = _time(args.start, "--start"), _time(args.end, "--end")
    b_start, b_end = (
        _time(args.baseline_start, "--baseline-start"),
        _time(args.baseline_end, "--baseline-end"),
    )
    window = None
    if start is not None or end is not None:
        ds_start, ds_end = time_range
        start = start if start is not None else ds_start
        end = end if end is not None else (ds_end + 1 if ds_end is not None else None)
        if start is None or end is None:
            raise UsageError("the dataset has no spans: give both --start and --end, or ingest data first")
        if end <= start:
            raise UsageError(f"--end ({format_ns(end)}) must be after --start ({format_ns(start)})")
        window = Window(start, end)
    baseline = None
    if (b_start is None) != (b_end is None):
        raise UsageError("give both --baseline-start and --baseline-end, or neither")
    if b_start is not None and b_end is not None:
        if b_end <= b_start:
            raise UsageError("--baseline-end must be after --baseline-start")
        if window is not None and b_end > window.start_ns:
            raise UsageError("the baseline must end at or before the window's start (--start)")
        baseline = Window(b_start, b_end)
    return window, baseline


def correlate_from_args(ds: Any, args: argparse.Namespace) -> Any:
    """The report for the window arguments on an open dataset; a warning for unknown services."""
    window, baseline = windows_from_args(args, ds.handle.time_range)
    unknown = sorted(set(args.service) - set(ds.handle.services))
    if unknown:
        warn(
            f"no service named {', '.join(unknown)} in dataset {args.name!r} (known: {', '.join(ds.handle.services)})"
        )
    return ds.correlate(window, baseline, args.service)


def run(args: argparse.Namespace) -> int:
    import correlate

    if args.top < 0:
        raise UsageError(f"--top must be >= 0, got {args.top}")
    with correlate.open_dataset(args.name) as ds:
        report = correlate_from_args(ds, args)
    if args.json:
        emit_json(report.to_dict())
        return 0
    has_spans = bool((ds.handle.manifest.get("totals") or {}).get("spans"))
    _print(report, args.top, ds.handle.time_range if has_spans else (None, None))
    return 0


def _print(report, top: int, time_range: tuple[int | None, int | None] = (None, None)) -> None:
    """report: correlate.CorrelationReport; time_range: the dataset's ((None, None) without spans),
    named when the window is empty."""
    from correlate.engine import NOTE_NO_SPANS

    w, b = report.window, report.baseline
    print(f"dataset {report.dataset}: window {format_ns(w.start_ns)} .. {format_ns(w.end_ns)}")
    print(f"baseline: {format_ns(b.start_ns)} .. {format_ns(b.end_ns)}" if b else "baseline: none")
    for note in report.notes:
        print(f"note: {note}")
    if not report.candidates:
        if time_range[0] is None:
            print("no root-cause candidates: the dataset has no spans")
        elif NOTE_NO_SPANS in report.notes:
            print(
                f"no root-cause candidates: the dataset's data runs from {format_ns(time_range[0])} "
                f"to {format_ns(time_range[1])}"
            )
        elif b is None:
            print("no root-cause candidates: nothing in the window stands out")
        else:
            print("no root-cause candidates: nothing in the window differs enough from the baseline")
    first_with: dict[str, int] = {}  # summary -> rank: one origin read as two mechanisms shares its text
    for i, c in enumerate(report.candidates[:top], 1):
        op = f" {c.operation}" if c.operation else ""
        print(f"\n{i}. {c.score:.2f}  {c.service}{op}  [{c.mechanism}]  confidence {c.confidence or 'n/a'}")
        if c.summary in first_with:
            print(f"   the same evidence as #{first_with[c.summary]}, read as {c.mechanism}")
        else:
            first_with[c.summary] = i
            print(f"   {c.summary}")
        if c.evidence.trace_ids:
            print(f"   traces: {', '.join(c.evidence.trace_ids)}")
    if len(report.candidates) > top:
        print(f"\n… {len(report.candidates) - top} more candidates (--top N, or --json for all)")
    shown = [f for f in report.findings if f.service or f.kind != "service_graph"]
    if shown:
        print("\nfindings:")
        for f in shown:
            print(f"  - [{f.kind}] {f.summary}")
    info(f"correlated in {report.seconds:.2f} s; the SQL behind each figure is in --json (evidence.sql)")
