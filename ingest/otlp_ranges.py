"""A byte range of an OTLP/JSON lines file, decoded (the ingest's unit of parallel work).

`decode_range(path, start, end)` decodes the lines that start in [start, end). A line that runs
past `end` is read to its end, unless it is over HUGE_LINE_BYTES (an SDK or Collector that
exports one buffer of 20-50 k spans writes lines of 10-30 MB): such a line is cut along its
records and scanned PIECE_BYTES at a time, so its memory is that of a range of small lines and
its buffers stay under the decoding process's mmap threshold (a 30 MB line read whole cost
every buffer a fresh mapping, faulted in page by page: twice the CPU of small lines):

    {"resourceSpans":[{"resource":R,"scopeSpans":[{"scope":S,"spans":[s1,…,sk,sk+1,…,sn]}]}]}
     └──────────────── prefix P (as written) ──────────────────┘
    P s1,…,sk ]}]}]}         one document a piece, cut before a record's start as the first
    P sk+1,…,sn ]}]}]}       record opens it ('},{"traceId":'), so every piece holds R and S;
                             the last piece ends with the line's own bytes

Only the native scan decodes the pieces. A cut that is not between two records leaves a piece
that is not JSON (its brackets cannot balance), which the scan declines; so does any record or
member the scan would decline in the whole line (the last piece holds every member after the
records). Whenever the scan declines anything of a piece, or the line is not of the shape
above (members that decide the rows -- resource, scope -- after the records, legacy names,
whitespace), the line is read whole and decoded as before: the rows and rejects are always
those of the whole line.

A range that holds no line start (the inside of a long line) only looks for one in its own
bytes; it does not read on to the end of the line that covers it.
"""

from __future__ import annotations

import io
import mmap
import re
from collections.abc import Callable
from io import BufferedReader
from typing import TypeVar

import msgspec

from ingest.otlp_fast import decode_lines_fast, native_available, scan_piece
from ingest.records import Chunk, SourceInfo

__all__ = ["decode_range", "HUGE_LINE_BYTES", "PIECE_BYTES"]

HUGE_LINE_BYTES = 4 << 20  # a line longer than this is decoded in pieces (a range's worth)
PIECE_BYTES = 4 << 20  # a piece of a huge line (as written, before its prefix)
READ_BYTES = 1 << 20  # the start of a huge line read to find its prefix
_BOM = b"\xef\xbb\xbf"
# the arrays a huge line is cut along: top-level key -> (scope groups, records)
_LEVELS = {
    b"resourceSpans": (b"scopeSpans", b"spans"),
    b"batches": (b"scopeSpans", b"spans"),
    b"resourceLogs": (b"scopeLogs", b"logRecords"),
}
_CLOSE = b"]}]}]}"  # records, scope group, scope groups, resource, resources, document
_SPAN_MARK = b'"startTimeUnixNano":'  # a span has it, a link (which starts as a span does) has not
_CUT_TRIES = 64
_NAME = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]*)":')
_FIRST_KEY = re.compile(rb'\{"[A-Za-z_][A-Za-z0-9_]*":')
_RAW = msgspec.json.Decoder(msgspec.Raw)
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
T = TypeVar("T")  # a packed chunk (handoff.Parcel in the ingest's decoding processes)


def decode_range(
    path: str,
    start: int,
    end: int,
    source: SourceInfo,
    pack: Callable[[Chunk], T],
    discard: Callable[[T], object],
    *,
    compact: bool = True,
) -> tuple[list[T], int]:
    """The lines that start in [start, end) of `path`, numbered from 1 -> (their chunks, each
    through `pack` as soon as it is decoded, and the number of lines): what `decode_lines_fast`
    gives for those lines read whole, in one chunk or more (a chunk a piece of a huge line, so
    that no chunk holds more than a piece's rows). `discard` takes back the packed chunks of a
    huge line that turns out to need reading whole."""
    with open(path, "rb") as fh:
        pos, last, stop = _bounds(fh, start, end)
        if pos >= end:
            return [pack(Chunk())], 0
        fh.seek(pos)
        if stop >= 0:  # read once, to the end of the line that runs past `end`
            chunk, nlines = decode_lines_fast(fh.read(stop - pos), 1, source, compact=compact)
            return [pack(chunk)], nlines
        out, nlines = [], 0
        if last > pos:
            chunk, nlines = decode_lines_fast(fh.read(last - pos), 1, source, compact=compact)
            out.append(pack(chunk))
        fh.seek(last)
        head = fh.read(READ_BYTES)  # holds its prefix, if any
        line = _Line(fh, last, nlines + 1, source, compact)
        if not native_available() or not line.in_pieces(head, pack, out):
            for parcel in out[last > pos :]:
                discard(parcel)
            del out[last > pos :]
            out.append(pack(line.whole()))
    return out, nlines + 1


