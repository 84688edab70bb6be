"""Indicators as pure functions on tidy frames.

Every function takes tidy frames with at least ``territory_id, indicator, year, value,
unit`` and a ``source_id`` or ``source_ids`` column, and returns a tidy frame with the
columns :data:`TIDY` = ``territory_id, indicator, year, value, unit, source_ids``.
``source_ids`` is the sorted, ``;``-joined set of every source behind the value.

Units are never mixed silently: a function that combines two frames checks that their
units agree (or are the ones it expects) and raises :class:`ParameterError` otherwise.
Densities carry the census vintage of their denominator in their unit.

Reference: OECD/Eurostat (2007) *Eurostat-OECD Manual on Business Demography Statistics*.
"""

from __future__ import annotations

import pandas as pd

from analysis.core.errors import InsufficientDataError, ParameterError
from analysis.core.tidy import TIDY, as_tidy, join_sources, single_unit

PERCENT = "percent"


# ----------------------------------------------------------------------------- helpers


def _one_series(df: pd.DataFrame, what: str) -> pd.DataFrame:
    df = as_tidy(df)
    keys = df[["territory_id", "indicator"]].drop_duplicates()
    if len(keys) != 1:
        raise ParameterError(f"{what}: expected one territory and one indicator, got {len(keys)}")
    single_unit(df, what)
    if df["year"].duplicated().any():
        raise ParameterError(
            f"{what}: several values for year {df['year'][df['year'].duplicated()].iloc[0]}"
        )
    return df.sort_values("year").reset_index(drop=True)


def _value_at(df: pd.DataFrame, year: int, what: str) -> pd.Series:
    row = df[df["year"] == year]
    if row.empty:
        raise InsufficientDataError(
            f"{what}: no value for {year}; years with data: {', '.join(map(str, df['year']))}"
        )
    return row.iloc[0]


# ----------------------------------------------------------------------------- densities


def density(
    counts: pd.DataFrame, population: pd.DataFrame, per: int = 100_000, skip_missing: bool = False
) -> pd.DataFrame:
    """Count per `per` inhabitants: ``value / population_municipale * per``.

    `population` has ``territory_id, census_year, population_municipale, source_id`` for
    one census year (a mix of vintages is refused). The unit records the vintage, e.g.
    ``start-ups per 100,000 inhabitants (population municipale 2023)``. A territory without a
    population raises, unless `skip_missing`: then its rows are left out (never filled).

    Parameters
    ----------
    counts : pandas.DataFrame
        Tidy counts, one row per territory and year.
    population : pandas.DataFrame
        Populations of one census year, one row per ``territory_id``.
    per : int, default 100_000
        Number of inhabitants the density is expressed per.
    skip_missing : bool, default False
        Leave out the counts of territories without a population instead of raising.

    Returns
    -------
    pandas.DataFrame
        Tidy densities (:data:`TIDY`), indicator suffixed ``_per_<per/1000>k`` when
        ``per >= 1000``, sources joined with the population's.

    Raises
    ------
    ParameterError
        When `population` holds several census years or a population is not > 0, or `counts`
        is not tidy.
    InsufficientDataError
        When a territory of `counts` has no population and `skip_missing` is False.
    """
    counts = as_tidy(counts)
    years = sorted(population["census_year"].unique())
    if len(years) != 1:
        raise ParameterError(
            f"population: several census years {years}; select one vintage (population_vintage)"
        )
    pop = population.set_index("territory_id")
    if (pop["population_municipale"] <= 0).any():
        bad = pop.index[pop["population_municipale"] <= 0][0]
        raise ParameterError(
            f"population of {bad!r} is {pop.loc[bad, 'population_municipale']}; it must be > 0"
        )
    missing = sorted(set(counts["territory_id"]) - set(pop.index))
    if missing and not skip_missing:
        raise InsufficientDataError(f"no population for {', '.join(missing)} (census {years[0]})")
    counts = counts[~counts["territory_id"].isin(missing)]
    p = counts["territory_id"].map(pop["population_municipale"]).astype(float)
    out = counts.assign(
        value=counts["value"] / p * per,
        indicator=counts["indicator"] + f"_per_{per // 1000}k"
        if per >= 1000
        else counts["indicator"],
        unit=counts["unit"] + f" per {per:,} inhabitants (population municipale {years[0]})",
        source_ids=[
            join_sources(s, pop.loc[t, "source_id"])
            for s, t in zip(counts["source_ids"], counts["territory_id"], strict=True)
        ],
    )
    return out[TIDY]


