"""Diagnosis on telemetry that carries little: no span kinds, statuses or attributes, logs with
no severity field. Small hand-made traces pin the inference; the scenario library stripped to
ids, names, times and services checks that the ranking still names the cause."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from correlate import Window, open_dataset
from correlate.analyses.common import SPANS_TABLE, rows
from correlate.analyses.log_severity import ERROR, FATAL, INFO, WARN, infer_severity
from correlate.engine import drop_working, materialise
from correlate.ranking import confidence_level
from correlate.testing import make_dataset

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
WIN = Window(T0 + 60_000 * MS, T0 + 120_000 * MS)
BASE = Window(T0, T0 + 60_000 * MS)


def _sid(n: int) -> str:
    return f"{n:016x}"


def _tid(n: int) -> str:
    return f"{n:032x}"


def span(
    trace: int,
    sid: int,
    parent: int | None,
    service: str,
    name: str,
    start_ms: float,
    end_ms: float,
    **extra: object,
) -> dict:
    """A span as a sparse recording has it: ids, name, service, times, nothing else."""
    return {
        "trace_id": _tid(trace),
        "span_id": _sid(sid),
        "parent_span_id": _sid(parent) if parent else None,
        "service_name": service,
        "name": name,
        "kind": "UNSPECIFIED",
        "status_code": "UNSET",
        "start_ns": T0 + int(start_ms * MS),
        "end_ns": T0 + int(end_ms * MS),
        **extra,
    }


def checkout_trace(trace: int, at_ms: float, gap_ms: float, pay_ms: float = 5.0) -> list[dict]:
    """frontend /buy -> checkout PlaceOrder -> (client stub) Charge -> payment Charge.

    Timeline (ms from at_ms), gap_ms split evenly before and after the server span:

        frontend /buy          |0 ................................. 12+g+p|
        checkout PlaceOrder      |1 ............................. 11+g+p|
        checkout Charge (stub)     |2 ...................... 2+g+p|
        payment Charge                |2+g/2 ...... 2+g/2+p|
        checkout audit (leaf)                                  |...| own work, no child
    """
    b = trace * 10
    g, p = gap_ms, pay_ms
    return [
        span(trace, b + 1, None, "frontend", "/buy", at_ms, at_ms + 12 + g + p),
        span(trace, b + 2, b + 1, "checkout", "PlaceOrder", at_ms + 1, at_ms + 11 + g + p),
        span(
            trace, b + 3, b + 2, "checkout", "hipstershop.PaymentService/Charge", at_ms + 2, at_ms + 2 + g + p
        ),
        span(
            trace,
            b + 4,
            b + 3,
            "payment",
            "hipstershop.PaymentService/Charge",
            at_ms + 2 + g / 2,
            at_ms + 2 + g / 2 + p,
        ),
        span(trace, b + 5, b + 2, "checkout", "audit", at_ms + 3 + g + p, at_ms + 9 + g + p),
    ]


def _dataset(name: str, gap_after_ms: float, n: int = 40) -> None:
    spans: list[dict] = []
    for i in range(n):
        spans += checkout_trace(i + 1, 1_000 + i * 1_000, gap_ms=2.0 + (i % 3) * 0.2)
        spans += checkout_trace(1_000 + i, 61_000 + i * 1_000, gap_ms=gap_after_ms + (i % 3) * 0.2)
    make_dataset(name, spans)


def test_kindless_spans_get_client_and_server_from_the_tree() -> None:
    _dataset("kindless", gap_after_ms=2.0, n=3)
    with open_dataset("kindless") as ds:
        con = ds.con.cursor()
        try:
            ctx, _ = materialise(con, WIN, BASE)
            assert ctx is not None
            got = {
                (r["service"], r["op"]): r
                for r in rows(
                    con,
                    f"""
                SELECT service, op, any_value(kind) AS kind, bool_and(kind_inferred) AS inferred,
                       max(remote_ns) AS remote_ns, any_value(remote_service) AS remote_service,
                       max(dur_ns) AS dur_ns, max(self_ns) AS self_ns
                FROM {SPANS_TABLE} WHERE NOT after GROUP BY ALL""",
                )
            }
        finally:
            drop_working(con)
            con.close()
    stub = got[("checkout", "hipstershop.PaymentService/Charge")]
    assert (stub["kind"], stub["inferred"], stub["remote_service"]) == ("CLIENT", True, "payment")
    assert stub["remote_ns"] == 5 * MS  # the server span's duration: the gap is dur - remote
    assert got[("payment", "hipstershop.PaymentService/Charge")]["kind"] == "SERVER"  # called from elsewhere
    assert got[("checkout", "PlaceOrder")]["kind"] == "SERVER"  # its children run in checkout too
    # a root whose children all run elsewhere waits on remote work, like a load generator's span
    assert got[("frontend", "/buy")]["kind"] == "CLIENT"
    # an uninstrumented leaf is own work, never a client with a server it does not have
    leaf = got[("checkout", "audit")]
    assert (leaf["kind"], leaf["remote_ns"], leaf["self_ns"]) == ("INTERNAL", None, 6 * MS)


def test_declared_kinds_are_kept() -> None:
    spans = checkout_trace(1, 1_000, 2.0)
    spans[2]["kind"] = "INTERNAL"  # the input says so: not a client, whatever its children
    make_dataset("declared", spans + checkout_trace(2, 61_000, 2.0))
    with open_dataset("declared") as ds:
        con = ds.con.cursor()
        try:
            materialise(con, WIN, BASE)
            got = rows(
                con, f"SELECT kind, kind_inferred, remote_ns FROM {SPANS_TABLE} WHERE span_id = '{_sid(13)}'"
            )
        finally:
            drop_working(con)
            con.close()
    assert got == [{"kind": "INTERNAL", "kind_inferred": False, "remote_ns": None}]


def test_network_delay_on_kindless_calls_names_the_callee_not_the_caller() -> None:
    _dataset("kindless-delay", gap_after_ms=250.0)
    with open_dataset("kindless-delay") as ds:
        report = ds.correlate(WIN, BASE)
    first = report.candidates[0]
    assert (first.service, first.mechanism) == ("payment", "network_delay")
    assert "median gap 2.2 ms -> 250 ms" in first.summary
    assert not any(
        c.service == "checkout" and c.mechanism == "latency_regression" and c.score > 0.2
        for c in report.candidates
    )
    assert any(n.startswith("span kinds: 100% of spans declared none") for n in report.notes)
    assert any(n.startswith("no span carries an error status") for n in report.notes)


@pytest.mark.parametrize(
    ("body", "level"),
    [
        ("17:25:34.987 ERROR s.s.SecurityServiceImpl#119 TraceID: 0af7 SpanID: 00f0 [check][fail]", ERROR),
        ("16:42:22.382 INFO  t.s.TravelServiceImpl#532 TraceID: 0af7 [getRouteByRouteId]", INFO),
        ("2024-05-01 10:00:00,123 WARNING root: disk almost full", WARN),
        ("E0412 10:01:02.123456       1 reflector.go:138] failed to list *v1.Pod", ERROR),
        ('{"level":"warn","msg":"retrying"}', WARN),
        ('time=2024-05-01T10:00:00Z level=error msg="dial tcp: connection refused"', ERROR),
        ("[fatal] out of memory", FATAL),
        ("Warning: deprecated option", WARN),
        ('Traceback (most recent call last):\n  File "app.py", line 3, in <module>', ERROR),
        ("\tat com.example.Foo.bar(Foo.java:42)", ERROR),
        ("java.lang.IllegalStateException: No instances available for ts-basic-service", ERROR),
        ("INFO retried after TimeoutException", INFO),  # a level word wins over an exception name
        ("GET /api/error 200 12ms", 0),
        ("forwarded to BasicErrorController", 0),
        ("user 42 logged in", 0),
        ("", 0),
    ],
)
def test_severity_from_text(body: str, level: int) -> None:
    assert infer_severity(body) == level


def test_new_error_template_without_severity_names_its_writer() -> None:
    _dataset("logs-nolevel", gap_after_ms=2.0)
    spans = []
    for i in range(40):
        spans += checkout_trace(i + 1, 1_000 + i * 1_000, gap_ms=2.0)
        spans += checkout_trace(1_000 + i, 61_000 + i * 1_000, gap_ms=2.0)
    logs = [
        {
            "time_ns": T0 + (1_000 + i * 1_000) * MS,
            "service_name": "checkout",
            "body": f"10:00:{i % 60:02d}.000 INFO  c.PlaceOrder#12 order {i} placed",
        }
        for i in range(120)
    ]
    logs += [
        {
            "time_ns": T0 + (61_500 + i * 2_000) * MS,
            "service_name": "payment",
            "trace_id": _tid(1_000 + i),
            "body": f"10:01:{i % 60:02d}.500 ERROR p.ChargeServiceImpl#88 [charge][card {4000 + i} declined: "
            "gateway returned null]",
        }
        for i in range(20)
    ]
    make_dataset("logs-nolevel", spans, logs)
    with open_dataset("logs-nolevel") as ds:
        report = ds.correlate(WIN, BASE)
    first = report.candidates[0]
    assert (first.service, first.mechanism, first.analysis) == (
        "payment",
        "error_propagation",
        "log_templates",
    )
    assert "logs a new ERROR" in first.summary and "level read from the text" in first.summary
    assert any(n.startswith("log severity: 100% of log records carry none") for n in report.notes)


def test_error_log_naming_a_known_service_blames_that_service() -> None:
    spans = []
    for i in range(40):
        spans += checkout_trace(i + 1, 1_000 + i * 1_000, gap_ms=2.0)
        spans += checkout_trace(1_000 + i, 61_000 + i * 1_000, gap_ms=2.0)
    logs = [
        {
            "time_ns": T0 + (61_000 + i * 2_000) * MS,
            "service_name": "checkout",
            "body": "Request processing failed; nested exception is org.springframework.web.client."
            'ResourceAccessException: I/O error on POST request for "http://payment:8080/charge": '
            "Connection refused",
        }
        for i in range(15)
    ]
    # a service name that is a plain word, not written as an address, names nothing
    logs += [
        {
            "time_ns": T0 + (61_500 + i * 2_000) * MS,
            "service_name": "frontend",
            "body": f"ERROR payment declined for order {i}",
        }
        for i in range(15)
    ]
    make_dataset("logs-named", spans, logs)
    with open_dataset("logs-named") as ds:
        report = ds.correlate(WIN, BASE)
    first = report.candidates[0]
    assert first.service == "payment" and "checkout logs ERROR naming payment" in first.summary
    assert first.evidence.details["writer"] == "checkout"
    assert not any(
        c.evidence.details.get("writer") == "frontend" and c.service == "payment" for c in report.candidates
    )


def test_calls_that_stop_are_a_structure_change_without_statuses() -> None:
    spans = []
    for i in range(30):
        spans += checkout_trace(i + 1, 1_000 + i * 1_000, gap_ms=2.0)
        t = checkout_trace(1_000 + i, 61_000 + i * 1_000, gap_ms=2.0)
        if i % 5:  # four calls in five now return before the audit step
            t = t[:-1]
        spans += t
    make_dataset("stops", spans)
    with open_dataset("stops") as ds:
        report = ds.correlate(WIN, BASE)
    change = next(c for c in report.candidates if c.mechanism == "code_path_change")
    assert (change.service, change.operation) == ("checkout", "PlaceOrder")
    assert "checkout audit 100.0% -> 20.0%" in change.summary
    assert report.candidates[0].service == "checkout"


def test_a_routing_mix_that_shifts_a_little_is_not_a_structure_change() -> None:
    spans = []
    for i in range(60):
        for period, base_ms in ((0, 1_000), (1, 61_000)):
            t = checkout_trace(i + 1 + 1_000 * period, base_ms + i * 900, gap_ms=2.0)
            # 80% of calls log an audit before, 65% after: a workload mix, not code that stops
            if (i % 20) >= (16 if period == 0 else 13):
                t = t[:-1]
            spans += t
    make_dataset("mix", spans)
    with open_dataset("mix") as ds:
        report = ds.correlate(WIN, BASE)
    assert not [c for c in report.candidates if c.mechanism == "code_path_change"]


@pytest.mark.parametrize(
    ("score", "rival", "level"),
    [
        (0.9, 0.1, "high"),
        (0.9, 0.95, "low"),
        (0.45, 0.2, "medium"),
        (0.45, 0.4, "low"),
        (0.2, 0.0, "low"),
    ],
)
def test_confidence_levels(score: float, rival: float, level: str) -> None:
    assert confidence_level(score, rival) == level


# --- the scenario library stripped to the bone --------------------------------------------------

SCENARIOS = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios"
STRIPPED_MIN_RIGHT = 5  # of the 8 incident scenarios, the bar


def _stripped_rows(folder: Path) -> list[dict]:
    """The scenario's spans with only ids, names, times and service: no kinds, statuses,
    attributes, events, hosts or versions; and no logs."""
    out = []
    for line in (folder / "traces.jsonl").read_text(encoding="utf-8").splitlines():
        for rs in json.loads(line).get("resourceSpans", []):
            svc = next(
                a["value"]["stringValue"] for a in rs["resource"]["attributes"] if a["key"] == "service.name"
            )
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    out.append(
                        {
                            "trace_id": s["traceId"],
                            "span_id": s["spanId"],
                            "parent_span_id": s.get("parentSpanId") or None,
                            "service_name": svc,
                            "name": s["name"],
                            "kind": "UNSPECIFIED",
                            "status_code": "UNSET",
                            "start_ns": int(s["startTimeUnixNano"]),
                            "end_ns": int(s["endTimeUnixNano"]),
                        }
                    )
    return out


def test_stripped_scenarios_still_name_the_cause() -> None:
    ranks = {}
    for folder in sorted(p for p in SCENARIOS.iterdir() if (p / "truth.json").exists()):
        truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
        if truth["root_cause"] is None:
            continue
        make_dataset(f"stripped-{folder.name}", _stripped_rows(folder))
        w = truth["window"]
        with open_dataset(f"stripped-{folder.name}") as ds:
            report = ds.correlate(
                Window(w["incident_start_ns"], w["incident_end_ns"]),
                Window(w["baseline_start_ns"], w["baseline_end_ns"]),
            )
        services = list(dict.fromkeys(c.service for c in report.candidates))
        ranks[folder.name] = (
            services.index(truth["root_cause"]["service"]) + 1
            if truth["root_cause"]["service"] in services
            else None
        )
    assert len(ranks) == 8
    right = [n for n, r in ranks.items() if r == 1]
    assert len(right) >= STRIPPED_MIN_RIGHT, ranks


def test_one_replica_that_carries_a_network_delay_is_named() -> None:
    spans = []
    for i in range(60):
        for period, base_ms in ((0, 1_000), (1, 61_000)):
            # payment runs on two pods; in the window calls into pod-b take 200 ms longer on the wire
            slow = period == 1 and i % 2 == 1
            t = checkout_trace(i + 1 + 1_000 * period, base_ms + i * 900, gap_ms=200.0 if slow else 2.0)
            for s in t:
                s["host"] = (
                    ("payment-b" if i % 2 else "payment-a") if s["service_name"] == "payment" else "node-1"
                )
            spans += t
    make_dataset("replica", spans)
    with open_dataset("replica") as ds:
        report = ds.correlate(WIN, BASE)
    first = report.candidates[0]
    assert (first.service, first.mechanism) == ("payment", "network_delay")
    assert first.evidence.details["replica"]["host"] == "payment-b"
    assert "on host payment-b only" in first.summary and "on its 1 other host" in first.summary


def _edge(caller: str, callee: str, delta: float = 0.0) -> dict:
    return {"caller": caller, "callee": callee, "delta": delta}


@pytest.mark.parametrize(
    ("grown", "every", "named"),
    [
        # every call out of frontend grew (a starved CPU times its client spans): frontend is their end
        (
            [_edge("frontend", s, 10.0) for s in ("cart", "ads", "currency")],
            [_edge("frontend", s) for s in ("cart", "ads", "currency")],
            ["frontend"],
        ),
        # only the call into currency grew, frontend's other calls did not: currency is the end
        (
            [_edge("frontend", "currency", 10.0)],
            [_edge("frontend", s) for s in ("cart", "ads", "currency")],
            ["currency"],
        ),
        # two callers of payment both grew: payment
        (
            [_edge("checkout", "payment", 5.0), _edge("refunds", "payment", 5.0)],
            [_edge("checkout", "payment"), _edge("checkout", "cart"), _edge("refunds", "payment")],
            ["payment"],
        ),
    ],
)
def test_the_end_that_grown_edges_share(grown, every, named):
    from correlate.analyses.network_gaps import _shared_endpoints

    assert [svc for svc, _, _ in _shared_endpoints(grown, every)] == named


def test_a_rank_test_sees_a_shift_a_wide_window_hides_from_the_median_test():
    from correlate.analyses.common import median_shift, rank_shift

    # ten calls at ~2.6 ms before; nine after, every one slower, some by 100 ms (a contended CPU)
    before = [2.5, 2.6, 2.6, 2.7, 2.5, 2.6, 2.8, 2.6, 2.7, 2.6]
    after = [3.0, 99.0, 101.0, 4.0, 190.0, 3.5, 97.0, 150.0, 5.0]
    ranks = sorted(before + after)
    rank_sum_after = sum(ranks.index(v) + 1 for v in after)  # no ties here
    iqr = lambda xs: sorted(xs)[3 * len(xs) // 4] - sorted(xs)[len(xs) // 4]  # noqa: E731
    assert median_shift(2.6, 97.0, iqr(before), iqr(after), 10, 9, 0.1) < 0.2
    assert rank_shift(rank_sum_after, 10, 9) > 0.5
    assert rank_shift(sum(range(1, 10)), 10, 9) == 0.0  # the window ranks lowest: no rise


def test_a_thin_or_short_baseline_is_said():
    from correlate.engine import _thin_baseline_notes

    assert _thin_baseline_notes(12, 5.2, 60.0) == [
        "thin baseline: 12 requests before the window (over 5 s); figures before are rough, medians and rank "
        "tests were used",
        "the baseline holds data for 5 s of the 60 s asked: rates use the time that holds data",
    ]
    assert _thin_baseline_notes(400, 59.0, 60.0) == []


def _payment_logs(i: int, trace: int, at_ms: float, lines: tuple[str, ...]) -> list[dict]:
    """Lines payment's Charge span writes, stamped and tied to it as a log shipper ties them."""
    b = trace * 10
    return [
        {
            "time_ns": T0 + int((at_ms + 4 + k * 0.1) * MS),
            "service_name": "payment",
            "trace_id": _tid(trace),
            "span_id": _sid(b + 4),
            "body": f"10:00:{i % 60:02d}.{k:03d} INFO  p.s.ChargeServiceImpl#{40 + k} TraceID: {_tid(trace)} "
            f"SpanID: {_sid(b + 4)} {line.format(i=i)}",
        }
        for k, line in enumerate(lines)
    ]


