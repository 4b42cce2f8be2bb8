"""The MCP Inspector CLI (npm @modelcontextprotocol/inspector), installed once into .cache/inspector.

    python -m tests.mcp_inspector install    # what `make test` runs first; a no-op when installed

INSPECTOR_VERSION is the newest release that runs on Node.js 20: every later release declares
`engines.node >= 22.7.5` (`npm view @modelcontextprotocol/inspector@0.16.0 engines`).
Without npm the install prints why and does nothing; the test then skips (and fails under CI=true).
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["INSPECTOR_VERSION", "PREFIX", "npm_available", "inspector_bin", "ensure_installed"]

INSPECTOR_VERSION = "0.15.0"
REPO = Path(__file__).resolve().parent.parent
PREFIX = REPO / ".cache" / "inspector"
_STAMP = PREFIX / f".installed-{INSPECTOR_VERSION}"


def npm_available() -> bool:
    return shutil.which("npm") is not None and shutil.which("node") is not None


def inspector_bin() -> Path:
    return PREFIX / "node_modules" / ".bin" / "mcp-inspector"


def ensure_installed(timeout_s: float = 600.0) -> Path:
    """Install the pinned inspector once (a file lock keeps parallel test workers to one install)."""
    if _STAMP.is_file() and inspector_bin().exists():
        return inspector_bin()
    if not npm_available():
        raise FileNotFoundError("npm (and node) not found: the MCP Inspector test needs Node.js 20+")
    PREFIX.mkdir(parents=True, exist_ok=True)
    with open(PREFIX / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (_STAMP.is_file() and inspector_bin().exists()):
            subprocess.run(
                [
                    "npm",
                    "install",
                    "--prefix",
                    str(PREFIX),
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    f"@modelcontextprotocol/inspector@{INSPECTOR_VERSION}",
                ],
                check=True,
                timeout=timeout_s,
                stdout=sys.stderr,
            )
            _STAMP.touch()
    return inspector_bin()


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] != "install":
        sys.exit("usage: python -m tests.mcp_inspector install")
    if not npm_available():
        print(
            "npm not found: skipping the MCP Inspector install (its test will skip; fail under CI=true)",
            file=sys.stderr,
        )
        sys.exit(0)
    print(f"MCP Inspector {INSPECTOR_VERSION}: {ensure_installed()}", file=sys.stderr)
