"""Long panels for the label-effect estimators: the check, the arrays, and a simulator.

A panel has one row per unit and year with the columns

* ``unit`` — an identifier (an EPCI's SIREN, a territory id, anything hashable);
* ``year`` — an integer year; every unit has every year of the panel exactly once
  (a *balanced* panel);
* an outcome column (``outcome`` unless told otherwise) — a count or any non-negative
  number, finite;
* ``first_treated`` — the first year the unit is treated, constant within the unit,
  ``0`` for a unit never treated;

and optionally ``population`` (positive) and ``applicant`` (0 or 1, constant within the
unit: the unit applied for the label; a never-treated applicant is a rejected applicant,
the alternative comparison group).

:func:`check_panel` refuses anything else with a one-line error naming the column and the
row. :func:`to_arrays` turns a checked panel into a units × years matrix.
:func:`simulate_panel` generates a panel with a known effect, for tests, the validation
benchmark and power; its units are named ``SYNTHETIC-TEST-DATA-<n>`` and its frame carries
``attrs["synthetic"]``, so that nothing built from it is mistaken for a result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.core.errors import ParameterError
from analysis.core.synthetic import SYNTHETIC_LABEL

__all__ = ["PanelArrays", "check_panel", "default_cohorts", "simulate_panel", "to_arrays"]

REQUIRED = ("unit", "year", "first_treated")
OPTIONAL = ("population", "applicant")


@dataclass(frozen=True)
class PanelArrays:
    """A checked panel as arrays: ``y[i, t]`` is unit ``units[i]``'s outcome in ``years[t]``."""

    units: np.ndarray
    years: np.ndarray
    y: np.ndarray
    first_treated: np.ndarray
    applicant: np.ndarray | None


def _row(df: pd.DataFrame, mask: pd.Series | np.ndarray) -> object:
    return df.index[np.asarray(mask)][0]


def check_panel(panel: pd.DataFrame, outcome: str = "outcome") -> pd.DataFrame:
    """Check a long panel and return it sorted by unit and year, with typed columns.

    Parameters
    ----------
    panel : one row per unit and year, columns ``unit, year, first_treated`` and `outcome`,
        optionally ``population`` and ``applicant`` (see the module docstring).
    outcome : the outcome column.

    Returns
    -------
    The panel's columns ``unit, year, <outcome>, first_treated`` (and the optional ones
    present), ``year`` and ``first_treated`` as int64, the outcome as float64, sorted.

    Raises
    ------
    ParameterError
        Naming the column (and the first offending row's index label) when a column is
        missing, a value is missing, negative, not a number or not an integer year, a
        (unit, year) pair is repeated or missing, ``first_treated`` or ``applicant``
        varies within a unit, or a treated unit has no year before or no year from its
        first treated year inside the panel.
    """
    if not isinstance(panel, pd.DataFrame):
        raise ParameterError(f"panel: expected a pandas DataFrame, got {type(panel).__name__}")
    if not isinstance(outcome, str) or not outcome:
        raise ParameterError(f"outcome: expected a column name, got {outcome!r}")
    need = [*REQUIRED[:2], outcome, REQUIRED[2]]
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise ParameterError(
            f"panel lacks column(s) {', '.join(missing)}; a panel needs {', '.join(need)} "
            f"(columns present: {', '.join(map(str, panel.columns))})"
        )
    if panel.empty:
        raise ParameterError("panel: no row")
    keep = need + [c for c in OPTIONAL if c in panel.columns]
    df = panel[keep].copy()
    for col in keep:
        bad = df[col].isna()
        if bad.any():
            raise ParameterError(f"panel column {col!r}, row {_row(df, bad)}: missing value")
    for col in ("year", "first_treated", "applicant"):
        if col not in df.columns:
            continue
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() | (num != np.round(num))
        if bad.any():
            raise ParameterError(
                f"panel column {col!r}, row {_row(df, bad)}: {df[col][bad].iloc[0]!r} is not "
                "an integer"
            )
        df[col] = num.astype("int64")
    for col in [outcome] + [c for c in ("population",) if c in df.columns]:
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() | ~np.isfinite(num)
        if bad.any():
            raise ParameterError(
                f"panel column {col!r}, row {_row(df, bad)}: {df[col][bad].iloc[0]!r} is not "
                "a finite number"
            )
        low = num <= 0 if col == "population" else num < 0
        if low.any():
            what = "positive" if col == "population" else "non-negative (a count)"
            raise ParameterError(
                f"panel column {col!r}, row {_row(df, low)}: {num[low].iloc[0]:g} is not {what}"
            )
        df[col] = num.astype("float64")
    if "applicant" in df.columns:
        bad = ~df["applicant"].isin([0, 1])
        if bad.any():
            raise ParameterError(
                f"panel column 'applicant', row {_row(df, bad)}: "
                f"{df['applicant'][bad].iloc[0]} is not 0 or 1"
            )
    bad = (df["year"] < 1800) | (df["year"] > 2200)
    if bad.any():
        raise ParameterError(
            f"panel column 'year', row {_row(df, bad)}: {df['year'][bad].iloc[0]} is not a year"
        )
    dup = df.duplicated(["unit", "year"], keep="first").to_numpy()
    if dup.any():
        pos = int(np.argmax(dup))
        raise ParameterError(
            f"panel row {df.index[pos]}: unit {df['unit'].iloc[pos]!r}, year "
            f"{df['year'].iloc[pos]} appears twice; a panel has one row per unit and year"
        )
    for col in ("first_treated", "applicant"):
        if col not in df.columns:
            continue
        varies = (df.groupby("unit", sort=False)[col].transform("nunique") > 1).to_numpy()
        if varies.any():
            pos = int(np.argmax(varies))
            raise ParameterError(
                f"panel column {col!r}: unit {df['unit'].iloc[pos]!r} has more than one value "
                f"(row {df.index[pos]}); it must be constant within a unit"
            )
    years = np.sort(df["year"].unique())
    n_units = df["unit"].nunique()
    if len(df) != n_units * len(years):
        counts = df.groupby("unit", sort=True)["year"].size()
        short = counts[counts < len(years)].index[0]
        have = set(df.loc[df["unit"] == short, "year"])
        gap = next(int(y) for y in years if y not in have)
        raise ParameterError(
            f"panel is not balanced: unit {short!r} has no row for year {gap} "
            f"({len(have)} of {len(years)} years); give every unit every year"
        )
    ft = df["first_treated"]
    bad = ((ft != 0) & ((ft <= years[0]) | (ft > years[-1]))).to_numpy()
    if bad.any():
        pos = int(np.argmax(bad))
        raise ParameterError(
            f"panel column 'first_treated', row {df.index[pos]}: unit {df['unit'].iloc[pos]!r} "
            f"is first treated in {ft.iloc[pos]}, but a treated unit needs at least one year before and one from its "
            f"first treated year inside the panel's {years[0]}-{years[-1]} (0 = never treated)"
        )
    if not (ft == 0).any():
        raise ParameterError("panel column 'first_treated': no never-treated unit (0) to compare")
    if not (ft != 0).any():
        raise ParameterError("panel column 'first_treated': no treated unit (every value is 0)")
    return df.sort_values(["unit", "year"], kind="mergesort").reset_index(drop=True)


