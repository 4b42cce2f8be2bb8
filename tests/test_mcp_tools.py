"""Every data tool through the in-process mcp.Client, in both protocol eras, on ingested fixtures."""

from __future__ import annotations

import json

import pytest

from tests.mcp_helpers import MODES, OTLP_EXAMPLES, call, error_text, ingest_fixture, ok, run_client

pytestmark = pytest.mark.parametrize("mode", MODES)


def test_list_datasets_empty_then_ingested(mode):
    assert ok(call(mode, "list_datasets"))["datasets"] == []
    r = ingest_fixture()
    out = ok(call(mode, "list_datasets"))
    (ds,) = out["datasets"]
    assert (ds["name"], ds["spans"], ds["logs"]) == ("jaeger", r.spans, r.logs)
    assert out["page"]["total_count"] == out["page"]["returned_count"] == 1
    assert ds["start"].endswith("Z") and ds["services"]


def test_ingest_traces_reports_progress_and_counts(mode):
    seen = []

    async def progress(done, total, message):
        seen.append((done, total, message))

    out = ok(
        call(
            mode,
            "ingest_traces",
            {"paths": [str(OTLP_EXAMPLES)], "dataset": "ex"},
            progress_callback=progress,
        )
    )
    assert (out["dataset"], out["spans"], out["logs"], out["rejected"]) == ("ex", 1, 2, 0)
    assert {s["path"].rsplit("/", 1)[-1] for s in out["sources"]} == {
        "events.json",
        "logs.json",
        "trace.json",
    }
    assert out["totals"]["spans"] == 1 and out["totals"]["name"] == "ex"
    assert seen, "no progress notification arrived"
    done, total, message = seen[-1]
    assert done == total == sum(p.stat().st_size for p in OTLP_EXAMPLES.iterdir())
    assert message.startswith("ingesting ")
    # the same files again: nothing new, each source says why
    again = ok(call(mode, "ingest_traces", {"paths": [str(OTLP_EXAMPLES)], "dataset": "ex"}))
    assert again["spans"] == 0 and all(s["skipped"] == "already ingested" for s in again["sources"])


def test_ingest_traces_errors_are_one_line(mode):
    text = error_text(call(mode, "ingest_traces", {"paths": ["/no/such/file.json"], "dataset": "x"}))
    assert "/no/such/file.json" in text and "\n" not in text
    text = error_text(call(mode, "ingest_traces", {"paths": ["-"], "dataset": "x"}))
    assert "stdin" in text
    text = error_text(call(mode, "ingest_traces", {"paths": [str(OTLP_EXAMPLES)], "dataset": "../up"}))
    assert "bad dataset name" in text


def test_query_spans_counts_and_errors(mode):
    r = ingest_fixture()
    out = ok(call(mode, "query_spans", {"dataset": "jaeger", "sql": "SELECT count(*) AS n FROM spans"}))
    assert out["columns"] == ["n"] and out["rows"] == [[r.spans]] and out["more_rows"] is False
    out = ok(call(mode, "query_spans", {"dataset": "jaeger", "sql": "SELECT span_id FROM spans", "limit": 3}))
    assert len(out["rows"]) == 3 and out["more_rows"] is True and out["row_cap"] == 3
    text = error_text(call(mode, "query_spans", {"dataset": "nope", "sql": "SELECT 1"}))
    assert "no dataset named 'nope'" in text and "jaeger" in text  # lists the known ones
    text = error_text(call(mode, "query_spans", {"dataset": "jaeger", "sql": "DELETE FROM spans"}))
    assert "\n" not in text
    text = error_text(call(mode, "query_spans", {"dataset": "jaeger", "sql": "SELECT 1", "limit": 0}))
    assert "limit" in text


def test_get_trace_tree(mode):
    ingest_fixture()
    q = "SELECT trace_id, count(*) AS n FROM spans GROUP BY 1 ORDER BY n DESC, trace_id LIMIT 1"
    trace_id, n = ok(call(mode, "query_spans", {"dataset": "jaeger", "sql": q}))["rows"][0]
    out = ok(call(mode, "get_trace", {"dataset": "jaeger", "trace_id": trace_id.upper()}))
    assert out["trace_id"] == trace_id and out["span_count"] == n and out["view"] == "summary"
    assert out["rows"] and out["columns"][:3] == ["span_id", "service", "operation"]  # the critical path
    assert out["start"].endswith("Z") and out["root"] and out["services"]
    spans = ok(call(mode, "get_trace", {"dataset": "jaeger", "trace_id": trace_id, "view": "spans"}))["rows"]
    assert len(spans) == n
    roots = [s for s in spans if s["depth"] == 0]
    assert roots and out["duration_ms"] >= max(s["duration_ns"] for s in roots) / 1e6 * 0.99
    text = error_text(call(mode, "get_trace", {"dataset": "jaeger", "trace_id": "deadbeef" * 4}))
    assert "no spans of trace" in text


