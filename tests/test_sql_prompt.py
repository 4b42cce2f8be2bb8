"""`dcr sql NAME` on a terminal: the prompt's commands in-process, then the real thing through a
pseudo-terminal (multi-line input, completion, a refused write, Ctrl-C, history across sessions,
Ctrl-R)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect  # the test extra installs it: a missing one fails, it does not skip
import pytest

from correlate import open_dataset
from correlate.testing import make_dataset
from mcp_server.commands._sql_prompt import HISTORY_FILE, Shell, statement_complete

REPO = Path(__file__).resolve().parent.parent
MS = 1_000_000
LONG_QUERY = "SELECT count(*) FROM range(1000000000000) t(i) WHERE i % 7 = 3;"


@pytest.fixture
def data(dcr_home):
    make_dataset(
        "d",
        [
            dict(
                trace_id="1" * 32,
                span_id=f"{i + 1:016x}",
                name=f"op{i}",
                service_name="front",
                start_ns=i * MS,
                end_ns=(i + 2) * MS,
                kind="SERVER",
                http_route="/r",
            )
            for i in range(3)
        ],
    )


@pytest.mark.parametrize(
    "text, runs",
    [
        ("", True),
        ("SELECT 1", False),
        ("SELECT 1\nFROM spans;", True),
        ("SELECT 1;  \n", True),
        (".schema spans", True),
        ("  .views", True),
    ],
)
def test_enter_runs_a_statement_only_once_it_ends_with_a_semicolon(text, runs):
    assert statement_complete(text) is runs


@pytest.fixture
def shell(data):
    out: list[str] = []
    with open_dataset("d") as ds:
        sh = Shell(ds, limit=1000, timeout_s=None, out=out.append, err=lambda s: out.append(f"ERR {s}"))
        yield sh, out


def test_dot_commands(shell):
    sh, out = shell
    assert sh.handle(".views") and out[0].startswith("spans          one row a span")
    out.clear()
    sh.handle(".schema traces")
    assert out[:3] == ["traces (11 columns)", "  trace_id        VARCHAR", "  root_service    VARCHAR"]
    out.clear()
    sh.handle(".schema nope")
    sh.handle(".frobnicate")
    assert out == [
        "ERR error: no view 'nope': one of spans, logs, traces, service_edges",
        "ERR error: unknown command '.frobnicate' (see .help)",
    ]
    assert sh.handle(".quit") is False


def test_queries_go_through_the_guard_and_say_their_time(shell, capsys):
    sh, out = shell
    sh.handle("SELECT count(*) AS n FROM spans;")
    assert capsys.readouterr().out == "n\n-\n3\n" and out[-1].startswith("ERR 1 rows in ")
    sh.handle(".timing off")
    out.clear()
    sh.handle("SELECT 1 AS one;")
    sh.handle("DELETE FROM spans;")
    assert out == [
        "ERR error: DELETE statements are not allowed: queries are read-only (only SELECT, WITH, "
        "FROM, DESCRIBE, SHOW and SUMMARIZE run here)"
    ]


def test_completion_knows_the_views_and_their_columns(shell):
    words = shell[0].words()
    assert words[:4] == ["spans", "logs", "traces", "service_edges"]
    assert {"http_route", "root_service", "callee_service", "severity_text"} <= set(words)


# ---- through a pseudo-terminal -------------------------------------------------------------

PROMPT = "d>"  # prompt_toolkit draws the space after it as a cursor move


def _spawn(home: Path):
    env = dict(os.environ, DCR_HOME=str(home), PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "mcp_server.cli", "sql", "d"],
        cwd=str(REPO),
        env=env,
        encoding="utf-8",
        timeout=15,
        dimensions=(40, 200),
    )
    child.expect(PROMPT)
    return child


def _ran(child) -> None:
    """Wait until the prompt has handed the terminal back to run the statement."""
    child.expect_exact("\x1b[?2004l")  # bracketed paste off: prompt_toolkit left the line editor


def test_the_prompt_through_a_pseudo_terminal(data, dcr_home):
    child = _spawn(dcr_home)
    try:
        child.sendline("SELECT count(*) * 1000 + 7 AS n")  # no ';': a second line follows
        child.expect_exact("...>")
        child.sendline("FROM spans;")
        child.expect_exact("3007")
        child.expect(PROMPT)
        child.send("SELECT http_ro\t")  # a column
        child.sendline(" AS got FROM spans LIMIT 1;")
        child.expect_exact("/r")
        child.expect(PROMPT)
        child.send("SELECT 'edges' || count(*) AS e FROM service_ed\t")  # a view
        child.sendline(";")
        child.expect_exact("edges0")
        child.expect(PROMPT)
        child.sendline("COPY spans TO 'out.csv';")
        child.expect_exact("error: COPY is not allowed")
        child.expect(PROMPT)
        child.sendline(LONG_QUERY)
        _ran(child)
        time.sleep(0.3)
        child.sendintr()  # Ctrl-C cancels the query, not the prompt
        child.expect_exact("error: query cancelled")
        child.expect(PROMPT)
        child.sendline("SELECT 'fort' || 'y-two' AS answer;")
        child.expect_exact("forty-two")
        child.expect(PROMPT)
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    history = (dcr_home / HISTORY_FILE).read_text()
    assert "+SELECT count(*) * 1000 + 7 AS n\n+FROM spans;\n" in history and "+COPY spans" in history

    child = _spawn(dcr_home)  # a new session recalls the last statement of the previous one
    try:
        child.send("\x1b[A")  # up arrow
        child.send("\r")
        child.expect_exact("forty-two")
        child.expect(PROMPT)
        child.send("\x12")  # Ctrl-R: search the history
        child.send("service_ed")
        child.send("\r")  # ends the search with the statement found
        child.send("\r")  # runs it
        child.expect_exact("edges0")
        child.expect(PROMPT)
        child.sendline(".quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
