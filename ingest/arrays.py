"""Arrow arrays from Python and numpy values, built from their buffers.

`pa.array()` of a list or a numpy array first asks whether it is a pandas object, and that
imports pandas: 0.16 s of a `dcr` start on this machine, in the main process and again in each
decoding worker, for a library the ingest never uses. The native tier's hot path builds its
arrays with these instead (tests/test_ingest_fastpath.py checks that an ingest through it does
not import pandas); the Python tiers, slower anyway, may use `pa.array()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate

import numpy as np
import pyarrow as pa

__all__ = ["texts", "numbers", "int64s", "int64", "bools", "to_numpy"]


def texts(values: Sequence[str | None]) -> pa.Array:
    """A string array of `values` (None: null)."""
    data = [b"" if v is None else v.encode() for v in values]
    n = len(data)
    offsets = np.fromiter(accumulate((len(d) for d in data), initial=0), np.int32, n + 1)
    validity = None
    if any(v is None for v in values):
        validity = pa.py_buffer(np.packbits([v is not None for v in values], bitorder="little"))
    return pa.Array.from_buffers(
        pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    )


def numbers(values: np.ndarray) -> pa.Array:
    """An array of a numpy array of numbers (no nulls), of the Arrow type of its dtype."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def int64s(values: np.ndarray) -> pa.Array:
    """An int64 array of a numpy array's values (no nulls)."""
    return numbers(np.asarray(values, np.int64))


def int64(value: int) -> pa.Scalar:
    """An int64 scalar (`pa.scalar()` asks about pandas too)."""
    return int64s(np.array([value], np.int64))[0]


def bools(values: np.ndarray) -> pa.Array:
    """A boolean array of a numpy array's truth values (no nulls)."""
    bits = np.packbits(np.asarray(values, bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def to_numpy(arr: pa.Array) -> np.ndarray:
    """The values of a numeric array without nulls, as a numpy view of its buffer (`to_numpy()`
    asks about pandas too)."""
    if arr.null_count:
        raise ValueError("to_numpy: an array with nulls")
    dtype = np.dtype(str(arr.type))
    return np.frombuffer(arr.buffers()[1], dtype, count=len(arr), offset=arr.offset * dtype.itemsize)
