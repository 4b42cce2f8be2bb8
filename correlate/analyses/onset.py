"""The onset: when nothing was given to compare against, the moment the requests changed.

With no baseline there is no "before", so every other analysis can only describe. This one
splits the window into BUCKETS equal slices of time and finds the single split point where the
requests before and after differ most (error rate, log duration, spans per request; Welch's z
on the requests of either side). A split with z >= MIN_SHIFT (high: it is the best of many
tried) becomes a finding whose details carry `onset_ns`: rerunning with `--start` there
compares the time after the change with the time before it.
"""

from __future__ import annotations

import math

from correlate.analyses.common import AnalysisContext, AnalysisResult, fmt_ms, fmt_pct, iso, rows
from correlate.types import Evidence, Finding

__all__ = ["NAME", "find_onset", "best_split", "BUCKETS", "MIN_SHIFT"]

NAME = "onset"
BUCKETS = 60
MIN_EDGE = 5  # buckets on each side, at least
MIN_SHIFT = 5.0
METRICS = ("error_rate", "log_duration", "spans_per_request")


def best_split(series: list[dict]) -> tuple[int, str, float] | None:
    """(index of the first bucket after the change, metric, z), or None.

    Each bucket holds its request count `n` and, per metric, the sum `<m>` and the sum of squares
    `<m>_sq` over its requests; a split compares the requests on either side with Welch's z."""
    best: tuple[int, str, float] | None = None
    total = {k: sum(b[k] for b in series) for k in series[0] if k != "bucket"}
    left = {k: 0.0 for k in total}
    for k in range(1, len(series)):
        for key in left:
            left[key] += series[k - 1][key]
        if k < MIN_EDGE or len(series) - k < MIN_EDGE:
            continue
        right = {key: total[key] - left[key] for key in total}
        for m in METRICS:
            z = _welch(left, right, m)
            if best is None or z > best[2]:
                best = (k, m, z)
    return best


def _welch(a: dict, b: dict, m: str) -> float:
    na, nb = a["n"], b["n"]
    if na < 2 or nb < 2:
        return 0.0
    ma, mb = a[m] / na, b[m] / nb
    va = max(a[m + "_sq"] / na - ma * ma, 0.0)
    vb = max(b[m + "_sq"] / nb - mb * mb, 0.0)
    se = math.sqrt(va / na + vb / nb)
    floor = 0.02 * max(abs(ma), 1e-9)  # a shift smaller than 2% is no change however tight
    return abs(mb - ma) / max(se, floor / math.sqrt(min(na, nb)))


def _mean(buckets: list[dict], m: str) -> float:
    n = sum(b["n"] for b in buckets)
    return sum(b[m] for b in buckets) / n if n else 0.0


def find_onset(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    if ctx.has_baseline:
        return out
    w0, w1 = ctx.window.start_ns, ctx.window.end_ns
    width = max((w1 - w0) // BUCKETS, 1)
    series = rows(
        ctx.con,
        f"""SELECT bucket, count(*) AS n, sum(e) AS error_rate, sum(e * e) AS error_rate_sq,
                   sum(d) AS log_duration, sum(d * d) AS log_duration_sq,
                   sum(n_spans) AS spans_per_request, sum(n_spans * n_spans) AS spans_per_request_sq
            FROM (SELECT least((start_ns - {w0}) // {width}, {BUCKETS - 1}) AS bucket,
                         coalesce(root_err, false)::INT AS e, ln(greatest(dur_ns, 1)) AS d, n_spans
                  FROM {ctx.t} WHERE after)
            GROUP BY bucket ORDER BY bucket""",
    )
    if len(series) < 2 * MIN_EDGE:
        return out
    found = best_split(series)
    if found is None or found[2] < MIN_SHIFT:
        return out
    k, metric, shift = found
    onset_ns = w0 + series[k]["bucket"] * width
    left, right = series[:k], series[k:]
    before = {
        "requests": sum(b["n"] for b in left),
        "error_rate": round(_mean(left, "error_rate"), 6),
        "geometric_mean_duration_ns": round(math.exp(_mean(left, "log_duration"))),
    }
    after = {
        "requests": sum(b["n"] for b in right),
        "error_rate": round(_mean(right, "error_rate"), 6),
        "geometric_mean_duration_ns": round(math.exp(_mean(right, "log_duration"))),
    }
    out.findings.append(
        Finding(
            kind=NAME,
            summary=(
                f"the requests change at {iso(onset_ns)} (most in {metric.replace('_', ' ')}, z = {shift:.1f}): "
                f"error rate {fmt_pct(before['error_rate'])} -> {fmt_pct(after['error_rate'])}, typical duration "
                f"{fmt_ms(before['geometric_mean_duration_ns'])} -> {fmt_ms(after['geometric_mean_duration_ns'])}; "
                f"rerun with --start {iso(onset_ns)} to compare after with before"
            ),
            evidence=Evidence(
                before=before,
                after=after,
                details={"onset_ns": onset_ns, "metric": metric, "shift": round(shift, 2)},
            ),
        )
    )
    return out
