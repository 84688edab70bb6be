"""Inputs of the composite ecosystem index, assembled from the catalogue.

Step 2 of the OECD/JRC handbook (selecting indicators) is a choice, made here and shown in
notebook 04. An indicator enters only if it is measured on one definition for the capitals it
covers, from cited data; nothing is imputed (step 3): a capital without a value is left out of
the index and listed with the reason. Five indicators qualify for at least 11 capitals:

* ``population_growth``: compound annual growth of the population municipale of the
  capital's perimeter between the 2016 and 2023 censuses, percent per year:
  ``((P_2023 / P_2016) ** (1 / 7) - 1) * 100``. Its ``sd`` is half the gap between the two
  perimeters' growth (the alternative definition), 0 where they coincide.
* ``fdi_decisions_per_100k``, ``fdi_jobs_per_100k``: Business France's foreign investment
  decisions, and the jobs they create or maintain, in the capital's **region**, per 100,000
  inhabitants of that region, averaged over the cited years of :data:`WINDOW`.
* ``fdi_jobs_per_decision``: jobs per decision in the region, averaged over the years where
  both are cited.
* ``ey_projects_per_100k``: EY's announced foreign projects in the region per 100,000
  inhabitants, averaged over the cited years of :data:`WINDOW` (EY counts another thing than
  Business France: announced projects, new sites and extensions).

Four of the five describe the capital's region, not the capital: capitals that share a region
share those values, and the index ranks their environments as much as their ecosystems
(notebook 04 says so). A regional mean ``m`` of yearly values ``v_t = c_t / P * 10^5`` over
``n`` years has ``sd = sqrt(s^2 / n + mean(c_t) / n * (10^5 / P)^2)``: the standard error of
the mean across years plus the Poisson noise of the counts (for a ratio, ``s / sqrt(n)``).
Disagreeing sources are settled by the series rule (:mod:`analysis.methods.series`).

With a register (SIRENE), ``startups_per_100k`` (register start-ups per 100,000 inhabitants of
the perimeter) replaces nothing: it is added, with no ``sd`` (one definition, exact counts).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.core import rules, territories
from analysis.core.errors import InsufficientDataError
from analysis.core.tidy import join_sources
from analysis.data.inputs import Inputs
from analysis.methods import metrics, series

#: The composite index's indicators, in the order of notebook 04's `weights` parameter.
INDICATORS: tuple[str, ...] = (
    "population_growth",
    "fdi_decisions_per_100k",
    "fdi_jobs_per_100k",
    "fdi_jobs_per_decision",
    "ey_projects_per_100k",
)
#: The years averaged by the regional indicators.
WINDOW: tuple[int, int] = (2019, 2024)
#: The two census vintages population growth runs between.
FIRST_CENSUS, LAST_CENSUS = rules.POPULATION_VINTAGES[0], rules.POPULATION_VINTAGES[-1]
_COLUMNS = ["territory_id", "indicator", "value", "sd", "unit", "source_ids"]


def _growth(inputs: Inputs, perimeter: str) -> pd.DataFrame:
    pop = inputs.capitals[inputs.capitals["perimeter"] == perimeter]
    a = pop[pop["census_year"] == FIRST_CENSUS].set_index("territory_id")
    b = pop[pop["census_year"] == LAST_CENSUS].set_index("territory_id")
    rows = []
    for tid in territories.CAPITALE_IDS:
        ratio = b.loc[tid, "population_municipale"] / a.loc[tid, "population_municipale"]
        changed = int(b.loc[tid, "n_communes"]) - int(a.loc[tid, "n_communes"])
        rows.append(
            {
                "territory_id": tid,
                "value": metrics.cagr_rate(float(ratio), LAST_CENSUS - FIRST_CENSUS),
                "source_ids": join_sources(a.loc[tid, "source_id"], b.loc[tid, "source_id"]),
                "perimeter_note": ""
                if changed == 0
                else f"perimeter changed: {changed:+d} communes",
            }
        )
    return pd.DataFrame(rows).set_index("territory_id")


def population_growth(inputs: Inputs, perimeter: str | None = None) -> pd.DataFrame:
    """CAGR of each capital's population municipale, 2016-2023 (percent per year), on one
    perimeter, with ``sd`` = half the gap to the other perimeter's growth.

    ``CAGR = ((P_2023 / P_2016) ** (1 / 7) - 1) * 100``
    (:func:`analysis.methods.metrics.cagr_rate`); ``sd = |CAGR_perimeter - CAGR_other| / 2``.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    perimeter : str or None, default None
        ``label`` or ``core``; None for the default.

    Returns
    -------
    pandas.DataFrame
        ``territory_id, indicator, value, sd, unit, source_ids, perimeter_note``, one row per
        capital; ``perimeter_note`` names a change in the number of communes between censuses.

    Raises
    ------
    ParameterError
        When `perimeter` is not a known perimeter.
    """
    perimeter = rules.perimeter(perimeter)
    other = next(p for p in territories.PERIMETERS if p != perimeter)
    mine, alt = _growth(inputs, perimeter), _growth(inputs, other)
    out = mine.assign(
        indicator="population_growth",
        sd=(mine["value"] - alt["value"]).abs() / 2,
        unit=f"percent per year ({perimeter} perimeter)",
    ).reset_index()
    return out[[*_COLUMNS, "perimeter_note"]]


def _regional_series(
    inputs: Inputs, indicator: str, region: str, window: tuple[int, int]
) -> pd.DataFrame:
    try:
        s, _ = series.pick(inputs.facts, inputs.sources, region, indicator, window)
    except InsufficientDataError:
        return pd.DataFrame(columns=metrics.TIDY)
    return s


def regional_per_100k(
    inputs: Inputs, indicator: str, name: str, population_vintage: int
) -> tuple[pd.DataFrame, dict[str, str]]:
    """A regional count per 100,000 inhabitants of the region, averaged over :data:`WINDOW`,
    attributed to each capital of the region.

    With yearly values ``v_t = 100000 c_t / P`` over the ``n`` cited years, ``value = mean(v_t)``
    and ``sd = sqrt(s^2 / n + mean(c_t) / n * (100000 / P)^2)``: the standard error of the mean
    across years plus the Poisson noise of the counts.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    indicator : str
        The regional count cited in the catalogue (e.g. ``fdi_decisions``).
    name : str
        Indicator name of the result (e.g. ``fdi_decisions_per_100k``).
    population_vintage : int
        Census year of the regional populations.

    Returns
    -------
    frame : pandas.DataFrame
        ``territory_id, indicator, value, sd, unit, source_ids``, one row per capital covered.
    excluded : dict of str to str
        Capitals whose region has no cited figure in :data:`WINDOW`, with the reason.

    Raises
    ------
    InsufficientDataError
        When a region has no population for `population_vintage`.
    """
    pop = inputs.population(population_vintage).set_index("territory_id")
    regions = inputs.capital_regions()
    rows, excluded = [], {}
    for tid in territories.CAPITALE_IDS:
        region = regions[tid]
        s = _regional_series(inputs, indicator, region, WINDOW)
        if s.empty:
            excluded[tid] = f"no cited {indicator} for {region} in {WINDOW[0]}-{WINDOW[1]}"
            continue
        if region not in pop.index:
            raise InsufficientDataError(
                f"{name}: no population of {region} for census {population_vintage} (the "
                "regions have one for census 2023 only); use population_vintage=2023"
            )
        p = float(pop.loc[region, "population_municipale"])
        per = s["value"].to_numpy(float) / p * 1e5
        n = len(per)
        var_years = float(np.var(per, ddof=1)) if n > 1 else 0.0
        poisson = float(s["value"].mean()) * (1e5 / p) ** 2
        rows.append(
            {
                "territory_id": tid,
                "indicator": name,
                "value": float(per.mean()),
                "sd": math.sqrt(var_years / n + poisson / n),
                "unit": "per 100,000 inhabitants of the capital's region, mean of "
                f"{WINDOW[0]}-{WINDOW[1]} (population municipale {population_vintage})",
                "source_ids": join_sources(s["source_ids"], pop.loc[region, "source_id"]),
            }
        )
    return pd.DataFrame(rows, columns=_COLUMNS), excluded


def regional_ratio(
    inputs: Inputs, numerator: str, denominator: str, name: str
) -> tuple[pd.DataFrame, dict[str, str]]:
    """``numerator / denominator`` in the capital's region, by year where both are cited,
    averaged over :data:`WINDOW`; ``sd`` = standard error of the mean across years,
    ``s / sqrt(n)`` (0 for one year).

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    numerator : str
        Regional indicator divided.
    denominator : str
        Regional indicator it is divided by.
    name : str
        Indicator name of the result.

    Returns
    -------
    frame : pandas.DataFrame
        ``territory_id, indicator, value, sd, unit, source_ids``, one row per capital covered.
    excluded : dict of str to str
        Capitals whose region has no year with both figures, with the reason.
    """
    regions = inputs.capital_regions()
    rows, excluded = [], {}
    for tid in territories.CAPITALE_IDS:
        region = regions[tid]
        num = _regional_series(inputs, numerator, region, WINDOW)
        den = _regional_series(inputs, denominator, region, WINDOW)
        m = num.merge(den, on="year", suffixes=("_n", "_d"))
        if m.empty:
            excluded[tid] = (
                f"no year of {WINDOW[0]}-{WINDOW[1]} with both {numerator} and {denominator} "
                f"cited for {region}"
            )
            continue
        r = m["value_n"].to_numpy(float) / m["value_d"].to_numpy(float)
        n = len(r)
        rows.append(
            {
                "territory_id": tid,
                "indicator": name,
                "value": float(r.mean()),
                "sd": float(np.std(r, ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
                "unit": f"{numerator} per {denominator} in the capital's region, mean of "
                f"{WINDOW[0]}-{WINDOW[1]}",
                "source_ids": join_sources(m["source_ids_n"], m["source_ids_d"]),
            }
        )
    return pd.DataFrame(rows, columns=_COLUMNS), excluded


def register_density(
    inputs: Inputs, register: pd.DataFrame, population_vintage: int, perimeter: str
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Register start-ups per 100,000 inhabitants of the perimeter the register counted.

    ``value = 100000 * count / population`` (:func:`analysis.methods.metrics.density`); no
    ``sd`` (one definition, exact counts).

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    register : pandas.DataFrame
        Tidy register counts, one row per capital.
    population_vintage : int
        Census year of the denominators.
    perimeter : str
        The perimeter the register counted.

    Returns
    -------
    frame : pandas.DataFrame
        ``territory_id, indicator, value, sd, unit, source_ids``, indicator ``startups_per_100k``.
    excluded : dict of str to str
        Capitals without a register count.

    Raises
    ------
    InsufficientDataError
        When a capital of `register` has no population.
    """
    d = metrics.density(register, inputs.population(population_vintage, perimeter))
    excluded = {
        t: "no register count" for t in territories.CAPITALE_IDS if t not in set(d["territory_id"])
    }
    return d.assign(indicator="startups_per_100k", sd=np.nan)[_COLUMNS], excluded


