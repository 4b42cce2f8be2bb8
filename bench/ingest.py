"""Ingest benchmark: a realistic Collector dump of a given size, our ingest, and the DuckDB reference.

    python bench/ingest.py --size 1GB            # generate (cached), ingest, reference, print both
    python bench/ingest.py --size 200MB --no-reference
    python bench/ingest.py --size 500MB --format jaeger   # a Jaeger UI JSON dump (bench/gen_jaeger.py)
    python bench/ingest.py --size 1GB --shape all         # the shape matrix: a line a shape
    python bench/ingest.py --size 50MB --shape attrs,tempo [--seed 7] [--no-reference]

The dump is what the Collector's file exporter writes: one TracesData a line, a line holding
several services' batches of tens of spans; two dozen services on several hosts, 4-9
attributes a span of mixed types, exception events with stack traces, links.

Each contender runs in its own subprocess; peak memory is the largest sum of the
proportional set size (PSS, shared pages split) over the process tree, sampled every 50 ms;
the largest single-process RSS is printed beside it.

The shape matrix (`--shape`; generators in bench/shapes.py, dumps cached in CACHE by shape, size
and seed) prints, a shape a line, our ingest's MB/s, CPU-seconds per GiB (user + system of the
process tree) and peak PSS beside DuckDB's `read_json` reference on the same file, and their ratio.
It fails (exit 1) when the ingest stores other than exactly the spans and log records generated, or
rejects any. The shapes, and who writes such files:

- default: this dump (above), the Collector's file exporter behind a Python-instrumented shop.
- attrs: the attribute-heavy Collector dump of issue 16: 1.74 M spans a GB, ~5 attributes a span
  (string, bool, double, int64 as JSON strings and as JSON numbers, per exporter), events on 10 %
  and links on 5 % of spans, `"parentSpanId": ""` on roots (as SDK exporters that write default
  values do), five resource attributes a batch.
- events: the same with exception events on 40 % of spans (type, message, a 1-3 KB multi-line
  Java or Python stack trace; 2-3 events on retries): what a failing service's dump looks like.
- longstrings: `db.statement` SQL (IN lists, quotes, newlines, UTF-8) and `url.full` URLs of
  1-4 KB on 60 % of database and HTTP spans: ORMs and search APIs.
- smallbatches: 50-200 resource batches of 1-3 spans a line: a Collector batching many services
  (or many pods of one) with a short timeout, where per-batch overhead dominates.
- hugebatch: one batch, one scope, 20-50 k spans a line (lines of 10-30 MB): an SDK or Collector
  exporting one big buffer.
- tempo: Grafana Tempo's trace-by-id JSON (`{"batches": […]}`, one trace a line, a batch per
  service), as Tempo's jsonpb writes it: base64 ids, enum names, roots without parentSpanId.
- logs: a Collector file exporter's logs (`resourceLogs`; bodies of 100-500 bytes, severities,
  attributes, trace and span ids on 70 %), with one line in eight a traces line, as a single
  exporter behind both pipelines writes. DuckDB's reference converts the log records only.
- pretty: one pretty-printed (indent 2) TracesData document of the whole size: what
  `jq .`, protobuf's MessageToJson or a saved API response gives. DuckDB reads it as one object
  (`maximum_object_size` at most 4 GiB - 1, so not beyond).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import types
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Run:
    """One contender's run: wall seconds, peak tree PSS and single-process RSS (MB), output, CPU."""

    seconds: float
    pss_mb: float
    rss_mb: float
    out: str
    err: str
    cpu_s: float
    returncode: int


