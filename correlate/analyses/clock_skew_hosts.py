"""Clock skew between hosts: server spans outside their client parents, consistently by host.

A SERVER span on one host called by a CLIENT span on another should sit inside it, with its
midpoint near the client's (network time is spent on both sides). The offset of a call is the
server's midpoint minus the client's; seen from the server's host it is +offset, from the
client's host -offset. A host whose median offset against most of its peer hosts exceeds
SKEW_NS the same way, with calls outside their parents, has the clock that disagrees.

The candidates are the services on that host whose server spans fall outside their callers,
weighed by how much worse their
requests fare there than on their other hosts: a skewed clock only matters where something
depends on it (a lease, a timeout, an ordering), and that is where the failures are.
"""

from __future__ import annotations

from correlate.analyses.common import (
    AnalysisContext,
    AnalysisResult,
    clamp01,
    confidence,
    evidence_sql,
    exemplars,
    fmt_ms,
    lit,
    period_figures,
    rate_score,
    rows,
)
from correlate.types import Candidate, Evidence, Finding

__all__ = ["NAME", "find_skewed_hosts", "SKEW_NS", "CALL"]

NAME = "clock_skew_hosts"
SKEW_NS = 5_000_000  # 5 ms: more than a network hop's asymmetry
CONSENSUS = 2 / 3  # share of a host's peers that must agree it is off
CALL = "kind = 'SERVER' AND p_kind = 'CLIENT' AND host IS NOT NULL AND p_host IS NOT NULL AND host <> p_host"
OFFSET = "((start_ns + end_ns) // 2 - (p_start_ns + p_end_ns) // 2)"
OUTSIDE = "(start_ns < p_start_ns OR end_ns > p_end_ns)"


def _per_host(spans: str) -> str:
    """Every cross-host call twice: seen from the server's host (+offset) and the client's (-offset)."""
    return f"""SELECT after, host, p_host AS peer, {OFFSET} AS offset_ns, {OUTSIDE} AS outside FROM {spans} WHERE {CALL}
UNION ALL
SELECT after, p_host AS host, host AS peer, -{OFFSET} AS offset_ns, {OUTSIDE} AS outside FROM {spans} WHERE {CALL}"""


