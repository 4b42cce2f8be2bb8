"""OTLP/JSON traces and logs: the format (detection, one document a line or one document) and its reader.

Accepted shapes (unknown fields are ignored everywhere):

    {"resourceSpans": [...]}            one TracesData a line (Collector file exporter) or one
    {"resourceLogs": [...]}             pretty-printed document (the specification's examples)
    {"batches": [...]}                  Tempo's wrapper of resourceSpans
    {"result": {"resourceSpans": ...}}  Jaeger's API v3 wrapper
    instrumentationLibrarySpans / instrumentationLibraryLogs   the legacy names of scope*

How a block of lines is decoded (`read`, and the parallel ingest through `decode_lines_fast`):

- the fast tiers (`ingest/otlp_fast.py`): the native scan, then one typed msgspec call a line
  whose records become rows with no per-record checks, ids and times checked column-wise. Any
  surprise sends the whole line to the careful path.
- the careful path (`otlp_model.Sink`): records are kept as raw JSON by the outer decode and
  decoded and checked one by one, so a bad record is rejected verbatim while the good ones
  beside it land; a line that is not JSON at all is rejected as a whole.

Offsets are 1-based line numbers (unit "line"), or the record's 1-based index in a whole-document
input (unit "record").

A whole (pretty-printed) document is streamed, never read whole (`read_document`, and
`read_parallel` on the ingest's decoding processes):

    {"resourceSpans": [rs1, rs2, …], …}   json_stream cuts the arrays into their elements
        │  (resourceSpans, resourceLogs, batches, result.resourceSpans, result.resourceLogs)
        ▼
    blocks of elements (~BLOCK_BYTES) ──► each element compacted into one line
        {"resourceSpans":[rs1]}\n{"resourceSpans":[rs2]}\n…   ──► decode_lines_fast (every tier)
        ▼
    rows renumbered: a line's records get the next record indexes, spans before logs, so the
    rows are those the careful path gives for the whole document (`decode_document`).

An element whose records fail goes the careful path with the record indexes it stands at; an
element that is not an OTLP resource at all (a wrong type) is rejected alone at its byte offset
(unit "byte"); malformed JSON ends the input there (one reject at its byte offset, the elements
before it kept), as in the Jaeger and Zipkin readers. Several documents one after another are
read in turn, their records numbered on. Records are numbered in the order the document holds
them (for a document holding both spans and logs, the careful path counts all spans first).

A resource over SPLIT_BYTES is cut down to its records, decoded PIECE_BYTES at a time under the
members read before them (`resource`, `scope`), as every OTLP/JSON writer orders them. Records
whose deciding members may still follow (a `scope` after its spans; the legacy
`instrumentationLibrarySpans`, which a later `scopeSpans` would override) wait in memory until
their element ends, so the rows stay exact in any order; only such an element is held whole.
"""

from __future__ import annotations

import concurrent.futures as cf
import re
from collections import deque
from collections.abc import Iterator
from typing import BinaryIO

import msgspec
import numpy as np
import pyarrow as pa

from ingest import arrays
from ingest.handoff import Parcel, pack, to_wire, unpack
from ingest.json_stream import Element, MalformedJSON, Members, Run, Split, iter_cut
from ingest.otlp_fast import decode_lines_fast
from ingest.otlp_model import Sink
from ingest.records import Chunk, Reject, SourceInfo, shift_chunk

__all__ = [
    "sniff",
    "read",
    "is_line_mode",
    "decode_lines",
    "decode_document",
    "read_document",
    "read_parallel",
    "decode_elements",
    "BLOCK_BYTES",
    "DOC_BLOCK_BYTES",
    "SPLIT_BYTES",
    "PIECE_BYTES",
]

BLOCK_BYTES = 8 * 1024 * 1024
DOC_BLOCK_BYTES = 4 * 1024 * 1024  # a document's elements decoded at a time (as written, before compacting)
SPLIT_BYTES = 16 * 1024 * 1024  # an element bigger than this is cut down to its records


