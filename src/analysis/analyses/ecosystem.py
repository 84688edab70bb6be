"""Inputs of the composite ecosystem index, assembled from the catalogue.

Step 2 of the OECD/JRC handbook (selecting indicators) is a choice, made here and shown in
notebook 04. Only indicators that can be computed for the capitals from cited data are
used, and nothing is imputed (step 3): a capital without a value is left out of the index
and listed with the reason.

* ``startups_per_100k``: start-ups per 100,000 inhabitants. By default the latest declared
  count up to the reference year (:func:`analysis.analyses.density.latest_declared`), with a stated
  uncertainty ``sd`` = the standard deviation of the densities given by *all* the capital's
  published counts (declared, association members, observatories), i.e. how much the
  number moves with the definition. With register counts (SIRENE) the definition is
  common and exact, so no ``sd``.
* ``population_growth``: compound annual growth of the population municipale between the
  2016 and 2023 censuses, in percent per year. The two vintages use their own EPCI
  perimeters; capitals whose number of communes changed are flagged in ``perimeter_note``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.analyses import density
from analysis.core import rules, territories
from analysis.core.tidy import join_sources
from analysis.data.inputs import Inputs
from analysis.methods import metrics

#: The composite index's indicators, in the order of notebook 04's `weights` parameter.
INDICATORS: tuple[str, ...] = ("startups_per_100k", "population_growth")
#: The two census vintages population growth runs between.
FIRST_CENSUS, LAST_CENSUS = rules.POPULATION_VINTAGES[0], rules.POPULATION_VINTAGES[-1]


def population_growth(inputs: Inputs) -> pd.DataFrame:
    """CAGR of each capital's population municipale between the 2016 and 2023 censuses.

    ``value = ((P_2023 / P_2016) ** (1 / 7) - 1) * 100``, percent per year
    (:func:`analysis.methods.metrics.cagr_rate`).
    """
    pop = inputs.capitals
    a = pop[pop["census_year"] == FIRST_CENSUS].set_index("territory_id")
    b = pop[pop["census_year"] == LAST_CENSUS].set_index("territory_id")
    rows = []
    for tid in territories.CAPITALE_IDS:
        ratio = b.loc[tid, "population_municipale"] / a.loc[tid, "population_municipale"]
        changed = int(b.loc[tid, "n_communes"]) - int(a.loc[tid, "n_communes"])
        rows.append(
            {
                "territory_id": tid,
                "indicator": "population_growth",
                "value": metrics.cagr_rate(float(ratio), LAST_CENSUS - FIRST_CENSUS),
                "sd": np.nan,
                "unit": "percent per year",
                "source_ids": join_sources(a.loc[tid, "source_id"], b.loc[tid, "source_id"]),
                "perimeter_note": ""
                if changed == 0
                else f"perimeter changed: {changed:+d} communes",
            }
        )
    return pd.DataFrame(rows)


def startup_density(
    inputs: Inputs,
    reference_year: int,
    population_vintage: int,
    register: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Start-ups per 100,000 inhabitants, with `sd` where the definition is uncertain.

    Returns (rows, excluded capitals with the reason).
    """
    pop = inputs.population(population_vintage)
    if register is not None:
        d = metrics.density(register, pop)
        excluded = {
            t: "no register count"
            for t in territories.CAPITALE_IDS
            if t not in set(d["territory_id"])
        }
        return d.assign(indicator="startups_per_100k", sd=np.nan)[
            ["territory_id", "indicator", "value", "sd", "unit", "source_ids"]
        ], excluded
    d, missing = density.declared_density(inputs, reference_year, population_vintage)
    table = density.declared_table(inputs)
    table = table[
        table["territory_id"].isin(territories.CAPITALE_IDS) & (table["year"] <= reference_year)
    ]
    all_d = metrics.density(
        table.rename(columns={"source_id": "source_ids"}).assign(unit="start-ups"), pop
    )
    sd = all_d.groupby("territory_id")["value"].agg(
        lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else np.nan
    )
    out = d.assign(indicator="startups_per_100k", sd=d["territory_id"].map(sd))
    excluded = {t: f"no declared start-up count up to {reference_year}" for t in missing}
    return out[["territory_id", "indicator", "value", "sd", "unit", "source_ids"]], excluded


def index_inputs(
    inputs: Inputs,
    reference_year: int,
    population_vintage: int,
    register: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The index's input frame (territory_id, indicator, value, sd, unit, source_ids) for the
    capitals that have every indicator, and the capitals left out with the reason."""
    dens, excluded = startup_density(inputs, reference_year, population_vintage, register)
    growth = population_growth(inputs)
    keep = set(dens["territory_id"])
    frame = pd.concat(
        [dens, growth[growth["territory_id"].isin(keep)].drop(columns="perimeter_note")],
        ignore_index=True,
    )
    order = {t: i for i, t in enumerate(territories.CAPITALE_IDS)}
    frame = frame.sort_values(
        ["indicator", "territory_id"],
        key=lambda c: (
            c.map(order)
            if c.name == "territory_id"
            else c.map({k: i for i, k in enumerate(INDICATORS)})
        ),
    )
    return frame.reset_index(drop=True), excluded
