"""Single-document OTLP/JSON benchmark: one pretty-printed TracesData of a given size, ingested,
beside the same spans as a Collector dump (one TracesData a line).

    python bench/otlp_document.py --size 1GB                 # many resourceSpans (the usual shape)
    python bench/otlp_document.py --size 1GB --shape one-scope   # one resource, one scope, all spans
    python bench/otlp_document.py --size 200MB --no-lines    # skip the line-mode reference

The spans are bench/ingest.py's (the same generator and seed): `pretty` gathers every line's
resourceSpans into one document written with an indent of 2 (what `jq .` or a JSON editor
writes); `one-scope` puts all of them under one resource and scope, so the only array that
grows with the file is `spans` itself. The line-mode file holds the same spans, so the two
`dcr ingest` lines compare the same work (spans/s) on the two shapes. Files are generated in
$DCR_BENCH_CACHE (default /tmp/dcr-bench) and reused; delete them when done (`--clean`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.ingest import _OURS, CACHE, _line, _line_of, measure, parse_size  # noqa: E402


def _indented(data: bytes, by: int) -> bytes:
    """`data` (pretty JSON) with every line after the first indented by `by` more spaces."""
    return data.replace(b"\n", b"\n" + b" " * by)


def generate(pretty: Path, lines: Path, size: int, shape: str, seed: int = 7) -> None:
    """The document of about `size` bytes and the line-mode dump of the same spans."""
    import msgspec

    enc = msgspec.json.Encoder()
    fmt = msgspec.json.format
    rng = random.Random(seed)
    t0 = 1_714_564_800_000_000_000
    written = 0
    tmp_p, tmp_l = pretty.with_name(pretty.name + ".tmp"), lines.with_name(lines.name + ".tmp")
    with open(tmp_p, "wb") as out, open(tmp_l, "wb") as out_lines:
        if shape == "pretty":
            out.write(b'{\n  "resourceSpans": [\n')
        else:
            head = {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "monolith"}}]},
                "scope": {"name": "opentelemetry.instrumentation.flask", "version": "0.48b0"},
            }
            out.write(
                b'{\n  "resourceSpans": [\n    {\n      "resource": '
                + _indented(fmt(enc.encode(head["resource"]), indent=2), 6)
                + b',\n      "scopeSpans": [\n        {\n          "scope": '
                + _indented(fmt(enc.encode(head["scope"]), indent=2), 10)
                + b',\n          "spans": [\n'
            )
        first = True
        while written < size:
            doc = _line(rng, t0)
            t0 += 40_000_000
            if shape == "pretty":
                items, indent = doc["resourceSpans"], 4
                out_lines.write(enc.encode(doc) + b"\n")
            else:
                items = [sp for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for sp in ss["spans"]]
                indent = 12
                line = {"resourceSpans": [{**head, "scopeSpans": [{"scope": head["scope"], "spans": items}]}]}
                line["resourceSpans"][0].pop("scope")
                out_lines.write(enc.encode(line) + b"\n")
            for item in items:
                data = (
                    (b"" if first else b",\n")
                    + b" " * indent
                    + _indented(fmt(enc.encode(item), indent=2), indent)
                )
                out.write(data)
                written += len(data)
                first = False
        out.write(
            b"\n  ]\n}\n" if shape == "pretty" else b"\n          ]\n        }\n      ]\n    }\n  ]\n}\n"
        )
    os.replace(tmp_p, pretty)
    os.replace(tmp_l, lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, default=parse_size("200MB"), help="document size, e.g. 1GB")
    ap.add_argument("--shape", choices=("pretty", "one-scope"), default="pretty")
    ap.add_argument("--no-lines", action="store_true", help="skip the line-mode reference")
    ap.add_argument("--clean", action="store_true", help="delete the generated files at the end")
    args = ap.parse_args(argv)

    pretty = CACHE / f"otlp-{args.shape}-{args.size}.json"
    lines = CACHE / f"otlp-{args.shape}-{args.size}-lines.jsonl"
    t = time.perf_counter()
    if not (pretty.exists() and lines.exists()):
        pretty.parent.mkdir(parents=True, exist_ok=True)
        generate(pretty, lines, args.size, args.shape)
    print(
        f"document: {pretty} ({pretty.stat().st_size / 1e6:.0f} MB, generated or reused in {time.perf_counter() - t:.1f} s)"
    )
    try:
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} before the run")
    except OSError:
        pass
    runs = [("dcr ingest doc", pretty)] + ([] if args.no_lines else [("dcr ingest lines", lines)])
    try:
        for label, path in runs:
            with tempfile.TemporaryDirectory(prefix="dcr-bench-") as home:
                os.environ["DCR_HOME"] = home
                size = path.stat().st_size
                secs, pss, rss, out, cpu_s = measure([sys.executable, "-c", _OURS, str(path), "bench"])
                spans = json.loads(out)["spans"]
                extra = f"{spans / secs / 1e3:.0f} k spans/s  {out.strip()}"
                print(_line_of(label, size, secs, pss, rss, cpu_s, extra))
    finally:
        if args.clean:
            pretty.unlink(missing_ok=True)
            lines.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
