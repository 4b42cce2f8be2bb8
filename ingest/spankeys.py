"""The set of span keys an ingest has seen, in memory that does not grow with the input.

A key is a 128-bit fingerprint (h1, h2) of `(trace_id, span_id)` (`fingerprint`, of the words
ingest/writer.py makes). Three tiers, each exact but the filter:

    add_fingerprints(h1, h2) ─► first copy of each key within the batch
        │
        ▼
    Bloom filter over every key so far ── "surely new" ──────────────────────────► insert
        │ "maybe seen": a key seen before, or a new one by chance (~0.1 % up to ~16 M
        ▼  keys, then more as the filter, at its budget, fills: ~10 % at 50 M)
    hash table (the newest keys) ─► runs on disk, newest first ─► seen / new ─► insert

    insert: into the table and the filter. A full table is sorted and written as a run (h1
    ascending, then h2 in that order; in memory only every 512th h1, the run's fence), and
    FANOUT runs of one level are merged, streaming, into one run of the next level.

Before the first run there is no filter: the table alone answers. Memory (`memory_bytes`):
the filter up to two thirds of it, the table the rest, both taken as the keys come (a prefix
that doubles of arrays whose pages stay untouched until used); then the spill's sort (two
arrays of the table's keys), the merge's buffers (FANOUT x MERGE_CHUNK keys), the pages a
lookup on disk maps (let go every 256 keys) and the fences: 1/64 byte a key, the one part that
grows (2.3 MB at 150 M keys).

Two keys with equal h1 and different h2 are different keys everywhere (batch, table, runs):
only the full 128 bits make a duplicate, as two different spans agree on them with
probability about 2**-128.
"""

from __future__ import annotations

import mmap
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# `import … as`, not `from ingest import`: mypy does not find a submodule by the latter
try:
    import ingest._spankeys as _native_module
except ImportError:  # no compiler where it was installed: the numpy code below does the same
    _native_module = None  # type: ignore[assignment]

__all__ = ["MEMORY_BYTES", "SpanKeys", "fingerprint", "native_available"]

# the native loops (ingest/_spankeys.c), or None for the numpy ones (DCR_SPANKEYS_NATIVE=0 asks for
# those; tests set this to None to check that both give the same answers)
_NATIVE = None if os.environ.get("DCR_SPANKEYS_NATIVE", "1") == "0" else _native_module


def native_available() -> bool:
    return _NATIVE is not None


MEMORY_BYTES = 48 * 1024 * 1024  # the table (16 MiB: runs of ~490 k keys) and the Bloom filter
FANOUT = 8  # runs of one level merged into one of the next
MERGE_CHUNK = 32 * 1024  # keys read from each run at a time while merging
FENCE_KEYS = 512  # one h1 in the fence every so many: a 4 KiB page of a run's h1
_GATHER_MAX = 8 * 1024  # entries a lookup on disk reads whole blocks up to, not searching
_MAP_KEYS = 256  # lookups on disk between two releases of the pages they mapped
_WRITE_PIECE = 64 * 1024  # bytes a write of a run (see _pwrite)
_LOAD = 0.5  # the table grows, or is written out, at this share of its slots in use
_FIRST_SLOTS = 64 * 1024  # the table starts small and doubles up to its budget
_BLOOM_BITS = 16  # a key's share of the filter (up to its budget): ~0.1 % false positives
_SLOT_BYTES = 17  # h1, h2 and a used flag
_U64 = np.dtype("<u8")


# ---- the fingerprint ----------------------------------------------------------------------