# ----------------------------------------------------------------------------- growth


def growth_rate(v0: float, v1: float) -> float:
    """Growth between two values, in percent: ``(v1 / v0 - 1) * 100``.

    Parameters
    ----------
    v0 : float
        Start value, > 0.
    v1 : float
        End value.

    Returns
    -------
    float
        Growth in percent (100 -> 150 gives 50.0).

    Raises
    ------
    ParameterError
        When `v0` is not > 0.
    """
    if v0 <= 0:
        raise ParameterError(f"growth needs a positive start value, got {v0}")
    return (v1 / v0 - 1.0) * 100.0


def cagr_rate(ratio: float, years: float) -> float:
    """Compound annual growth rate in percent: ``(ratio ** (1 / years) - 1) * 100``.

    ``ratio`` is end value / start value. Doubling over 4 years gives 18.92 %.

    Parameters
    ----------
    ratio : float
        End value / start value, > 0.
    years : float
        Number of years between the two values, > 0.

    Returns
    -------
    float
        Percent per year.

    Raises
    ------
    ParameterError
        When `years` or `ratio` is not > 0.
    """
    if years <= 0:
        raise ParameterError(f"CAGR needs a positive number of years, got {years}")
    if ratio <= 0:
        raise ParameterError(f"CAGR needs a positive ratio of end to start value, got {ratio}")
    return (ratio ** (1.0 / years) - 1.0) * 100.0


def growth(series: pd.DataFrame, start: int, end: int) -> pd.DataFrame:
    """Growth of one series between `start` and `end`, in percent: ``(v_end / v_start - 1) * 100``.

    Parameters
    ----------
    series : pandas.DataFrame
        Tidy series of one territory and one indicator, one value per year, one unit.
    start : int
        Start year; must have a value.
    end : int
        End year; must have a value.

    Returns
    -------
    pandas.DataFrame
        One tidy row, indicator ``<indicator>_growth_<start>_<end>``, year `end`, unit percent.

    Raises
    ------
    ParameterError
        When `series` holds several territories, indicators or units, a year twice, or a
        start value that is not > 0.
    InsufficientDataError
        When `start` or `end` has no value.
    """
    s = _one_series(series, "growth")
    a, b = _value_at(s, start, "growth"), _value_at(s, end, "growth")
    return pd.DataFrame(
        [
            {
                "territory_id": a["territory_id"],
                "indicator": f"{a['indicator']}_growth_{start}_{end}",
                "year": end,
                "value": growth_rate(a["value"], b["value"]),
                "unit": PERCENT,
                "source_ids": join_sources(a["source_ids"], b["source_ids"]),
            }
        ]
    )


def cagr(series: pd.DataFrame, start: int, end: int) -> pd.DataFrame:
    """Compound annual growth rate of one series from `start` to `end`, in percent per year.

    ``CAGR = ((v_end / v_start) ** (1 / (end - start)) - 1) * 100`` (see :func:`cagr_rate`).

    Parameters
    ----------
    series : pandas.DataFrame
        Tidy series of one territory and one indicator, one value per year, one unit.
    start : int
        Start year; must have a value > 0.
    end : int
        End year, after `start`; must have a value.

    Returns
    -------
    pandas.DataFrame
        One tidy row, indicator ``<indicator>_cagr_<start>_<end>``, year `end`, unit
        ``percent per year``.

    Raises
    ------
    ParameterError
        When `end` is not after `start`, the start value is not > 0, or `series` holds several
        territories, indicators or units, or a year twice.
    InsufficientDataError
        When `start` or `end` has no value.
    """
    if end <= start:
        raise ParameterError(f"CAGR: end year {end} must be after start year {start}")
    s = _one_series(series, "cagr")
    a, b = _value_at(s, start, "cagr"), _value_at(s, end, "cagr")
    if a["value"] <= 0:
        raise ParameterError(f"CAGR: the {start} value is {a['value']}; it must be > 0")
    return pd.DataFrame(
        [
            {
                "territory_id": a["territory_id"],
                "indicator": f"{a['indicator']}_cagr_{start}_{end}",
                "year": end,
                "value": cagr_rate(b["value"] / a["value"], end - start),
                "unit": "percent per year",
                "source_ids": join_sources(a["source_ids"], b["source_ids"]),
            }
        ]
    )