def test_a_log_line_an_operation_stops_writing_is_a_code_path_change() -> None:
    """Payment's Charge keeps its callers, its timing and its tree, but the line it wrote after
    validating a card (every call before) is gone: code that now returns or throws before it.
    No span says so: no status, no kind, no level on the records."""
    spans: list[dict] = []
    logs: list[dict] = []
    for i in range(40):
        for trace, at, after in ((i + 1, 1_000 + i * 1_000, False), (1_000 + i, 61_000 + i * 1_000, True)):
            spans += checkout_trace(trace, at, gap_ms=2.0)
            lines = ("[charge][Charge card][order: {i}]",) + (
                () if after else ("[charge][Card valid][Success]",)
            )
            logs += [
                {k: v for k, v in r.items() if k != "severity_number"}
                for r in _payment_logs(i, trace, at, lines)
            ]
    make_dataset("silenced", spans, logs)
    with open_dataset("silenced") as ds:
        report = ds.correlate(WIN, BASE)
    first = report.candidates[0]
    assert (first.service, first.operation, first.mechanism) == (
        "payment",
        "hipstershop.PaymentService/Charge",
        "code_path_change",
    )
    assert (
        "stopped writing a log line it wrote 40 times in 40 calls before: 0 times in 40 calls"
        in first.summary
    )
    # the header (time, level, logger, trace ids) is cut: the template is the message
    assert first.evidence.details["template"] == "<*> [charge][Card valid][Success]"
    assert first.evidence.details["lines_per_call_before"] == 1.0
    # the evidence query counts the same figures from the tables
    with open_dataset("silenced") as ds:
        got = {r[0]: (r[1], r[2]) for r in ds.sql(first.evidence.sql).rows}
    assert got == {"before": (40, 40), "after": (40, 0)}