def run(cmd: list[str], capture_err: bool = False) -> Run:
    """Run `cmd` in REPO, sampling the memory of its process tree every 50 ms.

    CPU seconds are user + system of the whole process tree (children that were waited for,
    as the ingest's worker pool is), the figure that does not depend on what else runs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE if capture_err else None, cwd=REPO
    )
    peak = [0, 0]

    def sample() -> None:
        while proc.poll() is None:
            pss, rss = _tree_memory_kb(proc.pid)
            peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    th.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(
        seconds, peak[0] / 1024, peak[1] / 1024, out.decode(), (err or b"").decode(), cpu_s, proc.returncode
    )


def measure(cmd: list[str]) -> tuple[float, float, float, str, float]:
    """(seconds, peak tree PSS MB, peak single RSS MB, stdout, CPU seconds) of running `cmd`;
    exits when it fails."""
    r = run(cmd)
    if r.returncode != 0:
        raise SystemExit(f"{cmd[:3]}… failed with exit {r.returncode}")
    return r.seconds, r.pss_mb, r.rss_mb, r.out, r.cpu_s


def _line_of(label: str, size: int, secs: float, pss: float, rss: float, cpu_s: float, extra: str) -> str:
    return (
        f"{label:16}: {size / 1e6 / secs:7.1f} MB/s  {secs:6.1f} s  CPU {cpu_s:6.1f} s "
        f"({cpu_s / (size / 2**30):5.1f} CPU-s/GB)  peak PSS (tree) {pss:6.0f} MB  "
        f"max RSS (one process) {rss:6.0f} MB  {extra}"
    )


_OURS = """
import json, os, resource, sys
from mcp_server.cli import process_defaults
process_defaults()  # what `dcr ingest` runs with
from ingest import ingest_paths
r = ingest_paths([sys.argv[1]], sys.argv[2])
t, w = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"spans": r.spans, "logs": r.logs, "rejected": r.rejected, "duplicates": r.duplicates,
                  "cpu_s_main": round(t.user + t.system, 2),
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

# argv: dump, output, the top-level array (resourceSpans, batches, resourceLogs), read_json's
# format, maximum_object_size
_DUCKDB = """
import sys, duckdb
con = duckdb.connect()
con.execute('SET enable_progress_bar = false')
src, out = sys.argv[1], sys.argv[2]
root, fmt, max_obj = sys.argv[3:6]
read = f"read_json('{src}', format='{fmt}', maximum_object_size={max_obj})"
if root == 'resourceLogs':
    query = f'''
  WITH r AS (SELECT UNNEST(resourceLogs) AS rl FROM {read}),
       s AS (SELECT rl.resource AS resource, UNNEST(rl.scopeLogs) AS sl FROM r),
       p AS (SELECT resource, sl.scope AS scope, UNNEST(sl.logRecords) AS rec FROM s)
  SELECT rec.timeUnixNano AS time_ns, rec.observedTimeUnixNano AS observed_time_ns,
         rec.severityNumber AS severity_number, rec.severityText AS severity_text, rec.body AS body,
         rec.attributes AS attributes, rec.traceId AS trace_id, rec.spanId AS span_id, scope, resource
  FROM p'''
else:
    query = f'''
  WITH r AS (SELECT UNNEST({root}) AS rs FROM {read}),
       s AS (SELECT rs.resource AS resource, UNNEST(rs.scopeSpans) AS ss FROM r),
       p AS (SELECT resource, ss.scope AS scope, UNNEST(ss.spans) AS span FROM s)
  SELECT span.traceId AS trace_id, span.spanId AS span_id, span.parentSpanId AS parent_span_id,
         span.name AS name, span.kind AS kind, span.startTimeUnixNano AS start_ns,
         span.endTimeUnixNano AS end_ns, span.attributes AS attributes, span.events AS events,
         span.links AS links, span.status AS status, scope, resource
  FROM p'''
con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
print(con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0])
"""


# ---- the shape matrix -------------------------------------------------------------------------

DUCKDB_MAX_OBJECT = 2**32 - 1  # read_json's maximum_object_size is a UINTEGER


