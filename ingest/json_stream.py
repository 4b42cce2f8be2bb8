"""The elements of a JSON array, one at a time, from a stream of any size.

A Jaeger search response is one document, `{"data":[trace, trace, …], "total":…}`, that can
be several GB; Zipkin's is one array of spans. Loading either whole is not an option, and a
token-level incremental parser (ijson's C backend) is several times slower than a typed decode
before any row is built (docs/benchmarks.md, "Jaeger files"). This module cuts the document into
the raw bytes of each array element instead, and the readers decode each element with msgspec
(typed), so memory is bounded by one element plus one read block.

How an element's end is found: msgspec decodes the buffer from the element's first byte as
`msgspec.Raw`, which only skims the value; when more JSON follows, msgspec stops with
"trailing characters (byte N)", and the element ends before byte N - 1 (msgspec counts the
first trailing character as read; the element's trailing whitespace stays in its bytes). When the buffer ends inside
the element ("Input data was truncated") the buffer grows geometrically and the skim is
retried. Any other decode error is malformed JSON: the stream cannot be resynchronised, so
`MalformedJSON` ends the iteration (the readers turn it into one reject).

    iter_array(stream, key="data")
      [e1, e2, …]                   -> Element(e1), Element(e2), …
      {"data":[e1, …], "k": v, …}   -> Element(e1), …, Members({"k": raw v, …})
      {"traceID":…, "spans":…}      -> Members({"traceID": raw, "spans": raw})   (no `key` member)
      several documents in a row    -> the above for each, in order
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import msgspec

__all__ = ["READ_BYTES", "Element", "Members", "MalformedJSON", "iter_array"]

READ_BYTES = 1 << 20
_MAX_SNIPPET = 64 * 1024
_WS = re.compile(rb"[ \t\r\n]*")
_TOKENS = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')
_AT = re.compile(r"\(byte (\d+)\)")
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
_RAW = msgspec.json.Decoder(msgspec.Raw)
_STR = msgspec.json.Decoder(str)
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Element:
    """One element of the streamed array: its bytes, where it starts, its 1-based index."""

    raw: bytes
    offset: int  # byte offset of the element's first byte in the (decompressed) stream
    index: int  # 1-based, counted over the whole stream


@dataclass(frozen=True)
class Members:
    """The members of a top-level object other than the streamed array, raw, at its end."""

    members: dict[str, bytes]
    offset: int  # byte offset of the object's "{"


class MalformedJSON(ValueError):
    """The stream is not JSON from `offset` on; `raw` is up to 64 KiB from there."""

    def __init__(self, offset: int, reason: str, raw: bytes) -> None:
        super().__init__(f"malformed JSON at byte {offset}: {reason}")
        self.offset = offset
        self.reason = reason
        self.raw = raw


class _Scanner:
    """A read buffer over the stream with a cursor; `base` is the stream offset of buf[0]."""

    def __init__(self, stream: BinaryIO, read_bytes: int) -> None:
        self.stream = stream
        self.read_bytes = read_bytes
        self.buf = b""
        self.pos = 0
        self.base = 0
        self.eof = False

    def fill(self, at_least: int = 0) -> bool:
        """Drop consumed bytes and read more; False at end of stream."""
        if self.eof:
            return False
        want = max(self.read_bytes, at_least)
        data = self.stream.read(want)
        if not data:
            self.eof = True
            return False
        self.base += self.pos
        self.buf = self.buf[self.pos :] + data if self.pos < len(self.buf) else data
        self.pos = 0
        return True

    def skip_ws(self) -> None:
        while True:
            m = _WS.match(self.buf, self.pos)
            self.pos = m.end() if m else self.pos
            if self.pos < len(self.buf) or not self.fill():
                return

    def peek(self) -> bytes:
        self.skip_ws()
        return self.buf[self.pos : self.pos + 1]

    def expect(self, chars: bytes) -> bytes:
        c = self.peek()
        if not c or c not in chars:
            what = "end of input" if not c else repr(c.decode("latin-1"))
            raise self.malformed(f"expected one of {chars.decode()!r}, found {what}")
        self.pos += 1
        return c

    def malformed(self, reason: str, at: int | None = None) -> MalformedJSON:
        at = self.pos if at is None else at
        return MalformedJSON(self.base + at, reason, self.buf[at : at + _MAX_SNIPPET])

    def value(self) -> tuple[bytes, int]:
        """The raw bytes of the JSON value at the cursor and its stream offset."""
        self.skip_ws()
        start = self.pos
        while True:
            view = memoryview(self.buf)[start:]
            try:
                _RAW.decode(view)
            except RecursionError:  # nested deeper than msgspec goes: find the end by hand
                view.release()
                end = self._deep_value_end(start)
                if end is None:
                    start = self._grow(start)
                    continue
                break
            except msgspec.DecodeError as exc:
                msg = str(exc)
                m = _TRAILING.search(msg)
                if m:
                    # msgspec counts the first trailing character as read: N is one past it
                    end = start + int(m.group(1)) - 1
                    if end <= start:
                        raise self.malformed(msg, start) from None
                    break
                if "truncated" in msg:
                    start = self._grow(start)
                    continue
                at = _AT.search(msg)
                if at and start + int(at.group(1)) >= len(self.buf) - 64 and self._grow_ok(start):
                    # a number or literal cut by the block end ("0." reads as an invalid number)
                    start = self.pos
                    continue
                raise self.malformed(msg.removeprefix("JSON is malformed: "), start) from None
            finally:
                view.release()
            # the value runs to the end of the buffer: a number may go on in the next block
            if self.eof or not self._grow_ok(start):
                end = len(self.buf)
                break
            start = self.pos
        raw = self.buf[start:end]
        self.pos = end
        return raw, self.base + start

    def _deep_value_end(self, start: int) -> int | None:
        """End of the array/object at `start` by counting brackets outside strings (slow, rare);
        None when the buffer ends first."""
        depth = 0
        for m in _TOKENS.finditer(self.buf, start):
            c = m.group()
            if c in (b"[", b"{"):
                depth += 1
            elif c in (b"]", b"}"):
                depth -= 1
                if depth == 0:
                    return m.end()
        return None

    def _grow(self, start: int) -> int:
        self.pos = start
        if not self.fill(at_least=len(self.buf) - start):
            raise self.malformed("input ends inside a JSON value", start)
        return self.pos

    def _grow_ok(self, start: int) -> bool:
        self.pos = start
        return self.fill(at_least=len(self.buf) - start)


def _array(sc: _Scanner, counter: list[int]) -> Iterator[Element]:
    sc.expect(b"[")
    if sc.peek() == b"]":
        sc.pos += 1
        return
    while True:
        raw, offset = sc.value()
        counter[0] += 1
        yield Element(raw, offset, counter[0])
        if sc.expect(b",]") == b"]":
            return


def _object(sc: _Scanner, key: str | None, counter: list[int]) -> Iterator[Element | Members]:
    offset = sc.base + sc.pos
    sc.expect(b"{")
    members: dict[str, bytes] = {}
    if sc.peek() == b"}":
        sc.pos += 1
    else:
        while True:
            raw_name, at = sc.value()
            try:
                name = _STR.decode(raw_name)
            except msgspec.DecodeError:
                raise MalformedJSON(at, "expected a member name", raw_name[:_MAX_SNIPPET]) from None
            sc.expect(b":")
            if key is not None and name == key and sc.peek() == b"[":
                yield from _array(sc, counter)
            else:
                members[name] = sc.value()[0]
            if sc.expect(b",}") == b"}":
                break
    yield Members(members, offset)


def iter_array(
    stream: BinaryIO, key: str | None, read_bytes: int = READ_BYTES
) -> Iterator[Element | Members]:
    """Elements of the top-level array, or of the array under `key` in a top-level object
    (`key` None: only top-level arrays are streamed; an object comes out as Members)."""
    sc = _Scanner(stream, read_bytes)
    while len(sc.buf) < len(_BOM) and sc.fill():
        pass
    if sc.buf.startswith(_BOM):
        sc.pos = len(_BOM)
    counter = [0]
    while True:
        c = sc.peek()
        if not c:
            return
        if c == b"[":
            yield from _array(sc, counter)
        elif c == b"{":
            yield from _object(sc, key, counter)
        else:
            raise sc.malformed("expected a JSON object or array")
