"""Which replica carries a candidate's change: one pod of several, or all of them.

A fault on one pod dilutes a per-service figure; naming the pod tells the reader where to look
(and that the code, shared by the siblings, is probably not it). For each of the top candidates
of a service that runs on several hosts (`host`: host.id, host.name or the k8s pod), the
candidate's own figure is split by host, in the window:

    network_delay      the gap of calls into the service, by the server span's host
    anything else      the self time of the service's own work (no remote child), by host

One host whose median is at least ALONE times every sibling's, while the siblings' medians kept
within SIBLINGS_KEPT of their baseline, is named: the candidate's summary says so and
`evidence.details["replica"]` holds the host and the figures. Never fails the report: a
candidate it cannot split is left as it was.
"""

from __future__ import annotations

from dataclasses import replace

from correlate.analyses.common import AnalysisContext, fmt_ms, rows
from correlate.types import Candidate

__all__ = ["name_replicas", "ALONE", "SIBLINGS_KEPT", "TOP"]

TOP = 5  # candidates looked at
ALONE = 2.0
SIBLINGS_KEPT = 1.5
MIN_CALLS = 3  # per host, in the window
GAP = "(p_end_ns - p_start_ns) - dur_ns"


def name_replicas(ctx: AnalysisContext, candidates: list[Candidate]) -> list[Candidate]:
    """The candidates, the top TOP of them with the replica named where one carries the change."""
    multi = {
        r[0]
        for r in ctx.con.execute(
            f"SELECT service FROM {ctx.s} WHERE after AND host IS NOT NULL GROUP BY 1 HAVING count(DISTINCT host) > 1"
        ).fetchall()
    }
    out = []
    for i, c in enumerate(candidates):
        if i < TOP and c.service in multi and c.mechanism != "error_propagation":
            c = _named(ctx, c)
        out.append(c)
    return out


def _per_host(ctx: AnalysisContext, c: Candidate) -> list[dict]:
    if c.mechanism == "network_delay":
        value, where = GAP, "p_service IS NOT NULL AND p_service <> service AND p_kind = 'CLIENT'"
    else:
        value = "self_ns"
        where = "remote_ns IS NULL" + (" AND op = ?" if c.operation else "")
    params = [c.service] + ([c.operation] if c.operation and c.mechanism != "network_delay" else [])
    return rows(
        ctx.con,
        f"""
        SELECT host, count(*) FILTER (WHERE after) AS n_a,
               median({value}) FILTER (WHERE after) AS p50_a, median({value}) FILTER (WHERE NOT after) AS p50_b
        FROM {ctx.s} WHERE service = ? AND host IS NOT NULL AND {where}
        GROUP BY host ORDER BY host""",
        params,
    )


def _named(ctx: AnalysisContext, c: Candidate) -> Candidate:
    hosts = [h for h in _per_host(ctx, c) if h["n_a"] >= MIN_CALLS and h["p50_a"] is not None]
    if len(hosts) < 2:
        return c
    top = max(hosts, key=lambda h: h["p50_a"])
    siblings = [h for h in hosts if h is not top]
    if any(top["p50_a"] < ALONE * max(h["p50_a"], 1.0) for h in siblings):
        return c
    if any(h["p50_b"] is not None and h["p50_a"] > SIBLINGS_KEPT * max(h["p50_b"], 1.0) for h in siblings):
        return c  # the siblings changed too: not one replica's problem
    what = "gap of calls into it" if c.mechanism == "network_delay" else "own time"
    sib = max(siblings, key=lambda h: h["p50_a"])
    summary = (
        f"{c.summary}; on host {top['host']} only: its median {what} is {fmt_ms(top['p50_a'])} there "
        f"against at most {fmt_ms(sib['p50_a'])} on its {len(siblings)} other host"
        f"{'s' if len(siblings) > 1 else ''}"
    )
    details = {
        **c.evidence.details,
        "replica": {
            "host": top["host"],
            "median_ns": top["p50_a"],
            "siblings": {h["host"]: h["p50_a"] for h in siblings},
        },
    }
    return replace(c, summary=summary, evidence=replace(c.evidence, details=details))
