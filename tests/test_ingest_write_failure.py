"""A dataset that cannot be written (a full disk) fails the whole ingest in one line: it is not
taken for a bad source, whose partial rows would be committed and whose digest would make the
next ingest skip it as already ingested."""

from __future__ import annotations

import errno
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import ingest
from ingest import writer as writer_mod
from ingest.dataset import open_handle
from mcp_server.cli import main
from tests.conftest import FIXTURES

SCENARIO = FIXTURES / "scenarios" / "retry_storm"


def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every part file write fails as a full disk fails it (on the writer's thread)."""

    def write(self, rows, services):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer_mod._Lane, "write", write)


def _spans(dataset: str) -> int:
    return sum(pq.read_metadata(f).num_rows for f in open_handle(dataset).span_files)


@pytest.mark.parametrize("part_mb", ["0.05", None], ids=["while-reading", "at-commit"])
def test_a_full_disk_fails_the_ingest_and_keeps_the_dataset_as_it_was(
    monkeypatch: pytest.MonkeyPatch, part_mb: str | None
):
    if part_mb:  # small parts: the failure comes back while the source is read (writer.add)
        monkeypatch.setenv(writer_mod.PART_BYTES_ENV, part_mb)
    first = ingest.ingest_paths([str(SCENARIO / "logs.jsonl")], "shop", workers=1)
    assert first.logs > 0
    with monkeypatch.context() as m:
        _disk_full(m)
        with pytest.raises(ingest.DatasetWriteFailed) as err:
            ingest.ingest_paths([str(SCENARIO / "traces.jsonl")], "shop", workers=1)
    message = str(err.value)
    assert "No space left on device" in message and "'shop'" in message and "\n" not in message
    assert _spans("shop") == 0  # the earlier ingest stands, nothing of the failed one
    again = ingest.ingest_paths([str(SCENARIO / "traces.jsonl")], "shop", workers=1)
    assert again.sources[0].skipped is None  # not "already ingested": it was never recorded
    assert again.spans > 0 and _spans("shop") == again.spans


def test_the_cli_says_it_in_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    _disk_full(monkeypatch)
    code = main(["ingest", str(SCENARIO / "traces.jsonl"), "--dataset", "shop"])
    err = capsys.readouterr().err.strip()
    assert code == 1  # Kind.FAILED
    assert err.startswith("dcr: could not write dataset 'shop'") and "No space left on device" in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_a_failing_writer_is_not_blamed_on_the_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Not only OSError: whatever the writer raises ends the ingest, not the source alone."""

    def add(self, chunk, stats):
        raise RuntimeError("a bug in the writer")

    monkeypatch.setattr(writer_mod.DatasetWriter, "add", add)
    with pytest.raises(ingest.DatasetWriteFailed, match="RuntimeError: a bug in the writer"):
        ingest.ingest_paths([str(SCENARIO / "traces.jsonl")], "shop", workers=1)
