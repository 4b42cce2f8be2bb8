"""What `DatasetSession.sql` lets through: one read-only SELECT of bounded length.

This is the first of two fences. The second is the connection itself (see `session.py`):
DuckDB's external access is off (only the dataset's own Parquet files are readable), extensions
cannot be installed or loaded, and the configuration is locked, so a statement that slipped
past this guard still could not touch a file, the network or a setting.
"""

from __future__ import annotations

from typing import Any

from correlate.errors import SqlError, map_duckdb_error

__all__ = ["MAX_QUERY_CHARS", "check_query"]

MAX_QUERY_CHARS = 100_000

# statement type name -> why it is refused (the message names what to do instead)
_REFUSED = {
    "COPY": "COPY is not allowed: queries are read-only and cannot write files",
    "COPY_DATABASE": "COPY FROM DATABASE is not allowed: queries are read-only",
    "EXPORT": "EXPORT DATABASE is not allowed: queries are read-only and cannot write files",
    "ATTACH": "ATTACH is not allowed: only the dataset's views can be queried",
    "DETACH": "DETACH is not allowed: only the dataset's views can be queried",
    "LOAD": "INSTALL/LOAD is not allowed: extensions are disabled here",
    "SET": "SET/RESET/USE is not allowed: the session's settings are fixed",
    "VARIABLE_SET": "SET VARIABLE is not allowed: the session's settings are fixed",
    "PRAGMA": "PRAGMA is not allowed: the session's settings are fixed",
    "CALL": "CALL is not allowed: use SELECT * FROM table_function(...) for read-only functions",
}


def check_query(con: Any, query: str) -> str:
    """The single SELECT statement in `query`, or SqlError saying why it is refused."""
    if not isinstance(query, str) or not query.strip():
        raise SqlError("empty query: give one SELECT statement, e.g. SELECT count(*) FROM spans")
    if len(query) > MAX_QUERY_CHARS:
        raise SqlError(f"query too long: {len(query)} characters (at most {MAX_QUERY_CHARS})")
    try:
        statements = con.extract_statements(query)
    except Exception as exc:  # duckdb.Error: a syntax error, with its position
        raise map_duckdb_error(exc, query) from None
    if not statements:
        raise SqlError("empty query: give one SELECT statement, e.g. SELECT count(*) FROM spans")
    if len(statements) > 1:
        raise SqlError(f"one statement at a time: found {len(statements)} (remove the ';' between them)")
    kind = statements[0].type.name
    if kind != "SELECT":
        reason = _REFUSED.get(kind, f"{kind} statements are not allowed: queries are read-only")
        raise SqlError(f"{reason} (only SELECT, WITH, FROM, DESCRIBE, SHOW and SUMMARIZE run here)")
    return statements[0].query
