"""One notebook run, executed with papermill: the function a pool or Dask worker calls.

:func:`execute_run` takes plain data (picklable; no shared filesystem needed for the
outputs) and never raises: it returns the executed notebook's text (timestamps removed) with
the status, the attempts and, for a failure, the failing cell and the error. The kernel
(``python3``), its environment and its working directory (the notebook's own folder) are
defined here once; ``analysis notebooks`` (:mod:`analysis.runs.inplace`) uses the same.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from analysis.core.atomic import scratch_folder
from analysis.runs.manifest import STATUS_FAILED, STATUS_OK
from analysis.runs.notebooks import cell_source

KERNEL_NAME = "python3"
DEFAULT_TIMEOUT = 600  # seconds per cell (nbclient's timeout is per cell)
START_TIMEOUT = 60  # seconds to wait for a kernel to start
START_RETRIES = 2  # extra attempts when the kernel fails to start
# How a kernel is stopped once its notebook has run. "immediate" kills it (0.1 s); "graceful"
# asks it to shut down and waits for it to exit (about 1 s for a kernel that has imported
# pandas, seaborn and statsmodels). Every output has been received by then (nbclient waits for
# each cell's idle status), and the notebooks write no file of their own, so nothing is lost.
KERNEL_SHUTDOWN = "immediate"

# The environment of every kernel: the same as the Makefile's. The venv's `python3` kernelspec
# comes first (JUPYTER_PREFER_ENV_PATH) and matplotlib draws with Agg (no display needed).
KERNEL_ENV = {
    "JUPYTER_PREFER_ENV_PATH": "1",
    "JUPYTER_PLATFORM_DIRS": "1",
    "MPLBACKEND": "Agg",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}


@functools.cache
def _kernel_manager_class():
    """An AsyncKernelManager whose kernel writes its stdout/stderr to a log file.

    Kernel processes otherwise inherit the terminal, and their warnings would be interleaved
    with the progress lines; the log's tail goes into the failure summary instead.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Unicode

    class LoggedKernelManager(AsyncKernelManager):
        log_path = Unicode("", config=True, help="file receiving the kernel's stdout/stderr")

        async def start_kernel(self, **kw):
            if self.log_path and "stdout" not in kw:
                f = open(self.log_path, "ab")  # noqa: SIM115 - closed after the Popen
                kw["stdout"] = kw["stderr"] = f
                try:
                    return await super().start_kernel(**kw)
                finally:
                    f.close()
            return await super().start_kernel(**kw)

    return LoggedKernelManager


def _strip_timing(nb: dict, notebook_rel: str, output_rel: str) -> None:
    """Remove timestamps and random ids from an executed notebook, make its paths portable:
    the same run on the same inputs gives the same bytes."""
    meta = nb.setdefault("metadata", {}).setdefault("papermill", {})
    for key in ("start_time", "end_time", "duration"):
        meta.pop(key, None)
    meta["input_path"] = notebook_rel
    meta["output_path"] = output_rel
    for cell in nb.get("cells", []):
        cmeta = cell.get("metadata", {})
        if "injected-parameters" in cmeta.get("tags", []) and "id" in cell:
            cell["id"] = "injected-parameters"  # papermill draws a random one
        cmeta.pop("execution", None)
        pm = cmeta.get("papermill")
        if isinstance(pm, dict):
            for key in ("start_time", "end_time", "duration"):
                pm.pop(key, None)


