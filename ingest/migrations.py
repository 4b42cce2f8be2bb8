"""The dataset layout's versions, and the steps from each to the next.

A manifest states its `schema_version` (ingest/dataset.py documents the current one). Opening
a dataset of an older version upgrades it in place: each step below runs in order, under the
dataset's lock, and the upgraded manifest replaces the old one atomically (readers see the old
state or the new one). A dataset of a newer version than this code knows is refused with a
message that says what to do: nothing here can read what a later layout means.

    version 0   the first layout: a manifest with `name`, `files` and `sources`, no
                `schema_version`, and no totals, time range, services or ingest history
    version 1   the manifest documented in ingest/dataset.py

A step is `m<from>_to_<to>(path, manifest) -> manifest`, registered in STEPS; it may read the
dataset's files but writes none (the caller writes the manifest).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest import lockfile
from ingest.errors import IngestError, Kind

__all__ = ["CURRENT", "STEPS", "DatasetTooNew", "version_of", "upgraded", "upgrade_in_place"]

CURRENT = 1  # the layout this code writes (ingest/dataset.py documents it; MANIFEST_VERSION there)

Step = Callable[[Path, dict[str, Any]], dict[str, Any]]


class DatasetTooNew(IngestError):
    """A dataset written by a later version of dcr than this one."""

    kind = Kind.UNUSABLE


def version_of(manifest: dict[str, Any]) -> int:
    v = manifest.get("schema_version", 0)
    return v if isinstance(v, int) and v >= 0 else 0


def m0_to_1(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Totals, time range and services from the Parquet files' own metadata and service column."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    m = dict(manifest)
    files = m.setdefault("files", {})
    files.setdefault("spans", [])
    files.setdefault("logs", [])
    m.setdefault("sources", [])
    counts = {"spans": 0, "logs": 0}
    lo: int | None = None
    hi: int | None = None
    services: set[str] = set()
    for kind, start, end in (("spans", "start_ns", "end_ns"), ("logs", "time_ns", "time_ns")):
        for rel in files[kind]:
            table = pq.read_table(
                path / rel, columns=["service_name", start, end] if start != end else ["service_name", start]
            )
            counts[kind] += table.num_rows
            if not table.num_rows:
                continue
            first, last = pc.min(table[start]).as_py(), pc.max(table[end]).as_py()
            lo = first if lo is None or (first is not None and first < lo) else lo
            hi = last if hi is None or (last is not None and last > hi) else hi
            services.update(s for s in pc.unique(table["service_name"]).to_pylist() if s)
    rejected = sum(int(s.get("rejected") or 0) for s in m["sources"])
    m.setdefault("totals", {"spans": counts["spans"], "logs": counts["logs"], "rejected": rejected})
    m.setdefault("time_range", {"start_ns": lo, "end_ns": hi})
    m.setdefault("services", sorted(services))
    m.setdefault("ingests", [])
    m.setdefault("created_at", m.get("updated_at"))
    m["schema_version"] = 1
    return m


STEPS: dict[int, Step] = {0: m0_to_1}


def upgraded(path: Path, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest at CURRENT (unchanged when it is already); DatasetTooNew for a later one."""
    v = version_of(manifest)
    if v > CURRENT:
        raise DatasetTooNew(
            f"dataset {name!r} was written by a newer dcr (layout version {v}; this one reads up to {CURRENT}): "
            f"upgrade dcr, or ingest its sources again into a new dataset with this version"
        )
    while v < CURRENT:
        manifest = STEPS[v](path, manifest)
        v = version_of(manifest)
    return manifest


def upgrade_in_place(path: Path, name: str, lock_timeout_s: float = 30.0) -> dict[str, Any]:
    """Upgrade the dataset's manifest on disk, under its lock, atomically; the new manifest."""
    fd = lockfile.acquire_dataset(path, name, lock_timeout_s, holder="dcr dataset upgrade")
    try:
        current = json.loads((path / "manifest.json").read_text(encoding="utf-8"))  # again, under the lock
        if version_of(current) == CURRENT:
            return current  # another process upgraded it while we waited
        new = upgraded(path, name, current)
        tmp = path / f"manifest.json.upgrade-{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(new, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path / "manifest.json")
        return new
    finally:
        lockfile.release(fd)
