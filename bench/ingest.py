"""Ingest benchmark: a realistic Collector dump of a given size, our ingest, and the DuckDB reference.

    python bench/ingest.py --size 1GB            # generate (cached), ingest, reference, print both
    python bench/ingest.py --size 200MB --no-reference
    python bench/ingest.py --size 500MB --format jaeger   # a Jaeger UI JSON dump (bench/gen_jaeger.py)

The dump is what the Collector's file exporter writes: one TracesData a line, a line holding
several services' batches of tens of spans; two dozen services on several hosts, 4-9
attributes a span of mixed types, exception events with stack traces, links.

Each contender runs in its own subprocess; peak memory is the largest sum of the
proportional set size (PSS, shared pages split) over the process tree, sampled every 50 ms;
the largest single-process RSS is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DCR_BENCH_CACHE", Path(tempfile.gettempdir()) / "dcr-bench"))

SERVICES = [
    "frontend",
    "checkout",
    "cart",
    "payment",
    "shipping",
    "email",
    "currency",
    "recommendation",
    "ad",
    "product-catalog",
    "quote",
    "fraud-detection",
    "accounting",
    "inventory",
    "auth",
    "search",
    "gateway",
    "notification",
    "pricing",
    "orders",
    "users",
    "reviews",
    "image-resizer",
    "kafka-bridge",
]
HOSTS = [f"ip-10-0-{i}-{j}.ec2.internal" for i in range(2) for j in (11, 42, 87)]
ROUTES = ["/api/cart", "/api/checkout", "/api/products/{id}", "/api/users/{id}", "/health", "/api/orders"]
DB_STMTS = [
    "SELECT * FROM orders WHERE user_id = ?",
    "UPDATE inventory SET qty = qty - ? WHERE sku = ?",
    "INSERT INTO payments (id, amount, currency) VALUES (?, ?, ?)",
]
STACK = "".join(
    f'  File "/app/services/{m}.py", line {ln}, in {fn}\n    {code}\n'
    for m, ln, fn, code in [
        ("handlers", 118, "handle_checkout", "result = self.payment.charge(order)"),
        ("payment/client", 52, "charge", "resp = self._session.post(url, json=body, timeout=self.timeout)"),
        ("http/session", 211, "post", "return self.request('POST', url, **kwargs)"),
        ("http/session", 160, "request", "raise TimeoutError(f'deadline exceeded after {elapsed:.1f}s')"),
    ]
)


def _kv(key: str, value: object) -> dict:
    if isinstance(value, bool):
        v: dict = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    elif isinstance(value, list):
        v = {"arrayValue": {"values": [{"stringValue": x} for x in value]}}
    else:
        v = {"stringValue": value}
    return {"key": key, "value": v}


def _span(rng: random.Random, tid: str, svc: str, t0: int, parent: str | None) -> dict:
    sid = f"{rng.getrandbits(64):016x}"
    dur = rng.randint(200_000, 900_000_000)
    start = t0 + rng.randint(0, 50_000_000)
    kind = rng.choice((1, 2, 3, 3, 2))
    attrs = [
        _kv("http.request.method", rng.choice(("GET", "POST", "PUT"))),
        _kv("http.route", rng.choice(ROUTES)),
        _kv("http.response.status_code", rng.choice((200, 200, 200, 201, 404, 500, 503))),
        _kv("server.address", rng.choice(SERVICES)),
    ]
    extra = rng.randint(0, 5)
    pool = [
        ("db.system", "postgresql"),
        ("db.query.text", rng.choice(DB_STMTS)),
        ("retry.count", rng.randint(0, 3)),
        ("cache.hit", rng.random() < 0.5),
        ("payload.size_ratio", round(rng.random(), 4)),
        ("feature.flags", ["new-checkout", "fast-path"]),
        ("user.tier", rng.choice(("free", "pro", "ent"))),
    ]
    attrs += [_kv(k, v) for k, v in rng.sample(pool, extra)]
    span: dict = {
        "traceId": tid,
        "spanId": sid,
        "name": f"{rng.choice(('GET', 'POST'))} {rng.choice(ROUTES)}",
        "kind": kind,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + dur),
        "attributes": attrs,
        "status": {},
    }
    if parent:
        span["parentSpanId"] = parent
    if rng.random() < 0.06:
        span["status"] = {"code": 2, "message": "deadline exceeded"}
        span["events"] = [
            {
                "timeUnixNano": str(start + dur - 1000),
                "name": "exception",
                "attributes": [
                    _kv("exception.type", "TimeoutError"),
                    _kv("exception.message", "deadline exceeded after 0.9s"),
                    _kv(
                        "exception.stacktrace",
                        "Traceback (most recent call last):\n" + STACK + "TimeoutError: deadline exceeded",
                    ),
                ],
            }
        ]
    if rng.random() < 0.03:
        span["links"] = [
            {
                "traceId": f"{rng.getrandbits(128):032x}",
                "spanId": f"{rng.getrandbits(64):016x}",
                "attributes": [_kv("link.reason", "batch")],
            }
        ]
    return span


def _line(rng: random.Random, t0: int) -> dict:
    resource_spans = []
    for svc in rng.sample(SERVICES, rng.randint(3, 8)):
        tid = f"{rng.getrandbits(128):032x}"
        spans, parent = [], None
        for _ in range(rng.randint(20, 60)):
            sp = _span(rng, tid if rng.random() < 0.7 else f"{rng.getrandbits(128):032x}", svc, t0, parent)
            parent = sp["spanId"] if rng.random() < 0.5 else parent
            spans.append(sp)
        host = HOSTS[SERVICES.index(svc) % len(HOSTS)]
        resource_spans.append(
            {
                "resource": {
                    "attributes": [
                        _kv("service.name", svc),
                        _kv("service.version", "1.4.2"),
                        _kv("host.name", host),
                        _kv("service.instance.id", f"{svc}-{host[-5:]}"),
                        _kv("telemetry.sdk.language", "python"),
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "opentelemetry.instrumentation.flask", "version": "0.48b0"},
                        "spans": spans,
                    }
                ],
            }
        )
    return {"resourceSpans": resource_spans}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?B?)\s*", text.upper())
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use e.g. 200MB or 1GB")
    mult = {
        "": 1,
        "B": 1,
        "K": 1 << 10,
        "KB": 1 << 10,
        "M": 1 << 20,
        "MB": 1 << 20,
        "G": 1 << 30,
        "GB": 1 << 30,
    }
    return int(float(m.group(1)) * mult[m.group(2)])


def generate(path: Path, size: int, seed: int = 7) -> Path:
    """Write a Collector-format dump of about `size` bytes (reused when cached)."""
    import msgspec

    if path.exists() and path.stat().st_size >= size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    enc = msgspec.json.Encoder()
    t0 = 1_714_564_800_000_000_000
    tmp = path.with_suffix(".tmp")
    written = 0
    with open(tmp, "wb") as fh:
        while written < size:
            data = enc.encode(_line(rng, t0)) + b"\n"
            fh.write(data)
            written += len(data)
            t0 += 40_000_000
    os.replace(tmp, path)
    return path


# ---- measuring ----------------------------------------------------------------------------


def _tree_memory_kb(root: int) -> tuple[int, int]:
    """(sum of PSS, largest RSS) over `root` and its descendants."""
    total, largest, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Rss:"):
                        largest = max(largest, int(line.split()[1]))
                    elif line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo.extend(int(x) for x in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total, largest


def measure(cmd: list[str]) -> tuple[float, float, float, str, float]:
    """(seconds, peak tree PSS MB, peak single RSS MB, stdout, CPU seconds) of running `cmd`.

    CPU seconds are user + system of the whole process tree (children that were waited for,
    as the ingest's worker pool is), the figure that does not depend on what else runs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=REPO)
    peak = [0, 0]

    def sample() -> None:
        while proc.poll() is None:
            pss, rss = _tree_memory_kb(proc.pid)
            peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, _ = proc.communicate()
    seconds = time.perf_counter() - t0
    th.join()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]}… failed with exit {proc.returncode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, peak[0] / 1024, peak[1] / 1024, out.decode(), cpu_s


def _line_of(label: str, size: int, secs: float, pss: float, rss: float, cpu_s: float, extra: str) -> str:
    return (
        f"{label:16}: {size / 1e6 / secs:7.1f} MB/s  {secs:6.1f} s  CPU {cpu_s:6.1f} s "
        f"({cpu_s / (size / 2**30):5.1f} CPU-s/GB)  peak PSS (tree) {pss:6.0f} MB  "
        f"max RSS (one process) {rss:6.0f} MB  {extra}"
    )


_OURS = """
import json, os, resource, sys
from ingest import ingest_paths
r = ingest_paths([sys.argv[1]], sys.argv[2])
t, w = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"spans": r.spans, "rejected": r.rejected, "cpu_s_main": round(t.user + t.system, 2),
                  "sys_s_main": round(t.system, 2), "cpu_s_workers": round(w.ru_utime + w.ru_stime, 2),
                  "sys_s_workers": round(w.ru_stime, 2)}))
"""

_JAEGER_READER = """
import concurrent.futures as cf, json, multiprocessing, sys, time
from ingest import jaeger
from ingest.records import SourceInfo
n, workers = 0, int(sys.argv[2])
with open(sys.argv[1], "rb") as fh:
    if workers > 1:
        pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        chunks = jaeger.read_parallel(fh, SourceInfo("bench", sys.argv[1]), pool, window=2 * workers)
    else:
        chunks = jaeger.read(fh, SourceInfo("bench", sys.argv[1]))
    for chunk in chunks:
        n += chunk.spans.num_rows if chunk.spans is not None else 0
print(json.dumps({"spans": n, "cpu_s_main": round(time.process_time(), 2)}))
"""

_DUCKDB = """
import sys, duckdb
con = duckdb.connect()
con.execute('SET enable_progress_bar = false')
src, out = sys.argv[1], sys.argv[2]
con.execute(f'''
COPY (
  WITH r AS (SELECT UNNEST(resourceSpans) AS rs
             FROM read_json('{src}', format='newline_delimited', maximum_object_size=1073741824)),
       s AS (SELECT rs.resource AS resource, UNNEST(rs.scopeSpans) AS ss FROM r),
       p AS (SELECT resource, ss.scope AS scope, UNNEST(ss.spans) AS span FROM s)
  SELECT span.traceId AS trace_id, span.spanId AS span_id, span.parentSpanId AS parent_span_id,
         span.name AS name, span.kind AS kind, span.startTimeUnixNano AS start_ns,
         span.endTimeUnixNano AS end_ns, span.attributes AS attributes, span.events AS events,
         span.links AS links, span.status AS status, scope, resource
  FROM p
) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
''')
print(con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0])
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=parse_size, default=parse_size("200MB"), help="dump size, e.g. 200MB, 1GB")
    ap.add_argument("--no-reference", action="store_true", help="skip the DuckDB reference")
    ap.add_argument("--keep", action="store_true", help="keep the ingested dataset")
    ap.add_argument(
        "--format",
        choices=("otlp", "jaeger"),
        default="otlp",
        help="otlp: a Collector file-exporter dump; jaeger: a Jaeger UI JSON dump (reader alone "
        "is measured too; no DuckDB reference)",
    )
    args = ap.parse_args(argv)

    t = time.perf_counter()
    if args.format == "jaeger":
        sys.path.insert(0, str(REPO))
        from bench.gen_jaeger import write_jaeger_dump

        dump = CACHE / f"jaeger-{args.size}.json"
        if not (dump.exists() and dump.stat().st_size >= args.size):
            dump.parent.mkdir(parents=True, exist_ok=True)
            write_jaeger_dump(dump.with_suffix(".tmp"), args.size, seed=7)
            os.replace(dump.with_suffix(".tmp"), dump)
        args.no_reference = True
    else:
        dump = CACHE / f"collector-{args.size}.jsonl"
        generate(dump, args.size)
    size = dump.stat().st_size
    print(f"dump: {dump} ({size / 1e6:.0f} MB, generated or reused in {time.perf_counter() - t:.1f} s)")
    try:
        load = os.getloadavg()[0]
        print(f"machine: {os.cpu_count()} cores, load average {load:.2f} before the run")
    except OSError:
        pass

    with tempfile.TemporaryDirectory(prefix="dcr-bench-") as home:
        env_cmd = [sys.executable, "-c", _OURS, str(dump), "bench"]
        os.environ["DCR_HOME"] = home
        secs, pss, rss, out, cpu_s = measure(env_cmd)
        print(_line_of("dcr ingest", size, secs, pss, rss, cpu_s, out.strip()))
        if args.keep:
            print(f"dataset kept in {home} (removed at exit unless you copy it)")
    if args.format == "jaeger":
        for workers, label in ((1, "jaeger.read only"), (2, "read_parallel x2")):
            secs, pss, rss, out, cpu_s = measure(
                [sys.executable, "-c", _JAEGER_READER, str(dump), str(workers)]
            )
            print(_line_of(label, size, secs, pss, rss, cpu_s, out.strip()))
    if not args.no_reference:
        with tempfile.TemporaryDirectory(prefix="dcr-bench-ref-") as tmp:
            secs, pss, rss, out, cpu_s = measure(
                [sys.executable, "-c", _DUCKDB, str(dump), f"{tmp}/ref.parquet"]
            )
            print(_line_of("duckdb reference", size, secs, pss, rss, cpu_s, f"spans {out.strip()}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
