"""INSEE geography tables: known answers from published figures, arrondissements, vintages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.core import territories
from analysis.core.checksums import sha256_file
from analysis.core.errors import ChecksumError, DataError, ParameterError
from analysis.data import datasets, geography

from .conftest import ROOT


@pytest.fixture(scope="module")
def pop_both() -> pd.DataFrame:
    return datasets.load_derived("territory_population")


@pytest.fixture(scope="module")
def pop(pop_both) -> pd.DataFrame:
    """The core perimeters (the EPCIs of the main cities)."""
    return pop_both[pop_both["perimeter"] == "core"]


@pytest.fixture(scope="module")
def communes() -> pd.DataFrame:
    return datasets.load_derived("communes")


def _value(df: pd.DataFrame, **where) -> int:
    sel = df
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, where
    return int(sel["population_municipale"].iloc[0])


def test_every_capital_has_a_population_in_both_vintages(pop):
    for year in (2016, 2023):
        got = set(pop.loc[pop["census_year"] == year, "territory_id"])
        assert got == set(territories.CAPITALE_IDS)


def test_aix_marseille_2016_equals_the_published_metropole_population(pop):
    # "la seconde plus peuplée de France avec 1 873 707 habitants" (fr.wikipedia, Marseille,
    # oldid 197528838), the 2016 population municipale of the Métropole d'Aix-Marseille-Provence.
    assert _value(pop, territory_id="aix-marseille", census_year=2016) == 1_873_707


def test_france_2023_matches_insee_hors_mayotte():
    # "Au 1er janvier 2023, la population officielle de la France (hors Mayotte) s'élève à
    # 68.094.000 habitants" (banquedesterritoires.fr, 18 Dec 2025), rounded to the thousand.
    reg = datasets.load_derived("region_population")
    france = _value(reg, territory_id="france", census_year=2023)
    assert round(france, -3) == 68_094_000


def test_paca_2023_matches_insee():
    # "La Région compte aujourd'hui 5 218 960 habitants" (destimed.fr, INSEE 2023 populations)
    reg = datasets.load_derived("region_population")
    assert _value(reg, territory_id="provence-alpes-cote-d-azur", census_year=2023) == 5_218_960


def test_marseille_2023_and_2016(communes):
    # "Marseille compte 886 040 habitants" (destimed.fr, 2023); "862 211 hab. (2016" (fr.wikipedia)
    assert _value(communes, commune_code="13055", census_year=2023) == 886_040
    assert _value(communes, commune_code="13055", census_year=2016) == 862_211


def test_regions_and_france_are_missing_for_2016_not_patched():
    reg = datasets.load_derived("region_population")
    assert set(reg["census_year"]) == {2023}
    with pytest.raises(Exception, match="france"):
        from analysis.methods import metrics

        counts = pd.DataFrame(
            [["france", "x", 2016, 1.0, "u", "s"]],
            columns=["territory_id", "indicator", "year", "value", "unit", "source_id"],
        )
        metrics.density(counts, datasets.load_territory_population(2016))


@pytest.mark.parametrize(
    ("codes", "parent", "territory"),
    [
        ([f"751{i:02d}" for i in range(1, 21)], "75056", "paris"),
        ([f"6938{i}" for i in range(1, 10)], "69123", "lyon-saint-etienne"),
        ([f"132{i:02d}" for i in range(1, 17)], "13055", "aix-marseille"),
    ],
)
def test_arrondissements_map_to_their_commune_epci_and_territory(
    communes, codes, parent, territory
):
    from analysis.data.register import lookup

    geo = {year: lookup.load_geography(year) for year in (2016, 2023)}
    for year in (2016, 2023):
        c = communes[communes["census_year"] == year].set_index("commune_code")
        for code in codes:
            assert c.loc[code, "commune_type"] == "arrondissement-municipal"
            assert c.loc[code, "parent_commune_code"] == parent
            assert c.loc[code, "epci_siren"] == c.loc[parent, "epci_siren"]
            assert geo[year].unit(code, "territory") == territory
            assert territories.commune_of(code) == parent
        # the arrondissements add up to their commune
        assert c.loc[codes, "population_municipale"].sum() == c.loc[parent, "population_municipale"]


def test_lille_keeps_its_epci_across_a_siren_change(pop):
    # The Métropole Européenne de Lille changed SIREN between the 2019 and 2026 geographies.
    p = pop.set_index(["territory_id", "census_year"])
    assert p.loc[("lille", 2016), "epci_sirens"] == "245900410"
    assert p.loc[("lille", 2023), "epci_sirens"] == "200093201"


def test_multi_epci_capitals(pop):
    p = pop[pop["census_year"] == 2023].set_index("territory_id")
    assert p.loc["alps", "epci_sirens"] == "200040715;200068781;200066793"
    assert p.loc["riviera", "epci_sirens"] == "200030195;240600585"
    assert p.loc["rennes-saint-malo", "epci_sirens"] == "243500139;243500782"
    assert p.loc["lyon-saint-etienne", "epci_sirens"] == "200046977;244200770"


def test_label_perimeters_add_the_places_the_label_names(pop_both):
    p = pop_both[pop_both["census_year"] == 2023].set_index(["territory_id", "perimeter"])
    # Brest+: Brest, Quimper, Morlaix and Lannion
    assert set(p.loc[("brest", "label"), "epci_sirens"].split(";")) == {
        "242900314",
        "200068120",
        "242900835",
        "200065928",
    }
    assert p.loc[("brest", "core"), "epci_sirens"] == "242900314"
    # capitals whose label names no other place keep one perimeter
    assert (
        p.loc[("lille", "label"), "population_municipale"]
        == p.loc[("lille", "core"), "population_municipale"]
    )


@pytest.mark.parametrize("perimeter", ["label", "core"])
def test_2023_capital_total_is_the_sum_of_its_communes(pop_both, communes, perimeter):
    c = communes[
        (communes["census_year"] == 2023) & (communes["commune_type"] == "commune-actuelle")
    ]
    t = datasets.load_derived("territories")
    t = t[(t["census_year"] == 2023) & (t["perimeter"] == perimeter)]
    c = c.merge(t[["epci_siren", "territory_id"]], on="epci_siren")
    sums = c.groupby("territory_id")["population_municipale"].sum()
    p = pop_both[(pop_both["census_year"] == 2023) & (pop_both["perimeter"] == perimeter)]
    p = p.set_index("territory_id")["population_municipale"]
    pd.testing.assert_series_equal(
        sums.sort_index(), p.sort_index(), check_names=False, check_dtype=False
    )


def test_unknown_vintage_lists_the_available_ones():
    with pytest.raises(ParameterError, match="2020 is not allowed; choose one of 2016, 2023"):
        datasets.load_territory_population(2020)


def _tarballs_or_skip(tmp_data: Path) -> None:
    for v in geography.VINTAGES:
        src = geography.tarball_path(v)
        dst = geography.tarball_path(v, tmp_data)
        if src.is_file():
            shutil.copy(src, dst)
            continue
        if shutil.which("npm") is None:
            pytest.skip("npm absent and the INSEE geography tarballs are not downloaded")
        try:
            geography.fetch_tarball(v, tmp_data)
        except DataError as e:  # offline
            pytest.skip(f"cannot fetch {v.tarball_name}: {e}")


def test_build_reproduces_the_committed_derived_tables(data_copy):
    """The derived CSVs are a pure function of the tarballs: rebuilding gives the same bytes."""
    _tarballs_or_skip(data_copy)
    for p in (data_copy / "derived").glob("*"):
        p.unlink()
    geography.build(data_copy)
    for name in geography.DERIVED_TABLES:
        committed = ROOT / "data" / "derived" / f"{name}.csv"
        rebuilt = data_copy / "derived" / f"{name}.csv"
        assert sha256_file(rebuilt) == sha256_file(committed), name


def test_build_with_a_corrupt_tarball_writes_nothing(data_copy):
    _tarballs_or_skip(data_copy)
    tgz = geography.tarball_path(geography.VINTAGES[0], data_copy)
    data = bytearray(tgz.read_bytes())
    data[100] ^= 0xFF
    tgz.write_bytes(bytes(data))
    before = {p.name: p.read_bytes() for p in (data_copy / "derived").iterdir()}
    with pytest.raises(ChecksumError, match="differs from its sidecar"):
        geography.build(data_copy)
    after = {p.name: p.read_bytes() for p in (data_copy / "derived").iterdir()}
    assert before == after


def test_the_register_lookup_reads_quoted_tables_the_same(data_copy):
    """The register's lookup splits an unquoted derived table by lines and commas (the
    communes table: 74,000 records) and parses any other with the csv module: the same table
    with one name quoted, a comma inside, gives the same geography, that name included."""
    from analysis.data.register import lookup

    from .conftest import reseal

    plain = lookup.load_geography(2023, data_copy, "label")
    communes = data_copy / "derived" / "communes.csv"
    text = communes.read_text("utf-8")
    assert '"' not in text and text.count(",Marseille,") == 2  # one row per vintage
    communes.write_text(text.replace(",Marseille,", ',"Marseille, quoted",'), "utf-8")
    reseal(communes)
    quoted = lookup.load_geography(2023, data_copy, "label")
    assert quoted.codes == plain.codes and quoted.territory_of_epci == plain.territory_of_epci
    assert quoted.level_names["epci"] == plain.level_names["epci"]
    names, before = dict(quoted.names("commune")), dict(plain.names("commune"))
    assert before["13055"] == "Marseille" and names.pop("13055") == "Marseille, quoted"
    assert names == {k: v for k, v in before.items() if k != "13055"}
    assert lookup.geography_vintage(None, data_copy) == 2023


@pytest.mark.parametrize("layout", ["shuffled", "blank_lines", "two_geographies"])
def test_the_register_lookup_reads_an_ungrouped_communes_table_the_same(data_copy, layout):
    """The lookup finds one census year's records as one block of bytes when the communes
    table is grouped by year (as `analysis data build` writes it). Records in any order, or
    blank lines among them, give the same geography and vintages; a census year with two
    geographies is still refused."""
    import random

    from analysis.data.register import lookup

    from .conftest import reseal

    plain = {v: lookup.load_geography(v, data_copy, "label") for v in (2016, 2023)}
    vintages = {a: lookup.geography_vintage(a, data_copy) for a in ("2017-01-01", "2025-06-30")}
    assert vintages == {"2017-01-01": 2016, "2025-06-30": 2023}
    communes = data_copy / "derived" / "communes.csv"
    header, *records = communes.read_text("utf-8").splitlines()
    if layout == "shuffled":
        random.Random(7).shuffle(records)
    elif layout == "blank_lines":
        records = [r for pair in zip(records, [""] * len(records), strict=True) for r in pair]
    else:  # one 2023 record claims the 2019 geography
        i = next(i for i, r in enumerate(records) if r.startswith("2023,2026,"))
        records[i] = records[i].replace("2023,2026,", "2023,2019,", 1)
    communes.write_text("\n".join([header, *records]) + "\n", "utf-8")
    reseal(communes)
    if layout == "two_geographies":
        with pytest.raises(DataError, match="census year 2023 has two geographies"):
            lookup.geography_vintage(None, data_copy)
        return
    assert {a: lookup.geography_vintage(a, data_copy) for a in vintages} == vintages
    for v, before in plain.items():
        after = lookup.load_geography(v, data_copy, "label")
        assert after.codes == before.codes and after.level_names == before.level_names
        assert len(after.codes) > 35_000
