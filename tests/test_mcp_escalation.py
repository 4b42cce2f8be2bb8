"""The escalation tools through the in-process mcp.Client, both protocol eras, on a recorded scenario:
offline without a key, Gemini (the local REST stub) with one, and the time budget."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mcp_server.tools.escalation import TIMEOUT_WARNING
from tests.gemini_stub import DEFAULT_ANALYSIS, GeminiStub
from tests.mcp_helpers import (
    BASELINE,
    INCIDENT,
    MODES,
    call,
    error_text,
    ingest_scenario,
    ok,
    run_client,
    truth,
)

pytestmark = pytest.mark.parametrize("mode", MODES)

CONTEXT = {
    "stuck_description": "checkout returns 502 since 09:15 and I cannot see why",
    "attempted_approaches": ["restarted checkout", "read checkout's handler"],
    "partial_findings": ["errors started at 09:15", {"service": "pricing", "status": 500}],
    "code_scope": {
        "files": [],
        "entry_points": [{"file": "pricing/app.py", "function_name": "quote"}],
        "service_names": ["pricing", "checkout"],
    },
}


def _sent_text(stub: GeminiStub) -> str:
    (req,) = stub.generate_requests()
    body = req.json
    return body["systemInstruction"]["parts"][0]["text"] + "\n" + body["contents"][-1]["parts"][0]["text"]


def test_correlate_finds_the_scenarios_root_cause(mode):
    ingest_scenario()
    out = ok(call(mode, "correlate", {"dataset": "shop", **INCIDENT, **BASELINE}))
    top = out["candidates"][0]
    t = truth()["root_cause"]
    assert top["service"] == t["service"] and top["mechanism"] in t["mechanisms"]
    assert top["evidence"]["trace_ids"] and "sql" not in top["evidence"]  # behind include_sql
    assert any("include_sql=true" in n for n in out["notes"])
    assert out["baseline"]["start"] == "2025-06-12T09:00:00.000000Z"
    full = ok(call(mode, "correlate", {"dataset": "shop", **INCIDENT, **BASELINE, "include_sql": True}))
    assert full["candidates"][0]["evidence"]["sql"].lstrip().upper().startswith(("WITH", "SELECT"))


def test_should_escalate(mode):
    ingest_scenario()
    quiet = ok(call(mode, "should_escalate", {"files_involved": 2}))
    assert quiet["escalate"] is False and quiet["reasons"] == []
    busy = ok(call(mode, "should_escalate", {"dataset": "shop", "attempted_approaches": 6}))
    assert busy["escalate"] is True and busy["evidence"] in ("clear", "unclear", "none")
    assert busy["signals"]["trace_bytes"] > 0 and busy["signals"]["candidates"] is not None
    assert any("6 approaches attempted" in r for r in busy["reasons"])
    # the services involved are those the candidates name, not the dataset's eleven
    incident = ok(call(mode, "should_escalate", {"dataset": "shop", **INCIDENT}))
    assert incident["signals"]["services_involved"] <= 3 and incident["escalate"] is False
    narrow = ok(call(mode, "should_escalate", {"dataset": "shop", "services": ["pricing"], **INCIDENT}))
    assert narrow["signals"]["services_involved"] == 1 and narrow["signals"]["time_span_s"] == 900


def test_escalate_offline_without_a_key(mode):
    ingest_scenario()
    out = ok(
        call(
            mode,
            "escalate_analysis",
            {
                "claude_context": CONTEXT,
                "dataset": "shop",
                **INCIDENT,
                "analysis_type": "cross_system",
                "depth_level": 2,
            },
        )
    )
    assert out["provider"] == "offline" and out["checked_by_model"] is False
    assert out["analysis"]["summary"] and isinstance(out["analysis"]["root_causes"], list)
    assert out["analysis"]["root_causes"][0]["service"] == "pricing"
    bundle = Path(out["bundle_path"]).read_text()
    assert CONTEXT["stuck_description"] in bundle and "restarted checkout" in bundle
    assert "pricing/app.py:quote" in bundle


def test_escalate_with_gemini(mode, stub):
    ingest_scenario()
    out = ok(
        call(
            mode,
            "escalate_analysis",
            {
                "claude_context": CONTEXT,
                "dataset": "shop",
                **INCIDENT,
                "question": "Which service starts the 502s?",
                "analysis_type": "hypothesis_test",
            },
        )
    )
    assert out["provider"] == "gemini" and out["checked_by_model"] is True and out["partial"] is False
    assert out["analysis"] == DEFAULT_ANALYSIS
    sent = _sent_text(stub)
    assert "Which service starts the 502s?" in sent and "Analysis type: hypothesis_test" in sent


def test_time_budget_returns_the_offline_report_marked_partial(mode, stub):
    ingest_scenario()
    stub.slow(6.0)
    t0 = time.monotonic()
    out = ok(
        call(
            mode,
            "escalate_analysis",
            {"claude_context": CONTEXT, "dataset": "shop", **INCIDENT, "time_budget_seconds": 1},
        )
    )
    assert time.monotonic() - t0 < 5.5
    assert out["partial"] is True and out["warnings"][0] == TIMEOUT_WARNING
    assert out["provider"] == "offline" and out["analysis"]["summary"]


def test_escalate_errors(mode):
    ingest_scenario()
    text = error_text(call(mode, "escalate_analysis", {"claude_context": {"stuck_description": " "}}))
    assert "stuck_description" in text
    text = error_text(call(mode, "escalate_analysis", {"claude_context": CONTEXT, "dataset": "nope"}))
    assert "no dataset named 'nope'" in text and "shop" in text
    text = error_text(
        call(
            mode,
            "escalate_analysis",
            {"claude_context": CONTEXT, "dataset": "shop", "start": "2025-06-12T09:30:00Z", "end": "09:00"},
        )
    )
    assert text.startswith("Error executing tool escalate_analysis: end:")
    text = error_text(call(mode, "escalate_analysis", {"claude_context": CONTEXT, "depth_level": 9}))
    assert text == (
        "Error executing tool escalate_analysis: bad arguments: depth_level: "
        "Input should be less than or equal to 5"
    )
    text = error_text(call(mode, "escalate_analysis", {"claude_context": {"code_scope": {}}}))
    assert (
        "bad arguments: claude_context.stuck_description: Field required; claude_context is an object: "
        in text
    )
    # the shape expected, as JSON the agent can fill in
    shape = json.loads(text.split("claude_context is an object: ", 1)[1])
    assert list(shape)[0] == "stuck_description" and shape["code_scope"]["files"] == ["…"]
    text = error_text(call(mode, "escalate_analysis", {"claude_context": "checkout fails"}))
    assert "claude_context: Input should be an object; claude_context is an object: {" in text
    assert "ClaudeContext" not in text


def test_conversation_round_trip(mode):
    ingest_scenario()

    async def body(client):
        start = await client.call_tool(
            "start_conversation",
            {
                "claude_context": CONTEXT,
                "dataset": "shop",
                **INCIDENT,
                "initial_question": "What fails first?",
            },
        )
        sid = ok(start)["session_id"]
        more = await client.call_tool("continue_conversation", {"session_id": sid, "message": "And pricing?"})
        status = await client.call_tool("get_conversation_status", {"session_id": sid})
        listed = await client.call_tool("list_conversations", {"state": "active"})
        final = await client.call_tool(
            "finalize_conversation", {"session_id": sid, "summary_format": "concise"}
        )
        after = await client.call_tool("get_conversation_status", {"session_id": sid})
        gone = await client.call_tool("continue_conversation", {"session_id": "conv_nope", "message": "hi"})
        return start, more, status, listed, final, after, gone

    start, more, status, listed, final, after, gone = run_client(mode, body)
    first = ok(start)
    assert first["turn"] == 1 and first["status"] == "ok" and first["provider"] == "offline"
    assert first["escalation_id"] and Path(first["bundle_path"]).is_file()
    second = ok(more)
    assert second["session_id"] == first["session_id"] and second["turn"] == 2
    assert second["turns_left"] == first["turns_left"] - 1
    st = ok(status)
    assert (st["state"], st["turns"], st["question"]) == ("active", 2, "What fails first?")
    assert [c["session_id"] for c in ok(listed)["conversations"]] == [first["session_id"]]
    summary = ok(final)
    assert summary["summary_format"] == "concise" and summary["turns"] == 2
    assert "Root cause:" in summary["summary_markdown"]
    assert ok(after)["state"] == "finalized"
    assert "no conversation 'conv_nope'" in error_text(gone)


def test_a_follow_up_finds_a_word_inside_a_joined_name(mode):
    """The offline follow-up: "the replica" and "psycopg" are mentioned by items that say
    tax-db-replica-3 and psycopg.OperationalError; an item is listed once."""
    ingest_scenario()

    async def body(client):
        start = await client.call_tool(
            "start_conversation", {"claude_context": CONTEXT, "dataset": "shop", **INCIDENT}
        )
        sid = ok(start)["session_id"]
        out = []
        for message in ("what about the replica?", "what about psycopg?", "what about the zeppelin?"):
            out.append(
                await client.call_tool("continue_conversation", {"session_id": sid, "message": message})
            )
        return out

    replica, psycopg, zeppelin = (ok(r)["analysis"]["summary"] for r in run_client(mode, body))
    for said in (replica, psycopg):
        assert "the bundle items that mention it are E" in said, said
        listed = said.split("mention it are ")[1].split(".")[0].split(", ")
        assert len({item.split()[0] for item in listed}) == len(listed)
    assert "nothing in the bundle mentions it" in zeppelin


FOCUSED = [
    (
        "trace_execution_path",
        {
            "entry_point": {"file": "checkout/app.py", "line": 42, "function_name": "place_order"},
            "max_depth": 4,
        },
        "execution_trace",
        "Trace the execution path from checkout/app.py:place_order, following calls up to 4",
    ),
    (
        "hypothesis_test",
        {
            "hypothesis": "the tax replica refuses connections",
            "test_approach": "compare pricing errors",
            "code_scope": {"files": [], "entry_points": ["pricing/tax.py:lookup"]},
        },
        "hypothesis_test",
        "Test this hypothesis: the tax replica refuses connections",
    ),
    (
        "cross_system_impact",
        {
            "change_scope": {"files": ["pricing/config.py"], "service_names": ["pricing"]},
            "impact_types": ["breaking"],
        },
        "cross_system",
        "What is the breaking impact across service boundaries of changing pricing/config.py",
    ),
    (
        "performance_bottleneck",
        {
            "code_path": {
                "entry_point": {"file": "catalog/index.py", "line": 7},
                "suspected_issues": ["N+1"],
            },
            "profile_depth": 2,
        },
        "performance",
        "Find the performance bottlenecks on the path starting at catalog/index.py:7. Suspected: N+1.",
    ),
]


@pytest.mark.parametrize(("tool", "args", "analysis_type", "question"), FOCUSED, ids=[f[0] for f in FOCUSED])
def test_focused_tools_escalate_with_their_own_question(mode, stub, tool, args, analysis_type, question):
    ingest_scenario()
    out = ok(call(mode, tool, {**args, "dataset": "shop", **INCIDENT}))
    assert out["provider"] == "gemini" and out["analysis"] == DEFAULT_ANALYSIS
    sent = _sent_text(stub)
    assert f"Analysis type: {analysis_type}" in sent and question in sent


def test_first_turn_names_each_warning_once(mode):
    """A refused file is warned about by the escalation and repeated by its first turn: shown once."""
    ingest_scenario()
    context = {
        **CONTEXT,
        "code_scope": {**CONTEXT["code_scope"], "files": ["/etc/passwd", "../../outside.py"]},
    }

    async def body(client):
        return await client.call_tool(
            "start_conversation",
            {
                "claude_context": context,
                "dataset": "shop",
                **INCIDENT,
                "initial_question": "What fails first?",
            },
        )

    first = ok(run_client(mode, body))
    refused = [w for w in first["warnings"] if "/etc/passwd" in w]
    assert len(refused) == 1, first["warnings"]
    assert len(first["warnings"]) == len(set(first["warnings"]))


def test_should_escalate_judges_the_dataset_as_an_escalation_of_it_would(mode):
    """One computation in the package (escalation.should_escalate_for, weighed against the evidence
    by escalation.decide.weigh_evidence) for the tool and the bundle."""
    from correlate.times import parse_time_ns
    from correlate.types import Window
    from escalation import should_escalate_for
    from escalation.decide import weigh_evidence

    ingest_scenario()
    out = ok(call(mode, "should_escalate", {"dataset": "shop", **INCIDENT, "attempted_approaches": 6}))

    window = Window(parse_time_ns(INCIDENT["start"]), parse_time_ns(INCIDENT["end"]))
    want = weigh_evidence(
        should_escalate_for("shop", window=window, attempted_approaches=6), "shop", window
    ).to_dict()
    assert out["signals"]["trace_bytes"] == want["signals"]["trace_bytes"] > 0
    assert out["signals"]["services_involved"] == want["signals"]["services_involved"]
    assert (out["evidence"], out["against"]) == (want["evidence"], want["against"])
    assert out["signals"]["time_span_s"] == 900.0  # the window asked, not the whole dataset
    assert out["escalate"] is True and any("6 approaches attempted" in r for r in out["reasons"])