# ----------------------------------------------------------------------------- shares


def ratio(
    numerator: pd.DataFrame,
    denominator: pd.DataFrame,
    indicator: str,
    unit: str,
    scale: float = 1.0,
    on: tuple[str, ...] = ("territory_id", "year"),
) -> pd.DataFrame:
    """``numerator / denominator * scale`` matched on `on`; rows without a match are dropped.

    Parameters
    ----------
    numerator : pandas.DataFrame
        Tidy numerator values.
    denominator : pandas.DataFrame
        Tidy denominator values, each > 0.
    indicator : str
        Indicator name of the result.
    unit : str
        Unit of the result.
    scale : float, default 1.0
        Factor applied to the quotient (100 for a percentage).
    on : tuple of str, default ("territory_id", "year")
        Columns the two frames are matched on.

    Returns
    -------
    pandas.DataFrame
        Tidy ratios (:data:`TIDY`), sources of both sides joined.

    Raises
    ------
    InsufficientDataError
        When the two frames share no key.
    ParameterError
        When a matched denominator is <= 0, or a frame is not tidy.
    """
    n, d = as_tidy(numerator), as_tidy(denominator)
    m = n.merge(d, on=list(on), suffixes=("", "_d"))
    if m.empty:
        raise InsufficientDataError(
            f"{indicator}: numerator and denominator share no {', '.join(on)}"
        )
    if (m["value_d"] <= 0).any():
        raise ParameterError(f"{indicator}: a denominator is <= 0")
    out = m.assign(
        value=m["value"] / m["value_d"] * scale,
        indicator=indicator,
        unit=unit,
        source_ids=[
            join_sources(a, b) for a, b in zip(m["source_ids"], m["source_ids_d"], strict=True)
        ],
    )
    return out[TIDY].reset_index(drop=True)


def share_of(part: pd.DataFrame, whole: pd.DataFrame, indicator: str) -> pd.DataFrame:
    """Share of a territory's value in another territory's (its region, France), by year.

    ``share = 100 * part / whole`` percent. `whole` holds one territory (the reference); the
    result keeps `part`'s territory ids.

    Parameters
    ----------
    part : pandas.DataFrame
        Tidy values of the territories whose share is computed.
    whole : pandas.DataFrame
        Tidy values of one reference territory, in the same unit as `part`.
    indicator : str
        Indicator name of the result.

    Returns
    -------
    pandas.DataFrame
        Tidy shares in percent, for the years both frames have.

    Raises
    ------
    ParameterError
        When `whole` holds several territories, or the two frames' units differ or are mixed.
    InsufficientDataError
        When the two frames share no year.
    """
    w = as_tidy(whole)
    if w["territory_id"].nunique() != 1:
        raise ParameterError("share_of: `whole` must hold exactly one reference territory")
    up, uw = single_unit(part, "share_of (part)"), single_unit(w, "share_of (whole)")
    if up != uw:
        raise ParameterError(f"share_of: part is in {up!r} but whole is in {uw!r}")
    p = as_tidy(part)
    ref = (
        p[["territory_id", "year"]]
        .drop_duplicates()
        .merge(w.drop(columns="territory_id"), on="year")
    )
    return ratio(p, ref, indicator, PERCENT, scale=100.0)


def jobs_per_project(jobs: pd.DataFrame, projects: pd.DataFrame) -> pd.DataFrame:
    """Jobs per project: ``jobs / projects`` by territory and year (1,990 / 100 = 19.9).

    Parameters
    ----------
    jobs : pandas.DataFrame
        Tidy counts of jobs created, one unit.
    projects : pandas.DataFrame
        Tidy counts of projects, one unit, each > 0.

    Returns
    -------
    pandas.DataFrame
        Tidy rows, indicator ``jobs_per_project``, unit ``jobs per project``.

    Raises
    ------
    ParameterError
        When a frame mixes units or a project count is <= 0.
    InsufficientDataError
        When the two frames share no territory and year.
    """
    single_unit(jobs, "jobs_per_project (jobs)")
    single_unit(projects, "jobs_per_project (projects)")
    return ratio(jobs, projects, "jobs_per_project", "jobs per project")
