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

A whole (pretty-printed) document goes the careful path. Offsets are 1-based line numbers (unit
"line"), or the record's 1-based index in a whole-document input (unit "record").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from ingest.otlp_fast import decode_lines_fast
from ingest.otlp_model import Sink
from ingest.records import Chunk, SourceInfo

__all__ = [
    "sniff",
    "read",
    "is_line_mode",
    "decode_lines",
    "decode_document",
    "BLOCK_BYTES",
]

BLOCK_BYTES = 8 * 1024 * 1024


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
            return True  # a whole (or head-truncated) object on one line
    return False


def read(stream: BinaryIO, source: SourceInfo) -> Iterator[Chunk]:
    from ingest.formats import iter_lines_blocks, read_head

    head, stream = read_head(stream)
    if not is_line_mode(head):
        data = stream.read()
        yield decode_document(data, source)
        return
    line = 1
    for block in iter_lines_blocks(stream, BLOCK_BYTES):
        chunk, nlines = decode_lines_fast(block.removeprefix(_BOM) if line == 1 else block, line, source)
        line += nlines
        yield chunk
