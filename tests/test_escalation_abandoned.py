"""Model calls nobody waits for any more: a conversation turn whose process is killed mid-call
frees its conversation at once, and an MCP escalation past its time budget leaves no model call
running behind its offline report. Gemini is the local REST stub."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from escalation import EscalationRequest, continue_conversation, conversation_status, start_conversation
from escalation.store import connect
from tests.gemini_stub import GeminiStub
from tests.mcp_helpers import INCIDENT, call, ingest_scenario, ok

REPO = Path(__file__).resolve().parent.parent
CONTEXT = {"stuck_description": "checkout returns 502 since 09:15 and I cannot see why"}


def _until(what: str, cond, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
        time.sleep(0.01)


def test_a_turn_killed_mid_call_frees_its_conversation_at_once(stub: GeminiStub, dcr_home: Path):
    sid = start_conversation(
        EscalationRequest(question="why do payments fail?", provider="gemini")
    ).session_id
    stub.slow(30.0)  # the next turn waits for the model...
    turn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcp_server.cli",
            "conversation",
            "continue",
            sid,
            "is it the ledger lock?",
            "--json",
        ],
        env=dict(os.environ),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _until("model call of the second turn", lambda: len(stub.generate_requests()) == 2)
    finally:
        os.kill(turn.pid, signal.SIGKILL)  # ...when its process is killed
        turn.wait()
    done: list = []
    t0 = time.monotonic()
    worker = threading.Thread(target=lambda: done.append(continue_conversation(sid, "")), daemon=True)
    worker.start()  # an empty message retries the turn the killed process left
    worker.join(15)
    assert done, "the conversation stayed locked after its turn's process was killed"
    assert time.monotonic() - t0 < 10
    again = done[0]
    assert (again.turn, again.status, again.question) == (2, "ok", "is it the ledger lock?")
    sent = json.loads(stub.generate_requests()[-1].body)["contents"]
    assert [c["role"] for c in sent] == ["user", "model", "user"]  # the abandoned question, once
    st = conversation_status(sid)
    assert (st.turns, st.failed_turns) == (2, 0)


def _escalate(budget_s: float) -> tuple[dict, float]:
    """escalate_analysis over MCP with this time budget; its answer and when (Unix time) it was asked."""
    ingest_scenario()
    asked = time.time()
    out = ok(
        call(
            "auto",
            "escalate_analysis",
            {"claude_context": CONTEXT, "dataset": "shop", **INCIDENT, "time_budget_seconds": budget_s},
        )
    )
    assert out["partial"] is True and out["provider"] == "offline"
    return out, asked


def _abandoned_call() -> tuple[float, str]:
    """When the Gemini call the MCP tool gave up on ended (Unix time of its ledger row), and its error."""
    deadline = time.monotonic() + 1
    while True:
        con = connect()
        try:
            rows = con.execute(
                "SELECT created_at, error FROM ledger WHERE provider = 'gemini' AND outcome = 'failed'"
            )
            rows = rows.fetchall()
        finally:
            con.close()
        if rows or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(rows) == 1, "the abandoned model call has not ended"
    [(created_at, error)] = rows
    return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp(), error


def test_a_spent_time_budget_cuts_the_model_call_in_flight(stub: GeminiStub, monkeypatch):
    counted = stub._handle

    def slow_count(h):  # the bundle's token count takes 0.6 s: the model call starts well into the budget
        if h.path.endswith(":countTokens"):
            time.sleep(0.6)
        return counted(h)

    monkeypatch.setattr(stub, "_handle", slow_count)
    stub.slow(9.0)
    # 3 s: the bundle (about 1.5 s on a loaded machine) and the count leave the call a part of it
    _, asked = _escalate(budget_s=3)
    ended, error = _abandoned_call()
    # the stand-in would answer after 9 s: ending within a second of the budget is the cut (the
    # slack is for a loaded machine, where recording the failure itself takes a while)
    assert ended - asked < 3 + 1.0, "the model call outlived the time budget"
    assert "timeout" in error
    assert len(stub.generate_requests()) == 1


def test_a_retry_that_would_start_past_the_budget_is_not_made(stub: GeminiStub):
    stub.fail(503, retry_after="10")
    # 4 s: room for the bundle on a loaded machine (it took the whole of 2 s there, so no call was
    # made at all); the retry the stand-in asks for, 10 s later, would still start past it
    _escalate(budget_s=4)
    _, error = _abandoned_call()  # it has ended: nothing waits the 10 s
    assert "time budget" in error and "503" in error and "10.0 s" in error, error
    time.sleep(0.2)
    assert len(stub.generate_requests()) <= 1  # none since (none at all if the bundle took the whole budget)
