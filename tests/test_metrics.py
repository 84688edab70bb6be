"""Metrics: known answers worked from the sources' own figures, and the errors they raise."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis.core.errors import InsufficientDataError, ParameterError
from analysis.data import datasets
from analysis.methods import metrics

SEED = "investinprovence-capitale-french-tech-2019"


@pytest.fixture(scope="module")
def facts() -> pd.DataFrame:
    return datasets.load_facts()


def seed(facts, indicator: str) -> pd.DataFrame:
    return facts[(facts["source_id"] == SEED) & (facts["indicator"] == indicator)]


def tidy(rows, indicator="x", unit="u", territory="aix-marseille"):
    return pd.DataFrame(
        [(territory, indicator, y, v, unit, f"src-{y}") for y, v in rows],
        columns=["territory_id", "indicator", "year", "value", "unit", "source_id"],
    )


def test_files_examined_growth_and_cagr_from_the_seed_article(facts):
    # "68 dossiers de startuppers [en 2018] contre 32 en 2015": +112.5 %, CAGR 28.57 %/year
    s = seed(facts, "startup_files_examined")
    g = metrics.growth(s, 2015, 2018)
    c = metrics.cagr(s, 2015, 2018)
    assert g["value"].iloc[0] == pytest.approx(112.5)
    # (68 / 32) ** (1 / 3) - 1 = 28.564 %; the "28.57 %" is that value, rounded up
    assert c["value"].iloc[0] == pytest.approx(28.564, abs=1e-3)
    assert c["value"].iloc[0] == pytest.approx(28.57, abs=0.01)
    assert g["source_ids"].iloc[0] == SEED
    assert c["unit"].iloc[0] == "percent per year"


def test_cables_doubling_over_four_years(facts):
    # 18 cables in 2019 after doubling in four years: (18 / 9) ** (1/4) - 1 = 18.92 %
    cables = seed(facts, "submarine_cables")
    assert cables["value"].iloc[0] == 18
    assert round(metrics.cagr_rate(2.0, 4), 2) == 18.92
    assert metrics.cagr_rate(18 / 9, 2019 - 2015) == pytest.approx(metrics.cagr_rate(2.0, 4))


def test_jobs_per_implantation_since_2015(facts):
    # "une centaine d'implantations représentant 1990 emplois": 19.9 jobs per implantation
    jobs = seed(facts, "jobs_since_2015")
    impl = seed(facts, "implantations_since_2015")
    r = metrics.jobs_per_project(jobs, impl)
    assert r["value"].iloc[0] == pytest.approx(19.9)
    assert r["unit"].iloc[0] == "jobs per project"


def test_density_per_100k_by_hand():
    counts = tidy([(2019, 800)], "startups_declared", "start-ups")
    pop = pd.DataFrame(
        {
            "territory_id": ["aix-marseille"],
            "census_year": [2016],
            "population_municipale": [1_873_707],
            "source_id": ["geo"],
        }
    )
    d = metrics.density(counts, pop)
    assert d["value"].iloc[0] == pytest.approx(800 / 1_873_707 * 100_000)  # 42.70
    assert d["indicator"].iloc[0] == "startups_declared_per_100k"
    assert "(population municipale 2016)" in d["unit"].iloc[0]
    assert d["source_ids"].iloc[0] == "geo;src-2019"


def test_density_refuses_mixed_vintages_and_bad_population():
    counts = tidy([(2019, 800)])
    two = pd.DataFrame(
        {
            "territory_id": ["aix-marseille"] * 2,
            "census_year": [2016, 2023],
            "population_municipale": [1, 2],
            "source_id": ["g", "g"],
        }
    )
    with pytest.raises(ParameterError, match=r"several census years \[.*2016.*2023.*\]"):
        metrics.density(counts, two)
    zero = two.iloc[:1].assign(population_municipale=0)
    with pytest.raises(ParameterError, match="must be > 0"):
        metrics.density(counts, zero)


def test_shares_and_units():
    part = tidy([(2021, 25)], "digital_implantations", "projects")
    whole = tidy([(2021, 83)], "implantations", "projects", "france")
    s = metrics.share_of(part, whole, "digital_share")
    assert s["value"].iloc[0] == pytest.approx(25 / 83 * 100)
    with pytest.raises(ParameterError, match="part is in 'jobs' but whole is in 'projects'"):
        metrics.share_of(tidy([(2021, 1)], unit="jobs"), whole, "x")


def test_share_of_france():
    part = tidy(
        [(2019, 97), (2020, 77)], "fdi_decisions", "decisions", "provence-alpes-cote-d-azur"
    )
    whole = tidy([(2019, 1468), (2020, 1215)], "fdi_decisions", "decisions", "france")
    s = metrics.share_of(part, whole, "share_of_france")
    assert s["territory_id"].unique().tolist() == ["provence-alpes-cote-d-azur"]
    assert s["value"].tolist() == pytest.approx([97 / 1468 * 100, 77 / 1215 * 100])


def test_errors_say_what_is_wrong():
    s = tidy([(2015, 32), (2018, 68)])
    with pytest.raises(
        InsufficientDataError, match="no value for 2016; years with data: 2015, 2018"
    ):
        metrics.growth(s, 2016, 2018)
    with pytest.raises(ParameterError, match="end year 2015 must be after start year 2018"):
        metrics.cagr(s, 2018, 2015)
    with pytest.raises(ParameterError, match="positive number of years"):
        metrics.cagr_rate(2.0, 0)
    nan = s.assign(value=[math.nan, 68.0])
    with pytest.raises(ParameterError, match="NaN in a required column"):
        metrics.growth(nan, 2015, 2018)
    mixed = pd.concat([s, tidy([(2019, 1)], unit="v")])
    with pytest.raises(ParameterError, match="mixed units"):
        metrics.growth(mixed, 2015, 2018)
