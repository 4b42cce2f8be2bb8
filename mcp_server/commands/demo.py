"""`dcr demo`: the main job on the bundled fixtures (for now: ingest them and show the dataset)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mcp_server.errors import UsageError
from mcp_server.output import emit_json, info
from mcp_server.timearg import format_ns

NAME = "demo"
HELP = "run the main job on the bundled fixtures (offline unless a key is set)"
DATASET = "demo"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "public"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def ingest_fixtures(dataset: str = DATASET) -> dict:
    """Ingest the bundled public fixtures into `dataset`; its summary."""
    import ingest

    if not FIXTURES.is_dir():
        raise UsageError(f"bundled fixtures not found at {FIXTURES}: run from a source checkout")
    try:
        ingest.ingest_paths([str(FIXTURES)], dataset)
        return ingest.dataset_summary(dataset)
    except ingest.IngestError as exc:
        raise UsageError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    summary = ingest_fixtures()
    if args.json:
        emit_json({"dataset": summary})
        return 0
    tr = summary["time_range"]
    info(f"ingested the bundled fixtures into dataset {summary['dataset']!r} ({summary['path']})")
    print(f"spans {summary['spans']}, logs {summary['logs']}, rejected {summary['rejected']}, "
          f"services {len(summary['services'])}, sources {len(summary['sources'])}")
    if tr.get("start_ns") is not None:
        print(f"time range {format_ns(tr['start_ns'])} .. {format_ns(tr['end_ns'])}")
    return 0
