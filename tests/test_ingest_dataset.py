"""The dataset contract: rejects, exit codes, de-duplication, re-ingest, CLI output, rm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ingest
from ingest import pipeline
from ingest.dataset import open_handle
from ingest.writer import acquire_lock
from mcp_server.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "fixtures" / "public" / "otlp-examples"


def span(sid: str, **over) -> dict:
    s = {
        "traceId": "a" * 32,
        "spanId": sid,
        "name": f"op-{sid}",
        "startTimeUnixNano": "100",
        "endTimeUnixNano": "200",
    }
    s.update(over)
    return s


def line(*spans: dict, service: str = "svc") -> bytes:
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{"spans": list(spans)}],
            }
        ]
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def all_spans(name: str) -> list[dict]:
    rows = []
    for f in open_handle(name).span_files:
        rows += pq.read_table(f).to_pylist()
    return rows


def read_rejects(path: str) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    lines = [
        line(span("0000000000000001"), span("0000000000000002")),
        b"{not json",
        line(
            span("0000000000000003"),
            span("abc"),
            span("0000000000000004", spanId=None),
            span("0000000000000005", startTimeUnixNano="soon"),
            span("0000000000000006", name=123),
        ),
        line(span("0000000000000007", name="caf\udce9"), span("0000000000000008")),
        b"",
        b"[1,2]",
    ]
    lines[3] = lines[3].replace(b"caf\\udce9", b"caf\xe9")  # invalid UTF-8 in one span's name
    path = tmp_path / "messy.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_bad_records_are_rejected_verbatim_and_good_ones_land(messy: Path):
    r = ingest.ingest_paths([str(messy)], "m")
    ids = sorted(s["span_id"] for s in all_spans("m"))
    assert ids == ["0000000000000001", "0000000000000002", "0000000000000003", "0000000000000008"]
    rejects = read_rejects(r.rejects_path)
    assert r.rejected == len(rejects) == 7
    where = [(x["offset"], x["unit"]) for x in rejects]
    assert where == [
        (2, "line"),
        (3, "line"),
        (3, "line"),
        (3, "line"),
        (3, "line"),
        (4, "line"),
        (6, "line"),
    ]
    assert all(x["source"] == str(messy) for x in rejects)
    reasons = [x["reason"] for x in rejects]
    assert "span id is not 16 hex characters" in reasons[1]
    assert reasons[2] == "span id missing"
    assert "startTimeUnixNano" in reasons[3]
    assert "$.name" in reasons[4]
    assert rejects[0]["raw"] == "{not json"
    assert json.loads(rejects[1]["raw"])["spanId"] == "abc"  # the record, verbatim
    assert "raw_base64" in rejects[5]  # not UTF-8: kept as base64
    s = ingest.dataset_summary("m")
    assert (s["spans"], s["rejected"]) == (4, 7)
    assert s["sources"][0]["rejects_file"].startswith("rejects/")


def test_cli_exit_0_with_rejects_and_json_only_on_stdout(messy: Path, capsys):
    assert main(["ingest", str(messy), "--dataset", "cli", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert {k: out[k] for k in ("dataset", "spans", "logs", "rejected")} == {
        "dataset": "cli",
        "spans": 4,
        "logs": 0,
        "rejected": 7,
    }
    assert isinstance(out["bytes"], int) and isinstance(out["seconds"], float)
    assert "7 records rejected" in captured.err and out["rejects_path"] in captured.err


@pytest.mark.parametrize("content", [None, b"", b"hello, world\n"])
def test_cli_exit_2_when_nothing_usable(tmp_path: Path, capsys, content):
    path = tmp_path / "input.txt"
    if content is not None:
        path.write_bytes(content)
    assert main(["ingest", str(path), "--dataset", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and str(path) in err
    assert "x" not in ingest.list_datasets()


def test_unknown_file_beside_good_ones_is_a_reject(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("not telemetry")
    (tmp_path / "t.json").write_bytes((EXAMPLES / "trace.json").read_bytes())
    r = ingest.ingest_paths([str(tmp_path)], "mixed")
    assert (r.spans, r.rejected) == (1, 1)
    [rej] = read_rejects(r.rejects_path)
    assert rej["source"].endswith("notes.txt") and rej["reason"].startswith("unknown format")
    r2 = ingest.ingest_paths([str(tmp_path)], "mixed")  # the same unknown file is not rejected twice
    assert (r2.spans, r2.rejected) == (0, 0)


def test_reingest_adds_nothing_and_duplicates_land_once(tmp_path: Path):
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_bytes(line(span("0000000000000001"), span("0000000000000002")) + b"\n")
    b.write_bytes(line(span("0000000000000002"), span("0000000000000003"), span("0000000000000003")) + b"\n")
    r1 = ingest.ingest_paths([str(a)], "d")
    r2 = ingest.ingest_paths([str(a), str(b)], "d")
    assert (r1.spans, r2.spans, r2.duplicates) == (2, 1, 2)
    assert [s.skipped for s in r2.sources] == ["already ingested", None]
    ids = sorted(s["span_id"] for s in all_spans("d"))
    assert ids == ["0000000000000001", "0000000000000002", "0000000000000003"]
    assert ingest.dataset_summary("d")["spans"] == 3


def test_stdin_glob_and_show_json(tmp_path: Path, dcr_home: Path):
    env = {**os.environ, "DCR_HOME": str(dcr_home)}
    dcr = [sys.executable, "-m", "mcp_server.cli"]
    data = (EXAMPLES / "logs.json").read_bytes()
    p = subprocess.run(
        [*dcr, "ingest", "-", "--dataset", "s", "--json"],
        input=data,
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["logs"] == 1
    p = subprocess.run(
        [*dcr, "ingest", str(EXAMPLES / "t*.json"), "--dataset", "s", "--json"],
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert json.loads(p.stdout)["spans"] == 1
    p = subprocess.run(
        [*dcr, "dataset", "show", "s", "--json"], capture_output=True, env=env, cwd=REPO, timeout=60
    )
    show = json.loads(p.stdout)
    assert (show["spans"], show["logs"], show["rejected"]) == (1, 1, 0)
    assert show["time_range"] == {"start_ns": 1544712660000000000, "end_ns": 1544712661000000000}
    assert show["services"] == ["my.service"]
    assert [s["path"] for s in show["sources"]] == ["-", str(EXAMPLES / "trace.json")]


def test_datasets_list_rm_and_unknown(capsys):
    ingest.ingest_paths([str(EXAMPLES / "trace.json")], "one")
    assert main(["datasets", "--json"]) == 0
    assert [d["dataset"] for d in json.loads(capsys.readouterr().out)] == ["one"]
    assert main(["datasets"]) == 0
    assert capsys.readouterr().out.split() == [
        "one",
        "1",
        "spans",
        "0",
        "logs",
        "0",
        "rejected",
        "1",
        "service",
    ]
    assert main(["dataset", "show", "nope"]) == 2
    assert "known datasets: one" in capsys.readouterr().err
    assert main(["dataset", "rm", "one"]) == 0
    assert ingest.list_datasets() == []
    assert main(["dataset", "rm", "one"]) == 2


def test_locked_dataset_refused_after_timeout(dcr_home: Path):
    ingest.ingest_paths([str(EXAMPLES / "trace.json")], "busy")
    fd = acquire_lock(dcr_home / "datasets" / "busy", "busy", 1.0)
    try:
        with pytest.raises(ingest.DatasetLocked, match="being written by another process"):
            ingest.ingest_paths([str(EXAMPLES / "logs.json")], "busy", lock_timeout_s=0.2)
        with pytest.raises(ingest.DatasetLocked):
            ingest.remove_dataset("busy")
    finally:
        os.close(fd)
    assert ingest.dataset_summary("busy")["logs"] == 0


def test_bad_dataset_name_is_usage_error(capsys):
    assert main(["ingest", str(EXAMPLES / "trace.json"), "--dataset", "../etc"]) == 2
    assert "bad dataset name" in capsys.readouterr().err


def test_truncated_gzip_keeps_what_was_readable(tmp_path: Path):
    import gzip

    lines = [line(span(f"{i + 1:016x}")) for i in range(3000)]
    packed = gzip.compress(b"\n".join(lines) + b"\n")
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) * 2 // 3])
    r = ingest.ingest_paths([str(tmp_path / "cut.gz")], "cut")
    rejects = read_rejects(r.rejects_path)
    assert rejects[-1]["reason"].startswith("the rest of this input is unreadable")
    assert 1000 < r.spans < 3000 and r.rejected <= 2  # every whole line before the break landed
    ids = sorted(s["span_id"] for s in all_spans("cut"))
    assert ids == [f"{i + 1:016x}" for i in range(r.spans)]
    (tmp_path / "tiny.gz").write_bytes(gzip.compress(b'{"resourceSpans": []}')[:12])
    with pytest.raises(ingest.NoInput, match="unreadable"):
        ingest.ingest_paths([str(tmp_path / "tiny.gz")], "tiny")


def test_formats_with_read_parallel_use_the_worker_processes(monkeypatch):
    from ingest import jaeger, pipeline

    assert hasattr(jaeger, "read_parallel")
    crisp = str(REPO / "fixtures" / "public" / "crisp")
    serial = ingest.ingest_paths([crisp], "serial")
    calls: list[str] = []
    original = jaeger.read_parallel

    def spy(stream, source, executor, window=4, **kw):
        calls.append(source.path)
        return original(stream, source, executor, window=window, **kw)

    monkeypatch.setattr(jaeger, "read_parallel", spy)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    par = ingest.ingest_paths([crisp], "parallel")
    assert len(calls) == len([s for s in par.sources if not s.skipped]) > 20  # identical copies are skipped
    assert (par.spans, par.rejected, par.duplicates) == (serial.spans, serial.rejected, serial.duplicates)
    key = sorted(
        (s["trace_id"], s["span_id"], s["parent_span_id"], s["start_ns"]) for s in all_spans("serial")
    )
    assert key == sorted(
        (s["trace_id"], s["span_id"], s["parent_span_id"], s["start_ns"]) for s in all_spans("parallel")
    )


def test_garbage_on_stdin_is_named_as_standard_input(dcr_home: Path):
    env = {**os.environ, "DCR_HOME": str(dcr_home)}
    p = subprocess.run(
        [sys.executable, "-m", "mcp_server.cli", "ingest", "-", "--json"],
        input=b"garbage\n",
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert p.returncode == 2 and p.stdout == b""
    assert p.stderr.decode() == (
        "dcr: nothing usable in standard input (-) (unknown format): "
        "give OTLP JSON/protobuf, Jaeger or Zipkin files\n"
    )


def test_one_reject_is_reported_in_the_singular(tmp_path: Path, capsys):
    line = (EXAMPLES / "trace.json").read_bytes().replace(b"\n", b"").replace(b"\r", b"")
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(line + b"\n{not json\n")
    assert main(["ingest", str(dump), "--dataset", "one"]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 record rejected; see " in err and "records" not in err


def test_ingest_takes_arrow_buffers_from_jemalloc_unless_the_user_chose_a_pool(monkeypatch):
    try:
        jemalloc = pa.jemalloc_memory_pool()
    except NotImplementedError:
        if os.environ.get("CI") == "true":  # PyPI's pyarrow wheels for Linux have it
            pytest.fail("this pyarrow has no jemalloc")
        pytest.skip("this pyarrow has no jemalloc")
    before = pa.default_memory_pool()
    try:
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
        pa.set_memory_pool(pa.system_memory_pool())
        pipeline._arrow_pool()
        assert pa.default_memory_pool().backend_name == jemalloc.backend_name == "jemalloc"
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
        pa.set_memory_pool(pa.system_memory_pool())
        pipeline._arrow_pool()
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(before)