def test_lines_that_go_quiet_everywhere_or_were_a_rare_branch_are_no_code_path_change() -> None:
    """Every line of the service gone (the shipper lost them) says nothing about code; nor does a
    line only one call in five wrote (a branch the data picks) going quiet."""
    for name, quiet_all, rare in (("quiet-all", True, False), ("rare-branch", False, True)):
        spans: list[dict] = []
        logs: list[dict] = []
        for i in range(40):
            for trace, at, after in (
                (i + 1, 1_000 + i * 1_000, False),
                (1_000 + i, 61_000 + i * 1_000, True),
            ):
                spans += checkout_trace(trace, at, gap_ms=2.0)
                if quiet_all and after:
                    continue
                lines: tuple[str, ...] = ("[charge][Charge card][order: {i}]",)
                if not after and (not rare or i % 5 == 0):
                    lines += ("[charge][Card valid][Success]",)
                logs += _payment_logs(i, trace, at, lines)
        make_dataset(name, spans, logs)
        with open_dataset(name) as ds:
            report = ds.correlate(WIN, BASE)
        assert not [c for c in report.candidates if c.analysis == "log_templates"], name


def test_a_log_header_is_cut_before_templating() -> None:
    """Seven header tokens every line of a logger shares (time, level, logger, trace and span ids)
    would make any two short messages "similar" to Drain; the message alone is mined."""
    from correlate.analyses.log_templates import mine_templates

    head = (
        "10:00:{:02d}.123 INFO  f.m.s.BasicServiceImpl#{} TraceID: 5985c748c5d581d1 SpanID: 8ada8c26a84098bd "
    )
    bodies = [
        head.format(i, 40 + i) + m
        for i in range(6)
        for m in ("[getRoutes][Get Route By Ids][Success]", "[checkStations][Check Station][Exists]")
    ]
    bodies += ["payment.charge failed for order 12", "ERROR payment.charge failed for order 13"]
    got = mine_templates(bodies)
    assert set(got[:12]) == {
        "<*> [getRoutes][Get Route By Ids][Success]",
        "<*> [checkStations][Check Station][Exists]",
    }
    # no time first: nothing is cut (a dotted word can start a message, a level alone is short)
    assert got[12:] == [
        "payment.charge failed for order <NUM>",
        "ERROR payment.charge failed for order <NUM>",
    ]


