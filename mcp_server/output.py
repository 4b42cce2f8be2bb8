"""Rendering helpers shared by the commands: JSON on stdout, everything else on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["emit_json", "info", "warn"]


def _default(obj: Any) -> Any:
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)


def emit_json(obj: Any) -> None:
    """One JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=_default, indent=2))
    sys.stdout.write("\n")
    sys.stdout.flush()


def info(message: str) -> None:
    print(message, file=sys.stderr)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
