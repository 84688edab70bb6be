"""Sound comparisons: perimeters, counts over matching populations, one headline per key,
and an index with enough comparable inputs.

Known answers come from the committed data: populations from the derived tables (sums over
the communes of INSEE's geography), counts from the cited facts.
"""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from analysis import cli
from analysis.analyses import density, ecosystem, headline, perimeters
from analysis.core import territories

PER = 100_000


@pytest.fixture(scope="module")
def everything(inputs) -> headline.Headline:
    """The headline results of every territory (computed once for the module)."""
    return headline.headline(inputs)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- perimeters


def test_territories_lists_both_perimeters_of_all_13_capitals_each_epci_cited(capsys):
    code, out, err = run(capsys, "territories", "--format", "csv")
    assert code == 0, err
    t = pd.read_csv(io.StringIO(out), dtype={"epci_siren": str, "commune_code": str})
    assert list(t.columns) == perimeters.COLUMNS
    for perimeter in ("label", "core"):
        part = t[(t["perimeter"] == perimeter) & (t["census_year"] == 2023)]
        assert set(part["territory_id"]) == set(territories.CAPITALE_IDS), perimeter
    # every label EPCI is cited by a source other than the geography itself
    label = t[t["perimeter"] == "label"]
    cited = (
        label["source_ids"]
        .str.split(";")
        .map(lambda ids: [i for i in ids if not i.startswith("etalab-decoupage-administratif")])
    )
    assert cited.map(len).gt(0).all(), label.loc[cited.map(len).eq(0), "epci_siren"].tolist()
    assert t["epci_siren"].str.fullmatch(r"\d{9}").all()


@pytest.mark.parametrize(
    ("capital", "label_epcis"),
    [
        # Brest+ = Brest, Quimper, Morlaix, Lannion
        ("brest", {"242900314", "200068120", "242900835", "200065928"}),
        # French Tech East = Metz, Nancy, Strasbourg
        ("est", {"200039865", "245400676", "246700488"}),
        # Riviera = Nice, Sophia Antipolis, Cannes, Grasse
        ("riviera", {"200030195", "240600585", "200039915", "200039857"}),
    ],
)
def test_label_perimeters_hold_the_places_the_label_names(inputs, capital, label_epcis):
    t = perimeters.listing(inputs, "label")
    assert set(t.loc[t["territory_id"] == capital, "epci_siren"]) == label_epcis
    core = perimeters.listing(inputs, "core")
    assert set(core.loc[core["territory_id"] == capital, "epci_siren"]) < label_epcis


def test_perimeter_population_is_the_sum_of_its_epcis(inputs):
    totals = perimeters.totals(perimeters.listing(inputs))
    pop = inputs.population(2023, "label").set_index("territory_id")["population_municipale"]
    label = totals[totals["perimeter"] == "label"].set_index("territory_id")["population"]
    assert (label == pop.reindex(label.index)).all()
    # Brest+ by hand: Brest 215,278 + Quimper 102,542 + Morlaix 65,713 + Lannion 101,029
    assert label["brest"] == 215_278 + 102_542 + 65_713 + 101_029 == 484_562


# ----------------------------------------------------------------------------- densities


def test_no_density_divides_a_count_by_another_areas_population(inputs):
    """Every declared count: either divided by the population of the perimeter it counts, or
    not divided at all (another zone, or an area the source does not state)."""
    table = density.declared_table(inputs)
    counts = table[table["indicator"] == density.DECLARED]
    assert len(counts) >= 15
    chosen, alternatives = density.declared_by_year(inputs)
    dens = density.per_own_area(inputs, chosen, 2023)
    pops = {
        p: inputs.population(2023, p).set_index("territory_id")["population_municipale"]
        for p in territories.PERIMETERS
    }
    pops["france"] = pops["label"]  # France's own row, the same under both perimeters
    for row in dens.itertuples():
        count = chosen[(chosen["territory_id"] == row.territory_id) & (chosen["year"] == row.year)]
        assert len(count) == 1
        area = count["area"].iloc[0]
        assert area in (*territories.PERIMETERS, "france"), (row.territory_id, area)
        assert (area == "france") == (row.territory_id == "france")
        want = count["value"].iloc[0] / pops[area][row.territory_id] * PER
        assert row.value == pytest.approx(want, rel=1e-12)
        if area != "france":
            assert f"{area} perimeter" in row.unit
    # every count of another or unstated area is an alternative with its reason
    other = counts[
        ~counts["area"].isin(territories.PERIMETERS) & (counts["territory_id"] != "france")
    ]
    assert len(other) > 0
    alt = alternatives.set_index(["territory_id", "year", "source_id"])
    for row in other.itertuples():
        reason = alt.loc[(row.territory_id, row.year, row.source_id), "reason"]
        assert "area" in str(reason)


