"""`dcr datasets [--json]`: the datasets under $DCR_HOME."""

from __future__ import annotations

import argparse

from mcp_server.output import emit_json

NAME = "datasets"
HELP = "list datasets"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON array on stdout")


def run(args: argparse.Namespace) -> int:
    import ingest

    rows = []
    for name in ingest.list_datasets():
        try:
            s = ingest.dataset_summary(name)
        except ingest.DatasetNotFound:  # removed while we listed
            continue
        rows.append(
            {
                k: s[k]
                for k in ("dataset", "spans", "logs", "rejected", "services", "time_range", "updated_at")
            }
        )
    if args.json:
        emit_json(rows)
        return 0
    if not rows:
        print("no datasets yet: run 'dcr ingest PATH' first")
    for r in rows:
        print(
            f"{r['dataset']:<24} {r['spans']:>10} spans {r['logs']:>10} logs {r['rejected']:>8} rejected  "
            f"{len(r['services'])} service{'' if len(r['services']) == 1 else 's'}"
        )
    return 0
