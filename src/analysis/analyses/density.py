"""Start-up density of the 13 capitals: declared counts and the register-based measure.

Declared counts (what ecosystems and the press publish) each carry their own definition
and are not comparable with each other: 78, 300 or 900 start-ups for Toulouse depending on
who counts what. They are shown with their definitions, never pooled. The register-based
count (young, active ICT establishments in the SIRENE stock, :mod:`analysis.data.register`)
is the measure that compares across territories.

Every function takes the :class:`~analysis.data.inputs.Inputs` bundle and reads no file.
"""

from __future__ import annotations

import pandas as pd

from analysis.core import rules, territories
from analysis.core.errors import InsufficientDataError
from analysis.core.tidy import join_sources
from analysis.data.inputs import Inputs
from analysis.methods import metrics, series

DECLARED = "startups_declared"
#: Every kind of start-up count in the catalogue, with what it counts.
COUNT_KINDS: dict[str, str] = {
    "startups_declared": "declared by the ecosystem, an agency or the press",
    "startups_members": "members of / federated by the local French Tech association",
    "startups_identified_trendeo": "identified by the Trendeo observatory (about 2014-2016)",
    "startups_motherbase": "listed in the Motherbase database (Syntec / Numeum)",
}


#: A count whose source does not say which area it counts.
NOT_STATED = "not stated"


def area_of(inputs: Inputs) -> pd.Series:
    """The area of every count that has one: index (territory_id, indicator, year, source_id),
    value ``label``, ``core`` or ``zone: ...``."""
    a = inputs.count_areas
    return a.set_index(["territory_id", "indicator", "year", "source_id"])["area"]


def declared_table(inputs: Inputs) -> pd.DataFrame:
    """Every start-up count of the capitals and France, with its definition, area and source.

    Returns
    -------
    ``territory_id, indicator, year, value, definition, source_id, kind, area``, capitals in
    their usual order, then France. ``area`` is the area the source says it counts: the
    capital's ``label`` or ``core`` perimeter, another ``zone: ...``, or ``not stated``
    (France's counts describe France).
    """
    facts = inputs.facts
    keep = facts["indicator"].isin(COUNT_KINDS) & facts["territory_id"].isin(
        territories.CAPITALE_IDS + (territories.COUNTRY_ID,)
    )
    out = facts.loc[keep, ["territory_id", "indicator", "year", "value", "definition", "source_id"]]
    out = out.assign(kind=out["indicator"].map(COUNT_KINDS))
    areas = area_of(inputs)
    keys = list(
        zip(out["territory_id"], out["indicator"], out["year"], out["source_id"], strict=True)
    )
    out["area"] = [
        "france" if k[0] == territories.COUNTRY_ID else areas.get(k, NOT_STATED) for k in keys
    ]
    order = {t: i for i, t in enumerate(territories.CAPITALE_IDS + (territories.COUNTRY_ID,))}
    out = out.sort_values(
        ["territory_id", "year", "indicator", "source_id"],
        key=lambda c: c.map(order) if c.name == "territory_id" else c,
    )
    return out.reset_index(drop=True)


def _why_not(areas: list[str]) -> str:
    zones = sorted({a.removeprefix("zone: ") for a in areas if a.startswith("zone: ")})
    if zones:
        return "its counts describe other areas than its perimeters: " + "; ".join(zones)
    return "its sources do not state the area they count"


