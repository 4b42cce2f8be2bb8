"""bench/rca.py: how a correlation report is scored, and that the benchmark runs end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.rca import score_report

REPO = Path(__file__).resolve().parent.parent
TRUTH = {"root_cause": {"service": "payment", "operation": None, "mechanisms": ["lock_expiry", "clock_skew"]}}


def cand(service: str, mechanism: str, score: float) -> dict:
    return {"service": service, "mechanism": mechanism, "score": score}


def test_rank_is_the_first_candidate_naming_the_true_service() -> None:
    cands = [
        cand("checkout", "error_propagation", 0.9),
        cand("payment", "latency_regression", 0.8),
        cand("payment", "clock_skew", 0.4),
        cand("lock-service", "lock_expiry", 0.3),
    ]
    got = score_report(TRUTH, cands)
    assert got == {"rank": 2, "mechanism_top3": True, "top_score": 0.9, "ok": False}


def test_mechanism_counts_only_in_the_top_three() -> None:
    cands = [
        cand("payment", "error_propagation", 0.9),
        cand("a", "x", 0.5),
        cand("b", "y", 0.4),
        cand("payment", "lock_expiry", 0.3),
    ]
    assert score_report(TRUTH, cands) == {"rank": 1, "mechanism_top3": False, "top_score": 0.9, "ok": False}
    assert score_report(TRUTH, cands[3:] + cands[:3])["ok"] is True


def test_absent_service_has_no_rank_and_healthy_is_judged_by_its_top_score() -> None:
    assert score_report(TRUTH, [cand("users", "network_delay", 0.2)])["rank"] is None
    assert score_report(TRUTH, [])["rank"] is None
    healthy = {"root_cause": None}
    assert score_report(healthy, [cand("users", "network_delay", 0.5)])["ok"] is True
    assert score_report(healthy, [cand("users", "network_delay", 0.51)])["ok"] is False


def test_benchmark_runs_and_reports_accuracy() -> None:
    out = subprocess.run(
        [sys.executable, "bench/rca.py", "--scenario", "healthy", "--scenario", "network_delay"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert (
        lines[0].startswith("scenario")
        and lines[1].startswith("healthy")
        and lines[2].startswith("network_delay")
    )
    assert (
        lines[-1].startswith("AC@1 ") and "over 1 incident scenarios" in lines[-1]
    ) or "not available" in out.stdout
