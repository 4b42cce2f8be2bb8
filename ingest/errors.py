"""Errors of `ingest/`, and the error contract every package below the faces keeps.

    PackageError                base of the errors of ingest, correlate and escalation
     └── IngestError
          ├── NoInput            nothing usable: missing path, empty input, unknown format   invalid_input
          ├── DatasetNotFound    no dataset of that name                                     not_found
          ├── DatasetLocked      another ingest holds the dataset                            locked
          ├── BadDatasetName     a name that is not a safe folder name                       invalid_input
          ├── DatasetTooNew      written by a later dcr's layout (ingest/migrations.py)       unusable
          └── StoreError         a store that could not be pulled (ingest/stores/)            failed
                                 (a bad store URL or missing --start/--end: invalid_input)

The contract. A package error says three things, none of them in a face's words:

- its `kind` (a `Kind`): what sort of failure it is. The faces (`mcp_server/errors.py`) turn a
  kind into an exit code and a tool error; a package never names an exit code.
- its `reason`: one line that names the file, dataset or argument concerned.
- its `remedy` (a `Remedy`, or None): the next step as an action and its arguments, e.g.
  `Remedy("run_sql", {"dataset": "shop", "sql": "SELECT …"})`, never a command line. `hint` says
  how the remedy reads after the reason (`" (list some with: {})"`; `{}` is where it goes). The
  command line names it as a `dcr …` command, MCP as a tool and its arguments; `str(exc)` shows
  it as `run_sql(dataset='shop', sql='SELECT …')`.

A bad *record* is never an error: it is a reject.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Kind",
    "Remedy",
    "ACTIONS",
    "PackageError",
    "IngestError",
    "NoInput",
    "DatasetNotFound",
    "DatasetLocked",
    "BadDatasetName",
    "unknown_dataset",
]


class Kind(enum.StrEnum):
    """What sort of failure an error is; the faces map each to an exit code (mcp_server/errors.py)."""

    INVALID_INPUT = "invalid_input"  # the request cannot be used as given: a name, path, query, argument
    NOT_FOUND = "not_found"  # what it names does not exist: a dataset, a trace, a conversation
    UNUSABLE = "unusable"  # it exists but cannot be used as it is: a later layout, an expired conversation
    LOCKED = "locked"  # another process writes the dataset, and went on past the wait
    OVER_LIMIT = "over_limit"  # a limit is reached: a conversation's turns
    NOT_CONFIGURED = "not_configured"  # a setting the work needs is missing: the API key
    CANCELLED = "cancelled"  # the caller stopped it: a query interrupted at the SQL prompt
    TIMED_OUT = "timed_out"  # the work ran past its time limit: a query
    PROVIDER_FAILED = "provider_failed"  # the model call failed after its retries (the bundle is saved)
    BUSY = "busy"  # another call holds it right now (a conversation's turn): try again
    FAILED = "failed"  # the work failed otherwise: DuckDB, a damaged dataset, the ledger's database


# The remedies a package may name, with the arguments each takes (all optional). Every face
# names every one of them (tests/test_error_contract.py checks it).
ACTIONS: dict[str, tuple[str, ...]] = {
    "ingest": ("dataset", "paths"),  # read dumps into a dataset
    "list_datasets": (),
    "remove_dataset": ("dataset",),
    "run_sql": ("dataset", "sql"),  # one read-only query over the dataset's views
    "escalate": ("dataset", "provider", "dry_run"),
    "start_conversation": ("dataset",),
    "list_conversations": (),
    "conversation_status": ("session_id",),
    "finalize_conversation": ("session_id",),
}


@dataclass(frozen=True)
class Remedy:
    """The next step: an action of ACTIONS and its arguments. Faces name it; packages never do."""

    action: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown remedy action {self.action!r}: one of {', '.join(ACTIONS)}")
        unknown = set(self.args) - set(ACTIONS[self.action])
        if unknown:
            raise ValueError(
                f"remedy {self.action} takes {', '.join(ACTIONS[self.action]) or 'no arguments'}, "
                f"not {', '.join(sorted(unknown))}"
            )

    def __str__(self) -> str:
        return f"{self.action}({', '.join(f'{k}={v!r}' for k, v in self.args.items())})"


def rebuild_error(cls: type[PackageError], args: tuple[Any, ...], state: dict[str, Any]) -> PackageError:
    """Unpickle a package error without calling its __init__ (whose arguments differ by class)."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class PackageError(Exception):
    """Base of the errors of ingest, correlate and escalation: a kind, a one-line reason, a remedy.

    `str(exc)` is the reason and the remedy in neutral form; a face calls `message(name)` with its
    own way of naming a remedy (a `dcr` command, an MCP tool)."""

    kind: Kind = Kind.INVALID_INPUT

    def __init__(
        self, reason: str, hint: str = "", *, remedy: Remedy | None = None, kind: Kind | None = None
    ) -> None:
        self.reason = reason
        self.hint = hint if remedy is None or "{}" in hint else f"{hint}: {{}}"
        self.remedy = remedy
        if kind is not None:
            self.kind = kind
        super().__init__(self.message(str))

    def message(self, name: Callable[[Remedy], str]) -> str:
        """The one line, with the remedy named by `name`."""
        if self.remedy is None:
            return self.reason + self.hint
        return self.reason + self.hint.replace("{}", name(self.remedy))

    def __reduce__(self) -> Any:
        return rebuild_error, (type(self), self.args, dict(self.__dict__))


class IngestError(PackageError):
    """Base of ingest's errors."""

    kind = Kind.INVALID_INPUT


class NoInput(IngestError):
    kind = Kind.INVALID_INPUT


def unknown_dataset(name: str, known: list[str]) -> dict[str, Any]:
    """reason, hint and remedy of "no dataset named …" (ingest's and correlate's DatasetNotFound)."""
    if known:
        return {"reason": f"no dataset named {name!r} (known datasets: {', '.join(known)})"}
    return {
        "reason": f"no dataset named {name!r}",
        "hint": " (no datasets yet: run {} first)",
        "remedy": Remedy("ingest", {"dataset": name}),
    }


class DatasetNotFound(IngestError):
    kind = Kind.NOT_FOUND

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = list(known)
        super().__init__(**unknown_dataset(name, self.known))


class DatasetLocked(IngestError):
    kind = Kind.LOCKED


class DatasetWriteFailed(IngestError):
    """Writing the dataset failed (a full disk, a folder gone): the whole ingest is dropped, since
    a source recorded as read with part of its rows would be skipped as already ingested."""

    kind = Kind.FAILED


class BadDatasetName(IngestError):
    kind = Kind.INVALID_INPUT
