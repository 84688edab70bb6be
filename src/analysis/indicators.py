"""The headline indicators printed by ``analysis indicators`` (one tidy frame, every row sourced)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import catalog, config, datasets, metrics, series, territories
from analysis.errors import InsufficientDataError

#: Provence Promotion series whose growth is a headline (the agency's own yearly counts).
AGENCY_SERIES = ("implantations", "jobs_created")


def population_rows(population: pd.DataFrame) -> pd.DataFrame:
    """Population municipale as tidy rows (indicator ``population_municipale``)."""
    return pd.DataFrame(
        {
            "territory_id": population["territory_id"],
            "indicator": "population_municipale",
            "year": population["census_year"],
            "value": population["population_municipale"].astype(float),
            "unit": "inhabitants",
            "source_ids": population["source_id"],
        }
    )


def declared_density(facts: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    """Declared start-up counts per 100,000 inhabitants (each count keeps its own source)."""
    counts = facts[
        (facts["indicator"] == "startups_declared")
        & facts["territory_id"].isin(territories.CAPITALE_IDS + (territories.COUNTRY_ID,))
    ]
    return metrics.density(counts, population, skip_missing=True)


def series_growth(
    facts: pd.DataFrame, sources: pd.DataFrame, territory_id: str, indicator: str
) -> pd.DataFrame:
    """Growth and CAGR between the first and last years of a cited series."""
    s, _ = series.pick(facts, sources, territory_id, indicator)
    if len(s) < 2:
        raise InsufficientDataError(f"{indicator} of {territory_id}: fewer than 2 years")
    start, end = int(s["year"].min()), int(s["year"].max())
    return pd.concat(
        [metrics.growth(s, start, end), metrics.cagr(s, start, end)], ignore_index=True
    )


def headline(
    territory: str | None = None,
    population_vintage: int | None = None,
    data_dir: Path | None = None,
) -> pd.DataFrame:
    """Every headline indicator for one territory (or all when `territory` is None)."""
    if territory is not None:
        territories.check_territory(territory)
    vintage = (
        config.DEFAULT_POPULATION_VINTAGE if population_vintage is None else population_vintage
    )
    facts = datasets.load_facts(data_dir)
    sources = catalog.catalogue(data_dir)
    population = datasets.load_territory_population(vintage, data_dir)
    parts = [population_rows(population), declared_density(facts, population)]
    for tid, ind in sorted(set(zip(facts["territory_id"], facts["indicator"], strict=True))):
        if ind in AGENCY_SERIES:
            parts.append(series_growth(facts, sources, tid, ind))
    out = pd.concat(parts, ignore_index=True)
    if territory is not None:
        out = out[out["territory_id"] == territory]
    out = out.sort_values(["territory_id", "indicator", "year", "source_ids"])
    out = out.reset_index(drop=True)
    declared = set(facts.loc[facts["indicator"] == "startups_declared", "territory_id"])
    if territory is not None:
        declared &= {territory}
    out.attrs["notes"] = [
        f"no population for {t} in census {vintage}: its declared start-ups per 100,000 "
        "are not computed"
        for t in sorted(declared - set(population["territory_id"]))
    ]
    return out
