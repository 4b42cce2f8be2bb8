"""The span de-duplication set alone: CPU-seconds a million keys and peak RSS, by set size.

    python bench/spankeys.py                       # 10 M, 50 M and 150 M keys
    python bench/spankeys.py --keys 10M --dup 0.2  # a fifth of the keys seen before
    python bench/spankeys.py --keys 20M --memory-mb 4   # a small in-memory tier

Keys arrive in batches the size of an ingest chunk (a 4 MiB range of Collector JSON holds about
7 k spans), as the writer hands them over: (n, 6) words of the 48-byte key text. Each size runs
in its own process, so its peak RSS is that of the set (plus the interpreter, ~30 MB, printed
as `baseline`). The keys are generated outside the timed calls; `--dup` mixes in keys of
earlier batches (regenerated from their seed), which must come back as duplicates; a check
that fails stops the run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _count(text: str) -> int:
    t = text.strip().upper()
    mult = {"K": 10**3, "M": 10**6, "G": 10**9}.get(t[-1:], 1)
    return int(float(t.rstrip("KMG")) * mult)


def _batch(np, seed: int, n: int):  # type: ignore[no-untyped-def]
    return np.random.default_rng(seed).integers(0, 2**64, size=(n, 6), dtype=np.uint64)


def run_one(keys: int, batch: int, dup: float, memory_mb: float | None, spill_dir: str) -> dict:
    """Add `keys` fresh keys (plus duplicates) to one set; return the figures."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    from ingest import pipeline
    from ingest.writer import SpanKeys

    pipeline._tune_malloc()  # the ingest's malloc settings (fixed mmap threshold)

    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kwargs: dict = {}
    if memory_mb is not None:
        kwargs["memory_bytes"] = int(memory_mb * 2**20)
    try:
        made = SpanKeys(spill_dir=Path(spill_dir), **kwargs)  # type: ignore[call-arg]
    except TypeError:  # the set of before spilling: memory only
        made = SpanKeys()
    rng = np.random.default_rng(1)
    cpu = wall = 0.0
    added = dups = 0
    nbatches = (keys + batch - 1) // batch
    for b in range(nbatches):
        words = _batch(np, b, min(batch, keys - b * batch))
        ndup = int(len(words) * dup) if b else 0
        if ndup:
            old = _batch(np, int(rng.integers(0, b)), batch)[rng.integers(0, batch, ndup)]
            old = np.unique(old, axis=0)  # one copy each: every one must be reported once
            words = np.concatenate([words, old])
        c0, w0 = time.process_time(), time.perf_counter()
        mask = made.add_new(words)
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        fresh = len(words) - len(old) if ndup else len(words)
        if not (mask[:fresh].all() and not mask[fresh:].any()):
            raise SystemExit(f"wrong answer in batch {b}: a new key dropped or a duplicate kept")
        added += fresh
        dups += len(words) - fresh
    close = getattr(made, "close", None)
    if close is not None:
        close()
    total = added + dups
    return {
        "keys": added,
        "duplicates": dups,
        "cpu_s": round(cpu, 2),
        "cpu_s_per_M": round(cpu / (total / 1e6), 3),
        "keys_per_s": round(total / wall),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "baseline_mb": round(base_kb / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", nargs="*", type=_count, default=[_count(k) for k in ("10M", "50M", "150M")])
    ap.add_argument("--batch", type=int, default=8192, help="keys a call (an ingest chunk: ~7 k)")
    ap.add_argument("--dup", type=float, default=0.0, help="extra share of keys seen before")
    ap.add_argument("--memory-mb", type=float, default=None, help="the set's in-memory budget")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args(argv)
    if args.one:
        with tempfile.TemporaryDirectory(prefix="dcr-spankeys-") as tmp:
            print(json.dumps(run_one(args.keys[0], args.batch, args.dup, args.memory_mb, tmp)))
        return 0
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} before the run")
    for n in args.keys:
        cmd = [sys.executable, __file__, "--one", "--keys", str(n), "--batch", str(args.batch)]
        cmd += ["--dup", str(args.dup)]
        if args.memory_mb is not None:
            cmd += ["--memory-mb", str(args.memory_mb)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out)
        print(
            f"{n / 1e6:6.0f} M keys (+{r['duplicates'] / 1e6:.1f} M dup): {r['keys_per_s'] / 1e6:5.2f} M keys/s  "
            f"CPU {r['cpu_s']:7.1f} s ({r['cpu_s_per_M']:.3f} CPU-s per M keys)  "
            f"peak RSS {r['peak_rss_mb']:7.1f} MB (baseline {r['baseline_mb']:.0f} MB)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
