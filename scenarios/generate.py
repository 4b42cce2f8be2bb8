"""Write scenarios as OTLP/JSON lines plus truth.json.

    python -m scenarios.generate --scenario NAME|all --out DIR [--scale N | --size 2GB] [--seed S]

writes DIR/NAME/traces.jsonl, DIR/NAME/logs.jsonl and DIR/NAME/truth.json. Output streams (memory
stays flat at any size) and is a function of (scenario, seed, scale): the same arguments give
byte-identical files. `--scale` multiplies the request rate over the same 30 minutes (onset at
minute 15); `--size` picks the scale that gives about that many bytes per scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from scenarios import SCENARIOS
from scenarios.recorder import Recorder
from scenarios.shop import S

__all__ = [
    "START_NS",
    "ONSET_NS",
    "END_NS",
    "BASE_RATE_PER_S",
    "write_scenario",
    "run_scenario",
    "parse_size",
    "main",
]

START_NS = int(datetime(2025, 6, 12, 9, 0, tzinfo=UTC).timestamp()) * S
ONSET_NS = START_NS + 15 * 60 * S
END_NS = START_NS + 30 * 60 * S
BASE_RATE_PER_S = (
    0.034  # requests per second at --scale 1 (about 70 traces: the committed copies stay under 5 MB)
)
_BUF = 1 << 20


class _Counter:
    """A write-only sink that only counts bytes (used to calibrate --size)."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)


def _iso(t_ns: int) -> str:
    return (
        datetime.fromtimestamp(t_ns // S, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{t_ns % S // 1000:06d}Z"
    )


def run_scenario(
    name: str, traces_out: BinaryIO, logs_out: BinaryIO, seed: int, scale: float = 1.0, *, keep: bool = False
) -> tuple[dict[str, Any], Recorder]:
    """Simulate one scenario into two binary streams; returns its truth and the recorder."""
    cls = SCENARIOS[name]
    seed_text = f"{seed}:{name}:{scale!r}"
    recorder = Recorder(traces_out, logs_out, seed_text, keep=keep)
    shop = cls(recorder, seed_text, START_NS, ONSET_NS, END_NS, scale)
    shop.run(BASE_RATE_PER_S)
    recorder.close()
    root = None
    if cls.root_service is not None:
        root = {
            "service": cls.root_service,
            "operation": cls.root_operation,
            "mechanisms": list(cls.mechanisms),
        }
    truth = {
        "scenario": name,
        "root_cause": root,
        "onset_ns": ONSET_NS,
        "onset_iso": _iso(ONSET_NS),
        "window": {
            "baseline_start_ns": START_NS,
            "baseline_end_ns": ONSET_NS,
            "incident_start_ns": ONSET_NS,
            "incident_end_ns": END_NS,
        },
        "trace_ids": list(shop.marked),
        "description": cls.description,
        "seed": seed,
        "scale": scale,
        "spans": recorder.span_count,
        "logs": recorder.log_count,
    }
    return truth, recorder


def write_scenario(name: str, out_dir: Path, seed: int, scale: float = 1.0) -> dict[str, Any]:
    """Write DIR/NAME/{traces,logs}.jsonl and truth.json (each replaced atomically)."""
    target = out_dir / name
    target.mkdir(parents=True, exist_ok=True)
    tmp = {f: target / f".{f}.tmp" for f in ("traces.jsonl", "logs.jsonl", "truth.json")}
    with (
        open(tmp["traces.jsonl"], "wb", buffering=_BUF) as tf,
        open(tmp["logs.jsonl"], "wb", buffering=_BUF) as lf,
    ):
        truth, _ = run_scenario(name, tf, lf, seed, scale)
    tmp["truth.json"].write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    for final, path in tmp.items():
        os.replace(path, target / final)
    return truth


CALIBRATION_SCALE = 8.0


def bytes_per_scale(name: str, seed: int) -> float:
    """Bytes one unit of --scale writes, measured on a run at CALIBRATION_SCALE (about 1 s)."""
    traces, logs = _Counter(), _Counter()
    run_scenario(name, traces, logs, seed, CALIBRATION_SCALE)  # type: ignore[arg-type]
    return (traces.bytes + logs.bytes) / CALIBRATION_SCALE


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'2GB', '500MB', '1.5g', '123456' -> bytes (powers of 1024)."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"bad --size {text!r}: use a number with an optional unit, e.g. 500MB or 2GB")
    return int(float(m.group(1)) * 1024 ** "_kmgt".index(m.group(2).lower() or "_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenarios.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", required=True, help=f"one of {', '.join(SCENARIOS)}, or 'all'")
    parser.add_argument("--out", required=True, type=Path, help="folder to write NAME/ folders into")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--scale", type=float, default=None, help="request-rate multiplier (default 1)")
    size.add_argument("--size", default=None, help="about this many bytes per scenario, e.g. 2GB")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    if any(n not in SCENARIOS for n in names):
        parser.error(f"unknown scenario {args.scenario!r}: use one of {', '.join(SCENARIOS)} or 'all'")
    if args.scale is not None and args.scale <= 0:
        parser.error("--scale must be positive")
    try:
        target_bytes = parse_size(args.size) if args.size else None
    except ValueError as exc:
        parser.error(str(exc))
    for name in names:
        scale = args.scale or 1.0
        if target_bytes is not None:
            scale = max(1.0, round(target_bytes / bytes_per_scale(name, args.seed), 2))
        began = time.perf_counter()
        try:
            truth = write_scenario(name, args.out, args.seed, scale)
        except OSError as exc:
            print(
                f"generate: cannot write {args.out / name}: {exc.strerror or exc}; pick a writable --out",
                file=sys.stderr,
            )
            return 2
        seconds = time.perf_counter() - began
        folder = args.out / name
        size_mb = sum((folder / f).stat().st_size for f in ("traces.jsonl", "logs.jsonl")) / 2**20
        print(
            f"{name}: scale {scale:g}, {truth['spans']} spans, {truth['logs']} logs, {size_mb:.2f} MiB, "
            f"{seconds:.1f} s -> {folder}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