def test_the_alps_680_are_not_divided_by_a_population_that_excludes_chambery_and_geneva(
    inputs, everything
):
    """The 2021 barometer counts five poles, the Genevois français included (6 %), whose EPCIs
    no source names: it is shown apart, not divided by the label perimeter's population."""
    _, alternatives = density.declared_by_year(inputs)
    alps = alternatives[(alternatives["territory_id"] == "alps") & (alternatives["year"] == 2021)]
    assert alps["value"].tolist() == [680]
    assert "Genevois" in alps["reason"].iloc[0]
    ind = everything.indicators
    d = ind[(ind["territory_id"] == "alps") & (ind["indicator"] == "startups_declared_per_100k")]
    assert 2021 not in set(d["year"])
    # the 2019 count of 600 covers the label perimeter: 600 / 1,032,628 * 100,000
    assert d.set_index("year").loc[2019, "value"] == pytest.approx(600 / 1_032_628 * PER)


def test_toulouse_has_one_headline_per_year_and_the_others_as_alternatives(everything):
    ind = everything.indicators
    d = ind[
        (ind["territory_id"] == "toulouse") & (ind["indicator"] == "startups_declared_per_100k")
    ]
    assert d["year"].is_unique
    # 900 start-ups of the metropole (core perimeter), 2022: 900 / 841,524 * 100,000
    assert d.set_index("year").loc[2022, "value"] == pytest.approx(900 / 841_524 * PER)
    alt = everything.alternatives
    alt = alt[alt["territory_id"] == "toulouse"]
    assert set(alt.loc[alt["year"] == 2022, "value"]) == {300}


def test_indicators_all_has_no_duplicated_territory_indicator_and_year(capsys):
    code, out, err = run(capsys, "indicators", "--territory", "all", "--format", "csv")
    assert code == 0, err
    t = pd.read_csv(io.StringIO(out))
    assert not t.duplicated(["territory_id", "indicator", "year"]).any()
    # the seed's CAGR of start-up files examined, (68 / 32) ** (1 / 3) - 1
    cagr = t[t["indicator"] == "startup_files_examined_cagr_2015_2018"]
    assert cagr["value"].iloc[0] == pytest.approx(((68 / 32) ** (1 / 3) - 1) * 100)
    assert "investinprovence-capitale-french-tech-2019" in cagr["source_ids"].iloc[0]


def test_alternatives_list_each_value_with_its_source_and_reason(capsys):
    code, out, err = run(capsys, "indicators", "--alternatives", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert rows and all(r["source_id"] and r["reason"] for r in rows)


# ----------------------------------------------------------------------------- index


def test_index_ranks_at_least_11_capitals_on_at_least_5_indicators(capsys):
    code, out, err = run(capsys, "index", "--format", "csv")
    assert code == 0, err
    t = pd.read_csv(io.StringIO(out))
    assert list(t.columns)[:5] == [
        "territory_id",
        "median_rank",
        "rank_low",
        "rank_high",
        "n_indicators",
    ]
    assert len(t) >= 11 and (t["n_indicators"] >= 5).all()
    assert ((t["rank_low"] <= t["median_rank"]) & (t["median_rank"] <= t["rank_high"])).all()
    assert "not ranked" in err  # the capitals left out are named


def test_index_intervals_carry_the_inputs_uncertainty_not_only_the_weights(inputs):
    """With the weights and the normalisation fixed, the inputs' sd alone widens the rank
    intervals: the uncertainty is not the weights' alone."""
    from analysis.methods import composite_index

    frame, _ = ecosystem.index_inputs(inputs, 2023, "label")
    assert frame["sd"].gt(0).sum() >= 3 * frame["territory_id"].nunique()
    mc = composite_index.monte_carlo(
        frame,
        n_draws=300,
        seed=1,
        concentration=None,
        normalisations=("minmax",),
        sensitivity=False,
    )
    width = mc.ranks["rank_high"] - mc.ranks["rank_low"]
    assert width.gt(0).sum() >= 4
    fixed = composite_index.monte_carlo(
        frame.assign(sd=0.0),
        n_draws=50,
        seed=1,
        concentration=None,
        normalisations=("minmax",),
        sensitivity=False,
    )
    assert (fixed.ranks["rank_high"] == fixed.ranks["rank_low"]).all()


def test_index_inputs_input_table_has_sources(capsys):
    code, out, err = run(capsys, "index", "--inputs", "--format", "csv")
    assert code == 0, err
    t = pd.read_csv(io.StringIO(out))
    assert set(t["indicator"]) == set(ecosystem.INDICATORS)
    assert t["source_ids"].notna().all()
