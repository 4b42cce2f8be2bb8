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

Several keys may be streamed, and a dotted key reaches into a member object (OTLP/JSON's
documents; `Element.key` says which array an element came from, `Members.key` which object):

    iter_array(stream, ("resourceSpans", "result.resourceSpans"))
      {"resourceSpans":[e1], "result":{"resourceSpans":[e2], "x":1}}
          -> Element(e1, key="resourceSpans"), Element(e2, key="result.resourceSpans"),
             Members({"x": b"1"}, key="result"), Members({}, key="")
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO, cast

import msgspec

from ingest.formats import CORRUPT_ERRORS

try:
    import simdjson
except ImportError:  # a platform without its wheel: msgspec checks every run
    simdjson = None  # type: ignore[assignment]
# `import … as`, not `from ingest import`: mypy does not find a submodule by the latter
try:
    import ingest._otlpscan as _native
except ImportError:  # no compiler where it was installed: no guess at a pretty value's end
    _native = None  # type: ignore[assignment]

__all__ = [
    "READ_BYTES",
    "SPLIT_BYTES",
    "Element",
    "Split",
    "Members",
    "MalformedJSON",
    "iter_array",
    "iter_cut",
]

READ_BYTES = 1 << 20
SPLIT_BYTES = 16 << 20  # an element longer than this is cut along its arrays (when `split` says how)
_MAX_SNIPPET = 64 * 1024
_WS = re.compile(rb"[ \t\r\n]*")
_TOKENS = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')
_AT = re.compile(r"\(byte (\d+)\)")
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
_RAW = msgspec.json.Decoder(msgspec.Raw)
_RAWS = msgspec.json.Decoder(list[msgspec.Raw])
_STR = msgspec.json.Decoder(str)
_BOM = b"\xef\xbb\xbf"
_NO_SIMD = False  # tests set it to cut with msgspec alone (no pretty guess, no simdjson check of a run)


@dataclass(frozen=True)
class Element:
    """One element of a streamed array: its bytes, where it starts, its 1-based index."""

    raw: bytes
    offset: int  # byte offset of the element's first byte in the (decompressed) stream
    index: int  # 1-based, counted over the whole stream
    key: str = ""  # the (dotted) member holding the array; "" for a top-level array


@dataclass(frozen=True)
class Members:
    """The members of an object other than the streamed arrays (and objects streamed into),
    raw, at its end."""

    members: dict[str, bytes]
    offset: int  # byte offset of the object's "{"
    key: str = ""  # the (dotted) member this object is; "" for a top-level object


@dataclass(frozen=True)
class Run:
    """Consecutive elements of a streamed array, as written (with the commas between them)."""

    raw: bytes
    offset: int  # byte offset of the first element's first byte
    key: str