def decode_lines(data: bytes, first_line: int, source: SourceInfo) -> tuple[Chunk, int]:
    """The careful path over a block of whole lines -> (chunk, number of lines in the block).

    `decode_lines_fast` gives the same result faster; this is its reference."""
    sink = Sink(source, "line")
    line_no = first_line - 1
    view = memoryview(data)
    pos, size = 0, len(data)
    while pos < size:
        nl = data.find(b"\n", pos)
        end = size if nl < 0 else nl
        line_no += 1
        start, pos = pos, end + 1
        if end - start <= 2 and not data[start:end].strip():
            continue
        sink.take_line(view[start:end], line_no)
    return sink.chunk(), line_no - first_line + 1


def decode_document(data: bytes, source: SourceInfo) -> Chunk:
    """A whole (e.g. pretty-printed) document; offsets are record indexes."""
    sink = Sink(source, "record")
    sink.take_document(data.removeprefix(_BOM))  # editors on Windows write a BOM; msgspec refuses it
    return sink.chunk()


# ---- detection and the reader entry point -------------------------------------------------

_BOM = b"\xef\xbb\xbf"
# an OTLP key followed by its colon, so a value that merely mentions the word does not count
_KEY = re.compile(
    rb'"(?:resourceSpans|resourceLogs|batches|scopeSpans|scopeLogs|instrumentationLibrarySpans'
    rb'|instrumentationLibraryLogs)"\s*:'
)


def sniff(head: bytes) -> bool:
    """An OTLP key in the head, and a JSON object at the start or at some line's start
    (the first lines of a Collector dump may be broken: they become rejects)."""
    text = head.removeprefix(_BOM).lstrip()
    if not (text.startswith(b"{") or b"\n{" in text):
        return False
    return _KEY.search(text) is not None


def is_line_mode(head: bytes) -> bool:
    """True for one document a line (Collector), False for one (pretty-printed) document."""
    text = head.removeprefix(_BOM).lstrip()
    lines = text.split(b"\n")
    if len(lines) == 1:
        return True  # a single line (possibly longer than the head)
    for i, ln in enumerate(lines):
        s = ln.strip()
        if len(s) > 1 and s.startswith(b"{") and (s.endswith(b"}") or i == len(lines) - 1):
            if i < len(lines) - 1 and _is_element(s):
                continue  # a resource on a line of its own: a compact document spread over lines
            return True  # a whole (or head-truncated) object on one line
    return False


_LINE_KEYS = frozenset(("resourceSpans", "resourceLogs", "batches", "result"))


def _is_element(line: bytes) -> bool:
    """A JSON object without any of a document's keys (a broken line is not one: it is a
    Collector line with a fault, rejected as such)."""
    try:
        obj = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return False
    return isinstance(obj, dict) and not _LINE_KEYS & obj.keys()


def read(stream: BinaryIO, source: SourceInfo) -> Iterator[Chunk]:
    from ingest.formats import iter_lines_blocks, read_head

    head, stream = read_head(stream)
    if not is_line_mode(head):
        yield from read_document(stream, source)
        return
    line = 1
    for block in iter_lines_blocks(stream, BLOCK_BYTES):
        chunk, nlines = decode_lines_fast(block.removeprefix(_BOM) if line == 1 else block, line, source)
        line += nlines
        yield chunk


# ---- a whole document, streamed ------------------------------------------------------------

# the arrays cut into elements, and the document each element becomes (the `result` wrapper's
# arrays are read as the top-level ones: the careful path treats them alike)
_WRAP = {
    "resourceSpans": (b'{"resourceSpans":[', b"]}"),
    "result.resourceSpans": (b'{"resourceSpans":[', b"]}"),
    "batches": (b'{"batches":[', b"]}"),
    "resourceLogs": (b'{"resourceLogs":[', b"]}"),
    "result.resourceLogs": (b'{"resourceLogs":[', b"]}"),
}
_DOC_MEMBERS = ("resourceSpans", "resourceLogs", "batches", "result")
# an element bigger than SPLIT_BYTES (one resource holding every span, say) is cut
# further, down to its records: resource -> scope groups -> records
_SCOPES = {"resourceSpans": ("scopeSpans", "instrumentationLibrarySpans")}
_SCOPES["batches"] = _SCOPES["result.resourceSpans"] = _SCOPES["resourceSpans"]
_SCOPES["resourceLogs"] = _SCOPES["result.resourceLogs"] = ("scopeLogs", "instrumentationLibraryLogs")
_SPLIT: dict[str, tuple[str, ...]] = dict(_SCOPES)
for _k, _scopes in _SCOPES.items():
    for _s in _scopes:
        _SPLIT[f"{_k}[].{_s}"] = ("spans",) if _s.endswith("Spans") else ("logRecords",)
