"""Table tests for the trace pipeline: tree repair, clock skew, critical path, self time.

Spans are in whole milliseconds; comments show the arithmetic.
"""

from __future__ import annotations

import pytest

from correlate.clock_skew import WARN_ADJUSTED, WARN_MAX_DELTA, adjust_clock_skew, format_delta
from correlate.critical_path import critical_path
from correlate.trace_tree import (
    WARN_DUPLICATE_SPAN,
    WARN_MISSING_PARENT,
    WARN_PARENT_CYCLE,
    WARN_SEVERAL_ROOTS,
    SpanRecord,
    build_tree,
)
from correlate.trace_view import build_view, self_time_ns

MS = 1_000_000


def span(sid, parent, start_ms, end_ms, host=None, service=None, follows_from=False):
    return SpanRecord(
        span_id=sid,
        parent_span_id=parent,
        service=service or f"svc-{sid}",
        operation=f"op-{sid}",
        start_ns=start_ms * MS,
        end_ns=end_ms * MS,
        host=host,
        follows_from=follows_from,
    )


# ---- tree repair --------------------------------------------------------------------------


def test_orphan_is_promoted_with_a_warning():
    tree = build_tree([span("a", None, 0, 10), span("b", "zz", 2, 4)])
    assert tree.roots == ("a", "b")
    assert tree.parent["b"] is None
    assert tree.span_warnings["b"] == (WARN_MISSING_PARENT.format(parent_id="zz"),)
    assert tree.warnings == (WARN_SEVERAL_ROOTS.format(count=2),)


def test_duplicate_span_ids_keep_the_first():
    tree = build_tree([span("a", None, 0, 10), span("a", None, 50, 60), span("a", None, 70, 80)])
    assert tree.spans["a"].start_ns == 0
    assert tree.warnings == (WARN_DUPLICATE_SPAN.format(span_id="a", count=2),)


def test_parent_cycle_promotes_its_earliest_span():
    # b -> c -> b: a cycle with no root; b starts first so b becomes the root
    tree = build_tree([span("b", "c", 1, 9), span("c", "b", 2, 8)])
    assert tree.roots == ("b",)
    assert tree.children["b"] == ("c",)
    assert tree.span_warnings["b"] == (WARN_PARENT_CYCLE.format(span_id="b"),)


def test_children_in_document_order_and_depth_first():
    tree = build_tree(
        [span("r", None, 0, 100), span("y", "r", 50, 60), span("x", "r", 10, 20), span("x1", "x", 11, 12)]
    )
    assert tree.children["r"] == ("x", "y")
    assert tree.depth_first() == [("r", 0), ("x", 1), ("x1", 2), ("y", 1)]


# ---- clock skew ---------------------------------------------------------------------------

SKEW_CASES = [
    # (name, spans, expected shift in ms per span id, expected warnings per span id)
    (
        "child on another host ends after its parent: centred in the parent's gap",
        # parent 0-100 (host a); child 90-130 (host b), 40 ms: latency (100-40)/2 = 30 -> start 30, shift -60
        [span("p", None, 0, 100, "a"), span("c", "p", 90, 130, "b")],
        {"p": 0, "c": -60},
        {"c": (WARN_ADJUSTED.format(delta="-60ms", host="b", parent_host="a"),)},
    ),
    (
        "child on another host starts before its parent",
        # parent 100-200 (a); child 50-70 (b), 20 ms: latency 40 -> start 140, shift +90
        [span("p", None, 100, 200, "a"), span("c", "p", 50, 70, "b")],
        {"p": 0, "c": 90},
        {"c": (WARN_ADJUSTED.format(delta="90ms", host="b", parent_host="a"),)},
    ),
    (
        "same host: never adjusted, even when outside",
        [span("p", None, 0, 100, "a"), span("c", "p", 90, 130, "a")],
        {"p": 0, "c": 0},
        {},
    ),
    (
        "unknown host: never compared",
        [span("p", None, 0, 100, "a"), span("c", "p", 90, 130, None)],
        {"p": 0, "c": 0},
        {},
    ),
    (
        "child fits: no adjustment",
        [span("p", None, 0, 100, "a"), span("c", "p", 10, 90, "b")],
        {"p": 0, "c": 0},
        {},
    ),
    (
        "child longer than its parent (async): no adjustment",
        [span("p", None, 0, 100, "a"), span("c", "p", 50, 250, "b")],
        {"p": 0, "c": 0},
        {},
    ),
    (
        "the shift carries to the child's subtree on its host; another host is compared afresh",
        # c (b) 90-130 -> shift -60 -> 30-70; g (b) 100-110 inherits -60 -> 40-50;
        # h (a) 95-105 under g (adjusted 40-50): 10 ms, latency 0 -> start 40, shift -55
        [
            span("p", None, 0, 100, "a"),
            span("c", "p", 90, 130, "b"),
            span("g", "c", 100, 110, "b"),
            span("h", "g", 95, 105, "a"),
        ],
        {"p": 0, "c": -60, "g": -60, "h": -55},
        {
            "c": (WARN_ADJUSTED.format(delta="-60ms", host="b", parent_host="a"),),
            "h": (WARN_ADJUSTED.format(delta="-55ms", host="a", parent_host="b"),),
        },
    ),
    (
        "a shift beyond the maximum is not applied",
        # parent 0-100 (a); child 120000-120040 (b): shift 30 - 120000 = -119970 ms > 60 s
        [span("p", None, 0, 100, "a"), span("c", "p", 120_000, 120_040, "b")],
        {"p": 0, "c": 0},
        {"c": (WARN_MAX_DELTA.format(max_delta="60s", delta="-119.97s"),)},
    ),
]


