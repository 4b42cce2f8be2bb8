"""The ingest driver: sources -> readers (in parallel where it pays) -> the dataset writer.

    expand_sources ─► per source: identity (quick id, sha256) ─► known? skip
                                 └► decompress, sniff ─► format
                                      big OTLP JSON lines ─► 2 worker processes decode 4 MiB
                                      big OTLP protobuf   ─► line/message-aligned byte ranges
                                      big, with read_parallel() ─► the format cuts, our workers decode
                                      anything else ──────► the format's read() in process
                      every chunk ─► DatasetWriter.add ─► commit (atomic manifest)

Worker results come back in order (at most four per worker in flight, which bounds memory),
their batches through shared memory (`ingest/handoff.py`). Line numbers in a worker's
chunk are relative to its range; the driver shifts them by the lines before the range.
The sha256 of each input is computed in a thread while the workers decode.

Workers end with the ingest, a kill -9 included (`ingest/lifeline.py`), and hold nothing of the
dataset: its lock stays with the driver (`ingest/lockfile.py`).

A source that names a store (clickhouse://, chdb://, jaeger+http://, tempo+http://; see
`ingest/stores/`) is pulled after the files (so the worker processes are forked before an
embedded engine starts threads of its own), through the same writer; its manifest entry records
the store without credentials, the query, the range and any sampling (`store`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import functools
import hashlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from ingest import otlp_json, otlp_proto, otlp_ranges
from ingest.dataset import open_handle, validate_name
from ingest.errors import DatasetLocked, DatasetWriteFailed, NoInput, PackageError
from ingest.formats import (
    CORRUPT_ERRORS,
    HEAD_BYTES,
    InputFile,
    decompressed,
    detect,
    expand_sources,
    iter_lines_spooled,
    load_format,
    read_head,
)
from ingest.handoff import Parcel, Recycler, clean_stale, forget, pack, unpack, with_spares
from ingest.lifeline import die_with_parent
from ingest.records import Chunk, Reject, SourceInfo, shift_chunk
from ingest.stores import (
    PullOptions,
    PullProgress,
    StoreError,
    is_store_source,
    open_pull,
    parse_source,
    pull_secrets,
    scrub,
    scrub_error,
)
from ingest.writer import DatasetWriter, SourceStats

__all__ = ["IngestResult", "SourceResult", "ingest_paths", "dataset_summary", "PARALLEL_MIN_BYTES"]

PARALLEL_MIN_BYTES = 16 * 1024 * 1024  # smaller inputs are decoded in process (compressed: a 16th)
RANGE_BYTES = 4 * 1024 * 1024  # the unit of work of a decoding process (bounds its memory)
RANGE_BYTES_ENV = "DCR_INGEST_RANGE_MB"  # override (tests use small ranges to kill mid-write)
SPARES_A_TASK = 1  # a reusable hand-off file a task (handoff.Recycler): two held as much more /dev/shm again
WORKERS_ENV = "DCR_INGEST_WORKERS"  # override the number of decoding processes (tests ask for several)
_QUICK_BYTES = 1024 * 1024

Progress = Callable[[int, int, str], None]  # (bytes done, bytes total, current path)


@dataclass(frozen=True)
class SourceResult:
    path: str
    source_id: str | None
    format: str | None
    compression: str | None
    bytes: int
    spans: int
    logs: int
    rejected: int
    duplicates: int
    skipped: (
        str | None
    )  # why nothing was read ("already ingested", "unknown format", "empty", "unreadable: …")
    problem: str | None = None  # why reading stopped early (truncated compression, a reader's failure)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class IngestResult:
    """What one ingest added to a dataset."""

    dataset: str
    spans: int
    logs: int
    rejected: int
    duplicates: int
    bytes: int
    seconds: float
    rejects_path: str | None
    sources: tuple[SourceResult, ...]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sources"] = [s.to_dict() for s in self.sources]
        return d


# ---- identity -----------------------------------------------------------------------------


def _quick_id(path: Path, size: int) -> str:
    """sha256 of size + first and last MiB: differs whenever the contents differ in those."""
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(_QUICK_BYTES))
        if size > _QUICK_BYTES:
            fh.seek(max(_QUICK_BYTES, size - _QUICK_BYTES))
            h.update(fh.read(_QUICK_BYTES))
    return h.hexdigest()


def _sha256(path: Path) -> str:
    """Read into one reused buffer: a fresh 4 MiB bytes object a read would be mapped and unmapped
    each time (see `_tune_malloc`), page-faulting its way through every GB again."""
    h = hashlib.sha256()
    buf = bytearray(1024 * 1024)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


class _Hasher(threading.Thread):
    """sha256 of a file in a thread (hashlib releases the GIL), alongside the decoding."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.digest = ""

    def run(self) -> None:
        self.digest = _sha256(self.path)

    def result(self) -> str:
        self.join()
        return self.digest


