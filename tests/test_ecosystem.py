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
    frame, excluded = ecosystem.index_inputs(inputs, 2024, 2023)
    assert set(excluded) == {
        "brest",
        "paris",
        "lille",
        "montpellier",
        "lyon-saint-etienne",
        "riviera",
    }
    assert frame.groupby("territory_id")["indicator"].nunique().eq(2).all()
    assert not set(excluded) & set(frame["territory_id"])
    assert frame["value"].notna().all()


def test_startup_sd_is_the_spread_of_the_published_counts(inputs):
    frame, _ = ecosystem.index_inputs(inputs, 2024, 2023)
    dens = frame[frame["indicator"] == "startups_per_100k"].set_index("territory_id")
    # Aix-Marseille has one published count (800): no stated spread
    assert np.isnan(dens.loc["aix-marseille", "sd"])
    # Nantes: 350 (2020) and 300 (2021) over 689 456 inhabitants
    nantes = [350 / 689_456 * 1e5, 300 / 689_456 * 1e5]
    assert dens.loc["nantes", "sd"] == pytest.approx(np.std(nantes, ddof=1))


def test_register_counts_replace_declared_ones(inputs):
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
    frame, excluded = ecosystem.index_inputs(inputs, 2024, 2023, register=reg)
    dens = frame[frame["indicator"] == "startups_per_100k"].set_index("territory_id")
    assert dens.loc["brest", "value"] == pytest.approx(100 / 215_278 * 1e5)
    assert dens["sd"].isna().all()
    assert "paris" in excluded and "brest" not in excluded


def test_coverage_matrix_counts_sources_and_shows_gaps(inputs):
    facts = inputs.facts
    m = coverage.coverage_matrix(facts, ["aix-marseille"])
    row = m.loc[("aix-marseille", "implantations")]
    assert row["2024"] == 0  # missing stays missing
    assert row["2017"] == 5  # five articles give the 2017 count
    fam = coverage.by_family(facts).set_index("family")
    assert fam.loc["Business France: foreign investment decisions", "first_year"] == 2014
    assert join_sources("b;a", ["a", "c"]) == "a;b;c"
