"""The native OTLP/JSON scan alone: CPU-seconds a GB and MB/s of ingest/_otlpscan.c on a dump.

    python bench/scan.py FILE...                  # the scan alone, 4 MiB line-aligned blocks
    python bench/scan.py FILE --batches           # also the Arrow batches (otlp_fast._native_chunk)
    python bench/scan.py                          # bench/ingest.py's cached dump, if there is one
    python bench/scan.py FILE --so old.so --so new.so   # two builds of the scanner, in turn

Reads the file into memory first (not timed), cuts it into the blocks the ingest's workers get,
and times the scan of every block in this one process: CPU-seconds (user + system, from
getrusage) are the figure that survives a shared machine; wall-clock MB/s is printed beside them.
`--repeat N` scans N times and keeps the fastest pass. Prints spans, log records and the lines the
native tier declined (left to the Python tiers), so a faster scan that declines more shows it.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BLOCK_BYTES = 4 << 20  # what the parallel ingest hands a worker


def _blocks(data: bytes, size: int) -> list[memoryview]:
    view, out, pos = memoryview(data), [], 0
    while pos < len(data):
        end = data.find(b"\n", min(pos + size, len(data)) - 1)
        end = len(data) if end < 0 else end + 1
        out.append(view[pos:end])
        pos = end
    return out


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _load(so: Path) -> ModuleType:
    """A build of ingest/_otlpscan.c other than the installed one, standing in for it."""
    spec = importlib.util.spec_from_file_location("_otlpscan", so)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{so}: not a loadable extension module")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def scan_file(path: Path, repeat: int, batches: bool, mod: ModuleType) -> str:
    from ingest import otlp_fast
    from ingest.records import SourceInfo

    otlp_fast._otlpscan = mod  # type: ignore[assignment]
    scan = mod.scan
    data = path.read_bytes()
    blocks = _blocks(data, BLOCK_BYTES)
    best = None
    for _ in range(repeat):
        spans = logs = declined = 0
        c0, w0 = _cpu(), time.perf_counter()
        if batches:
            src = SourceInfo("bench", path.name)
            first = 1
            for b in blocks:
                s, lg, left, nlines = otlp_fast._native_chunk(bytes(b), first, src, True)
                spans += s.num_rows if s is not None else 0
                logs += lg.num_rows if lg is not None else 0
                declined += len(left)
                first += nlines
        else:
            for b in blocks:
                r = scan(b, otlp_fast._NATIVE_PROMOTED)
                spans += r[0]
                logs += r[8]
                declined += len(r[3])
        cpu, wall = _cpu() - c0, time.perf_counter() - w0
        if best is None or cpu < best[0]:
            best = (cpu, wall)
    cpu, wall = best  # type: ignore[misc]
    gb = len(data) / 1e9
    what = "scan+batches" if batches else "scan"
    return (
        f"{path.name}: {len(data) / 1e6:.0f} MB, {what}: {cpu / gb:.2f} CPU-s/GB "
        f"({len(data) / 1e6 / cpu:.0f} MB/s a core), wall {len(data) / 1e6 / wall:.0f} MB/s; "
        f"{spans} spans ({spans / gb / 1e6:.2f} M/GB), {logs} logs, {declined} lines declined"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=1, help="passes; the fastest is printed")
    ap.add_argument("--batches", action="store_true", help="time the Arrow batches too (_native_chunk)")
    ap.add_argument("--so", type=Path, action="append", help="a build of the scanner to time (repeatable)")
    args = ap.parse_args(argv)
    from ingest import otlp_fast

    if otlp_fast._otlpscan is None:
        print("the native tier is not built (pip install -e . with a C compiler)", file=sys.stderr)
        return 2
    files = args.files or [
        Path(p)
        for p in sorted(glob.glob(os.path.join(tempfile.gettempdir(), "dcr-bench", "collector-*.jsonl")))[-1:]
    ]
    if not files:
        print("no dump: name one, or run bench/ingest.py once to cache its dump", file=sys.stderr)
        return 2
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    builds = [(str(so), _load(so)) for so in args.so] if args.so else [("installed", otlp_fast._otlpscan)]
    for f in files:
        for label, mod in builds:
            print(f"[{label}] {scan_file(f, args.repeat, args.batches, mod)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
