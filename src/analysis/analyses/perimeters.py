"""The capitals' perimeters: which EPCIs each of the 13 capitals stands for, and who says so.

Each capital has two perimeters (``docs/definitions.md#perimeters``):

* ``label``: the places the 2019 label names, each cited with a source and a locator
  (``label_places.csv`` in ``data/raw/``), mapped to the EPCIs that contain them;
* ``core``: the EPCIs of the capital's main cities.

The derived table ``territories`` holds both (:mod:`analysis.data.geography`); this module
lists them with the EPCIs' names, the places cited and their populations.
"""

from __future__ import annotations

import pandas as pd

from analysis.core import rules, territories
from analysis.data import datasets
from analysis.data.inputs import Inputs

#: Columns of :func:`listing`.
COLUMNS = [
    "territory_id",
    "perimeter",
    "epci_siren",
    "epci_name",
    "commune_code",
    "commune_name",
    "population",
    "census_year",
    "source_ids",
]


def listing(
    inputs: Inputs,
    perimeter: str | None = None,
    population_vintage: int | None = None,
    data_dir=None,
) -> pd.DataFrame:
    """One row per capital, perimeter and EPCI, with the places the sources name.

    Parameters
    ----------
    inputs : the loaded tables (:func:`analysis.data.inputs.load_inputs`).
    perimeter : ``label``, ``core``, or None for both.
    population_vintage : census year of the EPCI populations (default vintage if None).
    data_dir : data folder of the derived tables (the package's if None).

    Returns
    -------
    DataFrame with :data:`COLUMNS`: ``commune_code`` and ``commune_name`` are the cited
    places in the EPCI (``;``-separated; for ``core``, the main cities), ``population`` the
    EPCI's population municipale (the sum over its communes of the vintage, as in the
    derived table ``territory_population``), ``source_ids`` the label sources and the
    geography.

    Raises
    ------
    ParameterError
        When `perimeter` or `population_vintage` is not allowed.
    """
    vintage = rules.population_vintage(population_vintage)
    p = inputs.perimeters
    p = p[p["census_year"] == vintage]
    if perimeter is not None:
        p = p[p["perimeter"] == rules.perimeter(perimeter)]
    communes = datasets.load_derived("communes", data_dir)
    communes = communes[communes["census_year"] == vintage]
    names = dict(zip(communes["commune_code"], communes["commune_name"], strict=True))
    # the EPCI's population: its communes' (as in the derived table territory_population)
    current = communes[communes["commune_type"] == "commune-actuelle"]
    epci_population = current.groupby("epci_siren")["population_municipale"].sum()
    codes = p["anchor_communes"].fillna("").str.split(";")
    out = pd.DataFrame(
        {
            "territory_id": p["territory_id"],
            "perimeter": p["perimeter"],
            "epci_siren": p["epci_siren"],
            "epci_name": p["epci_name"],
            "commune_code": codes.str.join(";"),
            "commune_name": [";".join(names.get(c, "") for c in cs if c) for cs in codes],
            "population": p["epci_siren"].map(epci_population).astype("Int64"),
            "census_year": p["census_year"],
            "source_ids": p["source_ids"],
        }
    )
    order = {t: i for i, t in enumerate(territories.CAPITALE_IDS)}
    out = out.assign(_o=out["territory_id"].map(order)).sort_values(
        ["_o", "perimeter", "epci_siren"]
    )
    return out.drop(columns="_o").reset_index(drop=True)[COLUMNS]


def totals(frame: pd.DataFrame) -> pd.DataFrame:
    """Per capital and perimeter: the number of EPCIs and their total population."""
    return (
        frame.groupby(["territory_id", "perimeter"], sort=False)
        .agg(epcis=("epci_siren", "nunique"), population=("population", "sum"))
        .reset_index()
    )
