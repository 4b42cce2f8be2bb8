"""The timeline: round buckets, change points by the right test for each series, and the onset,
on hand-made series and on generated traces with a known step."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from correlate import Window, open_dataset
from correlate.timeline import (
    bucket_width,
    change_point,
    count_change,
    latency_change,
    timeline,
)
from ingest import ingest_paths

S = 1_000_000_000
T0 = 1_750_000_020 * S  # a round minute since the epoch


@pytest.mark.parametrize(
    ("span_s", "buckets", "width_s"),
    [(60, 60, 1), (61, 60, 2), (3600, 60, 60), (3 * 3600, 60, 300), (30 * 60, 30, 60), (180, 60, 5)],
)
def test_bucket_width_is_round_and_fits(span_s, buckets, width_s):
    assert bucket_width(span_s * S, buckets) == width_s * S


def test_a_step_in_a_count_series_is_found_where_it_is():
    rng = random.Random(1)
    counts = [rng.randint(8, 12) for _ in range(20)] + [rng.randint(28, 34) for _ in range(10)]
    k, before, after, z = count_change(counts)
    assert k == 20 and 8 <= before <= 12 and 28 <= after <= 34 and z > 10


def test_an_error_rate_step_is_a_proportion_test():
    requests = [20] * 30
    errors = [0] * 15 + [10] * 15
    k, before, after, z = count_change(errors, requests)
    assert (k, before, after) == (15, 0.0, 0.5) and z > 10


def test_flat_noise_has_no_strong_change():
    rng = random.Random(2)
    counts = [rng.randint(8, 12) for _ in range(40)]
    assert count_change(counts)[3] < 4


def test_latency_step_on_log_durations():
    rng = random.Random(3)
    cells = []
    for i in range(30):
        ds = [rng.lognormvariate(0, 0.3) * (1e7 if i < 18 else 5e7) for _ in range(10)]
        cells.append((len(ds), sum(math.log(d) for d in ds), sum(math.log(d) ** 2 for d in ds)))
    k, before, after, z = latency_change(cells)
    assert k == 18 and 0.8e7 < before < 1.25e7 and 4e7 < after < 6.5e7 and z > 10


def test_short_series_say_nothing():
    assert change_point([1.0, 2.0, 3.0]) is None and count_change([1, 2, 3, 50, 60]) is None


def _dump(path: Path, step_s: int, slow_after: bool, errors_after: bool) -> None:
    """A gateway calling an api for 20 minutes, 2 requests a second; from `step_s` the api is 8x
    slower and/or fails half its calls."""
    rng = random.Random(4)
    lines = []
    for i in range(20 * 60 * 2):
        t = T0 + i * S // 2
        after = t >= T0 + step_s * S
        dur = int(rng.lognormvariate(0, 0.2) * (40e6 if (after and slow_after) else 5e6))
        err = errors_after and after and i % 2 == 0
        tid, root, child = f"{i + 1:032x}", f"{2 * i + 1:016x}", f"{2 * i + 2:016x}"
        span = {
            "traceId": tid,
            "spanId": root,
            "name": "GET /",
            "kind": 2,
            "startTimeUnixNano": str(t),
            "endTimeUnixNano": str(t + dur + 2_000_000),
            "status": {"code": 2} if err else {},
        }
        call = {
            "traceId": tid,
            "spanId": child,
            "parentSpanId": root,
            "name": "api.Get",
            "kind": 2,
            "startTimeUnixNano": str(t + 1_000_000),
            "endTimeUnixNano": str(t + 1_000_000 + dur),
            "status": {"code": 2} if err else {},
        }
        lines.append(
            json.dumps(
                {
                    "resourceSpans": [
                        {
                            "resource": {
                                "attributes": [{"key": "service.name", "value": {"stringValue": svc}}]
                            },
                            "scopeSpans": [{"spans": [s]}],
                        }
                        for svc, s in (("gateway", span), ("api", call))
                    ]
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")


def test_the_onset_of_a_slowdown_and_the_proposed_windows(tmp_path):
    _dump(tmp_path / "t.jsonl", 12 * 60, slow_after=True, errors_after=False)
    ingest_paths([str(tmp_path / "t.jsonl")], "step")
    with open_dataset("step") as ds:
        tl = timeline(ds)
    assert tl.bucket_ns == 30 * S and [s.service for s in tl.services] == ["api", "gateway"]
    api = next(s for s in tl.services if s.service == "api")
    assert sum(r[1] for r in api.rows) == 2400  # every request counted once, in round buckets
    assert all((r[0] - T0) % (30 * S) == 0 for r in api.rows)
    onset = tl.onset
    assert onset is not None and onset.at_ns == T0 + 12 * 60 * S
    assert {(c.service, c.metric) for c in onset.because} >= {
        ("api", "latency_ns"),
        ("gateway", "latency_ns"),
    }
    assert onset.window == Window(T0 + 12 * 60 * S, tl.window.end_ns)
    assert onset.baseline is not None and onset.baseline.end_ns == onset.at_ns
    assert onset.baseline.start_ns == max(T0, onset.at_ns - (onset.window.end_ns - onset.window.start_ns))
    assert any("error status" in n for n in tl.notes)  # no statuses: said, not silently zero


def test_errors_without_slowdown_and_a_healthy_run(tmp_path):
    _dump(tmp_path / "e.jsonl", 8 * 60, slow_after=False, errors_after=True)
    _dump(tmp_path / "h.jsonl", 8 * 60, slow_after=False, errors_after=False)
    ingest_paths([str(tmp_path / "e.jsonl")], "errs")
    ingest_paths([str(tmp_path / "h.jsonl")], "calm")
    with open_dataset("errs") as ds:
        tl = timeline(ds, services=["api"])
    assert [s.service for s in tl.services] == ["api"]
    assert tl.onset is not None and tl.onset.at_ns == T0 + 8 * 60 * S
    assert tl.onset.because[0].metric == "error_rate" and tl.onset.because[0].after == pytest.approx(0.5)
    with open_dataset("calm") as ds:
        calm = timeline(ds)
    assert calm.onset is None and calm.changes == ()


@pytest.mark.parametrize(
    ("start_s", "span_s", "buckets"),
    [
        (0.5, 60, 60),
        (59.9, 60, 60),
        (7, 3600, 60),
        (3, 10, 6),
        (12345.6, 5 * 86400, 60),
        (1, 86400 * 200, 60),
    ],
)
def test_aligned_buckets_never_exceed_the_cap(start_s, span_s, buckets):
    start, span = int(start_s * S), int(span_s * S)
    w = bucket_width(span, buckets, start)
    t0 = start // w * w
    assert -(-(start + span - t0) // w) <= buckets
