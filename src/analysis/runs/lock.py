"""The output folder's lock: one writer at a time (``<out>/.lock``, ``fcntl.flock``)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from analysis.core import paths
from analysis.core.errors import AnalysisError
from analysis.runs.manifest import now_utc

LOCK_NAME = ".lock"


class BatchLockedError(AnalysisError):
    """Another batch holds the lock on the output folder."""


@contextlib.contextmanager
def output_lock(out_dir: Path, what: str = "analysis run") -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on ``<out_dir>/.lock`` for the block.

    The lock file itself is never removed (removing a flock'd file lets two holders coexist);
    the lock is released by the kernel when the holder exits, even if it is killed.

    Parameters
    ----------
    out_dir : pathlib.Path
        The output folder (created if missing).
    what : str, default "analysis run"
        The command holding the lock, recorded in the lock file and named to a second caller.

    Returns
    -------
    contextmanager
        A context manager holding the lock while its block runs.

    Raises
    ------
    BatchLockedError
        Naming the holder (command, pid, start time) when another process holds the lock.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lock_path = out_dir / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = {}
            with contextlib.suppress(OSError, ValueError):
                holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
            who = holder.get("command", "analysis run")
            raise BatchLockedError(
                f"another {who} is writing to {paths.shown(out_dir)}/ "
                f"(pid {holder.get('pid', '?')}, started {holder.get('started', '?')}); "
                "wait for it or use --out"
            ) from None
        info = {"pid": os.getpid(), "started": now_utc(), "command": what}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info, sort_keys=True) + "\n").encode("utf-8"), 0)
        yield
    finally:
        os.close(fd)  # releases the flock if we held it
