"""How long headless Chromium takes to render the HTML report of a 20,000-span trace.

    python bench/report_render.py [--spans N] [--runs K]

Generates an OTLP/JSON dump (one giant trace of N spans over 12 services in the window, and
ordinary small traces of the same root operation in the baseline), ingests it, writes the report
with the giant trace's waterfall, then loads the file in Debian's headless chromium K times and
prints the time from navigation to the load event (the page is static: every picture is drawn by
then), the file's size and how many spans were drawn and folded. Goal: under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

S = 1_000_000_000
T0 = 1_750_000_000 * S
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _span(tid: str, sid: str, parent: str | None, name: str, start: int, end: int, err: bool = False) -> dict:
    out = {
        "traceId": tid,
        "spanId": sid,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": [
            {"key": "db.statement", "value": {"stringValue": f"SELECT * FROM t WHERE id = {sid[-4:]}"}}
        ],
        "status": {"code": 2} if err else {},
    }
    if parent:
        out["parentSpanId"] = parent
    return out


def _doc(spans_by_service: dict[str, list[dict]]) -> str:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]},
                    "scopeSpans": [{"spans": spans}],
                }
                for svc, spans in spans_by_service.items()
            ]
        }
    )


def write_dump(path: Path, n: int, rng: random.Random) -> str:
    """The dump; returns the giant trace's id."""
    services = [f"svc-{i:02d}" for i in range(12)]
    lines = []
    for k in range(30):  # baseline: small traces of the same root operation
        tid = f"{k + 1:032x}"
        start = T0 + k * S
        by: dict[str, list[dict]] = {
            "gateway": [_span(tid, f"{1:016x}", None, "GET /batch", start, start + 40_000_000)]
        }
        for j in range(2, 10):
            by.setdefault(services[j % 12], []).append(
                _span(
                    tid,
                    f"{j:016x}",
                    f"{1:016x}",
                    f"op-{j % 5}",
                    start + j * 1_000_000,
                    start + j * 1_000_000 + 3_000_000,
                )
            )
        lines.append(_doc(by))
    tid = "f" * 32
    start = T0 + 60 * S
    by = {"gateway": [_span(tid, f"{1:016x}", None, "GET /batch", start, start + 9 * S)]}
    parents = [1]
    for j in range(2, n + 1):
        parent = rng.choice(parents[-200:]) if rng.random() < 0.7 else rng.choice(parents)
        s0 = start + (j * 9 * S) // (n + 2)
        by.setdefault(services[j % 12], []).append(
            _span(
                tid,
                f"{j:016x}",
                f"{parent:016x}",
                f"op-{j % 17}",
                s0,
                s0 + rng.randint(100_000, 30_000_000),
                err=rng.random() < 0.002,
            )
        )
        parents.append(j)
    lines.append(_doc(by))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tid


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} not found: apt-get install chromium", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DCR_HOME"] = str(Path(tmp) / "home")
        from correlate import Window, open_dataset
        from escalation.html_report import write_html_report
        from ingest import ingest_paths

        dump = Path(tmp) / "big.jsonl"
        tid = write_dump(dump, args.spans, random.Random(7))
        ingest_paths([str(dump)], "big")
        began = time.perf_counter()
        with open_dataset("big") as ds:
            report = ds.correlate(Window(T0 + 60 * S, T0 + 120 * S), Window(T0, T0 + 60 * S))
            page_info = write_html_report(ds, report, Path(tmp) / "big.html", trace_id=tid)
        write_s = time.perf_counter() - began
        wf = page_info.holds["waterfalls"]["window"]
        times = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for _ in range(args.runs):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                t = time.perf_counter()
                page.goto(Path(page_info.path).as_uri(), wait_until="load")
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                times.append(time.perf_counter() - t)
                page.close()
            browser.close()
    print(
        f"trace of {wf['spans']:,} spans: {wf['shown']:,} drawn, {wf['folded']:,} folded; "
        f"file {page_info.bytes / 1e6:.2f} MB; correlate + write {write_s:.2f} s"
    )
    print(
        f"chromium, navigation to first painted frame after load, {args.runs} runs: "
        f"median {statistics.median(times):.3f} s, max {max(times):.3f} s (goal: < 2 s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
