"""`should_escalate`: is this problem too big for the agent's own context?

The thresholds are the seed's: more than 50 files, more than 100 MB of traces, more than
3 services, more than an hour of time span, more than 5 attempted approaches. Any one
crossed is a reason; the decision is "escalate" when at least `min_reasons` are crossed.
Every threshold can be changed per call (`EscalationThresholds(...)`) or by environment
(`DCR_ESCALATE_MAX_FILES`, `…_MAX_TRACE_BYTES`, `…_MAX_SERVICES`, `…_MAX_SPAN_S`,
`…_MAX_ATTEMPTS`, `…_MIN_REASONS`).

The size of a problem is weighed against how clear its evidence already is, when the signals
carry correlate's candidates (`candidates`, `high_confidence`, `top_candidate`):

    clear     exactly one candidate of high confidence: the size thresholds (files, trace bytes,
              services, time span) are outweighed, since the cause is named and the work left is
              to confirm it, which needs no larger context; only attempts past their threshold
              (the agent tried and is still stuck) still count
    unclear   candidates, none or several of high confidence: the thresholds decide
    none      no candidate: the thresholds decide
    unknown   the candidates were not asked (no dataset): the thresholds decide
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from correlate.types import Candidate, Window

__all__ = [
    "EscalationSignals",
    "EscalationThresholds",
    "EscalationDecision",
    "evidence_clarity",
    "should_escalate",
    "with_candidates",
    "weigh_evidence",
]


@dataclass(frozen=True)
class EscalationSignals:
    files_involved: int = 0
    trace_bytes: int = 0
    services_involved: int = 0
    time_span_s: float = 0.0
    attempted_approaches: int = 0
    stuck_description: str = ""
    # correlate's answer for the window, when asked (None: not asked)
    candidates: int | None = None
    high_confidence: int = 0  # candidates whose confidence is "high"
    top_candidate: str = ""  # the best one, e.g. "pricing SELECT tax_rates (dependency_failure, high)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EscalationThresholds:
    max_files: int = 50
    max_trace_bytes: int = 100 * 1024 * 1024
    max_services: int = 3
    max_span_s: float = 3600.0
    max_attempts: int = 5
    min_reasons: int = 1

    @classmethod
    def from_env(cls) -> EscalationThresholds:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(f"DCR_ESCALATE_{f.name.upper()}")
            if raw:
                try:
                    values[f.name] = float(raw) if f.type in ("float", float) else int(float(raw))
                except ValueError:
                    raise ValueError(f"DCR_ESCALATE_{f.name.upper()}={raw!r} is not a number") from None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EscalationDecision:
    escalate: bool
    reasons: tuple[str, ...]  # one per crossed threshold, with the figures
    signals: EscalationSignals
    thresholds: EscalationThresholds
    evidence: str = "unknown"  # clear, unclear, none or unknown (see the module's docstring)
    against: tuple[str, ...] = ()  # what weighed against escalating, with the figures

    def to_dict(self) -> dict[str, Any]:
        return {
            "escalate": self.escalate,
            "reasons": list(self.reasons),
            "evidence": self.evidence,
            "against": list(self.against),
            "signals": self.signals.to_dict(),
            "thresholds": self.thresholds.to_dict(),
        }


def evidence_clarity(signals: EscalationSignals) -> str:
    """clear, unclear, none or unknown: how far correlate's candidates already name the cause."""
    if signals.candidates is None:
        return "unknown"
    if signals.candidates == 0:
        return "none"
    return "clear" if signals.high_confidence == 1 else "unclear"


def should_escalate(
    signals: EscalationSignals, thresholds: EscalationThresholds | None = None
) -> EscalationDecision:
    t = thresholds or EscalationThresholds.from_env()
    checks = (
        (
            signals.files_involved > t.max_files,
            f"{signals.files_involved} files involved (more than {t.max_files})",
        ),
        (
            signals.trace_bytes > t.max_trace_bytes,
            f"{signals.trace_bytes / 2**20:.1f} MB of traces (more than {t.max_trace_bytes / 2**20:.0f} MB)",
        ),
        (
            signals.services_involved > t.max_services,
            f"{signals.services_involved} services involved (more than {t.max_services})",
        ),
        (
            signals.time_span_s > t.max_span_s,
            f"time span {signals.time_span_s / 3600:.2f} h (more than {t.max_span_s / 3600:.2f} h)",
        ),
        (
            signals.attempted_approaches > t.max_attempts,
            f"{signals.attempted_approaches} approaches attempted (more than {t.max_attempts})",
        ),
    )
    reasons = tuple(text for crossed, text in checks if crossed)
    clarity = evidence_clarity(signals)
    counted = len(reasons)
    against: tuple[str, ...] = ()
    if clarity == "clear":
        size = sum(1 for crossed, _ in checks[:4] if crossed)
        counted -= size
        against = (
            f"the evidence already names one cause: {signals.top_candidate or 'one candidate'} is the only "
            "candidate of high confidence; confirm it on its traces and code before escalating"
            + (f" (this outweighs {size} size threshold{'s' if size != 1 else ''})" if size else ""),
        )
    return EscalationDecision(counted >= max(1, t.min_reasons), reasons, signals, t, clarity, against)


def with_candidates(signals: EscalationSignals, candidates: Sequence[Candidate]) -> EscalationSignals:
    """`signals` with correlate's candidates counted: how many, how many of high confidence, the
    best (the high one when there is exactly one)."""
    high = [c for c in candidates if c.confidence == "high"]
    top = high[0] if len(high) == 1 else (candidates[0] if candidates else None)
    named = ""
    if top is not None:
        where = " ".join(p for p in (top.service, top.operation) if p)
        named = f"{where} ({top.mechanism}, {top.confidence or 'unrated'})"
    return replace(signals, candidates=len(candidates), high_confidence=len(high), top_candidate=named)


def weigh_evidence(
    decision: EscalationDecision, dataset: str, window: Window | None = None, services: Sequence[str] = ()
) -> EscalationDecision:
    """The decision again with the evidence weighed: correlate over `window` (default: the whole
    dataset, against the time before it) for `services`, and its candidates counted. Without
    `services`, the services involved are those the candidates name (the incident's), not every
    service of the dataset, so a large system with a local fault is not "more than 3 services"."""
    from correlate import open_dataset

    with open_dataset(dataset) as ds:
        report = ds.correlate(window, None, tuple(services))
    signals = with_candidates(decision.signals, report.candidates)
    if not services and report.candidates:
        signals = replace(signals, services_involved=len({c.service for c in report.candidates}))
    return should_escalate(signals, decision.thresholds)
