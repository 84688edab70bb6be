"""Indicators as pure functions on tidy frames.

Every function takes tidy frames with at least ``territory_id, indicator, year, value,
unit`` and a ``source_id`` or ``source_ids`` column, and returns a tidy frame with the
columns :data:`TIDY` = ``territory_id, indicator, year, value, unit, source_ids``.
``source_ids`` is the sorted, ``;``-joined set of every source behind the value.

Units are never mixed silently: a function that combines two frames checks that their
units agree (or are the ones it expects) and raises :class:`ParameterError` otherwise.
Densities carry the census vintage of their denominator in their unit.

References: OECD/Eurostat (2007) *Eurostat-OECD Manual on Business Demography
Statistics*; Isard (1960) and Miller & Blair (2009) for the location quotient;
Rhoades (1993) for the Herfindahl-Hirschman index.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from analysis.errors import InsufficientDataError, ParameterError

TIDY = ["territory_id", "indicator", "year", "value", "unit", "source_ids"]
PERCENT = "percent"


# ----------------------------------------------------------------------------- helpers


def join_sources(*values: Iterable[str] | str | float | None) -> str:
    """Sorted, de-duplicated ``;``-joined source ids from strings or iterables of strings."""
    out: set[str] = set()
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        items = [v] if isinstance(v, str) else list(v)
        for item in items:
            out.update(s for s in str(item).split(";") if s)
    return ";".join(sorted(out))


def as_tidy(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with a ``source_ids`` column (from ``source_id`` if needed), in TIDY order."""
    if "source_ids" not in df.columns:
        if "source_id" not in df.columns:
            raise ParameterError("frame has neither 'source_ids' nor 'source_id' column")
        df = df.assign(source_ids=df["source_id"])
    missing = [c for c in TIDY if c not in df.columns]
    if missing:
        raise ParameterError(f"frame lacks column(s) {', '.join(missing)}; tidy frames need {TIDY}")
    if df[["territory_id", "year", "value"]].isna().any().any():
        bad = df[df[["territory_id", "year", "value"]].isna().any(axis=1)].index[0]
        raise ParameterError(f"row {bad}: NaN in a required column (territory_id, year, value)")
    return df[TIDY].reset_index(drop=True)


def single_unit(df: pd.DataFrame, what: str) -> str:
    units = sorted(df["unit"].astype(str).unique())
    if len(units) != 1:
        raise ParameterError(f"{what}: mixed units {units}; select one unit first")
    return units[0]


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


def per_thousand_firms(counts: pd.DataFrame, firms: pd.DataFrame) -> pd.DataFrame:
    """Count per 1,000 firms: ``value / firms * 1000``; `firms` is tidy, same territories and years."""
    counts, firms = as_tidy(counts), as_tidy(firms)
    m = counts.merge(firms, on=["territory_id", "year"], suffixes=("", "_f"), how="left")
    if m["value_f"].isna().any():
        t = m.loc[m["value_f"].isna(), ["territory_id", "year"]].iloc[0]
        raise InsufficientDataError(f"no firm count for {t['territory_id']} in {t['year']}")
    if (m["value_f"] <= 0).any():
        raise ParameterError("firm counts must be > 0")
    return m.assign(
        value=m["value"] / m["value_f"] * 1000,
        indicator=m["indicator"] + "_per_1000_firms",
        unit=m["unit"] + " per 1,000 firms",
        source_ids=[
            join_sources(a, b) for a, b in zip(m["source_ids"], m["source_ids_f"], strict=True)
        ],
    )[TIDY]


# ----------------------------------------------------------------------------- growth


def growth_rate(v0: float, v1: float) -> float:
    """Growth between two values, in percent: ``(v1 / v0 - 1) * 100``."""
    if v0 <= 0:
        raise ParameterError(f"growth needs a positive start value, got {v0}")
    return (v1 / v0 - 1.0) * 100.0


def cagr_rate(ratio: float, years: float) -> float:
    """Compound annual growth rate in percent: ``(ratio ** (1 / years) - 1) * 100``.

    ``ratio`` is end value / start value. Doubling over 4 years gives 18.92 %.
    """
    if years <= 0:
        raise ParameterError(f"CAGR needs a positive number of years, got {years}")
    if ratio <= 0:
        raise ParameterError(f"CAGR needs a positive ratio of end to start value, got {ratio}")
    return (ratio ** (1.0 / years) - 1.0) * 100.0


def growth(series: pd.DataFrame, start: int, end: int) -> pd.DataFrame:
    """Growth of one series between `start` and `end`, in percent."""
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
    """Compound annual growth rate of one series from `start` to `end`, in percent per year."""
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


def year_on_year(series: pd.DataFrame) -> pd.DataFrame:
    """Change from the previous year with data, in percent; only for consecutive years.

    A gap (a missing year) gives no value rather than a change over two years.
    """
    s = _one_series(series, "year_on_year")
    prev = s.shift(1)
    ok = (s["year"] - prev["year"]) == 1
    out = s[ok].assign(
        value=(s["value"] / prev["value"] - 1.0)[ok] * 100.0,
        indicator=s["indicator"] + "_yoy",
        unit="percent",
        source_ids=[
            join_sources(a, b)
            for a, b in zip(s["source_ids"][ok], prev["source_ids"][ok], strict=True)
        ],
    )
    return out[TIDY].reset_index(drop=True)


