"""ingest/arrays.py builds the arrays pa.array() would (without asking about pandas)."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ingest import arrays


@pytest.mark.parametrize("values", [[], ["a", "bé", ""], ["x", None, "", None], [None]])
def test_texts_equal_pa_array(values):
    got = arrays.texts(values)
    got.validate(full=True)
    assert got.equals(pa.array(values, pa.string()))


def test_numbers_bools_and_back():
    for dtype in (np.int32, np.int64, np.float64, np.uint64):
        values = np.array([3, 1, 2, 0], dtype)
        got = arrays.numbers(values)
        assert got.equals(pa.array(values)) and got.type == pa.from_numpy_dtype(np.dtype(dtype))
    assert arrays.int64s(np.array([1, 2], np.int32)).equals(pa.array([1, 2], pa.int64()))
    assert arrays.int64(7).equals(pa.scalar(7, pa.int64()))
    mask = np.array([True, False] * 9 + [True])
    assert arrays.bools(mask).equals(pa.array(mask))
    sliced = pa.array(np.arange(10, dtype=np.int64)).slice(3, 4)  # an offset into the buffer
    assert arrays.to_numpy(sliced).tolist() == [3, 4, 5, 6]
    with pytest.raises(ValueError):
        arrays.to_numpy(pa.array([1, None]))


def _gather_built() -> None:
    if arrays._GATHER is None:
        if os.environ.get("CI") == "true":  # CI installs a compiler: the module must be there
            pytest.fail("ingest._gather is not built")
        pytest.skip("ingest._gather is not built (no compiler at install)")


def _chunked(rng: np.random.Generator, typ: pa.DataType) -> pa.ChunkedArray:
    """A text column in chunks of every kind the writer's buffers have: empty ones, slices of a
    bigger array (an offset into its buffers), some with nulls and some without, empty and long values."""
    chunks = []
    for _ in range(int(rng.integers(1, 9))):
        n = int(rng.integers(0, 300))
        values = [
            None
            if rng.random() < 0.1
            else "é" * int(rng.choice([0, 1, 15, 16, 17, 31, 32, 33, 900])) + str(i)
            for i in range(n + 10)
        ]
        if rng.random() < 0.3:
            values = [v or "" for v in values]  # no validity bitmap at all
        whole = pa.array(values, pa.string()).cast(typ)
        start = int(rng.integers(0, 10))
        chunks.append(whole.slice(start, n))
    return pa.chunked_array(chunks, typ)


@pytest.mark.parametrize("typ", [pa.string(), pa.binary()])
def test_take_equals_arrow_take(typ):
    """The native gather gives Arrow's take, row for row and null for null, for orders that are
    sorts, halves of sorts (a slice of the order: an offset) and repeats, int64 and uint64."""
    _gather_built()
    rng = np.random.default_rng(11)
    for _ in range(60):
        col = _chunked(rng, typ)
        n = len(col)
        perm = rng.permutation(n)
        orders = [perm, np.sort(perm), rng.integers(0, max(n, 1), size=n if n else 0)]
        for order in orders:
            for dtype in (pa.int64(), pa.uint64()):
                whole = pa.array(order.astype(np.int64), dtype)
                for idx in (whole, whole.slice(len(whole) // 2), whole.slice(0, len(whole) // 3)):
                    rows = arrays.Rows(idx)  # one for both columns, chunked differently
                    for column in (col, pa.chunked_array([col.combine_chunks()], typ)):
                        got = arrays.take(column, rows)
                        got.validate(full=True)
                        want = pc.take(col, idx)
                        assert pa.chunked_array([got], typ).equals(want)
                        assert got.null_count == want.null_count


def test_take_falls_back_and_checks(monkeypatch: pytest.MonkeyPatch):
    """Other types, and no native module, go to Arrow's take; a row past the column is an error."""
    col = pa.chunked_array([pa.array([1, 2, None]), pa.array([4])])
    assert arrays.take(col, arrays.Rows(pa.array([3, 0, 2], pa.uint64()))).to_pylist() == [4, 1, None]
    texts = pa.chunked_array([pa.array(["a", None]), pa.array(["bc"])])
    monkeypatch.setattr(arrays, "_GATHER", None)
    assert arrays.take(texts, arrays.Rows(pa.array([2, 1, 0], pa.int64()))).to_pylist() == ["bc", None, "a"]
    monkeypatch.undo()
    _gather_built()
    assert arrays.take(texts, arrays.Rows(pa.array([2, 1, 0], pa.int64()))).to_pylist() == ["bc", None, "a"]
    with pytest.raises(IndexError):
        arrays.take(texts, arrays.Rows(pa.array([3], pa.int64())))