_RECORDS = tuple(f"{k}[].{m}" for k in _SPLIT if "[]" in k for m in _SPLIT[k])  # come as json_stream Runs
_CURRENT = frozenset(("scopeSpans", "scopeLogs"))  # `scopeSpans or instrumentationLibrarySpans`
PIECE_BYTES = 1 << 20  # records of a cut element decoded as one document (as written)
# json_stream's reads: below the ingest's malloc mmap threshold (1 MiB, pipeline._tune_malloc),
# so its buffers come from the heap again and again instead of being mapped and faulted in
# page by page (1 MiB reads: 0.75 M page faults and 1.4 s of system time a GB)
_READ_BYTES = 128 * 1024
_encode = msgspec.json.Encoder().encode

# head + raw + tail is one document; raw's byte offset; and where raw ends when the input's bytes
# [offset, end) can stand for it (a piece's records with their separators as written), else -1
Item = tuple[bytes, bytes, bytes, int, int]


def _line(head: bytes, raw: bytes, tail: bytes) -> bytes:
    """A document as one line, whitespace between tokens removed (the native tier reads compact
    JSON fastest); one msgspec cannot format (malformed, or nested deeper than it goes) keeps its
    bytes on one line (only a string could hold a line break, where it is invalid anyway)."""
    doc = head + raw + tail
    try:
        return msgspec.json.format(doc, indent=-1)
    except (msgspec.DecodeError, RecursionError):  # the decoding rejects it, with its reason
        return doc.replace(b"\r", b" ").replace(b"\n", b" ")


def _members(members: dict[str, bytes]) -> bytes:
    return b",".join(_encode(k) + b":" + v for k, v in members.items())


class _Frame:
    """An element being cut (json_stream's Split .. Members): a resource (its arrays are scope
    groups) or a scope group (its array is the records)."""

    def __init__(self, key: str, members: dict[str, bytes]) -> None:
        self.key = key  # the array it is an element of: "resourceSpans", "resourceSpans[].scopeSpans", …
        self.array = key.rsplit(".", 1)[-1]
        self.resource = "[]" not in key
        self.members = members  # before its first array while open, all of them once closed
        self.closed = False
        self.current = 0  # elements of scopeSpans / scopeLogs seen (a resource)
        self.pieces = 0

    def ready(self, array: str) -> bool:
        """Whether records under its member `array` can be decoded before it closes: the members
        that decide their rows came before them (as every OTLP/JSON writer orders them)."""
        if self.closed:
            return True
        m = self.members
        if self.resource:  # the resource; and the legacy array counts only if the current is empty
            return "resource" in m and array in _CURRENT
        return "scope" in m and (m["scope"].strip() != b"null" or "instrumentationLibrary" in m)

    def drops(self, array: str) -> bool:
        return self.resource and array not in _CURRENT and self.current > 0


class _Piece:
    """Consecutive elements of one array of the innermost open frame, decoded as one document."""

    def __init__(self, frames: tuple[_Frame, ...], array: str, offset: int) -> None:
        self.frames = frames
        self.array = array
        self.offset = offset
        self.raws: list[bytes] = []
        self.size = 0
        self.end = -1
        for f in frames:
            f.pieces += 1

    def arrays(self) -> Iterator[tuple[_Frame, str]]:
        """Each frame with the member array this piece is under in it."""
        inner = [f.array for f in self.frames[1:]] + [self.array]
        return zip(self.frames, inner, strict=True)

    def ready(self) -> bool:
        return all(f.ready(a) for f, a in self.arrays())

    def dropped(self) -> bool:
        return any(f.drops(a) for f, a in self.arrays())

    def item(self) -> Item:
        head, tail = _WRAP[self.frames[0].key]
        for f, a in self.arrays():
            m = _members(f.members)
            head += b"{" + m + (b"," if m else b"") + _encode(a) + b":["
            tail = b"]}" + tail
        return head, b",".join(self.raws), tail, self.offset, self.end