@dataclass(frozen=True)
class Split:
    """The start of an element cut along its arrays (see `iter_array`): its members before
    the first of them, raw; `key` is the array the element belongs to."""

    members: dict[str, bytes]
    offset: int  # byte offset of the element's "{"
    key: str


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
        # read1: one underlying read at a time, so that what a compressed input gave before it
        # broke off is kept (a read() of 1 MiB drops it with the error)
        self._read = getattr(stream, "read1", stream.read)
        self.read_bytes = read_bytes
        self.buf = b""
        self.pos = 0
        self.base = 0
        self.eof = False
        self.error: BaseException | None = None  # the input broke off here (after `buf`)
        self._simd = simdjson.Parser() if simdjson is not None and not _NO_SIMD else None

    def fill(self, at_least: int = 0) -> bool:
        """Drop consumed bytes and read more; False at end of stream. A compressed input that
        breaks off ends the stream there, its error kept in `error` for the end of the walk."""
        if self.eof:
            return False
        want = max(self.read_bytes, at_least)
        pieces: list[bytes] = []
        got = 0
        while got < want:
            try:
                piece = self._read(want - got)
            except CORRUPT_ERRORS as exc:
                self.error, self.eof = exc, True
                break
            if not piece:
                self.eof = True
                break
            pieces.append(piece)
            got += len(piece)
        if not pieces:
            return False
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
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
        got = self.value_within(None)
        assert got is not None  # no limit: never None
        return got

    def value_within(self, limit: int | None) -> tuple[bytes, int] | None:
        """`value()`, or None (the cursor left at the value) once it is known to be longer
        than `limit` bytes."""
        self.skip_ws()
        start, end = self._pretty_value(self.pos, limit) or self._skim(self.pos, limit)
        if end is None or (limit is not None and end - start > limit):
            self.pos = start
            return None
        raw = self.buf[start:end]
        self.pos = end
        return raw, self.base + start

    def _pretty_value(self, start: int, limit: int | None) -> tuple[int, int] | None:
        """(start, end) of the value at `start` found from the layout (`_pretty_end`), reading on
        while its end is past the buffer; None to leave it to the skim (the cursor at it)."""
        head = self._pretty_head(start)
        while head is not None:
            end = self._pretty_end(start, head)
            if end is None:
                break
            if end >= 0:
                return start, end
            # its end is past the buffer: read on, as the skim would
            if (limit is not None and len(self.buf) - start > limit) or not self._grow_ok(start):
                break
            start = self.pos
        self.pos = start
        return None

    def _skim(self, start: int, limit: int | None) -> tuple[int, int | None]:
        """(start, end) of the value at `start` as msgspec skims it; end None once the value is
        known to be longer than `limit`. Malformed JSON raises MalformedJSON."""
        while True:
            view = memoryview(self.buf)[start:]
            try:
                _RAW.decode(view)
            except RecursionError:  # nested deeper than msgspec goes: find the end by hand
                view.release()
                end = self._deep_value_end(start)
                if end is None:
                    if limit is not None and len(self.buf) - start > limit:
                        return start, None
                    start = self._grow(start)
                    continue
                return start, end
            except msgspec.DecodeError as exc:
                msg = str(exc)
                m = _TRAILING.search(msg)
                if m:
                    # msgspec counts the first trailing character as read: N is one past it
                    end = start + int(m.group(1)) - 1
                    if end <= start:
                        raise self.malformed(msg, start) from None
                    return start, end
                if "truncated" in msg:
                    if limit is not None and len(self.buf) - start > limit:
                        return start, None
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
                return start, len(self.buf)
            start = self.pos

    def run(self, want: int) -> tuple[bytes, int]:
        """The array elements from the cursor on, as written, up to about `want` bytes: at least
        one; more when the layout shows where they end (pretty-printed: "}," at the indentation
        of the first element's closing brace; a closing brace cannot be in a string), checked by
        skimming them as one array."""
        self.skip_ws()
        if len(self.buf) - self.pos < want and not self.eof:
            self.fill(want - (len(self.buf) - self.pos))
        raw, offset = self.value()
        start = self.pos - len(raw)
        closing = raw.rstrip()
        nl = closing.rfind(b"\n")
        if not closing.endswith(b"}") or nl < 0:
            return raw, offset
        pattern = closing[nl:] + b","
        limit = min(len(self.buf), start + want)
        for _ in range(2):
            at = self.buf.rfind(pattern, self.pos, limit)
            if at < 0:
                break
            end = at + len(pattern) - 1
            try:
                self._check(b"[" + memoryview(self.buf)[start:end] + b"]")
            except msgspec.DecodeError as exc:  # the array ends before: find its last element there
                m = _TRAILING.search(str(exc))
                if m is None:
                    break
                limit = start + int(m.group(1)) - 1
                continue
            except RecursionError:  # an element nested deeper than msgspec goes: the first alone
                break
            self.pos = end
            return self.buf[start:end], offset
        return raw, offset

    def _pretty_head(self, start: int) -> bytes | None:
        """The line head that would close the object or array at `start` (its line's indentation
        and the closing bracket), when that value opens its line; else None."""
        if self._simd is None or _native is None:
            return None
        buf = self.buf
        opening = buf[start : start + 1]
        if opening != b"{" and opening != b"[":
            return None
        line = buf.rfind(b"\n", 0, start) + 1
        indent = buf[line:start]
        if not line or indent.strip(b" \t"):  # not the first thing on its line
            return None
        return indent + (b"}" if opening == b"{" else b"]")

    def _pretty_end(self, start: int, head: bytes) -> int | None:
        """Where the value at `start` ends, its trailing whitespace included (as the skim below
        gives it), when the layout shows it and simdjson confirms it; -1 when the buffer ends
        first; None to leave it to the skim. Pretty-printed JSON closes a value that opens a
        line at that line's indentation (`head`), and no raw newline is inside a string, so the
        first "\n<head>" after `start` is a candidate end; the bytes up to it parse as one value
        only if it is that value's end. A wrong guess, or anything simdjson refuses, leaves it to
        the skim (msgspec's, whose errors are the ones reported; ~1.3x the CPU here)."""
        buf = self.buf
        at = _native.line_close(buf, start, head)
        if at < 0:
            return -1
        end = at + 1 + len(head)
        try:
            self._simd.parse(memoryview(buf)[start:end])  # type: ignore[union-attr]
        except Exception:  # any refusal, a wrong guess included: the skim decides
            return None
        m = _WS.match(buf, end)
        end = m.end() if m else end
        return end if end < len(buf) or self.eof else -1

    def _check(self, doc: bytes) -> None:
        """Nothing when `doc` is JSON, else msgspec's DecodeError for it. simdjson checks first
        (~3x msgspec's skim on runs of pretty-printed records); what it refuses goes to msgspec,
        whose answer stands: simdjson is the stricter of the two (it refuses numbers past 64
        bits, invalid UTF-8, nesting over 1024 deep, which msgspec's skim lets through), and
        never accepts what msgspec refuses (tests/test_pretty_cut.py holds it to that)."""
        if self._simd is not None:
            try:
                self._simd.parse(doc)  # the document is dropped at once: the parser is reused
                return
            except Exception:  # any refusal: msgspec decides
                pass
        _RAWS.decode(doc)

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


