"""Where datasets live and how to read one's manifest: the on-disk contract.

    $DCR_HOME/datasets/<name>/
        manifest.json        the truth: readers use only the files it lists
        spans/…parquet       zstd Parquet, SPAN_SCHEMA (see ingest/schema.py)
        logs/…parquet        zstd Parquet, LOG_SCHEMA
        rejects/…            every record that could not be ingested, verbatim

manifest.json (schema_version 1):

    {
      "schema_version": 1,
      "name": "checkout",
      "created_at": "2024-05-01T12:00:00Z", "updated_at": "…",
      "files": {"spans": ["spans/…parquet", …], "logs": ["logs/…parquet", …]},
      "sources": [{"source_id", "path", "size", "sha256", "format", "spans", "logs",
                   "rejected", "rejects_file", "ingested_at"}, …],
      "totals": {"spans": int, "logs": int, "rejected": int},
      "time_range": {"start_ns": int | null, "end_ns": int | null},
      "services": ["checkout", …],
      "ingests": [{"started_at", "seconds", "bytes", "spans", "logs", "rejected"}, …]
    }

A dataset of an older layout (a manifest without `schema_version` is version 0) is upgraded in
place when it is opened, and a later one is refused: ingest/migrations.py holds the steps.

A dataset is replaced atomically by writing new files and then renaming a new
manifest.json over the old one: a reader that lists files from the manifest sees the old
state or the new one, never half of one. Files no manifest lists are garbage.

`DatasetHandle` is the shared type `correlate/` opens.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import BadDatasetName, DatasetNotFound
from ingest.migrations import CURRENT, upgrade_in_place, upgraded

__all__ = [
    "MANIFEST_VERSION",
    "DatasetHandle",
    "dcr_home",
    "datasets_root",
    "dataset_path",
    "validate_name",
    "list_datasets",
    "open_handle",
]

MANIFEST_VERSION = CURRENT  # the layout version this code writes (ingest/migrations.py upgrades older ones)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def dcr_home() -> Path:
    """DCR_HOME, else the platform's user data dir for `dcr`."""
    env = os.environ.get("DCR_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("dcr", appauthor=False))


def datasets_root() -> Path:
    return dcr_home() / "datasets"


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise BadDatasetName(
            f"bad dataset name {name!r}: use letters, digits, '.', '_' or '-' (at most 128, not starting with '.')"
        )
    return name


def dataset_path(name: str) -> Path:
    return datasets_root() / validate_name(name)


def list_datasets() -> list[str]:
    root = datasets_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file())


@dataclass(frozen=True)
class DatasetHandle:
    """A dataset as one manifest describes it (a consistent snapshot)."""

    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def span_files(self) -> list[Path]:
        return [self.path / f for f in self.manifest.get("files", {}).get("spans", [])]

    @property
    def log_files(self) -> list[Path]:
        return [self.path / f for f in self.manifest.get("files", {}).get("logs", [])]

    @property
    def services(self) -> list[str]:
        return list(self.manifest.get("services", []))

    @property
    def time_range(self) -> tuple[int | None, int | None]:
        tr = self.manifest.get("time_range") or {}
        return tr.get("start_ns"), tr.get("end_ns")


def open_handle(name: str) -> DatasetHandle:
    """The dataset's current manifest; DatasetNotFound lists the known names. A dataset of an
    older layout is upgraded in place first (ingest/migrations.py); a newer one is refused."""
    path = dataset_path(name)
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetNotFound(name, list_datasets()) from None
    version = manifest.get("schema_version", 0)
    if version != MANIFEST_VERSION:
        upgraded(path, name, manifest)  # refuses a newer layout before taking any lock
        manifest = upgrade_in_place(path, name)
    return DatasetHandle(name=name, path=path, manifest=manifest)
