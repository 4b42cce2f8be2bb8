"""The pattern analyses on small generated traces: N+1, retry storms, timeout cascades,
network gaps, structure change. One scenario each, exact figures."""

from __future__ import annotations

import pytest

from correlate.analyses.n_plus_one import find_n_plus_one
from correlate.analyses.network_gaps import find_network_delays
from correlate.analyses.retry_storms import find_retry_storms
from correlate.analyses.structure_change import find_structure_changes
from correlate.analyses.timeout_cascade import find_timeout_cascades
from tests.synth_spans import analyse, two_periods


def _run(tmp_path, monkeypatch, build, analysis, n=30):
    """The analysis result, and each candidate's evidence SQL run again through `sql()`."""
    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, window, baseline = two_periods(build, n=n)
    with spans.open("p") as s:
        result = analyse(s, analysis, window, baseline)
        return result, [s.sql(c.evidence.sql) for c in result.candidates]


def test_n_plus_one_appears_under_one_parent(tmp_path, monkeypatch):
    def build(t, after, i):
        root = t.span("shop", "GET /cart", 0, 60)
        srv = t.span("shop", "load_cart", 1, 55, parent=root, kind="INTERNAL")
        t.span(
            "shop",
            "SELECT items",
            2,
            3,
            parent=srv,
            kind="CLIENT",
            db_statement="SELECT * FROM items WHERE cart = 7",
        )
        for k in range(8 if after else 0):  # one query per item, ids differ
            t.span(
                "shop",
                "SELECT products",
                6 + 5 * k,
                4,
                parent=srv,
                kind="CLIENT",
                db_statement=f"SELECT * FROM products WHERE id = {100 + k}",
            )

    result, reruns = _run(tmp_path, monkeypatch, build, find_n_plus_one)
    [c] = result.candidates
    assert (c.service, c.operation, c.mechanism) == ("shop", "load_cart", "n_plus_one")
    assert c.evidence.details["statement"] == "SELECT * FROM products WHERE id = ?"
    # 30 of 30 load_cart calls issue it 8 times, 32 ms each call
    assert c.evidence.after == {
        "parents_with_n_plus_one": 30,
        "mean_queries_per_parent": 8.0,
        "total_query_ns": 30 * 8 * 4_000_000,
    }
    assert c.evidence.before == {}  # the statement never ran before: no row for the baseline
    assert reruns[0].rows == (("after", 30, 8.0, 30 * 8 * 4_000_000),)


def test_retries_without_backoff_land_on_the_target(tmp_path, monkeypatch):
    def build(t, after, i):
        root = t.span("checkout", "POST /order", 0, 500)
        for k in range(4 if after else 1):
            fail = after and k < 3
            c = t.span(
                "checkout",
                "POST /reserve",
                1 + 101 * k,
                100,
                parent=root,
                kind="CLIENT",
                status_code="ERROR" if fail else "UNSET",
            )
            t.span("inventory", "POST /reserve", 2 + 101 * k, 98, parent=c)

    result, _ = _run(tmp_path, monkeypatch, build, find_retry_storms)
    [c] = result.candidates
    assert (c.service, c.mechanism) == ("inventory", "retry_storm")
    assert c.evidence.after == {
        "calling_parents": 30,
        "parents_retrying": 30,
        "attempts": 120,
        "failed_attempts": 90,
    }
    assert c.evidence.before == {
        "calling_parents": 30,
        "parents_retrying": 0,
        "attempts": 30,
        "failed_attempts": 0,
    }
    assert c.evidence.details["callers"] == ["checkout"]


def test_a_timeout_at_the_bottom_cascades_up(tmp_path, monkeypatch):
    def build(t, after, i):
        st = "ERROR" if after else "UNSET"
        root = t.span(
            "web", "GET /", 0, 1000, status_code=st, status_message="upstream timed out" if after else None
        )
        c1 = t.span(
            "web",
            "GET /api",
            1,
            900,
            parent=root,
            kind="CLIENT",
            status_code=st,
            status_message="deadline exceeded" if after else None,
        )
        s1 = t.span(
            "api", "GET /api", 2, 898, parent=c1, status_code=st, status_message="timeout" if after else None
        )
        c2 = t.span(
            "api",
            "GET /db",
            3,
            800,
            parent=s1,
            kind="CLIENT",
            status_code=st,
            status_message="read timed out" if after else None,
        )
        t.span("db", "GET /db", 4, 850 if after else 10, parent=c2)  # db never fails: it is just slow

    result, _ = _run(tmp_path, monkeypatch, build, find_timeout_cascades)
    c = result.candidates[0]
    assert (c.service, c.mechanism) == ("db", "timeout_cascade")
    assert c.evidence.after["cascading_traces"] == 30
    assert c.evidence.after["max_services_timed_out"] == 2
    assert c.evidence.details["first_callers"] == ["api"]


