"""Errors of `correlate/`, with the kinds and remedies of the contract in `ingest/errors.py`.

    CorrelateError            base; one line that names the fix                            failed
     ├── DatasetNotFound      no dataset of that name (lists the known ones)               not_found
     ├── DatasetUnusable      a dataset this code cannot open (a later layout, a lock)     unusable
     ├── SqlError             a query that DuckDB or the guard refused ("... at position N") invalid_input
     │    ├── QueryTimeout    a query that ran past its time limit                         timed_out
     │    └── QueryCancelled  a query stopped by `DatasetSession.interrupt()` (Ctrl-C at the prompt)
     │                                                                                     cancelled
     └── TraceNotFound        no span of that trace id in the dataset                      not_found

DuckDB's exceptions are mapped where they enter (`map_duckdb_error`); nothing outside this
package sees a `duckdb.Error`.
"""

from __future__ import annotations

import json
import re

from ingest.errors import Kind, PackageError, Remedy, unknown_dataset

__all__ = [
    "Kind",
    "Remedy",
    "PackageError",
    "CorrelateError",
    "DatasetNotFound",
    "DatasetUnusable",
    "SqlError",
    "QueryTimeout",
    "QueryCancelled",
    "TraceNotFound",
    "map_duckdb_error",
]


class CorrelateError(PackageError):
    """Base of correlate's errors; the message is one line. Raised as itself: the work failed."""

    kind = Kind.FAILED


class DatasetUnusable(CorrelateError):
    """A dataset that cannot be opened as it is: the message says what to do."""

    kind = Kind.UNUSABLE


class DatasetNotFound(CorrelateError):
    kind = Kind.NOT_FOUND

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = list(known)
        super().__init__(**unknown_dataset(name, self.known))


class SqlError(CorrelateError):
    """A refused or failed query. `position` is the 0-based character offset when known."""

    kind = Kind.INVALID_INPUT

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        super().__init__(message)


class QueryTimeout(SqlError):
    kind = Kind.TIMED_OUT

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(
            f"query interrupted after {timeout_s:g} s: add a WHERE on service_name/start_ns, "
            "or raise the time limit"
        )


class QueryCancelled(SqlError):
    kind = Kind.CANCELLED

    def __init__(self) -> None:
        super().__init__("query cancelled")


class TraceNotFound(CorrelateError):
    kind = Kind.NOT_FOUND

    def __init__(self, trace_id: str, dataset: str) -> None:
        self.trace_id = trace_id
        self.dataset = dataset
        super().__init__(
            f"no spans of trace {trace_id!r} in dataset {dataset!r}",
            " (list some with: {})",
            remedy=Remedy("run_sql", {"dataset": dataset, "sql": "SELECT trace_id FROM traces LIMIT 10"}),
        )


_LINE_NO = re.compile(r"\s*LINE \d+:.*", re.DOTALL)


def _first_line(text: str) -> str:
    text = _LINE_NO.sub("", str(text))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines) if lines else "query failed"


def _split_json(text: str) -> tuple[str, dict]:
    """DuckDB with errors_as_json: 'Binder Error: {"exception_message": ..., "position": "7"}'."""
    head, sep, body = text.partition(": ")
    if sep and body.startswith("{"):
        try:
            data = json.loads(body)
        except ValueError:
            return text, {}
        if isinstance(data, dict):
            return f"{head}: {data.get('exception_message', '')}", data
    return text, {}


def map_duckdb_error(exc: BaseException, query: str = "") -> CorrelateError:
    """One-line SqlError from a duckdb exception, with the error position when DuckDB gives one."""
    if isinstance(exc, CorrelateError):
        return exc
    text, data = _split_json(str(exc))
    message = _first_line(text)
    if message.startswith("Permission Error"):
        message += "; queries read only the views spans, logs, traces and service_edges"
    position = _position(data.get("position"))
    if position is not None:
        message = f"{message} (at position {position}{_near(query, position)})"
    return SqlError(message, position)


def _position(value: object) -> int | None:
    try:
        # any JSON value: int() refuses the ones that are no position (TypeError, ValueError)
        return int(value) if value is not None else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _near(query: str, position: int) -> str:
    if not query or position >= len(query):
        return ""
    snippet = " ".join(query[position : position + 20].split())
    return f", near {snippet!r}" if snippet else ""