def _failing_cell(nb: dict) -> dict:
    """Locate the failing cell of an executed notebook: the first code cell with an error
    output, else (a dead kernel, a timeout) the last cell that started. The index counts the
    cells of the *source* notebook (papermill's injected and error-marker cells left out)."""
    cells = []
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags or "papermill-error-cell-tag" in tags:
            continue
        cells.append(cell)
    found = None
    for i, cell in enumerate(cells):
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error" and not (
                out.get("ename") == "SystemExit" and out.get("evalue") in ("", "0")
            ):
                found = i
                break
        if found is not None:
            break
    if found is None:
        started = [
            i
            for i, c in enumerate(cells)
            if c.get("cell_type") == "code"
            and (c.get("metadata", {}).get("papermill") or {}).get("start_time")
        ]
        found = started[-1] if started else None
    if found is None:
        return {}
    cell = cells[found]
    first = next((ln.strip() for ln in cell_source(cell).splitlines() if ln.strip()), "")
    return {
        "cell_index": found,
        "execution_count": cell.get("execution_count"),
        "cell_source": first[:120],
    }


def error_of(exc: BaseException) -> tuple[str, str]:
    """(exception name, first line of its message), as the summary shows them."""
    ename = getattr(exc, "ename", None) or type(exc).__name__
    evalue = getattr(exc, "evalue", None)
    if evalue is None:
        evalue = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return str(ename), str(evalue)[:2000]


def _is_start_failure(exc: BaseException, nb: dict | None) -> bool:
    """Did the run fail before its first cell started (so that a retry is safe)?"""
    names = {c.__name__ for c in type(exc).__mro__}
    # An error raised by a cell, or a kernelspec that does not exist: retrying cannot help.
    if names & {"PapermillExecutionError", "NoSuchKernel"}:
        return False
    if nb is None:
        return True
    return not any(
        (c.get("metadata", {}).get("papermill") or {}).get("start_time")
        for c in nb.get("cells", [])
    )


def _papermill_once(task: dict, workdir: Path) -> tuple[dict | None, BaseException | None, str]:
    """One papermill execution in `workdir`: (executed notebook or None, exception, kernel log)."""
    import papermill
    import zmq
    from traitlets.config import Config

    src = workdir / task["notebook_name"]
    src.write_text(task["notebook_source"], encoding="utf-8")
    out = workdir / f"executed-{task['notebook_name']}"
    out.unlink(missing_ok=True)
    log = workdir / "kernel.log"
    log.unlink(missing_ok=True)
    cfg = Config()
    cfg.LoggedKernelManager.log_path = str(log)
    if zmq.has("curve"):
        # CurveZMQ keys for kernels whose spec declares support (ipykernel does): the
        # kernel's channels are encrypted and it does not warn about plain-text TCP.
        cfg.KernelManager.transport_encryption = "auto"
    exc: BaseException | None = None
    try:
        papermill.execute_notebook(
            str(src),
            str(out),
            parameters=task["parameters"],
            kernel_name=task["kernel_name"],
            progress_bar=False,
            log_output=False,
            start_timeout=task["start_timeout"],
            execution_timeout=task["timeout"],
            # The kernel's working directory: the notebook's own folder. Passed to the kernel
            # launch (nbclient's resources path) rather than papermill's `cwd=`, which would
            # chdir the whole worker process (unsafe with threads, as in a Dask worker).
            resources={"metadata": {"path": task["cwd"]}},
            record_timing=False,  # no timestamps in the outputs
            shutdown_kernel=task.get("kernel_shutdown", KERNEL_SHUTDOWN),
            kernel_manager_class=_kernel_manager_class(),
            config=cfg,
        )
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the batch
        exc = e
    nb = None
    if out.is_file():
        with contextlib.suppress(OSError, ValueError):
            nb = json.loads(out.read_text(encoding="utf-8"))
    log_text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    return nb, exc, log_text


