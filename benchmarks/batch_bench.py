"""Benchmark of `analysis run` (run by hand; results recorded in benchmarks/README.md).

    .venv/bin/python benchmarks/batch_bench.py [--runs 8] [--repeat 3] [--workers 2]

(a) Speedup. A grid of N runs of one small notebook (it imports pandas, seaborn and
    statsmodels, then describes a 10-row frame) executed by `run_grid` with 2 workers,
    against a plain sequential loop of `papermill.execute_notebook` calls in this process
    (papermill already imported: the loop pays no start-up cost). Goal: >= 1.7x on 2 cores.
    The batch kills each kernel once its notebook has run (batch.KERNEL_SHUTDOWN), where
    papermill asks it to shut down and waits (about 1 s): the loop is also timed with its
    kernels killed, to show the part of the speedup that parallelism alone gives. For
    reference, the loop of `papermill` command-line calls that a shell script would make.

(b) Per-run cost over the floor. The floor is a bare kernel start (jupyter_client, the
    same `python3` kernel and environment), `import pandas, seaborn, statsmodels.api`, and
    the kernel killed, one after the other, N times. The per-run cost is the wall time of
    `run_grid` with 1 worker over the same N runs, divided by N (the batch's fixed costs --
    grid validation, lock, checksums, the process pool and its papermill import -- are
    included). Goal: <= 1.3x the floor. Also timed with a graceful shutdown on both sides.

Every timing is wall-clock (time.perf_counter), the median of --repeat repetitions, the
variants interleaved within each repetition, all in one process. The load average is
printed: compare it with the number of cores before trusting the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from analysis import batch

SMALL_NOTEBOOK_CELLS = [
    ("markdown", "# Small notebook\n\nOne import cell, one tiny computation.", []),
    ("code", "i: int = 0  # copy number", ["parameters"]),
    ("code", "import pandas as pd\nimport seaborn as sns\nimport statsmodels.api as sm", []),
    ("code", 'pd.DataFrame({"x": range(10), "i": i}).describe()', []),
]
FLOOR_CODE = "import pandas, seaborn, statsmodels.api"

SEQ = "sequential papermill loop (in-process)"
SEQ_KILL = "sequential papermill loop, kernels killed"
PAR = "analysis run_grid, --workers N (parallel)"
FLOOR = "floor: kernel start + imports + kill"
ONE = "analysis run_grid, 1 worker"
FLOOR_GRACEFUL = "floor, graceful shutdown"
ONE_GRACEFUL = "analysis run_grid, 1 worker, graceful shutdown"
CLI_LOOP = "sequential papermill CLI loop"


def make_workspace(root: Path, n: int) -> Path:
    nb = nbformat.v4.new_notebook()
    for kind, src, tags in SMALL_NOTEBOOK_CELLS:
        new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        cell = new(src)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbs = root / "notebooks"
    nbs.mkdir(parents=True)
    nbformat.write(nb, nbs / "small.ipynb")
    grid = nbs / "runs.yaml"
    grid.write_text(
        f"- notebook: small.ipynb\n  matrix: {{i: {list(range(n))}}}\n", encoding="utf-8"
    )
    return grid


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def sequential_papermill(grid: Path, out: Path, n: int, **engine_kwargs) -> None:
    import papermill

    out.mkdir(parents=True, exist_ok=True)
    nb = grid.parent / "small.ipynb"
    for i in range(n):
        papermill.execute_notebook(
            str(nb),
            str(out / f"small-{i}.ipynb"),
            parameters={"i": i},
            kernel_name="python3",
            progress_bar=False,
            cwd=str(grid.parent),
            **engine_kwargs,
        )


def sequential_papermill_cli(grid: Path, out: Path, n: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("papermill")
    nb = grid.parent / "small.ipynb"
    for i in range(n):
        cmd = [str(exe), "-k", "python3", "-p", "i", str(i), "--cwd", str(grid.parent)]
        cmd += ["--no-progress-bar", "--log-level", "ERROR", str(nb), str(out / f"small-{i}.ipynb")]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def floor(n: int, kill: bool = True) -> None:
    """N times: start the kernel, run the imports, stop it (killed, or asked to shut down)."""
    from jupyter_client.manager import start_new_kernel

    for _ in range(n):
        km, kc = start_new_kernel(kernel_name="python3")
        try:
            reply = kc.execute_interactive(FLOOR_CODE, timeout=120)
            assert reply["content"]["status"] == "ok", reply["content"]
        finally:
            km.shutdown_kernel(now=kill)
            kc.stop_channels()


def batch_run(grid: Path, out: Path, workers: int, shutdown: str = batch.KERNEL_SHUTDOWN) -> None:
    shutil.rmtree(out, ignore_errors=True)
    result = batch.run_grid(
        grid, workers=workers, out_dir=out, progress=False, kernel_shutdown=shutdown
    )
    assert result.exit_code == 0, result.summary()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=8, help="N, the number of runs in the grid")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (median reported)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-cli-loop", action="store_true", help="skip the papermill CLI loop")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    args = ap.parse_args(argv)
    os.environ.update(batch.KERNEL_ENV)  # the kernels' environment, for every variant
    n = args.runs

    tmp = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    try:
        grid = make_workspace(tmp, n)
        variants = {
            SEQ: lambda: sequential_papermill(grid, tmp / "seq", n),
            SEQ_KILL: lambda: sequential_papermill(
                grid, tmp / "sk", n, shutdown_kernel="immediate"
            ),
            PAR: lambda: batch_run(grid, tmp / "par", args.workers),
            FLOOR: lambda: floor(n, kill=True),
            ONE: lambda: batch_run(grid, tmp / "one", 1),
            FLOOR_GRACEFUL: lambda: floor(n, kill=False),
            ONE_GRACEFUL: lambda: batch_run(grid, tmp / "one-g", 1, "graceful"),
        }
        if not args.no_cli_loop:
            variants[CLI_LOOP] = lambda: sequential_papermill_cli(grid, tmp / "cli", n)
        import papermill  # noqa: F401 - imported before timing: the in-process loop pays nothing

        floor(1)  # warm the file cache: the first kernel start reads everything from disk
        times: dict[str, list[float]] = {k: [] for k in variants}
        loads = []
        for rep in range(args.repeat):
            for name, fn in variants.items():
                times[name].append(timed(fn))
                loads.append(os.getloadavg()[0])
                print(f"  rep {rep + 1} {name}: {times[name][-1]:.2f} s", file=sys.stderr)
        med = {k: statistics.median(v) for k, v in times.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    seq, seq_kill, par = med[SEQ], med[SEQ_KILL], med[PAR]
    fl, one = med[FLOOR] / n, med[ONE] / n
    fl_g, one_g = med[FLOOR_GRACEFUL] / n, med[ONE_GRACEFUL] / n
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}",
        "load_average_1min_during_run": {
            "min": round(min(loads), 2),
            "median": round(statistics.median(loads), 2),
            "max": round(max(loads), 2),
        },
        "runs": n,
        "workers": args.workers,
        "repeat": args.repeat,
        "median_seconds": {k: round(v, 2) for k, v in med.items()},
        "speedup": round(seq / par, 2),
        "speedup_vs_loop_with_killed_kernels": round(seq_kill / par, 2),
        "floor_per_run_s": round(fl, 3),
        "batch_per_run_s": round(one, 3),
        "per_run_over_floor": round(one / fl, 2),
        "graceful_floor_per_run_s": round(fl_g, 3),
        "graceful_batch_per_run_s": round(one_g, 3),
        "graceful_per_run_over_floor": round(one_g / fl_g, 2),
    }
    lo = results["load_average_1min_during_run"]
    print(f"machine: {results['machine']}")
    print(f"load average (1 min) during the run: {lo['min']} to {lo['max']}, median {lo['median']}")
    print(f"N = {n} runs, median of {args.repeat}")
    for k, v in med.items():
        print(f"  {k:<48} {v:7.2f} s   ({v / n:.2f} s per run)")
    print(
        f"(a) speedup, {args.workers} workers vs the papermill loop: {seq / par:.2f}x (goal >= 1.7x)"
    )
    print(f"    vs the loop with its kernels killed as the batch's are: {seq_kill / par:.2f}x")
    print(
        f"(b) per run, 1 worker: {one:.2f} s; floor {fl:.2f} s; ratio {one / fl:.2f} (goal <= 1.3)"
    )
    print(
        f"    graceful shutdown on both sides: {one_g:.2f} s vs {fl_g:.2f} s, ratio {one_g / fl_g:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
