"""`dcr ingest` on a mixed folder: OTLP, Jaeger (plain and gzip) and Zipkin in one run."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from mcp_server.cli import main

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "public"


def _mixed_folder(root: Path) -> Path:
    folder = root / "dumps"
    for sub in ("otlp", "jaeger", "zipkin"):
        (folder / sub).mkdir(parents=True)
    shutil.copy(FIX / "otlp-examples" / "trace.json", folder / "otlp" / "trace.json")
    shutil.copy(FIX / "crisp" / "18.json", folder / "jaeger" / "crisp18.json")
    (folder / "jaeger" / "ui.json.gz").write_bytes(
        gzip.compress((FIX / "jaeger" / "ui-format" / "otlp2jaeger-out.json").read_bytes())
    )
    shutil.copy(FIX / "zipkin" / "sample3.json", folder / "zipkin" / "sample3.json")
    good = {
        "traceId": "aa" * 8,
        "id": "0000000000000001",
        "name": "get",
        "timestamp": 1_600_000_000_000_000,
        "duration": 10,
        "localEndpoint": {"serviceName": "zsvc"},
    }
    (folder / "zipkin" / "bad.json").write_text(json.dumps([good, {"traceId": "zz", "id": "1"}]))
    return folder


def test_mixed_folder_in_one_ingest(tmp_path: Path, capsys, dcr_home: Path):
    folder = _mixed_folder(tmp_path)
    assert main(["ingest", str(folder), "--dataset", "mixed", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_name = {Path(s["path"]).name: s for s in out["sources"]}
    assert {n: (s["format"], s["spans"], s["rejected"], s["duplicates"]) for n, s in by_name.items()} == {
        "trace.json": ("otlp_json", 1, 0, 0),
        "crisp18.json": ("jaeger", 9, 0, 0),
        "ui.json.gz": ("jaeger", 1, 0, 1),  # the file holds the same span twice
        "sample3.json": ("zipkin", 1, 0, 0),
        "bad.json": ("zipkin", 1, 1, 0),
    }
    assert by_name["ui.json.gz"]["compression"] == "gzip"
    assert (out["spans"], out["rejected"], out["duplicates"]) == (13, 1, 1)

    (line,) = Path(out["rejects_path"]).read_text().splitlines()
    rej = json.loads(line)
    assert (rej["offset"], rej["unit"], rej["reason"]) == (
        2,
        "record",
        "traceId is not hex of at most 32 characters",  # a short id is read at 16, a long one at 32
    )
    assert rej["source"].endswith("bad.json") and json.loads(rej["raw"]) == {"traceId": "zz", "id": "1"}

    from correlate import open_dataset

    with open_dataset("mixed") as ds:
        rows = ds.sql("SELECT service_name, count(*) FROM spans GROUP BY 1 ORDER BY 1 NULLS FIRST").rows
    services = {svc: n for svc, n in rows}
    assert services == {
        None: 1,
        "my.service": 1,
        "telemetrygen": 1,
        "zsvc": 1,
        **{f"S{i}": 1 for i in range(1, 10)},
    }