_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_SEED1 = np.uint64(0x9E3779B97F4A7C15)
_SEED2 = np.uint64(0xD6E8FEB86659FD93)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of 64-bit words that spreads every input bit."""
    x = x ^ (x >> np.uint64(30))
    x *= _C1
    x ^= x >> np.uint64(27)
    x *= _C2
    x ^= x >> np.uint64(31)
    return x


def fingerprint(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of (n, k)-word keys: a 128-bit fingerprint (16 bytes a span;
    two different spans agree on both with probability about 2**-128). Each folds the words in
    through splitmix64, from its own seed and in its own order."""
    k = words.shape[1]
    if _NATIVE is not None:
        words = np.ascontiguousarray(words, _U64)
        h1, h2 = np.empty(len(words), _U64), np.empty(len(words), _U64)
        _NATIVE.fingerprint(words, k, h1, h2)
        return h1, h2
    h1 = _mix(words[:, 0] ^ _SEED1)
    h2 = _mix(words[:, k - 1] ^ _SEED2)
    for i in range(1, k):
        h1 = _mix(h1 ^ words[:, i])
        h2 = _mix(h2 ^ words[:, k - 1 - i])
    return h1, h2


# ---- the filter ---------------------------------------------------------------------------


class _Bloom:
    """A blocked Bloom filter: each key sets 4 bits of one 64-bit word (the word from the low
    bits of h2, the bits from its top 24), so a test is one read."""

    def __init__(self, max_words: int) -> None:
        # allocated whole, used in a prefix (a power of 2 words): pages are taken as written
        self.words = np.zeros(max_words, np.uint64)
        self.size = 0
        self._mask = np.uint64(0)

    def reset(self, size: int) -> None:
        """Empty, in the first `size` words."""
        self.words[: self.size] = 0
        self.size, self._mask = size, np.uint64(size - 1)

    def _where(self, h2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each key's word and bits."""
        word = (h2 & self._mask).astype(np.intp)
        one = np.uint64(1)
        bits = one << (h2 >> np.uint64(58))
        for shift in (40, 46, 52):
            bits |= one << ((h2 >> np.uint64(shift)) & np.uint64(63))
        return word, bits

    def maybe(self, h2: np.ndarray) -> np.ndarray:
        """False: surely never added; True: perhaps added."""
        if _NATIVE is not None:
            out = np.empty(len(h2), bool)
            _NATIVE.bloom(self.words, self.size, np.ascontiguousarray(h2, _U64), out)
            return out
        word, bits = self._where(h2)
        return (self.words[word] & bits) == bits

    def add(self, h2: np.ndarray) -> None:
        if _NATIVE is not None:
            _NATIVE.bloom(self.words, self.size, np.ascontiguousarray(h2, _U64), None)
            return
        word, bits = self._where(h2)
        np.bitwise_or.at(self.words, word, bits)  # .at: two keys of one word both count


# ---- the newest keys: a hash table --------------------------------------------------------


class _Table:
    """Open addressing with linear probing, vectorised: a key's home slot is monotone in h1,
    so reading the slots in order gives the keys almost sorted (a run's sort is cheap)."""

    def __init__(self, nbytes: int) -> None:
        self.max_slots = max(2, nbytes // _SLOT_BYTES)
        # allocated whole, used in a prefix of `slots` that doubles: pages are taken as written
        self.h1 = np.zeros(self.max_slots, np.uint64)
        self.h2 = np.zeros(self.max_slots, np.uint64)
        self.used = np.zeros(self.max_slots, bool)
        self._resize(min(_FIRST_SLOTS, self.max_slots))
        self.count = 0

    def _resize(self, slots: int) -> None:
        self.slots = slots
        self.capacity = max(1, int(slots * _LOAD))

    def grow(self) -> None:
        """Twice the slots (up to the budget), the keys put again."""
        h1, h2 = self.h1[self.used], self.h2[self.used]
        self.clear()
        self._resize(min(2 * self.slots, self.max_slots))
        self.put(h1, h2)

    def keys_h2(self) -> np.ndarray:
        return self.h2[self.used]

    def _home(self, h1: np.ndarray) -> np.ndarray:
        return ((h1 >> np.uint64(32)) * np.uint64(self.slots) >> np.uint64(32)).astype(np.intp)

    def _next(self, slot: np.ndarray) -> np.ndarray:
        slot = slot + 1
        slot[slot == self.slots] = 0
        return slot

    def find(self, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        """Mask of the keys in the table."""
        if _NATIVE is not None:
            out = np.empty(len(h1), bool)
            q1, q2 = np.ascontiguousarray(h1, _U64), np.ascontiguousarray(h2, _U64)
            _NATIVE.table_find(self.h1, self.h2, self.used, self.slots, q1, q2, out)
            return out
        found = np.zeros(len(h1), bool)
        todo, slot = np.arange(len(h1)), self._home(h1)
        while todo.size:  # a round looks at one more slot of every key still unresolved
            used = self.used[slot]
            hit = used & (self.h1[slot] == h1[todo]) & (self.h2[slot] == h2[todo])
            found[todo[hit]] = True
            go_on = used & ~hit  # an empty slot ends the search: not there
            todo, slot = todo[go_on], self._next(slot[go_on])
        return found

    def put(self, h1: np.ndarray, h2: np.ndarray) -> None:
        """Insert keys that are distinct and not in the table (at most the room left)."""
        if _NATIVE is not None:
            q1, q2 = np.ascontiguousarray(h1, _U64), np.ascontiguousarray(h2, _U64)
            _NATIVE.table_put(self.h1, self.h2, self.used, self.slots, q1, q2)
            self.count += len(h1)
            return
        todo, slot = np.arange(len(h1)), self._home(h1)
        while todo.size:
            taken = self.used[slot]
            free = np.flatnonzero(~taken)
            fs, fk = slot[free], todo[free]
            # keys aiming at one free slot all write it; the last write stays and that key wins
            self.h1[fs], self.h2[fs] = h1[fk], h2[fk]
            won = (self.h1[fs] == h1[fk]) & (self.h2[fs] == h2[fk])
            self.used[fs[won]] = True
            again = taken.copy()
            again[free[~won]] = True  # losers try their slot again: now taken, they move on
            slot = np.where(taken, self._next(slot), slot)
            todo, slot = todo[again], slot[again]
        self.count += len(h1)

    def sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """Every key, sorted by h1 (then as inserted), in views of the table's own arrays: good
        until `clear()`. Temporary memory: two of the arrays' count."""
        n = self.count
        h1 = self.h1[self.used]
        order = np.argsort(h1, kind="stable")  # nearly sorted already: a few linear passes
        np.take(h1, order, out=self.h1[:n])  # the slots' order is no longer needed
        del h1
        np.take(self.h2[self.used], order, out=self.h2[:n])
        return self.h1[:n], self.h2[:n]

    def clear(self) -> None:
        self.used[: self.slots] = False
        self.count = 0


# ---- sorted runs on disk ------------------------------------------------------------------


@dataclass
class _Run:
    """A file of n h1 (ascending) then n h2; the fence holds h1[::FENCE_KEYS]."""

    path: Path
    n: int
    level: int
    fence: np.ndarray = field(repr=False)

    def read(self, fd: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        h1, h2 = np.empty(count, _U64), np.empty(count, _U64)
        for arr, base in ((h1, 0), (h2, self.n)):
            if os.preadv(fd, [arr.data.cast("B")], 8 * (base + start)) != 8 * count:
                raise OSError(f"{self.path}: short read")
        return h1, h2

    def find(self, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """Mask of the keys (q1, q2) in this run: for each, a search of one fence block, then
        the entries with equal h1 compared on h2. The run is mapped for the call, and the pages
        read are let go every _MAP_KEYS keys: a page fault maps its neighbours too (64 KiB),
        so a thousand lookups would otherwise hold ~100 MB of the file (this way at most ~32 MB)."""
        found = np.zeros(len(q1), bool)
        with open(self.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            r1 = np.frombuffer(mm, _U64, count=self.n)
            r2 = np.frombuffer(mm, _U64, count=self.n, offset=8 * self.n)
            try:
                for i in range(0, len(q1), _MAP_KEYS):
                    part = slice(i, i + _MAP_KEYS)
                    found[part] = self._find(r1, r2, q1[part], q2[part])
                    if hasattr(mmap, "MADV_DONTNEED"):
                        mm.madvise(mmap.MADV_DONTNEED)
            finally:
                del r1, r2  # the map closes only once no array points into it
        return found

    def _find(self, r1: np.ndarray, r2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
        n = self.n
        lo = np.maximum(np.searchsorted(self.fence, q1, side="left") - 1, 0) * FENCE_KEYS
        if len(q1) * FENCE_KEYS <= _GATHER_MAX:  # a few keys: count in their whole blocks
            block = r1[np.minimum(lo[:, None] + np.arange(FENCE_KEYS), n - 1)]
            lo = np.minimum(lo + (block < q1[:, None]).sum(axis=1), n)
        else:  # a binary search in each block, side by side
            hi = np.minimum(lo + FENCE_KEYS, n)  # the first h1 >= q1 is in [lo, hi]
            while (open_ := lo < hi).any():
                mid = (lo + hi) >> 1
                right = open_ & (r1[np.minimum(mid, n - 1)] < q1)
                lo = np.where(right, mid + 1, lo)
                hi = np.where(open_ & ~right, mid, hi)
        found = np.zeros(len(q1), bool)
        at = lo
        while True:  # more than one entry with this h1 only when two keys share it
            at_c = np.minimum(at, n - 1)
            same = (at < n) & (r1[at_c] == q1) & ~found
            if not same.any():
                return found
            found |= same & (r2[at_c] == q2)
            at = np.where(same, at + 1, n)


def _pwrite(fd: int, keys: np.ndarray, at: int) -> None:
    """`keys` at key `at` of the file, in writes of _WRITE_PIECE bytes: the page cache then holds
    the file in small folios, where one big write makes folios of up to 2 MiB that a lookup's
    page fault maps whole (a hundred lookups held 170 MB of a 512 MB run)."""
    data = np.ascontiguousarray(keys, _U64).data.cast("B")
    for i in range(0, len(data), _WRITE_PIECE):
        os.pwrite(fd, data[i : i + _WRITE_PIECE], 8 * at + i)


def _write_run(path: Path, h1: np.ndarray, h2: np.ndarray, level: int) -> _Run:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _pwrite(fd, h1, 0)
        _pwrite(fd, h2, len(h1))
    finally:
        os.close(fd)
    return _Run(path, len(h1), level, h1[::FENCE_KEYS].copy())


def _merge_runs(runs: list[_Run], path: Path) -> _Run:
    """One run of the keys of `runs`, read and written MERGE_CHUNK keys a run at a time."""
    n = sum(r.n for r in runs)
    fds = [os.open(r.path, os.O_RDONLY) for r in runs]
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        pos = [0] * len(runs)  # next key to read of each run
        bufs = [(np.empty(0, _U64), np.empty(0, _U64)) for _ in runs]
        fence: list[np.ndarray] = []
        done = 0
        while done < n:
            for i, r in enumerate(runs):
                b1, b2 = bufs[i]
                want = min(MERGE_CHUNK - len(b1), r.n - pos[i])
                if want > 0:
                    c1, c2 = r.read(fds[i], pos[i], want)
                    bufs[i] = (np.concatenate([b1, c1]), np.concatenate([b2, c2]))
                    pos[i] += want
            # every key up to the smallest last-buffered h1 of a run not read to its end is here
            ends = [bufs[i][0][-1] for i, r in enumerate(runs) if pos[i] < r.n]
            upto = [np.searchsorted(b1, min(ends), side="right") if ends else len(b1) for b1, _ in bufs]
            h1 = np.concatenate([b1[:k] for (b1, _), k in zip(bufs, upto, strict=True)])
            h2 = np.concatenate([b2[:k] for (_, b2), k in zip(bufs, upto, strict=True)])
            bufs = [(b1[k:], b2[k:]) for (b1, b2), k in zip(bufs, upto, strict=True)]
            order = np.argsort(h1, kind="stable")  # FANOUT sorted pieces: a merge
            h1, h2 = h1[order], h2[order]
            _pwrite(out, h1, done)
            _pwrite(out, h2, n + done)
            fence.append(h1[(-done) % FENCE_KEYS :: FENCE_KEYS].copy())  # not a view: it would keep h1
            done += len(h1)
    finally:
        os.close(out)
        for fd in fds:
            os.close(fd)
    return _Run(path, n, runs[0].level + 1, np.concatenate(fence))


# ---- the set ------------------------------------------------------------------------------


def _remove(folder: Path, owned: bool) -> None:
    if owned:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        for f in folder.glob("run-*.keys"):
            f.unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass  # not ours to empty, or already gone


class SpanKeys:
    """The keys seen so far. `spill_dir` holds the runs (made at the first spill, removed by
    `close()`, which the writer calls however the ingest ends; a temporary folder when None).
    Use `add_new`; `len()` counts the keys."""

    def __init__(self, spill_dir: Path | None = None, *, memory_bytes: int = MEMORY_BYTES) -> None:
        # the filter up to two thirds of the budget (a power of 2 words), the table the rest
        self._bloom_max_words = 1 << max(0, (memory_bytes * 2 // 3 // 8).bit_length() - 1)
        self._table = _Table(memory_bytes - 8 * self._bloom_max_words)
        # made at the first spill (the table alone is exact until then), then sized to the keys
        self._bloom: _Bloom | None = None
        self._runs: list[_Run] = []  # oldest first; levels never increase along the list
        self._dir = spill_dir
        self._owned = spill_dir is None
        self._serial = 0
        self._cleanup: weakref.finalize | None = None
        self._broken: BaseException | None = None
        self.stats = {"maybe": 0, "on_disk": 0, "spills": 0, "merges": 0, "merged_keys": 0}

    def __len__(self) -> int:
        return self._table.count + sum(r.n for r in self._runs)

    def __enter__(self) -> SpanKeys:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def runs(self) -> int:
        """Runs on disk."""
        return len(self._runs)

    def close(self) -> None:
        """Remove the runs (the set is empty after)."""
        self._runs = []
        self._table = _Table(_SLOT_BYTES * 2)
        self._bloom = None
        if self._cleanup is not None:
            self._cleanup()

    # -- adding --

    def add_new(self, words: np.ndarray) -> np.ndarray:
        """Mask of the keys ((n, k) 64-bit words, ingest/writer.py's `_key_words`) to keep: the
        first copy in the batch of a key not seen before. Remembers them."""
        if not len(words):
            return np.zeros(0, bool)
        return self.add_fingerprints(*fingerprint(words))

    def add_fingerprints(self, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        """`add_new` of keys given by their fingerprints (uint64 arrays of equal length)."""
        if self._broken is not None:  # (a full disk, say) answers now could keep a duplicate
            raise OSError(f"the span key set failed earlier: {self._broken}") from self._broken
        n = len(h1)
        first = _first_copies(h1, h2)
        idx = np.arange(n) if first is None else np.flatnonzero(first)
        k1, k2 = h1[idx], h2[idx]
        bloom = self._bloom
        if bloom is None:  # nothing on disk yet
            seen = self._table.find(k1, k2)
            fresh = ~seen
            self._insert(k1[fresh], k2[fresh])
            mask = np.zeros(n, bool)
            mask[idx[fresh]] = True
            return mask
        seen = bloom.maybe(k2)
        if seen.any():
            at = np.flatnonzero(seen)
            self.stats["maybe"] += len(at)
            known = self._table.find(k1[at], k2[at])
            rest = at[~known]
            for run in reversed(self._runs):  # the newest first: copies tend to come close
                if not rest.size:
                    break
                self.stats["on_disk"] += len(rest)
                hit = run.find(k1[rest], k2[rest])
                known[np.searchsorted(at, rest[hit])] = True
                rest = rest[~hit]
            seen[at] = known
        fresh = ~seen
        self._insert(k1[fresh], k2[fresh])
        mask = np.zeros(n, bool)
        mask[idx[fresh]] = True
        return mask

    def _insert(self, h1: np.ndarray, h2: np.ndarray) -> None:
        """Into the table and the filter. A spill on the way may make the filter anew, from the
        table: what comes after goes in."""
        start = 0
        while start < len(h1):
            table = self._table
            room = table.capacity - table.count
            if room < len(h1) - start and table.slots < table.max_slots:
                table.grow()
                continue
            if room == 0:
                self._spill()
                continue
            part = slice(start, start + room)
            table.put(h1[part], h2[part])
            if self._bloom is not None:
                self._bloom.add(h2[part])
            start += room

    # -- spilling --

    def _new_path(self) -> Path:
        if self._cleanup is None:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="dcr-spankeys-"))
            else:
                self._dir.mkdir(parents=True, exist_ok=True)
            self._cleanup = weakref.finalize(self, _remove, self._dir, self._owned)
        assert self._dir is not None
        self._serial += 1
        return self._dir / f"run-{self._serial:06d}.keys"

    def _fit_bloom(self) -> None:
        """A filter of _BLOOM_BITS a key for the keys up to the next spill (within its budget),
        made again from the table and the runs when it has grown too small."""
        want = (len(self) + self._table.capacity) * _BLOOM_BITS // 64
        words = min(1 << max(0, want - 1).bit_length(), self._bloom_max_words)
        if self._bloom is not None and self._bloom.size >= words:
            return
        if self._bloom is None:
            self._bloom = _Bloom(self._bloom_max_words)
        bloom = self._bloom
        bloom.reset(words)
        bloom.add(self._table.keys_h2())
        for run in self._runs:
            with open(run.path, "rb") as fh:
                fh.seek(8 * run.n)  # the h2 half
                for start in range(0, run.n, MERGE_CHUNK):
                    h2 = np.fromfile(fh, _U64, count=min(MERGE_CHUNK, run.n - start))
                    bloom.add(h2)

    def _spill(self) -> None:
        self._fit_bloom()
        try:
            h1, h2 = self._table.sorted()
            self._runs.append(_write_run(self._new_path(), h1, h2, 0))
        except BaseException as exc:  # the table is half sorted: its keys are lost
            self._broken = exc
            raise
        self._table.clear()
        self.stats["spills"] += 1
        while len(self._runs) >= FANOUT and len({r.level for r in self._runs[-FANOUT:]}) == 1:
            parts = self._runs[-FANOUT:]
            merged = _merge_runs(parts, self._new_path())
            del self._runs[-FANOUT:]
            self._runs.append(merged)
            for r in parts:
                r.path.unlink()
            self.stats["merges"] += 1
            self.stats["merged_keys"] += merged.n


def _first_copies(h1: np.ndarray, h2: np.ndarray) -> np.ndarray | None:
    """None when every key of the batch differs from the others (no two share h1: the usual
    case, told by a sort of h1 alone); else the mask of the first copy of each key."""
    s = np.sort(h1)
    if not (s[1:] == s[:-1]).any():
        return None
    order = np.lexsort((h2, h1))  # stable: copies of a key side by side, the first one first
    s1, s2 = h1[order], h2[order]
    again = (s1[1:] == s1[:-1]) & (s2[1:] == s2[:-1])
    first = np.ones(len(h1), bool)
    first[order[1:][again]] = False
    return first