def latest_declared(inputs: Inputs, reference_year: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """For each capital, its most recent declared count up to `reference_year` whose area is
    one of its perimeters.

    Where several sources give that year, :func:`analysis.methods.series.pick` chooses (exact
    before approximate, primary before secondary, ...); a count of another area is never used.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    reference_year : int
        Latest year of a count that may be used, inclusive.

    Returns
    -------
    counts : pandas.DataFrame
        Tidy counts, one per capital kept, with an ``area`` column (``label`` or ``core``).
    excluded : dict of str to str
        The capitals left out, with the reason.

    Raises
    ------
    InsufficientDataError
        When no capital has a declared count of one of its perimeters up to `reference_year`.
    """
    table = declared_table(inputs)
    rows, excluded = [], {}
    for tid in territories.CAPITALE_IDS:
        mine = table[
            (table["territory_id"] == tid)
            & (table["indicator"] == DECLARED)
            & (table["year"] <= reference_year)
        ]
        if mine.empty:
            excluded[tid] = f"no declared start-up count up to {reference_year}"
            continue
        ok = mine[mine["area"].isin(PERIMETER_AREAS)]
        if ok.empty:
            excluded[tid] = _why_not(list(mine["area"]))
            continue
        facts = inputs.facts.merge(
            ok[["territory_id", "indicator", "year", "source_id"]], how="inner"
        )
        s, _ = series.pick(facts, inputs.sources, tid, DECLARED, (rules.YEAR_MIN, reference_year))
        latest = s.iloc[[-1]]
        src = latest["source_ids"].iloc[0]
        area = ok.loc[(ok["source_id"] == src) & (ok["year"] == latest["year"].iloc[0]), "area"]
        rows.append(latest.assign(area=area.iloc[0]))
    if not rows:
        raise InsufficientDataError(f"no declared start-up count up to {reference_year}")
    return pd.concat(rows, ignore_index=True), excluded


#: The areas a capital's count can be divided by: its two perimeters.
PERIMETER_AREAS = ("label", "core")


def per_own_area(inputs: Inputs, counts: pd.DataFrame, population_vintage: int) -> pd.DataFrame:
    """Counts per 100,000 inhabitants of the very area each count describes.

    ``value = count / population_municipale(area) * 100,000`` with `area` the count's own
    ``label`` or ``core`` perimeter (column ``area``; the territory itself for a region or
    France): a count is never divided by another area's population. The unit names the area.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    counts : pandas.DataFrame
        Tidy counts with an ``area`` column.
    population_vintage : int
        Census year of the denominators.

    Returns
    -------
    pandas.DataFrame
        Tidy densities (:data:`~analysis.core.tidy.TIDY`) with ``area``; empty (same columns)
        when `counts` is.

    Raises
    ------
    InsufficientDataError
        When a territory of `counts` has no population for its area and `population_vintage`.
    """
    parts = []
    for area in PERIMETER_AREAS:
        sub = counts[counts["area"] == area]
        if len(sub):
            d = metrics.density(sub, inputs.population(population_vintage, area))
            d["unit"] = d["unit"].str.replace(
                "(population municipale", f"({area} perimeter, population municipale", regex=False
            )
            parts.append(d.assign(area=area))
    other = counts[~counts["area"].isin(PERIMETER_AREAS)]
    if len(other):  # regions and France: their own population
        parts.append(
            metrics.density(other, inputs.population(population_vintage)).assign(
                area=other["area"].to_numpy()
            )
        )
    if not parts:
        return pd.DataFrame(columns=[*metrics.TIDY, "area"])
    return pd.concat(parts, ignore_index=True)


def own_area_population(
    inputs: Inputs, counts: pd.DataFrame, population_vintage: int
) -> pd.DataFrame:
    """For each count (column ``area``), the population of the very area it describes:
    ``territory_id, census_year, population_municipale, source_id``.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    counts : pandas.DataFrame
        Counts with ``territory_id`` and ``area`` (a perimeter, or anything else for the
        territory's own population).
    population_vintage : int
        Census year of the denominators.

    Returns
    -------
    pandas.DataFrame
        One population row per count, in the order of `counts`.
    """
    rows = []
    for tid, area in zip(counts["territory_id"], counts["area"], strict=True):
        perimeter = area if area in PERIMETER_AREAS else None
        pop = inputs.population(population_vintage, perimeter)
        rows.append(pop[pop["territory_id"] == tid])
    return pd.concat(rows, ignore_index=True)


def declared_by_year(inputs: Inputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One declared count per territory and year, and the alternatives it was chosen from.

    Among the ``startups_declared`` counts of a capital or France whose area is known (a
    capital's perimeter; France), the series rule chooses one per year
    (:func:`analysis.methods.series.pick`). Returns ``(chosen, alternatives)``: the chosen
    counts (tidy, with ``area``) and every other count of the same territory and year, with
    its area and why it was not used (another value chosen by the rule, or another area).
    """
    table = declared_table(inputs)
    table = table[table["indicator"] == DECLARED]
    usable = table[table["area"].isin((*PERIMETER_AREAS, "france"))]
    chosen = []
    for tid in sorted(set(usable["territory_id"])):
        facts = inputs.facts.merge(
            usable.loc[
                usable["territory_id"] == tid, ["territory_id", "indicator", "year", "source_id"]
            ]
        )
        s, _ = series.pick(facts, inputs.sources, tid, DECLARED)
        area = usable.set_index(["territory_id", "year", "source_id"])["area"]
        chosen.append(
            s.assign(
                area=[
                    area[(tid, y, sid)] for y, sid in zip(s["year"], s["source_ids"], strict=True)
                ]
            )
        )
    chosen_df = pd.concat(chosen, ignore_index=True) if chosen else pd.DataFrame()
    picked = set(
        zip(chosen_df["territory_id"], chosen_df["year"], chosen_df["source_ids"], strict=True)
    )
    alt = table[
        [
            (t, y, sid) not in picked
            for t, y, sid in zip(
                table["territory_id"], table["year"], table["source_id"], strict=True
            )
        ]
    ]
    why = [
        "another count of the same year was chosen (series rule)"
        if a in (*PERIMETER_AREAS, "france")
        else "its source does not state the area it counts"
        if a == NOT_STATED
        else f"it describes another area ({a.removeprefix('zone: ')})"
        for a in alt["area"]
    ]
    return chosen_df, alt.assign(reason=why).reset_index(drop=True)


def declared_density(
    inputs: Inputs, reference_year: int, population_vintage: int
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Latest declared count per 100,000 inhabitants of its own area (census
    `population_vintage`), and the capitals left out with the reason.

    ``value = 100000 * count / population`` of the count's own perimeter (:func:`per_own_area`)
    applied to :func:`latest_declared`.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    reference_year : int
        Latest year of a count that may be used, inclusive.
    population_vintage : int
        Census year of the denominators.

    Returns
    -------
    density : pandas.DataFrame
        Tidy densities with ``area``, one per capital kept.
    excluded : dict of str to str
        The capitals left out, with the reason.

    Raises
    ------
    InsufficientDataError
        When no capital has a usable declared count up to `reference_year`.
    """
    counts, excluded = latest_declared(inputs, reference_year)
    return per_own_area(inputs, counts, population_vintage), excluded


def declared_spread(inputs: Inputs, population_vintage: int) -> pd.DataFrame:
    """Per capital, the range of densities that its different published counts give, each
    over its own area (counts of another area, or of an area not stated, are left out).

    The spread is what the choice of definition does to the number; it is not a
    confidence interval.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    population_vintage : int
        Census year of the denominators.

    Returns
    -------
    pandas.DataFrame
        ``territory_id, n_counts, low, high, source_ids`` (per 100,000 inhabitants), sorted by
        ``high`` descending.
    """
    table = declared_table(inputs)
    table = table[
        table["territory_id"].isin(territories.CAPITALE_IDS) & table["area"].isin(PERIMETER_AREAS)
    ].rename(columns={"source_id": "source_ids"})
    d = per_own_area(inputs, table.assign(unit="start-ups"), population_vintage)
    g = d.groupby("territory_id")
    out = pd.DataFrame(
        {
            "n_counts": g["value"].size(),
            "low": g["value"].min(),
            "high": g["value"].max(),
            "source_ids": g["source_ids"].agg(lambda s: join_sources(s)),
        }
    ).reset_index()
    return out.sort_values("high", ascending=False).reset_index(drop=True)


def register_counts(
    aggregated: pd.DataFrame, as_of: object, source_id: str, perimeter: str
) -> pd.DataFrame:
    """Territory-level register counts (``code, name, startups`` from ``analysis sirene
    aggregate --level territory --perimeter P``) as tidy rows of indicator
    ``startups_register``, with the ``area`` they count (the perimeter P).

    Parameters
    ----------
    aggregated : pandas.DataFrame
        The aggregation table, with at least ``code`` and ``startups``; rows that are not
        capitals are dropped.
    as_of : object
        Date of the count; its first four characters give the year.
    source_id : str
        Source id carried by every row.
    perimeter : str
        The perimeter the register counted, as ``area``.

    Returns
    -------
    pandas.DataFrame
        Tidy rows with ``area``, unit ``start-ups``.

    Raises
    ------
    InsufficientDataError
        When `aggregated` lacks ``code`` or ``startups``.
    """
    missing = {"code", "startups"} - set(aggregated.columns)
    if missing:
        raise InsufficientDataError(f"register counts lack column(s) {', '.join(sorted(missing))}")
    year = int(str(as_of)[:4])
    df = aggregated[aggregated["code"].isin(territories.CAPITALE_IDS)]
    return pd.DataFrame(
        {
            "territory_id": df["code"],
            "indicator": "startups_register",
            "year": year,
            "value": df["startups"].astype(float),
            "unit": "start-ups",
            "source_ids": source_id,
            "area": perimeter,
        }
    ).reset_index(drop=True)