def test_an_error_line_on_more_of_an_operations_calls_counts_per_call() -> None:
    """Payment's Charge wrote an error line on 4 of 40 calls before and on 36 of 40 in the window,
    while a health check of payment's with no lines got ten times busier: per span of the service
    the line barely rose, per call of the operation that writes it, it did."""
    spans: list[dict] = []
    logs: list[dict] = []
    for i in range(40):
        for trace, at, after in ((i + 1, 1_000 + i * 1_000, False), (1_000 + i, 61_000 + i * 1_000, True)):
            spans += checkout_trace(trace, at, gap_ms=2.0)
            failing = (i % 10 == 0) if not after else (i % 10 != 0)
            if failing:
                logs += _payment_logs(i, trace, at, ("card gateway answered nothing [order: {i}]",))
            for k in range(30 if after else 3):  # health checks: roots in payment, no lines
                spans.append(
                    span(50_000 + trace * 40 + k, 1, None, "payment", "/health", at + k * 20, at + k * 20 + 1)
                )
    for r in logs:
        r["body"] = r["body"].replace("INFO  ", "ERROR ")
    make_dataset("per-call", spans, logs)
    with open_dataset("per-call") as ds:
        report = ds.correlate(WIN, BASE)
    err = next(c for c in report.candidates if c.mechanism == "error_propagation")
    assert err.service == "payment" and "more frequent ERROR" in err.summary
    assert err.score >= 0.3, err.score


