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
import pyarrow.compute as pc

# `import … as`, not `from ingest import`: mypy does not find a submodule by the latter
try:
    import ingest._gather as _gather_module
except ImportError:  # no compiler where it was installed: Arrow's take does the same
    _gather_module = None  # type: ignore[assignment]

__all__ = ["texts", "numbers", "int64s", "int64", "bools", "to_numpy", "Rows", "take"]

# the native gather of text columns (ingest/_gather.c), or None for Arrow's take (tests set this to
# None to check that both give the same columns)
_GATHER = _gather_module
_GATHERED = (pa.string(), pa.binary())  # the types whose offsets are int32, as the C code reads them


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


class Rows:
    """Rows of chunked columns, in an order (row numbers from 0, int64 or uint64, no nulls, each in
    range), to `take` from each column of a table: where each row is in the chunks is found once for
    all the columns whose chunks have the same lengths (a table's, made from its batches)."""

    def __init__(self, order: pa.Array) -> None:
        self.order = order
        self._where: dict[tuple[int, ...], np.ndarray] = {}

    def where(self, lengths: tuple[int, ...]) -> np.ndarray:
        """chunk << 32 | row within the chunk, a row (for the native gather)."""
        found = self._where.get(lengths)
        if found is None:
            order = self.order
            index = np.frombuffer(order.buffers()[1], np.dtype(str(order.type)), len(order), order.offset * 8)
            found = np.empty(len(order), np.uint64)
            _GATHER.locate(np.array(lengths, np.int64), index, found)
            self._where[lengths] = found
        return found


def take(column: pa.ChunkedArray, rows: Rows) -> pa.Array | pa.ChunkedArray:
    """The rows of `column`: what `pc.take(column, rows.order)` gives. A string or binary column is
    gathered from its chunks by the native module: Arrow's take first concatenates a chunked text
    column (every chunk copied into one array, again for each take from it), the gather copies each
    value once."""
    order = rows.order
    if (
        _GATHER is None
        or column.type not in _GATHERED
        or not column.num_chunks
        or order.type not in (pa.int64(), pa.uint64())
        or order.null_count
    ):
        return pc.take(column, order, boundscheck=False)
    chunks = tuple((*c.buffers(), c.offset, len(c)) for c in column.chunks)
    where = rows.where(tuple(len(c) for c in column.chunks))
    try:
        validity, offsets, data, nulls = _GATHER.take_texts(chunks, where, pa.allocate_buffer)
    except OverflowError:  # over 2 GiB of text: Arrow's take says what it does with that
        return pc.take(column, order, boundscheck=False)
    return pa.Array.from_buffers(column.type, len(order), [validity, offsets, data], null_count=nulls)