def test_correlate_whole_dataset_and_bad_windows(mode):
    ingest_fixture()
    ds = ok(call(mode, "list_datasets"))["datasets"][0]
    out = ok(call(mode, "correlate", {"dataset": "jaeger"}))
    assert out["dataset"] == "jaeger" and out["window"]["start"] == ds["start"]
    assert isinstance(out["candidates"], list) and out["page"]["total_count"] == len(out["findings"])
    text = error_text(call(mode, "correlate", {"dataset": "jaeger", "start": "yesterday"}))
    assert text.endswith("or epoch seconds, milliseconds or nanoseconds") and "start:" in text
    text = error_text(call(mode, "correlate", {"dataset": "jaeger", "start": ds["end"], "end": ds["start"]}))
    assert "end (" in text and "must be after start" in text
    text = error_text(call(mode, "correlate", {"dataset": "jaeger", "start": "2200-01-01T00:00:00Z"}))
    assert "start 2200-01-01" in text and "after the dataset's last span" in text
    text = error_text(call(mode, "correlate", {"dataset": "jaeger", "start": 1e300}))
    assert "start: time '1e+300' is out of range: times run from 1677-09-21" in text
    text = error_text(call(mode, "correlate", {"dataset": "jaeger", "baseline_start": ds["start"]}))
    assert "baseline_end is missing" in text
    text = error_text(call(mode, "correlate", {"dataset": "ghost"}))
    assert "no dataset named 'ghost'" in text


def test_resources(mode):
    ingest_fixture()

    async def body(client):
        templates = await client.list_resource_templates()
        summary = await client.read_resource("dataset://jaeger")
        schema = await client.read_resource("dataset://jaeger/schema")
        return templates, summary, schema

    templates, summary, schema = run_client(mode, body)
    assert {t.uri_template for t in templates.resource_templates} == {
        "dataset://{name}",
        "dataset://{name}/schema",
    }
    s = json.loads(summary.contents[0].text)
    assert s["dataset"] == "jaeger" and s["spans"] > 0 and s["start"].endswith("Z")
    views = json.loads(schema.contents[0].text)["views"]
    assert set(views) == {"spans", "logs", "traces", "service_edges"}
    assert views["spans"]["columns"]["start_ns"] == "BIGINT"


def test_unknown_resource_lists_datasets(mode):
    ingest_fixture()
    from mcp import MCPError

    async def body(client):
        with pytest.raises(MCPError) as err:
            await client.read_resource("dataset://ghost")
        return str(err.value)

    assert "no dataset named 'ghost'" in run_client(mode, body)


def test_ingest_traces_beyond_loopback_reads_only_under_the_ingest_roots(mode, tmp_path, monkeypatch):
    import os
    import shutil

    from mcp_server import exposure, http
    from mcp_server.server import build_server

    inside = tmp_path / "dumps"
    shutil.copytree(OTLP_EXAMPLES, inside / "examples")
    outside = tmp_path / "elsewhere"
    shutil.copytree(OTLP_EXAMPLES, outside)
    os.symlink(outside, inside / "link_out")
    http.build_app(build_server(), "0.0.0.0", "a-token")  # what `dcr serve --host 0.0.0.0` does
    try:
        assert exposure.is_exposed()
        monkeypatch.delenv("DCR_INGEST_ROOTS", raising=False)
        text = error_text(call(mode, "ingest_traces", {"paths": [str(inside / "examples")], "dataset": "x"}))
        assert "reads only under DCR_INGEST_ROOTS" in text
        monkeypatch.setenv("DCR_INGEST_ROOTS", str(inside))
        for refused in (str(outside), "/etc/passwd", str(inside / "link_out"), str(inside / "*" / "*.json")):
            text = error_text(call(mode, "ingest_traces", {"paths": [refused], "dataset": "x"}))
            assert "outside the ingest roots (DCR_INGEST_ROOTS)" in text, (refused, text)
        out = ok(call(mode, "ingest_traces", {"paths": [str(inside / "examples")], "dataset": "x"}))
        assert out["spans"] > 0
    finally:
        exposure.set_exposed(False)
    # on loopback (and stdio) the user's own agent reads any path, as before
    http.build_app(build_server(), "127.0.0.1", None)
    assert ok(call(mode, "ingest_traces", {"paths": [str(outside)], "dataset": "y"}))["spans"] > 0
