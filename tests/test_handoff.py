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
    recycler.release(paths[2])  # over `keep`: removed at once
    assert not Path(paths[2]).exists() and Path(spare).exists()

    def boom() -> tuple[list[Parcel], int]:
        raise RuntimeError("decoding failed")

    with pytest.raises(RuntimeError):
        with_spares(recycler.take(1), boom)
    assert not Path(spare).exists() and handoff._spare == []
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
