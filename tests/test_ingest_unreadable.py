"""Inputs that cannot be read: a file the user may not read, a compressed file cut short.

CI runs as root, where a chmod 000 file is still readable: the test runs `dcr ingest` without the
capabilities that let root read any file (setpriv drops them from the bounding set)."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

import ingest
from ingest import formats

REPO = Path(__file__).resolve().parent.parent
TRACES = REPO / "fixtures" / "scenarios" / "network_delay" / "traces.jsonl"
NO_READ_ANYTHING = [
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
]


def _dcr(args: list[str], home: Path, wrapper: list[str] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "DCR_HOME": str(home)}
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "mcp_server.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _setpriv() -> list[str]:
    tool = shutil.which("setpriv")
    if tool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("setpriv (util-linux) is needed to test unreadable inputs as root")
        pytest.skip("setpriv not installed")
    return [tool, *NO_READ_ANYTHING] if os.geteuid() == 0 else []


def test_an_unreadable_input_is_one_line_and_counted_and_the_others_land(tmp_path: Path):
    wrapper = _setpriv()
    ok, secret = tmp_path / "ok.jsonl", tmp_path / "secret.jsonl"
    shutil.copy(TRACES, ok)
    shutil.copy(TRACES, secret)
    secret.chmod(0)
    r = _dcr(["ingest", str(secret), str(ok), "--dataset", "p", "--json"], tmp_path / "home", wrapper)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    entry = next(s for s in doc["sources"] if s["path"] == str(secret))
    assert entry["skipped"] == "unreadable: Permission denied" and entry["spans"] == 0
    assert doc["spans"] == 684
    assert (
        r.stderr
        == f"warning: {secret}: unreadable: Permission denied; skipped, the other inputs were ingested\n"
    )
    alone = _dcr(["ingest", str(secret), "--dataset", "q"], tmp_path / "home", wrapper)
    assert alone.returncode == 2 and "Traceback" not in alone.stderr
    assert alone.stderr.strip().endswith(
        "check the files' permissions (the user running dcr must be able to read them)"
    )
    assert alone.stderr.count("\n") == 1


def test_a_folder_that_cannot_be_read_is_named_not_skipped_silently(tmp_path: Path):
    """A folder walk left out a subfolder it could not read (its files were never mentioned), and
    a folder alone that could not be read was 'no files found'."""
    wrapper = _setpriv()
    top = tmp_path / "dump"
    (top / "locked").mkdir(parents=True)
    shutil.copy(TRACES, top / "ok.jsonl")
    shutil.copy(TRACES, top / "locked" / "more.jsonl")
    (top / "locked").chmod(0)
    try:
        r = _dcr(["ingest", str(top), "--dataset", "p", "--json"], tmp_path / "home", wrapper)
        alone = _dcr(["ingest", str(top / "locked"), "--dataset", "q"], tmp_path / "home", wrapper)
    finally:
        (top / "locked").chmod(0o755)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    entry = next(s for s in doc["sources"] if s["path"] == str(top / "locked"))
    assert entry["skipped"] == "unreadable: Permission denied" and doc["spans"] == 684
    assert f"warning: {top / 'locked'}: unreadable: Permission denied;" in r.stderr
    assert alone.returncode == 2 and alone.stderr.count("\n") == 1
    assert f"nothing usable in {top / 'locked'} (unreadable: Permission denied)" in alone.stderr


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_an_empty_compressed_file_is_empty_not_corrupt(tmp_path: Path, kind: str):
    """A .gz or .zst of nothing is valid: it was called unreadable (truncated or corrupt?)."""
    packed = gzip.compress(b"") if kind == "gzip" else zstandard.ZstdCompressor().compress(b"")
    (tmp_path / "empty.bin").write_bytes(packed)
    (tmp_path / "cut.bin").write_bytes(gzip.compress(TRACES.read_bytes())[:20])
    r = _dcr(["ingest", str(tmp_path / "empty.bin")], tmp_path / "home")
    assert r.returncode == 2 and f"nothing usable in {tmp_path / 'empty.bin'} (empty)" in r.stderr
    r = _dcr(["ingest", str(tmp_path / "cut.bin")], tmp_path / "home")
    assert r.returncode == 2 and f"nothing usable in {tmp_path / 'cut.bin'} (unreadable)" in r.stderr


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_a_cut_compressed_input_says_why_on_stderr(tmp_path: Path, kind: str):
    data = TRACES.read_bytes()
    packed = gzip.compress(data) if kind == "gzip" else zstandard.ZstdCompressor().compress(data)
    cut = tmp_path / f"cut.jsonl.{'gz' if kind == 'gzip' else 'zst'}"
    cut.write_bytes(packed[: len(packed) // 2])
    r = _dcr(["ingest", str(cut), "--dataset", "c"], tmp_path / "home")
    assert r.returncode == 0, r.stderr
    assert (
        f"warning: {cut}: the rest of this input is unreadable (truncated or corrupt compression?)"
        in r.stderr
    )
    assert f"({kind})" in r.stdout and " 0.0 MB" not in r.stdout


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_a_cut_compressed_input_keeps_every_record_before_the_cut(tmp_path: Path, monkeypatch, kind: str):
    """Through the worker processes: the records of the blocks in flight when the input breaks off
    land too (they were dropped with the error), as many as the readable part holds uncompressed."""
    from bench.shapes import write_shape
    from ingest import pipeline

    dump = tmp_path / "dump.jsonl"
    write_shape(dump, "attrs", 3 * 1024 * 1024)
    data = dump.read_bytes()
    packed = gzip.compress(data) if kind == "gzip" else zstandard.ZstdCompressor().compress(data)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(packed[: len(packed) * 7 // 10])
    stream, _ = formats.decompressed(io.BytesIO(cut.read_bytes()))
    readable = bytearray()
    with contextlib.suppress(*formats.CORRUPT_ERRORS):
        while chunk := stream.read1(1 << 16):
            readable += chunk
    (tmp_path / "prefix.jsonl").write_bytes(bytes(readable))
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 1024)  # the workers decode the cut input
    monkeypatch.setattr(pipeline, "_range_bytes", lambda: 64 * 1024)  # many blocks in flight
    got = ingest.ingest_paths([str(cut)], "cut", workers=2)
    want = ingest.ingest_paths([str(tmp_path / "prefix.jsonl")], "prefix", workers=2)
    assert got.spans == want.spans > 1000
    assert got.rejected == want.rejected + 1  # the unreadable rest, besides the cut line


def test_a_corrupt_zstd_byte_loses_only_what_follows_it(tmp_path: Path):
    """A corrupt byte inside a frame (not a cut): the records that decompress before it land. The
    decompressor was fed 64 KiB of input at a time and dropped that bite's whole output (a bug
    hunt: a 34 KB file corrupt in its middle kept nothing)."""
    data = (REPO / "fixtures" / "scenarios" / "healthy" / "traces.jsonl").read_bytes()
    packed = bytearray(zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data))
    at = len(packed) // 2
    packed[at : at + 4] = b"\xff" * 4
    (tmp_path / "bad.zst").write_bytes(bytes(packed))
    obj, before = zstandard.ZstdDecompressor().decompressobj(), bytearray()
    with contextlib.suppress(zstandard.ZstdError):  # a reference, fed 256 bytes at a time
        for i in range(0, len(packed), 256):
            before += obj.decompress(bytes(packed[i : i + 256]))
    (tmp_path / "before.jsonl").write_bytes(bytes(before[: before.rfind(b"\n") + 1]))
    want = ingest.ingest_paths([str(tmp_path / "before.jsonl")], "before").spans
    got = ingest.ingest_paths([str(tmp_path / "bad.zst")], "bad")
    assert want > 50 and want * 0.9 <= got.spans <= want  # at most a 16 KiB piece's output lost
    assert got.rejected >= 1


def _readable_part(cut: Path) -> bytes:
    """What of a cut compressed file decompresses."""
    stream, _ = formats.decompressed(io.BytesIO(cut.read_bytes()))
    readable = bytearray()
    with contextlib.suppress(*formats.CORRUPT_ERRORS):
        while chunk := stream.read1(1 << 16):
            readable += chunk
    return bytes(readable)


def _zipkin_dump(path: Path, spans: int) -> None:
    rows = [
        {
            "traceId": f"{i // 10:032x}",
            "id": f"{i + 1:016x}",
            "name": f"op-{i % 7}",
            "timestamp": 1_700_000_000_000_000 + i,
            "duration": 100 + i % 50,
            "localEndpoint": {"serviceName": f"svc-{i % 5}"},
            "tags": {"http.method": "GET", "note": "x" * (i % 300)},
        }
        for i in range(spans)
    ]
    path.write_text(json.dumps(rows))


@pytest.mark.parametrize("fmt, workers", [("jaeger", 1), ("jaeger", 2), ("zipkin", 1)])
def test_a_cut_compressed_jaeger_or_zipkin_file_keeps_every_span_before_the_cut(
    tmp_path: Path, monkeypatch, fmt: str, workers: int
):
    """The spans read before a .zst breaks off land, as many as its readable part gives plain
    (they were dropped with the error: in process, and in the blocks in flight to the workers)."""
    from bench.gen_jaeger import write_jaeger_dump
    from ingest import jaeger, pipeline

    dump = tmp_path / "dump.json"
    if fmt == "jaeger":
        write_jaeger_dump(dump, 3 * 1024 * 1024)
    else:
        _zipkin_dump(dump, 20_000)
    packed = zstandard.ZstdCompressor().compress(dump.read_bytes())
    cut = tmp_path / "cut.bin"
    cut.write_bytes(packed[: len(packed) * 7 // 10])
    (tmp_path / "prefix.json").write_bytes(_readable_part(cut))
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 1024 if workers > 1 else 1 << 40)
    monkeypatch.setattr(jaeger, "BLOCK_BYTES", 64 * 1024)  # many blocks in flight
    got = ingest.ingest_paths([str(cut)], "cut", workers=workers)
    want = ingest.ingest_paths([str(tmp_path / "prefix.json")], "prefix", workers=workers)
    assert got.sources[0].format == fmt
    assert got.spans == want.spans > 1000
