"""MCP start-up: `dcr serve` spawned, `initialize` answered, `tools/list` answered.

    python bench/mcp_startup.py              # 7 runs, prints each and the median
    python bench/mcp_startup.py --runs 15 --json

What an agent waits for when it starts the server: from spawning the process to the
`tools/list` answer, over stdio with raw JSON-RPC lines (no client library on the measuring
side). The target is under one second on this machine. Each run uses an empty DCR_HOME.
The server's CPU time (user + system, from /proc) is printed too: on a machine shared with
other work the wall time grows with the load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 1.0

_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}
_INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def _send(proc: subprocess.Popen, msg: dict) -> None:
    proc.stdin.write((json.dumps(msg) + "\n").encode())
    proc.stdin.flush()


def _answer(proc: subprocess.Popen, want_id: int) -> dict:
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"dcr serve exited: {proc.stderr.read().decode()[-500:]}")
        msg = json.loads(line)
        if msg.get("id") == want_id:
            return msg


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (Linux /proc), -1 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="dcr-bench-home-") as home:
        env = {**os.environ, "DCR_HOME": home}
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcp_server.cli", "serve"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            _send(proc, _INIT)
            _answer(proc, 1)
            t_init = time.perf_counter() - t0
            _send(proc, _INITIALIZED)
            _send(proc, _LIST)
            tools = _answer(proc, 2)["result"]["tools"]
            t_list = time.perf_counter() - t0
            cpu = _cpu_s(proc.pid)
        finally:
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {
        "initialize_s": round(t_init, 3),
        "tools_list_s": round(t_list, 3),
        "cpu_s": round(cpu, 3),
        "tools": len(tools),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    median = statistics.median(r["tools_list_s"] for r in runs)
    result = {
        "runs": runs,
        "median_tools_list_s": median,
        "median_initialize_s": statistics.median(r["initialize_s"] for r in runs),
        "median_cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "target_s": TARGET_S,
        "within_target": median < TARGET_S,
        "load_avg_1m": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for i, r in enumerate(runs, 1):
            print(
                f"run {i}: initialize {r['initialize_s']:.3f} s, tools/list {r['tools_list_s']:.3f} s, "
                f"server CPU {r['cpu_s']:.2f} s ({r['tools']} tools)"
            )
        print(
            f"median: initialize {result['median_initialize_s']:.3f} s, tools/list {median:.3f} s, "
            f"server CPU {result['median_cpu_s']:.2f} s (target < {TARGET_S} s; "
            f"load average {result['load_avg_1m']:.2f} on {os.cpu_count()} cores)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
