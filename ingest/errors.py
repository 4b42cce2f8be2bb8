"""Errors of `ingest/`.

    IngestError
     ├── NoInput            nothing usable: missing path, empty input, unknown format (exit 2)
     ├── DatasetNotFound    no dataset of that name (exit 2)
     ├── DatasetLocked      another ingest holds the dataset (exit 2)
     ├── BadDatasetName     a name that is not a safe folder name (exit 2)
     └── DatasetTooNew      written by a later dcr's layout (exit 2; ingest/migrations.py)

Messages are one line and name the fix. A bad *record* is never an error: it is a reject.
"""

from __future__ import annotations

__all__ = ["IngestError", "NoInput", "DatasetNotFound", "DatasetLocked", "BadDatasetName"]


class IngestError(Exception):
    """Base of ingest's errors."""


class NoInput(IngestError):
    pass


class DatasetNotFound(IngestError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        hint = f"known datasets: {', '.join(known)}" if known else "no datasets yet: run 'dcr ingest PATH' first"
        super().__init__(f"no dataset named {name!r} ({hint})")


class DatasetLocked(IngestError):
    pass


class BadDatasetName(IngestError):
    pass
