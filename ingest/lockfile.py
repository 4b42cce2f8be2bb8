"""Exclusive locks that live exactly as long as the process holding them: an flock on a file that
names its holder.

    {"pid": 1234, "since": 1718000000.25, "by": "dcr ingest"}      (since: Unix time)

A flock belongs to the open file, not to the process: the kernel drops it when the last
descriptor of that open file is closed, which a dying process does for its own, however it
dies (kill -9 included). So no other process may keep a copy: the descriptor is close-on-exec,
and a forked child (an ingest's decoding worker) closes its copy at once (closing, never
unlocking: the lock is the parent's). Two opens of the file are two locks, so two threads of
one process exclude each other as two processes do.

Used for a dataset's writer (`ingest/writer.py`) and a conversation's turn
(`escalation/conversations.py`); each turns `LockHeld` into its own error.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.errors import DatasetLocked

__all__ = ["LockHeld", "LOCK_FILE", "acquire", "acquire_dataset", "release"]

_HELD: dict[int, tuple[int, int]] = {}  # descriptor -> (device, inode) of the lock files this process opened


class LockHeld(Exception):
    """Another live process kept the lock past the timeout; `holder` says who (see `_holder_text`)."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def _close_in_child() -> None:
    for fd, file in _HELD.items():
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == file:  # not a number reused since (a caller's own os.close)
                os.close(fd)
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


def acquire(
    path: Path, timeout_s: float, by: str, on_wait: Callable[[str], None] | None = None, poll_s: float = 0.1
) -> int:
    """The descriptor of an exclusive lock on `path`, waiting up to `timeout_s`; LockHeld past it.

    `by` says what this process does with it (written into the file). `on_wait(holder)` is called
    once when the lock is taken by another process, as soon as that process has said who it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    st = os.fstat(fd)
    _HELD[fd] = (st.st_dev, st.st_ino)
    t0 = time.monotonic()
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            info = _holder(fd)
            waited = time.monotonic() - t0
            if waited >= timeout_s:
                _close(fd)
                raise LockHeld(_holder_text(info, path)) from None
            if on_wait is not None and not told and (info is not None or waited >= 1.0):
                on_wait(_holder_text(info, path))
                told = True
            time.sleep(poll_s)
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": round(time.time(), 3), "by": by}).encode(), 0)
    return fd


def release(fd: int) -> None:
    """Unlock and close (the file stays: removing it would let a waiter lock a file no one else sees)."""
    try:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        _close(fd)


def _close(fd: int) -> None:
    _HELD.pop(fd, None)
    os.close(fd)


def _holder(fd: int) -> dict[str, Any] | None:
    """Who holds the lock, as it wrote it; None before it has written anything."""
    raw = os.pread(fd, 512, 0).strip()
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    if isinstance(info, int):  # an older dcr wrote its pid alone
        return {"pid": info}
    return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_text(info: dict[str, Any] | None, path: Path) -> str:
    """'pid 1234 (dcr ingest, for 42 s)', and what to do when that process is gone."""
    if info is None:
        return "which has not said who it is yet"
    what = [str(info.get("by") or "dcr")]
    since = info.get("since")
    if isinstance(since, int | float):
        what.append(f"for {max(0.0, time.time() - since):.0f} s")
    who = f"pid {info['pid']} ({', '.join(what)})"
    if not _alive(info["pid"]):
        who += f", which has exited but left a process holding its lock: find it with 'fuser -v {path}'"
    return who


LOCK_FILE = ".lock"  # a dataset's lock, in its folder


def acquire_dataset(
    folder: Path,
    name: str,
    timeout_s: float,
    on_wait: Callable[[str], None] | None = None,
    hint: str = "wait for it to finish or use another dataset",
    holder: str = "dcr ingest",
) -> int:
    """An exclusive lock on a dataset's folder/.lock for as long as this process lives, waiting up
    to `timeout_s`; its descriptor. DatasetLocked and the `on_wait` message name the process that
    holds it and for how long; `holder` says what this one does with it."""
    tell = None
    if on_wait is not None:

        def tell(who: str) -> None:
            on_wait(
                f"dataset {name!r} is being written by another process, {who}; waiting up to {timeout_s:g} s"
            )

    try:
        return acquire(folder / LOCK_FILE, timeout_s, holder, tell)
    except LockHeld as exc:
        why = f"waited {timeout_s:g} s: {hint}" if timeout_s > 0 else hint
        raise DatasetLocked(
            f"dataset {name!r} is being written by another process, {exc.holder}; {why}"
        ) from None
