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


def declared_table(inputs: Inputs) -> pd.DataFrame:
    """Every start-up count of the capitals and France, with its definition and source.

    Returns
    -------
    ``territory_id, indicator, year, value, definition, source_id, kind``, capitals in their
    usual order, then France.
    """
    facts = inputs.facts
    keep = facts["indicator"].isin(COUNT_KINDS) & facts["territory_id"].isin(
        territories.CAPITALE_IDS + (territories.COUNTRY_ID,)
    )
    out = facts.loc[keep, ["territory_id", "indicator", "year", "value", "definition", "source_id"]]
    out = out.assign(kind=out["indicator"].map(COUNT_KINDS))
    order = {t: i for i, t in enumerate(territories.CAPITALE_IDS + (territories.COUNTRY_ID,))}
    out = out.sort_values(
        ["territory_id", "year", "indicator", "source_id"],
        key=lambda c: c.map(order) if c.name == "territory_id" else c,
    )
    return out.reset_index(drop=True)


def latest_declared(inputs: Inputs, reference_year: int) -> tuple[pd.DataFrame, list[str]]:
    """For each capital, its most recent declared count up to `reference_year`.

    Returns
    -------
    (tidy counts, capitals without any declared count up to that year). Where several
    sources give that year, :func:`analysis.methods.series.pick` chooses (exact before
    approximate, primary before secondary, ...).
    """
    rows, missing = [], []
    for tid in territories.CAPITALE_IDS:
        try:
            s, _ = series.pick(
                inputs.facts, inputs.sources, tid, DECLARED, (rules.YEAR_MIN, reference_year)
            )
        except InsufficientDataError:
            missing.append(tid)
            continue
        rows.append(s.iloc[[-1]])
    if not rows:
        raise InsufficientDataError(f"no declared start-up count up to {reference_year}")
    return pd.concat(rows, ignore_index=True), missing


def declared_density(
    inputs: Inputs, reference_year: int, population_vintage: int
) -> tuple[pd.DataFrame, list[str]]:
    """Latest declared count per 100,000 inhabitants (census `population_vintage`).

    ``value = count / population_municipale * 100,000`` (:func:`analysis.methods.metrics.density`).
    """
    counts, missing = latest_declared(inputs, reference_year)
    return metrics.density(counts, inputs.population(population_vintage)), missing


def declared_spread(inputs: Inputs, population_vintage: int) -> pd.DataFrame:
    """Per capital, the range of densities that its different declared counts give.

    The spread is what the choice of definition does to the number; it is not a
    confidence interval.
    """
    table = declared_table(inputs)
    table = table[table["territory_id"].isin(territories.CAPITALE_IDS)].rename(
        columns={"source_id": "source_ids"}
    )
    d = metrics.density(table.assign(unit="start-ups"), inputs.population(population_vintage))
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


def register_counts(aggregated: pd.DataFrame, as_of: object, source_id: str) -> pd.DataFrame:
    """Territory-level register counts (``code, name, startups`` from ``analysis sirene
    aggregate --level territory``) as tidy rows of indicator ``startups_register``."""
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
        }
    ).reset_index(drop=True)
