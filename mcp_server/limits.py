"""Keep every tool answer under MAX_MCP_OUTPUT_TOKENS: page it, and spill it in full to a file.

Agents pay for every token a tool returns, and clients cut answers above their own limit
(Claude Code's default is 25,000 tokens). An answer is sent twice, as structured content and as
the same JSON in a text block for older clients, so both copies together must fit: each copy
gets half the limit. A result whose JSON would exceed that is answered like this:

    {... the fields that always fit ...,
     "rows": [first k rows],                 # the paged list, cut to fit
     "page": {"total_count": 1200, "returned_count": 180,
              "next_cursor": "q-3f2a…:180:9c1e04d2",  # pass back as `cursor` for the next page
              "spill_path": "$DCR_HOME/mcp-output/q-3f2a….json",  # the whole result
              "note": "…one line that says what happened…"}}

The full result is written once; a later call with the cursor reads its page from that file,
so pages are a consistent snapshot and nothing is computed twice. A cursor is bound to the
arguments of the call that made it (`bind`, a hash of them): passed with other arguments (another
SQL text, another trace) it is refused, never answered with the old query's page.

Lists beside the paged one (`also`: correlate's candidates) are cut too when the rest does not
fit even with an empty page, to their first items, and the note says so; then long strings are
halved with a marker. Whatever is cut, the spill file has it whole.

Token estimate: ceil(characters / CHARS_PER_TOKEN) of the compact JSON. English prose runs
about 4 characters a token; JSON full of hex ids and digits runs denser, so 3 errs on the
side of counting more tokens than a real tokenizer would.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_server.output import json_text

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "CHARS_PER_TOKEN",
    "BadCursor",
    "Shaped",
    "max_output_tokens",
    "estimate_tokens",
    "dumps",
    "shape",
    "resume",
    "spill_dir",
]

DEFAULT_MAX_OUTPUT_TOKENS = 25_000
CHARS_PER_TOKEN = 3
# Room kept for the JSON-RPC envelope and the content wrappers (the page is counted in each copy).
_RESERVE_TOKENS = 300
# The answer's JSON is sent twice: structured content and the same text for older clients.
COPIES = 2
_KEEP_SPILLS = 200
_CURSOR = re.compile(r"([a-z_]+-[0-9a-f]{16}):(\d+)(?::([0-9a-f]{8}))?")
_TRIMMED = "…[cut to fit MAX_MCP_OUTPUT_TOKENS; the full text is in page.spill_path]"
_TRIMMED_SHORT = "…[cut]"


class BadCursor(ValueError):
    """A cursor that does not name a stored result."""


@dataclass(frozen=True)
class Shaped:
    payload: dict[str, Any]
    truncated: bool


def max_output_tokens() -> int:
    """MAX_MCP_OUTPUT_TOKENS, default 25,000; ValueError names the variable when it is unusable."""
    raw = os.environ.get("MAX_MCP_OUTPUT_TOKENS", "").strip()
    if not raw:
        return DEFAULT_MAX_OUTPUT_TOKENS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"MAX_MCP_OUTPUT_TOKENS={raw!r} is not a whole number (default 25000)") from None
    if value < 1_500:
        raise ValueError(f"MAX_MCP_OUTPUT_TOKENS={value} is too small: use at least 1500 (default 25000)")
    return value


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def copy_budget() -> int:
    """Tokens one copy of an answer may take: both copies and the envelope fit MAX_MCP_OUTPUT_TOKENS."""
    return (max_output_tokens() - _RESERVE_TOKENS) // COPIES


def bind_key(args: dict[str, Any]) -> str:
    """8 hex characters naming a call's arguments (without its cursor): what a cursor is bound to."""
    text = dumps({k: args[k] for k in sorted(args) if k != "cursor"})
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def dumps(obj: Any) -> str:
    """Compact JSON, the form both the text content and the estimate use (NaN and Infinity as null)."""
    return json_text(obj, separators=(",", ":"), default=str)


def spill_dir() -> Path:
    from ingest.dataset import dcr_home

    return dcr_home() / "mcp-output"


def shape(
    payload: dict[str, Any],
    list_key: str,
    tool: str,
    *,
    pageable: bool = True,
    bind: str | None = None,
    also: tuple[str, ...] = (),
) -> Shaped:
    """Cut `payload[list_key]` (the whole list) to fit; spill the whole when cut.

    `pageable=False` for tools without a cursor argument: the answer then offers no next_cursor,
    only the spill file. `bind` (bind_key of the call's arguments) goes into the cursor;
    `also`: other lists cut to their first items when the rest does not fit otherwise.

    Always adds `payload["page"]`. Other fields are kept; a string field too long to fit
    even with an empty list is cut with a marker (the spill file has it whole).
    """
    items = list(payload.get(list_key) or [])
    budget = copy_budget()
    full = {**payload, list_key: items, "page": _page(len(items), len(items))}
    if estimate_tokens(dumps(full)) <= budget:
        return Shaped(full, truncated=False)
    spill_id, path = _spill(payload, tool)
    return _cut(payload, items, list_key, 0, budget, spill_id, path, pageable, bind, also)


