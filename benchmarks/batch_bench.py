"""Benchmark of `analysis run` (run by hand; results recorded in benchmarks/README.md).

    .venv/bin/python benchmarks/batch_bench.py [--runs 17] [--repeat 3] [--workers 2]
                                               [--graceful] [--cli-loop] [--json FILE]

(a) Speedup. A grid of N runs (default 17, as many as the default grid) of one small
    notebook (it imports pandas, seaborn and statsmodels, then describes a 10-row frame)
    executed by `run_grid` with 2 workers in a fresh process, as `analysis run` does,
    against a plain sequential loop of `papermill.execute_notebook` calls in this process
    (papermill already imported: the loop pays no start-up cost). Goal: >= 1.7x on 2 cores.
    The batch kills each kernel once its notebook has run (worker.KERNEL_SHUTDOWN), where
    papermill asks it to shut down and waits (about 1 s): the loop is also timed with its
    kernels killed, to show the part of the speedup that parallelism alone gives. For
    reference, the loop of `papermill` command-line calls that a shell script would make.

(b) Per-run cost over the floor. The floor is a bare kernel start (jupyter_client, the
    same `python3` kernel and environment), `import pandas, seaborn, statsmodels.api`, and
    the kernel killed, one after the other, N times. The per-run cost is the wall time of
    `run_grid` with 1 worker over the same N runs, divided by N (the batch's fixed costs --
    interpreter start, imports, grid validation, lock, checksums, the process pool and its
    papermill import -- are included). Goal: <= 1.3x the floor. With --graceful, also timed
    with a graceful kernel shutdown on both sides.

Every timing is wall-clock (time.perf_counter) over --repeat repetitions, the variants
interleaved within each repetition (loops and floor in this process, each batch in a fresh
one); the median and the minimum are
reported (on a shared machine the minimum is the least disturbed). The load average is
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

from analysis.runs import worker

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


def batch_run(grid: Path, out: Path, workers: int, shutdown: str = worker.KERNEL_SHUTDOWN) -> None:
    """`run_grid` in a fresh Python process, as `analysis run` runs it: every fixed cost
    (interpreter, imports, the fork server and its papermill import) is paid each time."""
    shutil.rmtree(out, ignore_errors=True)
    code = (
        "import sys; from analysis.runs import batch; "
        f"r = batch.run_grid({str(grid)!r}, workers={workers}, out_dir={str(out)!r}, "
        f"progress=False, kernel_shutdown={shutdown!r}); sys.exit(r.exit_code)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--runs", type=int, default=17, help="N, the runs in the grid (17: the default grid's)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (median and min)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--graceful", action="store_true", help="also time graceful shutdowns")
    ap.add_argument("--cli-loop", action="store_true", help="also time the papermill CLI loop")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    args = ap.parse_args(argv)
    os.environ.update(worker.KERNEL_ENV)  # the kernels' environment, for every variant
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
        }
        if args.graceful:
            variants[FLOOR_GRACEFUL] = lambda: floor(n, kill=False)
            variants[ONE_GRACEFUL] = lambda: batch_run(grid, tmp / "one-g", 1, "graceful")
        if args.cli_loop:
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
        best = {k: min(v) for k, v in times.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def ratios(t: dict[str, float]) -> dict[str, float]:
        out = {
            "speedup": t[SEQ] / t[PAR],
            "speedup_vs_loop_with_killed_kernels": t[SEQ_KILL] / t[PAR],
            "floor_per_run_s": t[FLOOR] / n,
            "batch_per_run_s": t[ONE] / n,
            "per_run_over_floor": t[ONE] / t[FLOOR],
        }
        if FLOOR_GRACEFUL in t:
            out["graceful_per_run_over_floor"] = t[ONE_GRACEFUL] / t[FLOOR_GRACEFUL]
        return {k: round(v, 3) for k, v in out.items()}

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
        "seconds": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "median": ratios(med),
        "min": ratios(best),
    }
    lo = results["load_average_1min_during_run"]
    print(f"machine: {results['machine']}")
    print(f"load average (1 min) during the run: {lo['min']} to {lo['max']}, median {lo['median']}")
    print(f"N = {n} runs, {args.workers} workers, {args.repeat} repetitions")
    print(f"  {'':<48} {'median':>8} {'min':>8}   per run (median)")
    for k in times:
        print(f"  {k:<48} {med[k]:7.2f}s {best[k]:7.2f}s   {med[k] / n:.2f} s")
    for label, r in (("median", results["median"]), ("min", results["min"])):
        print(
            f"[{label}] (a) speedup {r['speedup']:.2f}x (goal >= 1.7x), "
            f"vs the loop with killed kernels {r['speedup_vs_loop_with_killed_kernels']:.2f}x; "
            f"(b) per run {r['batch_per_run_s']:.2f} s, floor {r['floor_per_run_s']:.2f} s, "
            f"ratio {r['per_run_over_floor']:.2f} (goal <= 1.3)"
            + (
                f"; graceful both sides {r['graceful_per_run_over_floor']:.2f}"
                if "graceful_per_run_over_floor" in r
                else ""
            )
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
