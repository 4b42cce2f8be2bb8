"""The critical path of one trace, as CRISP (USENIX ATC'22) and Jaeger compute it.

A small pipeline over copies of the spans (the tree itself is never modified):

    cp_spans        copy just the fields needed; drop FOLLOWS_FROM children and their
                    subtrees; several roots hang under one synthetic root
    sanitize        trim children that overflow their parent, drop those entirely outside
    path_children   per span: the chain of children on the path, found from the
                    last-finishing child backwards (`happens_before`)
    exclusive_ns    CRISP's exclusive time: duration minus its path children's durations
    segments        the path as a timeline: ordered (span, start, end) pieces

Sanitising, parent P and child C (times after clock-skew adjustment):

    P      |-----------|        C inside: kept
    C1  |-----|                 starts before P: start := P.start
    C2            |-------|     ends after P: end := P.end
    C3  |-----------------|     both: trimmed to P
    C4                    |--|  entirely outside (or touching an edge): dropped with its subtree

Happens-before between siblings (CRISP): A before B when A.end < B.start, or when A overlaps
the start of B by less than 1 % of the parent's duration, A started and ended before B, and no
other sibling starts or ends in the overlap (clock skew makes back-to-back calls overlap a
little):

    A  |--------|
    B         |--------|    overlap < 1 % of parent: still A before B
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from correlate.trace_tree import SpanRecord, TraceTree

__all__ = [
    "OVERLAP_ALLOWANCE",
    "SYNTHETIC_ROOT",
    "CPSpan",
    "CriticalPath",
    "Segment",
    "cp_spans",
    "sanitize",
    "happens_before",
    "path_children",
    "exclusive_ns",
    "segments",
    "critical_path",
]

OVERLAP_ALLOWANCE = 0.01  # CRISP: overlap tolerated, as a fraction of the parent's duration
SYNTHETIC_ROOT = "<synthetic-root>"


@dataclass
class CPSpan:
    """The fields the critical path needs; mutable because `sanitize` trims copies."""

    span_id: str
    start_ns: int
    end_ns: int
    children: list[str] = field(default_factory=list)  # document order

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True)
class Segment:
    span_id: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class CriticalPath:
    root: str  # a span id, or SYNTHETIC_ROOT
    spans: tuple[str, ...]  # every span on the path (not the synthetic root)
    exclusive_ns: Mapping[str, int]  # span id -> CRISP exclusive time on the path
    segments: tuple[Segment, ...]  # time order, non-overlapping, synthetic root left out


def cp_spans(tree: TraceTree, spans: Mapping[str, SpanRecord] | None = None) -> tuple[str, dict[str, CPSpan]]:
    """Copies for the path: (root id, span id -> CPSpan). `spans` overrides times (skew-adjusted)."""
    source = spans if spans is not None else tree.spans
    out: dict[str, CPSpan] = {}
    stack = list(tree.roots)
    while stack:
        sid = stack.pop()
        rec = source[sid]
        kept = [c for c in tree.children.get(sid, ()) if not source[c].follows_from]
        out[sid] = CPSpan(sid, rec.start_ns, rec.end_ns, kept)
        stack.extend(kept)
    roots = [r for r in tree.roots if r in out]
    if len(roots) == 1:
        return roots[0], out
    start = min((out[r].start_ns for r in roots), default=0)
    end = max((out[r].end_ns for r in roots), default=0)
    out[SYNTHETIC_ROOT] = CPSpan(SYNTHETIC_ROOT, start, end, roots)
    return SYNTHETIC_ROOT, out


def sanitize(spans: dict[str, CPSpan], root: str) -> None:
    """Trim children to their (already trimmed) parent, parents first; drop those outside."""
    stack = [root]
    while stack:
        parent = spans[stack.pop()]
        kept: list[str] = []
        for cid in parent.children:
            child = spans[cid]
            if child.start_ns >= parent.end_ns or child.end_ns <= parent.start_ns:
                if not (
                    child.start_ns == child.end_ns and parent.start_ns <= child.start_ns <= parent.end_ns
                ):
                    _drop(spans, cid)
                    continue
            child.start_ns = max(child.start_ns, parent.start_ns)
            child.end_ns = min(child.end_ns, parent.end_ns)
            kept.append(cid)
        parent.children = kept
        stack.extend(kept)


def _drop(spans: dict[str, CPSpan], sid: str) -> None:
    stack = [sid]
    while stack:
        gone = spans.pop(stack.pop())
        stack.extend(gone.children)


def _events_in(children: Sequence[CPSpan], lo: int, hi: int) -> int:
    """How many starts and ends of `children` fall in [lo, hi]."""
    return sum((lo <= c.start_ns <= hi) + (lo <= c.end_ns <= hi) for c in children)


def happens_before(parent: CPSpan, siblings: Sequence[CPSpan], before: CPSpan, later: CPSpan) -> bool:
    if before.end_ns < later.start_ns:
        return True
    if before.end_ns < later.end_ns and before.start_ns < later.start_ns and parent.duration_ns > 0:
        overlap = (before.end_ns - later.start_ns) / parent.duration_ns
        if overlap < OVERLAP_ALLOWANCE:
            return _events_in(siblings, later.start_ns, before.end_ns) == 2
    return False


def path_children(spans: Mapping[str, CPSpan], sid: str) -> list[str]:
    """The children of `sid` on the critical path, in time order (first to last)."""
    parent = spans[sid]
    if not parent.children:
        return []
    kids = [spans[c] for c in parent.children]
    # by end time, latest first; equal ends in reverse document order (CRISP sorts, then reverses)
    ordered = sorted(kids, key=lambda c: c.end_ns)[::-1]
    last = ordered[0]
    chain = [last]
    for cand in ordered[1:]:
        if happens_before(parent, ordered, cand, last):
            chain.append(cand)
            last = cand
    return [c.span_id for c in reversed(chain)]


def exclusive_ns(spans: Mapping[str, CPSpan], on_path: Mapping[str, list[str]]) -> dict[str, int]:
    """CRISP: a path span's duration minus the durations of its path children, at least 0."""
    return {
        sid: max(0, spans[sid].duration_ns - sum(spans[c].duration_ns for c in kids))
        for sid, kids in on_path.items()
    }


