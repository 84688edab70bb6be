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
    """Derived table ``territory_population``: the capitals' populations, every vintage."""
    regions: pd.DataFrame
    """Derived table ``region_population``: regions and France, every vintage."""

    def population(self, vintage: int | None = None) -> pd.DataFrame:
        """Populations of one census year (:func:`analysis.data.datasets.population_of`)."""
        return datasets.population_of(self.capitals, self.regions, vintage)

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
    )
