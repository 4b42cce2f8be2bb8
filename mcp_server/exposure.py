"""What a server reachable from other machines may read: ingest paths confined to roots.

On stdio, or over HTTP on loopback, the agent is the user's own and `ingest_traces` reads any
path the user could. Bound beyond loopback (`dcr serve --transport http --host 0.0.0.0`), a
caller elsewhere would make the server read any file it can: there `ingest_traces` reads only
under `DCR_INGEST_ROOTS` (folders separated by `os.pathsep`), checked after globs and folders
are expanded and symlinks resolved, as code files are confined to `DCR_CODE_ROOTS`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["set_exposed", "is_exposed", "ingest_roots", "check_ingest_paths"]

_exposed = False


def set_exposed(flag: bool) -> None:
    """Record whether this process serves beyond loopback (the HTTP transport sets it)."""
    global _exposed
    _exposed = bool(flag)


def is_exposed() -> bool:
    return _exposed


def ingest_roots(env: str | None = None) -> tuple[Path, ...]:
    raw = os.environ.get("DCR_INGEST_ROOTS", "") if env is None else env
    return tuple(Path(os.path.realpath(Path(p).expanduser())) for p in raw.split(os.pathsep) if p.strip())


def check_ingest_paths(paths: Sequence[str]) -> str | None:
    """Why these paths may not be read by an exposed server (None: they may, or it is not exposed)."""
    if not _exposed:
        return None
    roots = ingest_roots()
    if not roots:
        return (
            "this server is reachable beyond loopback, so ingest_traces reads only under DCR_INGEST_ROOTS: "
            "set it where the server runs (folders separated by ':') and give paths inside them"
        )
    from ingest.formats import expand_sources

    try:
        inputs = expand_sources(list(paths))
    except Exception as exc:  # NoInput and the like: the ingest itself says it better
        from mcp_server.errors import is_package_error, tool_message

        return tool_message(exc) if is_package_error(exc) else str(exc).splitlines()[0]
    for f in inputs:
        if f.fs_path is None:
            continue
        real = Path(os.path.realpath(f.fs_path))
        if not any(real == r or r in real.parents for r in roots):
            return f"{f.path}: outside the ingest roots (DCR_INGEST_ROOTS) this server may read"
    return None
