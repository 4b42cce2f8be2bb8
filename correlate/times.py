"""Times as users and agents write them -> int nanoseconds since the Unix epoch (UTC), and back.

Accepted: ISO-8601 (UTC when no offset; "Z" allowed), or a number of epoch seconds,
milliseconds, microseconds or nanoseconds (told apart by magnitude, fractions allowed
for seconds and milliseconds).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

__all__ = ["parse_time_ns", "format_ns"]


# what int64 nanoseconds since the epoch hold (the datasets' times): 1677-09-21 .. 2262-04-11
_MIN_NS, _MAX_NS = -(2**63), 2**63 - 1


def parse_time_ns(text: str) -> int:
    """Parse a time; raises ValueError with a message that shows the accepted forms, or the
    range a dataset's times can take (int64 nanoseconds: 1677-09-21 .. 2262-04-11)."""
    ns = _parse(text)
    if not _MIN_NS <= ns <= _MAX_NS:
        raise ValueError(
            f"time {text!r} is out of range: times run from {format_ns(_MIN_NS)} to {format_ns(_MAX_NS)}"
        )
    return ns


def _parse(text: str) -> int:
    s = str(text).strip()
    try:
        num = Decimal(s)
    except InvalidOperation:
        num = None
    if num is not None and num.is_finite():
        mag = abs(num)
        if mag < Decimal(10) ** 11:  # seconds (until year 5138)
            return int(num * 1_000_000_000)
        if mag < Decimal(10) ** 14:  # milliseconds
            return int(num * 1_000_000)
        if mag < Decimal(10) ** 17:  # microseconds
            return int(num * 1_000)
        return int(num)
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read time {text!r}: use ISO-8601 (2024-05-01T12:00:00Z) "
            "or epoch seconds, milliseconds or nanoseconds"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def format_ns(ns: int | None) -> str | None:
    """ISO-8601 UTC with microseconds, e.g. 2024-05-01T12:00:00.123456Z."""
    if ns is None:
        return None
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).replace(microsecond=(ns % 1_000_000_000) // 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
