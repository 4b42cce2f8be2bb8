"""CRISP's own test cases (fixtures/public/crisp/): exclusive critical-path time per
"[service] operation" in µs must equal the `testing` values of every file.

Two ways in: the algorithm on span records parsed here (no reader involved), and end to end
(Jaeger file -> `ingest` -> dataset -> `DatasetSession.trace`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from correlate.critical_path import critical_path
from correlate.trace_tree import SpanRecord, build_tree

CRISP = Path(__file__).resolve().parent.parent / "fixtures" / "public" / "crisp"
CASES = sorted(CRISP.rglob("*.json"))
US = 1_000


def _expected(doc: dict) -> dict[str, int]:
    testing = doc["testing"]
    return testing[0] if isinstance(testing, list) else testing["opTimeExclusive"]


def _records(doc: dict) -> list[SpanRecord]:
    out = []
    for trace in doc["data"]:
        services = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
        for s in trace["spans"]:
            refs = s.get("references") or []
            parent = refs[0]["spanID"] if refs else None
            follows = bool(refs) and refs[0]["refType"] == "FOLLOWS_FROM"
            start = s["startTime"] * US
            out.append(
                SpanRecord(
                    span_id=s["spanID"],
                    parent_span_id=parent,
                    service=services[s["processID"]],
                    operation=s["operationName"],
                    start_ns=start,
                    end_ns=start + s["duration"] * US,
                    follows_from=follows,
                )
            )
    return out


def _per_operation(pairs) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, ns in pairs:
        out[key] = out.get(key, 0) + ns // US
    return out


def test_every_case_is_found():
    assert len(CASES) == 33  # 25 numbered cases and 4 error patterns of 2


@pytest.mark.parametrize("path", CASES, ids=lambda p: str(p.relative_to(CRISP)))
def test_critical_path_matches_crisp(path: Path):
    doc = json.loads(path.read_text())
    tree = build_tree(_records(doc))
    cp = critical_path(tree)
    got = _per_operation(
        (f"[{tree.spans[sid].service}] {tree.spans[sid].operation}", ns)
        for sid, ns in cp.exclusive_ns.items()
    )
    assert got == _expected(doc)


@pytest.mark.parametrize("path", CASES, ids=lambda p: str(p.relative_to(CRISP)))
def test_segments_tile_the_root(path: Path):
    """The timeline form of the same path covers the root exactly once, in time order."""
    doc = json.loads(path.read_text())
    tree = build_tree(_records(doc))
    cp = critical_path(tree)
    root = tree.spans[tree.roots[0]]
    assert cp.segments[0].start_ns == root.start_ns and cp.segments[-1].end_ns == root.end_ns
    for a, b in zip(cp.segments, cp.segments[1:], strict=False):
        assert a.end_ns == b.start_ns
    assert {s.span_id for s in cp.segments} <= set(cp.spans)


@pytest.mark.parametrize("path", CASES, ids=lambda p: str(p.relative_to(CRISP)))
def test_crisp_end_to_end_through_ingest(path: Path):
    import ingest
    from correlate import open_dataset

    doc = json.loads(path.read_text())
    ingest.ingest_paths([str(path)], "crisp")
    with open_dataset("crisp") as ds:
        (trace_id,) = ds.sql("SELECT trace_id FROM traces").rows[0]
        view = ds.trace(trace_id)
    got = _per_operation(
        (f"[{s.service}] {s.operation}", s.critical_path_ns) for s in view.spans if s.on_critical_path
    )
    assert got == _expected(doc)
    assert not [w for w in view.warnings if "clock skew" in w]  # no hosts in these files: nothing moves