def to_arrays(panel: pd.DataFrame, outcome: str = "outcome") -> PanelArrays:
    """The checked panel as a units × years matrix (units sorted, years ascending).

    Parameters
    ----------
    panel : a panel that :func:`check_panel` accepts.
    outcome : the outcome column.

    Returns
    -------
    :class:`PanelArrays`: ``y[i, t]`` the outcome of ``units[i]`` in ``years[t]``, each unit's
    ``first_treated`` (0 = never) and ``applicant`` flag (None without the column).

    Raises
    ------
    ParameterError
        As :func:`check_panel`.
    """
    df = check_panel(panel, outcome)
    units = df["unit"].unique()
    years = np.sort(df["year"].unique())
    y = df[outcome].to_numpy().reshape(len(units), len(years))
    firsts = df.groupby("unit", sort=False)["first_treated"].first().to_numpy()
    app = (
        df.groupby("unit", sort=False)["applicant"].first().to_numpy().astype(bool)
        if "applicant" in df.columns
        else None
    )
    return PanelArrays(np.asarray(units), years, y, firsts.astype("int64"), app)


def default_cohorts(years: Iterable[int]) -> dict[int, int]:
    """The label calendar as first treated years and numbers of treated units.

    Nine métropoles were labelled on 12 November 2014 and a second wave in June 2015; the
    capitals of 3 April 2019 were mostly already labelled. With the first treated year the
    year after the announcement: 9 units from 2015, 4 from 2016 and 2 new ones from 2020
    (only the cohorts inside `years`, with a pre-period, are kept).
    """
    ys = list(years)
    calendar = {2015: 9, 2016: 4, 2020: 2}
    return {g: n for g, n in calendar.items() if ys[0] < g <= ys[-1]}


