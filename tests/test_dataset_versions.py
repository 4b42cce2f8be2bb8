"""A dataset of the previous layout is upgraded in place on open; a later one is refused."""

from __future__ import annotations

import json

import pytest

import ingest
from correlate import CorrelateError, open_dataset
from ingest.dataset import MANIFEST_VERSION, dataset_path
from ingest.migrations import DatasetTooNew
from mcp_server.cli import main

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def _spans(n: int, service: str = "api", base: int = 0) -> list[dict]:
    return [
        dict(
            trace_id=f"{base + i + 1:032x}",
            span_id=f"{base + i + 1:016x}",
            name="GET /x",
            service_name=service,
            kind="SERVER",
            status_code="UNSET",
            start_ns=T0 + (base + i) * MS,
            end_ns=T0 + (base + i) * MS + 5 * MS,
        )
        for i in range(n)
    ]


def _as_version_0(name: str) -> dict:
    """Rewrite the dataset's manifest as the first layout wrote it: no version, totals, range, services."""
    path = dataset_path(name) / "manifest.json"
    m = json.loads(path.read_text())
    old = {k: m[k] for k in ("name", "files", "sources")}
    path.write_text(json.dumps(old))
    return m


def test_previous_layout_is_upgraded_in_place_on_open(dcr_home):
    from correlate.testing import make_dataset

    make_dataset("old", _spans(30) + _spans(5, "db", base=100))
    want = _as_version_0("old")
    with open_dataset("old") as ds:
        assert ds.sql("SELECT count(*) FROM spans").rows == ((35,),)
        assert ds.handle.time_range == (want["time_range"]["start_ns"], want["time_range"]["end_ns"])
    on_disk = json.loads((dataset_path("old") / "manifest.json").read_text())
    assert on_disk["schema_version"] == MANIFEST_VERSION
    assert on_disk["totals"]["spans"] == 35 and on_disk["services"] == ["api", "db"]
    assert on_disk["time_range"] == want["time_range"]
    assert not list(dataset_path("old").glob("manifest.json.*.tmp"))  # replaced atomically, nothing left


def test_an_ingest_into_a_previous_layout_commits_it_upgraded(dcr_home, tmp_path):
    from correlate.testing import make_dataset

    make_dataset("old", _spans(10))
    _as_version_0("old")
    src = tmp_path / "more.json"
    src.write_text(
        json.dumps(
            {
                "resourceSpans": [
                    {
                        "resource": {
                            "attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]
                        },
                        "scopeSpans": [
                            {
                                "spans": [
                                    {
                                        "traceId": "ab" * 16,
                                        "spanId": "cd" * 8,
                                        "name": "GET /",
                                        "startTimeUnixNano": str(T0),
                                        "endTimeUnixNano": str(T0 + MS),
                                    }
                                ]
                            }
                        ],
                    }
                ]
            }
        )
    )
    r = ingest.ingest_paths([str(src)], "old")
    assert r.spans == 1
    m = json.loads((dataset_path("old") / "manifest.json").read_text())
    assert m["schema_version"] == MANIFEST_VERSION and m["totals"]["spans"] == 11
    assert sorted(m["services"]) == ["api", "web"]


def test_a_later_layout_is_refused_with_what_to_do(dcr_home, capsys):
    from correlate.testing import make_dataset

    make_dataset("new", _spans(3))
    path = dataset_path("new") / "manifest.json"
    m = json.loads(path.read_text())
    m["schema_version"] = MANIFEST_VERSION + 1
    path.write_text(json.dumps(m))
    before = path.read_bytes()
    with pytest.raises(
        CorrelateError, match=r"written by a newer dcr \(layout version 2; this one reads up to 1\)"
    ):
        open_dataset("new")
    with pytest.raises(DatasetTooNew):
        ingest.ingest_paths([str(path)], "new")  # nor written to
    assert path.read_bytes() == before  # left as it was
    assert main(["sql", "new", "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "upgrade dcr" in err
