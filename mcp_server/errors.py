"""The one error contract of the faces: the command line and the MCP tools.

The packages (ingest, correlate, escalation) raise `PackageError`s (`ingest/errors.py`) that say
their kind, a one-line reason and a remedy as data (an action and its arguments). Here, and only
here, a kind becomes an exit code and a remedy becomes words for the caller:

    kind             exit   e.g.
    invalid_input      2    a bad path, dataset name, SQL statement, request
    not_found          2    an unknown dataset, trace or conversation
    unusable           2    a dataset of a later layout; an expired or finalized conversation
    locked             2    a dataset that stayed locked
    over_limit         2    a conversation at its last turn
    not_configured     2    a missing API key
    cancelled          2    a query interrupted at the SQL prompt (as the refused query it was)
    timed_out          1    a query timeout
    provider_failed    1    a model call that failed after its retries (the bundle is saved and named)
    busy               1    a conversation busy with another turn
    failed             1    any other failure of the work

    cli_message(exc)    the line after "dcr: ", the remedy as a `dcr …` command
    tool_message(exc)   the tool error's text, the remedy as an MCP tool and its arguments
    exit_code(exc)      by kind, as above

`cli.main` prints every package error this way; `server.DcrServer` turns every one a tool
raises into a ToolError. The faces' own errors:

    DcrError
     ├── UsageError   exit 2: bad usage or unusable input (a wrong argument, a bad time)
     └── WorkError    exit 1: the work itself failed

Nothing heavy is imported here: a package error can only exist once its module is loaded.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    from ingest.errors import PackageError

__all__ = [
    "DcrError",
    "UsageError",
    "WorkError",
    "EXIT_CODES",
    "CLI_COMMANDS",
    "MCP_TOOLS",
    "is_package_error",
    "exit_code",
    "cli_message",
    "tool_message",
    "cli_remedy",
    "tool_remedy",
]


class DcrError(Exception):
    """Base of the errors the faces raise themselves; the CLI prints them as one line."""


class UsageError(DcrError):
    """Bad usage or unusable input: exit 2."""


class WorkError(DcrError):
    """The work failed: exit 1."""


# The exit-code contract of docs/architecture.md, by kind (ingest.errors.Kind values).
EXIT_CODES: dict[str, int] = {
    "invalid_input": 2,
    "not_found": 2,
    "unusable": 2,
    "locked": 2,
    "over_limit": 2,
    "not_configured": 2,
    "cancelled": 2,
    "timed_out": 1,
    "provider_failed": 1,
    "busy": 1,
    "failed": 1,
}


def is_package_error(exc: BaseException | None) -> TypeGuard[PackageError]:
    """An error of ingest, correlate or escalation (all derive from ingest.errors.PackageError)."""
    base = getattr(sys.modules.get("ingest.errors"), "PackageError", None)
    return base is not None and isinstance(exc, base)


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, UsageError):
        return 2
    if is_package_error(exc):
        return EXIT_CODES.get(str(getattr(exc, "kind", "")), 1)
    return 1


# ---- the remedy as a `dcr` command -------------------------------------------------------------


def _word(value: Any) -> str:
    """One shell word, quoted for pasting; text with spaces in double quotes, as people write SQL."""
    text = str(value)
    if shlex.quote(text) == text:
        return text
    if not any(c in text for c in '"$`\\!'):
        return f'"{text}"'
    return shlex.quote(text)


def _dcr(*words: Any) -> str:
    return " ".join(["dcr", *(_word(w) for w in words if w is not None)])


def _ingest_cli(a: dict[str, Any]) -> str:
    return _dcr("ingest", *(a.get("paths") or ["PATH"]), "--dataset", a.get("dataset") or "NAME")


def _escalate_cli(a: dict[str, Any]) -> str:
    flags = [f"--provider {_word(a['provider'])}"] if a.get("provider") else []
    flags += ["--dry-run"] if a.get("dry_run") else []
    return " ".join([_dcr("escalate", a.get("dataset") or "NAME", "--question", "TEXT"), *flags])


# action (ingest.errors.ACTIONS) -> the command, from the remedy's arguments (None: not given)
CLI_COMMANDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "ingest": _ingest_cli,
    "list_datasets": lambda a: _dcr("datasets"),
    "remove_dataset": lambda a: _dcr("dataset", "rm", a.get("dataset") or "NAME"),
    "run_sql": lambda a: _dcr("sql", a.get("dataset") or "NAME", a.get("sql") or "SQL"),
    "escalate": _escalate_cli,
    "start_conversation": lambda a: _dcr(
        "conversation", "start", a.get("dataset") or "NAME", "--question", "TEXT"
    ),
    "list_conversations": lambda a: _dcr("conversation", "list"),
    "conversation_status": lambda a: _dcr("conversation", "status", a.get("session_id") or "SESSION"),
    "finalize_conversation": lambda a: _dcr("conversation", "finalize", a.get("session_id") or "SESSION"),
}


def cli_remedy(remedy: Any) -> str:
    """'dcr sql shop "SELECT …"', quoted as a whole unless it holds a single quote itself."""
    command = CLI_COMMANDS[remedy.action]({k: v for k, v in remedy.args.items() if v is not None})
    return command if "'" in command else f"'{command}'"


# ---- the remedy as an MCP tool -----------------------------------------------------------------


def _tool(name: str, *takes: str) -> Callable[[dict[str, Any]], str]:
    """`name {"arg": value, …}` with those of the remedy's arguments the tool takes."""

    def render(a: dict[str, Any]) -> str:
        args = {k: a[k] for k in takes if a.get(k) is not None}
        return f"{name} {json.dumps(args, ensure_ascii=False)}" if args else name

    return render


