"""Validation of the label-effect estimators by Monte Carlo (run by hand; results recorded in
benchmarks/README.md).

    .venv/bin/python benchmarks/label_effect_validation.py [--panels 300] [--draws 999]
        [--log-panels 100] [--mde-sims 100] [--json FILE]

Every panel is SYNTHETIC-TEST-DATA from ``analysis.methods.panels.simulate_panel`` with the
register panel's shape: 1,250 units (about the EPCIs of France) × 17 years (2008-2024),
Poisson counts around a mean of 10 with unit sizes spread as log-normal (sd 1.5), AR(1)
extra-Poisson noise (variance 0.05, persistence 0.5), a common trend of 4 % a year and year
shocks; 15 treated units (9 from 2015, 4 from 2016, 2 from 2020) drawn among the 60 largest.

1. **Size and coverage, no effect**: ``--panels`` panels with no effect; the share of
   overall p-values <= 0.05 (goal 3-7 %) and of 95 % intervals holding 0 (goal 92-98 %).
   In both scenarios, the panels where the p-value and the interval disagree (p <= 0.05
   but 0 inside the interval, or the reverse) are counted: the interval inverts the test,
   so the count must be 0. Intervals with an open side (-100 % or +inf) are counted too.
2. **Coverage and bias, +20 %**: ``--panels`` panels with a +20 % effect; coverage of 20 %,
   bias of the overall estimate as a share of the effect (goal < 10 %), power.
3. **The log(1+y) estimators** on ``--log-panels`` of the +20 % panels: etwfe on log(1+y)
   and Callaway–Sant'Anna; their bias in percentage points and coverage (they estimate a
   different quantity, the mean log change, which is not the count ratio).
4. **One full estimation** (leads and lags 5, ``--draws`` draws) on one panel: wall time,
   median of 3 (goal <= 60 s on 2 cores).
5. **Minimum detectable effect** at 80 % power of the same design
   (``minimum_detectable_effect``, ``--mde-sims`` panels per effect, 199 draws each).

Monte Carlo standard errors are printed beside each rate: sqrt(p (1 - p) / n).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
import warnings

import numpy as np
from tqdm import tqdm

from analysis.methods import label_effect as le
from analysis.methods.panels import simulate_panel

EFFECT = 0.2


def _mc_se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def _scenario(effect: float, n: int, draws: int, seed0: int) -> dict:
    est, cover, reject, disagree, open_ends = [], 0, 0, 0, 0
    t0 = time.perf_counter()
    for i in tqdm(range(n), desc=f"etwfe, effect {effect:+.0%}", leave=False):
        panel = simulate_panel(effect=effect, seed=seed0 + i)
        row = le.estimate(panel, n_draws=draws, seed=i, leads=0, lags=0).iloc[0]
        est.append(row["estimate"])
        cover += row["ci_low"] <= effect <= row["ci_high"]
        reject += row["p_value"] <= 0.05
        # the interval inverts the test: p <= 0.05 exactly when 0 is outside it
        disagree += int((row["p_value"] <= 0.05) != (row["ci_low"] > 0 or row["ci_high"] < 0))
        open_ends += int(row["ci_low"] <= -1 or math.isinf(row["ci_high"]))
    mean = float(np.mean(est))
    return {
        "effect": effect,
        "panels": n,
        "mean_estimate": mean,
        "bias": mean - effect,
        "bias_share_of_effect": (mean - effect) / effect if effect else None,
        "sd_estimate": float(np.std(est, ddof=1)),
        "coverage": cover / n,
        "coverage_mc_se": _mc_se(cover / n, n),
        "rejection_rate": reject / n,
        "rejection_mc_se": _mc_se(reject / n, n),
        "p_value_interval_disagreements": disagree,
        "open_intervals": open_ends,
        "seconds_per_panel": (time.perf_counter() - t0) / n,
    }


def _log_scale(n: int, draws: int, seed0: int) -> dict:
    out = {}
    for name in ("etwfe (log1p)", "callaway_santanna"):
        est, cover = [], 0
        for i in tqdm(range(n), desc=name, leave=False):
            panel = simulate_panel(effect=EFFECT, seed=seed0 + i)
            if name == "callaway_santanna":
                row = le.estimate(panel, estimator="callaway_santanna", leads=0, lags=0)
            else:
                row = le.estimate(
                    panel, outcome_scale="log1p", n_draws=draws, seed=i, leads=0, lags=0
                )
            row = row.iloc[0]
            est.append(row["estimate"])
            cover += row["ci_low"] <= EFFECT <= row["ci_high"]
        mean = float(np.mean(est))
        out[name] = {
            "panels": n,
            "mean_estimate": mean,
            "bias_pp": 100 * (mean - EFFECT),
            "coverage": cover / n,
            "coverage_mc_se": _mc_se(cover / n, n),
        }
    return out


def _timing(draws: int) -> dict:
    panel = simulate_panel(effect=EFFECT, seed=99)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        le.estimate(panel, n_draws=draws, seed=0, leads=5, lags=5)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "runs": times}


def _machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--panels", type=int, default=300)
    ap.add_argument("--draws", type=int, default=999)
    ap.add_argument("--log-panels", type=int, default=100)
    ap.add_argument("--mde-sims", type=int, default=100)
    ap.add_argument("--json", default=None, help="write the results here too")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    res = {"machine": _machine(), "draws": args.draws}
    t0 = time.perf_counter()
    res["timing_full_estimation"] = _timing(args.draws)
    print("one full estimation:", json.dumps(res["timing_full_estimation"]), flush=True)
    res["no_effect"] = _scenario(0.0, args.panels, args.draws, 10_000)
    print("no effect:", json.dumps(res["no_effect"]), flush=True)
    res["effect_20"] = _scenario(EFFECT, args.panels, args.draws, 20_000)
    print("+20 %:", json.dumps(res["effect_20"]), flush=True)
    if args.log_panels:
        res["log_scale"] = _log_scale(args.log_panels, args.draws, 20_000)
        print("log(1+y):", json.dumps(res["log_scale"]), flush=True)
    if args.mde_sims:
        mde = le.minimum_detectable_effect(
            simulate_panel(seed=7), n_sims=args.mde_sims, n_draws=199, seed=1
        )
        res["mde"] = {"mde": mde.attrs["mde"], "power_curve": mde.to_dict("records")}
        print("MDE:", json.dumps(res["mde"]), flush=True)
    res["total_s"] = time.perf_counter() - t0
    res["machine"]["load_average_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
