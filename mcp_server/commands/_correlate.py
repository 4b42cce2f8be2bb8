"""Shared by the commands over `correlate/`: its errors as the CLI's (exit 2 or 1), and number shapes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp_server.errors import UsageError, WorkError

__all__ = ["mapped_errors", "format_ms"]


@contextmanager
def mapped_errors() -> Iterator[None]:
    """DatasetNotFound / DatasetUnusable / SqlError / TraceNotFound -> exit 2; QueryTimeout and the rest -> exit 1."""
    import correlate

    try:
        yield
    except correlate.QueryTimeout as exc:
        raise WorkError(str(exc)) from None
    except (correlate.DatasetNotFound, correlate.DatasetUnusable, correlate.SqlError,
            correlate.TraceNotFound) as exc:
        raise UsageError(str(exc)) from None
    except correlate.CorrelateError as exc:
        raise WorkError(str(exc)) from None


def format_ms(ns: Any) -> str:
    """Nanoseconds as milliseconds with three decimals: 1234567 -> '1.235ms'."""
    return f"{int(ns) / 1e6:.3f}ms"
