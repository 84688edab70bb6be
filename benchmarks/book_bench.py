"""Benchmark of `analysis book` (run by hand; results recorded in benchmarks/README.md).

    .venv/bin/python benchmarks/book_bench.py [--reports reports] [--repeat 3] [--jobs 2]

Needs an executed batch of the default grid (`make report`, or `analysis run`): its
executed notebooks and manifest are copied into a temporary folder, so `reports/` is left
as it is. Each repetition times, as `make book` runs it (`analysis book --jobs N` in a
fresh process, interpreter start included):

(a) the full build: no earlier book (no `.book/` work folder, so no Sphinx environment and
    no cached data-derived pages: the headline figures are computed). Goal: <= 60 s.
(b) the rebuild after one notebook changes: a sentence added to the first Markdown cell of
    the executed notebook 02, as a re-run with a changed text would leave it. Goal: <= 15 s.
(c) the rebuild when nothing changed, for reference.

Wall-clock times (time.perf_counter); the median and the minimum over --repeat repetitions
are reported, with the load average (compare it with the number of cores).
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

CHANGED = "02-investment-attraction"


def _analysis() -> str:
    return str(Path(sys.executable).with_name("analysis"))


def _book(out: Path, jobs: int) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [_analysis(), "book", "--reports", str(out), "--jobs", str(jobs)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"analysis book failed: {done.stderr.strip()}")
    return elapsed


def _copy_batch(reports: Path, dest: Path) -> Path:
    out = dest / "reports"
    out.mkdir(parents=True)
    shutil.copytree(reports / "notebooks", out / "notebooks")
    shutil.copy2(reports / "manifest.json", out / "manifest.json")
    return out


def _change_one_notebook(out: Path, k: int) -> None:
    path = out / "notebooks" / f"{CHANGED}.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    cell["source"] = "".join(cell["source"]) + f"\n\nA sentence added for the benchmark ({k})."
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=Path, default=Path("reports"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    if not (args.reports / "manifest.json").is_file():
        raise SystemExit(
            f"{args.reports}/manifest.json: run `make report` (or `analysis run`) first"
        )
    times: dict[str, list[float]] = {
        "full build": [],
        "one notebook changed": [],
        "nothing changed": [],
    }
    loads = []
    for k in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="book-bench-") as tmp:
            out = _copy_batch(args.reports, Path(tmp))
            times["full build"].append(_book(out, args.jobs))
            _change_one_notebook(out, k)
            times["one notebook changed"].append(_book(out, args.jobs))
            times["nothing changed"].append(_book(out, args.jobs))
            loads.append(os.getloadavg()[0])
            pages = len(list((out / "site").rglob("*.html")))
        print(
            f"repetition {k + 1}: "
            + ", ".join(f"{name} {t[-1]:.1f} s" for name, t in times.items())
            + f"; load average {loads[-1]:.1f}",
            flush=True,
        )
    print()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {pages} HTML pages; --jobs {args.jobs}"
    )
    print(f"load average during the runs: {min(loads):.1f}-{max(loads):.1f}")
    print("| measurement | median (s) | min (s) | goal |")
    print("| --- | ---: | ---: | --- |")
    goals = {"full build": "<= 60 s", "one notebook changed": "<= 15 s", "nothing changed": ""}
    for name, t in times.items():
        print(f"| {name} | {statistics.median(t):.1f} | {min(t):.1f} | {goals[name]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
