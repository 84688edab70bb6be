"""Everything the analyses read, loaded once and passed down as frames.

``load_inputs()`` reads the cited facts, the catalogue of sources, the French Tech labels and
the two population tables; the analyses take the :class:`Inputs` bundle (or frames from it)
and read no file themselves. Loading is cached on the files' fingerprints
(:mod:`analysis.core.cache`), so a second call is cheap and an edited file is read again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.core import territories
from analysis.data import catalog, datasets


@dataclass(frozen=True)
class Inputs:
    """The tables behind every result. Treat the frames as read-only."""

    facts: pd.DataFrame
    """Cited figures: ``territory_id, indicator, year, value, unit, source_id, locator, definition``."""
    sources: pd.DataFrame
    """The catalogue: one row per source (:func:`analysis.data.catalog.catalogue`)."""
    labels: pd.DataFrame
    """French Tech labels of 2014, 2015 and 2019."""
    capitals: pd.DataFrame
    """Derived table ``territory_population``: the capitals' populations, every vintage and
    both perimeters."""
    regions: pd.DataFrame
    """Derived table ``region_population``: regions and France, every vintage."""
    perimeters: pd.DataFrame
    """Derived table ``territories``: the EPCIs of each capital's two perimeters, cited."""
    count_areas: pd.DataFrame
    """The area each published start-up count describes (``label``, ``core`` or a zone)."""

    def population(self, vintage: int | None = None, perimeter: str | None = None) -> pd.DataFrame:
        """Populations of one census year and perimeter
        (:func:`analysis.data.datasets.population_of`)."""
        return datasets.population_of(self.capitals, self.regions, vintage, perimeter)

    def same_perimeters(self) -> set[str]:
        """The capitals whose label and core perimeters hold the same EPCIs (every vintage)."""
        p = self.perimeters
        sets = p.groupby(["territory_id", "perimeter", "census_year"])["epci_siren"].agg(frozenset)
        out = set()
        for tid in territories.CAPITALE_IDS:
            years = sets.loc[tid].index.get_level_values("census_year").unique()
            if all(sets[(tid, "label", y)] == sets[(tid, "core", y)] for y in years):
                out.add(tid)
        return out

    def capital_regions(self) -> dict[str, str]:
        """Each capital's region id, from the region of its first anchor commune."""
        latest = self.capitals[self.capitals["census_year"] == self.capitals["census_year"].max()]
        return {
            t: territories.REGIONS[r]
            for t, r in zip(latest["territory_id"], latest["region_code"], strict=True)
        }


def load_inputs(data_dir: Path | None = None) -> Inputs:
    """Read the inputs of the analyses from `data_dir` (default: the project's ``data/``)."""
    return Inputs(
        facts=datasets.load_facts(data_dir),
        sources=catalog.catalogue(data_dir),
        labels=datasets.load_labels(data_dir),
        capitals=datasets.load_derived("territory_population", data_dir),
        regions=datasets.load_derived("region_population", data_dir),
        perimeters=datasets.load_derived("territories", data_dir),
        count_areas=datasets.load_count_areas(data_dir),
    )
