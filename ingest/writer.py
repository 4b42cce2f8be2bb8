"""Writing a dataset: lock, de-duplicate, buffer, sort, Parquet, rejects, atomic manifest.

    chunks ──► SpanKeys (drop spans already seen) ──► buffer ≤ PART_BYTES ──► sort ──► part file
       └─► rejects/<ingest id>.jsonl                                            │
                                          commit(): manifest.json.tmp ──rename──► manifest.json

New files get fresh names and become visible only when the renamed manifest lists them, so
a kill at any moment leaves the previous manifest (and what it lists) intact; files no
manifest lists are garbage and are removed by the next writer. One writer at a time holds
an exclusive `flock` on `<dataset>/.lock`, released by the kernel when the process dies, a
kill -9 included (no child keeps a copy of it: `ingest/lockfile.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest import arrays, lockfile
from ingest.dataset import MANIFEST_VERSION, dataset_path, list_datasets
from ingest.errors import DatasetNotFound
from ingest.handoff import LOG_WIRE_SCHEMA, SPAN_WIRE_SCHEMA, to_wire
from ingest.lockfile import acquire_dataset as acquire_lock
from ingest.migrations import upgraded
from ingest.records import Chunk, Reject
from ingest.spankeys import MEMORY_BYTES, SpanKeys

__all__ = [
    "PART_BYTES",
    "ROW_GROUP_ROWS",
    "MAX_REJECT_RAW_BYTES",
    "SpanKeys",
    "SourceStats",
    "DatasetWriter",
    "remove_dataset",
    "acquire_lock",
]

# Arrow bytes buffered before they are sorted and written. A row group is one service of one buffer
# (or several small ones: MIN_GROUP_ROWS), and Parquet pays per row group and column (page headers,
# statistics, a zstd context a page): 64 MiB saved ~0.7 CPU-s/GB of the default dump when every
# service had row groups of its own. But the peak memory goes with it (a buffer filling
# while the previous one is combined and encoded, for spans and logs each): at 64 MiB an 8 GB dump
# peaked at 522 MB and a 4 GB logs-heavy one at 523 MB, over the 512 MB the ingest keeps to; at 32
# MiB, 449 and 417 MB (bench/ingest.py --no-reference, 2026-12-04)
PART_BYTES = 32 * 1024 * 1024
PART_BYTES_ENV = "DCR_INGEST_PART_MB"  # override (tests use small parts to kill mid-write)
ROW_GROUP_ROWS = 32 * 1024  # at most
# a service with fewer rows than this in a buffer shares a row group with the services next to it
# (in sorted order) until the group has this many; a service with more has row groups of its own.
# Parquet pays per row group and column (~25 us of page, statistics and codec set-up for each of
# ~47 columns), so a buffer of 24 services in 24 row groups of ~2 k spans spent ~35 % of its
# encoding on that; gathered into ~6 groups, the default dump's encoding cost 36 % less (a filter
# on a small service then reads its neighbours' few thousand rows too)
MIN_GROUP_ROWS = 8 * 1024
# rows a part file takes at most; the next one is started then. An open file keeps every row
# group's metadata in memory until it is closed, so this also bounds that (what 4 Mi rows cost:
# docs/benchmarks.md, "Ingest memory")
FILE_ROWS = 1024 * 1024
SPLIT_MIN_ROWS = 16 * 1024  # a buffer is written by both threads when each half has at least this
MAX_REJECT_RAW_BYTES = 16 * 1024 * 1024


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- locking ------------------------------------------------------------------------------


def _release_lock(fd: int) -> None:
    lockfile.release(fd)


# ---- span keys ----------------------------------------------------------------------------

_KEY_BYTES = 48  # a canonical key: 32 hex trace id + 16 hex span id
# the span key set's memory (ingest/spankeys.py); tests set a few KB to make it spill
KEYS_MEMORY_ENV = "DCR_INGEST_KEYS_MB"


def _fixed_text(arr: pa.Array, width: int) -> np.ndarray | None:
    """The bytes of a string array whose values all have `width` bytes, as an (n, width) view."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if arr.null_count or arr.type != pa.string():
        return None
    offsets = np.frombuffer(arr.buffers()[1], np.int32, count=n + 1, offset=arr.offset * 4)
    if offsets[-1] - offsets[0] != width * n or (n > 1 and not (np.diff(offsets) == width).all()):
        return None
    return np.frombuffer(arr.buffers()[2], np.uint8)[offsets[0] : offsets[0] + width * n].reshape(n, width)


