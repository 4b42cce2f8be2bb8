"""The span key set (ingest/spankeys.py): exact at every tier, bounded in memory, tidy on disk.

Budgets of a few hundred bytes make a table of a handful of slots and a Bloom filter of a few
words, so a few dozen keys go through every path: spills, merges, lookups on disk, false
positives of the filter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import ingest
from ingest import spankeys, writer
from ingest.spankeys import SpanKeys

U64 = np.uint64
NATIVE = spankeys._NATIVE


@pytest.fixture(autouse=True, params=["native", "numpy"])
def loops(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: with the native loops (ingest/_spankeys.c) and with the numpy ones."""
    if request.param == "numpy":
        monkeypatch.setattr(spankeys, "_NATIVE", None)
    elif NATIVE is None:
        if os.environ.get("CI") == "true":  # CI installs a compiler: the module must be there
            pytest.fail("ingest._spankeys is not built")
        pytest.skip("ingest._spankeys is not built (no compiler at install)")
    return request.param


def fp(*pairs: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprints (h1, h2) written out."""
    return np.array([a for a, _ in pairs], U64), np.array([b for _, b in pairs], U64)


@pytest.fixture
def small_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spankeys, "FANOUT", 3)
    monkeypatch.setattr(spankeys, "MERGE_CHUNK", 5)  # a merge takes many rounds
    monkeypatch.setattr(spankeys, "_FIRST_SLOTS", 16)  # the table grows a few times first


def test_every_answer_matches_a_python_set_through_spills_and_merges(small_merges):
    # h1 from 0..39 and h2 from 0..29: many keys share h1 and differ in h2, many repeat, within
    # a batch and across batches, table, runs and merged runs
    rng = np.random.default_rng(3)
    seen: set[tuple[int, int]] = set()
    with SpanKeys(memory_bytes=600) as keys:  # 20 slots, 10 keys a run, a filter of 32 words
        for _ in range(250):
            n = int(rng.integers(0, 40))
            h1, h2 = rng.integers(0, 40, n).astype(U64), rng.integers(0, 30, n).astype(U64)
            want = []
            for pair in zip(h1.tolist(), h2.tolist(), strict=True):
                want.append(pair not in seen)
                seen.add(pair)
            assert keys.add_fingerprints(h1, h2).tolist() == want
        assert len(keys) == len(seen)
        assert keys.stats["spills"] > 50 and keys.stats["merges"] > 10 and keys.runs <= 2 * 3
        assert keys.stats["on_disk"] > 0


def test_old_keys_come_back_as_duplicates_while_the_table_grows_and_the_filter_is_remade(small_merges):
    # full 64-bit keys, so the filter mostly says "new"; every batch brings back earlier keys
    rng = np.random.default_rng(5)
    old1, old2 = np.zeros(0, U64), np.zeros(0, U64)
    with SpanKeys(memory_bytes=16 * 1024) as keys:  # 481 slots: 240 keys a run
        for _ in range(60):
            n = int(rng.integers(1, 300))
            new1, new2 = rng.integers(0, 2**64, n, dtype=U64), rng.integers(0, 2**64, n, dtype=U64)
            pick = rng.integers(0, max(1, len(old1)), min(len(old1), 40))
            h1, h2 = np.concatenate([new1, old1[pick]]), np.concatenate([new2, old2[pick]])
            shuffle = rng.permutation(len(h1))
            want = np.concatenate([np.ones(n, bool), np.zeros(len(pick), bool)])[shuffle]
            assert (keys.add_fingerprints(h1[shuffle], h2[shuffle]) == want).all()
            old1, old2 = np.concatenate([old1, new1]), np.concatenate([old2, new2])
        assert len(keys) == len(old1) and keys.stats["merges"] > 0 and keys._table.slots == 481
        assert keys.stats["maybe"] < 2 * 40 * 60  # the filter let most new keys through


def test_equal_first_halves_are_different_keys_in_the_batch_the_table_and_a_run():
    with SpanKeys(memory_bytes=200) as keys:  # 4 slots, 2 keys a run
        assert keys.add_fingerprints(*fp((7, 1), (7, 2), (7, 1), (7, 3))).tolist() == [
            True,
            True,
            False,
            True,
        ]
        assert keys.runs >= 1  # (7, 1) and (7, 2) were written out
        assert keys.add_fingerprints(*fp((7, 4), (7, 2), (7, 3), (8, 1))).tolist() == [
            True,
            False,
            False,
            True,
        ]
        assert keys.add_fingerprints(*fp((7, 1), (7, 5), (7, 4))).tolist() == [False, True, False]
        assert len(keys) == 6


def test_the_first_copy_in_a_batch_is_the_one_kept():
    with SpanKeys() as keys:
        h1, h2 = fp((9, 9), (3, 3), (9, 9), (3, 3), (1, 1))
        assert keys.add_fingerprints(h1, h2).tolist() == [True, True, False, False, True]


def test_spilled_span_keys_find_every_duplicate(small_merges):
    # the writer's words, as a chunk brings them; old keys of the first and last chunks are
    # in a merged run and in the table
    rng = np.random.default_rng(7)
    chunks = [rng.integers(0, 2**63, size=(300, 6), dtype=U64) for _ in range(20)]
    with SpanKeys(memory_bytes=4096) as keys:
        for chunk in chunks:
            assert keys.add_new(chunk).all()
        assert len(keys) == 6000 and keys.stats["merges"] > 0
        again = np.concatenate(
            [chunks[0][:50], chunks[-1][-50:], rng.integers(0, 2**63, size=(10, 6), dtype=U64)]
        )
        assert keys.add_new(again).tolist() == [False] * 100 + [True] * 10
        assert not keys.add_new(again).any()


def test_memory_stays_at_the_budget_and_the_runs_few():
    rng = np.random.default_rng(1)
    with SpanKeys(memory_bytes=64 * 1024) as keys:
        for _ in range(100):
            assert keys.add_new(rng.integers(0, 2**64, size=(2000, 6), dtype=U64)).all()
        t = keys._table
        assert t.h1.nbytes + t.h2.nbytes + t.used.nbytes + keys._bloom.words.nbytes <= 64 * 1024
        assert len(keys) == 200_000 and keys.stats["spills"] > 100  # ~960 keys a run
        assert keys.runs < 2 * spankeys.FANOUT  # merged by level: at most FANOUT-1 a level


def test_run_files_are_removed_on_close_and_when_the_block_raises(tmp_path: Path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "keys"
    with SpanKeys(folder, memory_bytes=512) as keys:
        keys.add_new(rng.integers(0, 2**64, size=(100, 6), dtype=U64))
        assert len(list(folder.glob("run-*.keys"))) == keys.runs > 0
    assert not folder.exists()

    with pytest.raises(RuntimeError), SpanKeys(folder, memory_bytes=512) as keys:
        keys.add_new(rng.integers(0, 2**64, size=(100, 6), dtype=U64))
        assert folder.is_dir()
        raise RuntimeError("boom")
    assert not folder.exists()

    keys = SpanKeys(memory_bytes=512)  # no folder given: a temporary one, gone on close
    keys.add_new(rng.integers(0, 2**64, size=(100, 6), dtype=U64))
    own = keys._dir
    assert own is not None and own.is_dir()
    keys.close()
    assert not own.exists()


# ---- in the writer ------------------------------------------------------------------------


def _dump(path: Path, span_ids: list[int]) -> Path:
    spans = [
        {
            "traceId": f"{i % 7 + 1:032x}",
            "spanId": f"{i + 1:016x}",
            "name": "op",
            "startTimeUnixNano": "1",
            "endTimeUnixNano": "2",
        }
        for i in span_ids
    ]
    doc = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]}
    path.write_text(json.dumps(doc) + "\n")
    return path


@pytest.fixture
def spills(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A writer's key set of 629 bytes (21 slots, 10 keys a run) and the sizes of the runs it wrote."""
    monkeypatch.setenv(writer.KEYS_MEMORY_ENV, "0.0006")
    sizes: list[int] = []
    original = spankeys._write_run

    def spy(path, h1, h2, level):  # type: ignore[no-untyped-def]
        sizes.append(len(h1))
        return original(path, h1, h2, level)

    monkeypatch.setattr(spankeys, "_write_run", spy)
    return sizes


def test_an_ingest_with_spilled_keys_counts_duplicates_across_files_and_ingests(
    tmp_path: Path, spills, dcr_home
):
    a = _dump(tmp_path / "a.jsonl", list(range(0, 300)) + list(range(0, 40)))  # 40 copies in the file
    b = _dump(tmp_path / "b.jsonl", list(range(250, 400)))  # 50 spans of a
    r1 = ingest.ingest_paths([str(a)], "d")
    assert (r1.spans, r1.duplicates) == (300, 40)
    assert spills and max(spills) <= 10
    spills.clear()
    r2 = ingest.ingest_paths([str(b)], "d")  # the 300 keys of the dataset are loaded and spilled
    assert (r2.spans, r2.duplicates) == (100, 50)
    assert sum(spills) >= 300
    assert ingest.dataset_summary("d")["spans"] == 400
    assert not (dcr_home / "datasets" / "d" / ".staging").exists()


def test_an_interrupted_ingest_leaves_no_key_runs(
    tmp_path: Path, spills, dcr_home, monkeypatch: pytest.MonkeyPatch
):
    a = _dump(tmp_path / "a.jsonl", list(range(200)))

    def fail(self, batch):  # type: ignore[no-untyped-def]
        assert spills  # the keys of this chunk were written out before
        assert any((dcr_home / "datasets" / "d" / ".staging").glob("keys-*/run-*.keys"))
        raise KeyboardInterrupt  # what the pipeline does not take for a reader's problem

    monkeypatch.setattr(writer._PartBuffer, "add", fail)
    with pytest.raises(KeyboardInterrupt):
        ingest.ingest_paths([str(a)], "d")
    assert not (dcr_home / "datasets" / "d" / ".staging").exists()


def test_a_failed_spill_makes_every_later_answer_an_error(monkeypatch: pytest.MonkeyPatch):
    # the table was half rearranged: answering on would risk keeping a duplicate
    def full(*args):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spankeys, "_write_run", full)
    with SpanKeys(memory_bytes=200) as keys:
        with pytest.raises(OSError, match="No space left"):
            keys.add_fingerprints(*fp((1, 1), (2, 2), (3, 3)))
        with pytest.raises(OSError, match="the span key set failed earlier: .*No space left"):
            keys.add_fingerprints(*fp((4, 4)))