def _spool_stdin(folder: Path) -> Path:
    path = folder / f"stdin-{os.getpid()}"
    with open(path, "wb") as out:
        src = sys.stdin.buffer
        while block := src.read(4 * 1024 * 1024):
            out.write(block)
    return path


# ---- parallel OTLP JSON lines -------------------------------------------------------------


def _decode_range(path: str, start: int, end: int, source: SourceInfo) -> tuple[list[Parcel], int]:
    """In a worker: the lines that start in [start, end) of `path`, numbered from 1; a parcel
    a piece of a line over otlp_ranges.HUGE_LINE_BYTES, so memory stays that of a range."""
    return otlp_ranges.decode_range(path, start, end, source, pack, unpack)


def _decode_block(data: bytes, source: SourceInfo) -> tuple[list[Parcel], int]:
    """In a worker: a compressed input's block of whole lines (a huge line in pieces)."""
    return otlp_ranges.decode_block(data, source, pack, unpack)


def _decode_spooled(path: str, end: int, source: SourceInfo) -> tuple[list[Parcel], int]:
    """In a worker: a compressed input's huge line, spooled to a file of its own by the driver
    (formats.iter_lines_spooled), decoded in pieces as an uncompressed file's is; the file goes."""
    try:
        return otlp_ranges.decode_range(path, 0, end, source, pack, unpack)
    finally:
        os.unlink(path)


def _decode_proto_range(path: str, start: int, end: int, source: SourceInfo) -> tuple[list[Parcel], int]:
    """In a worker: the protobuf messages that start in [start, end) (offsets are absolute)."""
    return [pack(otlp_proto.read_range(path, start, end, source))], 0


def _tune_malloc(mmap_threshold: int = 1 << 20, trim_threshold: int = 8 << 20) -> None:
    """Fixed glibc mmap/trim thresholds: big short-lived buffers go back to the OS at once
    instead of growing the heap (the dynamic threshold otherwise keeps more resident: the figure is
    in docs/benchmarks.md, "Ingest memory")."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, mmap_threshold)
    libc.mallopt(m_trim_threshold, trim_threshold)


def _arrow_pool() -> None:
    """Arrow buffers from jemalloc when pyarrow has it and the user chose no pool
    (ARROW_DEFAULT_MEMORY_POOL): the ingest frees many buffers a second, and jemalloc gives them
    back to the system where mimalloc (the default) keeps them: a lower peak at the same speed
    (docs/benchmarks.md, "Ingest memory")."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, AttributeError):
        pass


def _worker_init(parent_pid: int | None) -> None:
    """A decoding process ends with the ingest that started it (`parent_pid`: that ingest when it
    forked or spawned the process itself), however the ingest ends.

    It reuses the same memory for every range: its buffers (the range's bytes, row lists, joined
    texts) stay in the heap instead of being mapped and unmapped each time, a page fault a page
    (what that cost: docs/benchmarks.md, "Ingest memory"). Its size stays that of one range."""
    die_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group: the ingest decides what stops (it ends the workers);
    # a worker stopped by it mid-task printed a traceback, and could leave the pool's queues locked
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _tune_malloc(mmap_threshold=16 << 20, trim_threshold=64 << 20)
    _arrow_pool()