def segments(spans: Mapping[str, CPSpan], on_path: Mapping[str, list[str]], root: str) -> list[Segment]:
    """The path as a timeline. An overlapping earlier child is cut where the next one starts.

    A  |0------------------------------------------------1000|
    B     |10----210|                                            B, C overlap by 1
    C              |209----309|                                  C, D overlap by 1
    D                        |308--------608|
    -> A 0-10, B 10-209, C 209-308, D 308-608, A 608-1000
    """
    out: list[Segment] = []
    # tasks: ("visit", span, lo, hi) or ("emit", span, lo, hi); popped in time order
    stack: list[tuple[str, str, int, int]] = [("visit", root, spans[root].start_ns, spans[root].end_ns)]
    while stack:
        task, sid, lo, hi = stack.pop()
        if task == "emit":
            if hi > lo and sid != SYNTHETIC_ROOT:
                if out and out[-1].span_id == sid and out[-1].end_ns == lo:
                    out[-1] = Segment(sid, out[-1].start_ns, hi)
                else:
                    out.append(Segment(sid, lo, hi))
            continue
        kids = [spans[c] for c in on_path.get(sid, [])]
        tasks: list[tuple[str, str, int, int]] = []
        t = lo
        for i, kid in enumerate(kids):
            k_lo = max(kid.start_ns, t)
            k_hi = min(kid.end_ns, hi, kids[i + 1].start_ns if i + 1 < len(kids) else kid.end_ns)
            if k_hi <= k_lo:
                continue
            tasks.append(("emit", sid, t, k_lo))
            tasks.append(("visit", kid.span_id, k_lo, k_hi))
            t = k_hi
        tasks.append(("emit", sid, t, hi))
        stack.extend(reversed(tasks))
    return out


def critical_path(tree: TraceTree, spans: Mapping[str, SpanRecord] | None = None) -> CriticalPath:
    """The whole pipeline; `spans` are the (skew-adjusted) records to use instead of the tree's."""
    if not tree.roots:
        return CriticalPath(root=SYNTHETIC_ROOT, spans=(), exclusive_ns={}, segments=())
    root, cps = cp_spans(tree, spans)
    sanitize(cps, root)
    on_path: dict[str, list[str]] = {}
    stack = [root]
    while stack:
        sid = stack.pop()
        kids = path_children(cps, sid)
        on_path[sid] = kids
        stack.extend(kids)
    excl = exclusive_ns(cps, on_path)
    excl.pop(SYNTHETIC_ROOT, None)
    ordered = [s for s in on_path if s != SYNTHETIC_ROOT]
    return CriticalPath(
        root=root,
        spans=tuple(ordered),
        exclusive_ns=excl,
        segments=tuple(segments(cps, on_path, root)),
    )
