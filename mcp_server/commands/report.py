"""`dcr report NAME [--start T --end T] [--baseline-start T --baseline-end T] [--service S]… [-o FILE] [--json] [--open]`.

One self-contained HTML file (no network when it is viewed): the verdict, the service map, an
example trace's waterfall beside a baseline trace, latency distributions, changed log templates,
the evidence, and what could not be used. Default path: $DCR_HOME/reports/NAME-<UTC time>.html.
"""

from __future__ import annotations

import argparse
import webbrowser
from pathlib import Path

from mcp_server.commands.correlate import add_window_arguments, correlate_from_args
from mcp_server.output import emit_json, info, warn

NAME = "report"
HELP = "write the incident as one self-contained HTML page: verdict, service map, waterfall, latency, logs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="dataset")
    add_window_arguments(p)
    p.add_argument(
        "--trace", metavar="ID", help="draw this trace's waterfall (default: the top candidate's example)"
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write the page (default: $DCR_HOME/reports/NAME-<time>.html)",
    )
    p.add_argument("--json", action="store_true", help="print path, bytes and what the page holds as JSON")
    p.add_argument("--open", action="store_true", help="open the page in the default browser when written")


def run(args: argparse.Namespace) -> int:
    import correlate
    from escalation.html_report import default_report_path, write_html_report

    with correlate.open_dataset(args.name) as ds:
        report = correlate_from_args(ds, args)
        trace_id = None
        if args.trace:
            trace_id = ds.trace(args.trace).trace_id  # a prefix or an unknown id is refused here
        path = Path(args.output) if args.output else default_report_path(args.name)
        written = write_html_report(ds, report, path, trace_id=trace_id)
    if args.json:
        emit_json(written.to_dict())
    else:
        print(written.path)
        h = written.holds
        info(
            f"report: {written.bytes / 1e6:.2f} MB; {h['candidates']} candidates, {h['services']} services, "
            f"{h['edges']} edges, {len(h['distributions'])} latency charts, {h['log_templates']} log templates"
        )
        for note in h["notes"]:
            info(f"  {note}")
    if args.open and not webbrowser.open(Path(written.path).as_uri()):
        warn("could not open a browser here; open the file above by hand")
    return 0
