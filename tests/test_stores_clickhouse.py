"""Pulling from the OpenTelemetry Collector's ClickHouse exporter tables, in process (chDB).

The exporter's exact DDL in its three schema versions (tests/store_exporter.py) holds the scenario
library's spans and logs, inserted as the exporter maps them; `chdb://PATH` pulls them back and:

- the dataset equals the one ingested from the OTLP files, span by span and log by log, in every
  column, but for what the exporter does not store (flags, dropped counts, a log's observed
  time, provenance) and, in its Map schema, the types of attribute values (every value is text);
- every scenario correlates to the same top candidate as from the files (the "Done when");
- sampling (whole traces, in the query; recorded in the manifest and in every report), the cap,
  the pushdown of the range and the services (EXPLAIN shows the partitions and the primary key
  prune), rejects for rows that fail normalisation, and the errors.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

chdb = pytest.importorskip("chdb")

import ingest  # noqa: E402
from correlate import Window, open_dataset  # noqa: E402
from ingest.stores.clickhouse import ClickHousePull, span_line_sql  # noqa: E402
from tests import store_exporter as exporter  # noqa: E402

SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
NAMES = sorted(p.name for p in SCENARIOS.iterdir() if (p / "truth.json").is_file())
SCHEMAS = ("current", "older", "json")
# the current schema holds every scenario; the older and JSON ones a few (the rows are the same,
# their columns differ): the suite stays fast
SOME = [n for n in ("dependency_failure", "lock_clock_skew", "network_delay") if n in NAMES]


def scenarios(schema: str) -> list[str]:
    return NAMES if schema == "current" else SOME


# columns the exporter does not store (or that name this ingest's source)
SPAN_NOT_STORED = {"flags", "dropped_attributes_count", "dropped_events_count", "dropped_links_count"}
PROVENANCE = {"source_id", "source_offset"}
LOG_NOT_STORED = {"observed_time_ns", "dropped_attributes_count"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One chDB data path holding every scenario in every schema: database s_<scenario>_<schema>."""
    path = tmp_path_factory.mktemp("chdb")
    con = chdb.connect(str(path))
    try:
        for schema in SCHEMAS:
            for name in {*scenarios(schema), "healthy", "retry_storm"}:
                exporter.load_scenario(con, SCENARIOS / name, schema, db=f"s_{name}_{schema}")
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCR_HOME", str(tmp_path_factory.mktemp("dcr_home")))
        yield


def truth(name: str) -> dict:
    return json.loads((SCENARIOS / name / "truth.json").read_text())


def whole_range(name: str) -> tuple[int, int]:
    w = truth(name)["window"]
    return w["baseline_start_ns"] - 60 * 10**9, w["incident_end_ns"] + 3600 * 10**9


def pull(store: Path, name: str, schema: str, dataset: str, **opts) -> ingest.IngestResult:
    start, end = whole_range(name)
    options = ingest.PullOptions(start_ns=start, end_ns=end, **opts)
    return ingest.ingest_paths([f"chdb://{store}?database=s_{name}_{schema}"], dataset, pull=options)


def from_files(name: str, dataset: str, logs: bool = True) -> None:
    paths = [str(SCENARIOS / name / "traces.jsonl")] + (
        [str(SCENARIOS / name / "logs.jsonl")] if logs else []
    )
    if dataset not in ingest.list_datasets():
        ingest.ingest_paths(paths, dataset)


def table(dataset: str, kind: str) -> list[dict]:
    h = ingest.open_handle(dataset)
    rows: list[dict] = []
    for f in h.span_files if kind == "spans" else h.log_files:
        rows += pq.read_table(f).to_pylist()
    return rows


def top(dataset: str, name: str) -> tuple[str, str] | None:
    w = truth(name)["window"]
    with open_dataset(dataset) as ds:
        report = ds.correlate(
            Window(w["incident_start_ns"], w["incident_end_ns"]),
            Window(w["baseline_start_ns"], w["baseline_end_ns"]),
        )
    c = report.candidates[0] if report.candidates else None
    return (c.service, c.mechanism) if c else None


