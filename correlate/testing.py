"""Small datasets on disk for tests and benchmarks, written straight to the dataset contract.

`make_dataset(name, spans, logs)` writes SPAN_SCHEMA / LOG_SCHEMA Parquet files and a
manifest.json under `$DCR_HOME/datasets/<name>/` exactly as `ingest/dataset.py` describes,
without going through a reader, so that `correlate/` can be tested on rows it chose.
Rows are dicts of column -> value; missing columns are NULL, `duration_ns` defaults to
end_ns - start_ns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.dataset import MANIFEST_VERSION, DatasetHandle, dataset_path, open_handle
from ingest.records import log_builder, span_builder

__all__ = ["make_dataset", "write_parquet"]


def write_parquet(path: Path, table: pa.Table, *, row_group_size: int = 128 * 1024) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", row_group_size=row_group_size)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(builder: Any, rows: Iterable[Mapping[str, Any]]) -> pa.Table | None:
    for row in rows:
        row = dict(row)
        if "start_ns" in row and "end_ns" in row and row.get("duration_ns") is None:
            row["duration_ns"] = row["end_ns"] - row["start_ns"]
        builder.add(row)
    batch = builder.flush()
    return pa.Table.from_batches([batch]) if batch is not None else None


def make_dataset(
    name: str,
    spans: Iterable[Mapping[str, Any]] = (),
    logs: Iterable[Mapping[str, Any]] = (),
) -> DatasetHandle:
    """Write a dataset of the given rows (replacing one of that name) and return its handle."""
    root = dataset_path(name)
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {"spans": [], "logs": []}
    span_table = _table(span_builder(), spans)
    log_table = _table(log_builder(), logs)
    if span_table is not None:
        span_table = span_table.sort_by([("service_name", "ascending"), ("start_ns", "ascending")])
        write_parquet(root / "spans" / "part-0.parquet", span_table)
        files["spans"].append("spans/part-0.parquet")
    if log_table is not None:
        write_parquet(root / "logs" / "part-0.parquet", log_table)
        files["logs"].append("logs/part-0.parquet")
    write_manifest(root, name, files, span_table, log_table)
    return open_handle(name)


def write_manifest(
    root: Path,
    name: str,
    files: dict[str, list[str]],
    span_table: pa.Table | None,
    log_table: pa.Table | None,
) -> None:
    import pyarrow.compute as pc

    starts: list[int] = []
    ends: list[int] = []
    services: set[str] = set()
    if span_table is not None and span_table.num_rows:
        starts.append(pc.min(span_table["start_ns"]).as_py())
        ends.append(pc.max(span_table["end_ns"]).as_py())
        services.update(s for s in pc.unique(span_table["service_name"]).to_pylist() if s)
    if log_table is not None and log_table.num_rows:
        starts.append(pc.min(log_table["time_ns"]).as_py())
        ends.append(pc.max(log_table["time_ns"]).as_py())
    manifest = {
        "schema_version": MANIFEST_VERSION,
        "name": name,
        "created_at": _now(),
        "updated_at": _now(),
        "files": files,
        "sources": [],
        "totals": {
            "spans": span_table.num_rows if span_table is not None else 0,
            "logs": log_table.num_rows if log_table is not None else 0,
            "rejected": 0,
        },
        "time_range": {"start_ns": min(starts) if starts else None, "end_ns": max(ends) if ends else None},
        "services": sorted(services),
        "ingests": [],
    }
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    tmp.replace(root / "manifest.json")
