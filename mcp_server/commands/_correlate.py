"""Shared by the commands over `correlate/`: number shapes. (Their errors are mapped once, by
`dcr` itself: `mcp_server/errors.py`.)"""

from __future__ import annotations

from typing import Any

__all__ = ["format_ms"]


def format_ms(ns: Any) -> str:
    """Nanoseconds as milliseconds with three decimals: 1234567 -> '1.235ms'."""
    return f"{int(ns) / 1e6:.3f}ms"