class _Cutter:
    """json_stream's events -> the documents to decode, in order (see the module docstring)."""

    def __init__(self, source: SourceInfo, tail: list[Reject]) -> None:
        self.source = source
        self.tail = tail  # rejects that come after every row (malformed JSON ends the input)
        self.stack: list[_Frame] = []
        self.piece: _Piece | None = None
        self.queue: deque[_Piece | Item] = deque()  # waiting for members that decide their rows

    def take(self, ev: Element | Split | Members | Run) -> Iterator[Item]:
        if isinstance(ev, Run) or (isinstance(ev, Element) and "[]" in ev.key):
            if self._record(ev):
                yield from self._release()
            return
        self._flush()
        if isinstance(ev, Element):
            if ev.key:
                head, tail = _WRAP[ev.key]
                self.queue.append((head, ev.raw, tail, ev.offset, ev.offset + len(ev.raw)))
            else:
                why = "a JSON array, not an OTLP/JSON document (TracesData or LogsData)"
                self.tail.append(Reject(self.source.path, ev.offset, why, ev.raw, "byte"))
        elif isinstance(ev, Split):
            if self.stack and ev.key.rsplit(".", 1)[-1] in _CURRENT:
                self.stack[-1].current += 1
            self.stack.append(_Frame(ev.key, ev.members))
        elif ev.key.endswith("[]"):
            self._close(ev)
        else:
            self._document(ev)
        yield from self._release()

    def _record(self, ev: Element | Run) -> bool:
        """Elements of a cut element's array, added to the piece; whether a piece was queued."""
        frames, array = tuple(self.stack), ev.key.rsplit(".", 1)[-1]
        if array in _CURRENT:
            frames[-1].current += 1
        p = self.piece
        queued = p is not None and (p.array != array or p.frames != frames or p.size >= PIECE_BYTES)
        if p is None or queued:
            self._flush()
            p = self.piece = _Piece(frames, array, ev.offset)
        p.raws.append(ev.raw)
        p.size += len(ev.raw)
        p.end = ev.offset + len(ev.raw)
        return queued

    def _flush(self) -> None:
        if self.piece is not None:
            self.queue.append(self.piece)
            self.piece = None

    def _close(self, ev: Members) -> None:
        f = self.stack.pop()
        f.members, f.closed = ev.members, True
        if not f.pieces:  # nothing under its arrays: the element itself, as a whole
            raw = b"{" + _members(f.members) + b"}"
            if self.stack:
                p = _Piece(tuple(self.stack), f.array, ev.offset)
                p.raws.append(raw)
                self.queue.append(p)
            else:
                head, tail = _WRAP[f.key]
                self.queue.append((head, raw, tail, ev.offset, -1))

    def _document(self, ev: Members) -> None:
        """What was not streamed of a top-level object or `result`: an OTLP member that is no
        array is read (and rejected) as the careful path reads it; other members are ignored."""
        names = _DOC_MEMBERS if not ev.key else ("resourceSpans", "resourceLogs")
        body = b",".join(_encode(k) + b":" + v for k, v in ev.members.items() if k in names)
        if body:
            doc = b"{" + body + b"}"
            wrap = (b"", b"") if not ev.key else (b'{"result":', b"}")
            self.queue.append((wrap[0], doc, wrap[1], ev.offset, -1))

    def _release(self) -> Iterator[Item]:
        q = self.queue
        while q:
            head = q[0]
            if isinstance(head, _Piece):
                if not head.ready():
                    return
                q.popleft()
                if not head.dropped():
                    yield head.item()
            else:
                q.popleft()
                yield head

    def finish(self) -> Iterator[Item]:
        """At the end of the input (or of its readable part: pieces still waiting for the
        members of an element malformed JSON cut short are dropped with it)."""
        self._flush()
        yield from self._release()


def _items(stream: BinaryIO, source: SourceInfo, tail: list[Reject]) -> Iterator[Item]:
    """The documents to decode, in input order; malformed JSON becomes the last reject."""
    events = iter_cut(stream, tuple(_WRAP), _SPLIT, SPLIT_BYTES, _READ_BYTES, _RECORDS)
    cutter = _Cutter(source, tail)
    while True:
        try:
            ev = next(events)
        except StopIteration:
            break
        except MalformedJSON as exc:
            why = f"malformed JSON, the rest of the input is skipped: {exc.reason}"
            tail.append(Reject(source.path, exc.offset, why, exc.raw, "byte"))
            break
        yield from cutter.take(ev)
    yield from cutter.finish()


