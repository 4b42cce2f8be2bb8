"""ingest/arrays.py builds the arrays pa.array() would (without asking about pandas)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
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