def _pool(workers: int) -> cf.ProcessPoolExecutor:
    """Worker processes, started now (before this ingest starts any thread of its own).

    fork when this process has a single thread (fast, nothing to import); forkserver when it
    has more (an MCP server, say), where forking a threaded process could deadlock the child."""
    if not sys.platform.startswith("linux"):
        method = "spawn"
    else:
        method = "fork" if threading.active_count() == 1 else "forkserver"
    parent = None if method == "forkserver" else os.getpid()  # a fork server's children are its own
    pool = cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_worker_init,
        initargs=(parent,),
    )
    # Ctrl-C while forking interrupted Python's own at-fork handlers ("Exception ignored in
    # _releaseLock", a traceback): held back until the processes are up, then raised as usual
    blocking = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask")
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if blocking else None
    try:
        pool.submit(os.getpid).result()  # launches the processes
    finally:
        if held is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
    return pool


def _ordered(
    pool: cf.ProcessPoolExecutor,
    tasks: Iterator[tuple],
    window: int,
    budget: int,
    recycler: Recycler | None = None,
) -> Iterator[tuple[list[Parcel], int, int]]:
    """Results of `tasks` ((fn, nbytes, *args)) in order, at most `window` of them and about
    `budget` input bytes in flight (always one): a compressed input's blocks hold whole lines,
    so a block can be a 30 MB line, and eight of them in flight were 240 MB. Each task is given
    up to SPARES_A_TASK of the `recycler`'s files to write its batches over. The hand-off files
    of results nobody will read (the caller stopped early) are removed as those tasks end."""
    pending: deque[tuple[cf.Future, int]] = deque()
    inflight = 0
    try:
        for fn, nbytes, *args in tasks:
            pending.append((_submit(pool, recycler, fn, args), nbytes))
            inflight += nbytes
            while pending and (len(pending) >= window or inflight > budget):
                fut, nb = pending.popleft()
                inflight -= nb
                yield (*fut.result(), nb)
        while pending:
            fut, nb = pending.popleft()
            yield (*fut.result(), nb)
    except Exception:
        # the input broke off (a cut .gz or .zst): what was read before the break is in the tasks
        # already submitted; their records land, then the caller hears of the break
        while pending:
            fut, nb = pending.popleft()
            yield (*fut.result(), nb)
        raise
    finally:
        for fut, _ in pending:
            fut.cancel()
            fut.add_done_callback(_forget_result)


def _submit(pool: cf.ProcessPoolExecutor, recycler: Recycler | None, fn: Callable, args: list) -> cf.Future:
    if recycler is None:
        return pool.submit(fn, *args)
    spares = recycler.take(SPARES_A_TASK)
    try:
        fut = pool.submit(with_spares, spares, fn, *args)
    except BaseException:
        forget([Parcel(None, None, spare=list(spares))])
        raise
    # a task that fails removes the files it was given itself, unless it never ran or its process died
    fut.add_done_callback(functools.partial(_spares_back_if_failed, spares))
    return fut


def _spares_back_if_failed(spares: tuple[str, ...], fut: cf.Future) -> None:
    if fut.cancelled() or fut.exception() is not None:
        forget([Parcel(None, None, spare=list(spares))])


def _forget_result(fut: cf.Future) -> None:
    if not fut.cancelled() and fut.exception() is None:
        forget(fut.result()[0])


def _range_bytes() -> int:
    env = os.environ.get(RANGE_BYTES_ENV)
    return max(64 * 1024, int(float(env) * 1024 * 1024)) if env else RANGE_BYTES


def _parallel_chunks(
    pool: cf.ProcessPoolExecutor, workers: int, inp: _Opened, source: SourceInfo, fmt: str, spool: Path
) -> Iterator[tuple[Chunk, int]]:
    step = _range_bytes()
    if fmt == "otlp_proto":
        path = str(inp.fs_path)
        tasks: Iterator[tuple] = (
            (_decode_proto_range, e - s, path, s, e, source)
            for s, e in otlp_proto.message_ranges(path, inp.size, step)
        )
    elif inp.compression is None:
        size = inp.size
        path = str(inp.fs_path)
        tasks = (
            (_decode_range, min(step, size - s), path, s, min(s + step, size), source)
            for s in range(0, size, step)
        )
    else:
        # a line over HUGE_LINE_BYTES goes to a file in `spool` as it is decompressed: in a block,
        # a 30 MB line was pickled whole to a worker (hugebatch.zst peaked at ~575 MB)
        tasks = (
            (_decode_spooled, step, str(b), min(step, otlp_ranges.HUGE_LINE_BYTES), source)
            if isinstance(b, Path)
            else (_decode_block, len(b), b, source)
            for b in iter_lines_spooled(inp.stream, step, spool, otlp_ranges.HUGE_LINE_BYTES)
        )
    lines = 0
    window = 4 * workers
    # a file a task in flight: 16 reused no more than 8 did on longstrings (229 of 256 batches)
    recycler = Recycler(keep=window)
    try:
        for parcels, nlines, nbytes in _ordered(pool, tasks, window, 4 * workers * step, recycler):
            for i, p in enumerate(parcels):  # a chunk a piece of a huge line
                try:
                    chunk = unpack(p, recycler)
                except BaseException:
                    forget(parcels[i + 1 :])
                    raise
                try:
                    yield shift_chunk(chunk, lines), nbytes if i == 0 else 0
                except GeneratorExit:  # the caller stopped: nobody will unpack the rest
                    forget(parcels[i + 1 :])
                    raise
            lines += nlines
    finally:
        recycler.close()