def _remove_dataset_tool(a: dict[str, Any]) -> str:
    # no tool removes a dataset: the agent asks its user (never told a `dcr` command)
    which = f"dataset {a['dataset']!r}" if a.get("dataset") else "the dataset"
    return f"ask the user to remove {which}, no tool removes datasets"


MCP_TOOLS: dict[str, Callable[[dict[str, Any]], str]] = {
    "ingest": lambda a: _tool("ingest_traces", "paths", "dataset")({"paths": ["PATH"], **a}),
    "list_datasets": _tool("list_datasets"),
    "remove_dataset": _remove_dataset_tool,
    "run_sql": _tool("query_spans", "dataset", "sql"),
    # escalate_analysis has no provider or dry-run argument: without a key it is the offline report
    "escalate": _tool("escalate_analysis", "dataset"),
    "start_conversation": _tool("start_conversation", "dataset"),
    "list_conversations": _tool("list_conversations"),
    "conversation_status": _tool("get_conversation_status", "session_id"),
    "finalize_conversation": _tool("finalize_conversation", "session_id"),
}


def tool_remedy(remedy: Any) -> str:
    """'query_spans {"dataset": "shop", "sql": "SELECT …"}': the tool and the arguments to give it."""
    return MCP_TOOLS[remedy.action]({k: v for k, v in remedy.args.items() if v is not None})


# ---- the line ----------------------------------------------------------------------------------


def _line(exc: BaseException, name: Callable[[Any], str]) -> str:
    text = exc.message(name) if is_package_error(exc) else str(exc)
    saved = getattr(exc, "bundle_path", None)
    if saved:
        text += f" (bundle saved: {saved})"
    if "\n" in text or "\r" in text:  # one line, whatever the message held
        text = " ".join(ln.strip() for ln in text.splitlines() if ln.strip())
    return text or type(exc).__name__


def cli_message(exc: BaseException) -> str:
    """The error as the command line prints it after 'dcr: ', the remedy as a `dcr` command."""
    return _line(exc, cli_remedy)


def tool_message(exc: BaseException) -> str:
    """The error as the agent reads it, the remedy as an MCP tool and its arguments."""
    return _line(exc, tool_remedy)
