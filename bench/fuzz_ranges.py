"""Parity fuzz of ingest/otlp_ranges.py: files of OTLP/JSON lines, some of them "huge" (the
thresholds shrunk to a few KB), decoded range by range as the ingest does, against
`decode_lines_fast` over the whole file; the lines are random shapes (groups, resources, member
orders, links that start as spans do) and mutants of them (a byte changed, dropped or
repeated, a record's start written in). Any difference in rows, line numbers or rejects is
printed with the seed that makes it again.

    python bench/fuzz_ranges.py --seconds 60 [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402

from ingest import otlp_ranges  # noqa: E402
from ingest.otlp_fast import decode_lines_fast, native_available  # noqa: E402
from ingest.records import Chunk, SourceInfo, shift_chunk  # noqa: E402

SRC = SourceInfo("src-fuzz", "fuzz.jsonl")


def _kv(rng: random.Random, key: str) -> dict:
    kind = rng.randrange(4)
    if kind == 0:
        return {"key": key, "value": {"stringValue": rng.choice(["a", 'q"},{"traceId":"x', "ü", ""])}}
    if kind == 1:
        return {"key": key, "value": {"intValue": str(rng.randrange(1000))}}
    if kind == 2:
        return {"key": key, "value": {"boolValue": rng.random() < 0.5}}
    return {"key": key, "value": {"doubleValue": rng.random()}}


def _span(rng: random.Random, i: int) -> dict:
    s: dict = {
        "traceId": f"{rng.getrandbits(128) | 1:032x}",
        "spanId": f"{rng.getrandbits(64) | 1:016x}",
        "name": f"op-{i % 5}",
        "kind": rng.randrange(6),
        "startTimeUnixNano": str(1_700_000_000_000_000_000 + i),
        "endTimeUnixNano": str(1_700_000_000_000_000_000 + i + rng.randrange(1000)),
        "attributes": [_kv(rng, f"k{j}") for j in range(rng.randrange(4))],
    }
    if rng.random() < 0.3:
        s["links"] = [
            {"traceId": f"{rng.getrandbits(128) | 1:032x}", "spanId": f"{rng.getrandbits(64) | 1:016x}"}
            for _ in range(rng.randrange(1, 4))
        ]
    if rng.random() < 0.2:  # an exception.type not a string is rare: the native scan declines it
        kv = (
            _kv(rng, "exception.type")
            if rng.random() < 0.02
            else {"key": "exception.type", "value": {"stringValue": "E"}}
        )
        s["events"] = [{"timeUnixNano": "5", "name": "exception", "attributes": [kv]}]
    if rng.random() < 0.3:
        s["status"] = {"code": rng.randrange(3)}
    return s


def _log(rng: random.Random, i: int) -> dict:
    return {
        "timeUnixNano": str(1_700_000_000_000_000_000 + i),
        "severityNumber": rng.randrange(1, 24),
        "body": {"stringValue": f"msg {i}"},
        "attributes": [_kv(rng, "a")],
    }


def _ordered(rng: random.Random, members: dict) -> dict:
    """The members in a random order, most often as writers put them (the first ones first)."""
    items = list(members.items())
    if rng.random() < 0.2:
        rng.shuffle(items)
    return dict(items)


def _line(rng: random.Random, big: bool) -> bytes:
    logs = rng.random() < 0.2
    n = rng.randrange(20, 90) if big else rng.randrange(1, 4)
    scopes_key, records_key = ("scopeLogs", "logRecords") if logs else ("scopeSpans", "spans")
    if rng.random() < 0.1:
        scopes_key, records_key = scopes_key.replace("scope", "instrumentationLibrary"), records_key
    resources = []
    for _ in range(1 if rng.random() < 0.85 else rng.randrange(2, 4)):
        groups = []
        for _ in range(1 if rng.random() < 0.85 else rng.randrange(2, 4)):
            records = [(_log if logs else _span)(rng, i) for i in range(n)]
            g = {
                "scope": {"name": rng.choice(["s1", "s2"])} if rng.random() < 0.9 else None,
                records_key: records,
            }
            if rng.random() < 0.1:
                g["other"] = [{"inner": records[: rng.randrange(1, 20)]}]
            groups.append(_ordered(rng, g))
        res = {"resource": {"attributes": [_kv(rng, "service.name")]}, scopes_key: groups}
        if rng.random() < 0.1:
            res["schemaUrl"] = "https://x"
        resources.append(_ordered(rng, res))
    doc = {"resourceLogs" if logs else rng.choice(["resourceSpans", "resourceSpans", "batches"]): resources}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _mutant(rng: random.Random, line: bytes) -> bytes:
    at = rng.randrange(len(line))
    kind = rng.randrange(5)
    if kind == 0:
        return line[:at] + bytes([rng.choice(b'{}[],:"\\a0 ')]) + line[at + 1 :]
    if kind == 1:
        return line[:at] + line[at + 1 :]
    if kind == 2:
        end = min(len(line), at + rng.randrange(1, 200))
        return line[:end] + line[at:]
    if kind == 3:
        return line[:at] + b'},{"traceId":' + line[at:]
    return line[:at]  # cut short


def plain(batch: pa.RecordBatch | None) -> pa.Table | None:
    """`batch` with its dictionary (wire) columns as plain strings; None when it has no row."""
    if batch is None or not batch.num_rows:
        return None
    cols = [c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.Table.from_arrays(cols, names=batch.schema.names)


def _rows(batches: list[pa.RecordBatch | None]) -> pa.Table | None:
    tables = [t for t in map(plain, batches) if t is not None]
    return pa.concat_tables(tables).sort_by([("source_offset", "ascending")]) if tables else None


def by_ranges(path: Path, step: int, source: SourceInfo = SRC) -> tuple[list[Chunk], int]:
    """The ranges' chunks as the ingest puts them together (line numbers shifted by the lines
    before), and the number of lines."""
    chunks: list[Chunk] = []
    lines = 0
    size = path.stat().st_size
    for start in range(0, size, step):
        got, n = otlp_ranges.decode_range(
            str(path), start, min(start + step, size), source, lambda c: c, lambda c: None
        )
        assert got, "a range gives at least one chunk (its bytes are counted with it)"
        chunks += [shift_chunk(c, lines) for c in got]
        lines += n
    return chunks, lines


def check(path: Path, step: int) -> str | None:
    """What differs between the ranges and the whole file, or None."""
    whole, nlines = decode_lines_fast(path.read_bytes(), 1, SRC, compact=True)
    chunks, lines = by_ranges(path, step)
    if lines != nlines:
        return f"lines {lines} != {nlines}"
    for kind in ("spans", "logs"):
        a, b = _rows([getattr(c, kind) for c in chunks]), _rows([getattr(whole, kind)])
        if (a is None) != (b is None) or (a is not None and b is not None and not a.equals(b)):
            return f"{kind} differ"
    got_r = sorted((r.offset, r.reason, r.raw) for c in chunks for r in c.rejects)
    if got_r != sorted((r.offset, r.reason, r.raw) for r in whole.rejects):
        return "rejects differ"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if not native_available():
        print("the native tier is not built: nothing to compare", file=sys.stderr)
        return 2
    otlp_ranges.HUGE_LINE_BYTES, otlp_ranges.PIECE_BYTES, otlp_ranges.READ_BYTES = 4096, 2048, 4096
    pieces = {True: 0, False: 0}
    orig = otlp_ranges._Line.in_pieces

    def spy(self, *a):  # type: ignore[no-untyped-def]
        ok = orig(self, *a)
        pieces[ok] += 1
        return ok

    otlp_ranges._Line.in_pieces = spy  # type: ignore[method-assign]
    deadline = time.monotonic() + args.seconds
    seed, files, failures = args.seed, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.jsonl"
        while time.monotonic() < deadline:
            rng = random.Random(seed)
            lines = [_line(rng, rng.random() < 0.5) for _ in range(rng.randrange(1, 6))]
            lines = [_mutant(rng, ln) if rng.random() < 0.4 else ln for ln in lines]
            path.write_bytes(b"\n".join(lines) + (b"\n" if rng.random() < 0.8 else b""))
            why = check(path, rng.randrange(1500, 9000))
            if why:
                failures += 1
                print(f"seed {seed}: {why}")
            files += 1
            seed += 1
    print(
        f"{files} files, {failures} differences; huge lines in pieces {pieces[True]}, read whole {pieces[False]}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
