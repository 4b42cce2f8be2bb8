"""What to tell a caller about the scope of a question before it reads the answer.

    scope_notes(session, window, baseline=None, services=()) -> list[str]

One line each, when
- a name in `services` is no service of the dataset (with the closest names: `paymentservice`
  where the service is `payment`), so an empty answer is not read as "nothing wrong there";
- the window holds fewer than MIN_REQUESTS requests (the baseline's count is the correlation
  engine's own note), so a weak answer is read as thin data;
- the window or the baseline runs past the data: starts before the first span or ends after
  the last, so rates over the asked length are not mistaken for rates over the data.

A request is a root span (a span without a parent); data whose traces lost their roots counts
traces instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from correlate.times import format_ns
from correlate.types import Window

if TYPE_CHECKING:
    from correlate.session import DatasetSession

__all__ = ["MIN_REQUESTS", "scope_notes", "unknown_services"]

MIN_REQUESTS = 30  # as the engine's thin baseline (correlate/engine.py, THIN_BASELINE_REQUESTS)
_SLACK_NS = 1_000_000_000  # a bound within a second of the data is not "past" it


def unknown_services(known: Sequence[str], asked: Sequence[str]) -> list[str]:
    """A note for each asked name that is not in `known`, with the closest known names."""
    notes = []
    lower = {k.lower(): k for k in known}
    for name in asked:
        if name in known:
            continue
        close = [lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.5)]
        close += [
            k for k in known if k not in close and (k.lower() in name.lower() or name.lower() in k.lower())
        ]
        hint = f"closest: {', '.join(close[:3])}" if close else f"services: {', '.join(list(known)[:12])}"
        notes.append(f"service {name!r} is not in the dataset, so nothing of it was analysed ({hint})")
    return notes


def scope_notes(
    session: DatasetSession, window: Window, baseline: Window | None = None, services: Sequence[str] = ()
) -> list[str]:
    notes: list[str] = []
    if services:
        known = list(session.handle.services) or [
            r[0]
            for r in session.fetch("SELECT DISTINCT service_name FROM spans WHERE service_name IS NOT NULL")
        ]
        notes += unknown_services(known, services)
    first, last = session.handle.time_range
    if first is None or last is None:
        return notes
    for label, w in (("window", window), ("baseline", baseline)):
        if w is None:
            continue
        if w.start_ns < first - _SLACK_NS:
            notes.append(
                f"the {label} starts before the data: {format_ns(w.start_ns)}, the first span "
                f"{format_ns(first)}; its first {(first - w.start_ns) / 1e9:.0f} s hold nothing"
            )
        if w.end_ns > last + _SLACK_NS:
            notes.append(
                f"the {label} runs past the data: it ends {format_ns(w.end_ns)}, the last span starts "
                f"{format_ns(last)}; its last {(w.end_ns - last) / 1e9:.0f} s hold nothing"
            )
    svc = ""
    params: list[object] = [window.start_ns, window.end_ns]
    if services:
        svc = f" AND service_name IN ({', '.join('?' for _ in services)})"
        params += list(services)
    roots, traces = session.fetch(
        f"SELECT count(*) FILTER (WHERE parent_span_id IS NULL), count(DISTINCT trace_id) FROM spans "
        f"WHERE start_ns >= ? AND start_ns < ?{svc}",
        params,
    )[0]
    requests = int(roots or traces or 0)
    if requests < MIN_REQUESTS:
        what = "requests" if roots else "traces"
        notes.append(
            f"thin window: {requests} {what} in it{' for these services' if services else ''}; "
            "figures rest on few calls (widen it: the timeline shows where requests are)"
        )
    return notes
