"""Rendering helpers shared by the commands: JSON and tables on stdout, everything else on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["emit_json", "info", "warn", "cell_text", "print_table"]

CELL_CHARS = 60  # a table cell longer than this is cut with "…"


def _default(obj: Any) -> Any:
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)


def json_text(obj: Any, **kw: Any) -> str:
    """json.dumps(obj, ensure_ascii=False, **kw), with NaN and +-Infinity written as null: JSON
    has no such numbers (strict parsers, jq and JavaScript refuse them), and the MCP answers'
    structured copy writes null for them too."""
    text = json.dumps(obj, ensure_ascii=False, **kw)
    if "NaN" in text or "Infinity" in text:  # maybe inside a string only: parsing tells
        fixed = json.loads(text, parse_constant=lambda _: None)
        text = json.dumps(fixed, ensure_ascii=False, **{k: v for k, v in kw.items() if k != "default"})
    return text


def emit_json(obj: Any) -> None:
    """One JSON document on stdout, nothing else."""
    sys.stdout.write(json_text(obj, default=_default, indent=2))
    sys.stdout.write("\n")
    sys.stdout.flush()


def info(message: str) -> None:
    print(message, file=sys.stderr)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def cell_text(value: Any) -> str:
    """A query result's value as a table or CSV cell: NULL, JSON for lists and maps, else str."""
    if value is None:
        return "NULL"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def print_table(columns: tuple[str, ...], rows: tuple[tuple[Any, ...], ...]) -> None:
    """Rows as aligned columns under a header (`dcr sql` and its prompt)."""
    cells = [[cell_text(v).replace("\n", " ") for v in row] for row in rows]
    cells = [[c if len(c) <= CELL_CHARS else c[: CELL_CHARS - 1] + "…" for c in row] for row in cells]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    print("  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
