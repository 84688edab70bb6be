"""Batch runs of the parameterised notebooks: ``analysis run``.

The grid (:mod:`analysis.runs.grid`) says what runs; the runs execute in parallel
(:mod:`analysis.runs.executors`, each with :func:`analysis.runs.worker.execute_run`); this
module orchestrates them and writes, in the output folder (default ``reports/``):

- ``notebooks/<id>.ipynb``  the executed notebook of a successful run;
- ``failed/<id>.ipynb``     the partially executed notebook of a failed run (papermill's
  error cells included). An earlier successful output of the same run is left in place;
  nothing under the output folder is ever half-written (every file is written atomically
  by the parent process, which is the only writer);
- ``manifest.json``         one entry per run (:mod:`analysis.runs.manifest`);
- ``.lock``                 held for the whole batch (:mod:`analysis.runs.lock`): a second
  batch on the same folder is refused instead of interleaving its writes with the first.

A failing run never stops the others. The executed notebooks carry no timestamps
(papermill's and nbclient's timing metadata are removed); timestamps are in the manifest only.
``--resume`` reruns a run unless its earlier entry is up to date
(:func:`analysis.runs.manifest.up_to_date`). Changes to the library code itself are not
detected (only ``analysis.__version__`` is recorded): rerun without ``--resume`` after one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import sys
import time
from pathlib import Path

from analysis import __version__
from analysis.core import paths
from analysis.core.atomic import atomic_write_text
from analysis.core.checksums import sha256_file
from analysis.core.errors import ParameterError
from analysis.core.outputs import check_files, protected_folders
from analysis.runs import manifest as mf
from analysis.runs.executors import DaskExecutor, LocalExecutor
from analysis.runs.grid import Run, default_grid, load_grid, select_runs
from analysis.runs.lock import output_lock
from analysis.runs.manifest import STATUS_FAILED, STATUS_OK, STATUS_SKIPPED
from analysis.runs.progress import Progress
from analysis.runs.worker import (
    DEFAULT_TIMEOUT,
    KERNEL_NAME,
    KERNEL_SHUTDOWN,
    START_RETRIES,
    START_TIMEOUT,
    describe_failure,
)


@dataclasses.dataclass
class RunResult:
    run: Run
    status: str
    duration_s: float | None = None
    attempts: int = 0
    output: str | None = None  # relative to the output folder
    error: dict | None = None


@dataclasses.dataclass
class BatchResult:
    """What `run_grid` did. `exit_code` is 0 when no run failed, 1 otherwise."""

    out_dir: Path
    manifest_path: Path
    results: list[RunResult]
    seconds: float

    def _with(self, status: str) -> list[RunResult]:
        return [r for r in self.results if r.status == status]

    @property
    def ok(self) -> list[RunResult]:
        return self._with(STATUS_OK)

    @property
    def failed(self) -> list[RunResult]:
        return self._with(STATUS_FAILED)

    @property
    def skipped(self) -> list[RunResult]:
        return self._with(STATUS_SKIPPED)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def summary(self) -> str:
        n = len(self.results)
        lines = [
            f"{n} run{'s' * (n != 1)}: {len(self.ok)} ok, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped (up to date) in {self.seconds:.1f} s"
        ]
        for r in self.failed:
            lines.append(f"FAILED {r.run.id}")
            lines.extend("  " + ln for ln in describe_failure(r.error or {}).splitlines())
            if r.output:
                lines.append(f"  executed notebook: {paths.shown(self.out_dir / r.output)}")
        lines.append(f"manifest: {paths.shown(self.manifest_path)}")
        return "\n".join(lines)


def run_grid(
    grid: Path | str | None = None,
    *,
    workers: int | None = None,
    only: str | None = None,
    resume: bool = False,
    dask: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    out_dir: Path | str | None = None,
    kernel_name: str = KERNEL_NAME,
    retries: int = START_RETRIES,
    kernel_shutdown: str = KERNEL_SHUTDOWN,
    progress: bool = True,
    stream=None,
) -> BatchResult:
    """Execute a grid of notebook runs; see the module docstring for the files written.

    Parameters
    ----------
    grid : pathlib.Path, str or None, default None
        The grid file; None for ``notebooks/runs.yaml``.
    workers : int or None, default None
        Parallel runs, >= 1; None for ``os.cpu_count()`` locally, the cluster's threads on Dask.
    only : str or None, default None
        Run only the runs whose id or name matches this glob (or substring).
    resume : bool, default False
        Skip the runs that are up to date in the manifest (ok, same parameters, same notebook
        and data checksums, output intact).
    dask : str or None, default None
        A Dask scheduler address, e.g. ``tcp://10.0.0.5:8786`` (the workers need the project at
        the same path); None runs locally.
    timeout : float, default DEFAULT_TIMEOUT
        Per-cell execution timeout, in seconds (rounded up), > 0.
    out_dir : pathlib.Path, str or None, default None
        The output folder; None for ``reports/``.
    kernel_name : str, default KERNEL_NAME
        The Jupyter kernel the notebooks run on.
    retries : int, default START_RETRIES
        Extra attempts when a kernel fails to start.
    kernel_shutdown : {"immediate", "graceful"}, default "immediate"
        How a kernel is stopped after its run: see ``KERNEL_SHUTDOWN``.
    progress : bool, default True
        Show the progress bar and per-run lines on `stream`.
    stream : file or None, default None
        Where progress is written; None for stderr.

    Returns
    -------
    BatchResult
        The runs' results; failed runs do not raise: see ``BatchResult.failed`` and
        ``exit_code``.

    Raises
    ------
    GridError
        When the grid is not valid or `only` matches no run.
    ParameterError
        When `timeout`, `kernel_shutdown` or `workers` is not allowed.
    BatchLockedError
        When another batch is writing to `out_dir`.
    """
    t0 = time.monotonic()
    grid_path = Path(grid) if grid is not None else default_grid()
    all_runs = load_grid(grid_path)
    runs = select_runs(all_runs, only)
    if timeout is not None and not timeout > 0:
        raise ParameterError(f"--timeout must be a positive number of seconds, not {timeout}")
    timeout = None if timeout is None else math.ceil(timeout)  # nbclient takes whole seconds
    if kernel_shutdown not in ("immediate", "graceful"):
        raise ParameterError(
            f"kernel_shutdown must be 'immediate' or 'graceful', not {kernel_shutdown!r}"
        )
    if workers is not None and workers < 1:
        raise ParameterError(f"--workers must be at least 1, not {workers}")
    out = Path(out_dir) if out_dir is not None else paths.reports_dir()
    root = paths.project_root()
    check_outputs(out, grid_path, runs)

    n_local = workers or os.cpu_count() or 1
    with output_lock(out):
        previous = mf.read_manifest(out)
        prev_runs = previous.get("runs", {}) if isinstance(previous.get("runs"), dict) else {}
        data = mf.data_checksums()
        data_sha = mf.digest(data)
        # The manifest describes the runs of this grid: entries of runs no longer in it are
        # dropped (their files stay); runs left out by --only keep their earlier entry.
        grid_ids = {r.id for r in all_runs}
        entries = {k: v for k, v in prev_runs.items() if k in grid_ids}
        manifest = {
            "analysis_version": __version__,
            "batch": {
                "grid": paths.posix_relative(grid_path, root),
                "grid_sha256": sha256_file(grid_path),
                "only": only,
                "resume": resume,
                "executor": f"dask {dask}" if dask else f"local, {n_local} workers",
                "started_at": mf.now_utc(),
                "finished_at": None,
            },
            "data_files": data,
            "data_sha256": data_sha,
            "format": mf.MANIFEST_FORMAT,
            "runs": entries,
        }

        results: dict[str, RunResult] = {}
        todo: list[tuple[Run, str]] = []
        for run in runs:
            nb_sha = sha256_file(run.notebook)
            prev = prev_runs.get(run.id)
            if resume and mf.up_to_date(prev, run.parameters, nb_sha, data_sha, out):
                entries[run.id] = dict(prev) | {"status": STATUS_SKIPPED}
                results[run.id] = RunResult(
                    run, STATUS_SKIPPED, prev.get("duration_s"), 0, prev.get("output")
                )
            else:
                todo.append((run, nb_sha))
        manifest_path = mf.write_manifest(out, manifest)

        log = stream or sys.stderr
        if progress and resume and results:
            print(f"resume: {len(results)} run(s) up to date, {len(todo)} to run", file=log)
        if todo:
            executor: LocalExecutor | DaskExecutor
            if dask:
                executor = DaskExecutor(dask, workers)
            else:
                executor = LocalExecutor(min(n_local, len(todo)))
            bar = Progress(len(todo), progress, log)
            pending = {}
            queue = list(todo)
            cancel = False
            try:
                while queue or pending:
                    while queue and len(pending) < executor.slots:
                        run, nb_sha = queue.pop(0)
                        task = _task(run, nb_sha, out, root, kernel_name, timeout, retries)
                        task["kernel_shutdown"] = kernel_shutdown
                        pending[executor.submit(task)] = (run, nb_sha)
                        bar.running(run)
                    for fut in executor.wait(set(pending)):
                        run, nb_sha = pending.pop(fut)
                        res = _record(
                            executor.result(fut), run, nb_sha, data_sha, out, root, entries
                        )
                        results[run.id] = res
                        manifest_path = mf.write_manifest(out, manifest)
                        bar.finished(res)
            except BaseException as e:
                cancel = True
                manifest["batch"]["interrupted"] = type(e).__name__
                raise
            finally:
                bar.close()
                executor.close(cancel=cancel)
                manifest["batch"]["finished_at"] = mf.now_utc()
                manifest_path = mf.write_manifest(out, manifest)
        else:
            manifest["batch"]["finished_at"] = mf.now_utc()
            manifest_path = mf.write_manifest(out, manifest)

    ordered = [results[r.id] for r in runs if r.id in results]
    return BatchResult(out, manifest_path, ordered, time.monotonic() - t0)


def check_outputs(out: Path, grid_path: Path, runs: list[Run]) -> None:
    """Refuse, before any run starts, an output folder where a file the batch writes (an
    executed or failed notebook, the manifest, the lock) would land on one of its inputs (the
    grid, a notebook it runs, a committed notebook), on data, or on a folder.

    Parameters
    ----------
    out : the batch's output folder (``--out``).
    grid_path : the grid file the runs come from.
    runs : the runs of the grid.

    Returns
    -------
    None; raises :class:`~analysis.core.errors.ParameterError` naming the colliding output.
    """
    written: dict[str, Path] = {
        "--out (the manifest)": out / "manifest.json",
        "--out (the lock)": out / ".lock",
    }
    for run in runs:
        written[f"--out (run {run.id})"] = out / "notebooks" / run.output_name
        written[f"--out (failed run {run.id})"] = out / "failed" / run.output_name
    read: dict[str, Path] = {"the grid": grid_path}
    read |= {f"notebook {run.notebook.name}": run.notebook for run in runs}
    check_files(written, read, protected=protected_folders())


def _task(
    run: Run, nb_sha: str, out: Path, root: Path, kernel_name: str, timeout, retries: int
) -> dict:
    return {
        "id": run.id,
        "notebook_name": run.notebook.name,
        "notebook_source": run.notebook.read_text(encoding="utf-8"),
        "notebook_sha256": nb_sha,
        "notebook_rel": paths.posix_relative(run.notebook, root),
        "output_rel": paths.posix_relative(out / "notebooks" / run.output_name, root),
        "failed_rel": paths.posix_relative(out / "failed" / run.output_name, root),
        "parameters": run.parameters,
        "cwd": str(run.notebook.parent),
        "kernel_name": kernel_name,
        "timeout": timeout,
        "start_timeout": START_TIMEOUT,
        "retries": retries,
    }


def _record(
    res: dict, run: Run, nb_sha: str, data_sha: str, out: Path, root: Path, entries: dict
) -> RunResult:
    """Write a finished run's notebook (atomically) and its manifest entry."""
    status = res["status"]
    ok_rel = f"notebooks/{run.output_name}"
    failed_rel = f"failed/{run.output_name}"
    output = None
    out_sha = None
    text = res.get("notebook_text")
    if text is not None:
        output = ok_rel if status == STATUS_OK else failed_rel
        atomic_write_text(out / output, text)
        out_sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if status == STATUS_OK:
        (out / failed_rel).unlink(missing_ok=True)  # a stale failure of this run
    entry = {
        "id": run.id,
        "name": run.name,
        "notebook": paths.posix_relative(run.notebook, root),
        "notebook_sha256": nb_sha,
        "parameters": run.parameters,
        "status": status,
        "duration_s": res.get("duration_s"),
        "attempts": res.get("attempts"),
        "output": output,
        "output_sha256": out_sha,
        "analysis_version": __version__,
        "data_sha256": data_sha,
        "finished_at": mf.now_utc(),
        "error": res.get("error"),
    }
    entries[run.id] = entry
    return RunResult(
        run, status, res.get("duration_s"), res.get("attempts", 0), output, res.get("error")
    )
