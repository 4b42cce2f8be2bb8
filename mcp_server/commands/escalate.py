"""`dcr escalate NAME --question TEXT …`: the bundle, the provider's analysis, a ledger row.

`--dry-run` prints exactly what would be sent (the generateContent body, after redaction) and
its token count; it needs no key and contacts nothing.
"""

from __future__ import annotations

import argparse
import json

from mcp_server.commands._escalation import (
    add_request_arguments,
    print_result,
    request_from_args,
)
from mcp_server.output import emit_json, info, warn

NAME = "escalate"
HELP = "ask Gemini (or the offline report) about a dataset, with a condensed, redacted evidence bundle"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_request_arguments(p)
    p.add_argument("--dry-run", action="store_true", help="print what would be sent; contact nothing")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write the incident as one self-contained HTML page, the analysis at its top",
    )


def run(args: argparse.Namespace) -> int:
    import escalation

    req = request_from_args(args, dry_run=args.dry_run)
    # past --time-budget: the offline report, partial (the package's policy)
    result = escalation.escalate_within(req, args.time_budget)
    if not args.dry_run:
        print_result(result, args.json)
        if args.html:
            from escalation.html_report import write_for_escalation

            written = write_for_escalation(req, result, args.html)
            info(f"HTML report: {written.path} ({written.bytes / 1e6:.2f} MB)")
        return 0
    payload = result.dry_run_payload or {}
    if args.json:
        emit_json(result)
    else:
        print(f"{payload.get('method')} {payload.get('path')}")
        print(json.dumps(payload.get("body"), ensure_ascii=False, indent=2))
        print(
            f"token count: {payload.get('token_count'):,} ({payload.get('token_method')}); "
            f"redacted: {sum(result.redactions.values())}; nothing was sent"
        )
    for w in result.warnings:
        warn(w)
    return 0
