"""`analysis indicators` and `analysis data list`: values, sources on every row, formats."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from analysis import cli
from analysis.data import datasets


def run(capsys, *argv) -> str:
    assert cli.main(list(argv)) == 0
    return capsys.readouterr().out


def test_indicators_csv_for_aix_marseille(capsys):
    df = pd.read_csv(
        io.StringIO(run(capsys, "indicators", "--territory", "aix-marseille", "--format", "csv"))
    )
    assert list(df.columns) == [
        "territory_id",
        "indicator",
        "year",
        "value",
        "unit",
        "source_ids",
        "ci_low",
        "ci_high",
    ]
    assert set(df["territory_id"]) == {"aix-marseille"}
    assert df["source_ids"].notna().all() and (df["source_ids"].str.len() > 0).all()
    rows = df.set_index(["indicator", "year"])
    pop = (
        datasets.load_territory_population(2023)
        .set_index("territory_id")
        .loc["aix-marseille", "population_municipale"]
    )
    assert rows.loc[("population_municipale", 2023), "value"] == pop == 1_939_077
    # 800 declared start-ups (2019) per 100,000 inhabitants of the 2023 census: 41.26
    dens = rows.loc[("startups_declared_per_100k", 2019)]
    assert dens["value"] == pytest.approx(800 / 1_939_077 * 1e5, rel=1e-9)
    assert "population municipale 2023" in dens["unit"]
    assert (
        dens["source_ids"]
        == "etalab-decoupage-administratif-6.0.0;investinprovence-capitale-french-tech-2019"
    )
    # Provence Promotion implantations: 63 in 2014 (La Tribune) to 71 in 2023 (the agency)
    growth = rows.loc[("implantations_growth_2014_2023", 2023), "value"]
    assert growth == pytest.approx((71 / 63 - 1) * 100, rel=1e-9)
    # modelled rows carry their interval
    trend = rows.loc[("implantations_trend_growth", 2023)]
    assert trend["ci_low"] < trend["value"] < trend["ci_high"]
    assert rows.loc[("jobs_per_project", 2019), "value"] == pytest.approx(1935 / 80)
    oe = rows.loc[("startups_declared_observed_to_expected", 2019)]
    assert oe["ci_low"] < oe["value"] < oe["ci_high"]
    rank = rows.loc[("ecosystem_index_median_rank", 2023)]
    assert rank["ci_low"] <= rank["value"] <= rank["ci_high"]
    assert rows.loc[("ey_projects_share_of_region", 2022), "value"] == pytest.approx(42 / 82 * 100)


def test_indicators_vintage_2016_uses_the_2016_population(capsys):
    out = run(
        capsys,
        "indicators",
        "--territory",
        "aix-marseille",
        "--format",
        "json",
        "--population-vintage",
        "2016",
    )
    rows = json.loads(out)
    pop = next(r for r in rows if r["indicator"] == "population_municipale")
    assert pop["year"] == 2016 and pop["value"] == 1_873_707
    dens = next(r for r in rows if r["indicator"] == "startups_declared_per_100k")
    assert dens["value"] == pytest.approx(800 / 1_873_707 * 1e5, rel=1e-9)


def test_indicators_all_territories_cover_the_13_capitals(capsys):
    df = pd.read_csv(io.StringIO(run(capsys, "indicators", "--format", "csv")))
    pops = df[df["indicator"] == "population_municipale"]
    assert len(pops) >= 13 + 1
    assert {"paris", "lyon-saint-etienne", "france", "provence-alpes-cote-d-azur"} <= set(
        pops["territory_id"]
    )


def test_data_list_markdown_has_one_row_per_source(capsys):
    out = run(capsys, "data", "list", "--markdown")
    n = len([p for p in (datasets.data_root() / "raw").iterdir() if p.is_dir()])
    assert out.count("\n| [") == n
