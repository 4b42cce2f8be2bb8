"""`dcr demo`: the main job on the bundled fixtures, offline unless a key is set.

1. ingest the bundled public fixtures into dataset "demo" (format coverage)
2. ingest a recorded scenario (fixtures/scenarios/<name>) into dataset "demo-<name>"
3. correlate its incident window against its baseline (the windows of its truth.json)
4. escalate with that evidence: Gemini when GEMINI_API_KEY is set, else the offline report
5. print the report (or, with --json, one JSON object with every step)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from correlate.times import format_ns
from mcp_server.errors import UsageError
from mcp_server.output import emit_json, info

NAME = "demo"
HELP = "run the main job on the bundled fixtures (offline unless a key is set)"
DATASET = "demo"


def fixtures_root() -> Path:
    """The bundled fixtures: a source checkout's fixtures/, else the copy an install from the
    repository carries as package data (mcp_server/fixtures: `uvx --from REPO dcr demo`)."""
    here = Path(__file__).resolve().parents[1]
    checkout = here.parent / "fixtures"
    return checkout if (checkout / "scenarios").is_dir() else here / "fixtures"


FIXTURES = fixtures_root() / "public"
SCENARIOS = fixtures_root() / "scenarios"
SCENARIO = "dependency_failure"
TOP = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument(
        "--scenario",
        default=SCENARIO,
        metavar="NAME",
        help=f"recorded scenario to investigate (a folder of fixtures/scenarios; default {SCENARIO})",
    )


def ingest_fixtures(dataset: str = DATASET) -> dict:
    """Ingest the bundled public fixtures into `dataset`; its summary."""
    import ingest

    if not FIXTURES.is_dir():
        raise UsageError(
            f"bundled fixtures not found at {FIXTURES}: run from a source checkout or install from the "
            "repository (uvx --from REPO dcr demo)"
        )
    ingest.ingest_paths([str(FIXTURES)], dataset)
    return ingest.dataset_summary(dataset)


def _scenario(name: str) -> tuple[Path, dict[str, Any]]:
    folder = SCENARIOS / name
    truth = folder / "truth.json"
    if not truth.is_file():
        known = sorted(p.parent.name for p in SCENARIOS.glob("*/truth.json"))
        raise UsageError(f"no scenario {name!r} in {SCENARIOS} (known: {', '.join(known) or 'none'})")
    return folder, json.loads(truth.read_text(encoding="utf-8"))


def investigate(name: str) -> dict[str, Any]:
    """Ingest, correlate and escalate one recorded scenario; each step's result."""
    import correlate
    import escalation
    import ingest

    folder, truth = _scenario(name)
    dataset = f"{DATASET}-{name}"
    w = truth["window"]
    window = correlate.Window(w["incident_start_ns"], w["incident_end_ns"])
    baseline = correlate.Window(w["baseline_start_ns"], w["baseline_end_ns"])
    added = ingest.ingest_paths([str(folder / "traces.jsonl"), str(folder / "logs.jsonl")], dataset)
    with correlate.open_dataset(dataset) as ds:
        report = ds.correlate(window, baseline, ())
    onset = format_ns(window.start_ns)
    request = escalation.EscalationRequest(
        question=f"Requests have been failing or slow since {onset}. Which service is the root cause, "
        "by which mechanism, and what should we fix first?",
        dataset=dataset,
        window=window,
        baseline=baseline,
        analysis_type="cross_system",
        context=escalation.AgentContext(stuck_description=f"the {name} incident that starts at {onset}"),
    )
    result = escalation.escalate(request)
    from escalation.html_report import default_report_path, write_html_report

    with correlate.open_dataset(dataset) as ds:
        page = write_html_report(ds, report, default_report_path(dataset), analysis=result.report_markdown)
    return {
        "dataset": dataset,
        "ingest": added.to_dict(),
        "correlation": report,
        "escalation": result,
        "html_report": page,
    }


def _print_investigation(name: str, done: dict[str, Any]) -> None:
    added, report, result = done["ingest"], done["correlation"], done["escalation"]
    print(
        f"\nscenario {name}: dataset {done['dataset']!r}, {added['spans']} spans and {added['logs']} logs "
        f"added, {added['rejected']} rejected"
    )
    base = report.baseline
    print(
        f"correlated {format_ns(report.window.start_ns)} .. {format_ns(report.window.end_ns)} against "
        + (f"{format_ns(base.start_ns)} .. {format_ns(base.end_ns)}" if base else "no baseline")
        + f" in {report.seconds:.2f} s; top candidates:"
    )
    for i, c in enumerate(report.candidates[:TOP], 1):
        print(f"  {i}. {c.score:.2f} {c.service}{f' {c.operation}' if c.operation else ''} [{c.mechanism}]")
    print()
    print(result.report_markdown.rstrip("\n"))
    page = done["html_report"]
    info(
        f"escalation: provider {result.provider} ({result.model}), {result.bundle_tokens:,} bundle tokens, "
        f"{result.latency_s:.1f} s; bundle saved at {result.bundle_path}"
    )
    info(f"HTML report (open it in a browser): {page.path}")


def run(args: argparse.Namespace) -> int:
    _scenario(args.scenario)  # an unknown name is refused before any work
    summary = ingest_fixtures()
    done = investigate(args.scenario)
    if args.json:
        emit_json({"dataset": summary, "scenario": {"name": args.scenario, **done}})
        return 0
    tr = summary["time_range"]
    info(f"ingested the bundled fixtures into dataset {summary['dataset']!r} ({summary['path']})")
    print(
        f"spans {summary['spans']}, logs {summary['logs']}, rejected {summary['rejected']}, "
        f"services {len(summary['services'])}, sources {len(summary['sources'])}"
    )
    if tr.get("start_ns") is not None:
        print(f"time range {format_ns(tr['start_ns'])} .. {format_ns(tr['end_ns'])}")
    _print_investigation(args.scenario, done)
    return 0