def _blocks(items: Iterator[Item], block_bytes: int) -> Iterator[list[Item]]:
    """`items` in blocks of about `block_bytes`; when the input breaks off, the items cut before
    the break come out as a last block, then the error (they were dropped with it)."""
    block: list[Item] = []
    size = 0
    try:
        for item in items:
            block.append(item)
            size += len(item[1])
            if size >= block_bytes:
                yield block
                block, size = [], 0
    except Exception:
        if block:
            yield block
        raise
    if block:
        yield block


def _line_numbers(batch: pa.RecordBatch | None) -> np.ndarray:
    if batch is None:
        return np.zeros(0, dtype=np.int64)
    return arrays.to_numpy(batch.column("source_offset")).astype(np.int64)


def _renumbered(
    batch: pa.RecordBatch | None, lines: np.ndarray, first: np.ndarray, keep: np.ndarray
) -> pa.RecordBatch | None:
    """`batch` (rows of lines 1..n, each line's rows in order) with each row's offset its record
    index: `first[line]` + its rank among the line's rows; rows of lines not in `keep` dropped."""
    if batch is None:
        return None
    order = np.argsort(lines, kind="stable")
    ranked = lines[order]
    starts = np.searchsorted(ranked, ranked, side="left")
    rank = np.empty_like(lines)
    rank[order] = np.arange(len(lines)) - starts
    offsets = first[lines] + rank
    i = batch.schema.get_field_index("source_offset")
    batch = batch.set_column(i, "source_offset", arrays.int64s(offsets))
    mask = keep[lines]
    return batch if mask.all() else batch.filter(arrays.bools(mask))


def _careful(item: Item, source: SourceInfo, before: int) -> tuple[Chunk, int]:
    """One element the careful path's way, its records numbered after `before`; (chunk, records)."""
    head, raw, tail, offset, _ = item
    sink = Sink(source, "record")
    sink.record_index = before
    doc = head + raw + tail  # as written: a rejected record is kept verbatim
    sink.take_document(doc)
    if sink.rejects and sink.rejects[-1].raw is doc:  # not an OTLP document at all: rejected alone
        reason = sink.rejects[-1].reason
        return Chunk(rejects=[Reject(source.path, offset, reason, raw, "byte")]), 0
    return sink.chunk(), sink.record_index - before


def decode_elements(items: list[Item], source: SourceInfo, *, compact: bool = False) -> tuple[Chunk, int]:
    """A block of a document's elements -> (chunk, number of records numbered); record indexes
    count from 1 within the block (the caller adds the records before it).

    The elements go through `decode_lines_fast` as one line each; a line with a reject is done
    again the careful way at its record indexes, so rows and rejects are the careful path's."""
    data = b"\n".join(_line(head, raw, tail) for head, raw, tail, *_ in items)
    chunk, _ = decode_lines_fast(data, 1, source, compact=compact)
    n = len(items)
    span_lines, log_lines = _line_numbers(chunk.spans), _line_numbers(chunk.logs)
    spans_in = np.bincount(span_lines, minlength=n + 1)
    counts = spans_in + np.bincount(log_lines, minlength=n + 1)
    bad = sorted({r.offset for r in chunk.rejects})
    first = np.zeros(n + 1, dtype=np.int64)  # records before each line
    keep = np.ones(n + 1, dtype=bool)
    redone: list[Chunk] = []
    if not bad:
        first[1:] = np.cumsum(counts[1:]) - counts[1:]
        total = int(counts.sum())
    else:
        keep[bad] = False
        total = 0
        for line in range(1, n + 1):
            first[line] = total
            if keep[line]:
                total += int(counts[line])
            else:
                sub, used = _careful(items[line - 1], source, total)
                redone.append(sub)
                total += used
    spans = _renumbered(chunk.spans, span_lines, first + 1, keep)
    logs = _renumbered(chunk.logs, log_lines, first + spans_in + 1, keep)
    rejects: list[Reject] = []
    for sub in redone:
        if sub.spans is not None:
            spans = _concat(spans, to_wire(sub.spans) if compact else sub.spans)
        if sub.logs is not None:
            logs = _concat(logs, to_wire(sub.logs) if compact else sub.logs)
        rejects += sub.rejects
    return Chunk(spans=spans, logs=logs, rejects=rejects), total


