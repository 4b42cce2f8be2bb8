"""Alternated ingests of one dump by two versions of the code: the CPU and wall time of each.

    python bench/ab.py BASE DUMP [--runs 4]      # BASE: a git revision; against the working tree

This VM's speed drifts by 10 % or more within an hour, more than most single changes are worth,
so one run of each version says little. This runs `dcr ingest` on DUMP with the working tree
and with BASE (checked out in a temporary worktree) in turn, A B B A A B ..., each into a fresh
DCR_HOME, and prints both versions' medians and every run's CPU seconds (user + system of the
process tree: the figure that depends least on what else runs) and wall seconds.

BASE's native extensions (ingest/*.c) are compiled for it with the C compiler (-O2, as
pyproject.toml builds them), or taken from the working tree when its C files are the same.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _native(tree: Path, base: str) -> None:
    """The native extensions of `tree` (BASE's checkout): copied when BASE's C is the working
    tree's, else compiled."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for c in sorted((tree / "ingest").glob("_*.c")):
        built = REPO / "ingest" / f"{c.stem}{suffix}"
        mine = REPO / "ingest" / c.name
        if built.exists() and mine.exists() and mine.read_bytes() == c.read_bytes():
            shutil.copy2(built, tree / "ingest" / built.name)
            continue
        cc = sysconfig.get_config_var("CC").split()
        include = sysconfig.get_paths()["include"]
        out = tree / "ingest" / f"{c.stem}{suffix}"
        subprocess.run(
            [*cc, "-O2", "-std=c11", "-shared", "-fPIC", f"-I{include}", str(c), "-o", str(out)], check=True
        )
    print(f"{base}: native extensions ready in {tree}", file=sys.stderr)


def _ingest(tree: Path, dump: Path, home: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one `dcr ingest` of `dump` by the code in `tree`."""
    shutil.rmtree(home, ignore_errors=True)
    env = dict(os.environ, DCR_HOME=str(home), PYTHONPATH=str(tree))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mcp_server.cli", "ingest", str(dump), "--dataset", "ab"],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    shutil.rmtree(home, ignore_errors=True)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", help="the git revision to compare the working tree with")
    ap.add_argument("dump", type=Path, help="the file to ingest (bench/ingest.py caches its dumps)")
    ap.add_argument("--runs", type=int, default=4, help="runs of each version (default 4)")
    args = ap.parse_args(argv)
    if not args.dump.is_file():
        print(f"ab.py: no such file: {args.dump}", file=sys.stderr)
        return 2
    try:
        rev = _git("rev-parse", "--short", args.base).strip()
    except subprocess.CalledProcessError:
        print(f"ab.py: not a revision: {args.base}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="dcr-ab-") as tmp:
        tree = Path(tmp) / "base"
        _git("worktree", "add", "--detach", "--quiet", str(tree), rev)
        try:
            _native(tree, rev)
            versions = {"working tree": REPO, rev: tree}
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in versions}
            for i in range(args.runs):
                order = list(versions.items())
                for name, code in order if i % 2 == 0 else order[::-1]:
                    runs[name].append(_ingest(code, args.dump, Path(tmp) / "home"))
        finally:
            _git("worktree", "remove", "--force", str(tree))
    print(f"dump: {args.dump} ({args.dump.stat().st_size / 1e6:.0f} MB), {args.runs} runs each, alternated")
    for name, got in runs.items():
        walls, cpus = [w for w, _ in got], [c for _, c in got]
        print(
            f"{name:>12}: CPU median {statistics.median(cpus):6.2f} s, wall median {statistics.median(walls):5.2f} s"
            f"  (CPU {', '.join(f'{c:.2f}' for c in cpus)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
