"""`dcr ingest PATH… [--dataset NAME] [--json]`: trace and log dumps into a dataset."""

from __future__ import annotations

import argparse
import sys

from mcp_server.output import emit_json, info, warn

NAME = "ingest"
HELP = "ingest trace/log files, folders, globs or '-' (stdin) into a dataset"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, folders (recursive), globs, or - for stdin"
    )
    p.add_argument(
        "--dataset", default="default", metavar="NAME", help="dataset to add to (default: default)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _progress_bar():  # a rich bar on stderr, only for a terminal
    if not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
        console=Console(stderr=True),
    )
    task = bar.add_task("ingest", total=None)

    def update(done: int, total: int, path: str) -> None:
        bar.update(task, completed=done, total=total or None, description=path[-40:])

    return bar, update


def human_bytes(n: int) -> str:
    """'512 B', '38.1 KB', '4.5 MB', '1.20 GB': a small input is not '0.0 MB'."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.2f} {unit}" if unit == "GB" else f"{value:.1f} {unit}"
    return f"{n} B"


def run(args: argparse.Namespace) -> int:
    import ingest

    bar, update = _progress_bar()
    try:
        if bar is not None:
            bar.start()
        result = ingest.ingest_paths(args.paths, args.dataset, update, on_wait=info)
    finally:
        if bar is not None:
            bar.stop()
    if args.json:
        emit_json(result.to_dict())
    else:
        compressed = sorted({s.compression for s in result.sources if s.compression})
        read = human_bytes(result.bytes) + (f" ({', '.join(compressed)})" if compressed else "")
        print(
            f"dataset {result.dataset}: +{result.spans} spans, +{result.logs} logs, {result.rejected} rejected, "
            f"{result.duplicates} duplicate spans skipped, {read} in {result.seconds:.2f} s"
        )
        for s in result.sources:
            if s.skipped and not s.skipped.startswith("unreadable"):
                info(f"  {s.path}: skipped ({s.skipped})")
    for s in result.sources:  # on stderr with --json too: a source that could not be read whole
        if s.skipped and s.skipped.startswith("unreadable"):
            warn(f"{s.path}: {s.skipped}; skipped, the other inputs were ingested")
        if s.problem:
            warn(f"{s.path}: {s.problem}")
    if result.rejected:
        warn(
            f"{result.rejected} record{'' if result.rejected == 1 else 's'} rejected; see {result.rejects_path}"
        )
    return 0