def _skewed(pairs: list[dict]) -> tuple[float, list[str]] | None:
    """(median offset, agreeing peers) when most of a host's peers (CONSENSUS) see it off by more
    than SKEW_NS the same way: with two hosts one cannot tell which clock is wrong; with more, the
    one that disagrees with all its peers is."""
    off = [p for p in pairs if p["off_a"] is not None]
    if not off:
        return None
    plus = [p for p in off if p["off_a"] >= SKEW_NS]
    minus = [p for p in off if p["off_a"] <= -SKEW_NS]
    agree = plus if len(plus) >= len(minus) else minus
    if not agree or len(agree) < CONSENSUS * len(off):
        return None
    vals = sorted(p["off_a"] for p in agree)
    return vals[len(vals) // 2], sorted(p["peer"] for p in agree)


def find_skewed_hosts(ctx: AnalysisContext) -> AnalysisResult:
    out = AnalysisResult()
    pairs = rows(
        ctx.con,
        f"""WITH h AS ({_per_host(ctx.s)})
        SELECT host, peer, count(*) FILTER (WHERE NOT after) AS n_b, count(*) FILTER (WHERE after) AS n_a,
               count(*) FILTER (WHERE NOT after AND outside) AS out_b, count(*) FILTER (WHERE after AND outside) AS out_a,
               median(offset_ns) FILTER (WHERE after) AS off_a
        FROM h GROUP BY host, peer ORDER BY host, peer""",
    )
    by_host: dict[str, list[dict]] = {}
    for p in pairs:
        by_host.setdefault(p["host"], []).append(p)
    for host, ps in by_host.items():
        found = _skewed(ps)
        if found is None:
            continue
        offset, peers = found
        agree = [p for p in ps if p["peer"] in peers]
        h = {
            "host": host,
            "off_a": offset,
            "peers": peers,
            **{k: sum(p[k] for p in agree) for k in ("n_b", "n_a", "out_b", "out_a")},
        }
        if h["out_a"] == 0:
            continue
        if ctx.has_baseline and h["n_b"] and h["out_b"]:
            s = rate_score(h["out_b"], h["n_b"], h["out_a"], h["n_a"])
        else:
            s = (h["out_a"] / h["n_a"]) * confidence(h["out_a"], 3) * (1.0 if ctx.has_baseline else 0.6)
        if s <= 0.02:
            continue
        out.findings.append(
            Finding(
                kind=NAME,
                summary=(
                    f"host {host}'s clock is off by about {fmt_ms(offset)} against {', '.join(peers)}: "
                    f"{h['out_a']} of {h['n_a']} calls between them fall outside their parent"
                    + (f" (before: {h['out_b']} of {h['n_b']})" if ctx.has_baseline else "")
                ),
                evidence=Evidence(
                    before={"outside": h["out_b"], "calls": h["n_b"]} if ctx.has_baseline else {},
                    after={"median_offset_ns": offset, "outside": h["out_a"], "calls": h["n_a"]},
                    details={"host": host, "peers": peers},
                ),
            )
        )
        if ctx.has_status:  # with no statuses nothing shows what the skew broke: a finding only
            out.candidates.extend(_candidates(ctx, h, clamp01(s)))
    return out


def _candidates(ctx: AnalysisContext, h: dict, skew: float) -> list[Candidate]:
    host = h["host"]
    lifts = rows(
        ctx.con,
        f"""SELECT s.service,
                   avg(t.root_err::INT) FILTER (WHERE s.host = ?) AS fail_here,
                   avg(t.root_err::INT) FILTER (WHERE s.host IS DISTINCT FROM ?) AS fail_elsewhere,
                   count(*) FILTER (WHERE s.host = ?) AS spans_here
            FROM {ctx.s} s JOIN {ctx.t} t USING (trace_id)
            WHERE s.after AND s.service IN (SELECT service FROM {ctx.s} WHERE after AND host = ? AND {CALL} AND {OUTSIDE})
            GROUP BY s.service ORDER BY s.service""",
        [host, host, host, host],
    )
    out = []
    for r in lifts:
        lift = clamp01((r["fail_here"] or 0.0) - (r["fail_elsewhere"] or 0.0))
        score = skew * (0.25 + 0.75 * lift)
        q = f"""SELECT CASE WHEN after THEN 'after' ELSE 'before' END AS period, count(*) AS calls_across_hosts,
       count(*) FILTER (WHERE {OUTSIDE}) AS outside_parent, median({OFFSET}) AS median_offset_ns
FROM s WHERE {CALL} AND service = {lit(r["service"])} AND host = {lit(host)}
GROUP BY after ORDER BY after"""
        before, after = period_figures(ctx, q)
        tids, sids = exemplars(
            ctx, f"after AND {CALL} AND {OUTSIDE} AND service = {lit(r['service'])} AND host = {lit(host)}"
        )
        summary = (
            f"{r['service']} runs on host {host}, whose clock is off by about {fmt_ms(h['off_a'])}; its requests "
            f"fail {100 * (r['fail_here'] or 0):.0f}% of the time there against "
            f"{100 * (r['fail_elsewhere'] or 0):.0f}% on its other hosts"
        )
        ev = Evidence(
            before=before,
            after=after,
            trace_ids=tids,
            span_ids=sids,
            sql=evidence_sql(ctx, q),
            details={"host": host, "host_median_offset_ns": h["off_a"], "failure_lift": round(lift, 4)},
        )
        out.append(Candidate(r["service"], None, "clock_skew", round(clamp01(score), 4), summary, ev, NAME))
    return out
