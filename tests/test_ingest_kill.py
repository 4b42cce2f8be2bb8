"""kill -9 of a running `dcr ingest` (its process alone, not its group) at three moments: nothing
of it stays alive, and the next ingest takes the dataset at once and ends with every span once.
And the dataset lock itself: a forked child never keeps it, a held one names its holder.

Each moment is reached by watching the ingest, not by timing it. Its input is the dump and then
standard input, which the test holds open: until the test closes it the ingest cannot commit.

    reading     the dump decoded and partly written, the ingest reading standard input
    decoding    the first part file appears while the workers decode the dump
    committing  parts of 64 MiB: nothing is written before commit; standard input closed, the
                first part file appears while commit writes the buffered spans
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

import ingest
from correlate import open_dataset
from ingest.dataset import open_handle
from ingest.writer import _release_lock, acquire_lock

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "fixtures" / "public" / "otlp-examples"
WORKERS = 3
DEADLINE_S = 20.0

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds processes in /proc")


def _dcr(*args: str) -> list[str]:
    return [sys.executable, "-m", "mcp_server.cli", *args]


@pytest.fixture(scope="module")
def dump(tmp_path_factory) -> tuple[Path, int]:
    """A Collector dump big enough to be decoded by the workers (17 MiB), and its distinct spans."""
    sys.path.insert(0, str(REPO))
    from bench.ingest import generate

    path = generate(tmp_path_factory.mktemp("dump") / "d.jsonl", 17 * 1024 * 1024, seed=12)
    keys = set()
    for line in path.read_bytes().splitlines():
        for rs in msgspec.json.decode(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                keys.update((s["traceId"], s["spanId"]) for s in ss["spans"])
    return path, len(keys)


def _session(sid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes of session `sid` (zombies hold nothing)."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat[3]) == sid and stat[0] != "Z":
            out.append((int(entry.name), cmd))
    return out


def _workers(pid: int) -> list[int]:
    """The decoding processes of ingest `pid` (forked: the same command line)."""
    return [w for w, cmd in _session(pid) if w != pid and "mcp_server.cli" in cmd]


def _parts(folder: Path) -> set[str]:
    try:
        return {e.name for e in os.scandir(folder)}
    except FileNotFoundError:
        return set()


def _until(what: str, cond, p: subprocess.Popen, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert p.poll() is None, f"the ingest ended before {what}: {p.stderr.read().decode()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
        time.sleep(0.001)


def _moment_reading(p: subprocess.Popen, ds: Path, listed: set[str]) -> None:
    spool = ds / ".staging" / f"stdin-{p.pid}"  # created before the first read of standard input
    _until("reading of standard input", spool.exists, p)
    assert _parts(ds / "spans") - listed, "the dump's parts should be written (and not yet listed)"


def _moment_decoding(p: subprocess.Popen, ds: Path, listed: set[str]) -> None:
    _until("part file", lambda: _parts(ds / "spans") - listed, p)


def _moment_committing(p: subprocess.Popen, ds: Path, listed: set[str]) -> None:
    spool = ds / ".staging" / f"stdin-{p.pid}"
    _until("reading of standard input", spool.exists, p)
    assert not _parts(ds / "spans") - listed, "nothing should be written before the commit"
    p.stdin.close()
    _until("part file written by the commit", lambda: _parts(ds / "spans") - listed, p)


MOMENTS = {
    "reading": (_moment_reading, "0.5"),
    "decoding": (_moment_decoding, "0.5"),
    "committing": (_moment_committing, "64"),
}


def _kill_at(moment: str, path: Path, name: str, env: dict[str, str], ds: Path, listed: set[str]) -> None:
    """Start `dcr ingest DUMP -`, kill -9 its process at `moment`; then no process of it is left."""
    reach, part_mb = MOMENTS[moment]
    env = {**env, "DCR_INGEST_PART_MB": part_mb}
    # a session of its own: whatever the ingest started can be found (and, should the test fail, ended)
    p = subprocess.Popen(
        _dcr("ingest", str(path), "-", "--dataset", name),
        env=env,
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _until(f"{WORKERS} workers", lambda: len(_workers(p.pid)) == WORKERS, p)
        reach(p, ds, listed)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        deadline = time.monotonic() + 5
        while (left := _session(p.pid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not left, f"processes of the killed ingest still alive: {left}"
    finally:
        for pid, _ in _session(p.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if p.stdin and not p.stdin.closed:
            p.stdin.close()
        p.stderr.close()


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_kill_9_of_the_ingest_leaves_no_process_and_no_lock(
    moment: str, dump: tuple[Path, int], dcr_home: Path
):
    path, n_spans = dump
    env = {
        **os.environ,
        "DCR_HOME": str(dcr_home),
        "DCR_INGEST_WORKERS": str(WORKERS),
        "DCR_INGEST_RANGE_MB": "0.25",
    }
    for attempt in range(3):  # a commit lasts ~0.1 s: a kill may land after it (then try again)
        name = f"kill-{moment}-{attempt}"
        ingest.ingest_paths([str(EXAMPLES / "trace.json")], name)  # a previous state to keep
        before = open_handle(name).manifest
        ds = dcr_home / "datasets" / name
        _kill_at(moment, path, name, env, ds, {Path(f).name for f in before["files"]["spans"]})
        if open_handle(name).manifest == before:
            break
    else:
        pytest.fail("every kill landed after the commit")

    t0 = time.monotonic()
    again = subprocess.run(
        _dcr("ingest", str(path), "--dataset", name, "--json"),
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=60,
    )
    took = time.monotonic() - t0
    assert again.returncode == 0, again.stderr
    assert b"being written by another process" not in again.stderr  # it did not wait for the lock
    assert took < 15, f"the next ingest took {took:.1f} s"
    assert json.loads(again.stdout)["spans"] == n_spans
    with open_dataset(name) as session:
        ((total, distinct),) = session.sql("SELECT count(*), count(DISTINCT span_id) FROM spans").rows
    assert total == distinct == before["totals"]["spans"] + n_spans
    assert _parts(ds / "spans") == {Path(f).name for f in open_handle(name).manifest["files"]["spans"]}


# ---- the lock -----------------------------------------------------------------------------

_HOLD_AND_FORK = """
import os, sys, time
from pathlib import Path
from ingest.writer import acquire_lock
acquire_lock(Path(sys.argv[1]), "x", 1.0)
if os.fork() == 0:
    os.write(1, b"child\\n")  # its at-fork hooks have run: what it closes, it has closed
    time.sleep(60)
    os._exit(0)
