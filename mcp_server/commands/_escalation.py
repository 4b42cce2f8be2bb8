"""Shared by `dcr escalate` and `dcr conversation`: arguments and rendering. (Escalation's errors are
mapped once, by `dcr` itself: `mcp_server/errors.py`.)"""

from __future__ import annotations

import argparse
from typing import Any

from correlate.times import parse_time_ns
from mcp_server.errors import UsageError
from mcp_server.output import emit_json, info, warn

__all__ = ["add_request_arguments", "request_from_args", "print_result"]

ANALYSIS_TYPES = ("execution_trace", "cross_system", "performance", "hypothesis_test")


def add_request_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="dataset (see 'dcr datasets')")
    p.add_argument("--question", "-q", required=True, help="what you want to know")
    p.add_argument("--analysis-type", choices=ANALYSIS_TYPES, default="cross_system")
    p.add_argument(
        "--file", action="append", default=[], metavar="P", help="code file to include (repeatable)"
    )
    p.add_argument("--entry-point", action="append", default=[], metavar="PATH:LINE|PATH:FUNC")
    p.add_argument("--start", metavar="T", help="window start (ISO-8601 or epoch s/ms/ns)")
    p.add_argument("--end", metavar="T", help="window end")
    p.add_argument("--baseline-start", metavar="T")
    p.add_argument("--baseline-end", metavar="T")
    p.add_argument(
        "--service", action="append", default=[], metavar="S", help="limit to a service (repeatable)"
    )
    p.add_argument(
        "--provider", choices=("offline", "gemini"), help="default: gemini with a key, else offline"
    )
    p.add_argument("--depth", type=int, default=3, choices=range(1, 6), metavar="1-5", help="thinking effort")
    p.add_argument(
        "--time-budget",
        type=float,
        metavar="S",
        help="seconds the model has in all; past them the offline report from the same evidence",
    )
    p.add_argument("--budget-tokens", type=int, metavar="N", help="bundle budget (default DCR_BUDGET_TOKENS)")
    p.add_argument("--stuck", default="", metavar="TEXT", help="where the agent is stuck")
    p.add_argument("--tried", action="append", default=[], metavar="TEXT", help="an approach already tried")
    p.add_argument("--finding", action="append", default=[], metavar="TEXT", help="a partial finding")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _window(start: str | None, end: str | None, what: str) -> Any:
    from correlate.types import Window

    if start is None and end is None:
        return None
    if start is None or end is None:
        raise UsageError(f"give both --{what}start and --{what}end, or neither")
    try:
        w = Window(parse_time_ns(start), parse_time_ns(end))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if w.end_ns <= w.start_ns:
        raise UsageError(f"--{what}end must be after --{what}start")
    return w


def request_from_args(args: argparse.Namespace, *, dry_run: bool = False) -> Any:
    from escalation import AgentContext, CodeScope, EscalationRequest

    # 0 fell back to the default timeout and a negative one reached the client: refuse both here
    if args.time_budget is not None and not args.time_budget > 0:
        raise UsageError(f"--time-budget must be a number of seconds > 0, got {args.time_budget:g}")
    if args.budget_tokens is not None and args.budget_tokens <= 0:
        raise UsageError(f"--budget-tokens must be > 0, got {args.budget_tokens}")
    return EscalationRequest(
        question=args.question,
        dataset=args.name,
        window=_window(args.start, args.end, ""),
        baseline=_window(args.baseline_start, args.baseline_end, "baseline-"),
        services=tuple(args.service),
        context=AgentContext(
            stuck_description=args.stuck,
            attempted_approaches=tuple(args.tried),
            partial_findings=tuple(args.finding),
            code_scope=CodeScope(entry_points=tuple(args.entry_point)),
        ),
        analysis_type=args.analysis_type,
        depth_level=args.depth,
        files=tuple(args.file),
        provider=args.provider,
        time_budget_seconds=args.time_budget,
        dry_run=dry_run,
        budget_tokens=args.budget_tokens,
    )


def print_result(result: Any, as_json: bool) -> None:
    if as_json:
        emit_json(result)
    else:
        print(result.report_markdown, end="")
    for w in result.warnings:
        warn(w)
    tokens = ", ".join(f"{k} {v:,}" for k, v in result.bundle_sections.items())
    info(
        f"bundle: {result.bundle_tokens:,} tokens ({result.token_method}) of {result.budget_tokens:,} [{tokens}]; "
        f"redacted {sum(result.redactions.values())}; saved {result.bundle_path}"
    )
    if result.cut:
        info(f"cut to fit: {len(result.cut)} group(s); see the report")
    info(
        f"{result.provider} {result.model}: {result.usage['input_tokens']:,} in, {result.usage['output_tokens']:,} "
        f"out, {result.usage['thinking_tokens']:,} thinking; ${result.cost_usd:.4f}; {result.latency_s:.1f}s"
    )
