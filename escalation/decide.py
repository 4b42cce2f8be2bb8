"""`should_escalate`: is this problem too big for the agent's own context?

The thresholds are the seed's: more than 50 files, more than 100 MB of traces, more than
3 services, more than an hour of time span, more than 5 attempted approaches. Any one
crossed is a reason; the decision is "escalate" when at least `min_reasons` are crossed.
Every threshold can be changed per call (`EscalationThresholds(...)`) or by environment
(`DCR_ESCALATE_MAX_FILES`, `…_MAX_TRACE_BYTES`, `…_MAX_SERVICES`, `…_MAX_SPAN_S`,
`…_MAX_ATTEMPTS`, `…_MIN_REASONS`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["EscalationSignals", "EscalationThresholds", "EscalationDecision", "should_escalate"]


@dataclass(frozen=True)
class EscalationSignals:
    files_involved: int = 0
    trace_bytes: int = 0
    services_involved: int = 0
    time_span_s: float = 0.0
    attempted_approaches: int = 0
    stuck_description: str = ""

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "escalate": self.escalate,
            "reasons": list(self.reasons),
            "signals": self.signals.to_dict(),
            "thresholds": self.thresholds.to_dict(),
        }


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
    return EscalationDecision(len(reasons) >= max(1, t.min_reasons), reasons, signals, t)