def _shapes() -> types.ModuleType:
    """bench/shapes.py, also when this file runs as a script (bench/ first on sys.path)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from bench import shapes

    return shapes


@dataclass(frozen=True)
class Dump:
    shape: str
    path: Path
    spans: int
    logs: int
    plain: Path | None = None  # the uncompressed dump a compressed `path` holds (its size is the MB)

    @property
    def size(self) -> int:
        return (self.plain or self.path).stat().st_size


def compressed(d: Dump) -> Dump:
    """`d` compressed with zstd (level 1, as a shipper would), cached beside it."""
    import zstandard

    path = d.path.with_name(d.path.name + ".zst")
    if not path.exists() or path.stat().st_mtime < d.path.stat().st_mtime:
        tmp = path.with_name(path.name + ".tmp")
        with open(d.path, "rb") as src, open(tmp, "wb") as dst:
            zstandard.ZstdCompressor(level=1, threads=-1).copy_stream(src, dst)
        os.replace(tmp, path)
    return Dump(d.shape, path, d.spans, d.logs, d.path)


def _counts_path(path: Path) -> Path:
    return path.with_name(path.name + ".counts.json")


def _default_dump(size: int, seed: int) -> Dump:
    """Today's dump (`generate`), counted once by its spans' start times (only spans have one)."""
    path = CACHE / (f"collector-{size}.jsonl" if seed == 7 else f"collector-{size}-s{seed}.jsonl")
    generate(path, size, seed)
    meta = _counts_path(path)
    stat = path.stat()
    if meta.exists() and json.loads(meta.read_text()).get("bytes") == stat.st_size:
        return Dump("default", path, json.loads(meta.read_text())["spans"], 0)
    spans = 0
    with open(path, "rb") as fh:
        for line in fh:
            spans += line.count(b'"startTimeUnixNano"')
    meta.write_text(json.dumps({"spans": spans, "logs": 0, "bytes": stat.st_size}))
    return Dump("default", path, spans, 0)


def shape_dump(shape: str, size: int, seed: int) -> Dump:
    """The cached dump of `shape` (written when missing) and what it holds."""
    if shape == "default":
        return _default_dump(size, seed)
    shapes = _shapes()
    ext = "json" if shapes.SHAPES[shape].line is None else "jsonl"
    path = CACHE / f"{shape}-{size}-s{seed}-v{shapes.VERSION}.{ext}"
    meta = _counts_path(path)
    if path.exists() and meta.exists():
        counts = json.loads(meta.read_text())
        if counts.get("bytes") == path.stat().st_size:
            return Dump(shape, path, counts["spans"], counts["logs"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    c = shapes.write_shape(tmp, shape, size, seed)
    # the counts first: a dump on disk always has its counts beside it
    meta.write_text(json.dumps({"spans": c.spans, "logs": c.logs, "bytes": tmp.stat().st_size}))
    os.replace(tmp, path)
    return Dump(shape, path, c.spans, c.logs)


def _duckdb_args(dump: Path, shape: str | None) -> list[str]:
    """The reference's top-level array, read_json format and maximum_object_size for a shape."""
    if shape in (None, "default"):
        return ["resourceSpans", "newline_delimited", str(1 << 30)]
    shapes = _shapes()
    spec = shapes.SHAPES[shape]
    if spec.line is None:  # one document: one JSON object the size of the file
        return [spec.root, "auto", str(min(DUCKDB_MAX_OBJECT, dump.stat().st_size + 1))]
    return [spec.root, "newline_delimited", str(1 << 30)]


def _rows(spans: int, logs: int) -> str:
    if logs and spans:
        return f"{logs:,} logs+{spans:,} spans"
    return f"{logs:,} logs" if logs else f"{spans:,} spans"


