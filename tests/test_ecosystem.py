"""Index inputs from the catalogue: values by hand, exclusions listed, nothing imputed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.analyses import ecosystem
from analysis.core.tidy import join_sources
from analysis.methods import coverage


def test_population_growth_by_hand(inputs):
    g = ecosystem.population_growth(inputs).set_index("territory_id")
    # Aix-Marseille: 1 873 707 (2016) -> 1 939 077 (2023)
    assert g.loc["aix-marseille", "value"] == pytest.approx(
        ((1_939_077 / 1_873_707) ** (1 / 7) - 1) * 100
    )
    assert g.loc["lille", "perimeter_note"] == "perimeter changed: +5 communes"
    assert g.loc["aix-marseille", "perimeter_note"] == ""


def test_index_inputs_exclude_rather_than_impute(inputs):
    frame, excluded = ecosystem.index_inputs(inputs, 2023)
    assert excluded == {
        "paris": "no cited fdi_decisions for ile-de-france in 2019-2024",
        "bordeaux": "no cited ey_fdi_projects for nouvelle-aquitaine in 2019-2024",
    }
    per = frame.groupby("territory_id")["indicator"].nunique()
    assert len(per) == 11 and per.eq(len(ecosystem.INDICATORS)).all()
    assert not set(excluded) & set(frame["territory_id"])
    assert frame["value"].notna().all()


def test_regional_decisions_per_100k_by_hand(inputs):
    """Provence-Alpes-Côte d'Azur, Business France decisions 2019-2024: 97, 77, 96, 124, 117,
    125 over 5,218,960 inhabitants (2023). Mean 106; var 365.6 (ddof 1); Poisson term 106."""
    frame, _ = ecosystem.index_inputs(inputs, 2023)
    f = frame[frame["indicator"] == "fdi_decisions_per_100k"].set_index("territory_id")
    scale = 1e5 / 5_218_960
    assert f.loc["aix-marseille", "value"] == pytest.approx(106 * scale)
    assert f.loc["aix-marseille", "sd"] == pytest.approx(scale * np.sqrt(365.6 / 6 + 106 / 6))
    # the Riviera shares the region, so it shares the value
    assert f.loc["riviera", "value"] == f.loc["aix-marseille", "value"]


def test_population_growth_sd_is_half_the_gap_between_perimeters(inputs):
    pop = inputs.capitals.set_index(["territory_id", "perimeter", "census_year"])
    p = pop["population_municipale"].astype(float)

    def growth(perimeter):
        return ((p[("est", perimeter, 2023)] / p[("est", perimeter, 2016)]) ** (1 / 7) - 1) * 100

    frame, _ = ecosystem.index_inputs(inputs, 2023, "label")
    g = frame[frame["indicator"] == "population_growth"].set_index("territory_id")
    assert g.loc["est", "value"] == pytest.approx(growth("label"))
    assert g.loc["est", "sd"] == pytest.approx(abs(growth("label") - growth("core")) / 2)
    assert g.loc["aix-marseille", "sd"] == 0.0  # one EPCI under both perimeters


def test_register_counts_are_added_over_the_perimeter_counted(inputs):
    reg = pd.DataFrame(
        {
            "territory_id": ["aix-marseille", "toulouse", "brest"],
            "indicator": "startups_register",
            "year": 2024,
            "value": [1000.0, 1200.0, 100.0],
            "unit": "start-ups",
            "source_ids": "register",
        }
    )
    frame, excluded = ecosystem.index_inputs(inputs, 2023, "label", register=reg)
    dens = frame[frame["indicator"] == "startups_per_100k"].set_index("territory_id")
    # Brest+ (label): Brest, Quimper, Morlaix and Lannion, 484,562 inhabitants
    assert dens.loc["brest", "value"] == pytest.approx(100 / 484_562 * 1e5)
    assert dens["sd"].isna().all()
    assert excluded["lille"] == "no register count" and "brest" not in excluded
    core, _ = ecosystem.index_inputs(inputs, 2023, "core", register=reg)
    dens = core[core["indicator"] == "startups_per_100k"].set_index("territory_id")
    assert dens.loc["brest", "value"] == pytest.approx(100 / 215_278 * 1e5)


def test_coverage_matrix_counts_sources_and_shows_gaps(inputs):
    facts = inputs.facts
    m = coverage.coverage_matrix(facts, ["aix-marseille"])
    row = m.loc[("aix-marseille", "implantations")]
    assert row["2024"] == 0  # missing stays missing
    assert row["2017"] == 5  # five articles give the 2017 count
    fam = coverage.by_family(facts).set_index("family")
    assert fam.loc["Business France: foreign investment decisions", "first_year"] == 2014
    assert join_sources("b;a", ["a", "c"]) == "a;b;c"
