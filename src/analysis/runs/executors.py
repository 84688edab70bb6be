"""Where runs execute: a local forkserver process pool, or a Dask distributed cluster.

Both take the same task (:func:`analysis.runs.worker.execute_run`) and offer the same four
operations: submit, wait for the first finished, result, close.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import socket
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from urllib.parse import urlsplit

from analysis.core.atomic import make_scratch_folder, remove_tree
from analysis.core.errors import AnalysisError
from analysis.core.processes import terminate_descendants
from analysis.runs.manifest import STATUS_FAILED
from analysis.runs.worker import error_of, execute_run, init_worker


class LocalExecutor:
    """A forkserver process pool; papermill and its dependencies are imported once, in the
    fork server (importing nbformat/jsonschema costs about 2 s), not in every worker."""

    def __init__(self, workers: int):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(
            ["analysis.runs.worker", "papermill", "nbclient", "jupyter_client"]
        )
        # Every run's scratch folder (its notebook, the partial output, the kernel log) goes
        # under this one, which the parent removes on every way out: a worker that is killed,
        # or interrupted between two statements, cannot clean up after itself.
        self.scratch = make_scratch_folder("analysis-run-")
        self.slots = workers
        self._ctx = ctx
        try:
            self.pool = self._new_pool()
        except BaseException:
            remove_tree(self.scratch)
            raise

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.slots,
            mp_context=self._ctx,
            initializer=init_worker,
            initargs=(dict(os.environ),),
        )

    def submit(self, task: dict) -> Future:
        task = task | {"scratch": str(self.scratch)}
        try:
            return self.pool.submit(execute_run, task)
        except BrokenProcessPool:  # a worker was killed: the next runs get a new pool
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()
            return self.pool.submit(execute_run, task)

    def wait(self, futures) -> set:
        done, _ = wait(futures, return_when=FIRST_COMPLETED)
        return done

    def result(self, fut) -> dict:
        try:
            return fut.result()
        except BrokenProcessPool as e:  # a worker killed (out of memory, kill -9): this run fails
            return {
                "status": STATUS_FAILED,
                "attempts": 1,
                "duration_s": None,
                "notebook_text": None,
                "error": {
                    "ename": "BrokenProcessPool",
                    "evalue": f"the worker process running it died ({e})",
                },
            }

    def close(self, cancel: bool = False) -> None:
        """Wait for the pool to finish; with `cancel`, stop it now, its kernels included.
        Either way, remove the runs' scratch folder once no worker can write to it."""
        try:
            if cancel:
                workers = list(getattr(self.pool, "_processes", None) or {})
                for pid in workers:  # the kernels each worker started, then the worker
                    terminate_descendants(pid)
                for pid in workers:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                _wait_gone(workers)
            self.pool.shutdown(wait=not cancel, cancel_futures=cancel)
        finally:
            remove_tree(self.scratch)


def _wait_gone(pids: list[int], timeout: float = 5.0) -> None:
    """Wait for the processes to exit; SIGKILL the ones still there after `timeout`."""
    import psutil

    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=timeout)


def _check_reachable(address: str) -> None:
    """A scheduler address ``tcp://host:port`` that accepts connections, or one clear error."""
    parsed = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in ("tcp", "tls") or not parsed.hostname or port is None:
        raise AnalysisError(
            f"--dask: {address!r} is not a scheduler address such as tcp://10.0.0.5:8786"
        )
    try:
        socket.create_connection((parsed.hostname, port), timeout=5).close()
    except OSError as e:
        raise AnalysisError(
            f"cannot connect to the Dask scheduler at {address}: {e.strerror or e}"
        ) from None


class DaskExecutor:
    """The same task function on a Dask distributed scheduler."""

    def __init__(self, address: str, workers: int | None):
        try:
            from distributed import Client
        except ImportError as e:  # pragma: no cover - distributed is a dependency
            raise AnalysisError(f"--dask needs the 'distributed' package ({e})") from None
        _check_reachable(address)
        hook = sys.unraisablehook
        sys.unraisablehook = lambda unraisable: None  # a half-built Client warns when collected
        try:
            self.client = Client(address, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise AnalysisError(f"cannot connect to the Dask scheduler at {address}: {e}") from None
        finally:
            gc.collect()
            sys.unraisablehook = hook
        threads = sum(self.client.nthreads().values()) or 1
        self.slots = workers or threads

    def submit(self, task: dict):
        key = f"analysis-run-{task['id']}-{os.urandom(4).hex()}"
        return self.client.submit(execute_run, task, key=key, pure=False, retries=0)

    def wait(self, futures) -> set:
        while True:  # runs last seconds to minutes: polling every 0.1 s costs nothing
            done = {f for f in futures if f.done()}
            if done:
                return done
            time.sleep(0.1)

    def result(self, fut) -> dict:
        try:
            return fut.result()
        except Exception as e:  # noqa: BLE001 - a lost worker fails this run only
            ename, evalue = error_of(e)
            return {
                "status": STATUS_FAILED,
                "attempts": 1,
                "duration_s": None,
                "notebook_text": None,
                "error": {"ename": ename, "evalue": f"Dask: {evalue}"},
            }

    def close(self, cancel: bool = False) -> None:
        if cancel:
            with contextlib.suppress(Exception):
                self.client.cancel(list(self.client.futures.values()), force=True)
        self.client.close()