def execute_run(task: dict) -> dict:
    """Execute one run (in a pool worker or on a Dask worker); never raises.

    `task` holds plain data (picklable, no shared filesystem needed for the outputs): the
    notebook's source text, parameters, kernel name, timeouts, the kernel's working directory
    and the relative paths to record. Returns the executed notebook as text (timestamps
    removed) with the status, the attempts and, for a failure, the failing cell and the error.
    """
    import logging

    os.environ.update(KERNEL_ENV)
    # nbclient logs a dead kernel or a timeout through papermill's logger; the failure is
    # reported in the summary and the manifest, not as a stray line among the progress lines.
    logging.getLogger("papermill").setLevel(logging.CRITICAL)
    t0 = time.monotonic()
    attempts = 0
    nb: dict | None = None
    exc: BaseException | None = None
    log_text = ""
    if not Path(task["cwd"]).is_dir():
        return {
            "id": task["id"],
            "status": STATUS_FAILED,
            "attempts": 0,
            "duration_s": 0.0,
            "notebook_text": None,
            "error": {
                "ename": "FileNotFoundError",
                "evalue": f"the notebook folder {task['cwd']} does not exist on host "
                f"{os.uname().nodename}: a Dask worker needs the project at the same path",
            },
        }
    scratch = task.get("scratch")  # the local pool's folder, removed by the parent too
    scratch = scratch if scratch and Path(scratch).is_dir() else None
    with scratch_folder("analysis-run-", scratch) as tmp:
        for attempt in range(1, task["retries"] + 2):
            attempts = attempt
            nb, exc, log_text = _papermill_once(task, tmp)
            if exc is None or attempt > task["retries"] or not _is_start_failure(exc, nb):
                break
            # The kernel failed to start. Under parallel starts this is usually the port race
            # documented in nteract/papermill#511 ("zmq.error.ZMQError: Address already in
            # use" when running notebooks with multiprocessing) and jupyter/jupyter_client#154
            # (ports chosen, released, then taken by another kernel before this one binds
            # them; seen as "Kernel died before replying to kernel_info" or a start timeout).
            # Nothing ran yet, so starting again with fresh ports is safe.
            time.sleep(0.2 * attempt + random.random() * 0.3)
    result: dict[str, Any] = {
        "id": task["id"],
        "status": STATUS_OK if exc is None else STATUS_FAILED,
        "attempts": attempts,
        "duration_s": round(time.monotonic() - t0, 3),
        "notebook_text": None,
        "error": None,
    }
    if exc is not None:
        ename, evalue = error_of(exc)
        if type(exc).__name__ == "CellTimeoutError":
            evalue = f"a cell ran longer than the {task['timeout']} s timeout (--timeout)"
        err: dict[str, Any] = {"ename": ename, "evalue": evalue}
        if nb is not None:
            err |= _failing_cell(nb)
        tail = [ln for ln in log_text.splitlines() if ln.strip()][-15:]
        kernel_trouble = not hasattr(exc, "ename") and type(exc).__name__ != "CellTimeoutError"
        if tail and kernel_trouble:  # a kernel that died or never started: its own words
            err["kernel_log"] = "\n".join(tail)
        result["error"] = err
    if nb is not None:
        output_rel = task["failed_rel"] if exc is not None else task["output_rel"]
        _strip_timing(nb, task["notebook_rel"], output_rel)
        result["notebook_text"] = (
            json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        )
    return result


def init_worker(env: dict[str, str]) -> None:
    """Pool initializer: the worker gets the parent's environment as it is now (the fork
    server may have been started earlier, with another one) plus the kernels' variables."""
    os.environ.clear()
    os.environ.update(env)
    os.environ.update(KERNEL_ENV)


def describe_failure(error: dict) -> str:
    """'cell 4 (In [3]): first line of the cell' and 'ename: evalue', on two lines."""
    lines = []
    if "cell_index" in error:
        count = error.get("execution_count")
        prompt = f" (In [{count}])" if count is not None else ""
        lines.append(f"cell {error['cell_index']}{prompt}: {error.get('cell_source', '')}")
    evalue = str(error.get("evalue", "")).strip().splitlines()
    lines.append(f"{error.get('ename', 'Error')}: {evalue[0] if evalue else ''}".rstrip(": "))
    if error.get("kernel_log"):
        lines.append("kernel log (last lines):")
        lines.extend("  " + ln for ln in error["kernel_log"].splitlines())
    return "\n".join(lines)