def _concat(a: pa.RecordBatch | None, b: pa.RecordBatch | None) -> pa.RecordBatch | None:
    if a is None or not a.num_rows:
        return b
    if b is None or not b.num_rows:
        return a
    return pa.concat_batches([a, b])


def _decode_packed(items: list[Item], source: SourceInfo, path: str | None) -> tuple[Parcel, int]:
    """In a decoding process: `decode_elements`, its batches handed over in shared memory; with
    `path`, the elements sent without their bytes (`_by_range`) are read from the file."""
    if path is not None:
        items = _from_file(path, items)
    chunk, n = decode_elements(items, source, compact=True)
    return pack(chunk), n


def _by_range(items: list[Item]) -> list[Item]:
    """The block to send: elements that are bytes of the file go as their range only (a block
    is mostly bytes of the file in a row; the decoding process reads them itself)."""
    return [(h, b"", t, o, e) if e >= 0 else (h, raw, t, o, e) for h, raw, t, o, e in items]


def _from_file(path: str, items: list[Item]) -> list[Item]:
    ranged = [(o, e) for _, _, _, o, e in items if e >= 0]
    if not ranged:
        return items
    start, end = min(o for o, _ in ranged), max(e for _, e in ranged)
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    return [(h, data[o - start : e - start] if e >= 0 else raw, t, o, e) for h, raw, t, o, e in items]


def read_document(
    stream: BinaryIO, source: SourceInfo, block_bytes: int = DOC_BLOCK_BYTES
) -> Iterator[Chunk]:
    """A whole document (or several in a row), streamed: what `decode_document` gives for it
    when it parses, in bounded memory; see the module docstring."""
    from ingest.formats import CORRUPT_ERRORS

    tail: list[Reject] = []
    before = 0
    try:
        for block in _blocks(_items(stream, source, tail), block_bytes):
            chunk, n = decode_elements(block, source)
            yield shift_chunk(chunk, before, "record")
            before += n
    except CORRUPT_ERRORS:  # the decompression broke off: what came before it has been yielded
        if tail:
            yield Chunk(rejects=tail)
        raise
    if tail:
        yield Chunk(rejects=tail)


def read_parallel(
    stream: BinaryIO, source: SourceInfo, executor: cf.Executor, window: int = 4, path: str | None = None
) -> Iterator[Chunk]:
    """What `read` yields, a whole document's elements decoded by `executor`'s processes.

    This process only cuts the document into elements (json_stream skims each as msgspec.Raw)
    and sends blocks of about DOC_BLOCK_BYTES to `decode_elements`; at most `window` blocks are
    in flight, so memory stays bounded. Chunks come out in input order. `path`: the file that
    `stream` reads, uncompressed (its offsets are the stream's): the decoding processes read
    the elements' bytes from it instead of receiving them through a pipe, and this process
    reads it directly too (the stream's layers of 1 MiB buffers cost a fresh mapping each, 0.7
    M page faults a GB). One document a line is left to the pipeline's own parallel path (this
    reads it in process)."""
    from ingest.formats import read_head

    head, stream = read_head(stream)
    if is_line_mode(head):
        yield from read(stream, source)
        return
    if path is None:
        yield from _read_parallel(stream, source, executor, window, None)
        return
    with open(path, "rb") as fh:
        yield from _read_parallel(fh, source, executor, window, path)


def _read_parallel(
    stream: BinaryIO, source: SourceInfo, executor: cf.Executor, window: int, path: str | None
) -> Iterator[Chunk]:
    from ingest.formats import CORRUPT_ERRORS

    tail: list[Reject] = []
    pending: deque[cf.Future] = deque()
    before = 0

    def done(fut: cf.Future) -> Chunk:
        nonlocal before
        parcel, n = fut.result()
        chunk = shift_chunk(unpack(parcel), before, "record")
        before += n
        return chunk

    try:
        for block in _blocks(_items(stream, source, tail), DOC_BLOCK_BYTES):
            sent = _by_range(block) if path is not None else block
            pending.append(executor.submit(_decode_packed, sent, source, path))
            while len(pending) >= window:
                yield done(pending.popleft())
    except CORRUPT_ERRORS:
        while pending:
            yield done(pending.popleft())
        if tail:
            yield Chunk(rejects=tail)
        raise
    while pending:
        yield done(pending.popleft())
    if tail:
        yield Chunk(rejects=tail)
