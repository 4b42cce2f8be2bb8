"""`dcr dataset show NAME` / `dcr dataset rm NAME`."""

from __future__ import annotations

import argparse

from correlate.times import format_ns
from mcp_server.output import emit_json

NAME = "dataset"
HELP = "show or remove a dataset"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action", choices=["show", "rm"], help="show: totals, time range, services, sources; rm: delete"
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _show(name: str, as_json: bool) -> None:
    import ingest

    s = ingest.dataset_summary(name)
    if as_json:
        emit_json(s)
        return
    tr = s["time_range"]
    span = (
        f"{format_ns(tr['start_ns'])} .. {format_ns(tr['end_ns'])}"
        if tr.get("start_ns") is not None
        else "(empty)"
    )
    print(f"dataset {s['dataset']} ({s['path']})")
    print(f"  spans {s['spans']}, logs {s['logs']}, rejected {s['rejected']}")
    print(f"  time  {span}")
    print(f"  services ({len(s['services'])}): {', '.join(s['services'])}")
    print(f"  sources ({len(s['sources'])}):")
    for src in s["sources"]:
        print(
            f"    {src['path']} [{src['format']}] {src['spans']} spans, {src['logs']} logs, {src['rejected']} rejected"
        )


def run(args: argparse.Namespace) -> int:
    import ingest

    if args.action == "show":
        _show(args.name, args.json)
    else:
        ingest.remove_dataset(args.name)
        if args.json:
            emit_json({"dataset": args.name, "removed": True})
        else:
            print(f"removed dataset {args.name}")
    return 0