def _page_trace(trace: int, at_ms: float, rates: bool, by_category: bool) -> list[dict]:
    """frontend /page -> (stub) GetRates -> rates GetRates, then (stub) GetAds -> ads GetAds, whose
    own step byCategory runs when the page asked for ads of a category.

        frontend /page        |0 ..................................... 12|
        frontend GetRates       |1 .... 4|                                  (when rates)
        rates GetRates            |2 . 3|
        frontend GetAds                   |5 ........................ 11|
        ads GetAds                          |6 .................... 10|
        ads byCategory                        |7 ......... 9|           (when by_category)
    """
    b = trace * 10
    out = [span(trace, b + 1, None, "frontend", "/page", at_ms, at_ms + 12)]
    if rates:
        out += [
            span(trace, b + 2, b + 1, "frontend", "GetRates", at_ms + 1, at_ms + 4),
            span(trace, b + 3, b + 2, "rates", "GetRates", at_ms + 2, at_ms + 3),
        ]
    out += [
        span(trace, b + 4, b + 1, "frontend", "GetAds", at_ms + 5, at_ms + 11),
        span(trace, b + 5, b + 4, "ads", "GetAds", at_ms + 6, at_ms + 10),
    ]
    if by_category:
        out.append(span(trace, b + 6, b + 5, "ads", "byCategory", at_ms + 7, at_ms + 9))
    return out


def test_a_caller_that_changed_before_calling_is_the_cause_not_its_callee() -> None:
    """frontend's /page now skips GetRates on four calls in five, and ads' GetAds skips its
    byCategory step as often. Both changed shape; frontend's change starts before it calls ads
    (cause precedes effect), so ads only reacts to a page that asks it differently: frontend is
    first, ads is scaled down and says which caller changed first."""
    spans: list[dict] = []
    for i in range(30):
        spans += _page_trace(i + 1, 1_000 + i * 1_500, rates=True, by_category=True)
        changed = i % 5 != 0
        spans += _page_trace(1_000 + i, 61_000 + i * 1_500, rates=not changed, by_category=not changed)
    make_dataset("caller-first", spans)
    with open_dataset("caller-first") as ds:
        report = ds.correlate(WIN, BASE)
    shapes = [c for c in report.candidates if c.analysis == "structure_change"]
    assert [(c.service, c.operation) for c in shapes] == [("frontend", "/page"), ("ads", "GetAds")]
    front, ads = shapes
    assert front.evidence.details["changed_before_calling"] == ["ads"]
    assert ads.evidence.details["callers_changed_first"] == ["frontend"]
    assert "(a caller changed first, before calling it: frontend; scored by half)" in ads.summary
    assert ads.score < 0.6 * front.score  # the same change measured, scaled by half
    assert report.candidates[0].service == "frontend"