def resume(
    cursor: str,
    list_key: str,
    tool: str,
    *,
    bind: str | None = None,
    also: tuple[str, ...] = (),
    arguments: str = "arguments",
) -> Shaped:
    """The page a cursor points at, read from the spilled result; BadCursor when the cursor was
    made by another tool, or (`bind`) by a call with other arguments (`arguments` names them)."""
    m = _CURSOR.fullmatch(cursor.strip())
    if not m or not m.group(1).startswith(tool.replace("_", "") + "-"):
        raise BadCursor(f"cursor {cursor!r} was not made by {tool}: pass next_cursor from its last answer")
    spill_id, offset, bound = m.group(1), int(m.group(2)), m.group(3)
    path = spill_dir() / f"{spill_id}.json"
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadCursor(f"cursor {cursor!r} has expired (its file is gone): call {tool} again") from None
    if bind is not None and bound != bind:
        raise BadCursor(
            f"cursor {cursor!r} belongs to a {tool} call with other {arguments}: pass it with the same "
            f"{arguments} as the call that returned it, or leave cursor out for a fresh answer"
        )
    items = list(payload.get(list_key) or [])
    if offset > len(items):
        raise BadCursor(f"cursor {cursor!r} points past the end ({len(items)} items)")
    return _cut(payload, items, list_key, offset, copy_budget(), spill_id, path, True, bound, also)


def _page(total: int, returned: int, **extra: Any) -> dict[str, Any]:
    page = {
        "total_count": total,
        "returned_count": returned,
        "next_cursor": None,
        "spill_path": None,
        "note": None,
    }
    page.update(extra)
    return page


