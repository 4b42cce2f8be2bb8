"""Parity fuzz of the native tier on OTLP/JSON as Go's protojson writes it (Tempo), under ASan/UBSan.

    python bench/fuzz_tempo.py                        # 5,000 mutant pairs, seed 1, sanitized build
    python bench/fuzz_tempo.py --runs 20000 --seed 7
    python bench/fuzz_tempo.py --no-sanitizers        # the installed build (faster)

Seeds: lines of bench/shapes.py's `tempo` shape (base64 ids, enum names, roots without
parentSpanId), and the committed scenarios' span and log lines rewritten as protojson writes them
(ids in base64, kind / status code / severity by name). Mutants: a third targeted at what the
native tier reads for these lines (an id's base64 text changed, cut, lengthened, padded wrongly,
zeroed, url-safe, escaped, in upper-case hex; an enum name changed, prefixed, lower-cased,
digits), a third bench/fuzz_native.py's gentle mutants, a third its byte-level ones. Each block of
two mutants is decoded by the native tier (decode_lines_fast, DCR_NATIVE=1), by the Python tiers
(DCR_NATIVE=0), and by the reference alone (otlp_model.Sink, a line at a time); it fails on any
difference the native tier makes (it differs from the Python tiers, or it took the block and
differs from the reference) and on a sanitizer report; a block where only the Python tiers differ
from the reference (lines the native tier declined) is counted and written to a temporary file,
not failed. Prints how many lines the native tier took.
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
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import fuzz_native  # noqa: E402

KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
CODES = ("UNSET", "OK", "ERROR")
SEVERITIES = {
    base + i - 1: f"SEVERITY_NUMBER_{name}{i if i > 1 else ''}"
    for name, base in (("TRACE", 1), ("DEBUG", 5), ("INFO", 9), ("WARN", 13), ("ERROR", 17), ("FATAL", 21))
    for i in range(1, 5)
}
ID = re.compile(rb'"(traceId|spanId|parentSpanId)":"([0-9a-fA-F]{16}|[0-9a-fA-F]{32})"')
B64_ID = re.compile(rb'"(traceId|spanId|parentSpanId)":"([A-Za-z0-9+/]{11}=|[A-Za-z0-9+/]{22}==)"')
ENUM = re.compile(rb'"(kind|code|severityNumber)":"([A-Z_0-9]*)"')


def protojson(line: bytes) -> bytes:
    """A Collector / SDK line as Go's protojson writes it: base64 ids, enums by name."""
    line = ID.sub(lambda m: b'"%s":"%s"' % (m[1], base64.b64encode(bytes.fromhex(m[2].decode()))), line)
    line = re.sub(rb'"kind":([0-5])\b', lambda m: b'"kind":"SPAN_KIND_%s"' % KINDS[int(m[1])].encode(), line)
    line = re.sub(
        rb'"code":([0-2])\b', lambda m: b'"code":"STATUS_CODE_%s"' % CODES[int(m[1])].encode(), line
    )
    return re.sub(
        rb'"severityNumber":([0-9]+)\b',
        lambda m: (
            b'"severityNumber":"%s"' % SEVERITIES.get(int(m[1]), "SEVERITY_NUMBER_UNSPECIFIED").encode()
        ),
        line,
    )


def seeds() -> list[bytes]:
    from bench.shapes import SHAPES, Gen

    g = Gen(11)
    make = SHAPES["tempo"].line
    assert make is not None
    lines = [make(g, 60_000)[0].encode() for _ in range(12)]
    for f in sorted(glob.glob(str(REPO / "fixtures" / "scenarios" / "*" / "*.jsonl"))):
        lines += [protojson(ln) for ln in Path(f).read_bytes().split(b"\n")[:4] if ln]
    return lines


def _id_text(rng: random.Random, text: bytes) -> bytes:
    """A base64 id's text changed the ways that matter to the reference's reading of it."""
    s = bytearray(text)
    op = rng.randrange(12)
    i = rng.randrange(len(s))
    if op == 0:
        s[i] = rng.choice(b"AZaz09+/=-_ .")
    elif op == 1:
        del s[i]
    elif op == 2:
        s.insert(i, rng.choice(b"A=/"))
    elif op == 3:
        s[-1] = rng.choice(b"A=")
    elif op == 4:  # all zeros
        pad = text.count(b"=")
        return b"A" * (len(s) - pad) + b"=" * pad
    elif op == 5:  # the bits past the last byte
        k = len(s) - 1 - text.count(b"=")
        s[k] = rng.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    elif op == 6:  # hex of the bytes, in either case
        h = base64.b64decode(text).hex().encode()
        return h.upper() if rng.random() < 0.5 else h
    elif op == 7:  # escaped
        return b"\\u00%02x" % s[0] + bytes(s[1:])
    elif op == 8:  # half a trace id's hex (the reference pads it)
        return base64.b64decode(text).hex()[:16].encode()
    elif op == 9:
        s = s.rstrip(b"=")
    return bytes(s)