@pytest.mark.parametrize(("failing_after", "flipped"), [(40, True), (28, False)])
def test_a_line_that_stops_where_an_error_line_takes_its_place_is_an_outcome_flip(
    failing_after: int, flipped: bool
) -> None:
    """Payment's Charge wrote its success line on 16 of 40 calls and an error line on the other
    24. In the window no call writes the success line; when the error line is on all 40 calls the
    calls that left the path now fail (one event seen twice, reported as one, scored by the
    stronger test and without the discount of a line only some calls wrote). When it rose to only
    28 of 40, the error did not take the line's place: a plain line that stopped."""
    spans: list[dict] = []
    logs: list[dict] = []
    for i in range(40):
        for trace, at, after in ((i + 1, 1_000 + i * 1_000, False), (1_000 + i, 61_000 + i * 1_000, True)):
            spans += checkout_trace(trace, at, gap_ms=2.0)
            fails = i < (failing_after if after else 24)
            ok = not after and not fails
            line = "[charge][Card declined][order: {i}]" if fails else "[charge][Card valid][Success]"
            got = _payment_logs(i, trace, at, (line,)) if fails or ok else []
            if fails:
                got = [{**r, "body": r["body"].replace("INFO  ", "ERROR ")} for r in got]
            logs += got
    name = f"flip-{failing_after}"
    make_dataset(name, spans, logs)
    with open_dataset(name) as ds:
        report = ds.correlate(WIN, BASE)
        change = next(c for c in report.candidates if c.mechanism == "code_path_change")
        reran = ds.sql(change.evidence.sql)
    # the evidence's SQL gives every figure the summary states, the error line's too
    got = {r[0]: dict(zip(reran.columns[1:], r[1:], strict=True)) for r in reran.rows}
    assert got == {"before": change.evidence.before, "after": change.evidence.after}
    assert ("error_lines" in got["after"]) is flipped
    assert change.service == "payment"
    assert "stopped writing a log line it wrote 16 times in 40 calls before: 0 times" in change.summary
    assert ("its calls fail instead" in change.summary) is flipped
    if flipped:
        details = change.evidence.details
        assert details["error_template"] == "<*> [charge][Card declined][order: <NUM>]"
        assert (details["error_lines_per_call_before"], details["error_lines_per_call_after"]) == (0.6, 1.0)
        # 0.6 x effect 1 x the error share's z of 4.5 (0.82); the line alone: 0.6 x z 4 (0.67) x 0.8
        assert change.score == pytest.approx(0.49, abs=0.01)
        assert report.candidates[0] == change
    else:
        assert change.score == pytest.approx(0.32, abs=0.01)


def _as_errors(records: list[dict]) -> list[dict]:
    """Log records of `_payment_logs` at ERROR."""
    return [{**r, "body": r["body"].replace("INFO  ", "ERROR ")} for r in records]


def _checkout_before_and_after(
    logs_of: Callable[[int, int, float], list[dict]],
) -> tuple[list[dict], list[dict]]:
    """30 checkout calls in the baseline and 30 in the window, the audit step gone from four
    window calls in five; `logs_of(i, trace, at)`: the log records of call i (either period)."""
    spans: list[dict] = []
    logs: list[dict] = []
    for i in range(30):
        for trace, at, after in ((i + 1, 1_000 + i * 1_000, False), (1_000 + i, 61_000 + i * 1_000, True)):
            t = checkout_trace(trace, at, gap_ms=2.0)
            spans += t[:-1] if after and i % 5 else t
            logs += logs_of(i, trace, at)
    return spans, logs


@pytest.mark.parametrize(("share", "standing"), [(1.0, True), (0.6, False)])
def test_an_error_on_every_call_before_as_after_is_a_standing_fault_ranked_last(
    share: float, standing: bool
) -> None:
    """Payment's Charge logs an error on every call, in the baseline as in the window (the fault
    began before the baseline): no comparison sees it. It is reported, marked standing, with low
    confidence, after checkout's audit step that stopped (a change). An error on 3 calls in 5 in
    both periods is a sometimes-bad input, not a standing fault."""
    spans, logs = _checkout_before_and_after(
        lambda i, trace, at: (
            _as_errors(_payment_logs(i, trace, at, ("[charge][Card gateway unreachable][order: {i}]",)))
            if i % 5 < 5 * share
            else []
        )
    )
    name = f"standing-{share}"
    make_dataset(name, spans, logs)
    with open_dataset(name) as ds:
        report = ds.correlate(WIN, BASE)
    assert report.candidates[0].service == "checkout"
    marked = [c for c in report.candidates if c.evidence.details.get("standing")]
    assert bool(marked) is standing
    if standing:
        (c,) = marked
        assert (c.service, c.operation, c.confidence) == (
            "payment",
            "hipstershop.PaymentService/Charge",
            "low",
        )
        assert "(on 30 of 30 calls before, 30 of 30 after, 30 and 30 times" in c.summary
        assert "a fault the baseline already holds" in c.summary
        assert c.summary.endswith("(no change: ranked after every change scoring 0.1 or more)")
        # after every change that scores what a healthy system does not (CHANGE_FLOOR)
        at = report.candidates.index(c)
        assert all(d.score >= 0.1 for d in report.candidates[:at])
        assert all(d.score < 0.1 for d in report.candidates[at + 1 :])
        assert 0 < c.score <= 0.05


def test_a_standing_fault_neither_explains_nor_outranks_a_change() -> None:
    from dataclasses import replace

    from correlate.ranking import rank
    from correlate.types import Candidate, Evidence, Finding

    graph = Finding(
        kind="service_graph", summary="", evidence=Evidence(details={"edges": [["front", "pay"]]})
    )
    change = Candidate("front", None, "error_propagation", 0.3, "front errs", Evidence(), "a")
    held = Candidate("pay", None, "error_propagation", 0.9, "pay", Evidence(details={"standing": True}), "b")
    got, _ = rank([held, change], [graph])
    assert [(c.service, c.score, c.confidence) for c in got] == [
        ("front", 0.3, "medium"),
        ("pay", 0.9, "low"),
    ]
    # a change fainter than a healthy system's noise (CHANGE_FLOOR 0.1) comes after a standing fault
    faint = Candidate("cart", None, "latency_regression", 0.08, "cart slower", Evidence(), "a")
    got, _ = rank([faint, replace(held, score=0.03), change], [graph])
    assert [(c.service, c.score) for c in got] == [("front", 0.3), ("pay", 0.03), ("cart", 0.08)]


