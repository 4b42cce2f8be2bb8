"""Clock-skew adjustment with Jaeger's adjuster semantics, on a TraceTree.

Walk each root's subtree carrying a (host, delta) pair. When a span is on a different host
than the one the current delta belongs to, a new delta is computed against its (already
adjusted) parent; otherwise the span inherits the delta, so a shift applies to the child's
whole subtree on its own host:

    parent (host a)   |--------------------------|        child took 8 ms of 20 ms:
    child  (host b)                          |--------|   latency = (20 - 8) / 2 = 6 ms
    adjusted child          |--------|                    start := parent.start + 6 ms

- A delta is only computed between spans whose hosts are both known and differ: a span
  without a host is never compared (with no clock key we cannot tell skew from a real timing
  problem); it moves with its parent, like a span on the parent's host.
- A child that already fits inside its parent, or lasts longer than its parent (async or
  badly instrumented), is left alone (delta 0).
- A delta larger than `max_delta_ns` is not applied; the span gets WARN_MAX_DELTA instead and
  its subtree on the same host is left where it is.

The adjuster never fails; it returns new records and per-span warnings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from correlate.trace_tree import SpanRecord, TraceTree

__all__ = [
    "DEFAULT_MAX_DELTA_NS",
    "SkewResult",
    "adjust_clock_skew",
    "calculate_skew_ns",
    "format_delta",
    "WARN_ADJUSTED",
    "WARN_MAX_DELTA",
]

DEFAULT_MAX_DELTA_NS = 60 * 1_000_000_000

WARN_ADJUSTED = (
    "clock skew: this span's timestamps were adjusted by {delta} (host {host} vs parent host {parent_host})"
)
WARN_MAX_DELTA = (
    "max clock skew adjustment delta of {max_delta} exceeded; not applying calculated delta of {delta}"
)


@dataclass(frozen=True)
class SkewResult:
    spans: Mapping[str, SpanRecord]  # adjusted copies (unchanged spans are the same objects)
    delta_ns: Mapping[str, int]  # span id -> applied shift (0 when none)
    span_warnings: Mapping[str, tuple[str, ...]]


def format_delta(ns: int) -> str:
    """A signed duration in the largest whole unit that shows it exactly: -5ms, 1.5s, 250us, 7ns."""
    sign = "-" if ns < 0 else ""
    n = abs(ns)
    for unit, size in (("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)):
        if n >= size:
            value = n / size
            text = f"{value:.3f}".rstrip("0").rstrip(".")
            return f"{sign}{text}{unit}"
    return f"{sign}{n}ns"


def calculate_skew_ns(child: SpanRecord, parent: SpanRecord) -> int:
    """The shift that centres `child` in `parent` when it does not fit; 0 when it fits or cannot."""
    if child.duration_ns > parent.duration_ns:
        return 0
    if child.start_ns >= parent.start_ns and child.end_ns <= parent.end_ns:
        return 0
    latency_ns = (parent.duration_ns - child.duration_ns) // 2
    return parent.start_ns + latency_ns - child.start_ns


def _different_hosts(a: SpanRecord, b: SpanRecord) -> bool:
    return bool(a.host) and bool(b.host) and a.host != b.host


def adjust_clock_skew(tree: TraceTree, max_delta_ns: int = DEFAULT_MAX_DELTA_NS) -> SkewResult:
    adjusted: dict[str, SpanRecord] = dict(tree.spans)
    deltas: dict[str, int] = {}
    warnings: dict[str, list[str]] = {}
    # (span id, delta inherited from the nearest span on the same host)
    stack: list[tuple[str, int]] = [(r, 0) for r in reversed(tree.roots)]
    while stack:
        sid, delta = stack.pop()
        span = tree.spans[sid]
        pid = tree.parent.get(sid)
        if pid is not None:
            parent = adjusted[pid]
            if _different_hosts(span, parent):
                delta = calculate_skew_ns(span, parent)
                if delta and abs(delta) > max_delta_ns:
                    warnings.setdefault(sid, []).append(
                        WARN_MAX_DELTA.format(max_delta=format_delta(max_delta_ns), delta=format_delta(delta))
                    )
                    delta = 0
                elif delta:
                    warnings.setdefault(sid, []).append(
                        WARN_ADJUSTED.format(
                            delta=format_delta(delta), host=span.host, parent_host=parent.host
                        )
                    )
        if delta:
            adjusted[sid] = dataclasses.replace(
                span, start_ns=span.start_ns + delta, end_ns=span.end_ns + delta
            )
            deltas[sid] = delta
        stack.extend((c, delta) for c in reversed(tree.children.get(sid, ())))
    return SkewResult(
        spans=adjusted,
        delta_ns={sid: deltas.get(sid, 0) for sid in tree.spans},
        span_warnings={k: tuple(v) for k, v in warnings.items()},
    )
