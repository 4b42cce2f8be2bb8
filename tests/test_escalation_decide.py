"""should_escalate weighs the size of a problem against how clear its evidence already is (issue 17)."""

from __future__ import annotations

import pytest

from correlate.types import Candidate, Evidence
from escalation.decide import (
    EscalationSignals,
    EscalationThresholds,
    evidence_clarity,
    should_escalate,
    with_candidates,
)

T = EscalationThresholds()


def _cand(service: str, confidence: str, mechanism: str = "dependency_failure") -> Candidate:
    return Candidate(service, "SELECT tax_rates", mechanism, 0.5, "…", Evidence(), confidence=confidence)


@pytest.mark.parametrize(
    ("candidates", "clarity"),
    [
        (None, "unknown"),
        ([], "none"),
        ([_cand("pricing", "high")], "clear"),
        ([_cand("pricing", "high"), _cand("checkout", "low")], "clear"),
        ([_cand("pricing", "high"), _cand("payment", "high")], "unclear"),
        ([_cand("pricing", "medium")], "unclear"),
    ],
)
def test_evidence_clarity(candidates, clarity):
    signals = EscalationSignals() if candidates is None else with_candidates(EscalationSignals(), candidates)
    assert evidence_clarity(signals) == clarity


def test_one_high_confidence_candidate_outweighs_size():
    big = EscalationSignals(services_involved=9, time_span_s=7200, trace_bytes=200 * 2**20)
    assert should_escalate(big, T).escalate  # without evidence: the seed's thresholds
    clear = with_candidates(big, [_cand("pricing", "high"), _cand("checkout", "low")])
    d = should_escalate(clear, T)
    assert not d.escalate and d.evidence == "clear" and len(d.reasons) == 3
    assert "pricing SELECT tax_rates (dependency_failure, high)" in d.against[0]
    assert "outweighs 3 size thresholds" in d.against[0]
    assert d.to_dict()["against"] == list(d.against)


def test_attempts_still_count_when_the_evidence_is_clear():
    stuck = with_candidates(
        EscalationSignals(services_involved=9, attempted_approaches=6), [_cand("pricing", "high")]
    )
    d = should_escalate(stuck, T)
    assert d.escalate and any("6 approaches attempted" in r for r in d.reasons)


def test_unclear_or_missing_evidence_leaves_the_thresholds_to_decide():
    for cands in ([], [_cand("pricing", "medium"), _cand("checkout", "low")]):
        d = should_escalate(with_candidates(EscalationSignals(services_involved=5), cands), T)
        assert d.escalate and not d.against
    quiet = should_escalate(with_candidates(EscalationSignals(), [_cand("pricing", "low")]), T)
    assert not quiet.escalate and quiet.evidence == "unclear"
