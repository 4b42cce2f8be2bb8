"""Where inputs come from and what they are: sources, decompression, format detection.

    PATH… ──expand_sources──► [InputFile] ──open_input──► decompressed stream + head
                                                            │
                                             detect(head) ──► Format (registry, sniff order)

A format is a module exposing

    sniff(head: bytes) -> bool                               # head: first 64 KiB, decompressed
    read(stream: BinaryIO, source: SourceInfo) -> Iterator[Chunk]

listed in `FORMATS` by import string, so a format whose module is not there yet is skipped.
Compression is recognised by magic bytes, never by the file name.
"""

from __future__ import annotations

import glob
import gzip
import importlib
import io
import itertools
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

import zstandard

from ingest.errors import NoInput

__all__ = [
    "HEAD_BYTES",
    "Format",
    "FORMATS",
    "InputFile",
    "expand_sources",
    "compression_of",
    "decompressed",
    "read_head",
    "load_format",
    "detect",
    "iter_lines_blocks",
    "iter_lines_spooled",
    "CORRUPT_ERRORS",
]

HEAD_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class Format:
    name: str
    module: str  # import string of the module with sniff() and read()


# Sniff order matters: the OTLP JSON sniff looks for OTLP keys only; Jaeger ("data" +
# "processes") and Zipkin (a top-level array) come next; the protobuf sniff is a structural
# guess on binary data, so it goes last.
FORMATS: tuple[Format, ...] = (
    Format("otlp_json", "ingest.otlp_json"),
    Format("jaeger", "ingest.jaeger"),
    Format("zipkin", "ingest.zipkin"),
    Format("otlp_proto", "ingest.otlp_proto"),
)


@dataclass(frozen=True)
class InputFile:
    """One input: `path` as the user gave or a folder walk found it; `fs_path` None for stdin."""

    path: str
    fs_path: Path | None
    problem: str | None = None  # a folder the walk could not read: reported as such, not skipped silently

    @property
    def is_stdin(self) -> bool:
        return self.fs_path is None


