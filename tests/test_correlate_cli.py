"""`dcr correlate`: exit codes, JSON shape, text output, times as users write them."""

from __future__ import annotations

import json

import pytest

from mcp_server.cli import main
from tests.synth_spans import T0_NS, two_periods

S = 1_000_000_000


def _slow_api(t, after, i):
    root = t.span("web", "GET /", 0, 60 if after else 30)
    c = t.span("web", "GET /api", 1, 50 if after else 20, parent=root, kind="CLIENT")
    t.span("api", "GET /api", 2, (45 if after else 15) + i % 3, parent=c)


@pytest.fixture
def dataset(dcr_home):
    spans, *_ = two_periods(_slow_api)
    spans.open("shop").close()
    return "shop"


def test_json_report_with_iso_times(dataset, capsys):
    start = "2023-11-14T22:13:40Z"  # T0 + 20 s; the window's end defaults to the dataset's end
    assert main(["correlate", dataset, "--start", start, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["window"]["start_ns"] == T0_NS + 20 * S
    assert doc["baseline"]["end_ns"] == T0_NS + 20 * S
    top = doc["candidates"][0]
    assert (top["service"], top["operation"], top["mechanism"]) == ("api", "GET /api", "latency_regression")
    assert set(top["evidence"]) == {"before", "after", "trace_ids", "span_ids", "sql", "details"}
    assert 0 < top["score"] <= 1


def test_text_report_and_an_explicit_baseline_in_epoch_seconds(dataset, capsys):
    t0 = T0_NS // S
    argv = [
        "correlate",
        dataset,
        "--start",
        str(t0 + 40),
        "--end",
        str(t0 + 80),
        "--baseline-start",
        str(t0),
        "--baseline-end",
        str(t0 + 40),
        "--top",
        "1",
    ]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "baseline: 2023-11-14T22:13:20.000000Z .. 2023-11-14T22:14:00.000000Z" in out.out
    assert "1. " in out.out and "api GET /api  [latency_regression]" in out.out
    assert "2. " not in out.out
    assert "correlated in" in out.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--start", "soon"], "--start: cannot read time 'soon'"),
        (
            ["--start", "1700000100", "--end", "1700000050"],
            "--end (2023-11-14T22:14:10.000000Z) must be after --start",
        ),
        (["--baseline-start", "1700000000"], "give both --baseline-start and --baseline-end, or neither"),
        (
            [
                "--start",
                "1700000040",
                "--end",
                "1700000080",
                "--baseline-start",
                "1700000000",
                "--baseline-end",
                "1700000050",
            ],
            "the baseline must end at or before the window's start",
        ),
        (["--top", "-1"], "--top must be >= 0"),
        (["--start", "99999999999999999999999"], "--start: time '99999999999999999999999' is out of range"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(dataset, capsys, argv, message):
    assert main(["correlate", dataset, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unknown_dataset_exit_2(dcr_home, capsys):
    assert main(["correlate", "nope"]) == 2
    assert "no dataset named 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", [["correlate"], ["trace", "--", "abcdef12"], ["sql", "--", "SELECT 1"], ["report"]]
)
def test_a_name_no_dataset_can_have_is_a_usage_error(dcr_home, capsys, command):
    """Exit 2, as for `dcr dataset show` and `dcr escalate`: the name is the caller's input."""
    argv = [command[0], "sh%op", *command[1:]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "sh%op" in err and err.count("\n") == 1


def test_unknown_service_warns_and_reports_nothing_for_it(dataset, capsys):
    assert main(["correlate", dataset, "--service", "ghost", "--json"]) == 0
    out = capsys.readouterr()
    assert "no service named ghost" in out.err
    assert json.loads(out.out)["candidates"] == []


def test_a_window_without_spans_says_where_the_data_is(dataset, capsys):
    assert (
        main(["correlate", dataset, "--start", "2030-01-01T00:00:00Z", "--end", "2030-01-02T00:00:00Z"]) == 0
    )
    out = capsys.readouterr().out
    assert "note: no spans in the window" in out
    assert "no root-cause candidates: the dataset's data runs from 2023-11-14T22:13:20" in out
    assert "differs enough from the baseline" not in out


def test_a_dataset_of_logs_only_says_it_has_no_spans(dcr_home, fixtures_dir, capsys):
    import ingest

    ingest.ingest_paths([str(fixtures_dir / "public" / "otlp-examples" / "logs.json")], "logsonly")
    assert main(["correlate", "logsonly"]) == 0
    assert "no root-cause candidates: the dataset has no spans" in capsys.readouterr().out


def test_one_origin_read_as_two_mechanisms_prints_its_summary_once(dcr_home, fixtures_dir, capsys):
    import ingest

    ingest.ingest_paths([str(fixtures_dir / "scenarios" / "dependency_failure")], "dep")
    assert main(["correlate", "dep", "--start", "2025-06-12T09:15:00Z", "--end", "2025-06-12T09:30:00Z"]) == 0
    out = capsys.readouterr().out
    assert "1. 0.43  pricing SELECT tax_rates  [dependency_failure]  confidence medium" in out
    assert (
        "3. 0.37  pricing SELECT tax_rates  [error_propagation]  confidence medium\n   the same evidence as #1, "
        "read as error_propagation\n   traces: " in out
    )
    assert out.count("is where errors start") == 1