os.write(1, b"locked\\n")  # one write each (print's text and end can interleave with the child's)
time.sleep(60)
"""


def test_a_forked_child_does_not_keep_the_lock_of_its_killed_parent(tmp_path: Path):
    p = subprocess.Popen(
        [sys.executable, "-c", _HOLD_AND_FORK, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        # both have started (on a loaded machine the parent can be killed before the child has
        # run at all, and then it still holds the copy it is about to close)
        assert {p.stdout.readline(), p.stdout.readline()} == {b"locked\n", b"child\n"}
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        assert len(_session(p.pid)) == 1  # the child lives on (nothing here ends it)...
        _release_lock(acquire_lock(tmp_path, "x", 0.0))  # ...and the lock is free at once
    finally:
        for pid, _ in _session(p.pid):
            os.kill(pid, signal.SIGKILL)
        p.stdout.close()


_ORPHAN = """
import os, sys, time
from ingest import lifeline
lifeline._kernel_kills_orphan = lambda: False  # the fallback, as where there is no prctl
parent = os.getpid()
if os.fork() == 0:
    lifeline.die_with_parent(parent)
    print(os.getpid(), flush=True)  # only once it watches: the test kills the parent then
    time.sleep(60)
    os._exit(0)
time.sleep(60)
"""


def test_without_prctl_a_watchdog_ends_the_orphaned_child():
    p = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN], cwd=REPO, stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        child = int(p.stdout.readline())
        assert child in dict(_session(p.pid))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        deadline = time.monotonic() + 5
        while _session(p.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _session(p.pid)
    finally:
        for pid, _ in _session(p.pid):
            os.kill(pid, signal.SIGKILL)
        p.stdout.close()


def test_a_held_lock_names_its_pid_and_age(dcr_home: Path):
    env = {**os.environ, "DCR_HOME": str(dcr_home)}
    # an ingest reading standard input holds the dataset until the test closes it
    first = subprocess.Popen(
        _dcr("ingest", "-", "--dataset", "busy"),
        env=env,
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lock = dcr_home / "datasets" / "busy" / ".lock"
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not (lock.exists() and lock.read_text()):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.01)
        assert json.loads(lock.read_text())["pid"] == first.pid
        told: list[str] = []
        with pytest.raises(ingest.DatasetLocked) as exc:
            ingest.ingest_paths(
                [str(EXAMPLES / "trace.json")], "busy", lock_timeout_s=0.3, on_wait=told.append
            )
        who = (
            rf"dataset 'busy' is being written by another process, pid {first.pid} \(dcr ingest, for \d+ s\)"
        )
        assert re.fullmatch(
            who + "; waited 0.3 s: wait for it to finish or use another dataset", str(exc.value)
        )
        assert len(told) == 1 and re.fullmatch(who + "; waiting up to 0.3 s", told[0]), told
    finally:
        first.stdin.close()
        first.wait(timeout=60)
    assert lock.read_text() == ""  # released: nobody named


def test_a_lock_whose_holder_exited_but_left_a_process_says_how_to_find_it(dcr_home: Path):
    import fcntl

    folder = dcr_home / "datasets" / "orphaned"
    folder.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT)  # as a worker of an older dcr kept it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"pid": int(gone), "since": time.time() - 89.9, "by": "dcr ingest"}).encode())
        with pytest.raises(ingest.DatasetLocked) as exc:
            ingest.ingest_paths([str(EXAMPLES / "trace.json")], "orphaned", lock_timeout_s=0.0)
    finally:
        os.close(fd)
    assert str(exc.value) == (
        f"dataset 'orphaned' is being written by another process, pid {int(gone)} (dcr ingest, for 90 s), which "
        f"has exited but left a process holding its lock: find it with 'fuser -v {folder / '.lock'}'; wait for it "
        "to finish or use another dataset"
    )
    ingest.ingest_paths(
        [str(EXAMPLES / "trace.json")], "orphaned", lock_timeout_s=0.0
    )  # free now: taken at once
