"""Root-cause benchmark over real recorded faults: AC@1 and AC@3 of `correlate`, per system and fault.

    python bench/realfaults.py [FOLDER] [--case NAME]... [--keep DIR] [--json]

FOLDER (default ../shared/benchmarks/nezha-dev) holds one folder a case, each with
`traces.jsonl.zst` (and `logs.jsonl.zst` where the system logged) and `truth.json`:
`system`, `fault_type`, `root_cause_service`, `window` and `baseline` ({start, end}, ISO-8601).
Every case is ingested into a fresh dataset (in a temporary DCR_HOME), its window correlated
against its baseline, and services ranked by their first appearance among the candidates.

Prints one line a case (rank of the truth, top 3 with the first one's confidence, and how far the
timeline's onset over the whole recording lands from the injection time), then a table per
system and fault type (AC@1, AC@3, mean and max correlate seconds), how often the first candidate
is right at each confidence level, and how often the onset lands within 5, 15 and 30 s of the
injection. A benchmark: exits 0 whatever the scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = ["run_case", "main"]

DEFAULT_FOLDER = REPO.parent / "shared" / "benchmarks" / "nezha-dev"
CONFIDENCE_LEVELS = ("high", "medium", "low")
ONSET_LIMITS_S = (5, 15, 30)


def _ns(text: str) -> int:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def ranked_services(candidates: list[Any]) -> list[str]:
    """Services in order of their first appearance among the candidates."""
    return list(dict.fromkeys(c.service for c in candidates))


def run_case(folder: Path) -> dict[str, Any]:
    from correlate import Window, open_dataset
    from ingest import ingest_paths

    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    files = [str(p) for p in sorted(folder.glob("*.jsonl*"))]
    name = "rf-" + folder.name
    ingest_paths(files, name)
    window = Window(_ns(truth["window"]["start"]), _ns(truth["window"]["end"]))
    baseline = Window(_ns(truth["baseline"]["start"]), _ns(truth["baseline"]["end"]))
    began = time.perf_counter()
    with open_dataset(name) as ds:
        report = ds.correlate(window, baseline)
        seconds = time.perf_counter() - began
        onset = ds.timeline().onset  # over the whole recording, as an agent without a window would
    inject = _ns(truth.get("inject_time") or truth["window"]["start"])
    services = ranked_services(report.candidates)
    true = truth["root_cause_service"]
    rank = services.index(true) + 1 if true in services else None
    first = report.candidates[0] if report.candidates else None
    return {
        "case": folder.name,
        "system": truth["system"],
        "fault": truth["fault_type"],
        "truth": true,
        "rank": rank,
        "seconds": round(seconds, 2),
        "onset_offset_s": None if onset is None else round((onset.at_ns - inject) / 1e9, 1),
        "top": services[:3],
        "first": None
        if first is None
        else {
            "service": first.service,
            "mechanism": first.mechanism,
            "score": first.score,
            "confidence": getattr(first, "confidence", None),
            "summary": first.summary,
        },
    }


def _ac(rows: list[dict[str, Any]], k: int) -> float:
    return sum(1 for r in rows if r["rank"] is not None and r["rank"] <= k) / len(rows) if rows else 0.0


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["system"], r["fault"])].append(r)
        groups[(r["system"], "all")].append(r)
        groups[("all", r["fault"])].append(r)
        groups[("all", "all")].append(r)
    table = {
        f"{s}/{f}": {
            "cases": len(rs),
            "ac_at_1": round(_ac(rs, 1), 3),
            "ac_at_3": round(_ac(rs, 3), 3),
            "mean_s": round(sum(r["seconds"] for r in rs) / len(rs), 2),
            "max_s": max(r["seconds"] for r in rs),
        }
        for (s, f), rs in sorted(groups.items())
    }
    calib: dict[str, dict[str, Any]] = {}
    for level in CONFIDENCE_LEVELS:
        at = [r for r in rows if r["first"] and r["first"]["confidence"] == level]
        calib[level] = {"cases": len(at), "first_right": sum(1 for r in at if r["rank"] == 1)}
    offsets = [r["onset_offset_s"] for r in rows]
    onset = {
        f"within {lim} s": sum(1 for o in offsets if o is not None and abs(o) <= lim)
        for lim in ONSET_LIMITS_S
    }
    onset["none found"] = sum(1 for o in offsets if o is None)
    return {"cases": rows, "table": table, "confidence": calib, "onset": onset}


def _print(summary: dict[str, Any]) -> None:
    print(
        f"{'case':<18} {'system':<15} {'fault':<14} {'true service':<30} {'rank':>4} {'secs':>5} "
        f"{'conf':<6} {'onset':>6}  top 3"
    )
    for r in summary["cases"]:
        rank = "-" if r["rank"] is None else str(r["rank"])
        conf = (r["first"] or {}).get("confidence") or "-"
        off = "-" if r["onset_offset_s"] is None else f"{r['onset_offset_s']:+.0f}s"
        print(
            f"{r['case']:<18} {r['system']:<15} {r['fault']:<14} {r['truth']:<30} {rank:>4} "
            f"{r['seconds']:>5.2f} {conf:<6} {off:>6}  {', '.join(r['top']) or '(no candidates)'}"
        )
    print()
    print(f"{'system/fault':<32} {'cases':>5} {'AC@1':>5} {'AC@3':>5} {'mean s':>7} {'max s':>6}")
    for key, t in summary["table"].items():
        print(
            f"{key:<32} {t['cases']:>5} {t['ac_at_1']:>5.2f} {t['ac_at_3']:>5.2f} {t['mean_s']:>7.2f} "
            f"{t['max_s']:>6.2f}"
        )
    print()
    print(
        "first candidate right, by its confidence: "
        + "; ".join(f"{lvl} {c['first_right']}/{c['cases']}" for lvl, c in summary["confidence"].items())
    )
    n = len(summary["cases"])
    print(
        "the timeline's onset over the whole recording, against the injection time: "
        + "; ".join(f"{k} {v}/{n}" for k, v in summary["onset"].items())
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/realfaults.py", description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER), help="a folder of case folders")
    parser.add_argument("--case", action="append", help="only this case (repeatable)")
    parser.add_argument("--keep", help="DCR_HOME to keep the datasets in (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    root = Path(args.folder)
    cases = sorted(p for p in root.iterdir() if (p / "truth.json").exists()) if root.is_dir() else []
    if args.case:
        cases = [p for p in cases if p.name in set(args.case)]
    if not cases:
        print(f"realfaults: no case folders (with truth.json) in {root}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="dcr-realfaults-") as tmp:
        os.environ["DCR_HOME"] = args.keep or str(Path(tmp) / "home")
        rows = []
        for case in cases:
            try:
                rows.append(run_case(case))
            except Exception as exc:  # a benchmark reports a broken case and goes on
                print(f"realfaults: {case.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
    if not rows:
        return 1
    summary = summarise(rows)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