# ---- one source ---------------------------------------------------------------------------


@dataclass
class _Opened:
    fs_path: Path
    size: int
    stream: BinaryIO
    head: bytes
    compression: str | None


def _open(fs_path: Path, size: int) -> _Opened:
    raw = open(fs_path, "rb")
    stream, compression = decompressed(raw)
    head, stream = read_head(stream, HEAD_BYTES)
    return _Opened(fs_path, size, stream, head, compression)


def _ends_cleanly(stream: BinaryIO) -> bool:
    """A decompressed stream that gave nothing: True when that is its whole content (an empty
    .gz or .zst is valid), False when reading it breaks (corrupt or cut: it raises again)."""
    try:
        return stream.read(1) == b""
    except CORRUPT_ERRORS:
        return False


@contextlib.contextmanager
def _writing(writer: DatasetWriter) -> Iterator[None]:
    """A failure inside is the dataset's (DatasetWriteFailed: a full disk, a folder gone), not a
    source's: the except clauses around a reader take any other exception for the reader's, and
    a source recorded with part of its rows would be skipped as already ingested next time."""
    try:
        yield
    except PackageError:
        raise
    except Exception as exc:
        why = (
            exc.strerror
            if isinstance(exc, OSError) and exc.strerror
            else f"{type(exc).__name__}: {_one_line(exc)}"
        )
        raise DatasetWriteFailed(
            f"could not write dataset {writer.name!r} ({writer.path}): {why}; "
            "nothing of this ingest was kept: run it again once that is fixed"
        ) from exc