def test_an_operation_whose_errors_stopped_recovered_and_its_new_shape_is_no_fault() -> None:
    """Payment's Charge logged an error on every call in the baseline and answers without one in
    the window, now calling its ledger (its whole work): it recovered. Its new shape is the end
    of a failure, scaled down; catalog's /list, whose cache step stopped on three calls in five,
    is the change that names a fault."""
    spans: list[dict] = []
    logs: list[dict] = []
    for i in range(30):
        for trace, at, after in ((i + 1, 1_000 + i * 1_000, False), (1_000 + i, 61_000 + i * 1_000, True)):
            t = checkout_trace(trace, at, gap_ms=2.0)
            b = trace * 10
            if after:  # payment's Charge now writes to its ledger
                t.append(span(trace, b + 6, b + 4, "payment", "ledger", at + 3, at + 4))
            else:
                got = _payment_logs(i, trace, at, ("[charge][Card gateway unreachable][order: {i}]",))
                logs += [{**r, "body": r["body"].replace("INFO  ", "ERROR ")} for r in got]
            logs += _payment_logs(i, trace, at + 1, ("[charge][Charge card][order: {i}]",))
            spans += t
            lt = 100_000 + trace
            spans.append(span(lt, lt * 10 + 1, None, "catalog", "/list", at + 500, at + 510))
            if not after or i % 5 < 2:
                spans.append(span(lt, lt * 10 + 2, lt * 10 + 1, "catalog", "cache", at + 501, at + 505))
    make_dataset("recovered", spans, logs)
    with open_dataset("recovered") as ds:
        report = ds.correlate(WIN, BASE)
        (found,) = [f for f in report.findings if f.evidence.details.get("recovered")]
        reran = ds.sql(found.evidence.sql)
    assert (found.service, found.operation) == ("payment", "hipstershop.PaymentService/Charge")
    assert "30 error lines on 30 of 30 calls before, 0 in 30 calls in the window" in found.summary
    # the finding discounts candidates: its figures come with the SQL that gives them
    got = {r[0]: dict(zip(reran.columns[1:], r[1:], strict=True)) for r in reran.rows}
    assert got == {"before": found.evidence.before, "after": found.evidence.after}
    pay = [c for c in report.candidates if c.service == "payment"]
    assert pay and all("it recovered from a failure; scored by half)" in c.summary for c in pay)
    assert report.candidates[0].service == "catalog"


def test_an_operation_whose_lines_all_stopped_changed_its_code_path_it_did_not_recover() -> None:
    """Payment's Charge wrote its "Charge card" line on every call and a "Card declined" ERROR on
    two calls in five; in the window it writes neither (the code now returns before both), while
    its ledger step keeps its lines. The error lines stopped with the line of the path they sit
    on: that is the code path change, not a recovery, and it is not scaled down as one."""
    spans: list[dict] = []
    logs: list[dict] = []
    for i in range(30):
        for trace, at, after in ((i + 1, 1_000 + i * 1_000, False), (1_000 + i, 61_000 + i * 1_000, True)):
            b = trace * 10
            spans += checkout_trace(trace, at, gap_ms=2.0)
            spans.append(span(trace, b + 6, b + 4, "payment", "ledger", at + 3, at + 4))
            logs += [
                {**r, "span_id": _sid(b + 6), "body": r["body"].replace(_sid(b + 4), _sid(b + 6))}
                for r in _payment_logs(i, trace, at + 0.5, ("[ledger][Write][order: {i}]", "[ledger][Done]"))
            ]
            if after:
                continue
            logs += _payment_logs(i, trace, at, ("[charge][Charge card][order: {i}]",))
            if i % 5 < 2:
                got = _payment_logs(i, trace, at + 1, ("[charge][Card declined][order: {i}]",))
                logs += [{**r, "body": r["body"].replace("INFO  ", "ERROR ")} for r in got]
    make_dataset("stopped-early", spans, logs)
    with open_dataset("stopped-early") as ds:
        report = ds.correlate(WIN, BASE)
    assert not [f for f in report.findings if f.evidence.details.get("recovered")]
    top = report.candidates[0]
    assert (top.service, top.mechanism) == ("payment", "code_path_change")
    assert "stopped writing a log line it wrote 30 times in 30 calls before: 0 times" in top.summary
    assert "recovered" not in top.summary
    assert top.score >= 0.5, top.score


def _retry_logs(i: int, trace: int, at: float) -> list[dict]:
    """Payment's Charge retrying a call three times, an ERROR line each attempt (one template)."""
    return _as_errors(
        _payment_logs(i, trace, at, tuple(f"[charge][attempt {k} failed][order: {{i}}]" for k in (1, 2, 3)))
    )


def test_three_error_lines_on_two_calls_in_five_are_not_a_standing_fault() -> None:
    """Payment's Charge retries on two calls in five, logging an ERROR per attempt: 36 lines in
    30 calls in each period. That is not an error on nearly every call: calls are counted, not
    lines, so no standing fault is put before the checkout change, however faint."""
    spans, logs = _checkout_before_and_after(
        lambda i, trace, at: _retry_logs(i, trace, at) if i % 5 < 2 else []
    )
    make_dataset("retries-standing", spans, logs)
    with open_dataset("retries-standing") as ds:
        report = ds.correlate(WIN, BASE)
    assert not [c for c in report.candidates if c.evidence.details.get("standing")]


def test_retries_that_stop_on_one_call_in_ten_are_no_recovery() -> None:
    """Payment's Charge retried (three ERROR lines) on one call in ten in the baseline and not in
    the window: 9 error lines in 30 calls, over the quarter a recovery needs when lines are taken
    for calls, but 3 calls in 30 failed. Payment's new ledger step is not scaled down as the end
    of a failure."""
    spans: list[dict] = []
    logs: list[dict] = []
    for i in range(30):
        for trace, at, after in ((i + 1, 1_000 + i * 1_000, False), (1_000 + i, 61_000 + i * 1_000, True)):
            t = checkout_trace(trace, at, gap_ms=2.0)
            if after:
                t.append(span(trace, trace * 10 + 6, trace * 10 + 4, "payment", "ledger", at + 3, at + 4))
            elif i % 10 == 0:
                logs += _retry_logs(i, trace, at)
            logs += _payment_logs(i, trace, at + 1, ("[charge][Charge card][order: {i}]",))
            spans += t
    make_dataset("retries-recovered", spans, logs)
    with open_dataset("retries-recovered") as ds:
        report = ds.correlate(WIN, BASE)
    assert not [f for f in report.findings if f.evidence.details.get("recovered")]
    pay = [c for c in report.candidates if c.service == "payment"]
    assert pay and not any("recovered" in c.summary for c in pay)


