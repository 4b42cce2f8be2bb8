"""Conversations: across a process restart, concurrent continues, a failed turn retried, TTL, max turns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from escalation import (
    ConversationExpired,
    ConversationFull,
    ConversationNotFound,
    EscalationRequest,
    ProviderError,
    continue_conversation,
    conversation_status,
    finalize_conversation,
    ledger_stats,
    list_conversations,
    start_conversation,
)
from escalation.providers.fake import FakeProvider
from tests.escalation_data import BASELINE, WINDOW, make_shop
from tests.gemini_stub import DEFAULT_ANALYSIS

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake() -> FakeProvider:
    f = FakeProvider.shared()
    f.reset()
    yield f
    f.reset()


def _answer(summary: str) -> dict:
    return {**DEFAULT_ANALYSIS, "summary": summary}


def test_survives_a_process_restart(dcr_home: Path) -> None:
    make_shop()
    env = {**os.environ, "DCR_HOME": str(dcr_home)}
    dcr = [sys.executable, "-m", "mcp_server.cli", "conversation"]
    out = subprocess.run(
        dcr + ["start", "shop", "--question", "why do payments fail?", "--provider", "offline", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    )
    sid = json.loads(out.stdout)["session_id"]
    out = subprocess.run(
        dcr + ["continue", sid, "what about the ledger lock?", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    )
    turn = json.loads(out.stdout)
    assert turn["turn"] == 2 and turn["status"] == "ok"
    assert "Follow-up 'what about the ledger lock?'" in turn["analysis"]["summary"]
    st = conversation_status(sid)  # a third process (this one) sees it all
    assert (st.turns, st.failed_turns, st.state, st.dataset) == (2, 0, "active", "shop")


def test_two_concurrent_continues_are_serialised(fake: FakeProvider, monkeypatch) -> None:
    fake.enqueue(_answer("start"))
    sid = start_conversation(EscalationRequest(question="q", provider="fake")).session_id
    active, overlaps = [0], [0]
    lock = threading.Lock()
    real = fake.generate

    def slow(request):
        with lock:
            active[0] += 1
            overlaps[0] = max(overlaps[0], active[0])
        time.sleep(0.3)
        with lock:
            active[0] -= 1
        return real(request)

    monkeypatch.setattr(fake, "generate", slow)
    fake.enqueue(_answer("a"))
    fake.enqueue(_answer("b"))
    turns: list = []
    threads = [
        threading.Thread(target=lambda m=m: turns.append(continue_conversation(sid, m)))
        for m in ("one", "two")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps[0] == 1  # never two model calls on one session at once
    assert sorted(t.turn for t in turns) == [2, 3]
    last = fake.history[-1].messages
    assert [m.role for m in last] == [
        "user",
        "model",
        "user",
        "model",
        "user",
    ]  # the later one saw the earlier


def test_a_failed_turn_is_kept_and_retried(fake: FakeProvider) -> None:
    make_shop()
    fake.enqueue(_answer("start"))
    sid = start_conversation(
        EscalationRequest(question="q", dataset="shop", window=WINDOW, baseline=BASELINE, provider="fake")
    ).session_id
    fake.enqueue(
        ProviderError("Gemini error 503 after 5 attempt(s): the service failed", status=503, attempts=5)
    )
    with pytest.raises(ProviderError):
        continue_conversation(sid, "is it the lock?")
    st = conversation_status(sid)
    assert (st.turns, st.failed_turns) == (1, 1)
    fake.enqueue(_answer("retried"))
    turn = continue_conversation(sid, "")  # an empty message retries the failed turn
    assert turn.analysis["summary"] == "retried" and turn.turn == 2
    sent = fake.history[-1].messages
    assert [m.role for m in sent] == ["user", "model", "user"]
    assert sent[-1].text.endswith("Follow-up question: is it the lock?")
    st = conversation_status(sid)
    assert (st.turns, st.failed_turns) == (2, 0)
    stats = ledger_stats()["total"]
    assert (stats["ok"], stats["failed"]) == (2, 1)


def test_the_first_turn_failing_keeps_the_session_and_can_be_retried(fake: FakeProvider) -> None:
    fake.enqueue(ProviderError("down"))
    with pytest.raises(ProviderError) as exc:
        start_conversation(EscalationRequest(question="q", provider="fake"))
    assert exc.value.bundle_path and Path(exc.value.bundle_path).exists()
    [st] = list_conversations()
    assert (st.turns, st.failed_turns) == (0, 1)
    fake.enqueue(_answer("now"))
    assert continue_conversation(st.session_id, "").analysis["summary"] == "now"


def test_max_turns_and_ttl(fake: FakeProvider, monkeypatch) -> None:
    monkeypatch.setenv("DCR_CONVERSATION_MAX_TURNS", "2")
    fake.enqueue(_answer("1"))
    fake.enqueue(_answer("2"))
    sid = start_conversation(EscalationRequest(question="q", provider="fake")).session_id
    assert continue_conversation(sid, "more").turns_left == 0
    with pytest.raises(ConversationFull, match="DCR_CONVERSATION_MAX_TURNS"):
        continue_conversation(sid, "again")
    monkeypatch.setenv("DCR_CONVERSATION_TTL_S", "0.6")
    fake.enqueue(_answer("3"))
    sid2 = start_conversation(EscalationRequest(question="q", provider="fake")).session_id
    time.sleep(0.8)
    with pytest.raises(ConversationExpired, match="expired"):
        continue_conversation(sid2, "late")
    assert conversation_status(sid2).state == "expired"


def test_finalize_formats_and_unknown_session(fake: FakeProvider) -> None:
    fake.enqueue(
        {
            **_answer("first"),
            "root_causes": [{"title": "early idea", "confidence": 0.2, "explanation": "x", "evidence": []}],
        }
    )
    fake.enqueue(_answer("second"))
    sid = start_conversation(EscalationRequest(question="q", provider="fake")).session_id
    continue_conversation(sid, "and?")
    concise = finalize_conversation(sid, "concise")
    assert "Root cause: ledger lock contention" in concise.summary_markdown and concise.turns == 2
    titles = [c["title"] for c in concise.analysis["root_causes"]]
    assert titles == ["ledger lock contention", "early idea"]  # earlier turns' causes are kept
    assert conversation_status(sid).state == "finalized"
    with pytest.raises(ConversationExpired, match="finalized"):
        continue_conversation(sid, "more")
    with pytest.raises(ConversationNotFound, match=r"list them with list_conversations\(\)"):
        continue_conversation("conv_missing", "x")


def test_actionable_and_detailed_summaries(fake: FakeProvider) -> None:
    fake.enqueue(_answer("only"))
    sid = start_conversation(EscalationRequest(question="q", provider="fake")).session_id
    detailed = finalize_conversation(sid, "detailed").summary_markdown
    assert "## Root causes" in detailed and "## Fixes" in detailed
    fake.enqueue(_answer("only"))
    sid = start_conversation(EscalationRequest(question="q", provider="fake")).session_id
    actionable = finalize_conversation(sid, "actionable").summary_markdown
    assert (
        "1. Shorten the transaction. (files: ledger/db.py)" in actionable
        and "confirm: Run the load test." in actionable
    )


def test_the_functions_session_is_closed_whatever_ends_the_turn(stub, monkeypatch) -> None:
    from escalation import conversations

    make_shop()
    stub.reply()
    req = EscalationRequest(
        question="Why does ledger fail?", dataset="shop", window=WINDOW, baseline=BASELINE, provider="gemini"
    )
    sid = start_conversation(req).session_id
    closed: list[bool] = []
    real = conversations.dataset_functions

    def spied(dataset):
        functions = real(dataset)
        assert functions is not None
        close = functions.close
        monkeypatch.setattr(functions, "close", lambda: (closed.append(True), close())[1])
        return functions

    class Broken:
        def generate(self, request):
            assert request.functions is not None  # the turn offered the functions
            raise RuntimeError("the client broke")

    monkeypatch.setattr(conversations, "dataset_functions", spied)
    monkeypatch.setattr(conversations, "get_provider", lambda provider, model: Broken())
    with pytest.raises(RuntimeError, match="the client broke"):
        continue_conversation(sid, "and the lock?")
    assert closed == [True]
