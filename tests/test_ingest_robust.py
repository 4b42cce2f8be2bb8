"""Hostile input and hostile moments: malformed records, huge values, kill -9, two ingests at once."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ingest
from ingest.dataset import open_handle

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "fixtures" / "public" / "otlp-examples"

# ---- malformed input never crashes and never loses a good record --------------------------

BAD_SPANS = [  # (what is wrong, how to break a good span)
    ("span id of wrong length", lambda s: {**s, "spanId": s["spanId"][:10]}),
    ("missing span id", lambda s: {k: v for k, v in s.items() if k != "spanId"}),
    ("trace id not hex", lambda s: {**s, "traceId": "zz" * 16}),
    ("time not a number", lambda s: {**s, "startTimeUnixNano": "12:00"}),
    ("time of wrong type", lambda s: {**s, "endTimeUnixNano": [1]}),
    ("attribute of wrong type", lambda s: {**s, "attributes": "color=red"}),
    ("name of wrong type", lambda s: {**s, "name": {"x": 1}}),
    ("kind of wrong type", lambda s: {**s, "kind": 2.5}),
    ("events not a list", lambda s: {**s, "events": 7}),
    ("dropped count too big", lambda s: {**s, "droppedAttributesCount": 2**40}),
    ("flags negative", lambda s: {**s, "flags": -1}),
    ("time past int64", lambda s: {**s, "endTimeUnixNano": str(2**64)}),
]

_counter = itertools.count()


def good_span(i: int) -> dict:
    return {
        "traceId": f"{i + 1:032x}",
        "spanId": f"{i + 1:016x}",
        "name": f"good-{i}",
        "startTimeUnixNano": str(1_000 + i),
        "endTimeUnixNano": 2_000 + i,
        "attributes": [{"key": "i", "value": {"intValue": str(i)}}],
    }


def doc(spans: list[dict]) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}, separators=(",", ":")).encode()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    layout=st.lists(
        st.lists(st.one_of(st.just(None), st.integers(0, len(BAD_SPANS) - 1)), min_size=1, max_size=6),
        min_size=1,
        max_size=6,
    ),
    garbage=st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=3),
)
def test_malformed_input_never_crashes_nor_loses_good_records(tmp_path_factory, layout, garbage):
    folder = tmp_path_factory.mktemp("hyp")
    lines, good, bad = [], set(), 0
    n = 0
    for line_spec in layout:
        spans = []
        for which in line_spec:
            s = good_span(n)
            n += 1
            if which is None:
                good.add(s["spanId"])
                spans.append(s)
            else:
                spans.append(BAD_SPANS[which][1](s))
                bad += 1
        lines.append(doc(spans))
    for g in garbage:
        lines.insert(len(lines) // 2, b"#" + g)  # never JSON: a rejected line each
    (folder / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    name = f"h{next(_counter)}"
    r = ingest.ingest_paths([str(folder / "in.jsonl")], name)
    landed = set()
    for f in open_handle(name).span_files:
        landed |= set(pq.read_table(f, columns=["span_id"]).column(0).to_pylist())
    assert landed == good
    assert r.rejected == bad + len(garbage)


def test_huge_attribute_and_deep_kvlist(tmp_path: Path):
    value: dict = {"stringValue": "leaf"}
    for depth in range(40):
        value = {"kvlistValue": {"values": [{"key": f"l{depth}", "value": value}]}}
    big = "x" * (10 * 1024 * 1024)
    span = {
        **good_span(0),
        "attributes": [{"key": "blob", "value": {"stringValue": big}}, {"key": "deep", "value": value}],
    }
    # 3000 levels: deeper than the decoder's stack allows, so that line is one reject (documented);
    # written by hand (json.dumps would recurse too)
    too_deep = '{"arrayValue":{"values":[' * 3000 + '{"stringValue":"leaf"}' + "]}}" * 3000
    deep_span = doc([{**good_span(1), "attributes": [{"key": "d", "value": "@"}]}])
    lines = [doc([span]), deep_span.replace(b'"@"', too_deep.encode()), doc([good_span(2)])]
    (tmp_path / "big.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child started by a big pytest
    # worker would report the worker's peak instead of its own
    code = (
        "import re, sys, ingest; r = ingest.ingest_paths([sys.argv[1]], 'big'); "
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
        "print(r.spans, r.rejected, int(hwm) // 1024)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "big.jsonl")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    spans, rejected, rss_mb = map(int, p.stdout.split())
    assert (spans, rejected) == (2, 1)
    assert rss_mb < 400, f"peak RSS {rss_mb} MB for a 10 MB attribute"
    rows = {r["span_id"]: r for r in pq.read_table(open_handle("big").span_files[0]).to_pylist()}
    assert sorted(rows) == [f"{1:016x}", f"{3:016x}"]
    attrs = json.loads(rows[f"{1:016x}"]["attributes"])
    assert len(attrs["blob"]) == len(big)
    node, depth = attrs["deep"], 0
    while isinstance(node, dict):
        node = next(iter(node.values()))
        depth += 1
    assert (depth, node) == (40, "leaf")


# ---- kill -9 and concurrent ingests (real subprocesses) -----------------------------------


def _dump(path: Path, mb: int, seed: int) -> Path:
    sys.path.insert(0, str(REPO))
    from bench.ingest import generate

    return generate(path, mb * 1024 * 1024, seed=seed)


def _dcr(*args: str) -> list[str]:
    return [sys.executable, "-m", "mcp_server.cli", *args]


def _consistent(name: str) -> dict:
    """The manifest and the files it lists agree; its totals."""
    h = open_handle(name)
    spans = sum(pq.ParquetFile(f).metadata.num_rows for f in h.span_files)
    logs = sum(pq.ParquetFile(f).metadata.num_rows for f in h.log_files)
    assert (spans, logs) == (h.manifest["totals"]["spans"], h.manifest["totals"]["logs"])
    return h.manifest["totals"]


@pytest.fixture(scope="module")
def dump(tmp_path_factory) -> Path:
    return _dump(tmp_path_factory.mktemp("dump") / "d.jsonl", 20, seed=11)


def test_kill_9_leaves_the_previous_state_and_rerun_completes(dump: Path, dcr_home: Path):
    # small ranges and parts: part files are written all along the run, not only at its end
    env = {**os.environ, "DCR_HOME": str(dcr_home), "DCR_INGEST_PART_MB": "1", "DCR_INGEST_RANGE_MB": "0.5"}
    t0 = time.monotonic()
    full = subprocess.run(
        _dcr("ingest", str(dump), "--dataset", "reference", "--json"),
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=300,
    )
    took = time.monotonic() - t0
    full_spans = json.loads(full.stdout)["spans"]
    delay, killed, mid_write = 0.6 * took, [], None
    for attempt in range(8):  # aim the kill at the stretch where parts exist but no manifest lists them
        name = f"k{attempt}"
        ingest.ingest_paths([str(EXAMPLES / "trace.json")], name)
        before = _consistent(name)
        p = subprocess.Popen(
            _dcr("ingest", str(dump), "--dataset", name),
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(delay * (0.95 + 0.1 * random.random()))
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        killed.append(p.pid)
        now = _consistent(name)
        if now != before:  # the kill came after the commit: then the new state is complete
            assert now["spans"] == before["spans"] + full_spans
            delay *= 0.75
            continue
        listed = {Path(f).name for f in open_handle(name).manifest["files"]["spans"]}
        on_disk = {f.name for f in (dcr_home / "datasets" / name / "spans").iterdir()}
        if on_disk - listed:
            mid_write = name
            break
        delay *= 1.2  # nothing written yet: kill later
    assert mid_write, "no kill landed while part files were being written"
    p = subprocess.run(
        _dcr("ingest", str(dump), "--dataset", mid_write, "--json"),
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    assert _consistent(mid_write)["spans"] == before["spans"] + full_spans
    shm = Path("/dev/shm")
    if shm.is_dir():  # hand-off files of the killed processes were cleaned up by the rerun
        assert not [f for pid in killed for f in shm.glob(f"dcr-ingest-{pid}-*")]
    leftovers = {f.name for f in (dcr_home / "datasets" / mid_write / "spans").iterdir()}
    assert leftovers == {Path(f).name for f in open_handle(mid_write).manifest["files"]["spans"]}


def test_ctrl_c_ends_an_ingest_with_one_line_and_no_traceback(tmp_path: Path, dcr_home: Path):
    """Ctrl-C reaches the whole process group, the decoding workers too: they printed
    tracebacks (KeyboardInterrupt in the pool's queue), and an ingest could hang in the pool's
    shutdown. Lines of several MB (one batch a line) keep the workers busy and waiting in turn."""
    from bench.shapes import write_shape

    dump = tmp_path / "huge.jsonl"
    write_shape(dump, "hugebatch", 24 * 1024 * 1024)
    env = {**os.environ, "DCR_HOME": str(dcr_home), "DCR_INGEST_RANGE_MB": "0.25"}
    interrupted = 0
    for i, delay in enumerate((0.0, 0.02, 0.05, 0.1, 0.0, 0.03)):
        lock = dcr_home / "datasets" / f"i{i}" / ".lock"
        p = subprocess.Popen(
            _dcr("ingest", str(dump), "--dataset", f"i{i}"),
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60  # the ingest has begun once it holds the dataset's lock
        while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        os.killpg(p.pid, signal.SIGINT)
        try:
            _, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise AssertionError(f"the ingest hung after Ctrl-C (at {delay} s)") from None
        text = err.decode()
        assert "Traceback" not in text, text
        if p.returncode == 130:
            assert text.endswith("dcr: interrupted\n") and text.count("\n") <= 2, text
            interrupted += 1
        else:
            assert p.returncode == 0, text  # it had ended before the signal came
    assert interrupted >= 2, "no Ctrl-C landed while the ingest ran"


def test_two_ingests_at_once_one_waits(dump: Path, dcr_home: Path):
    env = {**os.environ, "DCR_HOME": str(dcr_home)}
    # the first ingest reads standard input, so it holds the dataset for as long as the test
    # keeps its input open (however fast decoding gets)
    first = subprocess.Popen(
        _dcr("ingest", "-", "--dataset", "c", "--json"),
        env=env,
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lock = dcr_home / "datasets" / "c" / ".lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.02)
    second = subprocess.Popen(
        _dcr("ingest", str(EXAMPLES / "logs.json"), "--dataset", "c", "--json"),
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    told = second.stderr.readline()  # blocks until the second ingest says it waits
    assert re.fullmatch(
        rb"dataset 'c' is being written by another process, pid %d \(dcr ingest, for \d+ s\); "
        rb"waiting up to 600 s\n" % first.pid,
        told,
    ), told
    assert second.poll() is None  # and it does wait
    out1, err1 = first.communicate(dump.read_bytes(), timeout=300)
    out2, err2 = second.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    a, b = json.loads(out1), json.loads(out2)
    totals = _consistent("c")
    assert (totals["spans"], totals["logs"]) == (a["spans"], b["logs"]) and b["logs"] == 1