def _key_words(trace_id: pa.Array, span_id: pa.Array) -> np.ndarray:
    """(trace_id, span_id) -> keys as (n, 6) little-endian 64-bit words of their 48-byte text.

    Ids are canonical hex (readers guarantee it), so the text is the key; a pair of any other
    shape (a reader bug or a foreign file) is replaced by the 48-hex-digit blake2b of its text."""
    n = len(trace_id)
    tid, sid = _fixed_text(trace_id, 32), _fixed_text(span_id, 16)
    if tid is not None and sid is not None:
        return np.concatenate([tid, sid], axis=1).view("<u8")
    texts = []
    for t, s in zip(trace_id.to_pylist(), span_id.to_pylist(), strict=True):
        raw = f"{t}{s}".encode() if t is not None and s is not None else b""
        if len(raw) != _KEY_BYTES or len(t) != 32:
            raw = hashlib.blake2b(f"{t!r}\n{s!r}".encode(), digest_size=_KEY_BYTES // 2).hexdigest().encode()
        texts.append(raw)
    return np.frombuffer(b"".join(texts), np.uint8).reshape(n, _KEY_BYTES).view("<u8")


def _new_spans(keys: SpanKeys, batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` without the spans `keys` has seen (which then knows the rest)."""
    mask = keys.add_new(_key_words(batch.column("trace_id"), batch.column("span_id")))
    if mask.all():
        return batch
    return batch.filter(arrays.bools(mask))


def _keys_memory() -> int:
    env = os.environ.get(KEYS_MEMORY_ENV)
    return int(float(env) * 1024 * 1024) if env else MEMORY_BYTES


# ---- per-source counters ------------------------------------------------------------------


@dataclass
class SourceStats:
    source_id: str
    path: str
    size: int
    sha256: str
    format: str
    compression: str | None
    spans: int = 0
    logs: int = 0
    rejected: int = 0
    duplicates: int = 0
    quick_id: str = ""  # sha256 of size + first and last MiB: a cheap first check of identity
    # a store pull's record (ingest/stores): the store without credentials, the query, the range,
    # the sampling; "store" in the manifest's source entry
    store: dict[str, Any] | None = None

    def to_manifest(self, rejects_file: str | None, ingested_at: str) -> dict[str, Any]:
        extra = {"store": self.store} if self.store is not None else {}
        return {
            "source_id": self.source_id,
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "format": self.format,
            "compression": self.compression,
            "spans": self.spans,
            "logs": self.logs,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "rejects_file": rejects_file if self.rejected else None,
            "ingested_at": ingested_at,
            "quick_id": self.quick_id,
            **extra,
        }


# ---- the writer ---------------------------------------------------------------------------

# write_batch_size: values encoded a call; a row group (one service of one buffer, or a few small
# ones) is thousands of rows, so the default 1024 cut each column into several calls for nothing
_PARQUET_OPTS = {"write_batch_size": 64 * 1024}
_SINK_BYTES = 1024 * 1024
# min/max statistics where a filter can use them (not on long JSON texts, nor on random ids,
# whose min and max span the whole range in every row group)
_STATISTICS = {
    "spans": [
        "name",
        "kind",
        "service_name",
        "service_version",
        "host",
        "start_ns",
        "end_ns",
        "duration_ns",
        "status_code",
        "http_method",
        "http_route",
        "http_status_code",
        "db_system",
        "rpc_service",
        "rpc_method",
        "messaging_system",
        "peer_service",
        "exception_type",
        "source_id",
        "source_offset",
    ],
    "logs": [
        "time_ns",
        "observed_time_ns",
        "severity_number",
        "severity_text",
        "service_name",
        "host",
        "event_name",
        "source_id",
        "source_offset",
    ],
}
# dictionary encoding only where values repeat (ids and attribute texts would only pay for it)
_DICTIONARY = {
    "spans": [
        "service_name",
        "service_version",
        "service_instance_id",
        "host",
        "scope_name",
        "scope_version",
        "name",
        "kind",
        "status_code",
        "status_message",
        "trace_state",
        "resource_attributes",
        "scope_attributes",
        "http_method",
        "http_route",
        "db_system",
        "db_operation",
        "rpc_system",
        "rpc_service",
        "rpc_method",
        "messaging_system",
        "messaging_destination",
        "messaging_operation",
        "peer_service",
        "exception_type",
        "code_filepath",
        "code_function",
        "source_id",
        "warnings",
        "flags",
        "dropped_attributes_count",
        "dropped_events_count",
        "dropped_links_count",
    ],
    "logs": [
        "severity_number",
        "severity_text",
        "service_name",
        "service_version",
        "host",
        "scope_name",
        "event_name",
        "resource_attributes",
        "flags",
        "dropped_attributes_count",
        "source_id",
    ],
}
# zstd on every column but the dictionary-encoded ones, which hold a row group's few distinct values
# (a closed set, one service's resource, the names of its operations) as a short dictionary and
# run-length indices: zstd saved ~0.3 % of the files' size on them. Arrow compresses each page with
# a fresh zstd context, a fixed ~17 us (two cpuid instructions, which trap in a virtual machine),
# so on those pages it was a fifth of the encoding. Resource attribute texts (a few hundred bytes
# each) are the exception: zstd keeps them to a sixth
_ZSTD_DICTIONARY = {"spans": ["resource_attributes"], "logs": ["resource_attributes"]}


def _compression(kind: str, schema: pa.Schema) -> dict[str, str]:
    plain = set(_DICTIONARY[kind]) - set(_ZSTD_DICTIONARY[kind])
    return {name: "none" if name in plain else "zstd" for name in schema.names}


class _Lane:
    """One part file at a time, written by one thread: the open file, then the next one."""

    def __init__(self, owner: _PartBuffer, thread: ThreadPoolExecutor) -> None:
        self.owner = owner
        self.thread = thread
        self._writer: pq.ParquetWriter | None = None
        self._sink: pa.BufferedOutputStream | None = None
        self._file_rows = 0

    def write(self, rows: pa.Table, services: pa.Array) -> None:
        """`rows` sorted by service, then time (`services`: a key in that order whose runs are the
        services' runs), as row groups cut at service boundaries (_row_groups), each a slice."""
        for start, length in _row_groups(_runs(services)):
            end = start + length
            while start < end:
                writer = self._open(rows.schema)
                n = min(ROW_GROUP_ROWS, end - start, FILE_ROWS - self._file_rows)
                writer.write_table(rows.slice(start, n), row_group_size=ROW_GROUP_ROWS)
                self._file_rows += n
                start += n

    def _open(self, schema: pa.Schema) -> pq.ParquetWriter:
        """The open part file, or a new one when it is full (FILE_ROWS)."""
        if self._writer is not None and self._file_rows >= FILE_ROWS:
            self.close()
        if self._writer is None:
            path = self.owner.new_path()
            kind = self.owner.folder.name
            # one write call a MiB, not one a page (a row group of a few thousand rows is ~100 pages)
            self._sink = pa.BufferedOutputStream(pa.OSFile(str(path), "wb"), buffer_size=_SINK_BYTES)
            # store_schema=False: the Parquet types alone read back as SPAN_SCHEMA / LOG_SCHEMA (plain
            # strings), whereas the stored Arrow schema of a wire table would say "dictionary"
            self._writer = pq.ParquetWriter(
                self._sink,
                schema,
                use_dictionary=_DICTIONARY[kind],
                compression=_compression(kind, schema),
                write_statistics=_STATISTICS[kind],
                store_schema=False,
                **_PARQUET_OPTS,
            )
            self._file_rows = 0
        return self._writer

    def close(self) -> None:
        writer, sink, self._writer, self._sink = self._writer, self._sink, None, None
        try:
            if writer is not None:
                writer.close()
        finally:
            if sink is not None:
                sink.close()


class _PartBuffer:
    """Batches of one table, sorted and appended to long part files when big enough.

    Layout, for queries that filter on service and time to read little:

        part file ── row group: service A, rows sorted by time   (one buffer's worth)
                 ├── row group: services B, C, D (small), sorted by service, then time
                 ├── …                                            (next buffer, later times)
                 └── row group: service A, …

    Each buffer (PART_BYTES) is sorted by (service, time) and written as row groups cut at
    service boundaries, so a row group's min/max statistics name one service (or a few neighbours
    of under MIN_GROUP_ROWS rows each) and a narrow time range, and DuckDB skips every row group
    but the ones that can hold the rows asked for. A file takes up to
    FILE_ROWS rows (few files: DuckDB pays per file even when it skips it whole).

    Sorting and writing happen on the writer's two threads (Arrow releases the GIL), so the
    caller keeps taking batches meanwhile; at most one buffer is in the works at a time. A big
    buffer's sorted rows are cut in two halves, taken and encoded at once by the two threads
    into two part files (one each), so the Parquet encoding spreads over both cores. (So an
    ingest of more than one buffer writes at least two files: a dataset of one such ingest is
    read as several files, a step that costs DuckDB tens of ms a query over a single file.)"""

    def __init__(
        self,
        folder: Path,
        prefix: str,
        schema: pa.Schema,
        sort_keys: list[tuple[str, str]],
        threads: tuple[ThreadPoolExecutor, ThreadPoolExecutor],
    ) -> None:
        self.folder, self.prefix, self.schema, self.sort_keys = folder, prefix, schema, sort_keys
        env = os.environ.get(PART_BYTES_ENV)
        self.part_bytes = int(float(env) * 1024 * 1024) if env else PART_BYTES
        self.batches: list[pa.RecordBatch] = []
        self.nbytes = 0
        self.files: list[Path] = []
        self.services: set[str] = set()
        self.min_ns: int | None = None
        self.max_ns: int | None = None
        self._lanes = (_Lane(self, threads[0]), _Lane(self, threads[1]))
        self._pending: Future | None = None
        self._files_lock = threading.Lock()

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            batch = to_wire(batch)
            self.batches.append(batch)
            self.nbytes += batch.nbytes
            if self.nbytes >= self.part_bytes:
                self.flush()

    def flush(self) -> None:
        """Hand the buffered batches to the writer threads (after the previous buffer is written)."""
        if not self.batches:
            return
        batches, self.batches, self.nbytes = self.batches, [], 0
        self.wait()
        self._pending = self._lanes[0].thread.submit(self._write, batches)

    def wait(self) -> None:
        """Until the buffer in the works is written (re-raising its error)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def finish(self) -> None:
        """Write what is buffered and close the open part files."""
        self.flush()
        self.wait()
        self.close()

    def close(self) -> None:
        for lane in self._lanes:
            lane.close()

    def new_path(self) -> Path:
        """A fresh part file name (either thread may ask)."""
        with self._files_lock:
            path = self.folder / f"{self.prefix}-{len(self.files):05d}.parquet"
            self.files.append(path)
        self.folder.mkdir(parents=True, exist_ok=True)
        return path

    def _write(self, batches: list[pa.RecordBatch]) -> None:
        """On the first thread: sort the buffer and take its first half in that order, the second
        thread the other half; then each writes its half. A take from the buffer's many chunks
        costs less than combining them first and taking from that (half as much on the default
        dump's buffers), and gives one chunk; the sorted copy is the buffer's size, as the
        combined one was, and the mapped batches go once both halves are taken."""
        table = pa.Table.from_batches(batches, schema=self.schema)
        batches.clear()
        (service, _), (start, _) = self.sort_keys
        key = table.column(service).combine_chunks()  # a dictionary column: one dictionary now
        group = _sort_key(key)
        keys = pa.table({service: group, start: table.column(start)})
        order = pc.sort_indices(keys, sort_keys=self.sort_keys)  # stable, as Table.sort_by is
        services = group.take(order)  # its runs are the services' runs
        self._track(key, table.column(start), table)
        n = table.num_rows
        if n < 2 * SPLIT_MIN_ROWS:
            rows = _take(table, order)
            del table
            self._lanes[0].write(rows, services)
            return
        cut = n // 2
        other = self._lanes[1].thread.submit(_take, table, order.slice(cut))
        try:
            first = _take(table, order.slice(0, cut))
        finally:
            second = other.result()
        del table
        other = self._lanes[1].thread.submit(self._lanes[1].write, second, services.slice(cut))
        del second
        try:
            self._lanes[0].write(first, services.slice(0, cut))
        finally:
            other.result()

    def _track(self, services: pa.Array, t0: pa.ChunkedArray, table: pa.Table) -> None:
        self.services.update(s for s in pc.unique(services).to_pylist() if s is not None)
        t1 = table.column("end_ns") if "end_ns" in table.column_names else t0
        lo, hi = pc.min(t0).as_py(), pc.max(t1).as_py()
        if lo is not None:
            self.min_ns = lo if self.min_ns is None else min(self.min_ns, lo)
        if hi is not None:
            self.max_ns = hi if self.max_ns is None else max(self.max_ns, hi)


def _take(table: pa.Table, order: pa.Array) -> pa.Table:
    """The rows of `table` in `order`, which comes from a sort of them: no index needs checking. A
    column with no value in the buffer (a promoted attribute no span has, say: a third of the
    columns in some dumps) is made anew rather than gathered null by null."""
    n = len(order)
    rows = arrays.Rows(order)  # found in the chunks once, for every text column
    cols = [
        pa.nulls(n, col.type)
        if col.null_count == len(col) and not pa.types.is_dictionary(col.type)
        else arrays.take(col, rows)
        for col in table.columns
    ]
    return pa.Table.from_arrays(cols, schema=table.schema)


def _sort_key(column: pa.Array) -> pa.Array:
    """`column` as a key Arrow sorts in the order of its values. A dictionary column (which Arrow does
    not sort) becomes the rank of each row's value among the dictionary's (equal texts, equal ranks):
    a few hundred texts ranked instead of every row cast to text and compared as text."""
    if not pa.types.is_dictionary(column.type):
        return column
    if column.dictionary.null_count:  # a null value, not a null index: keep the nulls' usual place
        return column.cast(pa.string())
    rank = pc.rank(column.dictionary, sort_keys="ascending", tiebreaker="min")
    return rank.take(column.indices)


def _runs(values: pa.Array) -> list[tuple[int, int]]:
    """(start, length) of each run of equal values (nulls are one run)."""
    ree = pc.run_end_encode(values)
    ends = arrays.to_numpy(ree.run_ends).tolist()
    starts = [0, *ends[:-1]]
    return [(a, b - a) for a, b in zip(starts, ends, strict=True)]


def _row_groups(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, length) of each row group of a sorted buffer, from its services' `runs`: a run of at
    least MIN_GROUP_ROWS alone; shorter runs next to each other together, a group closed once it
    has MIN_GROUP_ROWS rows (or at a long run)."""
    groups: list[tuple[int, int]] = []
    start = rows = 0
    for run_start, length in runs:
        if length >= MIN_GROUP_ROWS:
            if rows:
                groups.append((start, rows))
            groups.append((run_start, length))
            rows = 0
            continue
        if not rows:
            start = run_start
        rows += length
        if rows >= MIN_GROUP_ROWS:
            groups.append((start, rows))
            rows = 0
    if rows:
        groups.append((start, rows))
    return groups


def _fresh_manifest(name: str) -> dict[str, Any]:
    now = _now_iso()
    return {
        "schema_version": MANIFEST_VERSION,
        "name": name,
        "created_at": now,
        "updated_at": now,
        "files": {"spans": [], "logs": []},
        "sources": [],
        "totals": {"spans": 0, "logs": 0, "rejected": 0},
        "time_range": {"start_ns": None, "end_ns": None},
        "services": [],
        "ingests": [],
    }


def _reject_line(r: Reject, source_id: str | None) -> bytes:
    raw = r.raw[:MAX_REJECT_RAW_BYTES]
    rec: dict[str, Any] = {
        "source": r.source,
        "source_id": source_id,
        "offset": r.offset,
        "unit": r.unit,
        "reason": r.reason,
        "raw_bytes": len(r.raw),
    }
    try:
        rec["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        import base64

        rec["raw_base64"] = base64.b64encode(raw).decode("ascii")
    if len(r.raw) > MAX_REJECT_RAW_BYTES:
        rec["truncated"] = True
    return msgspec.json.encode(rec) + b"\n"


class DatasetWriter:
    """One ingest into one dataset. Use as a context manager; `commit()` makes it visible."""

    def __init__(
        self, name: str, *, lock_timeout_s: float = 600.0, on_wait: Callable[[str], None] | None = None
    ) -> None:
        self.name = name
        self.path = dataset_path(name)
        self._lock_fd = acquire_lock(self.path, name, lock_timeout_s, on_wait)
        try:
            self.manifest = self._load_manifest()
            self._collect_garbage()
            self.ingest_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
            # its runs go to the staging folder, which close() removes, and the next ingest
            # after a kill
            self.keys = SpanKeys(
                self.path / ".staging" / f"keys-{self.ingest_id}", memory_bytes=_keys_memory()
            )
            self._load_keys()
            # two writer threads: the first sorts a buffer and writes half of it, the second the
            # other half (the first waits for the second, never the other way round)
            self._threads = (
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="dcr-parts"),
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="dcr-parts-2"),
            )
            self.spans = _PartBuffer(
                self.path / "spans",
                f"part-{self.ingest_id}",
                SPAN_WIRE_SCHEMA,
                [("service_name", "ascending"), ("start_ns", "ascending")],
                self._threads,
            )
            self.logs = _PartBuffer(
                self.path / "logs",
                f"part-{self.ingest_id}",
                LOG_WIRE_SCHEMA,
                [("service_name", "ascending"), ("time_ns", "ascending")],
                self._threads,
            )
            self.sources: list[SourceStats] = []
            self._new_unrecognised: list[str] = []
            self._rejects_fh: Any = None
            self.rejects_rel = f"rejects/{self.ingest_id}.jsonl"
            self.started_at = _now_iso()
            self._t0 = time.monotonic()
        except BaseException:
            if getattr(self, "keys", None) is not None:
                self.keys.close()
            _release_lock(self._lock_fd)
            raise

    # -- set-up --

    def _load_manifest(self) -> dict[str, Any]:
        try:
            manifest = json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return _fresh_manifest(self.name)
        return upgraded(self.path, self.name, manifest)  # an older layout is committed upgraded

    def _listed(self) -> set[str]:
        m = self.manifest
        listed = set(m["files"]["spans"]) | set(m["files"]["logs"])
        listed |= {s["rejects_file"] for s in m["sources"] if s.get("rejects_file")}
        listed |= {f"rejects/{i['ingest_id']}.jsonl" for i in m["ingests"] if i.get("rejected")}
        return listed

    def _collect_garbage(self) -> None:
        """Remove what a killed ingest left behind: files no manifest lists."""
        listed = self._listed()
        for sub in ("spans", "logs", "rejects"):
            folder = self.path / sub
            if folder.is_dir():
                for f in folder.iterdir():
                    if f"{sub}/{f.name}" not in listed:
                        f.unlink(missing_ok=True)
        for f in self.path.glob("manifest.json.*.tmp"):
            f.unlink(missing_ok=True)
        shutil.rmtree(self.path / ".staging", ignore_errors=True)

    def _load_keys(self) -> None:
        for rel in self.manifest["files"]["spans"]:
            pf = pq.ParquetFile(self.path / rel)
            for batch in pf.iter_batches(batch_size=256 * 1024, columns=["trace_id", "span_id"]):
                self.keys.add_new(_key_words(batch.column(0), batch.column(1)))

    @property
    def staging(self) -> Path:
        folder = self.path / ".staging"
        folder.mkdir(exist_ok=True)
        return folder

    def known_sha256(self) -> dict[str, dict[str, Any]]:
        return {s["sha256"]: s for s in self.manifest["sources"] if s.get("sha256")}

    # -- adding --

    def begin_source(self, stats: SourceStats) -> SourceStats:
        self.sources.append(stats)
        return stats

    def add(self, chunk: Chunk, stats: SourceStats) -> None:
        if chunk.spans is not None and chunk.spans.num_rows:
            kept = _new_spans(self.keys, chunk.spans)
            stats.duplicates += chunk.spans.num_rows - kept.num_rows
            stats.spans += kept.num_rows
            self.spans.add(kept)
        if chunk.logs is not None and chunk.logs.num_rows:
            stats.logs += chunk.logs.num_rows
            self.logs.add(chunk.logs)
        if chunk.rejects:
            self.add_rejects(chunk.rejects, stats)

    def add_rejects(self, rejects: list[Reject], stats: SourceStats | None) -> None:
        if self._rejects_fh is None:
            (self.path / "rejects").mkdir(exist_ok=True)
            self._rejects_fh = open(self.path / self.rejects_rel, "ab")
        sid = stats.source_id if stats is not None else None
        for r in rejects:
            self._rejects_fh.write(_reject_line(r, sid))
        if stats is not None:
            stats.rejected += len(rejects)

    # -- finishing --

    def commit(self, bytes_read: int) -> dict[str, Any]:
        """Write the remaining parts and atomically publish the new manifest."""
        for part in (self.spans, self.logs):
            part.finish()
        if self._rejects_fh is not None:
            self._rejects_fh.close()
            self._rejects_fh = None
        m = self.manifest
        now = _now_iso()
        m["updated_at"] = now
        m["files"]["spans"] += [f"spans/{p.name}" for p in self.spans.files]
        m["files"]["logs"] += [f"logs/{p.name}" for p in self.logs.files]
        m["sources"] += [s.to_manifest(self.rejects_rel, now) for s in self.sources]
        added = {
            "spans": sum(s.spans for s in self.sources),
            "logs": sum(s.logs for s in self.sources),
            "rejected": sum(s.rejected for s in self.sources) + self.orphan_rejects,
        }
        for k, v in added.items():
            m["totals"][k] = m["totals"].get(k, 0) + v
        tr = m["time_range"]
        for lo in (self.spans.min_ns, self.logs.min_ns):
            if lo is not None:
                tr["start_ns"] = lo if tr["start_ns"] is None else min(tr["start_ns"], lo)
        for hi in (self.spans.max_ns, self.logs.max_ns):
            if hi is not None:
                tr["end_ns"] = hi if tr["end_ns"] is None else max(tr["end_ns"], hi)
        m["unrecognised"] = sorted(set(m.get("unrecognised", [])) | set(self._new_unrecognised))
        m["services"] = sorted(set(m["services"]) | self.spans.services | self.logs.services)
        m["ingests"].append(
            {
                "ingest_id": self.ingest_id,
                "started_at": self.started_at,
                "seconds": round(time.monotonic() - self._t0, 3),
                "bytes": bytes_read,
                **added,
                "sources": [s.source_id for s in self.sources],
            }
        )
        tmp = self.path / f"manifest.json.{self.ingest_id}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(m, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / "manifest.json")
        return m

    orphan_rejects = 0  # rejects not tied to a readable source (unknown formats)

    @property
    def unrecognised(self) -> set[str]:
        """Quick ids of inputs already rejected as a whole (unknown format)."""
        return set(self.manifest.get("unrecognised", [])) | set(self._new_unrecognised)

    def add_orphan_rejects(self, rejects: list[Reject], quick_id: str) -> None:
        self.add_rejects(rejects, None)
        self.orphan_rejects += len(rejects)
        self._new_unrecognised.append(quick_id)

    def close(self) -> None:
        for thread in getattr(self, "_threads", ()):
            thread.shutdown(wait=True, cancel_futures=True)  # no thread writes on after the lock is gone
        for part in (getattr(self, "spans", None), getattr(self, "logs", None)):
            if part is not None:
                try:
                    part.close()
                except OSError:
                    pass  # an unlisted file: garbage for the next ingest
        if self._rejects_fh is not None:
            self._rejects_fh.close()
            self._rejects_fh = None
        if getattr(self, "keys", None) is not None:
            self.keys.close()
        shutil.rmtree(self.path / ".staging", ignore_errors=True)
        if self._lock_fd >= 0:
            _release_lock(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def remove_dataset(name: str) -> None:
    """Delete a dataset; refuses while an ingest holds it."""
    path = dataset_path(name)
    if not (path / "manifest.json").is_file():
        raise DatasetNotFound(name, list_datasets())
    fd = acquire_lock(
        path, name, timeout_s=0.0, hint="remove it once that ingest has finished", holder="dcr dataset rm"
    )
    try:
        (path / "manifest.json").unlink()  # from here on it is not a dataset any more
    finally:
        _release_lock(fd)
    shutil.rmtree(path, ignore_errors=True)