class _Run:
    """State of one `ingest_paths` call."""

    def __init__(self, writer: DatasetWriter, progress: Progress | None, workers: int, total: int) -> None:
        self.writer = writer
        self.progress = progress
        self.workers = workers
        self.total = total
        self.done = 0
        self.results: list[SourceResult] = []
        self.usable = 0
        self.bytes = 0
        self._pool: cf.ProcessPoolExecutor | None = None
        self._quick: dict[str, tuple[str, _Hasher | str]] = {}  # quick id -> (path, sha or hasher)
        self._known = writer.known_sha256()
        self._known_quick = {s.get("quick_id"): s for s in writer.manifest["sources"] if s.get("quick_id")}

    def pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = _pool(self.workers)
        return self._pool

    def close(self, abandon: bool = False) -> None:
        """Shut the worker processes down; `abandon`: at once (their results will not be read),
        without waiting for a task in progress (a 30 MB line can take a second)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not abandon:
            pool.shutdown(cancel_futures=True)
            return
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(5)

    def _source_id(self, quick: str) -> str:
        """Provenance id: from the content's quick id, made unique within the dataset."""
        taken = {s["source_id"] for s in self.writer.manifest["sources"]} | {
            s.source_id for s in self.writer.sources
        }
        base = f"src-{quick[:16]}"
        sid, n = base, 1
        while sid in taken:
            n += 1
            sid = f"{base}-{n}"
        return sid

    def _tick(self, nbytes: int, path: str) -> None:
        self.done += nbytes
        if self.progress is not None:
            self.progress(self.done, self.total, path)

    def _skip(self, inp: InputFile, size: int, why: str, fmt: str | None = None) -> None:
        self.results.append(SourceResult(inp.path, None, fmt, None, size, 0, 0, 0, 0, why))
        self._tick(size, inp.path)

    def ingest(self, inp: InputFile) -> None:
        if inp.problem is not None:  # a folder the walk could not read
            self._skip(inp, 0, f"unreadable: {inp.problem}")
            return
        fs_path = inp.fs_path if inp.fs_path is not None else _spool_stdin(self.writer.staging)
        try:
            size = fs_path.stat().st_size
            if size == 0:
                self._skip(inp, 0, "empty")
                return
            quick = _quick_id(fs_path, size)
        except OSError as exc:  # permissions, a file gone since the walk: this source only
            self._skip(inp, 0, f"unreadable: {exc.strerror or type(exc).__name__}")
            return
        hasher: _Hasher | str
        if quick in self._known_quick or quick in self._quick:
            hasher = _sha256(fs_path)
            if hasher in self._known or any(_digest(h) == hasher for _, h in self._quick.values()):
                self._skip(inp, size, "already ingested")
                self.usable += 1
                return
        else:
            if size >= PARALLEL_MIN_BYTES // 16 and self.workers > 1:
                self.pool()  # fork before the hashing thread exists
            hasher = _Hasher(fs_path)
            hasher.start()
        self._quick[quick] = (inp.path, hasher)
        opened = _open(fs_path, size)
        try:
            self._read(inp, opened, quick, hasher)
        finally:
            opened.stream.close()

    def _read(self, inp: InputFile, opened: _Opened, quick: str, hasher: _Hasher | str) -> None:
        fmt = detect(opened.head)
        if fmt is None:
            if not opened.head and opened.compression is not None and not _ends_cleanly(opened.stream):
                with _writing(self.writer):
                    self.writer.add_orphan_rejects([Reject(inp.path, 0, _CORRUPT, b"", "byte")], quick)
                self._skip(inp, opened.size, "unreadable")
                return
            empty = not opened.head.strip()
            if quick not in self.writer.unrecognised:  # rejected once is enough
                reason = "empty input" if empty else _UNKNOWN
                with _writing(self.writer):
                    self.writer.add_orphan_rejects([Reject(inp.path, 0, reason, opened.head, "byte")], quick)
            self._skip(inp, opened.size, "empty" if empty else "unknown format")
            return
        source = SourceInfo(source_id=self._source_id(quick), path=inp.path)
        stats = self.writer.begin_source(
            SourceStats(
                source_id=source.source_id,
                path=inp.path,
                size=opened.size,
                sha256="",
                format=fmt.name,
                compression=opened.compression,
                quick_id=quick,
            )
        )
        big = opened.size >= (PARALLEL_MIN_BYTES if opened.compression is None else PARALLEL_MIN_BYTES // 16)
        parallel = (
            big
            and self.workers > 1
            and (
                (fmt.name == "otlp_json" and otlp_json.is_line_mode(opened.head))
                or (fmt.name == "otlp_proto" and opened.compression is None)
            )
        )
        problem: str | None = None
        try:
            if parallel:
                for chunk, nbytes in _parallel_chunks(
                    self.pool(), self.workers, opened, source, fmt.name, self.writer.staging
                ):
                    self._add(chunk, stats)
                    if opened.compression is None:
                        self._tick(nbytes, inp.path)
            else:
                module = load_format(fmt)
                assert module is not None  # detect() chose fmt by its module's sniff
                if big and self.workers > 1 and hasattr(module, "read_parallel"):
                    # the format cuts its input itself and decodes on our worker processes (which
                    # read a whole OTLP/JSON document's elements from the file, when uncompressed)
                    file = module is otlp_json and opened.compression is None
                    extra = {"path": str(opened.fs_path)} if file else {}
                    chunks = module.read_parallel(
                        opened.stream, source, self.pool(), window=2 * self.workers, **extra
                    )
                else:
                    chunks = module.read(opened.stream, source)
                for chunk in chunks:
                    self._add(chunk, stats)
        except DatasetWriteFailed:
            raise
        except CORRUPT_ERRORS as exc:
            problem = f"{_CORRUPT}: {_one_line(exc)}"
            with _writing(self.writer):
                self.writer.add_rejects([Reject(inp.path, -1, problem, b"", "byte")], stats)
        except Exception as exc:  # a reader's bug must not cost the user the rest of the ingest
            if isinstance(exc, DatasetLocked | NoInput):
                raise
            problem = f"{_READER_FAILED}: {type(exc).__name__}: {_one_line(exc)}"
            with _writing(self.writer):
                self.writer.add_rejects([Reject(inp.path, -1, problem, b"", "byte")], stats)
        if opened.compression is not None or not parallel:
            self._tick(opened.size, inp.path)
        stats.sha256 = _digest(hasher)
        self.usable += 1
        self.bytes += opened.size
        self.results.append(
            SourceResult(
                inp.path,
                stats.source_id,
                fmt.name,
                opened.compression,
                opened.size,
                stats.spans,
                stats.logs,
                stats.rejected,
                stats.duplicates,
                None,
                problem,
            )
        )

    def _add(self, chunk: Chunk, stats: SourceStats) -> None:
        with _writing(self.writer):
            self.writer.add(chunk, stats)

    def pull(self, text: str, opts: PullOptions, progress: PullProgress | None) -> None:
        """One store source: pulled through the writer like a file's chunks."""
        src = parse_source(text)
        secrets = pull_secrets(src, opts)
        try:
            puller = open_pull(src, opts, progress)
        except PackageError as exc:
            raise scrub_error(exc, secrets) from None
        quick = hashlib.sha256(
            repr((src.public, opts.start_ns, opts.end_ns, opts.services, opts.trace_ids, opts.query)).encode()
        ).hexdigest()
        source = SourceInfo(source_id=self._source_id(quick), path=src.public)
        stats = self.writer.begin_source(
            SourceStats(
                source_id=source.source_id,
                path=src.public,
                size=0,
                sha256="",  # a store has no content identity: pulling again is new data, de-duplicated
                format=puller.format,
                compression=None,
            )
        )
        try:
            for chunk in puller.chunks(source):
                self._add(chunk, stats)
        except PackageError as exc:  # every error a pull raises is scrubbed of the pull's secrets
            raise scrub_error(exc, secrets) from None
        except Exception as exc:  # a store's client failing in a way the pull did not word
            raise StoreError(
                scrub(f"{src.public}: the pull failed: {type(exc).__name__}: {_one_line(exc)}", secrets)
            ) from None
        stats.size = puller.bytes
        stats.store = puller.manifest()
        self.bytes += puller.bytes
        found = stats.spans + stats.logs + stats.rejected + stats.duplicates
        if not found:
            self.writer.sources.remove(stats)  # nothing to record
        else:
            self.usable += 1
        problem = "; ".join(scrub(p, secrets) for p in puller.problems) or None
        self.results.append(
            SourceResult(
                src.public,
                stats.source_id if found else None,
                puller.format,
                None,
                puller.bytes,
                stats.spans,
                stats.logs,
                stats.rejected,
                stats.duplicates,
                None if found else _nothing_in(opts),
                problem,
            )
        )


def _nothing_in(opts: PullOptions) -> str:
    from datetime import UTC, datetime

    def iso(ns: int | None) -> str:
        if ns is None:
            return "?"
        return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    what = f"nothing between {iso(opts.start_ns)} and {iso(opts.end_ns)}"
    if opts.trace_ids:
        what = f"no trace {', '.join(opts.trace_ids)}"
    if opts.services:
        what += f" for {', '.join(opts.services)}"
    return what


_UNKNOWN = "unknown format: not OTLP JSON or protobuf, Jaeger JSON or Zipkin JSON"
_CORRUPT = "the rest of this input is unreadable (truncated or corrupt compression?)"
_READER_FAILED = "the reader failed here; the records before this point were kept (please report it)"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def _digest(h: _Hasher | str) -> str:
    return h if isinstance(h, str) else h.result()


def _total_size(inputs: list[InputFile]) -> int:
    total = 0
    for f in inputs:
        if f.fs_path is not None:
            try:
                total += f.fs_path.stat().st_size
            except OSError:
                pass
    return total


def _default_workers() -> int:
    env = os.environ.get(WORKERS_ENV, "").strip()
    return max(1, int(env)) if env.isdigit() else min(os.cpu_count() or 1, 4)


def ingest_paths(
    paths: list[str],
    dataset: str = "default",
    progress: Progress | None = None,
    *,
    workers: int | None = None,
    lock_timeout_s: float = 600.0,
    on_wait: Callable[[str], None] | None = None,
    pull: PullOptions | None = None,
    pull_progress: PullProgress | None = None,
) -> IngestResult:
    """Ingest files, folders, globs, "-" and store sources into `dataset`; what this run added.

    A store source (clickhouse://…, chdb://…, jaeger+http://…, tempo+http://…) is pulled with
    `pull` (the range, services, query and limits; `ingest/stores/`), its progress in records
    through `pull_progress`.

    Raises NoInput (nothing usable: missing path, unknown format, empty input, a pull that found
    nothing), StoreError (a store that could not be pulled), DatasetLocked (another ingest kept
    the dataset longer than `lock_timeout_s`), BadDatasetName. Bad records are rejects, never errors.
    """
    t0 = time.monotonic()
    validate_name(dataset)
    stores = [p for p in paths if is_store_source(p)]
    files = [p for p in paths if not is_store_source(p)]
    opts = pull if pull is not None else PullOptions()
    for text in stores:  # bad URLs and missing options fail before the dataset is touched
        opts.check(parse_source(text).kind)
    _tune_malloc()
    _arrow_pool()
    clean_stale()
    inputs = expand_sources(files) if files or not stores else []
    workers = workers or _default_workers()
    with DatasetWriter(dataset, lock_timeout_s=lock_timeout_s, on_wait=on_wait) as writer:
        run = _Run(writer, progress, workers, _total_size(inputs))
        try:
            for inp in inputs:
                run.ingest(inp)
        except BaseException:  # Ctrl-C, a failed write: the workers' tasks will not be read
            run.close(abandon=True)
            raise
        run.close()
        for text in stores:
            run.pull(text, opts, pull_progress)
        if not run.usable:
            reasons = sorted({r.skipped or "" for r in run.results})
            shown = [*files, *(parse_source(t).public for t in stores)]  # never a credential
            named = ", ".join("standard input (-)" if p == "-" else p for p in shown)
            if stores and not files:
                fix = "check the range (--start/--end), the services and the store's tables or query"
            elif all(r.startswith("unreadable:") for r in reasons):
                fix = "check the files' permissions (the user running dcr must be able to read them)"
            else:
                fix = "give OTLP JSON/protobuf, Jaeger or Zipkin files"
            raise NoInput(f"nothing usable in {named} ({', '.join(reasons)}): {fix}")
        with _writing(writer):
            writer.commit(run.bytes)
        rejected = sum(r.rejected for r in run.results) + writer.orphan_rejects
        rejects_path = str(writer.path / writer.rejects_rel) if rejected else None
    return IngestResult(
        dataset=dataset,
        spans=sum(r.spans for r in run.results),
        logs=sum(r.logs for r in run.results),
        rejected=rejected,
        duplicates=sum(r.duplicates for r in run.results),
        bytes=run.bytes,
        seconds=round(time.monotonic() - t0, 3),
        rejects_path=rejects_path,
        sources=tuple(run.results),
    )


def _store_summary(store: dict[str, Any]) -> dict[str, Any]:
    """A pulled source's store record, without the long SQL."""
    return {k: v for k, v in store.items() if k not in ("queries", "parameters")}


def dataset_summary(name: str) -> dict[str, Any]:
    """Totals, time range, services and sources of a dataset (its manifest, summarised)."""
    h = open_handle(name)
    m = h.manifest
    return {
        "dataset": name,
        "path": str(h.path),
        "totals": dict(m.get("totals", {})),
        **{k: m.get("totals", {}).get(k, 0) for k in ("spans", "logs", "rejected")},
        "time_range": dict(m.get("time_range", {})),
        "services": list(m.get("services", [])),
        "sources": [
            {
                k: s.get(k)
                for k in (
                    "source_id",
                    "path",
                    "format",
                    "compression",
                    "size",
                    "spans",
                    "logs",
                    "rejected",
                    "duplicates",
                    "rejects_file",
                    "ingested_at",
                )
            }
            | ({"store": _store_summary(s["store"])} if s.get("store") else {})
            for s in m.get("sources", [])
        ],
        "files": {k: len(v) for k, v in m.get("files", {}).items()},
        "created_at": m.get("created_at"),
        "updated_at": m.get("updated_at"),
        "ingests": len(m.get("ingests", [])),
    }