def _array(
    sc: _Scanner, counter: list[int], key: str, keys: _Keys
) -> Iterator[Element | Split | Members | Run]:
    sc.expect(b"[")
    if sc.peek() == b"]":
        sc.pos += 1
        return
    cut = keys.split.get(key)
    if key in keys.runs:
        while True:
            raw, offset = sc.run(keys.run_bytes)
            yield Run(raw, offset, key)
            if sc.expect(b",]") == b"]":
                return
    while True:
        got = sc.value_within(keys.split_bytes) if cut and sc.peek() == b"{" else sc.value()
        if got is None:
            assert cut is not None
            yield from _split(sc, counter, key, cut, keys)
        else:
            counter[0] += 1
            yield Element(got[0], got[1], counter[0], key)
        if sc.expect(b",]") == b"]":
            return


def _split(
    sc: _Scanner, counter: list[int], key: str, cut: frozenset[str], keys: _Keys
) -> Iterator[Element | Split | Members | Run]:
    """An element of the array `key` too big to hand out whole, cut along its arrays `cut`."""
    offset = sc.base + sc.pos
    sc.expect(b"{")
    path = key + "[]"
    members: dict[str, bytes] = {}
    opened = False
    if sc.peek() == b"}":
        sc.pos += 1
    else:
        while True:
            raw_name, at = sc.value()
            name = _name(raw_name, at)
            sc.expect(b":")
            if name in cut and sc.peek() == b"[":
                if not opened:
                    opened = True
                    yield Split(dict(members), offset, key)
                yield from _array(sc, counter, f"{path}.{name}", keys)
            else:
                members[name] = sc.value()[0]
            if sc.expect(b",}") == b"}":
                break
    if not opened:
        yield Split(dict(members), offset, key)
    yield Members(members, offset, path)


