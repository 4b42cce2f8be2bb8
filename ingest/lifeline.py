"""Child processes that end when their parent does, however the parent ends.

An ingest's decoding workers (`ingest/pipeline.py`) wait on a queue for their next range. Their
parent killed with -9 runs no clean-up, and the queue never reports its end (each worker holds a
copy of it), so without this they would wait forever, orphaned under pid 1.

    Linux      prctl(PR_SET_PDEATHSIG, SIGKILL): the kernel kills the child when its parent dies
    elsewhere  a daemon thread polls os.getppid() and ends the child when its parent changes

The parent is the process that forked the child: the ingest itself, or, with the forkserver
start method, the fork server, which ends when the ingest does.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

__all__ = ["die_with_parent", "POLL_S"]

POLL_S = 0.5  # how often the fallback looks at its parent
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int | None = None) -> None:
    """Call in the child, first thing: it ends when its parent does. `parent_pid`, when given,
    is the pid its parent must have; a child whose parent already died ends at once."""
    ppid = os.getppid()
    if parent_pid is not None and ppid != parent_pid:
        os._exit(1)
    if _kernel_kills_orphan():
        if os.getppid() != ppid:  # the parent died before the kernel was asked
            os._exit(1)
        return
    threading.Thread(target=_watch, args=(ppid,), name="dcr-lifeline", daemon=True).start()


def _kernel_kills_orphan() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(ppid: int) -> None:
    while os.getppid() == ppid:
        time.sleep(POLL_S)
    os._exit(1)
