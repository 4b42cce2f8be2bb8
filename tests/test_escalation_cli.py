"""The public surface: escalation's exports, and `dcr escalate|conversation|stats` exit codes and output."""

from __future__ import annotations

import json

import pytest

import escalation
from mcp_server.cli import main
from tests.escalation_data import make_shop
from tests.gemini_stub import GeminiStub


def test_exports() -> None:
    import escalation.api as api

    for name in escalation.__all__:
        assert hasattr(escalation, name), name
    for name in api.__all__:
        assert getattr(escalation, name) is getattr(api, name)
    assert issubclass(escalation.MissingApiKey, escalation.EscalationError)
    assert issubclass(escalation.ProviderTimeout, escalation.ProviderError)


def test_escalate_json_offline(capsys) -> None:
    make_shop()
    assert main(["escalate", "shop", "--question", "why?", "--json", "--analysis-type", "performance"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["provider"] == "offline" and out["checked_by_model"] is False
    assert out["analysis"]["root_causes"][0]["service"] and out["bundle_tokens"] > 0
    assert out["analysis_type"] == "performance" and out["bundle_path"].endswith(".md")


def test_dry_run_prints_the_body_and_contacts_nothing(monkeypatch, capsys) -> None:
    make_shop()
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    with GeminiStub() as stub:
        monkeypatch.setenv("DCR_GEMINI_BASE_URL", stub.url)
        code = main(
            ["escalate", "shop", "--question", "why? Authorization: Bearer abcdef123456", "--dry-run"]
        )
        assert stub.received == []
    out = capsys.readouterr().out
    assert code == 0
    first, rest = out.split("\n", 1)
    assert first == "POST v1beta/models/gemini-3.1-pro-preview:generateContent"
    body = json.loads(rest.rsplit("\ntoken count:", 1)[0])
    assert body["contents"][0]["role"] == "user" and "abcdef123456" not in out
    assert "<redacted:auth_header>" in body["contents"][0]["parts"][0]["text"]
    assert out.rstrip().endswith("nothing was sent") and "token count: " in out


def test_bad_input_is_one_line_exit_2(capsys) -> None:
    assert main(["escalate", "nope", "--question", "why?"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "dcr: no dataset named 'nope' (no datasets yet: run 'dcr ingest PATH --dataset nope' first)"
    ]
    assert main(["escalate", "nope", "--question", "q", "--start", "yesterday", "--end", "now"]) == 2
    assert "cannot read time 'yesterday'" in capsys.readouterr().err
    assert main(["escalate", "nope", "--question", " "]) == 2
    assert "the question is empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--time-budget", "-3"], "dcr: --time-budget must be a number of seconds > 0, got -3\n"),
        (["--time-budget", "0"], "dcr: --time-budget must be a number of seconds > 0, got 0\n"),
        (["--budget-tokens", "0"], "dcr: --budget-tokens must be > 0, got 0\n"),
    ],
)
def test_escalate_refuses_a_budget_that_is_not_positive(argv: list[str], message: str, capsys) -> None:
    make_shop()
    assert main(["escalate", "shop", "--question", "why?", "--provider", "offline", *argv]) == 2
    out = capsys.readouterr()
    assert out.err == message and out.out == ""


def test_conversation_list_when_there_are_none_says_so(capsys) -> None:
    assert main(["conversation", "list"]) == 0
    out = capsys.readouterr()
    assert out.out == ""  # stdout stays a list (empty), the hint goes to stderr
    assert out.err == "no conversations yet: start one with 'dcr conversation start NAME --question …'\n"
    assert main(["conversation", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"conversations": [], "total_count": 0}


def test_conversation_commands(capsys) -> None:
    make_shop()
    assert main(["conversation", "start", "shop", "--question", "why?", "--json"]) == 0
    sid = json.loads(capsys.readouterr().out)["session_id"]
    assert main(["conversation", "continue", sid, "and the ledger?"]) == 0
    assert "turn 2" in capsys.readouterr().out
    assert main(["conversation", "status", sid, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["turns"] == 2
    assert main(["conversation", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["total_count"] == 1 and listed["conversations"][0]["session_id"] == sid
    assert main(["conversation", "finalize", sid, "--format", "actionable"]) == 0
    assert "## Next steps" in capsys.readouterr().out
    assert main(["conversation", "continue", sid, "more"]) == 2
    assert "finalized" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["conversation", "continue", "conv_x", "hi"], ["conversation", "status", "conv_x"]]
)
def test_unknown_session_exit_2(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    assert "no conversation 'conv_x'" in capsys.readouterr().err


def test_time_budget_falls_back_to_the_offline_report_on_the_cli_too(monkeypatch, capsys) -> None:
    import time

    make_shop()
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    with GeminiStub() as stub:
        monkeypatch.setenv("DCR_GEMINI_BASE_URL", stub.url)
        stub.slow(6.0)
        t0 = time.monotonic()
        code = main(["escalate", "shop", "--question", "why?", "--json", "--time-budget", "1"])
        assert time.monotonic() - t0 < 5.5
    out = capsys.readouterr()
    assert code == 0
    doc = json.loads(out.out)
    assert doc["provider"] == "offline" and doc["partial"] is True and doc["analysis"]["summary"]
    assert (
        "warning: the model did not answer within the time budget (1 s): this is the offline report"
        in out.err
    )