def _walk(folder: Path) -> list[InputFile]:
    out: list[InputFile] = []

    def unreadable(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else folder
        out.append(InputFile(str(where), where, exc.strerror or type(exc).__name__))

    for root, dirs, files in os.walk(folder, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(
            InputFile(str(Path(root) / f), Path(root) / f) for f in sorted(files) if not f.startswith(".")
        )
    return out


def _expand_one(arg: str) -> list[InputFile]:
    if arg == "-":
        return [InputFile("-", None)]
    p = Path(arg).expanduser()
    if p.is_dir():
        return _walk(p)
    if p.is_file():
        return [InputFile(arg, p)]
    if glob.has_magic(arg):
        hits = sorted(glob.glob(os.path.expanduser(arg), recursive=True))
        if not hits:
            raise NoInput(
                f"no files match {arg!r}: check the pattern (quote it so the shell leaves it alone)"
            )
        out: list[InputFile] = []
        for h in hits:
            out.extend(_expand_one(h))
        return out
    raise NoInput(f"no such file or folder: {arg}")


def expand_sources(paths: Sequence[str]) -> list[InputFile]:
    """Files, folders (recursive, hidden names skipped), globs and "-" (stdin), deduplicated in order."""
    if not paths:
        raise NoInput("no input given: pass files, folders, globs or '-' for stdin")
    seen: set[str] = set()
    out: list[InputFile] = []
    for arg in paths:
        for f in _expand_one(arg):
            key = "-" if f.fs_path is None else str(f.fs_path.resolve())
            if key not in seen:
                seen.add(key)
                out.append(f)
    if not out:
        raise NoInput(f"no files found under {', '.join(paths)}")
    return out


def compression_of(head: bytes) -> str | None:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


class _Prefixed(io.RawIOBase):
    """`prefix` then the rest of `stream`: lets us peek at a stream that cannot seek."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = memoryview(prefix)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        read = getattr(self._stream, "read1", self._stream.read)  # never hold data back on an error
        data = read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


CORRUPT_ERRORS = (EOFError, OSError, zlib.error, zstandard.ZstdError)  # truncated or corrupt compression


def _read_upto(stream: BinaryIO, n: int) -> bytes:
    """Up to `n` bytes; a stream that breaks early gives what it had (reading on raises again)."""
    parts, got = [], 0
    while got < n:
        try:
            data = stream.read(n - got)
        except CORRUPT_ERRORS:
            break
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def read_head(stream: BinaryIO, n: int = HEAD_BYTES) -> tuple[bytes, BinaryIO]:
    """The first `n` bytes and a stream that still yields everything from the start."""
    head = _read_upto(stream, n)
    return head, io.BufferedReader(_Prefixed(head, stream), buffer_size=1 << 20)


def decompressed(stream: BinaryIO) -> tuple[BinaryIO, str | None]:
    """`stream` decompressed when its magic bytes say gzip or zstd; the compression's name."""
    magic, stream = read_head(stream, 4)
    kind = compression_of(magic)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb"), kind  # type: ignore[return-value]  # a GzipFile is no typing.BinaryIO
    if kind == "zstd":
        return io.BufferedReader(_ZstdFrames(stream), buffer_size=1 << 20), kind
    return stream, None


_ZSTD_PIECE = 16384  # compressed bytes fed at a time (a corrupt one loses at most its piece's output)


class _ZstdFrames(io.RawIOBase):
    """zstd frames one after another, decompressed; EOFError when the input ends inside a frame.

    zstandard's stream_reader returns a clean end of stream for a file cut mid-frame, so a
    truncated .zst lost its tail without a word; gzip raises in that case, and so does this."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._in_frame = False  # bytes of the current frame were fed and it has not ended
        self._out = b""
        self._pos = 0  # what of _out was handed out (no copy of the rest on each read)
        self._eof = False
        self._error: zstandard.ZstdError | None = None  # raised once what came before it is read

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._out and not self._eof:
            chunk = self._raw.read(1 << 16)  # small bites: the output of one is held whole
            if not chunk:
                self._eof = True
                if self._in_frame:
                    raise EOFError("the zstd input ended inside a frame (truncated?)")
                return
            out: list[bytes] = []
            try:
                # fed in pieces: a corrupt byte loses the output of its piece only, not the
                # records that decompressed before it (they are handed out, then the error)
                for at in range(0, len(chunk), _ZSTD_PIECE):
                    self._feed(chunk[at : at + _ZSTD_PIECE], out)
            except zstandard.ZstdError as exc:
                self._error, self._eof = exc, True
            self._out = b"".join(out)

    def _feed(self, data: bytes, out: list[bytes]) -> None:
        out.append(self._obj.decompress(data))
        self._in_frame = True
        while self._obj.eof:  # a frame ended: what follows starts the next one
            rest = self._obj.unused_data
            self._obj = self._dctx.decompressobj()
            self._in_frame = bool(rest)
            if not rest:
                break
            out.append(self._obj.decompress(rest))

    def readinto(self, b: Any) -> int:
        if self._pos >= len(self._out):
            self._out, self._pos = b"", 0
            if self._error is not None:
                raise self._error
            self._fill()
        n = min(len(b), len(self._out) - self._pos)
        b[:n] = memoryview(self._out)[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


_LOADED: dict[str, ModuleType | None] = {}


def load_format(fmt: Format) -> ModuleType | None:
    """The format's module, or None while it does not exist yet."""
    if fmt.module not in _LOADED:
        try:
            _LOADED[fmt.module] = importlib.import_module(fmt.module)
        except ModuleNotFoundError as exc:
            if exc.name != fmt.module:
                raise
            _LOADED[fmt.module] = None
    return _LOADED[fmt.module]


def detect(head: bytes) -> Format | None:
    """The first registered format whose sniff accepts `head` (decompressed)."""
    for fmt in FORMATS:
        mod = load_format(fmt)
        if mod is not None and mod.sniff(head):
            return fmt
    return None


def iter_lines_blocks(stream: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    """Blocks of about `block_bytes` that end on a line break (the last may not): see
    `iter_lines_spooled`, which this is without a spool."""
    for block in iter_lines_spooled(stream, block_bytes, None, 0):
        assert isinstance(block, bytes)
        yield block


def iter_lines_spooled(
    stream: BinaryIO, block_bytes: int, spool: Path | None, huge_bytes: int
) -> Iterator[bytes | Path]:
    """Blocks of about `block_bytes` that end on a line break (the last may not).

    Read in pieces of at most 1 MiB, so a compressed input that breaks off loses nothing
    before the break: what was read is yielded, then the error is raised. A line longer than a
    block is kept as its pieces until its break comes, and joined once (joining it again every
    round copied a 30 MB line about eight times over, three copies of it alive at a time).
    With a `spool` folder, a line found longer than `huge_bytes` is written to a file there as
    it is read, and that file's path is yielded in its place (the file holds the line alone,
    its break included): such a line is then never in memory whole."""
    carry: list[bytes] = []  # what follows the last break: pieces with no break in them
    read = getattr(stream, "read1", stream.read)  # read1: one underlying read, nothing held back
    after = b""  # what followed a spooled line's break: read again, as new bytes
    while True:
        pieces, got = carry, 0  # got: new bytes this round
        error: BaseException | None = None
        old = len(pieces)
        while got < block_bytes:
            try:
                data, after = (after, b"") if after else (read(min(block_bytes - got, 1 << 20)), b"")
            except CORRUPT_ERRORS as exc:
                error = exc
                break
            if not data:
                break
            pieces.append(data)
            got += len(data)
        if error is not None or got == 0:  # end of input (or of what is readable)
            block = b"".join(pieces)
            if block:
                yield block
            if error is not None:
                raise error
            return
        for i in range(len(pieces) - 1, old - 1, -1):  # the last break is in this round's pieces
            cut = pieces[i].rfind(b"\n")
            if cut >= 0:
                break
        else:
            carry = pieces
            if spool is not None and sum(map(len, carry)) > huge_bytes:
                path, after, error = _spooled(read, min(block_bytes, 1 << 20), carry, spool)
                carry = []
                yield path
                if error is not None:
                    raise error
            continue
        last = pieces[i]
        carry = [last[cut + 1 :], *pieces[i + 1 :]] if cut + 1 < len(last) else pieces[i + 1 :]
        pieces[i] = last[: cut + 1]
        del pieces[i + 1 :]
        block = b"".join(pieces)
        pieces.clear()
        yield block


_spools = itertools.count()


def _spooled(
    read: Callable[[int], bytes], piece: int, head: list[bytes], folder: Path
) -> tuple[Path, bytes, BaseException | None]:
    """The line that begins with `head` (pieces with no break), read on in `piece` bytes a time
    and written to a file of `folder` up to its break -> (the file, what followed the break in
    the last read, the read's error if the input broke off: what was read of the line is in the
    file then)."""
    path = folder / f"line-{os.getpid()}-{next(_spools)}.json"
    with open(path, "wb") as out:
        for data in head:
            out.write(data)
        while True:
            try:
                data = read(piece)
            except CORRUPT_ERRORS as exc:
                return path, b"", exc
            if not data:
                return path, b"", None
            nl = data.find(b"\n")
            if nl < 0:
                out.write(data)
                continue
            out.write(data[: nl + 1])
            return path, data[nl + 1 :], None