def test_a_longer_wire_into_one_service_is_network_delay(tmp_path, monkeypatch):
    def build(t, after, i):
        extra = 200 if after else 0
        root = t.span("web", "GET /me", 0, 30 + extra)
        c = t.span("web", "GetUser", 1, 12 + i % 3 + extra, parent=root, kind="CLIENT")
        t.span("users", "GetUser", 1.5 + extra / 2, 10 + i % 3, parent=c)

    result, _ = _run(tmp_path, monkeypatch, build, find_network_delays)
    [c] = result.candidates  # one edge: the callee, not the caller (who counts half)
    assert (c.service, c.mechanism) == ("users", "network_delay")
    assert (
        c.evidence.before["median_gap_ns"] == 2_000_000 and c.evidence.after["median_gap_ns"] == 202_000_000
    )
    assert c.evidence.before["median_server_ns"] == c.evidence.after["median_server_ns"]
    assert c.summary.startswith("calls into users from web spend longer")


def test_a_pod_delayed_both_ways_is_the_service_its_grown_edges_share(tmp_path, monkeypatch):
    def build(t, after, i):
        extra = 100 if after else 0  # every packet of api's pod waits: calls into it and out of it
        root = t.span("web", "GET /", 0, 400)
        c = t.span("web", "GET /api", 1, 14 + i % 3 + 2 * extra + 20, parent=root, kind="CLIENT")
        srv = t.span("api", "GET /api", 2 + extra, 12 + i % 3 + extra + 20, parent=c)
        c2 = t.span("api", "GET /db", 3 + extra, 10 + extra, parent=srv, kind="CLIENT")
        t.span("db", "GET /db", 4 + extra + extra / 2, 8, parent=c2)

    result, _ = _run(tmp_path, monkeypatch, build, find_network_delays)
    assert [(c.service, c.mechanism) for c in result.candidates] == [("api", "network_delay")]
    assert result.candidates[0].summary.startswith("calls into api from web and out of api to db")


def test_an_operation_that_returns_early_changes_shape_and_its_caller_defers(tmp_path, monkeypatch):
    def build(t, after, i):
        early = after and i % 2 == 0
        root = t.span("checkout", "POST /checkout", 0, 50)
        c = t.span("checkout", "GetCart", 1, 5, parent=root, kind="CLIENT")
        srv = t.span("cart", "GetCart", 1.5, 4, parent=c)
        if not early:
            t.span("cart", "HGETALL", 2, 2, parent=srv, kind="CLIENT", db_system="redis")
            t.span("checkout", "POST /pay", 10, 30, parent=root, kind="CLIENT")

    result, _ = _run(tmp_path, monkeypatch, build, find_structure_changes)
    got = {(c.service, c.operation): c for c in result.candidates}
    cart = got[("cart", "GetCart")]
    checkout = got[("checkout", "POST /checkout")]
    assert cart.mechanism == "code_path_change"
    # 0/30 lacked HGETALL before, 15/30 after
    assert cart.evidence.before == {"calls": 30, "calls_with_child": 30}
    assert cart.evidence.after == {"calls": 30, "calls_with_child": 15}
    assert cart.score > checkout.score  # checkout calls cart, which changed too: checkout only reacts
    assert checkout.evidence.details["deeper_changed_services"] == ["cart"]


def test_children_missing_after_a_failed_child_are_error_handling(tmp_path, monkeypatch):
    def build(t, after, i, fail_first=True):
        root = t.span("pay", "POST /charge", 0, 50)
        bad = after and i % 2 == 0
        t.span(
            "pay",
            "Renew",
            1,
            5,
            parent=root,
            kind="CLIENT",
            status_code="ERROR" if bad and fail_first else "UNSET",
        )
        if not bad:
            t.span("pay", "INSERT payments", 10, 5, parent=root, kind="CLIENT", db_system="postgresql")

    handled, _ = _run(tmp_path / "a", monkeypatch, build, find_structure_changes)
    plain, _ = _run(
        tmp_path / "b", monkeypatch, lambda t, a, i: build(t, a, i, fail_first=False), find_structure_changes
    )
    [h], [p] = handled.candidates, plain.candidates
    assert h.evidence.details["share_after_a_failed_child"] == 1.0
    assert p.evidence.details["share_after_a_failed_child"] == 0.0
    assert h.score == pytest.approx(
        p.score * 0.5, abs=1e-4
    )  # the same change, halved: it stopped after a failure