NAMES = [
    b"SPAN_KIND_SERVER",
    b"SERVER",
    b"SPAN_KIND_",
    b"SPAN_KIND_UNSPECIFIED",
    b"UNSPECIFIED",
    b"span_kind_client",
    b"STATUS_CODE_ERROR",
    b"ERROR",
    b"OK",
    b"STATUS_CODE_",
    b"SEVERITY_NUMBER_INFO",
    b"SEVERITY_NUMBER_INFO1",
    b"SEVERITY_NUMBER_INFO4",
    b"SEVERITY_NUMBER_FATAL5",
    b"SEVERITY_NUMBER_UNSPECIFIED",
    b"SEVERITY_NUMBER_",
    b"INFO",
    b"2",
    b"",
    b"SPAN_KIND_SPAN_KIND_CLIENT",
]


def targeted(rng: random.Random, line: bytes) -> bytes:
    """One to three base64 ids or enum names of the line changed."""
    for _ in range(rng.randint(1, 3)):
        spots = [("id", m) for m in B64_ID.finditer(line)] + [("enum", m) for m in ENUM.finditer(line)]
        if not spots:
            return line
        what, m = rng.choice(spots)
        if what == "id":
            new = _id_text(rng, m[2])
        elif rng.random() < 0.5:
            new = rng.choice(NAMES)
        else:
            new = bytearray(m[2])
            if new:
                new[rng.randrange(len(new))] = rng.choice(b"AZ_2a")
            new = bytes(new)
        line = line[: m.start(2)] + new + line[m.end(2) :]
    return line


def _child(so: str, runs: int, seed: int) -> int:
    import importlib.util

    if so:
        spec = importlib.util.spec_from_file_location("ingest._otlpscan", so)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules["ingest._otlpscan"] = mod  # the sanitized build stands in for the installed one
    import pyarrow as pa

    from ingest import otlp_fast
    from ingest import otlp_model as om
    from ingest.records import SourceInfo

    scan = otlp_fast._otlpscan
    assert scan is not None and (not so or scan.__file__ == so)
    src = SourceInfo("fuzz", "fuzz.jsonl")

    def table_rows(b: pa.RecordBatch | None) -> list:
        if b is None or not b.num_rows:
            return []
        cols = {
            f.name: (
                b.column(f.name).cast(pa.string()) if pa.types.is_dictionary(f.type) else b.column(f.name)
            )
            for f in b.schema
        }
        names = sorted(cols)
        return sorted(zip(*(cols[n].to_pylist() for n in names), strict=True), key=repr)

    def rows(chunk: object) -> tuple:
        rejects = [(r.offset, r.reason, r.raw) for r in chunk.rejects]  # type: ignore[attr-defined]
        return table_rows(chunk.spans), table_rows(chunk.logs), rejects  # type: ignore[attr-defined]

    def reference(data: bytes) -> object:
        sink = om.Sink(src, "line")
        for n, line in enumerate(data.split(b"\n"), 1):
            if line.strip():
                sink.take_line(line, n)
        return sink.chunk()

    rng = random.Random(seed)
    pool = seeds()
    took = declined = differed = python_differed = 0
    for _ in range(runs):
        pair = []
        for _ in range(2):
            line, r = rng.choice(pool), rng.random()
            pair.append(
                targeted(rng, line) if r < 0.4 else fuzz_native._mutate(rng, line) if r < 0.9 else line
            )
        data = pair[0] + b"\n" + pair[1] + b"\n"
        _n, _lines, _groups, left, *_ = scan.scan(data, otlp_fast._NATIVE_PROMOTED)
        took += 2 - len(left)
        declined += len(left)
        os.environ[otlp_fast.NATIVE_ENV] = "1"
        nat = rows(otlp_fast.decode_lines_fast(data, 1, src, compact=rng.random() < 0.5)[0])
        os.environ[otlp_fast.NATIVE_ENV] = "0"
        py = rows(otlp_fast.decode_lines_fast(data, 1, src, compact=False)[0])
        ref = rows(reference(data))
        # the native tier's fault: it differs from the Python tiers, or it took both lines and differs
        # from the reference; the Python tiers differing from the reference on lines the native tier
        # declined is reported, not the native tier's fault
        native_fault = nat != py or (not left and nat != ref)
        if native_fault or py != ref:
            if native_fault:
                differed += 1
            else:
                python_differed += 1
            if differed + python_differed <= 5:
                fd, path = tempfile.mkstemp(prefix="fuzz_tempo-", suffix=".jsonl")
                os.write(fd, data)
                os.close(fd)
                who = "native tier" if native_fault else "python tiers (native declined)"
                print(f"DIFFERS from the reference: {who}; the block: {path}")
    print(
        f"mutants: {2 * runs} lines, native took {took}, declined {declined}; blocks where the native tier "
        f"differed: {differed}; where only the Python tiers differed from the reference: {python_differed}"
    )
    return 1 if differed else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5_000, help="mutant pairs to decode")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-sanitizers", action="store_true", help="the installed build, no ASan/UBSan")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        sys.exit(_child(args.child, args.runs, args.seed))
    if args.no_sanitizers:
        sys.exit(_child("", args.runs, args.seed))
    with tempfile.TemporaryDirectory() as tmp:
        so = fuzz_native.build_sanitized(Path(tmp))
        env = {
            **os.environ,
            "LD_PRELOAD": fuzz_native.libasan(),
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(so),
            "--runs",
            str(args.runs),
            "--seed",
            str(args.seed),
        ]
        rc = subprocess.run(cmd, env=env).returncode
        print("sanitizers: clean" if rc == 0 else f"FAILED (exit {rc})")
        sys.exit(rc)


if __name__ == "__main__":
    main()
