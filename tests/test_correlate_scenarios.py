"""The quality bar on the committed scenario library: every incident's true root-cause service
ranked first with a true mechanism among the top three candidates; nothing above 0.5 in the
healthy control. (bench/rca.py prints the same table; this makes it a test.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from correlate import Window, open_dataset
from ingest import ingest_paths

SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
# committed with the repo: a missing library is a broken checkout, an error here and no skip
NAMES = sorted(p.name for p in SCENARIOS.iterdir() if (p / "truth.json").is_file())


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCR_HOME", str(tmp_path_factory.mktemp("dcr_home")))
        for name in NAMES:
            folder = SCENARIOS / name
            truth = json.loads((folder / "truth.json").read_text())
            ingest_paths([str(folder / "traces.jsonl"), str(folder / "logs.jsonl")], name)
            w = truth["window"]
            with open_dataset(name) as ds:
                report = ds.correlate(
                    Window(w["incident_start_ns"], w["incident_end_ns"]),
                    Window(w["baseline_start_ns"], w["baseline_end_ns"]),
                )
                reruns = [ds.sql(c.evidence.sql) for c in report.candidates]
            out[name] = (truth, report, reruns)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_scenario_bar(reports, name):
    truth, report, _ = reports[name]
    root = truth.get("root_cause")
    if root is None:  # the healthy control
        assert max((c.score for c in report.candidates), default=0.0) <= 0.5
        return
    assert report.candidates, f"{name}: no candidates"
    assert report.candidates[0].service == root["service"], [
        (c.service, c.mechanism, c.score) for c in report.candidates[:5]
    ]
    assert {c.mechanism for c in report.candidates[:3]} & set(root["mechanisms"])


def test_every_candidate_carries_evidence(reports):
    for name, (_, report, reruns) in reports.items():
        for c, rerun in zip(report.candidates, reruns, strict=True):
            assert 0.0 <= c.score <= 1.0
            assert c.summary and c.evidence.sql.startswith("WITH s AS"), (name, c)
            assert c.evidence.trace_ids, (name, c.service, c.mechanism)
            assert any(ch.isdigit() for ch in c.summary), (name, c.summary)
            if c.analysis == "deploys":
                continue  # its SQL lists the versions; its figures restate the deploy finding
            # the evidence SQL, run again through sql(), gives the figures the candidate quotes
            for row in rerun.rows:
                figures = c.evidence.after if row[0] == "after" else c.evidence.before
                for key, value in zip(rerun.columns[1:], row[1:], strict=True):
                    want = figures[key]
                    assert value == (want if want is None else pytest.approx(want, rel=1e-6)), (
                        name,
                        c.analysis,
                        key,
                    )


def test_error_summary_names_the_exception_type_once(reports):
    """The SDK writes the status message as 'Type: message'; the summary used to prefix the type again."""
    _, report, _ = reports["dependency_failure"]
    top = report.candidates[0]
    assert top.evidence.details["message"].startswith("psycopg.OperationalError: connection to server")
    assert top.summary.count("psycopg.OperationalError") == 1, top.summary
    assert '(psycopg.OperationalError: connection to server at "tax-db-replica-3"' in top.summary
    assert top.summary.endswith(
        "port 5432 failed: Connection refused)"
    )  # whole now that the type is not repeated
