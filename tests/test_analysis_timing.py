"""Analyses of time itself: queue redelivery/backlog, lease expiry against its TTL, host clock skew."""

from __future__ import annotations

import json

from correlate.analyses.clock_skew_hosts import find_skewed_hosts
from correlate.analyses.lock_timing import find_lease_expiries
from correlate.analyses.queue_backlog import find_queue_backlogs
from tests.synth_spans import analyse, two_periods


def _run(tmp_path, monkeypatch, build, analysis, n=30, step_ms=1000.0):
    monkeypatch.setenv("DCR_HOME", str(tmp_path))
    spans, window, baseline = two_periods(build, n=n, step_ms=step_ms)
    with spans.open("t") as s:
        result = analyse(s, analysis, window, baseline)
        return result, [s.sql(c.evidence.sql) for c in result.candidates]


def test_redelivered_messages_name_the_consumer(tmp_path, monkeypatch):
    def build(t, after, i):
        root = t.span("checkout", "POST /order", 0, 20)
        prod = t.span(
            "checkout",
            "send orders",
            5,
            2,
            parent=root,
            kind="PRODUCER",
            messaging_system="kafka",
            messaging_destination="orders",
            messaging_operation="send",
        )
        for d in range(1, (3 if after else 1) + 1):  # after the onset each message comes back twice
            attrs = {"messaging.system": "kafka", "messaging.message.delivery_count": d}
            t.span(
                "mailer",
                "process orders",
                30 + 300 * (d - 1),
                10,
                parent=prod,
                kind="CONSUMER",
                messaging_system="kafka",
                messaging_destination="orders",
                messaging_operation="process",
                attributes=json.dumps(attrs),
            )

    result, reruns = _run(tmp_path, monkeypatch, build, find_queue_backlogs)
    [c] = result.candidates
    assert (c.service, c.mechanism) == ("mailer", "queue_backlog")
    assert c.evidence.before == {"deliveries": 30, "redeliveries": 0, "median_queue_wait_ns": 23_000_000.0}
    assert c.evidence.after["deliveries"] == 90 and c.evidence.after["redeliveries"] == 60
    assert c.evidence.details["max_delivery_count"] == 3
    assert reruns[0].rows[1][:3] == ("after", 90, 60)


def _charge(t, after: bool, skew_ms: float) -> None:
    """pay holds a lease with a 3 s TTL; the lock service reports the time left at renewal."""
    root = t.span("pay", "POST /charge", 0, 3000)
    for op, at, remaining in (("Acquire", 1, None), ("Renew", 2500, 500 - skew_ms)):
        if op == "Renew" and not after and skew_ms == 0:
            remaining = 500
        failed = remaining is not None and remaining <= 0
        c = t.span(
            "pay",
            f"lock.v1.LockService/{op}",
            at,
            5,
            parent=root,
            kind="CLIENT",
            status_code="ERROR" if failed else "UNSET",
            attributes=json.dumps({"lock.lease.ttl_ms": 3000}),
        )
        attrs = {"lock.key": "order:1"} | (
            {"lock.lease.remaining_ms": remaining} if remaining is not None else {}
        )
        t.span("locks", f"lock.v1.LockService/{op}", at + 1, 3, parent=c, attributes=json.dumps(attrs))


def test_leases_that_expire_before_renewal_blame_the_holder(tmp_path, monkeypatch):
    # one request every 5 s: each 3 s charge stays inside its period
    result, reruns = _run(
        tmp_path,
        monkeypatch,
        lambda t, after, i: _charge(t, after, 800 if after else 0),
        find_lease_expiries,
        step_ms=5000.0,
    )
    [c] = result.candidates
    # the lock service (the server) reports the expiry; its caller holds the lease
    assert (c.service, c.operation, c.mechanism) == ("pay", "lock.v1.LockService/Renew", "lock_expiry")
    assert c.evidence.after == {"lock_calls": 60, "requests_with_expired_lease": 30, "min_remaining": -300.0}
    assert c.evidence.before == {"lock_calls": 60, "requests_with_expired_lease": 0, "min_remaining": 500.0}
    # none before, 30 now: 0.35 + 0.6 * 30 / 33
    assert c.score == round(0.35 + 0.6 * 30 / 33, 4)
    # the attribute named, so its unit shows (was "lowest time left reported -300.0")
    assert c.summary.endswith("(before: 0), lowest lock.lease.remaining_ms reported: -300"), c.summary
    assert reruns[0].rows == (("before", 60, 0, 500.0), ("after", 60, 30, -300.0))


def test_a_host_whose_clock_jumps_is_found_and_its_failing_service_named(tmp_path, monkeypatch):
    def build(t, after, i):
        skewed = after and i % 2 == 0  # half the requests reach the pod on node-4
        shift = -800 if skewed else 0
        fail = skewed
        root = t.span("web", "GET /", 0, 100, host="node-1", status_code="ERROR" if fail else "UNSET")
        c = t.span("web", "POST /pay", 10, 50, parent=root, kind="CLIENT", host="node-1")
        t.span("pay", "POST /pay", 12 + shift, 40, parent=c, host="node-4" if i % 2 == 0 else "node-3")

    result, reruns = _run(tmp_path, monkeypatch, build, find_skewed_hosts)
    assert [f.evidence.details["host"] for f in result.findings] == ["node-4"]
    [c] = result.candidates
    assert (c.service, c.mechanism) == ("pay", "clock_skew")
    assert c.evidence.details["failure_lift"] == 1.0  # every request via node-4 failed, none via node-3
    # 15 calls into node-4 in the window, all outside their parent; midpoints (12 - 800 + 20) - (10 + 25)
    assert c.evidence.after == {
        "calls_across_hosts": 15,
        "outside_parent": 15,
        "median_offset_ns": -803_000_000.0,
    }
    assert c.evidence.before["outside_parent"] == 0
