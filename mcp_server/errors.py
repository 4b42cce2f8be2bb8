"""Errors of the command line and the MCP facade.

    DcrError
     ├── UsageError   exit 2: bad usage or unusable input (missing path, unknown dataset, bad time)
     └── WorkError    exit 1: the work itself failed (model call failed after retries, …)

Commands translate the errors of the packages they call (ingest, correlate, escalation)
into these, with a message that names the fix.
"""

from __future__ import annotations

__all__ = ["DcrError", "UsageError", "WorkError"]


class DcrError(Exception):
    """Base of the errors the CLI prints as one line."""


class UsageError(DcrError):
    """Bad usage or unusable input: exit 2."""


class WorkError(DcrError):
    """The work failed: exit 1."""
