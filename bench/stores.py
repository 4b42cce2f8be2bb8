"""Store pull benchmark: a ClickHouse exporter table of 20 M spans (chDB), a 10-minute pull of
about 1 M spans with `dcr ingest chdb://…`, against `dcr ingest` of the same spans as OTLP/JSON.

    python bench/stores.py                       # 20 M spans over 200 minutes, pull minutes 100-110
    python bench/stores.py --spans 2000000       # smaller

The pull is measured twice: `chdb://PATH` (the engine in the dcr process: its RSS includes
chDB's) and `clickhouse://` against tests/store_standins.py's HTTP stand-in run in a process of
its own (the server's cost is not counted: what a pull from a real server costs dcr).

The table is the exporter's current DDL (tests/store_exporter.py), filled in the engine
(INSERT … SELECT FROM numbers()): 8 services on 16 hosts, traces of 10 spans, 4 span and 4
resource attributes, 2% errors. The same spans are then written as OTLP/JSON the way the
Collector's file exporter groups them (a line holds up to 256 spans of one resource), and
ingested from the file. Each contender runs in its own process (bench/ingest.py's `measure`):
wall time, peak PSS summed over the process tree, the largest single RSS. The table is built
once and kept (DCR_BENCH_CACHE).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.ingest import CACHE, measure  # noqa: E402

SERVICES = ["frontend", "checkout", "cart", "catalog", "payment", "users", "shipping", "email"]
BASE_NS = 1_749_718_800_000_000_000  # 2025-06-12T09:00:00Z


def build(path: Path, spans: int, minutes: int) -> None:
    import chdb

    from tests.store_exporter import create

    if (path / "built.json").is_file():
        return
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    con = chdb.connect(str(path))
    try:
        create(con, "current")
        step = minutes * 60 * 10**9 // spans  # ns between spans
        svc = "arrayElement(['" + "','".join(SERVICES) + "'], (intDiv(number, 10) + number % 10) % 8 + 1)"

        def h64(expr: str) -> str:  # 16 hex digits (hex() drops leading zeros)
            return f"lower(leftPad(hex({expr}), 16, '0'))"

        tid = f"concat({h64('cityHash64(intDiv(number, 10))')}, {h64('cityHash64(intDiv(number, 10), 7)')})"
        sql = f"""
        INSERT INTO otel.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName,
            SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes,
            Duration, StatusCode, StatusMessage)
        SELECT
            fromUnixTimestamp64Nano(toInt64({BASE_NS} + number * {step})),
            {tid},
            {h64("cityHash64(number, 2)")},
            if(number % 10 = 0, '', {h64("cityHash64(intDiv(number, 10) * 10, 2)")}),
            '',
            concat('GET /api/', {svc}, '/', toString(number % 5)),
            if(number % 10 = 0, 'Server', if(number % 2 = 0, 'Client', 'Server')),
            {svc},
            map('service.name', {svc}, 'host.name', concat('node-', toString(number % 16)),
                'service.version', '1.4.2', 'telemetry.sdk.language', 'go'),
            concat('shop.', {svc}), '1.0.0',
            map('http.request.method', 'GET', 'http.route', concat('/api/', toString(number % 5)),
                'http.response.status_code', if(number % 50 = 0, '500', '200'),
                'server.address', arrayElement(['cart', 'users', 'catalog'], number % 3 + 1)),
            toUInt64(1000000 + (number * 7919) % 20000000),
            if(number % 50 = 0, 'Error', 'Unset'),
            if(number % 50 = 0, 'upstream failed', '')
        FROM numbers({spans})
        """
        t0 = time.monotonic()
        con.query(sql)
        # merged as a server's table settles: parts left unmerged would be merged by the next
        # engine to open the path (the pull's), which is not the pull's cost
        con.query("OPTIMIZE TABLE otel.otel_traces FINAL")
        built = {"spans": spans, "minutes": minutes, "seconds": round(time.monotonic() - t0, 1)}
    finally:
        con.close()
    (path / "built.json").write_text(json.dumps(built))


def export_otlp(path: Path, start_ns: int, end_ns: int, out: Path) -> int:
    """The window's spans as OTLP/JSON lines grouped as the Collector's file exporter does."""
    import clickhouse_connect

    from ingest.stores.clickhouse import _SETTINGS, _text, span_line_sql

    client = clickhouse_connect.get_client(interface="chdb", path=str(path), database="otel")
    cols = {
        n: t
        for n, t in client.query(
            "SELECT name, type FROM system.columns WHERE database='otel' AND table='otel_traces'"
        ).result_rows
    }
    sql = (
        f"SELECT {span_line_sql(cols)} FROM otel.otel_traces WHERE Timestamp >= fromUnixTimestamp64Nano({start_ns}) "
        f"AND Timestamp < fromUnixTimestamp64Nano({end_ns}) ORDER BY ServiceName, toString(ResourceAttributes), Timestamp"
    )
    n = 0
    marker = b'"spans":['
    with open(out, "wb") as fh, client.query_arrow_stream(sql, settings=dict(_SETTINGS)) as stream:
        prefix, group = b"", []

        def flush() -> None:
            if group:
                fh.write(prefix + b",".join(group) + b"]}]}]}\n")
                group.clear()

        for batch in stream:
            for line in _text(batch.column(0)).split(b"\n"):
                if not line:
                    continue
                i = line.index(marker) + len(marker)
                head, span = line[:i], line[i:-6]  # the span object, without "]}]}]}"
                if head != prefix or len(group) >= 256:
                    flush()
                    prefix = head
                group.append(span)
                n += 1
        flush()
    client.close()
    return n


_SERVE = """
import sys, time
sys.path.insert(0, ".")
from tests.store_standins import ClickHouseHTTP
server = ClickHouseHTTP(sys.argv[1]).start()
print(server.port, flush=True)
while True:
    time.sleep(3600)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000_000, help="spans in the table (default 20 M)")
    ap.add_argument("--minutes", type=int, default=200, help="minutes the table spans (default 200)")
    ap.add_argument("--pull-minutes", type=int, default=10, help="minutes pulled (default 10)")
    args = ap.parse_args()

    store = CACHE / f"chdb-{args.spans}-{args.minutes}"
    t0 = time.monotonic()
    build(store, args.spans, args.minutes)
    built = json.loads((store / "built.json").read_text())
    print(
        f"table: {built['spans']:,} spans over {built['minutes']} min in chDB ({store}), built in {built['seconds']} s"
        f" ({time.monotonic() - t0:.1f} s this run)"
    )
    mid = BASE_NS + args.minutes * 30 * 10**9
    start_ns, end_ns = mid, mid + args.pull_minutes * 60 * 10**9

    with tempfile.TemporaryDirectory(prefix="dcr-bench-stores-") as tmp:
        env_home = Path(tmp) / "home"
        os.environ["DCR_HOME"] = str(env_home)
        dcr = str(Path(sys.executable).with_name("dcr"))
        pull = [dcr, "ingest", f"chdb://{store}", "--start", str(start_ns), "--end", str(end_ns)]
        pull += ["--dataset", "pulled", "--json"]
        secs, pss, rss, out, cpu = measure(pull)
        pulled = json.loads(out)
        server = subprocess.Popen(
            [sys.executable, "-c", _SERVE, str(store)], stdout=subprocess.PIPE, cwd=REPO, text=True
        )
        try:
            port = int(server.stdout.readline())
            http = [dcr, "ingest", f"clickhouse://127.0.0.1:{port}/otel", "--start", str(start_ns)]
            http += ["--end", str(end_ns), "--dataset", "pulled-http", "--json", "--timeout", "600"]
            hsecs, hpss, hrss, hout, hcpu = measure(http)
            hpulled = json.loads(hout)
        finally:
            server.terminate()
            server.wait()
        otlp = Path(tmp) / "window.jsonl"
        t1 = time.monotonic()
        exported = export_otlp(store, start_ns, end_ns, otlp)
        print(
            f"OTLP/JSON file of the same spans: {exported:,} spans, {otlp.stat().st_size / 2**20:.0f} MiB "
            f"(written in {time.monotonic() - t1:.1f} s)"
        )
        fsecs, fpss, frss, fout, fcpu = measure([dcr, "ingest", str(otlp), "--dataset", "file", "--json"])
        filed = json.loads(fout)

    print()
    print(f"{'':32} {'spans':>10} {'seconds':>8} {'spans/s':>10} {'CPU s':>7} {'peak PSS':>9} {'max RSS':>8}")
    for label, r, s_, c_, p_, m_ in (
        (f"dcr ingest chdb:// ({args.pull_minutes} min)", pulled, secs, cpu, pss, rss),
        ("dcr ingest clickhouse:// (HTTP)", hpulled, hsecs, hcpu, hpss, hrss),
        ("dcr ingest the same, OTLP/JSON", filed, fsecs, fcpu, fpss, frss),
    ):
        print(
            f"{label:32} {r['spans']:>10,} {s_:>8.1f} {r['spans'] / s_:>10,.0f} {c_:>7.1f} {p_:>7.0f}MB {m_:>6.0f}MB"
        )
    assert pulled["spans"] == filed["spans"] == hpulled["spans"], (pulled["spans"], filed["spans"])


if __name__ == "__main__":
    main()
