"""Mutation fuzz of the native OTLP/JSON tier, under AddressSanitizer and UBSan.

    python bench/fuzz_native.py                      # 20,000 inputs, seed 1
    python bench/fuzz_native.py --runs 100000 --seed 7

Builds ingest/_otlpscan.c with -fsanitize=address,undefined into a temporary folder, then (in
a child process with libasan preloaded) mutates real span and log lines (the committed scenarios and
a bench dump if one is cached) byte by byte -- flips, insertions of JSON punctuation, escapes,
invalid UTF-8, truncations, splices -- and decodes each mutant with and without the native
tier. It fails on a sanitizer report, and on any difference between the two chunks (rows,
rejects, line counts): a line the native tier takes must come out as the Python tiers write it.
Prints how many mutants the native tier took, declined, and how many differed.
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ALPHABET = b'{}[]:,"\\ntu0123456789abcdefABCDEF.-+eE \x00\x1f\x7f\x80\xc3\xa9\xed\xa0\x80\xf0\x9f\x98\x80'
SPLICES = [
    b"\\u",
    b"\\ud800",
    b"\\udc00\\u0041",
    b'\\"',
    b"null",
    b"1e400",
    b"-0",
    b'"\\u0000"',
    b"[[[[[[[[",
    b'{"values":[{"key":"a"}]}',
    b'"key":"http.route"',
    b'"intValue":"12"',
    b'"doubleValue":1e-7',
]


def _build(out: Path) -> Path:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    so = out / f"_otlpscan{suffix}"
    subprocess.run(
        [
            "gcc",
            "-O1",
            "-g",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=undefined",
            "-fno-omit-frame-pointer",
            "-std=c11",
            "-shared",
            "-fPIC",
            f"-I{sysconfig.get_paths()['include']}",
            str(REPO / "ingest" / "_otlpscan.c"),
            "-o",
            str(so),
        ],
        check=True,
    )
    return so


def _libasan() -> str:
    return subprocess.run(
        ["gcc", "-print-file-name=libasan.so"], check=True, capture_output=True, text=True
    ).stdout.strip()


def _seeds() -> list[bytes]:
    lines: list[bytes] = []
    for f in sorted(glob.glob(str(REPO / "fixtures" / "scenarios" / "*" / "*.jsonl"))):
        lines += [ln for ln in Path(f).read_bytes().split(b"\n")[:6] if ln]
    for f in sorted(glob.glob(os.path.join(tempfile.gettempdir(), "dcr-bench", "collector-*.jsonl")))[:1]:
        with open(f, "rb") as fh:
            lines += [ln[:30000] for ln in fh.read(400_000).split(b"\n")[:3] if ln]
    return lines


def _mutate(rng: random.Random, line: bytes) -> bytes:
    s = bytearray(line)
    for _ in range(rng.randint(1, 8)):
        op, i = rng.random(), rng.randrange(len(s) + 1)
        if op < 0.3 and s:
            s[min(i, len(s) - 1)] = rng.choice(ALPHABET)
        elif op < 0.5:
            s[i:i] = bytes([rng.choice(ALPHABET)])
        elif op < 0.65 and s:
            del s[i : i + rng.randint(1, 20)]
        elif op < 0.72:
            s = s[:i]
        elif op < 0.85:
            j = rng.randrange(len(s) + 1)
            s[i:i] = s[j : j + rng.randint(1, 200)]
        else:
            s[i:i] = rng.choice(SPLICES)
    return bytes(s)


def _child(so: str, runs: int, seed: int) -> int:
    import importlib.util

    spec = importlib.util.spec_from_file_location("ingest._otlpscan", so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["ingest._otlpscan"] = mod  # the sanitized build stands in for the installed one
    sys.path.insert(0, str(REPO))
    import pyarrow as pa

    from ingest import otlp_fast
    from ingest.records import SourceInfo

    assert otlp_fast._otlpscan is mod
    src = SourceInfo("fuzz", "fuzz.jsonl")

    def table_rows(b: pa.RecordBatch | None) -> list:
        if b is None or not b.num_rows:
            return []
        t = pa.Table.from_batches([b])
        t = pa.table(
            {
                f.name: (
                    t.column(f.name).cast(pa.string()) if pa.types.is_dictionary(f.type) else t.column(f.name)
                )
                for f in t.schema
            }
        )
        return sorted(t.to_pylist(), key=repr)

    def rows(chunk: object) -> tuple:
        rejects = [(r.offset, r.reason, r.raw) for r in chunk.rejects]  # type: ignore[attr-defined]
        return table_rows(chunk.spans), table_rows(chunk.logs), rejects  # type: ignore[attr-defined]

    rng = random.Random(seed)
    seeds = _seeds()
    took = declined = differed = 0
    for _ in range(runs):
        a, b = _mutate(rng, rng.choice(seeds)), _mutate(rng, rng.choice(seeds))
        data = a + b"\n" + b + b"\n"
        _n, _lines, _groups, left, *_ = mod.scan(data, otlp_fast._NATIVE_PROMOTED)
        took += 2 - len(left)
        declined += len(left)
        compact = rng.random() < 0.5
        os.environ[otlp_fast.NATIVE_ENV] = "1"
        with_native = otlp_fast.decode_lines_fast(data, 1, src, compact=compact)
        os.environ[otlp_fast.NATIVE_ENV] = "0"
        without = otlp_fast.decode_lines_fast(data, 1, src, compact=compact)
        if rows(with_native[0]) != rows(without[0]) or with_native[1] != without[1]:
            differed += 1
            if differed <= 3:
                print("DIFFERS:", data[:400])
    print(
        f"mutants: {2 * runs} lines, native took {took}, declined {declined}; chunks that differed: {differed}"
    )
    return 1 if differed else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20_000, help="mutant pairs to decode")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.exit(_child(args.child, args.runs, args.seed))
    with tempfile.TemporaryDirectory() as tmp:
        so = _build(Path(tmp))
        env = {
            **os.environ,
            "LD_PRELOAD": _libasan(),
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        p = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(so),
                "--runs",
                str(args.runs),
                "--seed",
                str(args.seed),
            ],
            env=env,
        )
        print("sanitizers: clean" if p.returncode == 0 else f"FAILED (exit {p.returncode})")
        sys.exit(p.returncode)


if __name__ == "__main__":
    main()
