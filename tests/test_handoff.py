"""Hand-off files reused: a worker writes over a file the writer let go of, never one still mapped."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest import handoff
from ingest.handoff import Parcel, Recycler, pack, unpack, with_spares
from ingest.records import Chunk
from tests.test_ingest_ranges import group as scope_group
from tests.test_ingest_ranges import logs_line, many, spans_line

SHM = Path("/dev/shm")
pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="no /dev/shm: batches are pickled")


def _batch(n: int, tag: str) -> pa.RecordBatch:
    return pa.record_batch(
        {"i": pa.array(range(n), pa.int64()), "s": [f"{tag}-{k}" * (k % 5) for k in range(n)]}
    )


def _task(*batches: pa.RecordBatch) -> tuple[list[Parcel], int]:
    return [pack(Chunk(spans=b)) for b in batches], len(batches)


def test_a_file_comes_back_only_when_nothing_refers_to_its_mapping():
    recycler = Recycler(keep=4)
    first = _batch(5000, "a")
    parcel = pack(Chunk(spans=first))
    path = parcel.spans
    assert isinstance(path, str)
    back = unpack(parcel, recycler)
    assert back.spans is not None and back.spans.equals(first)
    kept = back.spans.column("s").slice(100, 3)  # a slice still reads the mapping
    del back
    gc.collect()
    assert recycler.take(1) == () and Path(path).exists()
    assert kept.to_pylist() == first.column("s").slice(100, 3).to_pylist()
    del kept
    gc.collect()
    assert recycler.take(1) == (path,) and Path(path).exists()
    recycler.close()
    os.unlink(path)


@pytest.mark.parametrize("sizes", [(2000, 9000), (9000, 2000)], ids=["grows", "shrinks"])
def test_a_task_writes_over_its_spare_file(sizes: tuple[int, int]):
    recycler = Recycler(keep=4)
    old, new = _batch(sizes[0], "old"), _batch(sizes[1], "new")
    path = pack(Chunk(spans=old)).spans
    assert isinstance(path, str)
    inode = os.stat(path).st_ino
    recycler.release(path)
    parcels, n = with_spares(recycler.take(2), _task, new)
    assert n == 1 and [p.spans for p in parcels] == [path]  # the same file, written over
    assert os.stat(path).st_ino == inode
    back = unpack(parcels[0], recycler)
    assert back.spans is not None and back.spans.equals(new)  # cut to the new batch's length
    del back
    gc.collect()
    recycler.close()  # the file was waiting: removed
    assert not Path(path).exists()


def test_unused_spares_come_back_and_a_failed_task_removes_its_own():
    recycler = Recycler(keep=1)
    paths = [str(pack(Chunk(spans=_batch(100, str(k)))).spans) for k in range(3)]
    assert all(Path(p).exists() for p in paths)
    parcels, _ = with_spares(tuple(paths[:2]), _task, _batch(10, "x"))  # uses one of two
    assert len(parcels) == 2 and parcels[-1].spans is None and len(parcels[-1].spare) == 1
    spare = parcels[-1].spare[0]
    chunk = unpack(parcels[-1], recycler)
    assert (chunk.spans, chunk.logs, chunk.rejects) == (None, None, [])
    assert recycler.take(1) == (spare,)
    recycler.release(spare)
    recycler.release(paths[2])  # over `keep`: removed when the recycler next sorts its files
    assert recycler.take(0) == () and not Path(paths[2]).exists() and Path(spare).exists()
    written: list[str] = []

    def boom() -> tuple[list[Parcel], int]:
        parcel = pack(Chunk(spans=_batch(10, "y")))  # written over the spare, then a fresh file
        written.extend(str(x) for x in (parcel.spans, pack(Chunk(spans=_batch(10, "z"))).spans))
        raise RuntimeError("decoding failed")

    with pytest.raises(RuntimeError):
        with_spares(recycler.take(1), boom)
    assert written[0] == spare and not [p for p in written if Path(p).exists()]
    assert handoff._spare == [] and handoff._written is None
    recycler.close()
    used = parcels[0].spans
    assert isinstance(used, str)
    back = unpack(parcels[0], recycler)
    del back
    gc.collect()  # it comes back after close: removed
    assert not Path(used).exists()


def test_a_parallel_ingest_reuses_files_and_leaves_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import ingest
    from ingest import pipeline
    from ingest.dataset import open_handle

    lines = [spans_line(("svc", [scope_group("s", many(i * 100, 40))])) for i in range(60)]
    lines += [logs_line(i * 50, 30) for i in range(20)]
    (tmp_path / "dump.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 1024)
    monkeypatch.setattr(pipeline, "_range_bytes", lambda: 16 * 1024)  # dozens of tasks
    monkeypatch.setenv("DCR_INGEST_PART_MB", "0.1")  # the writer lets go of its batches every few tasks
    given: list[int] = []
    take = Recycler.take

    def spy(self: Recycler, n: int) -> tuple[str, ...]:
        got = take(self, n)
        given.append(len(got))
        return got

    monkeypatch.setattr(Recycler, "take", spy)
    r = ingest.ingest_paths([str(tmp_path / "dump.jsonl")], "reused", workers=2)
    assert (r.spans, r.logs, r.rejected) == (60 * 40, 20 * 30, 0)
    assert sum(given) > 10  # tasks wrote over files the writer had let go of
    assert not list(SHM.glob(f"dcr-ingest-{os.getpid()}-*"))
    ids = pa.concat_tables(pq.read_table(f, columns=["span_id"]) for f in open_handle("reused").span_files)
    assert ids.num_rows == 60 * 40 and len(set(ids.column("span_id").to_pylist())) == 60 * 40


def test_a_mapped_batch_holds_no_file_descriptor():
    """The writer holds hundreds of mapped batches at once (a buffer of logs a few rows a range):
    a descriptor each ran an ingest out of them (EMFILE) and lost the rest of its input."""
    recycler = Recycler(keep=4)
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("no /proc/self/fd")
    before = len(list(fds.iterdir()))
    held = [unpack(pack(Chunk(spans=_batch(200, str(k)))), recycler) for k in range(50)]
    assert len(list(fds.iterdir())) - before < 5
    del held
    gc.collect()
    kept = recycler.take(50)
    assert len(kept) == 4  # all came back; `keep` of them stay, the rest are removed
    recycler.close()
    for path in kept:
        os.unlink(path)


def test_a_file_can_come_back_while_the_recycler_is_locked():
    """A finalizer runs inside whatever garbage collection an allocation starts, the recycler's
    own under its lock included: handing a file back must not wait for that lock."""
    import threading

    recycler = Recycler(keep=4)
    path = str(pack(Chunk(spans=_batch(10, "q"))).spans)
    done = threading.Event()

    def from_a_finalizer() -> None:
        with recycler._lock:  # as if a collection started inside take()
            recycler.release(path)
        done.set()

    threading.Thread(target=from_a_finalizer, daemon=True).start()
    assert done.wait(10), "release() waited for the lock its own thread holds"
    assert recycler.take(1) == (path,)
    recycler.close()
    os.unlink(path)


def test_files_of_results_nobody_reads_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An ingest that stops reading a source early (a write failure, a kill of the caller's
    loop): the tasks in flight end, and their hand-off files go with them."""
    from ingest import pipeline
    from ingest.pipeline import _Opened, _parallel_chunks, _pool
    from ingest.records import SourceInfo

    lines = [spans_line(("svc", [scope_group("s", many(i * 100, 40))])) for i in range(60)]
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setattr(pipeline, "_range_bytes", lambda: 16 * 1024)
    pool = _pool(2)
    workers = {str(pid) for pid in pool._processes}  # hand-off files are named by their writer's pid
    try:
        with open(dump, "rb") as fh:
            opened = _Opened(dump, dump.stat().st_size, fh, b"", None)
            chunks = _parallel_chunks(pool, 2, opened, SourceInfo("s", str(dump)), "otlp_json", tmp_path)
            first = [next(chunks) for _ in range(3)]
            chunks.close()
        assert all(c.spans is not None and c.spans.num_rows for c, _ in first)
    finally:
        pool.shutdown(wait=True)
    del first
    gc.collect()
    assert not [f for f in SHM.glob("dcr-ingest-*") if f.name.split("-")[3] in workers]