def _name(raw_name: bytes, at: int) -> str:
    try:
        return _STR.decode(raw_name)
    except msgspec.DecodeError:
        raise MalformedJSON(at, "expected a member name", raw_name[:_MAX_SNIPPET]) from None


class _Keys:
    """The dotted keys to stream, the objects on the way to them, and how to cut big elements."""

    def __init__(
        self,
        keys: Collection[str],
        split: Mapping[str, Collection[str]],
        split_bytes: int,
        runs: Collection[str] = (),
        run_bytes: int = 0,
    ) -> None:
        self.arrays = frozenset(keys)
        self.objects = frozenset(k.rsplit(".", i)[0] for k in keys for i in range(1, k.count(".") + 1))
        self.split = {k: frozenset(v) for k, v in split.items()}
        self.split_bytes = split_bytes
        self.runs = frozenset(runs)
        self.run_bytes = run_bytes


def _object(
    sc: _Scanner, keys: _Keys, path: str, counter: list[int]
) -> Iterator[Element | Split | Members | Run]:
    offset = sc.base + sc.pos
    sc.expect(b"{")
    members: dict[str, bytes] = {}
    if sc.peek() == b"}":
        sc.pos += 1
    else:
        while True:
            raw_name, at = sc.value()
            name = _name(raw_name, at)
            sc.expect(b":")
            inner = f"{path}.{name}" if path else name
            if inner in keys.arrays and sc.peek() == b"[":
                yield from _array(sc, counter, inner, keys)
            elif inner in keys.objects and sc.peek() == b"{":
                yield from _object(sc, keys, inner, counter)
            else:
                members[name] = sc.value()[0]
            if sc.expect(b",}") == b"}":
                break
    yield Members(members, offset, path)


def iter_array(
    stream: BinaryIO, key: str | Collection[str] | None, read_bytes: int = READ_BYTES
) -> Iterator[Element | Members]:
    """Elements of the top-level array, or of the arrays under `key` (one key or several,
    dotted to reach into member objects) in a top-level object (`key` None: only top-level
    arrays are streamed; an object comes out as Members)."""
    keys = _Keys(() if key is None else (key,) if isinstance(key, str) else key, {}, 0)
    return cast(Iterator[Element | Members], _iter(stream, keys, read_bytes))  # no Split, no Run


def iter_cut(
    stream: BinaryIO,
    keys: Collection[str],
    split: Mapping[str, Collection[str]],
    split_bytes: int = SPLIT_BYTES,
    read_bytes: int = READ_BYTES,
    runs: Collection[str] = (),
    run_bytes: int = 1 << 19,
) -> Iterator[Element | Split | Members | Run]:
    """`iter_array`, where an object element of an array named in `split` ({array key: member
    names}) longer than `split_bytes` is not handed out whole but cut along those member
    arrays: Split (its members before them), their elements (key "<array key>[].<member>",
    cut in turn when `split` names that key), then Members (key "<array key>[]") at its end.

    The elements of an array named in `runs` come as Runs of up to about `run_bytes`, as many
    as one skim can check (one Python step for many small records)."""
    return _iter(stream, _Keys(keys, split, split_bytes, runs, run_bytes), read_bytes)


def _iter(stream: BinaryIO, keys: _Keys, read_bytes: int) -> Iterator[Element | Split | Members | Run]:
    """The walk; when the input broke off (a cut .gz or .zst), everything before the break is
    handed out, then the input's error is raised (not the JSON's cut end that it made)."""
    sc = _Scanner(stream, read_bytes)
    try:
        yield from _walk(sc, keys)
    except MalformedJSON:
        if sc.error is not None:
            raise sc.error from None
        raise
    if sc.error is not None:
        raise sc.error


def _walk(sc: _Scanner, keys: _Keys) -> Iterator[Element | Split | Members | Run]:
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
            yield from _array(sc, counter, "", keys)
        elif c == b"{":
            yield from _object(sc, keys, "", counter)
        else:
            raise sc.malformed("expected a JSON object or array")