def index_to_base(series: pd.DataFrame, base_year: int) -> pd.DataFrame:
    """Index = 100 at `base_year`: ``value / value[base_year] * 100``."""
    s = _one_series(series, "index_to_base")
    b = _value_at(s, base_year, "index_to_base")
    if b["value"] == 0:
        raise ParameterError(f"index_to_base: the {base_year} value is 0")
    return s.assign(
        value=s["value"] / b["value"] * 100.0,
        indicator=s["indicator"] + f"_index_{base_year}",
        unit=f"index ({base_year} = 100)",
        source_ids=[join_sources(x, b["source_ids"]) for x in s["source_ids"]],
    )[TIDY]


# ----------------------------------------------------------------------------- shares


def ratio(
    numerator: pd.DataFrame,
    denominator: pd.DataFrame,
    indicator: str,
    unit: str,
    scale: float = 1.0,
    on: tuple[str, ...] = ("territory_id", "year"),
) -> pd.DataFrame:
    """``numerator / denominator * scale`` matched on `on`; rows without a match are dropped."""
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


def share(part: pd.DataFrame, whole: pd.DataFrame, indicator: str) -> pd.DataFrame:
    """Share of `part` in `whole`, in percent, by territory and year. Units must agree."""
    up, uw = single_unit(part, "share (part)"), single_unit(whole, "share (whole)")
    if up != uw:
        raise ParameterError(f"share: part is in {up!r} but whole is in {uw!r}")
    return ratio(part, whole, indicator, PERCENT, scale=100.0)


def share_of(part: pd.DataFrame, whole: pd.DataFrame, indicator: str) -> pd.DataFrame:
    """Share of a territory's value in another territory's (its region, France), by year.

    `whole` holds one territory (the reference); the result keeps `part`'s territory ids.
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
    """Jobs per project: ``jobs / projects`` by territory and year (1,990 / 100 = 19.9)."""
    single_unit(jobs, "jobs_per_project (jobs)")
    single_unit(projects, "jobs_per_project (projects)")
    return ratio(jobs, projects, "jobs_per_project", "jobs per project")


# ----------------------------------------------------------------------------- specialisation


def location_quotient(df: pd.DataFrame, reference: str, sector_col: str = "sector") -> pd.DataFrame:
    """Location quotient of each territory and sector against a reference territory.

    ``LQ_ir = (x_ir / x_r) / (x_i,ref / x_ref)`` where ``x_ir`` is the value of sector i in
    territory r and ``x_r`` its total over sectors. LQ > 1 means the territory is more
    specialised in the sector than the reference (Miller & Blair 2009, ch. 8).
    `df` is tidy with an extra `sector_col`; one year and one unit.
    """
    if sector_col not in df.columns:
        raise ParameterError(f"location_quotient: no column {sector_col!r}")
    single_unit(df, "location_quotient")
    if df["year"].nunique() != 1:
        raise ParameterError("location_quotient: one year at a time")
    d = df.assign(source_ids=as_tidy(df)["source_ids"].to_numpy())
    if reference not in set(d["territory_id"]):
        raise InsufficientDataError(f"location_quotient: no rows for the reference {reference!r}")
    tot = d.groupby("territory_id")["value"].transform("sum")
    d = d.assign(_share=d["value"] / tot)
    ref = d[d["territory_id"] == reference].set_index(sector_col)
    out = d[d["territory_id"] != reference].copy()
    missing = sorted(set(out[sector_col]) - set(ref.index))
    if missing:
        raise InsufficientDataError(f"location_quotient: reference lacks sector(s) {missing}")
    out["value"] = out["_share"] / out[sector_col].map(ref["_share"])
    out["indicator"] = out["indicator"] + "_lq_" + out[sector_col].astype(str)
    out["unit"] = f"location quotient (reference: {reference})"
    ref_src = join_sources(ref["source_ids"])
    out["source_ids"] = [join_sources(s, ref_src) for s in out["source_ids"]]
    return out[TIDY].reset_index(drop=True)


def herfindahl(df: pd.DataFrame, sector_col: str = "sector") -> pd.DataFrame:
    """Herfindahl-Hirschman concentration across sectors: ``HHI_r = sum_i s_ir^2``, s in [0, 1].

    1 means one sector holds everything; 1/n means n equal sectors.
    """
    if sector_col not in df.columns:
        raise ParameterError(f"herfindahl: no column {sector_col!r}")
    single_unit(df, "herfindahl")
    d = df.assign(source_ids=as_tidy(df)["source_ids"].to_numpy())
    if (d["value"] < 0).any():
        raise ParameterError("herfindahl: values must be >= 0")
    g = d.groupby(["territory_id", "year"])
    out = g.apply(
        lambda x: pd.Series(
            {
                "value": float(((x["value"] / x["value"].sum()) ** 2).sum()),
                "indicator": x["indicator"].iloc[0] + "_hhi",
                "source_ids": join_sources(x["source_ids"]),
            }
        ),
        include_groups=False,
    ).reset_index()
    return out.assign(unit="index (0-1)")[TIDY]


# ----------------------------------------------------------------------------- ranks


def rank(df: pd.DataFrame, ascending: bool = False, method: str = "min") -> pd.DataFrame:
    """Rank of each territory within each (indicator, year); ties share a rank.

    ``method`` is pandas' tie rule (``min``: 1, 2, 2, 4 — the sports rule).
    """
    if method not in ("min", "max", "average", "dense", "first"):
        raise ParameterError(
            f"rank: unknown tie method {method!r}; use min, max, average, dense or first"
        )
    d = as_tidy(df)
    r = d.groupby(["indicator", "year"])["value"].rank(ascending=ascending, method=method)
    return d.assign(
        value=r,
        indicator=d["indicator"] + "_rank",
        unit="rank (1 = highest)" if not ascending else "rank (1 = lowest)",
    )[TIDY]
