"""Benchmark of loading the committed data (every raw and derived table, checked). Run by hand.

    .venv/bin/python benchmarks/data_load_bench.py [--repeat 5]

Each measurement runs in a fresh subprocess, so every cache starts cold, as in a new kernel:

1. the floor: ``pandas.read_csv`` of every CSV table under ``data/`` and ``yaml.safe_load`` of
   every sidecar, with no check at all;
2. ``analysis.data.inputs.load_inputs()``: the same files with every sidecar, checksum and
   schema checked (what each notebook and ``analysis indicators`` does first);
3. ``analysis data verify``'s checks (``catalog.verify()``);
4. ``load_inputs()`` on a second copy of ``data/`` in the same process, after a first load
   (what each test that corrupts a private copy of the data pays).

Results go to benchmarks/README.md with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLOOR = r"""
import sys, time
t = time.perf_counter()
from pathlib import Path
import pandas as pd, yaml
data = Path(sys.argv[1])
for p in sorted(data.rglob("*.csv")):
    pd.read_csv(p, dtype=str, keep_default_na=False)
for p in sorted(data.rglob("*.meta.yaml")):
    yaml.safe_load(p.read_text("utf-8"))
print(time.perf_counter() - t)
"""

LOAD = r"""
import sys, time
t = time.perf_counter()
from analysis.data.inputs import load_inputs
load_inputs()
print(time.perf_counter() - t)
"""

VERIFY = r"""
import sys, time
t = time.perf_counter()
from analysis.data import catalog
report = catalog.verify()
assert not report.problems, report.problems
print(time.perf_counter() - t)
"""

COPY = r"""
import shutil, sys, tempfile, time
from pathlib import Path
from analysis.data.inputs import load_inputs
load_inputs()
with tempfile.TemporaryDirectory() as tmp:
    copy = Path(tmp) / "data"
    shutil.copytree(Path(sys.argv[1]), copy, ignore=shutil.ignore_patterns("*.tgz", "external"))
    t = time.perf_counter()
    load_inputs(copy)
    print(time.perf_counter() - t)
"""


def seconds(code: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "data")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    codes = {"floor": FLOOR, "load_inputs": LOAD, "verify": VERIFY, "load_copy": COPY}
    rounds = [{k: seconds(c, env) for k, c in codes.items()} for _ in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in rounds) for k in codes}
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_avg": os.getloadavg()[0],
        "median_s": med,
        "rounds": rounds,
        "load_over_floor": med["load_inputs"] / med["floor"],
        "verify_over_floor": med["verify"] / med["floor"],
    }
    print(json.dumps(result, indent=1))
    print(
        "| measurement | median (s) | / floor |\n| --- | ---: | ---: |\n"
        + "\n".join(f"| {k} | {v:.2f} | {v / med['floor']:.2f} |" for k, v in med.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