def decode_block(
    data: bytes,
    source: SourceInfo,
    pack: Callable[[Chunk], T],
    discard: Callable[[T], object],
    *,
    compact: bool = True,
) -> tuple[list[T], int]:
    """The whole lines of `data` (a compressed input's block), numbered from 1 -> (their chunks,
    the number of lines), as `decode_range` gives a range's: a line over HUGE_LINE_BYTES in
    pieces (read from the block in memory), the lines between through `decode_lines_fast`."""
    if len(data) <= HUGE_LINE_BYTES or not native_available():
        chunk, nlines = decode_lines_fast(data, 1, source, compact=compact)
        return [pack(chunk)], nlines
    out: list[T] = []
    lines = 0  # lines before `run`
    run = pos = 0  # the small lines not yet decoded start at `run`
    fh = io.BytesIO(data)
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        if end - pos > HUGE_LINE_BYTES:
            if pos > run:
                chunk, n = decode_lines_fast(data[run:pos], lines + 1, source, compact=compact)
                out.append(pack(chunk))
                lines += n
            line = _Line(fh, pos, lines + 1, source, compact)
            k = len(out)
            if not line.in_pieces(data[pos : pos + READ_BYTES], pack, out):
                for parcel in out[k:]:
                    discard(parcel)
                del out[k:]
                out.append(pack(line.whole()))
            lines += 1
            run = end
        pos = end
    if run < len(data):
        chunk, n = decode_lines_fast(data[run:], lines + 1, source, compact=compact)
        out.append(pack(chunk))
        lines += n
    return out or [pack(Chunk())], lines


def _bounds(fh: BufferedReader, start: int, end: int) -> tuple[int, int, int]:
    """(pos, last, stop) of the range [start, end): `pos` where its first line starts (past a
    byte-order mark at the file's start; `end` when none starts before `end`), `last` where its
    last line starts, `stop` where that line ends (one past its newline, or the file's end) or -1
    when it runs on past `last + HUGE_LINE_BYTES`. Found in a mapping of the file, so that the
    range's bytes are read once, and not at all when no line starts in it (the inside of a long
    line, where reading cost twice as much as looking)."""
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        size = len(m)
        if start == 0:
            pos = len(_BOM) if m[: len(_BOM)] == _BOM else 0
        else:
            nl = m.find(b"\n", start - 1, end)
            pos = end if nl < 0 else nl + 1
        end = min(end, size)
        if pos >= end:
            return pos, pos, pos
        if m[end - 1] == 0x0A:  # the range ends with a line
            return pos, pos, end
        nl = m.rfind(b"\n", pos, end)
        last = pos if nl < 0 else nl + 1
        limit = last + HUGE_LINE_BYTES
        nl = m.find(b"\n", end, limit)
        if nl >= 0:
            return pos, last, nl + 1
        return pos, last, size if size <= limit else -1


