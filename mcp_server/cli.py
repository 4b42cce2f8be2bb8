"""`dcr`: the command line. Thin: parse, call one function, render.

Each command is a module in `mcp_server/commands/` exposing

    NAME: str                      # the sub-command ("ingest", "sql", …)
    HELP: str                      # one line for `dcr --help`
    def add_arguments(p) -> None   # its argparse arguments
    def run(args) -> int           # does the work, returns the exit code

Modules are discovered, so adding a command touches no other file. Keep heavy imports
(duckdb, pyarrow, google-genai, mcp) inside `run`: `dcr --help` must stay fast.

Exit codes (the contract in docs/architecture.md): 0 success, 1 a failure of the work,
2 bad usage or unusable input. A `UsageError` or `WorkError` raised anywhere, and any error of
the packages (by its kind, `mcp_server/errors.py`), prints one line on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

from mcp_server import commands
from mcp_server.errors import DcrError, cli_message, exit_code, is_package_error

__all__ = ["main", "build_parser", "process_defaults"]


def _command_modules() -> list:
    mods = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"{commands.__name__}.{info.name}"))
    return mods


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(2, f"dcr: {message} (see 'dcr --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dcr", description="Trace and log evidence for hard cross-service bugs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def process_defaults() -> None:
    """The process settings every command runs with, set before anything imports numpy
    (bench/ingest.py sets them too, to measure the ingest `dcr ingest` runs). numpy's OpenBLAS
    starts a thread a core at import, and each spins ~0.07 CPU-s waiting for work that never
    comes (dcr's numpy is element-wise): one thread, none started. A user's own value is kept."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: Sequence[str] | None = None) -> int:
    process_defaults()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("dcr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if not isinstance(exc, DcrError) and not is_package_error(exc):
            raise
        print(f"dcr: {cli_message(exc)}", file=sys.stderr)
        return exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
