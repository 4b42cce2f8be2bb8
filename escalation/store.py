"""The escalation database: one SQLite file under DCR_HOME, WAL, numbered migrations.

    $DCR_HOME/escalation.sqlite
        _migrations     name, applied_at: each migration runs once, in order
        ledger          one row per escalation, conversation turn, finalize, dry run and function call
        conversations   one row per session (its bundle, model, state, lease for serialising)
        messages        the turns of a session: user and model, ok / failed

Migrations are functions named m001_…, m002_… registered with `@migration`; `connect()`
applies the ones not yet recorded, inside a transaction each, so migrating twice is a no-op.
sqlite3 errors are mapped here to EscalationError with the path and the fix.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from escalation.errors import EscalationError
from ingest.dataset import dcr_home

__all__ = ["DB_NAME", "MIGRATIONS", "migration", "connect", "migrate", "db_path", "now_iso", "transaction"]

DB_NAME = "escalation.sqlite"
MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = []


def migration(fn: Callable[[sqlite3.Connection], None]) -> Callable[[sqlite3.Connection], None]:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def now_iso(ts: float | None = None) -> str:
    dt = datetime.now(UTC) if ts is None else datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def db_path() -> Path:
    return dcr_home() / DB_NAME


@migration
def m001_ledger(con: sqlite3.Connection) -> None:
    con.execute("""
        CREATE TABLE ledger (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,              -- escalation | turn | finalize | dry_run
            session_id TEXT,
            turn INTEGER,
            created_at TEXT NOT NULL,
            day TEXT NOT NULL,               -- YYYY-MM-DD (UTC)
            dataset TEXT,
            analysis_type TEXT,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            reasons TEXT NOT NULL DEFAULT '[]',          -- JSON: why it was escalated
            bundle_tokens INTEGER NOT NULL DEFAULT 0,
            bundle_sections TEXT NOT NULL DEFAULT '{}',  -- JSON: section -> tokens
            token_method TEXT,
            cut INTEGER NOT NULL DEFAULT 0,
            redactions TEXT NOT NULL DEFAULT '{}',       -- JSON: kind -> count (never values)
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            thinking_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            latency_s REAL NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 1,
            outcome TEXT NOT NULL,           -- ok | failed | dry_run
            error TEXT,
            bundle_path TEXT
        )""")
    con.execute("CREATE INDEX ledger_day ON ledger(day)")


@migration
def m002_conversations(con: sqlite3.Connection) -> None:
    con.execute("""
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            expires_at REAL NOT NULL,        -- epoch seconds
            state TEXT NOT NULL,             -- active | finalized
            dataset TEXT,
            analysis_type TEXT NOT NULL,
            depth_level INTEGER NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            question TEXT NOT NULL,
            system_instruction TEXT NOT NULL,
            bundle_text TEXT NOT NULL,
            bundle_facts TEXT NOT NULL,      -- JSON
            escalation_id TEXT,
            max_turns INTEGER NOT NULL,
            timeout_s REAL NOT NULL,
            lease_token TEXT,                -- held by the continue in progress
            lease_until REAL
        )""")
    con.execute("""
        CREATE TABLE messages (
            session_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL,              -- user | model
            text TEXT NOT NULL,              -- what was (or is to be) sent / received, redacted
            status TEXT NOT NULL,            -- ok | pending | failed
            analysis TEXT,                   -- JSON for model turns
            error TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (session_id, seq)
        )""")


@migration
def m003_function_calls(con: sqlite3.Connection) -> None:
    """The functions a model called within a turn: one ledger row each (kind 'function_call'),
    pointing at the escalation or turn that made it, with what it asked and got in `detail`."""
    con.execute("ALTER TABLE ledger ADD COLUMN parent_id TEXT")
    con.execute("ALTER TABLE ledger ADD COLUMN detail TEXT NOT NULL DEFAULT '{}'")
    con.execute("CREATE INDEX ledger_parent ON ledger(parent_id)")


def migrate(con: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet applied; returns their names (empty when up to date)."""
    con.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied = []
    for name, fn in MIGRATIONS:
        with transaction(con):
            if con.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                continue
            fn(con)
            con.execute("INSERT INTO _migrations VALUES (?, ?)", (name, now_iso()))
            applied.append(name)
    return applied


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")


def connect(path: Path | None = None) -> sqlite3.Connection:
    path = path or db_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("PRAGMA foreign_keys=ON")
        migrate(con)
    except sqlite3.Error as exc:
        raise EscalationError(
            f"cannot open the escalation database {path}: {exc}: check DCR_HOME "
            "is writable, or move the file away to start afresh"
        ) from None
    return con