def index_inputs(
    inputs: Inputs,
    population_vintage: int,
    perimeter: str | None = None,
    register: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The index's input frame (``territory_id, indicator, value, sd, unit, source_ids``) for
    the capitals that have every indicator, and the capitals left out with the reason.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    population_vintage : int
        Census year of the populations.
    perimeter : str or None, default None
        The capitals' perimeter (``label`` or ``core``); None for the default.
    register : pandas.DataFrame or None, default None
        Register counts; when given, ``startups_per_100k`` is added as a sixth indicator.

    Returns
    -------
    frame : pandas.DataFrame
        One row per capital kept and indicator, sorted by indicator then capital.
    excluded : dict of str to str
        Each capital left out, with the first reason found.

    Raises
    ------
    ParameterError
        When `perimeter` is not a known perimeter.
    InsufficientDataError
        When a region has no population for `population_vintage`.
    """
    perimeter = rules.perimeter(perimeter)
    parts = [population_growth(inputs, perimeter).drop(columns="perimeter_note")]
    excluded: dict[str, str] = {}
    for frame, gone in (
        regional_per_100k(inputs, "fdi_decisions", "fdi_decisions_per_100k", population_vintage),
        regional_per_100k(
            inputs, "fdi_jobs_created_or_maintained", "fdi_jobs_per_100k", population_vintage
        ),
        regional_ratio(
            inputs, "fdi_jobs_created_or_maintained", "fdi_decisions", "fdi_jobs_per_decision"
        ),
        regional_per_100k(inputs, "ey_fdi_projects", "ey_projects_per_100k", population_vintage),
        *(
            [register_density(inputs, register, population_vintage, perimeter)]
            if register is not None
            else []
        ),
    ):
        parts.append(frame)
        for tid, why in gone.items():
            excluded.setdefault(tid, why)
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[~frame["territory_id"].isin(excluded)]
    order = {t: i for i, t in enumerate(territories.CAPITALE_IDS)}
    ind_order = {k: i for i, k in enumerate([*INDICATORS, "startups_per_100k"])}
    frame = frame.sort_values(
        ["indicator", "territory_id"],
        key=lambda c: c.map(order) if c.name == "territory_id" else c.map(ind_order),
    )
    return frame.reset_index(drop=True), excluded