def _error_line(text: str) -> str:
    """The line of a failed run's stderr that says why (DuckDB's 'X Error: …', else the last)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln:
            return re.sub(r"^[\w.]*\.\w+: ", "", ln)[:160]  # without "_duckdb.InvalidInputException: "
    return lines[-1][:160] if lines else "no message"


MATRIX_HEAD = (
    f"{'shape':12} {'MB':>6} {'rows':>31} | {'dcr MB/s':>8} {'CPU-s/GB':>8} {'(main+workers)':>14} "
    f"{'peak PSS':>8} | {'duckdb MB/s':>11} {'CPU-s/GB':>8} {'peak PSS':>8} | ours/duckdb (CPU)"
)


def _ours_cells(d: Dump, r: Run, size: int, gib: float) -> tuple[str, str | None]:
    """Our columns, and what is wrong with the run (None when it stored exactly what was generated)."""
    if r.returncode != 0:
        return f"{'dcr ingest failed':>41}", f"exit {r.returncode}: {_error_line(r.err)}"
    o = json.loads(r.out.strip().splitlines()[-1])
    cells = (
        f"{size / 1e6 / r.seconds:8.1f} {r.cpu_s / gib:8.1f} "
        f"{'(' + format(o['cpu_s_main'] / gib, '.1f') + '+' + format(o['cpu_s_workers'] / gib, '.1f') + ')':>14} "
        f"{r.pss_mb:5.0f} MB"
    )
    got = (o["spans"], o["logs"], o["rejected"], o["duplicates"])
    if got != (d.spans, d.logs, 0, 0):
        return cells, (
            f"stored {o['spans']:,} spans and {o['logs']:,} logs, rejected {o['rejected']:,}, "
            f"{o['duplicates']:,} duplicates; generated {d.spans:,} spans and {d.logs:,} logs"
        )
    return cells, None


def run_matrix(names: list[str], size: int, seed: int, reference: bool, compress: bool = False) -> int:
    """Generate (or reuse) each shape's dump, measure our ingest and DuckDB on it, a line a shape
    (`compress`: the dump compressed with zstd; MB/s and CPU-s/GB are of the uncompressed bytes)."""
    dumps = []
    for name in names:
        t = time.perf_counter()
        d = shape_dump(name, size, seed)
        if compress:
            d = compressed(d)
        mb = d.path.stat().st_size / 1e6
        print(f"dump {name}: {d.path} ({mb:.0f} MB, {_rows(d.spans, d.logs)}, generated or reused in "
              f"{time.perf_counter() - t:.1f} s)", flush=True)  # fmt: skip
        dumps.append(d)
    try:
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} before the run")
    except OSError:
        pass
    print(MATRIX_HEAD, flush=True)
    failures = []
    for d in dumps:
        fsize = d.size
        gib = fsize / 2**30
        with tempfile.TemporaryDirectory(prefix="dcr-bench-") as home:
            os.environ["DCR_HOME"] = home
            ours = run([sys.executable, "-c", _OURS, str(d.path), "bench"], capture_err=True)
        cells, wrong = _ours_cells(d, ours, fsize, gib)
        ref = "(skipped)"
        if reference:
            expect = d.logs if _duckdb_args(d.path, d.shape)[0] == "resourceLogs" else d.spans
            with tempfile.TemporaryDirectory(prefix="dcr-bench-ref-") as tmp:
                cmd = [sys.executable, "-c", _DUCKDB, str(d.path), f"{tmp}/ref.parquet"]
                duck = run(cmd + _duckdb_args(d.path, d.shape), capture_err=True)
            if duck.returncode != 0:
                ref = f"cannot read: {_error_line(duck.err)}"
            else:
                ref = f"{fsize / 1e6 / duck.seconds:11.1f} {duck.cpu_s / gib:8.1f} {duck.pss_mb:5.0f} MB"
                if ours.returncode == 0:
                    ref += f" | {duck.seconds / ours.seconds:5.2f}x ({duck.cpu_s / ours.cpu_s:.2f}x)"
                if int(duck.out.strip() or -1) != expect:
                    ref += f"  duckdb rows {duck.out.strip()} != {expect:,}"
        line = f"{d.shape:12} {fsize / 1e6:6.0f} {_rows(d.spans, d.logs):>31} | {cells} | {ref}"
        if wrong:
            line += f"  ROWS != GENERATED: {wrong}"
            failures.append(f"{d.shape}: {wrong}")
        print(line, flush=True)
    if failures:
        print("FAILED: the ingest did not store exactly what was generated:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0


def _shape_names(text: str) -> list[str]:
    shapes = _shapes()
    known = ["default", *shapes.SHAPES]
    names = known if text == "all" else [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown shape {', '.join(bad) or text!r}: use all or {', '.join(known)}"
        )
    return names


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
    ap.add_argument(
        "--shape",
        type=_shape_names,
        help="the shape matrix: all, or shapes separated by commas (default, attrs, events, longstrings, "
        "smallbatches, hugebatch, tempo, logs, pretty); one line a shape",
    )
    ap.add_argument("--seed", type=int, default=7, help="the generators' seed (dumps are cached by it)")
    ap.add_argument(
        "--compress",
        action="store_true",
        help="with --shape: ingest each dump compressed with zstd (MB/s of the uncompressed bytes)",
    )
    args = ap.parse_args(argv)
    if args.compress and not args.shape:
        ap.error("--compress goes with --shape")
    if args.shape:
        if args.format != "otlp":
            ap.error("--shape is for OTLP dumps; --format jaeger has its own dump")
        return run_matrix(args.shape, args.size, args.seed, not args.no_reference, args.compress)

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
                [sys.executable, "-c", _DUCKDB, str(dump), f"{tmp}/ref.parquet", *_duckdb_args(dump, None)]
            )
            print(_line_of("duckdb reference", size, secs, pss, rss, cpu_s, f"spans {out.strip()}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