def _line(service: str, trace: int, sid: int, at_ms: float, level: str, message: str) -> dict:
    """A line a span writes, stamped and tied to it, its header cut before templating."""
    head = f"10:00:{trace % 60:02d}.123 {level:<5} x.y.Impl#42 TraceID: {_tid(trace)} SpanID: {_sid(sid)} "
    return {
        "time_ns": T0 + int((at_ms + 4) * MS),
        "service_name": service,
        "trace_id": _tid(trace),
        "span_id": _sid(sid),
        "body": head + message,
    }


def _cut_ticket_list(service: str, trace: int, sid: int, at_ms: float) -> dict:
    """A line listing tickets, cut at 1 KiB right after a ', ' (a shipper's size limit)."""
    got = _line(service, trace, sid, at_ms, "INFO", "[charge][Card valid][tickets: ")
    unit = f"Ticket(seat={10 + trace % 90}, from=shanghai), "
    pad = (1024 - len(got["body"])) % len(unit)
    body = got["body"].replace("[tickets: ", "[tickets" + "s" * pad + ": ") + unit * 40
    return {**got, "body": body[:1024]}


def test_the_figures_of_log_line_candidates_are_those_their_evidence_query_gives() -> None:
    """Each code path change and standing fault states figures its evidence SQL gives back, which
    a user or an agent can run: lines are found by their template's text, as Drain reads it.

    payment's Charge wrote a ticket list cut at 1 KiB after a ', ' on 16 of 40 calls and a
    "Card  declined" ERROR (two spaces) on 24; in the window every call is declined (an outcome
    flip). checkout's PlaceOrder logs an ERROR (two spaces) on every call in both periods (a
    standing fault), its audit step one in the baseline only (a recovery, a finding). frontend's /buy writes one statement whose date gained a time in the
    window: two Drain clusters, one text, so the line did not stop."""
    spans: list[dict] = []
    logs: list[dict] = []
    for i in range(40):
        for trace, at, after in ((i + 1, 1_000 + i * 1_000, False), (1_000 + i, 61_000 + i * 1_000, True)):
            spans += checkout_trace(trace, at, gap_ms=2.0)
            b = trace * 10
            date = "2023-01-30 17:38:46" if after else "2023-01-30"
            logs.append(_line("frontend", trace, b + 1, at, "INFO", f"[buy][Cart priced][date: {date}]"))
            logs.append(
                _line("checkout", trace, b + 2, at, "ERROR", f"[order][Stock  unreachable][order: {i}]")
            )
            if not after:
                logs.append(_line("checkout", trace, b + 5, at, "ERROR", "[audit][Ledger  offline]"))
            if after or i < 24:
                logs.append(
                    _line("payment", trace, b + 4, at, "ERROR", f"[charge][Card  declined][order: {i}]")
                )
            else:
                logs.append(_cut_ticket_list("payment", trace, b + 4, at))
    make_dataset("reproduced", spans, logs)
    with open_dataset("reproduced") as ds:
        report = ds.correlate(WIN, BASE)
        found = [
            c for c in report.candidates if c.analysis == "log_templates" and "calls" in c.evidence.before
        ]
        reran = [ds.sql(c.evidence.sql) for c in found]
        (recovered,) = [f for f in report.findings if f.evidence.details.get("recovered")]
        res = ds.sql(recovered.evidence.sql)
    got = {r[0]: dict(zip(res.columns[1:], r[1:], strict=True)) for r in res.rows}
    assert got == {"before": recovered.evidence.before, "after": recovered.evidence.after}
    assert (recovered.service, recovered.operation) == ("checkout", "audit")
    assert "40 error lines on 40 of 40 calls before, 0 in 40 calls in the window" in recovered.summary
    kinds = {(c.service, c.mechanism, bool(c.evidence.details.get("standing"))) for c in found}
    assert kinds == {("payment", "code_path_change", False), ("checkout", "error_propagation", True)}
    for c, res in zip(found, reran, strict=True):
        got = {r[0]: dict(zip(res.columns[1:], r[1:], strict=True)) for r in res.rows}
        assert got == {"before": c.evidence.before, "after": c.evidence.after}, c.summary
        b, a = got["before"], got["after"]
        if c.mechanism == "code_path_change":  # the summary's figures are the query's
            assert (
                f"wrote {b['lines']} times in {b['calls']} calls before: {a['lines']} times in {a['calls']} calls"
                in c.summary
            )
            assert f"went from {b['error_lines']} in {b['calls']} calls to {a['error_lines']} in" in c.summary
        else:
            assert (
                f"(on {b['calls_with_line']} of {b['calls']} calls before, {a['calls_with_line']} of "
                f"{a['calls']} after, {b['lines']} and {a['lines']} times" in c.summary
            )
    pay = next(c for c in found if c.service == "payment")
    assert (pay.evidence.before, pay.evidence.after) == (
        {"calls": 40, "lines": 16, "error_lines": 24},
        {"calls": 40, "lines": 0, "error_lines": 40},
    )
    assert pay.evidence.details["template"].endswith("from=shanghai),<*>")  # cut: the rest is gone