class _Line:
    """A huge line of the file `fh` (or of a block in memory): at `offset`, numbered `line_no`."""

    def __init__(
        self, fh: BufferedReader | io.BytesIO, offset: int, line_no: int, source: SourceInfo, compact: bool
    ) -> None:
        self.fh = fh
        self.offset = offset
        self.line_no = line_no
        self.source = source
        self.compact = compact

    def whole(self) -> Chunk:
        self.fh.seek(self.offset)
        return decode_lines_fast(self.fh.readline(), self.line_no, self.source, compact=self.compact)[0]

    def in_pieces(self, head: bytes, pack: Callable[[Chunk], T], out: list[T]) -> bool:
        """Its pieces' chunks through `pack` onto `out` (`head`: the line's first bytes); False
        (with some of them there) when the line has not the shape for it or the native scan
        declines any of it."""
        first = _prefix(head)
        m = _FIRST_KEY.match(head, first) if first >= 0 else None
        if m is None:
            return False
        cut = b"}," + m.group()  # a record's end and the next one's start, as the first record starts
        marker = None if head.startswith(b'{"resourceLogs"') else _SPAN_MARK
        p0 = first
        buf = bytearray(p0 + PIECE_BYTES + len(_CLOSE))  # the prefix, then a piece's records, read in place
        buf[:p0] = head[:p0]
        view = memoryview(buf)
        pos = self.offset + p0  # where the piece's records start in the file
        while True:
            self.fh.seek(pos)
            n = self.fh.readinto(view[p0 : p0 + PIECE_BYTES])
            nl = buf.find(b"\n", p0, p0 + n)
            if nl >= 0 or n < PIECE_BYTES:  # the line ends in this piece: its own bytes close it
                got = self._scan(view[: nl if nl >= 0 else p0 + n])
                if got is None:
                    return False
                out.append(pack(got[0]))
                return True
            at = _last_cut(view, cut, marker, p0, p0 + n)
            if at < 0:
                return False  # a record of more than a piece
            buf[at + 1 : at + 1 + len(_CLOSE)] = _CLOSE
            got = self._scan(view[: at + 1 + len(_CLOSE)])
            # one group, whose records array closes where the cut closed it: the piece held
            # records of the line's first group only, cut between two of them
            if got is None or got[1] != [at + 2]:
                return False
            out.append(pack(got[0]))
            pos += at + 2 - p0

    def _scan(self, doc: memoryview) -> tuple[Chunk, list[int]] | None:
        got = scan_piece(doc, self.line_no, self.source, compact=self.compact)
        if got is None:
            return None
        spans, logs, ends = got
        return Chunk(spans=spans, logs=logs), ends


def _last_cut(view: memoryview, cut: bytes, marker: bytes | None, start: int, end: int) -> int:
    """The last `cut` in view[start:end] whose object looks like a record (it holds `marker`):
    a link starts as a span does, and a piece cut between two links is declined whole."""
    buf = view.obj
    assert isinstance(buf, bytearray)
    limit = end
    for _ in range(_CUT_TRIES):
        at = buf.rfind(cut, start, limit)
        if at < 0 or marker is None:
            return at
        try:
            _RAW.decode(view[at + 2 : end])
        except msgspec.DecodeError as exc:
            m = _TRAILING.search(str(exc))
            if m is not None and buf.find(marker, at + 2, at + 1 + int(m.group(1))) >= 0:
                return at
        limit = at
    return -1


def _prefix(head: bytes) -> int:
    """Where the first record starts when `head` opens a line of the cut shape (the module
    docstring: one resource's first scope group's records, with the resource and the scope
    written before them), else -1."""
    if not head.startswith(b'{"'):
        return -1
    m = _NAME.match(head, 1)
    if m is None or m.group(1) not in _LEVELS or not head.startswith(b"[{", m.end()):
        return -1
    groups, records = _LEVELS[m.group(1)]
    pos = _members(head, m.end() + 2, b"resource", groups)
    if pos < 0:
        return -1
    return _members(head, pos + 1, b"scope", records)


def _members(head: bytes, pos: int, needed: bytes, array: bytes) -> int:
    """Members of an object from `pos` up to `array`'s first element: where that element (an
    object) starts, or -1 when `needed` (not null) is not among them, a name is not plain, or
    `array` is no array of objects. Values are skimmed by msgspec."""
    seen = False
    while True:
        m = _NAME.match(head, pos)
        if m is None:
            return -1
        name, pos = m.group(1), m.end()
        if name == array:
            return pos + 1 if seen and head.startswith(b"[{", pos) else -1
        if name.startswith(b"instrumentationLibrary"):
            return -1  # the legacy names: which array counts depends on members that may follow
        end = _value_end(head, pos)
        if end < 0 or not head.startswith(b",", end):
            return -1
        if name == needed and head[pos:end] != b"null":
            seen = True
        pos = end + 1


def _value_end(buf: bytes, pos: int) -> int:
    """The end of the JSON value at `pos` (no whitespace before it), or -1."""
    try:
        _RAW.decode(memoryview(buf)[pos:])
    except msgspec.DecodeError as exc:
        m = _TRAILING.search(str(exc))
        return pos + int(m.group(1)) - 1 if m else -1
    return -1  # nothing after it: the line cannot end inside its prefix
