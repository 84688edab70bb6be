"""Child processes: none survives the command that started it.

Batch workers and the Jupyter kernels they start are descendants of the ``analysis``
process; when it is interrupted, :func:`terminate_descendants` stops them (SIGTERM, then
SIGKILL for any that do not exit), so that no kernel is left writing to a dead pipe.
"""

from __future__ import annotations

import contextlib
import os


def terminate_descendants(pid: int | None = None, timeout: float = 3.0) -> int:
    """Terminate every descendant of `pid` (default: this process); return how many there were.

    SIGTERM first, then SIGKILL for any still alive after `timeout` seconds.

    Parameters
    ----------
    pid : int or None, default None
        Process whose descendants are stopped; None for this process.
    timeout : float, default 3.0
        Seconds to wait after each signal.

    Returns
    -------
    int
        Number of descendants found (0 when `pid` does not exist).
    """
    import psutil

    try:
        root = psutil.Process(pid or os.getpid())
        children = root.children(recursive=True)
    except psutil.Error:
        return 0
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=timeout)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=timeout)
    return len(children)
