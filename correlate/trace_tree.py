"""One trace as a tree of plain span records: the input of clock skew, critical path and the view.

`build_tree(records)` never fails on bad data: a problem becomes a warning with a constant
message (Jaeger's adjuster style) and the tree is repaired:

- a second span with an id already seen is dropped              WARN_DUPLICATE_SPAN
- a span whose parent is not in the trace becomes a root         WARN_MISSING_PARENT
- spans whose parent links form a cycle: the earliest one in
  each cycle becomes a root                                      WARN_PARENT_CYCLE
- more than one root                                             WARN_SEVERAL_ROOTS

Children are kept in "document order": by start time, then span id, so that results do not
depend on the order rows came out of the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SpanRecord",
    "TraceTree",
    "build_tree",
    "WARN_DUPLICATE_SPAN",
    "WARN_MISSING_PARENT",
    "WARN_PARENT_CYCLE",
    "WARN_SEVERAL_ROOTS",
]

WARN_DUPLICATE_SPAN = "duplicate span ID={span_id}; kept the first copy, dropped {count} more"
WARN_MISSING_PARENT = "parent span ID={parent_id} is not in the trace; treated as a root"
WARN_PARENT_CYCLE = "span ID={span_id} is part of a cycle of parent links; treated as a root"
WARN_SEVERAL_ROOTS = (
    "trace has {count} root spans; the critical path runs over a synthetic root spanning all of them"
)


@dataclass(frozen=True)
class SpanRecord:
    """The fields of a span that trace anatomy needs. Times are int ns since the epoch."""

    span_id: str
    parent_span_id: str | None
    service: str
    operation: str
    start_ns: int
    end_ns: int
    host: str | None = None
    kind: str = "UNSPECIFIED"
    status_code: str = "UNSET"
    status_message: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    # the reference to the parent is Jaeger's FOLLOWS_FROM (asynchronous), not CHILD_OF
    follows_from: bool = False

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True)
class TraceTree:
    spans: Mapping[str, SpanRecord]  # span id -> record (one per id)
    children: Mapping[str, tuple[str, ...]]  # span id -> child ids in document order
    roots: tuple[str, ...]  # document order
    parent: Mapping[str, str | None]  # span id -> parent id in the tree (None for roots)
    warnings: tuple[str, ...]  # about the trace as a whole
    span_warnings: Mapping[str, tuple[str, ...]]  # span id -> warnings about that span

    def depth_first(self) -> list[tuple[str, int]]:
        """(span id, depth) for every span, parents before children, roots at depth 0."""
        out: list[tuple[str, int]] = []
        stack = [(r, 0) for r in reversed(self.roots)]
        while stack:
            sid, depth = stack.pop()
            out.append((sid, depth))
            stack.extend((c, depth + 1) for c in reversed(self.children.get(sid, ())))
        return out


def _doc_order(span: SpanRecord) -> tuple[int, str]:
    return (span.start_ns, span.span_id)


def build_tree(records: Iterable[SpanRecord]) -> TraceTree:
    spans: dict[str, SpanRecord] = {}
    duplicates: dict[str, int] = {}
    for rec in records:
        if rec.span_id in spans:
            duplicates[rec.span_id] = duplicates.get(rec.span_id, 0) + 1
        else:
            spans[rec.span_id] = rec
    warnings = [WARN_DUPLICATE_SPAN.format(span_id=s, count=n) for s, n in sorted(duplicates.items())]
    span_warnings: dict[str, list[str]] = {}
    parent: dict[str, str | None] = {}
    for sid, rec in spans.items():
        pid = rec.parent_span_id
        if pid is not None and pid not in spans:
            span_warnings.setdefault(sid, []).append(WARN_MISSING_PARENT.format(parent_id=pid))
            pid = None
        if pid == sid:
            span_warnings.setdefault(sid, []).append(WARN_PARENT_CYCLE.format(span_id=sid))
            pid = None
        parent[sid] = pid
    _break_cycles(spans, parent, span_warnings)
    children: dict[str, list[str]] = {}
    roots: list[str] = []
    for sid in sorted(spans, key=lambda s: _doc_order(spans[s])):
        pid = parent[sid]
        if pid is None:
            roots.append(sid)
        else:
            children.setdefault(pid, []).append(sid)
    if len(roots) > 1:
        warnings.append(WARN_SEVERAL_ROOTS.format(count=len(roots)))
    return TraceTree(
        spans=spans,
        children={k: tuple(v) for k, v in children.items()},
        roots=tuple(roots),
        parent=parent,
        warnings=tuple(warnings),
        span_warnings={k: tuple(v) for k, v in span_warnings.items()},
    )


def _break_cycles(
    spans: Mapping[str, SpanRecord], parent: dict[str, str | None], span_warnings: dict[str, list[str]]
) -> None:
    """Every span must reach a root; in each parent cycle, promote its earliest span."""
    state: dict[str, int] = {}  # 1 = on the current walk, 2 = known to reach a root
    for start in spans:
        walk: list[str] = []
        sid: str | None = start
        while sid is not None and state.get(sid) is None:
            state[sid] = 1
            walk.append(sid)
            sid = parent[sid]
        if sid is not None and state.get(sid) == 1:  # closed a cycle on this walk
            cycle = walk[walk.index(sid) :]
            head = min(cycle, key=lambda s: _doc_order(spans[s]))
            parent[head] = None
            span_warnings.setdefault(head, []).append(WARN_PARENT_CYCLE.format(span_id=head))
        for s in walk:
            state[s] = 2
