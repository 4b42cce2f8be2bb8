"""The span key set's native loops (ingest/_spankeys.c) give what its numpy code gives
(tests/test_spankeys.py runs every test of the set with each)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ingest import spankeys

U64 = np.uint64
NATIVE = spankeys._NATIVE


def test_native_and_numpy_loops_agree(monkeypatch: pytest.MonkeyPatch):
    """The fingerprint, the filter's answers and words, and the table's answers are the same
    whichever loops compute them (keys of 6 words, as the writer makes them, and of 1 and 2)."""
    if NATIVE is None:
        if os.environ.get("CI") == "true":  # CI installs a compiler: the module must be there
            pytest.fail("ingest._spankeys is not built")
        pytest.skip("ingest._spankeys is not built (no compiler at install)")
    rng = np.random.default_rng(7)

    def both(fn):
        native = fn()
        monkeypatch.setattr(spankeys, "_NATIVE", None)
        try:
            return native, fn()
        finally:
            monkeypatch.setattr(spankeys, "_NATIVE", NATIVE)

    for k in (1, 2, 6):
        words = rng.integers(0, 2**64, size=(5000, k), dtype=U64)
        (a1, a2), (b1, b2) = both(lambda words=words: spankeys.fingerprint(words))
        assert np.array_equal(a1, b1) and np.array_equal(a2, b2)
    h1, h2 = spankeys.fingerprint(rng.integers(0, 2**64, size=(4000, 6), dtype=U64))

    def bloom():
        f = spankeys._Bloom(1024)
        f.reset(256)
        f.add(h2[:2000])
        f.add(h2[:10])  # again: the same bits
        return f.maybe(h2), f.words.copy()

    (m1, w1), (m2, w2) = both(bloom)
    assert np.array_equal(m1, m2) and np.array_equal(w1, w2)
    assert m1[:2000].all() and 0 < m1[2000:].sum() < 2000  # some false positives, not all

    def table():
        t = spankeys._Table(spankeys._SLOT_BYTES * 8192)
        t.put(h1[:2000], h2[:2000])
        q1, q2 = h1.copy(), h2.copy()
        q1[3000:], q2[3000:] = h1[:1000], h2[1000:2000]  # h1 of a key in the table, h2 of another
        return t.find(q1, q2), sorted(zip(t.h1[t.used].tolist(), t.h2[t.used].tolist(), strict=True))

    (f1, k1), (f2, k2) = both(table)
    assert np.array_equal(f1, f2) and k1 == k2
    assert f1[:2000].all() and not f1[2000:].any()


def test_the_native_loops_refuse_buffers_of_the_wrong_size_or_kind():
    if NATIVE is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ingest._spankeys is not built")
        pytest.skip("ingest._spankeys is not built (no compiler at install)")
    z64, z8 = np.zeros(8, U64), np.zeros(8, np.uint8)
    with pytest.raises(ValueError):  # q1 and q2 of different lengths
        NATIVE.table_find(z64, z64, z8, 8, np.zeros(2, U64), np.zeros(3, U64), np.zeros(2, bool))
    with pytest.raises(ValueError):  # an answer of another length
        NATIVE.table_find(z64, z64, z8, 8, np.zeros(2, U64), np.zeros(2, U64), np.zeros(3, bool))
    with pytest.raises(ValueError):  # more slots than the arrays hold
        NATIVE.table_put(z64, z64, z8, 9, np.zeros(1, U64), np.zeros(1, U64))
    with pytest.raises(TypeError):  # 4-byte items where 8 are needed
        NATIVE.fingerprint(np.zeros(6, np.uint32), 6, np.zeros(1, U64), np.zeros(1, U64))
    with pytest.raises(ValueError):  # a filter size that is not a power of 2
        NATIVE.bloom(z64, 6, np.zeros(1, U64), None)
    with pytest.raises(ValueError, match="read-only"):  # a read-only table cannot take keys
        ro = np.zeros(8, U64)
        ro.flags.writeable = False
        NATIVE.table_put(ro, z64, z8, 8, np.zeros(1, U64), np.zeros(1, U64))