# ---- the dataset equals the files' -------------------------------------------------------------


def _value(v, schema: str):
    """An attribute value as the exporter keeps it: text (Map schema), a JSON value (JSON schema)."""
    if schema == "json":
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    return exporter.as_string(_any(v))


def _any(v) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_any(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": _any(x)} for k, x in v.items()]}}
    return {}


def _attrs(text: str | None, schema: str) -> dict | None:
    if text is None:
        return None
    return {k: _value(v, schema) for k, v in json.loads(text).items()}


def _normal(row: dict, kind: str, schema: str) -> dict:
    out = dict(row)
    for col in PROVENANCE | (SPAN_NOT_STORED if kind == "spans" else LOG_NOT_STORED):
        out.pop(col, None)
    if kind == "logs" and schema == "older":
        out.pop("scope_name", None)  # the older logs table has no scope columns
    for col in ("attributes", "resource_attributes", "scope_attributes"):
        if col in out:
            out[col] = _attrs(out[col], schema)
    if kind == "spans":
        events = json.loads(out["events"])
        for e in events:
            e["attributes"] = {k: _value(v, schema) for k, v in e["attributes"].items()}
            e["dropped_attributes_count"] = 0
        out["events"] = events
        links = json.loads(out["links"])
        for ln in links:
            ln["attributes"] = {k: _value(v, schema) for k, v in ln["attributes"].items()}
            ln["dropped_attributes_count"] = 0
            ln["flags"] = 0
        out["links"] = links
    else:
        out["flags"] = (out["flags"] or 0) & 0xFF  # TraceFlags UInt8
    return out


def _key(kind: str):
    if kind == "spans":
        return lambda r: (r["trace_id"], r["span_id"])
    return lambda r: (r["time_ns"], r["service_name"] or "", r["body"] or "", r["span_id"] or "")


@pytest.mark.parametrize("schema", SCHEMAS)
def test_every_span_and_log_equals_the_files(store, home, schema):
    for name in scenarios(schema):
        from_files(name, f"files-{name}")
        result = pull(store, name, schema, f"ch-{schema}-{name}")
        assert result.rejected == 0, name
        for kind in ("spans", "logs"):
            want = sorted((_normal(r, kind, schema) for r in table(f"files-{name}", kind)), key=_key(kind))
            got = sorted(
                (_normal(r, kind, schema) for r in table(f"ch-{schema}-{name}", kind)), key=_key(kind)
            )
            assert len(got) == len(want), (name, kind)
            for g, w in zip(got, want, strict=True):
                assert g == w, (name, kind, {k: (g[k], w[k]) for k in g if g[k] != w[k]})


# ---- the Done when: the same top candidate -----------------------------------------------------


@pytest.mark.parametrize("schema", ["current"])  # the others hold the same rows (above)
def test_every_scenario_correlates_to_the_same_top_candidate(store, home, schema):
    for name in NAMES:
        from_files(name, f"files-{name}")
        if f"ch-{schema}-{name}" not in ingest.list_datasets():
            pull(store, name, schema, f"ch-{schema}-{name}")
        want = top(f"files-{name}", name)
        assert top(f"ch-{schema}-{name}", name) == want, name
        root = truth(name).get("root_cause")
        if root is not None:  # and it is the true cause, as from the files
            assert want is not None and want[0] == root["service"], name


# ---- sampling, the cap, pushdown ---------------------------------------------------------------


def test_past_the_budget_whole_traces_are_sampled_in_the_query_and_every_report_says_so(store, home):
    name = "network_delay"
    from_files(name, f"files-{name}")
    files_spans = table(f"files-{name}", "spans")
    budget = len(files_spans) // 3
    result = pull(store, name, "current", "sampled", budget_spans=budget)
    entry = ingest.open_handle("sampled").manifest["sources"][-1]
    sampling = entry["store"]["sampling"]
    modulus = math.ceil(len(files_spans) / budget)
    assert sampling["modulus"] == modulus and sampling["spans_in_range"] == len(files_spans)
    assert f"cityHash64(TraceId) % {modulus} = 0" in entry["store"]["queries"]["spans"]
    assert f"% {modulus} = 0" in entry["store"]["queries"]["logs"]
    # whole traces: every trace pulled has all its spans
    per_trace = Counter(r["trace_id"] for r in files_spans)
    got = Counter(r["trace_id"] for r in table("sampled", "spans"))
    assert got and all(per_trace[t] == n for t, n in got.items())
    assert 0 < result.spans < len(files_spans)
    # logs follow their traces
    assert all(r["trace_id"] in got for r in table("sampled", "logs") if r["trace_id"])
    with open_dataset("sampled") as ds:
        notes = ds.correlate().notes
    assert any("sampled when pulled" in n and f"one trace in {modulus}" in n for n in notes), notes


def test_the_cap_stops_the_pull_and_says_so(store, home):
    result = pull(store, "healthy", "current", "capped", max_spans=100)
    assert result.spans == 100
    assert "cap of 100" in (result.sources[0].problem or "")
    assert ingest.open_handle("capped").manifest["sources"][-1]["store"]["cap"]["reached"] is True
    with open_dataset("capped") as ds:
        assert any("stopped at its cap" in n for n in ds.correlate().notes)


def test_services_and_the_range_are_pushed_down(store, home, tmp_path):
    name = "retry_storm"
    start, end = whole_range(name)
    services = sorted(
        {r["service_name"] for r in table(f"files-{name}", "spans")}
        if f"files-{name}" in ingest.list_datasets()
        else []
    )
    if not services:
        from_files(name, f"files-{name}")
        services = sorted({r["service_name"] for r in table(f"files-{name}", "spans")})
    chosen = services[:2]
    result = pull(store, name, "current", "two-services", services=tuple(chosen))
    got = {r["service_name"] for r in table("two-services", "spans")}
    assert got == set(chosen) and result.spans > 0
    # a second day of the same spans: the range prunes its partition, the services the primary key
    db = f"s_{name}_current"
    con = chdb.connect(str(store))
    try:
        con.query(f"CREATE TABLE IF NOT EXISTS {db}.two_days AS {db}.otel_traces")
        con.query(f"INSERT INTO {db}.two_days SELECT * FROM {db}.otel_traces")
        con.query(
            f"INSERT INTO {db}.two_days SELECT * REPLACE (Timestamp + INTERVAL 1 DAY AS Timestamp) FROM {db}.otel_traces"
        )
        cols = {
            n: t
            for n, t in (
                line.split("\t")
                for line in con.query(
                    f"SELECT name, type FROM system.columns WHERE database = '{db}' AND table = 'two_days'",
                    "TSV",
                )
                .bytes()
                .decode()
                .splitlines()
            )
        }
        src = ingest.stores.parse_source(f"chdb://{store}?database={db}&traces=two_days")
        p = ClickHousePull(src, ingest.PullOptions(start_ns=start, end_ns=end, services=tuple(chosen)))
        sql = f"SELECT {span_line_sql(cols)} FROM {db}.two_days WHERE {p._where(cols, logs=False)}"
        explain = (
            con.query(
                "EXPLAIN indexes = 1 " + sql,
                "TSV",
                params={**p._params(), "services": "[" + ",".join(f"'{s}'" for s in chosen) + "]"},
            )
            .bytes()
            .decode()
        )
    finally:
        con.close()
    assert "Partition" in explain and "PrimaryKey" in explain, explain
    assert "Parts: 1/2" in explain, explain  # one day of two
    assert "ServiceName in" in explain.replace("IN", "in"), explain


# ---- rejects, errors, the manifest -------------------------------------------------------------


def test_a_row_that_fails_normalisation_is_a_reject_and_the_others_land(store, home):
    db = "s_healthy_current"
    con = chdb.connect(str(store))
    try:
        con.query(f"CREATE TABLE IF NOT EXISTS {db}.bad AS {db}.otel_traces")
        con.query(f"INSERT INTO {db}.bad SELECT * FROM {db}.otel_traces LIMIT 10")
        con.query(
            f"INSERT INTO {db}.bad SELECT * REPLACE ('not-hex' AS SpanId) FROM {db}.otel_traces LIMIT 1"
        )
    finally:
        con.close()
    start, end = whole_range("healthy")
    result = ingest.ingest_paths(
        [f"chdb://{store}?database={db}&traces=bad&logs="],
        "with-reject",
        pull=ingest.PullOptions(start_ns=start, end_ns=end),
    )
    assert (result.spans, result.rejected) == (10, 1)
    lines = Path(result.rejects_path).read_text().splitlines()
    rec = json.loads(lines[0])
    assert rec["reason"] == "span id is not 16 hex characters" and "not-hex" in rec["raw"]
    assert rec["source"].startswith("chdb://")


def test_the_manifest_records_the_store_the_query_and_the_range(store, home):
    start, end = whole_range("healthy")
    pull(store, "healthy", "older", "recorded")
    entry = ingest.open_handle("recorded").manifest["sources"][-1]
    st = entry["store"]
    assert entry["path"] == f"chdb://{store}?database=s_healthy_older" and entry["format"] == "clickhouse"
    assert (st["start_ns"], st["end_ns"]) == (start, end)
    assert st["tables"] == {"traces": "s_healthy_older.otel_traces", "logs": "s_healthy_older.otel_logs"}
    assert st["schema"]["traces"] == {"attributes": "map", "scope": "attributes", "duration": "Int64"}
    assert "Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64})" in st["queries"]["spans"]
    assert st["parameters"] == {"start_ns": start, "end_ns": end}
    assert st["sampling"] is None and st["cap"]["reached"] is False
    summary = ingest.dataset_summary("recorded")["sources"][-1]["store"]
    assert "queries" not in summary and summary["kind"] == "chdb"


def test_missing_table_range_and_bad_options_are_said(store, home):
    start, end = whole_range("healthy")
    opts = ingest.PullOptions(start_ns=start, end_ns=end)
    with pytest.raises(ingest.StoreError, match="no table s_healthy_current.nope"):
        ingest.ingest_paths([f"chdb://{store}?database=s_healthy_current&traces=nope"], "x1", pull=opts)
    with pytest.raises(ingest.StoreError, match="needs a start and an end"):
        ingest.ingest_paths([f"chdb://{store}?database=s_healthy_current"], "x2")
    with pytest.raises(ingest.StoreError, match="unknown option"):
        ingest.ingest_paths([f"chdb://{store}?databse=x"], "x3", pull=opts)
    with pytest.raises(ingest.NoInput, match="nothing between"):
        ingest.ingest_paths(
            [f"chdb://{store}?database=s_healthy_current"],
            "x4",
            pull=ingest.PullOptions(start_ns=10**18, end_ns=10**18 + 10**9),
        )
    assert not {"x1", "x2", "x3", "x4"} & set(ingest.list_datasets())


def test_dcr_ingest_pulls_from_chdb(store, home, capsys):
    from mcp_server.cli import main

    name = "dependency_failure"
    start, end = whole_range(name)
    rc = main(
        [
            "ingest",
            f"chdb://{store}?database=s_{name}_current",
            "--start",
            str(start),
            "--end",
            str(end),
            "--dataset",
            "cli-pull",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["spans"] > 0 and out["logs"] > 0
    assert out["sources"][0]["format"] == "clickhouse"
    rc = main(["ingest", f"chdb://{store}?database=s_{name}_current", "--dataset", "cli-pull"])
    assert rc == 2 and "needs a start and an end" in capsys.readouterr().err
