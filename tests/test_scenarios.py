"""The scenario recorder: OTLP/JSON validity, fidelity to the SDK, determinism, the committed copies."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from scenarios import SCENARIOS
from scenarios.generate import END_NS, ONSET_NS, START_NS, parse_size, run_scenario, write_scenario
from scenarios.otlp_json import parse_logs_line, parse_traces_line

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures" / "scenarios"
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")


def _any_value(v) -> object:
    which = v.WhichOneof("value")
    if which == "array_value":
        return tuple(_any_value(x) for x in v.array_value.values)
    return getattr(v, which) if which else None


def _attrs(kvs) -> dict:
    return {kv.key: _any_value(kv.value) for kv in kvs}


def _record(name: str, scale: float = 1.0, seed: int = 1):
    traces, logs = io.BytesIO(), io.BytesIO()
    truth, recorder = run_scenario(name, traces, logs, seed, scale, keep=True)
    return truth, recorder, traces.getvalue(), logs.getvalue()


@pytest.fixture(scope="module")
def lock_run():
    return _record("lock_clock_skew")


def test_every_line_parses_as_otlp_with_hex_ids_and_string_int64(lock_run) -> None:
    _, _, traces, logs = lock_run
    lines = traces.splitlines()
    assert len(lines) > 10
    for line in lines:
        doc = json.loads(line)
        data = parse_traces_line(line)  # raises on anything TracesData does not define
        assert len(data.resource_spans) >= 1
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    assert HEX32.fullmatch(span["traceId"]) and HEX16.fullmatch(span["spanId"])
                    assert "parentSpanId" not in span or HEX16.fullmatch(span["parentSpanId"])
                    assert isinstance(span["startTimeUnixNano"], str) and isinstance(span["kind"], int)
    for line in logs.splitlines():
        data = parse_logs_line(line)
        for rl in json.loads(line)["resourceLogs"]:
            for sl in rl["scopeLogs"]:
                for rec in sl["logRecords"]:
                    assert isinstance(rec["timeUnixNano"], str) and isinstance(rec["severityNumber"], int)
                    assert "traceId" not in rec or HEX32.fullmatch(rec["traceId"])
        assert data.resource_logs


def test_batches_hold_tens_of_spans_of_one_resource(lock_run) -> None:
    _, _, traces, _ = lock_run
    sizes = []
    for line in traces.splitlines():
        data = parse_traces_line(line)
        assert len(data.resource_spans) == 1  # one resource per line, as a per-resource batch
        sizes.append(sum(len(ss.spans) for ss in data.resource_spans[0].scope_spans))
    assert max(sizes) == 40 and sum(sizes) / len(sizes) > 10


def test_file_matches_what_the_sdk_recorded(lock_run) -> None:
    _, recorder, traces, logs = lock_run
    sdk = {}
    for s in recorder.spans:
        ctx = s.get_span_context()
        sdk[(ctx.trace_id, ctx.span_id)] = s
    parsed = {}
    for line in traces.splitlines():
        for rs in parse_traces_line(line).resource_spans:
            service = _attrs(rs.resource.attributes)["service.name"]
            for ss in rs.scope_spans:
                for span in ss.spans:
                    key = (int.from_bytes(span.trace_id, "big"), int.from_bytes(span.span_id, "big"))
                    parsed[key] = (service, span)
    assert len(parsed) == len(sdk) == recorder.span_count > 500
    for key, (service, span) in parsed.items():
        s = sdk[key]
        assert span.name == s.name
        assert service == s.resource.attributes["service.name"]
        parent = int.from_bytes(span.parent_span_id, "big") if span.parent_span_id else None
        assert parent == (s.parent.span_id if s.parent else None)
        assert _attrs(span.attributes) == dict(s.attributes)
        assert (span.start_time_unix_nano, span.end_time_unix_nano) == (s.start_time, s.end_time)
        assert [e.name for e in span.events] == [e.name for e in s.events]
        assert span.status.code == s.status.status_code.value
    bodies = Counter()
    for line in logs.splitlines():
        for rl in parse_logs_line(line).resource_logs:
            for sl in rl.scope_logs:
                bodies.update(r.body.string_value for r in sl.log_records)
    assert bodies == Counter(r.log_record.body for r in recorder.logs)


def test_parents_exist_and_times_are_ordered(lock_run) -> None:
    _, recorder, _, _ = lock_run
    ids = {(s.context.trace_id, s.context.span_id) for s in recorder.spans}
    for s in recorder.spans:
        assert s.end_time >= s.start_time
        if s.parent is not None:
            assert (s.context.trace_id, s.parent.span_id) in ids


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    for name in ("queue_redelivery", "healthy"):
        a = write_scenario(name, tmp_path / "a", seed=5)
        b = write_scenario(name, tmp_path / "b", seed=5)
        c = write_scenario(name, tmp_path / "c", seed=6)
        assert a == b
        for f in ("traces.jsonl", "logs.jsonl", "truth.json"):
            assert (tmp_path / "a" / name / f).read_bytes() == (tmp_path / "b" / name / f).read_bytes()
        assert (tmp_path / "a" / name / "traces.jsonl").read_bytes() != (
            tmp_path / "c" / name / "traces.jsonl"
        ).read_bytes()
        assert c["spans"] > 0


def test_scale_multiplies_the_traffic() -> None:
    one, _, _, _ = _record("network_delay", 1.0)
    three, _, _, _ = _record("network_delay", 3.0)
    assert 2.4 < three["spans"] / one["spans"] < 3.6


@pytest.mark.parametrize(
    "text,expected",
    [("2GB", 2 * 1024**3), ("500mb", 500 * 1024**2), ("1.5g", int(1.5 * 1024**3)), ("1234", 1234)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_parse_size_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="bad --size"):
        parse_size("lots")


def test_cli_writes_a_scenario_and_rejects_unknown_names(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "scenarios.generate", "--out", str(tmp_path), "--seed", "3"]
    ok = subprocess.run(
        [*cmd, "--scenario", "healthy", "--scale", "0.5"], cwd=REPO, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "healthy: scale 0.5" in ok.stderr
    truth = json.loads((tmp_path / "healthy" / "truth.json").read_text())
    assert truth["root_cause"] is None and truth["scale"] == 0.5
    # another process (another PYTHONHASHSEED) wrote exactly what this one writes
    write_scenario("healthy", tmp_path / "here", seed=3, scale=0.5)
    for f in ("traces.jsonl", "logs.jsonl", "truth.json"):
        assert (tmp_path / "here" / "healthy" / f).read_bytes() == (tmp_path / "healthy" / f).read_bytes()
    bad = subprocess.run([*cmd, "--scenario", "nope"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown scenario 'nope'" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "file").write_text("")
    blocked = subprocess.run(
        [
            sys.executable,
            "-m",
            "scenarios.generate",
            "--scenario",
            "healthy",
            "--out",
            str(tmp_path / "file" / "x"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert blocked.returncode == 2 and "Traceback" not in blocked.stderr
    assert blocked.stderr.startswith(f"generate: cannot write {tmp_path / 'file' / 'x' / 'healthy'}: ")


def test_size_picks_a_scale_that_gives_about_that_many_bytes(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "scenarios.generate",
            "--scenario",
            "retry_storm",
            "--out",
            str(tmp_path),
            "--size",
            "2MB",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    written = sum((tmp_path / "retry_storm" / f).stat().st_size for f in ("traces.jsonl", "logs.jsonl"))
    assert 0.8 * 2 * 2**20 < written < 1.2 * 2 * 2**20
    assert json.loads((tmp_path / "retry_storm" / "truth.json").read_text())["scale"] > 2


# -- the committed copies ------------------------------------------------------------------


def test_committed_copies_are_small_and_complete() -> None:
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert total <= 5_000_000
    assert sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_committed_truth_matches_the_generator(name: str) -> None:
    truth = json.loads((FIXTURES / name / "truth.json").read_text())
    fresh, _, traces, _ = _record(name, truth["scale"], truth["seed"])
    assert fresh == truth  # same counts, trace ids and window: regenerate fixtures/ after changing a scenario
    committed = (FIXTURES / name / "traces.jsonl").read_bytes()
    assert len(committed.splitlines()) == len(traces.splitlines())


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_truth_shape(name: str) -> None:
    truth = json.loads((FIXTURES / name / "truth.json").read_text())
    assert truth["scenario"] == name
    assert truth["onset_ns"] == ONSET_NS and truth["onset_iso"] == "2025-06-12T09:15:00.000000Z"
    w = truth["window"]
    assert (w["baseline_start_ns"], w["baseline_end_ns"], w["incident_start_ns"], w["incident_end_ns"]) == (
        START_NS,
        ONSET_NS,
        ONSET_NS,
        END_NS,
    )
    if name == "healthy":
        assert truth["root_cause"] is None and truth["trace_ids"] == []
    else:
        from correlate.types import MECHANISMS

        assert set(truth["root_cause"]["mechanisms"]) <= set(MECHANISMS)
        assert 3 <= len(truth["trace_ids"]) <= 5


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_committed_copy_ingests_without_rejects_and_holds_its_truth_traces(name: str) -> None:
    import pyarrow.parquet as pq

    from ingest import ingest_paths
    from ingest.dataset import open_handle

    folder = FIXTURES / name
    truth = json.loads((folder / "truth.json").read_text())
    result = ingest_paths([str(folder / "traces.jsonl"), str(folder / "logs.jsonl")], name)
    assert result.rejected == 0
    assert result.spans == truth["spans"] and result.logs == truth["logs"]
    handle = open_handle(name)
    trace_ids = set()
    for f in handle.span_files:
        trace_ids.update(pq.read_table(f, columns=["trace_id"]).column("trace_id").to_pylist())
    assert set(truth["trace_ids"]) <= trace_ids


def test_roundtrip_rejects_a_corrupted_line() -> None:
    with pytest.raises(ValueError, match="non-hexadecimal number found in fromhex"):  # the span id "zz"
        parse_traces_line('{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"zz"}]}]}]}')
    assert isinstance(parse_traces_line('{"resourceSpans":[]}'), TracesData)


def test_fast_json_mapping_equals_protobuf_json_format(lock_run) -> None:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

    from scenarios.otlp_json import reference_json, traces_data_to_json

    _, _, traces, logs = lock_run
    for line in traces.splitlines():
        assert reference_json(parse_traces_line(line)) == line + b"\n"
    for line in logs.splitlines():
        assert reference_json(parse_logs_line(line)) == line + b"\n"
    # every AnyValue kind, including those the scenarios never write
    data = parse_traces_line(traces.splitlines()[0])
    span = data.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.extend(
        [
            KeyValue(key="b", value=AnyValue(bool_value=True)),
            KeyValue(key="d", value=AnyValue(double_value=0.25)),
            KeyValue(key="nan", value=AnyValue(double_value=float("nan"))),
            KeyValue(key="raw", value=AnyValue(bytes_value=b"\x00\xff")),
            KeyValue(
                key="arr", value=AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=-3), AnyValue()]))
            ),
            KeyValue(
                key="kv",
                value=AnyValue(
                    kvlist_value=KeyValueList(values=[KeyValue(key="x", value=AnyValue(string_value="y"))])
                ),
            ),
        ]
    )
    span.links.add(trace_id=span.trace_id, span_id=span.span_id, flags=256)
    assert traces_data_to_json(data) == reference_json(data)
    assert b'"links":[{"traceId":"' + span.trace_id.hex().encode() in traces_data_to_json(data)