def _cut(
    payload: dict[str, Any],
    items: list[Any],
    list_key: str,
    offset: int,
    budget: int,
    spill_id: str,
    path: Path,
    pageable: bool = True,
    bind: str | None = None,
    also: tuple[str, ...] = (),
) -> Shaped:
    limit = max_output_tokens()
    cut_also: list[str] = []
    trimmed = [False]

    def build(k: int, base: dict[str, Any]) -> dict[str, Any]:
        end = offset + k
        more = pageable and end < len(items)
        parts = [f"{list_key} {offset}..{end - 1} of {len(items)} returned"] if k else []
        if not k and items:
            parts.append(f"none of {len(items)} {list_key} returned")
        parts += cut_also
        if trimmed[0]:
            parts.append("long texts and lists cut with a marker")
        note = (
            f"answer cut to fit MAX_MCP_OUTPUT_TOKENS={limit} (text and structured copies): "
            + ", ".join(parts)
            + "; the whole result is in spill_path"
            + ("; pass next_cursor as cursor for the next page" if more else "")
        )
        cursor = f"{spill_id}:{end}" + (f":{bind}" if bind else "")
        return {
            **base,
            list_key: items[offset:end],
            "page": _page(
                len(items),
                k,
                next_cursor=cursor if more else None,
                spill_path=str(path),
                note=note,
            ),
        }

    base = {k: v for k, v in payload.items() if k != list_key}
    for key in also:  # the other lists, cut to their first items when the rest does not fit
        whole = base.get(key)
        if not isinstance(whole, list) or estimate_tokens(dumps(build(0, base))) <= budget:
            continue
        lo, hi = 1, len(whole)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if estimate_tokens(dumps(build(0, {**base, key: whole[:mid]}))) <= budget:
                lo = mid
            else:
                hi = mid - 1
        if lo < len(whole):
            base = {**base, key: whole[:lo]}
            cut_also.append(f"{key} 0..{lo - 1} of {len(whole)} (the rest in spill_path)")
    if estimate_tokens(dumps(build(0, base))) > budget:
        trimmed[0] = True
        base = _trim_strings(base, budget // 2 if items else budget - 200, lists=True)
    lo, hi = 0, len(items) - offset  # largest k that fits, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate_tokens(dumps(build(mid, base))) <= budget:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0 and offset < len(items):
        # Not even one item fits: send one with its long strings cut, so every page makes progress.
        trimmed[0] = True
        one = build(1, base)
        page = one.pop("page")
        one = _trim_strings(
            one, budget - estimate_tokens(dumps({"page": page})), lists=True, rows_key=list_key
        )
        return Shaped({**one, "page": page}, truncated=True)
    return Shaped(build(lo, base), truncated=True)


def _trim_strings(
    obj: dict[str, Any], budget: int, lists: bool = False, rows_key: str | None = None
) -> dict[str, Any]:
    """Halve the longest strings until `obj` fits `budget` tokens (or nothing long is left); with
    `lists`, also halve the largest list of like items (dicts, lists or strings: never a row of
    mixed values, nor one of the rows under `rows_key`, whose places are columns), its tail
    replaced by a marker that counts what is in the spill file."""
    out = copy.deepcopy(obj)
    rows = out.get(rows_key) if rows_key is not None else None
    protected = {id(r) for r in rows if isinstance(r, list)} if isinstance(rows, list) else set()
    # the marker that names the spill file first; where that is not enough (a small budget), a
    # short one, which can cut prose too short for the long one (never an id: it must stay usable)
    for marker in (_TRIMMED, _TRIMMED_SHORT):
        out = _halve(out, budget, lists, marker, protected)
    return out


def _halve(out: dict[str, Any], budget: int, lists: bool, marker: str, protected: set[int]) -> dict[str, Any]:
    for _ in range(512):
        if estimate_tokens(dumps(out)) <= budget:
            return out
        holder, key, text = _longest_string(out, prose=marker is _TRIMMED_SHORT)
        text_size = len(text) if holder is not None and len(text) >= 2 * len(marker) else 0
        found = _largest_list(out, protected) if lists else None
        list_size = found[3] if found else 0
        if not text_size and not list_size:
            return out
        if text_size >= list_size:
            keep = text[: len(text) // 2].removesuffix(marker)
            holder[key] = keep + marker
        elif found is not None:  # list_size > text_size: there is a list
            where, at, items, _ = found
            hidden = _hidden(items[-1]) if items else 0
            real = items[:-1] if hidden else items
            half = len(real) // 2
            where[at] = [*real[:half], _MORE.format(n=hidden + len(real) - half)]
    return out


_MORE = "…[{n} more in page.spill_path]"
_MORE_RE = re.compile(r"…\[(\d+) more in page\.spill_path\]")


def _hidden(item: Any) -> int:
    m = _MORE_RE.fullmatch(item) if isinstance(item, str) else None
    return int(m.group(1)) if m else 0


def _largest_list(obj: Any, protected: set[int]) -> tuple[Any, Any, list[Any], int] | None:
    """(holder, key, list, characters) of the largest list of at least 2 like items, but for
    the lists whose ids are in `protected`."""
    best: tuple[Any, Any, list[Any], int] | None = None
    stack = [obj]
    while stack:
        cur = stack.pop()
        pairs = cur.items() if isinstance(cur, dict) else enumerate(cur) if isinstance(cur, list) else ()
        for k, v in pairs:
            if isinstance(v, (dict, list)):
                stack.append(v)
            if not isinstance(v, list) or id(v) in protected:
                continue
            real = v[:-1] if v and _hidden(v[-1]) else v
            kinds = {dict if isinstance(i, dict) else list if isinstance(i, list) else type(i) for i in real}
            if len(real) >= 2 and len(kinds) == 1 and kinds <= {dict, list, str}:
                size = len(dumps(v))
                if best is None or size > best[3]:
                    best = (cur, k, v, size)
    return best


def _longest_string(obj: Any, prose: bool = False) -> tuple[Any, Any, str]:
    """(holder, key, text) of the longest string, but for a cut list's marker ("…[n more in
    page.spill_path]"): cut, it would no longer count what the list left out. `prose`: of the
    strings with a space in them only (an id, a path, a cursor cut is of no use)."""
    best: tuple[Any, Any, str] = (None, None, "")
    stack = [obj]
    while stack:
        cur = stack.pop()
        pairs = cur.items() if isinstance(cur, dict) else enumerate(cur) if isinstance(cur, list) else ()
        for k, v in pairs:
            if isinstance(v, str) and len(v) > len(best[2]) and not _hidden(v) and (not prose or " " in v):
                best = (cur, k, v)
            elif isinstance(v, (dict, list)):
                stack.append(v)
    return best


def _spill(payload: dict[str, Any], tool: str) -> tuple[str, Path]:
    text = dumps(payload)
    spill_id = f"{tool.replace('_', '')}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    folder = spill_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spill_id}.json"
    if not path.exists():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        _prune(folder)
    return spill_id, path


def _prune(folder: Path) -> None:
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[_KEEP_SPILLS:]:
        old.unlink(missing_ok=True)
