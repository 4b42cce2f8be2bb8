"""When did it start? Requests, errors and latency per service over time, with change points,
and the onset they point to: the window and baseline to hand to `correlate`.

    timeline(session, window=None, services=(), max_buckets=60) -> Timeline

A request of a service is a span it serves: a root span, a span whose parent is on another
service, or a span declared SERVER or CONSUMER. Buckets have a round width (1 s … 1 day) chosen
so that the window holds at most `max_buckets`. Per service and bucket: requests, errors (spans
whose status is ERROR: zero when the data has no statuses, and the notes say so), p50 and p95
duration.

Change points, per (service, operation) of the requests: the one split of each series into a
before and an after that best separates them, by a z statistic fit for the series: request rate
as Poisson counts, error rate as two proportions, latency as Welch's t on log durations (per
operation only: one service's operations differ by orders of magnitude, so their mix moves when
nothing is wrong). A change point is kept when it is strong (STRENGTH) and large (error rate +5
points, latency or requests x1.5). The onset is the
strongest change point of error rate or latency (request rate only when nothing else moved): the
proposed window runs from it to the end of the data, the baseline is as long (or as long as the
data before allows) right before it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from correlate.types import Window

if TYPE_CHECKING:
    from correlate.session import DatasetSession

__all__ = [
    "Timeline",
    "ServiceSeries",
    "ChangePoint",
    "Onset",
    "timeline",
    "change_point",
    "bucket_width",
    "COLUMNS",
    "WIDTHS_NS",
]

S = 1_000_000_000
WIDTHS_NS = tuple(
    int(w * S) for w in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
)
COLUMNS = ("bucket_start_ns", "requests", "errors", "p50_ns", "p95_ns")
PARENT_SLACK_NS = 600 * S
MIN_BUCKETS = 6  # fewer buckets: no change point is called
STRENGTH = {"error_rate": 3.0, "latency_ns": 4.0, "requests_per_s": 4.0}  # |z| to call a change point
RATE_POINTS = 0.05
RATIO = 1.5
MIN_REQUESTS = 3  # a bucket with fewer requests has no p95 to vote with
MIN_SIDE = 3  # buckets on each side of a change point
MIN_EVENTS = 12  # fewer requests in the window: no change point in their rate, error rate or latency
MIN_ERRORS = 3


@dataclass(frozen=True)
class ChangePoint:
    service: str
    operation: str | None  # None: the service's requests together
    metric: str  # "error_rate", "latency_ns" (geometric mean duration) or "requests_per_s"
    at_ns: int  # the first bucket of the after part
    before: float  # median of the series before
    after: float  # median after
    strength: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServiceSeries:
    service: str
    rows: tuple[tuple[int, int, int, float | None, float | None], ...]  # COLUMNS, empty buckets left out

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "rows": [list(r) for r in self.rows]}


@dataclass(frozen=True)
class Onset:
    at_ns: int
    window: Window
    baseline: Window | None  # None when the onset is the start of the data
    because: tuple[ChangePoint, ...]  # the change points at the onset, strongest first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Timeline:
    window: Window
    bucket_ns: int
    columns: tuple[str, ...]
    services: tuple[ServiceSeries, ...]
    changes: tuple[ChangePoint, ...]  # strongest first
    onset: Onset | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": asdict(self.window),
            "bucket_ns": self.bucket_ns,
            "columns": list(self.columns),
            "services": [s.to_dict() for s in self.services],
            "changes": [c.to_dict() for c in self.changes],
            "onset": None if self.onset is None else self.onset.to_dict(),
            "notes": list(self.notes),
        }


def bucket_width(span_ns: int, max_buckets: int, start_ns: int = 0) -> int:
    """The smallest round width that cuts [start_ns, start_ns + span_ns) into at most `max_buckets`
    buckets once the first bucket starts on a multiple of the width (a round time)."""
    for w in WIDTHS_NS:
        if -(-(start_ns % w + span_ns) // w) <= max_buckets:
            return w
    w = -(-span_ns // max_buckets)
    while -(-(start_ns % w + span_ns) // w) > max_buckets:
        w += -(-w // 100)  # past a day: no round width; grow by 1 % until the aligned range fits
    return w


def _best(n: int, score: Any) -> tuple[int, float] | None:
    """(k, score) of the split k in [MIN_SIDE, n - MIN_SIDE] with the highest |score(k)|."""
    best: tuple[int, float] | None = None
    for k in range(MIN_SIDE, n - MIN_SIDE + 1):
        z = abs(score(k))
        if best is None or z > best[1]:
            best = (k, z)
    return best


def change_point(series: Sequence[float]) -> tuple[int, float, float, float] | None:
    """(index of the first 'after' value, median before, median after, strength) of the split of a
    series of values (p95 a bucket) that best separates the medians, in pooled robust deviations
    (weighted by how balanced the split is); None for fewer than MIN_BUCKETS values."""
    n = len(series)
    if n < MIN_BUCKETS:
        return None
    spread = max(series) - min(series)
    floor = max(1e-9, 0.05 * abs(statistics.median(series)), 0.01 * spread)

    def score(k: int) -> float:
        left, right = series[:k], series[k:]
        ml, mr = statistics.median(left), statistics.median(right)
        mad = statistics.median([abs(v - ml) for v in left] + [abs(v - mr) for v in right]) * 1.4826
        return (mr - ml) / max(mad, floor) * (k * (n - k) / n) ** 0.5

    found = _best(n, score)
    if found is None:
        return None
    k, z = found
    return k, statistics.median(series[:k]), statistics.median(series[k:]), z


def count_change(
    counts: Sequence[int], trials: Sequence[int] | None = None
) -> tuple[int, float, float, float] | None:
    """The split of a count series that best separates its rate: events a bucket (Poisson, when
    `trials` is None) or events per trial (errors per request: two proportions). (index, rate
    before, rate after, |z|)."""
    n = len(counts)
    if n < MIN_BUCKETS or sum(trials if trials is not None else counts) < MIN_EVENTS:
        return None
    cum = [0]
    for c in counts:
        cum.append(cum[-1] + c)
    tot_t = [0]
    for t in trials if trials is not None else [1] * n:
        tot_t.append(tot_t[-1] + t)

    def rates(k: int) -> tuple[float, float, float, float, float, float]:
        a, b = cum[k], cum[n] - cum[k]
        ta, tb = tot_t[k], tot_t[n] - tot_t[k]
        return a, b, ta, tb, (a / ta if ta else 0.0), (b / tb if tb else 0.0)

    def score(k: int) -> float:
        a, b, ta, tb, ra, rb = rates(k)
        if not ta or not tb:
            return 0.0
        pooled = (a + b) / (ta + tb)
        if trials is None:  # Poisson: var of a rate = rate / exposure
            var = pooled / ta + pooled / tb
        else:
            var = pooled * (1 - pooled) * (1 / ta + 1 / tb)
        return (rb - ra) / var**0.5 if var > 0 else 0.0

    found = _best(n, score)
    if found is None:
        return None
    k, z = found
    return k, rates(k)[4], rates(k)[5], z


def _large(metric: str, before: float, after: float) -> bool:
    if metric == "error_rate":
        return abs(after - before) >= RATE_POINTS
    lo, hi = min(before, after), max(before, after)
    return hi >= RATIO * lo if lo > 0 else hi > 0


def timeline(
    session: DatasetSession, window: Window | None = None, services: Sequence[str] = (), max_buckets: int = 60
) -> Timeline:
    """Per-service series over `window` (default: the whole dataset), their change points and the onset."""
    start, end = session.handle.time_range
    notes: list[str] = []
    if window is None:
        if start is None or end is None:
            return Timeline(Window(0, 1), S, COLUMNS, (), (), None, ("the dataset has no spans",))
        window = Window(start, end + 1)
    width = bucket_width(max(1, window.end_ns - window.start_ns), max(1, max_buckets), window.start_ns)
    t0 = window.start_ns // width * width  # buckets on round times
    svc_filter = ""
    params: list[Any] = [window.start_ns, window.end_ns]
    if services:
        svc_filter = f" AND service_name IN ({', '.join('?' for _ in services)})"
        params += list(services)
    params += [window.start_ns - PARENT_SLACK_NS, window.end_ns, t0, width]
    rows = session.fetch(
        f"""WITH c AS (SELECT trace_id, span_id, parent_span_id, service_name, coalesce(name, '') AS name, kind,
                              start_ns, duration_ns,
                              status_code, status_message
                       FROM spans WHERE start_ns >= ? AND start_ns < ? AND service_name IS NOT NULL{svc_filter}),
                p AS (SELECT trace_id, span_id, service_name FROM spans WHERE start_ns >= ? AND start_ns < ?),
                e AS (SELECT c.*, (c.start_ns - ?) // ? AS b FROM c
                      LEFT JOIN p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
                      WHERE p.span_id IS NULL OR p.service_name <> c.service_name OR c.kind IN ('SERVER', 'CONSUMER'))
            SELECT service_name, GROUPING(name) = 0 AS per_op, name, b, count(*),
                   count(*) FILTER (WHERE status_code = 'ERROR'),
                   quantile_cont(duration_ns, 0.5), quantile_cont(duration_ns, 0.95),
                   count(*) FILTER (WHERE status_code = 'ERROR' OR status_message IS NOT NULL),
                   sum(ln(greatest(duration_ns, 1))), sum(ln(greatest(duration_ns, 1)) ^ 2)
            FROM e GROUP BY GROUPING SETS ((service_name, b), (service_name, name, b)) ORDER BY 1, 2, 3, 4""",
        params,
    )
    by: dict[str, list[tuple[int, int, int, float | None, float | None]]] = {}
    per_op: dict[tuple[str, str | None], dict[int, tuple[int, int, float, float]]] = {}
    with_status = 0
    for svc, is_op, op, b, n, errs, p50, p95, st, s1, s2 in rows:
        if not is_op:
            by.setdefault(svc, []).append(
                (
                    t0 + int(b) * width,
                    int(n),
                    int(errs),
                    None if p50 is None else float(p50),
                    None if p95 is None else float(p95),
                )
            )
            with_status += int(st)
        per_op.setdefault((svc, op if is_op else None), {})[int(b)] = (
            int(n),
            int(errs),
            float(s1 or 0.0),
            float(s2 or 0.0),
        )
    if rows and not with_status:
        notes.append(
            "no span carries an error status: errors are not counted, change points come from "
            "latency and request rate"
        )
    if not rows:
        notes.append("no spans in the window" + (" for these services" if services else ""))
    n_buckets = -(-(window.end_ns - t0) // width)
    if rows and n_buckets < MIN_BUCKETS:
        notes.append(
            f"{n_buckets} buckets of {width // S} s: too few to call a change point; widen the window "
            "or ask for more buckets"
        )
    changes = [
        c for (svc, op), series in per_op.items() for c in _changes(svc, op, series, t0, width, n_buckets)
    ]
    changes.sort(key=lambda c: (-c.strength, c.at_ns, c.service))
    return Timeline(
        window,
        width,
        COLUMNS,
        tuple(ServiceSeries(s, tuple(r)) for s, r in sorted(by.items())),
        tuple(changes),
        _onset(changes, width, window, start),
        tuple(notes),
    )


def latency_change(sums: Sequence[tuple[int, float, float]]) -> tuple[int, float, float, float] | None:
    """The split of a series of (requests, sum of ln duration, sum of its squares) a bucket that
    best separates the typical duration (Welch's t on log durations); (index, geometric mean
    before, geometric mean after, |t|)."""
    n = len(sums)
    if n < MIN_BUCKETS or sum(c for c, _, _ in sums) < MIN_EVENTS:
        return None
    acc = [(0, 0.0, 0.0)]
    for c, s1, s2 in sums:
        a = acc[-1]
        acc.append((a[0] + c, a[1] + s1, a[2] + s2))

    def stats(lo: tuple[int, float, float], hi: tuple[int, float, float]) -> tuple[int, float, float]:
        c, s1, s2 = hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]
        if c < 2:
            return c, (s1 / c if c else 0.0), 0.0
        mean = s1 / c
        return c, mean, max(0.0, (s2 - c * mean * mean) / (c - 1))

    def split(k: int) -> tuple[float, float, float]:
        (ca, ma, va), (cb, mb, vb) = stats(acc[0], acc[k]), stats(acc[k], acc[n])
        if ca < 3 or cb < 3:
            return 0.0, ma, mb
        se = (va / ca + vb / cb + 1e-12) ** 0.5
        return (mb - ma) / se, ma, mb

    found = _best(n, lambda k: split(k)[0])
    if found is None:
        return None
    k, z = found
    _, ma, mb = split(k)
    return k, math.exp(ma), math.exp(mb), z


def _changes(
    service: str,
    operation: str | None,
    series: dict[int, tuple[int, int, float, float]],
    t0: int,
    width: int,
    n_buckets: int,
) -> list[ChangePoint]:
    """Change points of one service (`operation` None: all its requests together) or one of its
    operations: request rate for both, error rate and latency per operation only (operations of
    one service can differ by orders of magnitude, so their mix moves when nothing is wrong)."""
    empty = (0, 0, 0.0, 0.0)
    cells = [series.get(i, empty) for i in range(n_buckets)]
    requests = [c[0] for c in cells]
    found: list[tuple[str, int, float, float, float]] = []
    got = count_change(requests)
    if got:
        k, before, after, z = got
        found.append(("requests_per_s", k, before * S / width, after * S / width, z))
    if operation is not None:
        errors = [c[1] for c in cells]
        if sum(errors) >= MIN_ERRORS:
            got = count_change(errors, requests)
            if got:
                found.append(("error_rate", *got))
        got = latency_change([(c[0], c[2], c[3]) for c in cells])
        if got:
            found.append(("latency_ns", *got))
    return [
        ChangePoint(service, operation, metric, t0 + k * width, before, after, round(z, 2))
        for metric, k, before, after, z in found
        if z >= STRENGTH[metric] and _large(metric, before, after)
    ]


def _onset(changes: list[ChangePoint], width: int, window: Window, data_start: int | None) -> Onset | None:
    """At the strongest change point of error rate or latency (of request rate when nothing else
    moved); `because`: the change points within a bucket of it."""
    moved = [c for c in changes if c.metric != "requests_per_s"] or changes
    if not moved:
        return None
    at = max(window.start_ns, max(moved, key=lambda c: (c.strength, -c.at_ns)).at_ns)
    because = tuple(sorted((c for c in changes if abs(c.at_ns - at) <= width), key=lambda c: -c.strength))
    lo = max(window.start_ns, data_start if data_start is not None else window.start_ns)
    length = window.end_ns - at
    baseline = Window(max(lo, at - length), at) if at > lo else None
    return Onset(at, Window(at, window.end_ns), baseline, because)