@pytest.mark.parametrize("name,spans,shift_ms,warnings", SKEW_CASES, ids=[c[0] for c in SKEW_CASES])
def test_clock_skew(name, spans, shift_ms, warnings):
    result = adjust_clock_skew(build_tree(spans))
    assert {sid: d // MS for sid, d in result.delta_ns.items()} == shift_ms
    assert dict(result.span_warnings) == warnings
    for s in spans:
        adj = result.spans[s.span_id]
        assert adj.start_ns == s.start_ns + shift_ms[s.span_id] * MS
        assert adj.duration_ns == s.duration_ns


def test_format_delta():
    assert [format_delta(v) for v in (-60 * MS, 1_500 * MS, 250_000, 7, 0)] == [
        "-60ms",
        "1.5s",
        "250us",
        "7ns",
        "0ns",
    ]


# ---- critical path ------------------------------------------------------------------------

CP_CASES = [
    # (name, spans, expected segments as (span, start_ms, end_ms), expected CRISP exclusive ms)
    (
        "sequential children",
        # r 0-100: a 10-40, b 50-90 -> r 0-10, a 10-40, r 40-50, b 50-90, r 90-100
        [span("r", None, 0, 100), span("a", "r", 10, 40), span("b", "r", 50, 90)],
        [("r", 0, 10), ("a", 10, 40), ("r", 40, 50), ("b", 50, 90), ("r", 90, 100)],
        {"r": 30, "a": 30, "b": 40},
    ),
    (
        "parallel children: only the last-finishing one and what ends before it starts",
        # a 10-60 and b 20-80 overlap: b finishes last; a ends after b starts -> not on the path
        [span("r", None, 0, 100), span("a", "r", 10, 60), span("b", "r", 20, 80)],
        [("r", 0, 20), ("b", 20, 80), ("r", 80, 100)],
        {"r": 40, "b": 60},
    ),
    (
        "FOLLOWS_FROM children and their subtrees are not on the path",
        [
            span("r", None, 0, 100),
            span("f", "r", 50, 99, follows_from=True),
            span("g", "f", 60, 70),
            span("a", "r", 10, 30),
        ],
        [("r", 0, 10), ("a", 10, 30), ("r", 30, 100)],
        {"r": 80, "a": 20},
    ),
    (
        "overflowing children are trimmed, those outside dropped",
        # c1 -10..20 -> 0..20; c2 90..130 -> 90..100; c3 120..150 outside -> dropped
        [
            span("r", None, 0, 100),
            span("c1", "r", -10, 20),
            span("c2", "r", 90, 130),
            span("c3", "r", 120, 150),
        ],
        [("c1", 0, 20), ("r", 20, 90), ("c2", 90, 100)],
        {"r": 70, "c1": 20, "c2": 10},
    ),
    (
        "a child overflowing both ends is trimmed to its parent (Jaeger), not dropped",
        [span("r", None, 0, 100), span("c", "r", -10, 130)],
        [("c", 0, 100)],
        {"r": 0, "c": 100},
    ),
    (
        "several roots: the path runs over a synthetic root",
        # roots x 0-50 and y 60-100 (y's parent is missing): y finishes last, x ends before y starts
        [span("x", None, 0, 50), span("y", "missing", 60, 100)],
        [("x", 0, 50), ("y", 60, 100)],
        {"x": 50, "y": 40},
    ),
]


@pytest.mark.parametrize("name,spans,segments,exclusive_ms", CP_CASES, ids=[c[0] for c in CP_CASES])
def test_critical_path(name, spans, segments, exclusive_ms):
    cp = critical_path(build_tree(spans))
    assert [(s.span_id, s.start_ns // MS, s.end_ns // MS) for s in cp.segments] == segments
    assert {sid: ns // MS for sid, ns in cp.exclusive_ns.items()} == exclusive_ms


def test_critical_path_of_an_empty_trace():
    cp = critical_path(build_tree([]))
    assert cp.segments == () and cp.spans == ()


def test_deep_trace_does_not_recurse():
    spans = [span("s0", None, 0, 10_000)] + [
        span(f"s{i}", f"s{i - 1}", i, 10_000 - i) for i in range(1, 3000)
    ]
    cp = critical_path(build_tree(spans))
    assert len(cp.spans) == 3000
    assert sum(s.end_ns - s.start_ns for s in cp.segments) == 10_000 * MS


# ---- self time and the assembled view -----------------------------------------------------


def test_self_time_subtracts_the_union_of_children():
    # p 0-100; children 10-30, 20-50 (overlap), 90-120 (overflows): covered 10-50 and 90-100 = 50
    p = span("p", None, 0, 100)
    kids = [span("a", "p", 10, 30), span("b", "p", 20, 50), span("c", "p", 90, 120)]
    assert self_time_ns(p, kids) == 50 * MS


def test_view_uses_skew_adjusted_times_and_marks_the_path():
    view = build_view("t", build_tree([span("p", None, 0, 100, "a"), span("c", "p", 90, 130, "b")]))
    p, c = view.spans
    assert (c.start_ns // MS, c.end_ns // MS, c.skew_adjustment_ns // MS, c.depth) == (30, 70, -60, 1)
    assert p.self_time_ns == 60 * MS and p.critical_path_ns == 60 * MS
    assert p.on_critical_path and c.on_critical_path
    assert [(s.span_id, s.start_ns // MS, s.end_ns // MS) for s in view.critical_path] == [
        ("p", 0, 30),
        ("c", 30, 70),
        ("p", 70, 100),
    ]
    assert view.warnings == (
        "span c (svc-c op-c): " + WARN_ADJUSTED.format(delta="-60ms", host="b", parent_host="a"),
    )
