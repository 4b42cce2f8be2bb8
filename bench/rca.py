"""Root-cause benchmark over the scenario library: AC@1 and AC@3 of `correlate`.

    python bench/rca.py [--scale N --seed S] [--scenario NAME]... [--json]

For every scenario: ingest its traces.jsonl and logs.jsonl into a fresh dataset (in a temporary
DCR_HOME), run `open_dataset(name).correlate(window, baseline)` with the window after the onset
and the baseline before it (from truth.json), and print the rank of the true root-cause service
(1 = first candidate), whether a true mechanism is among the top three candidates, and the top
candidates. Then AC@1 / AC@3 over the incident scenarios (share with the true service ranked
first / in the top three) and, for the healthy control, the highest score (the bar: <= 0.5).

By default it reads the committed copies in fixtures/scenarios/; with --scale it generates the
scenarios at that scale first (same seed => same data). It is a benchmark: it reports and exits 0
whatever the scores; only bad usage exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = ["score_report", "main"]

FIXTURES = REPO / "fixtures" / "scenarios"


def score_report(truth: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """Rank of the true service (None when absent), whether a true mechanism is in the top 3."""
    root = truth.get("root_cause")
    top_score = max((c["score"] for c in candidates), default=0.0)
    if root is None:
        return {"rank": None, "mechanism_top3": None, "top_score": top_score, "ok": top_score <= 0.5}
    rank = next((i for i, c in enumerate(candidates, 1) if c["service"] == root["service"]), None)
    mech = any(c["mechanism"] in root["mechanisms"] for c in candidates[:3])
    return {"rank": rank, "mechanism_top3": mech, "top_score": top_score, "ok": rank == 1 and mech}


def _ingest(name: str, folder: Path) -> tuple[str | None, dict[str, Any]]:
    try:
        from ingest import ingest_paths
    except ImportError:
        return "ingest is not available yet (ingest.ingest_paths is missing)", {}
    files = [str(folder / f) for f in ("traces.jsonl", "logs.jsonl") if (folder / f).exists()]
    try:
        result = ingest_paths(files, f"rca-{name}")
    except Exception as exc:  # a benchmark reports a broken stage and goes on with the next scenario
        return f"ingest failed: {type(exc).__name__}: {exc}", {}
    return None, {"spans": result.spans, "logs": result.logs, "rejected": result.rejected}


def _correlate(name: str, truth: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]], float]:
    try:
        from correlate import CorrelateError, Window, open_dataset
    except ImportError:
        return "correlation is not available yet (correlate.open_dataset is missing)", [], 0.0
    w = truth["window"]
    window = Window(w["incident_start_ns"], w["incident_end_ns"])
    baseline = Window(w["baseline_start_ns"], w["baseline_end_ns"])
    began = time.perf_counter()
    try:
        with open_dataset(f"rca-{name}") as ds:
            report = ds.correlate(window, baseline)
    except CorrelateError as exc:
        return f"correlation failed: {exc}", [], 0.0
    except Exception as exc:  # a benchmark reports a crash and goes on with the next scenario
        return f"correlation crashed: {type(exc).__name__}: {exc}", [], 0.0
    candidates = [
        {
            "service": c.service,
            "operation": c.operation,
            "mechanism": c.mechanism,
            "score": round(c.score, 3),
            "summary": c.summary,
        }
        for c in report.candidates
    ]
    return None, candidates, time.perf_counter() - began


def _scenario_dirs(args: argparse.Namespace, tmp: Path) -> list[tuple[str, Path]]:
    from scenarios import SCENARIOS

    names = args.scenario or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"rca: unknown scenario {unknown[0]!r}: use one of {', '.join(SCENARIOS)}")
    if args.scale is None:
        return [(n, FIXTURES / n) for n in names]
    from scenarios.generate import write_scenario

    out = tmp / "scenarios"
    for n in names:
        write_scenario(n, out, args.seed, args.scale)
    return [(n, out / n) for n in names]


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dcr-rca-") as tmp:
        os.environ["DCR_HOME"] = str(Path(tmp) / "home")
        for name, folder in _scenario_dirs(args, Path(tmp)):
            try:
                truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SystemExit(
                    f"rca: cannot read {folder / 'truth.json'}: {exc}; regenerate the scenarios with "
                    "'python -m scenarios.generate --scenario all --out fixtures/scenarios --seed 1'"
                ) from None
            row: dict[str, Any] = {"scenario": name, "truth": truth["root_cause"]}
            problem, counts = _ingest(name, folder)
            row["ingest"] = counts
            if problem is None:
                problem, candidates, seconds = _correlate(name, truth)
                row["seconds"] = round(seconds, 2)
                row["candidates"] = candidates[:5]
                if problem is None:
                    row.update(score_report(truth, candidates))
            row["problem"] = problem
            rows.append(row)
    incidents = [r for r in rows if r["truth"] is not None and r["problem"] is None]
    healthy = [r for r in rows if r["truth"] is None and r["problem"] is None]
    summary = {
        "scenarios": rows,
        "incident_scenarios": len(incidents),
        "ac_at_1": (sum(1 for r in incidents if r["rank"] == 1) / len(incidents)) if incidents else None,
        "ac_at_3": (sum(1 for r in incidents if r["rank"] is not None and r["rank"] <= 3) / len(incidents))
        if incidents
        else None,
        "mechanism_top3": (sum(1 for r in incidents if r["mechanism_top3"]) / len(incidents))
        if incidents
        else None,
        "healthy_max_score": max((r["top_score"] for r in healthy), default=None),
    }
    return summary


def _print(summary: dict[str, Any]) -> None:
    print(f"{'scenario':<20} {'true service':<14} {'rank':>4} {'mech@3':>6} {'secs':>5}  top candidates")
    for r in summary["scenarios"]:
        truth = r["truth"]["service"] if r["truth"] else "(none)"
        if r["problem"]:
            print(f"{r['scenario']:<20} {truth:<14} {'-':>4} {'-':>6} {'-':>5}  {r['problem']}")
            continue
        rank = "-" if r["rank"] is None else str(r["rank"])
        mech = "-" if r["mechanism_top3"] is None else ("yes" if r["mechanism_top3"] else "no")
        top = (
            "; ".join(f"{c['service']}/{c['mechanism']} {c['score']:.2f}" for c in r["candidates"][:3])
            or "no candidates"
        )
        print(f"{r['scenario']:<20} {truth:<14} {rank:>4} {mech:>6} {r['seconds']:>5.1f}  {top}")
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    print(
        f"AC@1 {fmt(summary['ac_at_1'])}  AC@3 {fmt(summary['ac_at_3'])}  "
        f"mechanism in top 3 {fmt(summary['mechanism_top3'])}  "
        f"over {summary['incident_scenarios']} incident scenarios; "
        f"healthy max score {fmt(summary['healthy_max_score'])} (bar <= 0.50)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/rca.py", description="AC@1/AC@3 of correlate over the scenarios"
    )
    parser.add_argument("--scenario", action="append", help="only this scenario (repeatable)")
    parser.add_argument(
        "--scale", type=float, default=None, help="generate at this scale instead of the fixtures"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if args.scale is not None and args.scale <= 0:
        parser.error("--scale must be positive")
    summary = run(args)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