def simulate_panel(
    n_units: int = 1250,
    years: Iterable[int] = range(2008, 2025),
    cohorts: Mapping[int, int] | None = None,
    effect: float = 0.0,
    *,
    seed: int,
    baseline_mean: float = 10.0,
    dispersion: float = 0.05,
    size_sd: float = 1.5,
    persistence: float = 0.5,
    trend: float = 0.04,
    year_sd: float = 0.05,
    treated_among: int = 60,
    pretrend: float = 0.0,
    n_rejected: int = 0,
) -> pd.DataFrame:
    """SYNTHETIC-TEST-DATA: a count panel with a known label effect.

    The model, for unit i and year t::

        y_it ~ Poisson(μ_it),
        log μ_it = log(baseline_mean) + s_i + τ_t + u_it + log(1 + effect) D_it
                   + pretrend · min(t - g_i, 0) · 1[i treated],
        s_i ~ N(0, size_sd²) - size_sd² / 2            (unit size; mean of exp(s_i) is 1)
        τ_t = trend · (t - t_0) + N(0, year_sd²)          (common year shocks)
        u_it = persistence · u_i,t-1 + sqrt(1 - persistence²) · N(0, dispersion)

    so ``u_it`` is a stationary AR(1) with variance `dispersion` (extra-Poisson noise,
    persistent over years). ``D_it = 1[t >= g_i]``. Treated units are drawn at random among
    the `treated_among` largest units (labels went to large cities) and given the cohorts'
    first treated years; `n_rejected` other units among them are never-treated applicants.

    Parameters
    ----------
    n_units, years : the panel's shape.
    cohorts : first treated year -> number of treated units (default
        :func:`default_cohorts`).
    effect : the relative effect of the label on the expected count (0.2 = +20 %).
    seed : seed of ``numpy.random.default_rng``.
    pretrend : a violation of parallel trends: treated units' log mean grows by this much
        per year before their label (0 = none).

    Returns
    -------
    Columns ``unit, year, outcome, first_treated, population, applicant``; units named
    ``SYNTHETIC-TEST-DATA-0001`` …; ``attrs["synthetic"] = SYNTHETIC-TEST-DATA``.
    """
    years = np.asarray(list(years), dtype="int64")
    if len(years) < 2 or np.any(np.diff(years) != 1):
        raise ParameterError("years: expected at least two consecutive years")
    cohorts = dict(default_cohorts(years) if cohorts is None else cohorts)
    n_treated = sum(cohorts.values())
    if not (isinstance(n_units, int) and n_units >= 2):
        raise ParameterError(f"n_units: expected an integer >= 2, got {n_units!r}")
    if not 0 < n_treated <= treated_among <= n_units:
        raise ParameterError(
            f"cohorts: {n_treated} treated unit(s) must be > 0 and <= treated_among "
            f"({treated_among}) <= n_units ({n_units})"
        )
    if n_treated + n_rejected > treated_among:
        raise ParameterError(
            f"n_rejected: {n_treated} treated + {n_rejected} rejected applicants exceed "
            f"treated_among ({treated_among})"
        )
    for g in cohorts:
        if not years[0] < g <= years[-1]:
            raise ParameterError(
                f"cohorts: first treated year {g} is not inside {years[0] + 1}-{years[-1]}"
            )
    if effect <= -1:
        raise ParameterError(f"effect: {effect} would make the mean negative; give > -1")
    if not 0 <= persistence < 1:
        raise ParameterError(f"persistence: {persistence} is not in [0, 1)")
    rng = np.random.default_rng(seed)
    n_t = len(years)
    size = rng.normal(0.0, size_sd, n_units) - size_sd**2 / 2
    tau = trend * (years - years[0]) + rng.normal(0.0, year_sd, n_t)
    u = np.empty((n_units, n_t))
    u[:, 0] = rng.normal(0.0, np.sqrt(dispersion), n_units)
    innov = np.sqrt((1 - persistence**2) * dispersion)
    for t in range(1, n_t):
        u[:, t] = persistence * u[:, t - 1] + rng.normal(0.0, innov, n_units)
    largest = np.argsort(-size, kind="stable")[:treated_among]
    chosen = rng.permutation(largest)
    first = np.zeros(n_units, dtype="int64")
    pos = 0
    for g in sorted(cohorts):
        first[chosen[pos : pos + cohorts[g]]] = g
        pos += cohorts[g]
    applicant = np.zeros(n_units, dtype="int64")
    applicant[chosen[: pos + n_rejected]] = 1
    treated = first > 0
    d = treated[:, None] & (years[None, :] >= first[:, None])
    lead = np.where(treated[:, None], np.minimum(years[None, :] - first[:, None], 0), 0)
    log_mu = (
        np.log(baseline_mean)
        + size[:, None]
        + tau[None, :]
        + u
        + np.log1p(effect) * d
        + pretrend * lead
    )
    y = rng.poisson(np.exp(log_mu))
    width = max(4, len(str(n_units)))
    names = np.array([f"{SYNTHETIC_LABEL}-{i + 1:0{width}d}" for i in range(n_units)])
    population = np.round(50_000 * np.exp(size)).astype("int64") + 1
    out = pd.DataFrame(
        {
            "unit": np.repeat(names, n_t),
            "year": np.tile(years, n_units),
            "outcome": y.ravel().astype("int64"),
            "first_treated": np.repeat(first, n_t),
            "population": np.repeat(population, n_t),
            "applicant": np.repeat(applicant, n_t),
        }
    )
    out.attrs["synthetic"] = SYNTHETIC_LABEL
    return out
