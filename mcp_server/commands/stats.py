"""`dcr stats [--json]`: the escalation ledger by day, analysis type and model."""

from __future__ import annotations

import argparse
from typing import Any

from mcp_server.output import emit_json

NAME = "stats"
HELP = "summarise the escalation ledger: calls, tokens, cost and latency by day, analysis type and model"

_COLS = (
    "calls",
    "ok",
    "failed",
    "dry_runs",
    "input_tokens",
    "output_tokens",
    "thinking_tokens",
    "cost_usd",
    "avg_latency_s",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _table(title: str, key: str, rows: list[dict[str, Any]]) -> None:
    labels = [str(r.get(key)) + (f" ({r['provider']})" if key == "model" else "") for r in rows]
    width = max([24, *(len(x) + 1 for x in labels)])  # a long model name kept the columns from lining up
    print(f"\n{title}")
    print(f"  {key:<{width}}" + "".join(f"{c:>16}" for c in _COLS))
    for label, r in zip(labels, rows, strict=True):
        print(
            f"  {label:<{width}}"
            + "".join(
                f"{r.get(c) or 0:>16,.4f}" if c == "cost_usd" else f"{r.get(c) or 0:>16,}" for c in _COLS
            )
        )


def run(args: argparse.Namespace) -> int:
    import escalation

    stats = escalation.ledger_stats()
    if args.json:
        emit_json(stats)
        return 0
    t = stats["total"]
    print(
        f"{t['calls']} ledger rows: {t['ok']} ok, {t['failed']} failed, {t['dry_runs']} dry runs; "
        f"{t['input_tokens']:,} input, {t['output_tokens']:,} output, {t['thinking_tokens']:,} thinking tokens; "
        f"${t['cost_usd']:.4f}"
    )
    _table("by day", "day", stats["by_day"])
    _table("by analysis type", "analysis_type", stats["by_type"])
    _table("by model", "model", stats["by_model"])
    if stats["redactions"]:
        print("\nredactions: " + ", ".join(f"{k} {v}" for k, v in stats["redactions"].items()))
    return 0
