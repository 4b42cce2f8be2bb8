"""Sources, decompression and format detection (ingest/formats.py)."""

from __future__ import annotations

import gzip
import io
import random
from pathlib import Path

import pytest
import zstandard

from ingest import formats
from ingest.errors import NoInput
from ingest.formats import Format, decompressed, detect, expand_sources, read_head

PUBLIC = Path(__file__).resolve().parent.parent / "fixtures" / "public"


def test_folders_recursive_hidden_skipped_globs_and_dedupe(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    for p in ("a/1.json", "a/b/2.json", ".git/x.json", "a/.hidden.json", "top.json"):
        (tmp_path / p).write_text("{}")
    got = [f.path for f in expand_sources([str(tmp_path / "a"), str(tmp_path / "a" / "b" / "2.json")])]
    assert got == [str(tmp_path / "a" / "1.json"), str(tmp_path / "a" / "b" / "2.json")]
    got = [Path(f.path).name for f in expand_sources([str(tmp_path / "**" / "*.json")])]
    assert sorted(got) == ["1.json", "2.json", "top.json"]
    assert expand_sources(["-"])[0].is_stdin


@pytest.mark.parametrize(
    "arg, message", [("/no/such/file.json", "no such file or folder"), ("/no/such/*.json", "no files match")]
)
def test_missing_inputs_are_no_input(arg: str, message: str):
    with pytest.raises(NoInput, match=message):
        expand_sources([arg])


def test_empty_folder_is_no_input(tmp_path: Path):
    with pytest.raises(NoInput, match="no files found"):
        expand_sources([str(tmp_path)])


@pytest.mark.parametrize(
    "pack, kind",
    [(gzip.compress, "gzip"), (zstandard.ZstdCompressor().compress, "zstd"), (lambda b: b, None)],
)
def test_decompression_by_magic_bytes(pack, kind):
    payload = b'{"resourceSpans": []}\n' * 1000
    stream, found = decompressed(io.BytesIO(pack(payload)))
    assert found == kind
    head, stream = read_head(stream, 100)
    assert head == payload[:100] and stream.read() == payload


def test_detection_order_and_fixtures():
    def fmt(path: Path) -> str | None:
        f = detect(path.read_bytes()[: formats.HEAD_BYTES])
        return f.name if f else None

    assert fmt(PUBLIC / "otlp-examples" / "trace.json") == "otlp_json"
    assert fmt(PUBLIC / "jaeger" / "ui-format" / "otlp2jaeger-in.json") == "otlp_json"
    assert detect(b"hello") is None and detect(b"") is None
    assert [f.name for f in formats.FORMATS] == ["otlp_json", "jaeger", "zipkin", "otlp_proto"]


def test_missing_format_module_is_skipped(monkeypatch):
    monkeypatch.setattr(formats, "FORMATS", (Format("future", "ingest.not_written_yet"),) + formats.FORMATS)
    assert detect((PUBLIC / "otlp-examples" / "trace.json").read_bytes()).name == "otlp_json"


def test_line_mode_versus_document():
    from ingest.otlp_json import is_line_mode, sniff

    assert is_line_mode(b'{"resourceSpans":[]}\n{"resourceSpans":[]}\n')
    assert is_line_mode(b'#broken\n{"resourceSpans":[{"scopeSpans":[')  # a huge first object
    assert not is_line_mode(b'{\n  "resourceSpans": [\n  ]\n}\n')
    assert sniff(b'garbage line\n{"resourceSpans":[]}\n')
    assert not sniff(b'{"data": [{"note": "resourceSpans is just a word here"}]}')


def test_line_blocks_longer_lines_than_blocks():
    data = b"a" * 50 + b"\n" + b"b" * 7 + b"\n" + b"c" * 30
    blocks = list(formats.iter_lines_blocks(io.BytesIO(data), 16))
    assert b"".join(blocks) == data
    assert all(b.endswith(b"\n") for b in blocks[:-1]) and blocks[0].startswith(b"a" * 50 + b"\n")
    assert blocks[-1] == b"c" * 30


def test_handoff_through_shared_memory_and_fallback(monkeypatch):
    import pyarrow as pa

    from ingest import handoff
    from ingest.records import Chunk, Reject

    batch = pa.record_batch({"x": list(range(1000))})
    chunk = Chunk(spans=batch, logs=None, rejects=[Reject("f", 1, "r", b"raw")])
    parcel = handoff.pack(chunk)
    if Path("/dev/shm").is_dir():
        assert isinstance(parcel.spans, str) and Path(parcel.spans).exists()
    back = handoff.unpack(parcel)
    assert back.spans.equals(batch) and back.rejects == chunk.rejects
    if isinstance(parcel.spans, str):
        assert not Path(parcel.spans).exists()  # unlinked once mapped
    monkeypatch.setattr(handoff, "_free_bytes", lambda: 0)  # a full /dev/shm: pickled instead
    assert handoff.pack(chunk).spans is batch


def _zstd_frames(*parts: bytes) -> bytes:
    c = zstandard.ZstdCompressor()
    return b"".join(c.compress(p) for p in parts)


def test_zstd_reads_every_frame_and_a_cut_one_raises():
    data = b"".join(b"line %d\n" % i for i in range(20_000))
    stream, kind = decompressed(io.BytesIO(_zstd_frames(data[:70_000], data[70_000:])))
    assert kind == "zstd" and stream.read() == data  # frames one after another
    cut = _zstd_frames(data)[:-40]
    stream, _ = decompressed(io.BytesIO(cut))
    with pytest.raises(EOFError, match="ended inside a frame"):
        stream.read()  # a cut .zst used to end cleanly, losing its tail without a word
    stream, _ = decompressed(io.BytesIO(_zstd_frames(b"")))
    assert stream.read() == b""  # an empty frame is a whole one


def _blocks_joined_every_round(stream: io.BytesIO, block_bytes: int) -> list[bytes]:
    """The blocks as iter_lines_blocks cut them before it kept a long line as pieces."""
    out, carry = [], b""
    while True:
        pieces, got = [carry], 0
        while got < block_bytes:
            data = stream.read1(min(block_bytes - got, 1 << 20))
            if not data:
                break
            pieces.append(data)
            got += len(data)
        block = b"".join(pieces)
        if got == 0:
            return out + ([block] if block else [])
        cut = block.rfind(b"\n")
        if cut < 0:
            carry = block
            continue
        carry = block[cut + 1 :]
        out.append(block[: cut + 1])


class _Trickle(io.BytesIO):
    """A stream whose read1 returns fewer bytes than asked, as a decompressor's does."""

    def __init__(self, data: bytes, rng: random.Random) -> None:
        super().__init__(data)
        self.rng = rng

    def read1(self, n: int = -1) -> bytes:
        return super().read1(max(1, min(n, self.rng.randrange(1, 40))))


@pytest.mark.parametrize("seed", range(30))
def test_line_blocks_cut_where_they_did_with_long_lines_kept_as_pieces(seed: int):
    rng = random.Random(seed)
    lines = [
        bytes([97 + rng.randrange(26)]) * rng.choice([0, 1, 5, 30, 200]) for _ in range(rng.randrange(1, 25))
    ]
    data = b"\n".join(lines) + rng.choice([b"", b"\n"])
    block = rng.choice([1, 8, 16, 64])
    got = list(formats.iter_lines_blocks(_Trickle(data, random.Random(seed)), block))
    want = _blocks_joined_every_round(_Trickle(data, random.Random(seed)), block)
    assert got == want
    assert b"".join(got) == data and all(b.endswith(b"\n") for b in got[:-1])


@pytest.mark.parametrize("seed", range(30))
def test_spooled_lines_and_blocks_make_the_input_and_each_spooled_line_is_one_long_line(
    seed: int, tmp_path: Path
):
    """iter_lines_spooled: blocks of whole lines as iter_lines_blocks cuts them, but a line over
    `huge` bytes is a file holding that line alone; all of it, in order, is the input."""
    rng = random.Random(seed)
    lines = [
        bytes([97 + rng.randrange(26)]) * rng.choice([0, 1, 5, 30, 200, 900])
        for _ in range(rng.randrange(1, 25))
    ]
    data = b"\n".join(lines) + rng.choice([b"", b"\n"])
    block, huge = rng.choice([8, 16, 64]), rng.choice([50, 100])
    parts = []
    for got in formats.iter_lines_spooled(_Trickle(data, random.Random(seed)), block, tmp_path, huge):
        if isinstance(got, Path):
            text = got.read_bytes()
            assert len(text) > huge and text.count(b"\n") <= 1 and text.find(b"\n") in (-1, len(text) - 1)
            got.unlink()
            parts.append(text)
        else:
            parts.append(got)
    assert b"".join(parts) == data and all(p.endswith(b"\n") for p in parts[:-1])
    assert any(len(line) > 2 * max(block, huge) for line in lines) <= (len(parts) > 0)


def test_an_input_that_breaks_off_in_a_spooled_line_gives_what_was_read_then_the_error(tmp_path: Path):
    rng = random.Random(5)
    long = bytes(rng.randrange(97, 123) for _ in range(2_000_000))  # letters: zstd blocks of 128 KiB
    whole = zstandard.ZstdCompressor().compress(b"a\n" + long + b"\nb\n")
    stream, _ = decompressed(io.BytesIO(whole[: len(whole) // 2]))  # cut inside the long line
    got = []
    with pytest.raises(formats.CORRUPT_ERRORS):
        for part in formats.iter_lines_spooled(stream, 1024, tmp_path, 4096):
            got.append(part)
    assert got[0] == b"a\n" and isinstance(got[-1], Path)
    assert long.startswith(got[-1].read_bytes()) and got[-1].stat().st_size > 4096  # what was read of it
