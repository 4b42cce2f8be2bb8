"""Small synthetic span sets for the correlation tests, written as real datasets.

    b = SpanSet()
    t = b.trace(start_ms=1000)
    root = t.span("web", "GET /a", 0, 50)                       # offsets and durations in ms
    t.span("db", "SELECT", 10, 20, parent=root, kind="CLIENT", status_code="ERROR")
    session = b.open("name")                                      # make_dataset + open_dataset

Ids are deterministic (counters), so tests can assert exact trace and span ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from correlate.session import DatasetSession, open_dataset
from correlate.testing import make_dataset
from correlate.types import Window

MS = 1_000_000
T0_NS = 1_700_000_000 * 1_000_000_000  # 2023-11-14T22:13:20Z


def ms(x: float) -> int:
    """Milliseconds after T0 as epoch nanoseconds."""
    return T0_NS + int(round(x * MS))


def window_ms(a: float, b: float) -> Window:
    return Window(ms(a), ms(b))


class TraceBuilder:
    def __init__(self, owner: SpanSet, trace_id: str, start_ms: float) -> None:
        self.owner = owner
        self.trace_id = trace_id
        self.start_ms = start_ms

    def span(
        self,
        service: str,
        name: str,
        offset_ms: float,
        dur_ms: float,
        *,
        parent: str | None = None,
        kind: str = "SERVER",
        status_code: str = "UNSET",
        **cols: Any,
    ) -> str:
        sid = self.owner.next_span_id()
        start = ms(self.start_ms + offset_ms)
        row = {
            "trace_id": self.trace_id,
            "span_id": sid,
            "parent_span_id": parent,
            "name": name,
            "kind": kind,
            "service_name": service,
            "start_ns": start,
            "end_ns": start + int(round(dur_ms * MS)),
            "status_code": status_code,
            "attributes": "{}",
            "resource_attributes": "{}",
            "events": "[]",
            "links": "[]",
        }
        row.update(cols)
        self.owner.spans.append(row)
        return sid


class SpanSet:
    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self._traces = 0
        self._spans = 0

    def next_span_id(self) -> str:
        self._spans += 1
        return f"{self._spans:016x}"

    def trace(self, start_ms: float) -> TraceBuilder:
        self._traces += 1
        return TraceBuilder(self, f"{self._traces:032x}", start_ms)

    def log(
        self,
        service: str,
        at_ms: float,
        body: str,
        *,
        severity: str = "INFO",
        trace_id: str | None = None,
        span_id: str | None = None,
        **cols: Any,
    ) -> None:
        number = {"DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17}[severity]
        row = {
            "time_ns": ms(at_ms),
            "observed_time_ns": ms(at_ms),
            "severity_number": number,
            "severity_text": severity,
            "body": body,
            "trace_id": trace_id,
            "span_id": span_id,
            "service_name": service,
            "attributes": "{}",
            "resource_attributes": "{}",
        }
        row.update(cols)
        self.logs.append(row)

    def open(self, name: str = "synth") -> DatasetSession:
        make_dataset(name, self.spans, self.logs)
        return open_dataset(name)


def two_periods(build, n: int = 40, step_ms: float = 1000.0) -> tuple[SpanSet, Window, Window]:
    """`n` traces in a baseline [0, n*step) and `n` in a window [n*step, 2n*step) (ms after T0);
    `build(trace, after, i)` adds each trace's spans. Returns (spans, window, baseline)."""
    b = SpanSet()
    for i in range(2 * n):
        build(b.trace(start_ms=i * step_ms), i >= n, i)
    return b, window_ms(n * step_ms, 2 * n * step_ms), window_ms(0, n * step_ms)


def analyse(session: DatasetSession, analysis, window: Window, baseline: Window | None):
    """Run one analysis function on `session` with fresh working tables; its AnalysisResult."""
    from correlate.engine import drop_working, materialise

    con = session.con.cursor()
    try:
        ctx, _ = materialise(con, window, baseline)
        assert ctx is not None, "no spans in the window"
        return analysis(ctx)
    finally:
        drop_working(con)
        con.close()


@contextmanager
def module_session(tmp_path_factory, spans: SpanSet, name: str) -> Iterator[DatasetSession]:
    """A session over `spans` in its own DCR_HOME, for a module-scoped fixture."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCR_HOME", str(tmp_path_factory.mktemp("dcr_home")))
        with spans.open(name) as session:
            yield session
