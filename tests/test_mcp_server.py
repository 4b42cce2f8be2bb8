"""The server as a whole: tools/list contract and size, DCR_TOOLS, output limits (paging and spilling)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mcp_server import limits
from mcp_server.server import build_server, compact_schema, select_specs
from mcp_server.tools import GROUPS
from tests.mcp_helpers import MODES, call, error_text, ingest_fixture, ok, run_client

# Tools whose answers are paged: their descriptions must say how to read a cut answer.
PAGED = {"query_spans", "get_trace", "correlate"}
TOOLS_LIST_BUDGET_TOKENS = 8_000


def _tools(mode: str, tools: str | None = None) -> list[dict]:
    async def body(client):
        return (await client.list_tools()).tools

    listed = run_client(mode, body, tools=tools)
    return [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in listed]


@pytest.mark.parametrize("mode", MODES)
def test_every_tool_is_typed_annotated_and_described(mode):
    tools = _tools(mode)
    assert [t["name"] for t in tools] == [s.name for s in select_specs(None)]
    for t in tools:
        assert t["inputSchema"]["type"] == "object"
        assert t["outputSchema"]["type"] == "object", t["name"]
        assert "page" in t["outputSchema"]["properties"] or t["name"] not in PAGED
        ann = t["annotations"]
        assert {"readOnlyHint", "idempotentHint", "openWorldHint"} <= set(ann), t["name"]
        assert len(t["description"]) >= 120, t["name"]
        assert '"title"' not in json.dumps(t["inputSchema"]).replace('"title":{', "")
    for t in tools:
        if t["name"] in PAGED:
            assert "next_cursor" in t["description"] or "returned_count" in t["description"], t["name"]


def test_tools_list_fits_the_budget():
    """Estimate: ceil(characters / limits.CHARS_PER_TOKEN) of the compact JSON of the tools/list answer
    (3 characters a token: more tokens than a real tokenizer counts for schema JSON)."""
    tools = _tools("legacy")
    text = json.dumps({"tools": tools}, separators=(",", ":"))
    estimate = math.ceil(len(text) / limits.CHARS_PER_TOKEN)
    assert estimate < TOOLS_LIST_BUDGET_TOKENS, f"tools/list ~{estimate} tokens"


def test_dcr_tools_selects_a_subset(monkeypatch):
    assert [t["name"] for t in _tools("legacy", "correlate,query_spans")] == ["query_spans", "correlate"]
    monkeypatch.setenv("DCR_TOOLS", "datasets")
    assert {t["name"] for t in _tools("auto")} == {"ingest_traces", "list_datasets"}
    with pytest.raises(ValueError, match="unknown tools nope.*groups"):
        build_server("nope")
    assert set(GROUPS) >= {s.group for s in select_specs(None)}


def test_compact_schema_keeps_the_contract():
    schema = {
        "title": "Args",
        "type": "object",
        "properties": {
            "title": {"title": "Title", "type": "string"},
            "n": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
            "xs": {
                "anyOf": [{"items": {"type": "string"}, "type": "array"}, {"type": "null"}],
                "default": None,
            },
        },
        "required": ["title"],
    }
    assert compact_schema(schema) == {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "n": {"type": "integer"},
            "xs": {"items": {"type": "string"}, "type": "array"},
        },
        "required": ["title"],
    }
    out = compact_schema(schema, output=True)  # outputs keep null: the answer may hold it
    assert "required" not in out and out["properties"]["n"] == {"type": ["integer", "null"]}
    assert out["properties"]["xs"]["anyOf"][1] == {"type": "null"}


# ---- output limits ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_big_answer_is_paged_and_spilled(mode, monkeypatch, dcr_home):
    ingest_fixture()
    sql = "SELECT a.span_id, b.span_id AS other, a.name FROM spans a, spans b ORDER BY 1, 2, 3 LIMIT 300"
    full = ok(call(mode, "query_spans", {"dataset": "jaeger", "sql": sql, "limit": 10_000}))
    assert full["page"]["spill_path"] is None
    full_tokens = limits.estimate_tokens(limits.dumps(full))
    limit = 1_500
    assert full_tokens > 2 * limit, "the fixture is too small to exercise paging"

    monkeypatch.setenv("MAX_MCP_OUTPUT_TOKENS", str(limit))
    rows, cursor, pages = [], None, 0
    while True:
        args = {"dataset": "jaeger", "sql": sql, "limit": 10_000, **({"cursor": cursor} if cursor else {})}
        result = call(mode, "query_spans", args)
        page = ok(result)
        assert limits.estimate_tokens(result.content[0].text) <= limit
        assert page["page"]["total_count"] == len(full["rows"]) and page["columns"] == full["columns"]
        assert page["page"]["returned_count"] == len(page["rows"]) >= 1
        assert "MAX_MCP_OUTPUT_TOKENS=1500" in page["page"]["note"]
        spill = Path(page["page"]["spill_path"])
        assert spill.parent == dcr_home / "mcp-output"
        rows += page["rows"]
        pages += 1
        cursor = page["page"]["next_cursor"]
        if cursor is None:
            break
    assert pages >= 3 and rows == full["rows"]
    whole = json.loads(spill.read_text())
    assert whole["rows"] == full["rows"] and "page" not in whole


@pytest.mark.parametrize("mode", MODES)
def test_a_row_too_big_for_a_page_comes_with_its_strings_cut(mode, monkeypatch):
    ingest_fixture()
    sql = "SELECT trace_id, span_id, repeat(name, 2000) AS big FROM spans ORDER BY 1, 2 LIMIT 2"
    monkeypatch.setenv("MAX_MCP_OUTPUT_TOKENS", "1500")
    first = ok(call(mode, "query_spans", {"dataset": "jaeger", "sql": sql}))
    assert first["page"]["returned_count"] == 1 and first["page"]["total_count"] == 2
    assert first["rows"][0][2].endswith("the full text is in page.spill_path]")
    second = ok(
        call(mode, "query_spans", {"dataset": "jaeger", "sql": sql, "cursor": first["page"]["next_cursor"]})
    )
    assert second["page"]["next_cursor"] is None and second["rows"][0][1] != first["rows"][0][1]
    whole = json.loads(Path(first["page"]["spill_path"]).read_text())
    assert len(whole["rows"][0][2]) > 10_000 and whole["rows"][0][:2] == first["rows"][0][:2]


@pytest.mark.parametrize("mode", MODES)
def test_a_row_holding_a_long_list_is_cut_to_the_budget(mode, monkeypatch):
    """One row too big for a page whose bulk is a list, not a string: the list is cut too."""
    ingest_fixture()
    monkeypatch.setenv("MAX_MCP_OUTPUT_TOKENS", "3000")
    sql = "SELECT list(span_id) AS ids, 1/0 AS inf FROM spans, range(100)"
    result = call(mode, "query_spans", {"dataset": "jaeger", "sql": sql})
    out = ok(result)  # also: the text and structured copies say the same
    text = sum(len(c.text) for c in result.content if getattr(c, "text", None) is not None)
    assert text + len(json.dumps(out, ensure_ascii=False, separators=(",", ":"))) <= 4 * 3000
    ids, inf = out["rows"][0]
    assert inf is None and ids[-1].endswith("more in page.spill_path]") and len(ids) > 2
    whole = json.loads(Path(out["page"]["spill_path"]).read_text())
    assert len(whole["rows"][0][0]) > 1000


@pytest.mark.parametrize("mode", MODES)
def test_bad_cursor_is_a_tool_error(mode):
    ingest_fixture()
    text = error_text(call(mode, "query_spans", {"dataset": "jaeger", "sql": "SELECT 1", "cursor": "junk"}))
    assert "was not made by query_spans" in text
    text = error_text(
        call(
            mode,
            "query_spans",
            {"dataset": "jaeger", "sql": "SELECT 1", "cursor": "queryspans-0123456789abcdef:5"},
        )
    )
    assert "expired" in text


def test_a_cut_list_still_counts_what_it_left_out_at_the_tightest_budget():
    """The short marker cuts strings the long one cannot; it cut the lists' own markers too
    ("…[39 more in p…[cut]"), and a list cut again then counted 1 left out of 39."""
    payload = {
        "a": [{"k": "v" * 20, "e": ["E1", "E2"]} for _ in range(40)],
        "b": ["w" * 30 for _ in range(40)],
    }
    out = limits._trim_strings(payload, 20, lists=True)
    for key in ("a", "b"):
        *shown, marker = out[key]
        m = limits._MORE_RE.fullmatch(marker)
        assert m and len(shown) + int(m.group(1)) == 40, out[key]
    # nor an id: a session id cut to fit was of no use to the next call (continue_conversation)
    sid = "conv_" + "9" * 40
    out = limits._trim_strings({"session_id": sid, "summary": "word " * 400}, 20, lists=True)
    assert out["session_id"] == sid and out["summary"].endswith("…[cut]")


def test_long_strings_are_cut_when_nothing_else_fits(monkeypatch, dcr_home):
    monkeypatch.setenv("MAX_MCP_OUTPUT_TOKENS", "1500")
    payload = {"report": "x" * 50_000, "items": [{"i": i} for i in range(10)]}
    shaped = limits.shape(payload, "items", "escalate_analysis")
    assert shaped.truncated
    out = shaped.payload
    assert limits.estimate_tokens(limits.dumps(out)) <= 1500
    assert out["report"].endswith("the full text is in page.spill_path]")
    assert json.loads(Path(out["page"]["spill_path"]).read_text())["report"] == payload["report"]


def test_max_output_tokens_setting(monkeypatch):
    monkeypatch.delenv("MAX_MCP_OUTPUT_TOKENS", raising=False)
    assert limits.max_output_tokens() == 25_000
    monkeypatch.setenv("MAX_MCP_OUTPUT_TOKENS", "40000")
    assert limits.max_output_tokens() == 40_000
    for bad in ("lots", "10", "1499"):
        monkeypatch.setenv("MAX_MCP_OUTPUT_TOKENS", bad)
        with pytest.raises(ValueError, match="MAX_MCP_OUTPUT_TOKENS"):
            limits.max_output_tokens()


@pytest.mark.parametrize("mode", MODES)
def test_a_big_trace_is_paged_by_span(mode, monkeypatch):
    from tests.mcp_helpers import ingest_scenario

    ingest_scenario()
    q = "SELECT trace_id FROM spans GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    trace_id = ok(call(mode, "query_spans", {"dataset": "shop", "sql": q}))["rows"][0][0]
    whole = ok(call(mode, "get_trace", {"dataset": "shop", "trace_id": trace_id, "view": "spans"}))
    assert whole["page"]["next_cursor"] is None and len(whole["rows"]) == whole["span_count"] >= 10
    monkeypatch.setenv("MAX_MCP_OUTPUT_TOKENS", "1500")
    spans, args = [], {"dataset": "shop", "trace_id": trace_id, "view": "spans"}
    while True:
        page = ok(call(mode, "get_trace", args))
        assert page["span_count"] == whole["span_count"] and page["services"] == whole["services"]
        spans += page["rows"]
        if not page["page"]["next_cursor"]:
            break
        args = {**args, "cursor": page["page"]["next_cursor"]}
    assert spans == whole["rows"] and "cursor" in args
