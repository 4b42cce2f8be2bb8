"""ingest: trace and log dumps -> a Parquet dataset (see ingest/dataset.py for the layout).

The API the command line and the MCP tools call:

    ingest_paths(paths, dataset, progress=None) -> IngestResult   what this run added
        (paths may name stores: clickhouse://, chdb://, jaeger+http://, tempo+http://, pulled
         with pull=PullOptions(start_ns, end_ns, services, …); see ingest/stores/)
    dataset_summary(name) -> dict                                 totals, time range, services, sources
    remove_dataset(name)                                          delete (refuses while an ingest runs)
"""

from ingest.dataset import list_datasets, open_handle
from ingest.errors import (
    BadDatasetName,
    DatasetLocked,
    DatasetNotFound,
    DatasetWriteFailed,
    IngestError,
    NoInput,
)
from ingest.pipeline import IngestResult, SourceResult, dataset_summary, ingest_paths
from ingest.stores import PullOptions, StoreError, env_headers, is_store_source, parse_header
from ingest.writer import remove_dataset

__all__ = [
    "ingest_paths",
    "dataset_summary",
    "remove_dataset",
    "list_datasets",
    "open_handle",
    "IngestResult",
    "SourceResult",
    "IngestError",
    "NoInput",
    "DatasetNotFound",
    "DatasetLocked",
    "DatasetWriteFailed",
    "BadDatasetName",
    "PullOptions",
    "StoreError",
    "is_store_source",
    "parse_header",
    "env_headers",
]
