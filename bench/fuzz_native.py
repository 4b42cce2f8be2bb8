"""Mutation fuzz of the native OTLP/JSON tier, under AddressSanitizer and UBSan.

    python bench/fuzz_native.py                      # 20,000 inputs, seed 1
    python bench/fuzz_native.py --runs 100000 --seed 7
    python bench/fuzz_native.py --seconds 20 --fixtures-only   # what tests/test_native_fuzz.py runs

Builds ingest/_otlpscan.c with -fsanitize=address,undefined into a temporary folder, then (in
a child process with libasan preloaded) mutates real span and log lines (the committed scenarios and
a bench dump if one is cached) byte by byte -- flips, insertions of JSON punctuation, escapes,
invalid UTF-8, truncations, splices -- and decodes each mutant with and without the native
tier. A third of the mutants are gentle (a digit, letter or hex digit changed, a character or
escape put inside a string) so that the native tier takes them and its fast paths are compared
too, not only its refusals. It fails on a sanitizer report, and on any difference between the two
chunks (rows, rejects, line counts): a line the native tier takes must come out as the Python
tiers write it. Prints how many mutants the native tier took, declined, and how many differed.

From Python (tests/test_native_fuzz.py): `build_sanitized(folder)`, then `run(so, runs, seed,
seconds, fixtures_only)`, which runs the child with the sanitizer runtime preloaded.
"""

from __future__ import annotations

import argparse
import base64
import glob
import os
import random
import re
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


def build_sanitized(out: Path, module: str = "_otlpscan") -> Path:
    """ingest/<module>.c built with ASan and UBSan (UB aborts) into `out`; gcc must exist."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    so = out / f"{module}{suffix}"
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
            str(REPO / "ingest" / f"{module}.c"),
            "-o",
            str(so),
        ],
        check=True,
    )
    return so


def libasan() -> str:
    """The path of gcc's ASan runtime; a bare "libasan.so" when gcc has none installed."""
    return subprocess.run(
        ["gcc", "-print-file-name=libasan.so"], check=True, capture_output=True, text=True
    ).stdout.strip()


def sanitizer_env() -> dict[str, str]:
    """The environment of a child that loads a sanitized build: ASan's runtime preloaded, any
    report fatal, and Python's objects and Arrow's buffers from malloc (which ASan watches)
    rather than pymalloc's arenas and jemalloc."""
    return {
        **os.environ,
        "LD_PRELOAD": libasan(),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "OPENBLAS_NUM_THREADS": "1",
        "ARROW_DEFAULT_MEMORY_POOL": "system",
        "PYTHONMALLOC": "malloc",
    }


def run(so: Path, runs: int, seed: int, seconds: float = 0.0, fixtures_only: bool = False) -> int:
    """The fuzz child on a sanitized build `so`: its exit code (0: no difference, no report)."""
    env = sanitizer_env()
    cmd = [sys.executable, __file__, "--child", str(so), "--runs", str(runs), "--seed", str(seed)]
    cmd += ["--seconds", str(seconds)] + (["--fixtures-only"] if fixtures_only else [])
    return subprocess.run(cmd, env=env).returncode


_KINDS = [b"UNSPECIFIED", b"INTERNAL", b"SERVER", b"CLIENT", b"PRODUCER", b"CONSUMER"]
_CODES = [b"UNSET", b"OK", b"ERROR"]


def _tempo(line: bytes) -> bytes:
    """A span line as Tempo writes it: "batches", base64 ids, kind and status code names."""

    def b64(m: re.Match[bytes]) -> bytes:
        return m.group(1) + base64.b64encode(bytes.fromhex(m.group(2).decode())) + b'"'

    line = re.sub(rb'("(?:traceId|spanId|parentSpanId)":")([0-9a-f]{16,32})"', b64, line)
    line = re.sub(rb'"kind":([0-5])', lambda m: b'"kind":"SPAN_KIND_' + _KINDS[int(m.group(1))] + b'"', line)
    line = re.sub(
        rb'"code":([0-2])', lambda m: b'"code":"STATUS_CODE_' + _CODES[int(m.group(1))] + b'"', line
    )
    return line.replace(b'"resourceSpans"', b'"batches"', 1)


def _seeds(fixtures_only: bool) -> list[bytes]:
    lines: list[bytes] = []
    for f in sorted(glob.glob(str(REPO / "fixtures" / "scenarios" / "*" / "*.jsonl"))):
        lines += [ln for ln in Path(f).read_bytes().split(b"\n")[:6] if ln]
    lines += [_tempo(ln) for ln in lines if b'"resourceSpans"' in ln][:6]
    if fixtures_only:
        return lines
    for f in sorted(glob.glob(os.path.join(tempfile.gettempdir(), "dcr-bench", "collector-*.jsonl")))[:1]:
        with open(f, "rb") as fh:
            lines += [ln[:30000] for ln in fh.read(400_000).split(b"\n")[:3] if ln]
    return lines


GENTLE = [
    b"0",
    b"1",
    b"9",
    b"a",
    b"f",
    b"A",
    b"z",
    b".",
    b"-",
    b"e",
    b"\\n",
    b"\\u00e9",
    b"\\/",
    "é".encode(),
]


def _gentle(rng: random.Random, line: bytes) -> bytes:
    """A mutant that mostly stays valid OTLP: a digit, letter or hex digit replaced, or a
    character or escape put inside a string (the native tier takes many of these)."""
    s = bytearray(line)
    for _ in range(rng.randint(1, 3)):
        for _tries in range(20):
            i = rng.randrange(len(s)) if s else 0
            if s and (chr(s[i]).isalnum() or s[i] == ord(".")):
                break
        else:
            return bytes(s)
        c = s[i]
        if chr(c).isdigit() and rng.random() < 0.7:
            s[i] = ord(rng.choice("0123456789"))
        elif rng.random() < 0.5:
            s[i : i + 1] = rng.choice(GENTLE)
        else:
            s[i:i] = rng.choice(GENTLE)
    return bytes(s)


def _mutate(rng: random.Random, line: bytes) -> bytes:
    if rng.random() < 0.35:
        return _gentle(rng, line)
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


def _child(so: str, runs: int, seed: int, seconds: float, fixtures_only: bool) -> int:
    import importlib.util
    import time

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
    seeds = _seeds(fixtures_only)
    took = declined = differed = done = 0
    deadline = time.monotonic() + seconds if seconds > 0 else float("inf")
    for _ in range(runs):
        if time.monotonic() > deadline:
            break
        done += 1
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
        f"mutants: {2 * done} lines, native took {took}, declined {declined}; chunks that differed: {differed}"
    )
    return 1 if differed else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20_000, help="mutant pairs to decode")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: no limit)")
    ap.add_argument("--fixtures-only", action="store_true", help="seed lines from fixtures/ only")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.exit(_child(args.child, args.runs, args.seed, args.seconds, args.fixtures_only))
    with tempfile.TemporaryDirectory() as tmp:
        rc = run(build_sanitized(Path(tmp)), args.runs, args.seed, args.seconds, args.fixtures_only)
        print("sanitizers: clean" if rc == 0 else f"FAILED (exit {rc})")
        sys.exit(rc)


if __name__ == "__main__":
    main()
