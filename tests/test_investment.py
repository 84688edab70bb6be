"""Investment attraction: the series, ratios, shares and the seed article's claims."""

from __future__ import annotations

import pytest

from analysis.analyses import density, investment


@pytest.fixture(scope="module")
def aix(inputs):
    return investment.cited_series(inputs, "aix-marseille", (2014, 2024))


def test_series_pick_one_value_per_year_and_report_disagreements(aix):
    s, conflicts = aix
    impl = s[s["indicator"] == "implantations"].set_index("year")["value"]
    # 63 (La Tribune) beats "près de 70" (Journal des Entreprises) in 2014: exact before approximate
    assert impl[2014] == 63
    assert impl.loc[2015:2023].tolist() == [60, 60, 68, 75, 80, 65, 83, 77, 71]
    c14 = conflicts[(conflicts["indicator"] == "implantations") & (conflicts["year"] == 2014)]
    assert sorted(c14["value"]) == [63, 70] and c14["kept"].sum() == 1
    # 2021 jobs: 2 120 (three sources) beats 2 123 (one) and "more than 2100" (a lower bound)
    jobs = s[s["indicator"] == "jobs_created_or_maintained"].set_index("year")["value"]
    assert jobs[2021] == 2120


def test_missing_years_are_reported_not_filled(aix):
    s, _ = aix
    gaps = investment.missing_series(s, "aix-marseille", (2014, 2024)).set_index("indicator")
    assert gaps.loc["implantations", "missing_years"] == "2024"
    assert gaps.loc["fdi_decisions", "missing_years"] == "all (no figure for this territory)"
    assert 2016 not in set(s.loc[s["indicator"] == "jobs_created", "year"])


def test_jobs_per_project_by_hand(aix):
    s, _ = aix
    jpp = investment.jobs_per_project(s).set_index("year")["value"]
    assert jpp[2019] == pytest.approx(1935 / 80)
    assert jpp[2014] == pytest.approx(1263 / 63)


def test_shares_within_one_counter(inputs):
    sh = investment.shares_of_region_and_france(inputs, "aix-marseille", (2014, 2025))
    ey = sh[sh["indicator"] == "ey_projects_share_of_region"].set_index("year")["value"]
    assert ey[2022] == pytest.approx(42 / 82 * 100)  # EY: Marseille metropole 42 of PACA's 82
    assert ey[2024] == pytest.approx(36 / 72 * 100)
    bf = sh[sh["indicator"] == "fdi_decisions_share_of_france"].set_index("year")["value"]
    assert bf[2021] == pytest.approx(96 / 1607 * 100)  # Business France: PACA 96 of France 1 607


def test_seed_claims_are_recomputed(inputs):
    claims = investment.seed_claims(inputs).set_index("claim")
    files = claims.loc["Start-up files examined: 68 in 2018 against 32 in 2015"]
    assert files["recomputed_or_compared"] == "growth +112.5 %, CAGR 28.56 %/year"
    hundred = claims.loc["About a hundred implantations since 2015"]
    assert "sum to 263 over 2015-2018" in hundred["recomputed_or_compared"]  # 60 + 60 + 68 + 75
    assert hundred["verdict"].startswith("Does not match all implantations (2.6 times the claim)")
    jobs = claims.loc["1,990 jobs from those implantations since 2015"]
    assert "not computable" in jobs["recomputed_or_compared"]


def test_declared_density_uses_the_latest_count_and_lists_the_missing(inputs):
    d, missing = density.declared_density(inputs, 2024, 2023)
    tls = d.set_index("territory_id").loc["toulouse"]
    assert tls["year"] == 2022 and tls["value"] == pytest.approx(900 / 841_524 * 1e5)
    assert tls["area"] == "core"
    none = {"brest", "paris", "lille", "montpellier", "lyon-saint-etienne", "riviera"}
    assert set(missing) == none | {"bordeaux", "est", "rennes-saint-malo"}
    assert all(missing[t] == "no declared start-up count up to 2024" for t in none)
    assert missing["bordeaux"] == "its sources do not state the area they count"
    assert "Strasbourg" in missing["est"] and "Rennes area" in missing["rennes-saint-malo"]
    d19, _ = density.declared_density(inputs, 2019, 2016)
    assert d19.set_index("territory_id").loc["aix-marseille", "value"] == pytest.approx(
        800 / 1_873_707 * 1e5
    )
