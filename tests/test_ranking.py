"""ranking: duplicates, messengers, deploys, corroboration, no-baseline cap, order."""

from __future__ import annotations

import pytest

from correlate.ranking import rank
from correlate.types import Candidate, Evidence, Finding


def cand(
    service: str, mechanism: str, score: float, operation: str | None = None, analysis: str = "a"
) -> Candidate:
    return Candidate(service, operation, mechanism, score, f"{service} {mechanism}", Evidence(), analysis)


def graph(*edges: tuple[str, str]) -> Finding:
    return Finding(
        kind="service_graph", summary="", evidence=Evidence(details={"edges": [list(e) for e in edges]})
    )


def deploy(service: str, coincides: bool = True) -> Finding:
    return Finding(
        kind="deploy",
        service=service,
        summary="",
        evidence=Evidence(details={"new_version": "2.0", "old_versions": "1.0", "coincides": coincides}),
    )


def ranked(cands, findings=(), **kw):
    got, _ = rank(cands, list(findings), **kw)
    return [(c.service, c.mechanism, c.score) for c in got]


@pytest.mark.parametrize(
    ("cands", "findings", "expected"),
    [
        # duplicates: the higher score of one (service, operation, mechanism) stays
        (
            [cand("a", "latency_regression", 0.4), cand("a", "latency_regression", 0.6)],
            [],
            [("a", "latency_regression", 0.6)],
        ),
        # messenger: web calls api (through gw); api's 0.5 >= 0.5 * web's 0.8, so web is halved to 0.4
        (
            [cand("web", "latency_regression", 0.8), cand("api", "latency_regression", 0.5)],
            [graph(("web", "gw"), ("gw", "api"))],
            [("api", "latency_regression", 0.5), ("web", "latency_regression", 0.4)],
        ),
        # a callee candidate of another family (errors vs latency) explains nothing
        (
            [cand("web", "latency_regression", 0.8), cand("api", "dependency_failure", 0.7, analysis="b")],
            [graph(("web", "api"))],
            [("web", "latency_regression", 0.8), ("api", "dependency_failure", 0.7)],
        ),
        # a weak callee (0.3 < 0.5 * 0.8) does not explain the caller
        (
            [cand("web", "latency_regression", 0.8), cand("api", "latency_regression", 0.3)],
            [graph(("web", "api"))],
            [("web", "latency_regression", 0.8), ("api", "latency_regression", 0.3)],
        ),
        # a callee never discounts its caller's caller direction: api -> db does not touch web
        (
            [cand("api", "latency_regression", 0.6)],
            [graph(("web", "api"))],
            [("api", "latency_regression", 0.6)],
        ),
        # deploy at the onset: 0.5 + 0.5 * 0.35 = 0.675, and a deploy_regression at 0.675 * 0.97 = 0.6548
        (
            [cand("api", "latency_regression", 0.5), cand("db", "latency_regression", 0.6, analysis="b")],
            [deploy("api")],
            [
                ("api", "latency_regression", 0.675),
                ("api", "deploy_regression", 0.6548),
                ("db", "latency_regression", 0.6),
            ],
        ),
        # a deploy that does not coincide with the onset changes nothing
        (
            [cand("api", "latency_regression", 0.5)],
            [deploy("api", coincides=False)],
            [("api", "latency_regression", 0.5)],
        ),
        # a deploy with no real regression (0.1 -> 0.415 lifted, but 0.1 < 0.2 before) adds no deploy candidate
        ([cand("api", "latency_regression", 0.1)], [deploy("api")], [("api", "latency_regression", 0.415)]),
        # corroboration: two analyses point at api: each gains 0.05 of its distance to 1
        (
            [
                cand("api", "latency_regression", 0.6, analysis="x"),
                cand("api", "code_path_change", 0.4, analysis="y"),
            ],
            [],
            [("api", "latency_regression", 0.62), ("api", "code_path_change", 0.43)],
        ),
    ],
)
def test_rank_table(cands, findings, expected):
    assert ranked(cands, findings) == expected


def test_without_a_baseline_no_candidate_claims_more_than_half():
    assert ranked([cand("a", "lock_expiry", 0.9), cand("b", "clock_skew", 0.3)], has_baseline=False) == [
        ("a", "lock_expiry", 0.5),
        ("b", "clock_skew", 0.3),
    ]


def test_ties_sort_by_service_then_operation_then_mechanism():
    got = ranked([cand("b", "n_plus_one", 0.5), cand("a", "retry_storm", 0.5), cand("a", "n_plus_one", 0.5)])
    assert got == [("a", "n_plus_one", 0.5), ("a", "retry_storm", 0.5), ("b", "n_plus_one", 0.5)]


def test_findings_come_back_unchanged_in_order():
    fs = [graph(("a", "b")), deploy("a", coincides=False)]
    assert rank([], fs)[1] == fs


def test_top_scored_floor_order_ties_and_limit():
    from correlate.analyses.common import top_scored

    groups = [{"k": "b", "s": 0.5}, {"k": "a", "s": 0.5}, {"k": "c", "s": 0.02}, {"k": "d", "s": 0.9}]
    best = top_scored(groups, lambda g: g["s"], lambda g: (g["k"],), limit=3)
    # 0.02 is not above the floor; the tie at 0.5 goes by key
    assert [(s, g["k"]) for s, g in best] == [(0.9, "d"), (0.5, "a"), (0.5, "b")]
    assert [g["k"] for _, g in top_scored(groups, lambda g: g["s"], lambda g: (g["k"],), limit=1)] == ["d"]


def gap(service: str, score: float, into: list[str], out_of: list[str] = ()) -> Candidate:
    return Candidate(
        service,
        None,
        "network_delay",
        score,
        f"{service} network_delay",
        Evidence(details={"callers_into": into, "callees_out_of": list(out_of)}),
        "network_gaps",
    )


@pytest.mark.parametrize(
    ("cands", "expected"),
    [
        # the only calls into db come from api, whose own work slowed as strongly (0.6 >= 0.5 * 0.8):
        # api's starved CPU stretched its client spans, so db's gap is halved to 0.4
        (
            [gap("db", 0.8, ["api"]), cand("api", "cpu_saturation", 0.6, analysis="latency_attribution")],
            [("api", "cpu_saturation", 0.6), ("db", "network_delay", 0.4)],
        ),
        # a caller whose own work barely moved (0.3 < 0.4) explains nothing
        (
            [gap("db", 0.8, ["api"]), cand("api", "latency_regression", 0.3, analysis="latency_attribution")],
            [("db", "network_delay", 0.8), ("api", "latency_regression", 0.3)],
        ),
        # db's calls out grew too: a pod delayed both ways is not explained by its caller
        (
            [
                gap("db", 0.8, ["api"], ["disk"]),
                cand("api", "cpu_saturation", 0.6, analysis="latency_attribution"),
            ],
            [("db", "network_delay", 0.8), ("api", "cpu_saturation", 0.6)],
        ),
    ],
)
def test_gaps_of_busy_callers(cands, expected):
    assert ranked(cands) == expected
