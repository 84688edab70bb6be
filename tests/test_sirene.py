"""`analysis sirene`: exact counts on SYNTHETIC-TEST-DATA against the generator's own truth.

The files come from analysis.data.register.testdata (20,000 rows, official layout). The expected
counts are computed from the generator's arrays with numpy/pandas and mapped to communes,
EPCIs and territories here, independently of analysis.data.register's own mapping.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from analysis import cli
from analysis.core import paths as config
from analysis.core import rules
from analysis.core.errors import DataError, ParameterError
from analysis.data import register as sirene
from analysis.data.register import cache as register_cache
from analysis.data.register import testdata as td

ROOT = config.project_root()
AS_OF = dt.date(2025, 12, 31)
YOUNG = 3
N_ROWS = 20_000
SEED = 7


@pytest.fixture(scope="module")
def stock(tmp_path_factory) -> td.SyntheticStock:
    d = tmp_path_factory.mktemp("sirene-data")
    return td.generate_stock(
        d,
        N_ROWS,
        seed=SEED,
        formats=("csv", "zip", "parquet"),
        legal_units=True,
        legal_unit_formats=("csv", "zip", "parquet"),
        chunk_rows=7_000,
    )


@pytest.fixture(scope="module")
def stock_2019(tmp_path_factory) -> td.SyntheticStock:
    d = tmp_path_factory.mktemp("sirene-2019")
    return td.generate_stock(d, N_ROWS, seed=SEED, layout=48, chunk_rows=7_000)


def read_communes(perimeter: str = "label") -> pd.DataFrame:
    """Register code -> commune, EPCI, department, region and capital (2023 geography), read
    directly from communes.csv and territories.csv. A code listed under a parent (an
    arrondissement, a commune déléguée or associée) takes its parent's EPCI, department,
    region and capital."""
    derived = ROOT / "data" / "derived"
    c = pd.read_csv(derived / "communes.csv", dtype=str, keep_default_na=False)
    c = c[c["census_year"] == "2023"].copy()
    c["commune"] = np.where(
        c["parent_commune_code"] != "", c["parent_commune_code"], c["commune_code"]
    )
    current = c[c["commune_type"] == "commune-actuelle"].set_index("commune_code")
    for col, new in (
        ("epci_siren", "epci"),
        ("department_code", "department"),
        ("region_code", "region"),
    ):
        c[new] = c["commune"].map(current[col])
    t = pd.read_csv(derived / "territories.csv", dtype=str)
    t = t[(t["census_year"] == "2023") & (t["perimeter"] == perimeter)]
    c["territory"] = c["epci"].map(t.set_index("epci_siren")["territory_id"])
    return c.rename(columns={"commune_code": "code"})


@pytest.fixture(scope="module")
def communes() -> pd.DataFrame:
    return read_communes("label")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["sirene", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def aggregate_cli(capsys, path: Path, out: Path, level: str, *extra: str) -> pd.DataFrame:
    code, stdout, err = run_cli(
        capsys,
        "aggregate",
        str(path),
        "--level",
        level,
        "--as-of",
        AS_OF.isoformat(),
        "--young-years",
        str(YOUNG),
        "--out",
        str(out),
        "--cache-dir",
        str(out.parent / "cache"),
        *extra,
    )
    assert code == 0, err
    assert "rows scanned: 20,000" in stdout
    return pd.read_csv(out, dtype={"code": str, "name": str})


LEVEL_COLUMNS = ["code", "commune", "epci", "department", "region", "territory"]


def expected_level(expected: td.Expected, communes: pd.DataFrame, level: str) -> pd.Series:
    m = expected.by_code.merge(communes[LEVEL_COLUMNS], on="code")
    units = {"commune": communes.loc[communes["commune_type"] == "commune-actuelle", "code"]}
    all_units = units.get(level, communes[level])
    per = m.groupby(level)["startups"].sum()
    keep = sorted({u for u in all_units if isinstance(u, str) and u})
    return per.reindex(keep, fill_value=0).astype("int64")


@pytest.mark.parametrize("level", ["commune", "epci", "department", "region", "territory"])
def test_aggregate_counts_equal_the_generators_truth(capsys, tmp_path, stock, communes, level):
    table = aggregate_cli(capsys, stock.paths["csv"], tmp_path / "out.csv", level)
    assert list(table.columns) == ["code", "name", "startups"]
    assert table["code"].is_unique and list(table["code"]) == sorted(table["code"])
    assert table["name"].notna().all()
    want = expected_level(stock.expected(AS_OF, YOUNG), communes, level)
    got = table.set_index("code")["startups"]
    pd.testing.assert_series_equal(got, want, check_names=False, check_index_type=False)
    assert got.sum() > 0


def test_arrondissements_roll_up_into_their_commune(stock, communes):
    res = sirene.aggregate(stock.paths["parquet"], as_of=AS_OF, young_years=60, level="commune")
    got = res.table.set_index("code")["startups"]
    truth = stock.expected(AS_OF, 60).by_code.set_index("code")["startups"]
    arrondissements = communes[communes["commune_type"] == "arrondissement-municipal"]
    for parent, arrs in arrondissements.groupby("parent_commune_code")["code"]:
        in_truth = [c for c in arrs if c in truth.index]
        assert in_truth, f"the generator wrote no start-up in an arrondissement of {parent}"
        assert got[parent] == truth[in_truth].sum() + truth.get(parent, 0) > 0
    assert not set(got.index) & set(arrondissements["code"])
    # and the arrondissements' start-ups reach the EPCI and the territory
    terr = sirene.aggregate(stock.paths["parquet"], as_of=AS_OF, young_years=60).table
    paris = communes.loc[communes["territory"] == "paris", "code"]
    assert terr.set_index("code").loc["paris", "startups"] == truth[truth.index.isin(paris)].sum()


def test_zip_csv_and_parquet_give_identical_outputs(capsys, tmp_path, stock):
    outs = {}
    for form in ("csv", "zip", "parquet"):
        out = tmp_path / f"{form}.csv"
        aggregate_cli(capsys, stock.paths[form], out, "commune")
        outs[form] = out.read_bytes()
    assert outs["csv"] == outs["zip"] == outs["parquet"]


def test_2019_header_of_48_columns_gives_the_same_counts(capsys, tmp_path, stock, stock_2019):
    assert len(pq.read_schema(stock.paths["parquet"]).names) == 54
    with open(stock_2019.paths["csv"], encoding="utf-8") as f:
        assert f.readline().rstrip("\n").split(",") == list(sirene.ETABLISSEMENT_COLUMNS_2019)
    a = aggregate_cli(capsys, stock.paths["csv"], tmp_path / "a.csv", "epci")
    b = aggregate_cli(capsys, stock_2019.paths["csv"], tmp_path / "b.csv", "epci")
    pd.testing.assert_frame_equal(a, b)
    assert "48 columns (2019 layout)" in sirene.inspect_source(stock_2019.paths["csv"]).layout


def test_columns_in_another_order_simply_work(capsys, tmp_path, stock):
    cols = list(sirene.ETABLISSEMENT_COLUMNS)
    order = cols[::-1]
    shuffled = td.generate_stock(
        tmp_path / "s", N_ROWS, seed=SEED, chunk_rows=7_000, column_order=order
    )
    with open(shuffled.paths["csv"], encoding="utf-8") as f:
        assert f.readline().startswith("activitePrincipaleNAF25Etablissement,")
    a = aggregate_cli(capsys, stock.paths["csv"], tmp_path / "a.csv", "territory")
    b = aggregate_cli(capsys, shuffled.paths["csv"], tmp_path / "b.csv", "territory")
    pd.testing.assert_frame_equal(a, b)


def test_report_accounts_for_every_row_and_unmatched_code(stock, communes):
    res = sirene.aggregate(
        stock.paths["parquet"], as_of=AS_OF, young_years=YOUNG, level="territory"
    )
    exp = stock.expected(AS_OF, YOUNG)
    rep = res.report
    assert rep.rows_scanned == exp.rows == N_ROWS
    assert rep.excluded == exp.excluded
    assert rep.startups_total == exp.startups
    assert rep.rows_scanned == sum(rep.excluded.values()) + rep.startups_total
    # unmatched start-ups, by kind, from the generator's own pool kinds
    kinds = exp.by_code.assign(kind=[exp.kinds[c] for c in exp.by_code["code"]])
    in_capital = kinds["code"].isin(communes.loc[communes["territory"].notna(), "code"])
    kinds["kind"] = kinds["kind"].replace({"commune": "outside", "merged": "outside"})
    want = kinds[~in_capital].groupby("kind")["startups"].sum()
    got = {k: v["rows"] for k, v in rep.unmatched.items() if v["rows"]}
    assert got == want.to_dict()
    assert rep.startups_attributed + sum(got.values()) == rep.startups_total
    text = rep.text()
    for phrase in (
        "rows scanned",
        "not active",
        "another nomenclature",
        "not in the ICT list",
        "no or invalid",
        "created before",
        "codes left unmatched",
        "outside the capitals' perimeter",
        "unknown dateCreationEtablissement",
        "time taken",
    ):
        assert phrase in text


def test_invalid_unknown_and_abroad_codes_are_reported_not_dropped(stock):
    res = sirene.aggregate(stock.paths["parquet"], as_of=AS_OF, young_years=60, level="commune")
    exp = stock.expected(AS_OF, 60)
    per_kind = exp.by_code.assign(kind=[exp.kinds[c] for c in exp.by_code["code"]])
    want = per_kind.groupby("kind")["startups"].sum()
    assert {"abroad", "invalid", "empty", "unknown", "merged"} <= set(want.index)
    for kind in ("abroad", "invalid", "empty", "unknown"):
        assert res.report.unmatched[kind]["rows"] == want[kind] > 0, kind
    # every commune of France has a commune: nothing is "outside" at this level
    assert res.report.unmatched["outside"]["rows"] == 0
    # establishments abroad: empty commune code, counted by their country code
    abroad = per_kind[per_kind["kind"] == "abroad"].set_index("code")["startups"]
    assert res.report.unmatched["abroad"]["by_country"] == {c: int(n) for c, n in abroad.items()}
    assert "by country code: 99" in res.report.text()


def test_foreign_rows_have_an_empty_commune_and_a_country(stock):
    table = pq.read_table(
        stock.paths["parquet"],
        columns=["codeCommuneEtablissement", "codePaysEtrangerEtablissement"],
    ).to_pandas()
    foreign = table["codePaysEtrangerEtablissement"].notna()
    assert foreign.sum() > 0
    assert table.loc[foreign, "codeCommuneEtablissement"].isna().all()
    assert table.loc[foreign, "codePaysEtrangerEtablissement"].str.match(r"^99\d{3}$").all()


def test_merged_communes_land_in_the_commune_they_joined(stock, communes):
    """Register rows still written with a merged commune's code (Pierre-Bénite, 69152, joined
    Oullins in 2024) count in the commune they joined, and so in its EPCI and capital."""
    res = sirene.aggregate(stock.paths["parquet"], as_of=AS_OF, young_years=60, level="commune")
    truth = stock.expected(AS_OF, 60).by_code.set_index("code")["startups"]
    merged = communes[communes["commune_type"].isin(["commune-deleguee", "commune-associee"])]
    merged = merged[merged["code"].isin(truth.index)]
    assert truth[merged["code"]].sum() > 0, "the generator wrote no start-up in a merged code"
    got = res.table.set_index("code")["startups"]
    assert not set(got.index) & set(merged["code"])
    for parent, children in merged.groupby("commune")["code"]:
        assert got[parent] == truth.get(parent, 0) + truth[children].sum()
    geo = sirene.load_geography(2023)
    assert geo.unit("69152", "commune") == "69149"
    assert geo.unit("69152", "epci") == "200046977"
    assert geo.unit("69152", "territory") == "lyon-saint-etienne"
    assert geo.unit("93059", "commune") == "93066"  # Pierrefitte-sur-Seine -> Saint-Denis


def test_placeholder_and_impossible_dates_never_become_a_year(stock):
    """1900-01-01 is INSEE's placeholder for an unknown date: an exclusion, never a year, and
    never a start-up even when young-years reaches back past 1900."""
    exp = stock.expected(AS_OF, 100)
    assert exp.excluded["unknown_date"] > 0
    res = sirene.aggregate(stock.paths["parquet"], as_of=AS_OF, young_years=100)
    assert res.report.excluded["unknown_date"] == exp.excluded["unknown_date"]
    assert res.report.startups_total == exp.startups
    rows, summary = sirene.yearly_creations(stock.paths["parquet"], level="region")
    years = {y for _, _, y, _ in rows}
    assert min(years) >= 1901 and 1900 not in years
    assert summary["unknown_date"] > 0


def test_core_perimeter_is_narrower_than_the_label(stock):
    label = sirene.aggregate(stock.paths["parquet"], as_of=AS_OF, young_years=60).table
    core = sirene.aggregate(
        stock.paths["parquet"], as_of=AS_OF, young_years=60, perimeter="core"
    ).table
    label, core = (t.set_index("code")["startups"] for t in (label, core))
    assert (core <= label).all()
    want = expected_level(stock.expected(AS_OF, 60), read_communes("core"), "territory")
    pd.testing.assert_series_equal(core, want, check_names=False, check_index_type=False)
    # Brest+ adds Quimper, Morlaix and Lannion to Brest Métropole
    assert core["brest"] < label["brest"]


def test_geography_vintage_is_the_one_closest_to_as_of():
    assert sirene.geography_vintage("2020-06-30") == 2016  # geography 2019
    assert sirene.geography_vintage("2024-01-01") == 2023  # geography 2026
    assert sirene.load_geography(2016).unit("69152", "commune") == "69152"  # a commune in 2019


@pytest.mark.parametrize("vintage", [2016, 2023])
def test_every_code_of_the_geography_is_outside_when_unmatched(vintage):
    """The report sorts an unmatched code of the geography straight into "outside" (about
    20,000 codes per count of France) without classifying it: that holds only because every
    such code is a well-formed commune code of France, never empty, invalid or abroad."""
    from analysis.data.register.spec import unmatched_kind

    geo = sirene.load_geography(vintage)
    kinds = {unmatched_kind(c, known=True) for c in geo.codes}
    assert kinds == {"outside"} and len(geo.codes) > 35_000
    # Marseille and its 1st arrondissement (13201), at every level: Aix-Marseille-Provence
    # (SIREN 200054807), Bouches-du-Rhone (13), Provence-Alpes-Cote d'Azur (93)
    want = ("13055", "200054807", "13", "93", "aix-marseille")
    levels = ("commune", "epci", "department", "region", "territory")
    for level, unit in zip(levels, want, strict=True):
        unit_of = geo.unit_of(level)
        assert unit_of("13055") == unit_of("13201") == geo.unit("13055", level) == unit
        assert unit_of(None) is None and unit_of("99134") is None and unit_of("") is None


def test_custom_ict_codes_and_young_years_zero(stock):
    codes = ["6201Z", "62.02A"]
    res = sirene.aggregate(
        stock.paths["parquet"], as_of="2024-06-30", young_years=10, ict_codes=codes
    )
    exp = stock.expected(dt.date(2024, 6, 30), 10, ["62.01Z", "62.02A"])
    assert res.report.ict_codes == ("62.01Z", "62.02A")
    assert res.report.excluded == exp.excluded and res.report.startups_total == exp.startups
    res0 = sirene.aggregate(stock.paths["parquet"], as_of=AS_OF, young_years=0)
    assert res0.report.startups_total == stock.expected(AS_OF, 0).startups


def test_the_caches_derived_columns_give_the_same_counts_and_are_optional(tmp_path, stock):
    """The cache's one-byte kind column (default ICT codes), the fallback on its text columns
    (other ICT codes) and a cache written before that column existed all count exactly what
    the generator knows is true."""
    cached = sirene.convert(stock.paths["zip"], tmp_path / "cache").path
    names = pq.read_schema(cached).names
    assert names[-3:] == [
        register_cache.DERIVED_ICT,
        register_cache.DERIVED_DATE,
        register_cache.DERIVED_KIND,
    ]
    older = tmp_path / "older.parquet"  # the cache's layout before the kind column
    pq.write_table(pq.read_table(cached).drop_columns([register_cache.DERIVED_KIND]), older)
    exp = stock.expected(AS_OF, 5)
    codes = ["62.01Z", "62.02A"]
    exp_codes = stock.expected(AS_OF, 5, codes)
    for path in (cached, older):
        res = sirene.aggregate(path, as_of=AS_OF, young_years=5)
        assert res.report.excluded == exp.excluded and res.report.startups_total == exp.startups
        assert (
            res.by_code == sirene.aggregate(stock.paths["csv"], as_of=AS_OF, young_years=5).by_code
        )
        res = sirene.aggregate(path, as_of=AS_OF, young_years=5, ict_codes=codes)
        assert res.report.excluded == exp_codes.excluded
        assert res.report.startups_total == exp_codes.startups


def test_legal_units_join_matches_truth(capsys, tmp_path, stock, communes):
    for form in ("ul_csv", "ul_zip", "ul_parquet"):
        table = aggregate_cli(
            capsys,
            stock.paths["csv"],
            tmp_path / f"{form}.csv",
            "territory",
            "--legal-units",
            str(stock.paths[form]),
            "--legal-unit-categories",
            "PME",
        )
        exp = stock.expected(AS_OF, YOUNG, with_legal_units=True, categories=["PME"])
        want = expected_level(exp, communes, "territory")
        pd.testing.assert_series_equal(
            table.set_index("code")["startups"], want, check_names=False, check_index_type=False
        )
    res = sirene.aggregate(
        stock.paths["parquet"],
        as_of=AS_OF,
        young_years=YOUNG,
        legal_units=stock.paths["ul_parquet"],
    )
    assert res.report.excluded == stock.expected(AS_OF, YOUNG, with_legal_units=True).excluded


def test_yearly_creations_per_territory_match_truth(capsys, tmp_path, stock, communes):
    out, yearly = tmp_path / "o.csv", tmp_path / "y.csv"
    aggregate_cli(capsys, stock.paths["parquet"], out, "territory", "--yearly-out", str(yearly))
    got = pd.read_csv(yearly)
    assert list(got.columns) == ["code", "name", "year", "creations"]
    exp = stock.expected(AS_OF, YOUNG).creations
    m = exp.merge(communes[["code", "territory"]], on="code")
    want = m.groupby(["territory", "year"])["creations"].sum()
    g = got.set_index(["code", "year"])["creations"]
    assert (g.reindex(want.index.rename(["code", "year"])).to_numpy() == want.to_numpy()).all()
    assert g.sum() == want.sum()  # zeros elsewhere
    assert set(got["code"]) == set(communes["territory"].dropna())


def _typed(table, dates: list[str]):
    """The table with its date columns as date32 and siren as an integer (a typed parquet)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for col in dates:
        d = pc.strptime(table[col], format="%Y-%m-%d", unit="s", error_is_null=True)
        i = table.schema.get_field_index(col)
        table = table.set_column(i, col, pc.cast(d, pa.date32()))
    i = table.schema.get_field_index("siren")
    return table.set_column(i, "siren", pc.cast(table["siren"], pa.int64()))


def test_typed_parquet_dates_and_integer_siren_give_the_same_counts(tmp_path, stock):
    typed = tmp_path / "typed.parquet"
    pq.write_table(
        _typed(pq.read_table(stock.paths["parquet"]), ["dateCreationEtablissement"]), typed
    )
    typed_ul = tmp_path / "typed_ul.parquet"
    pq.write_table(
        _typed(pq.read_table(stock.paths["ul_parquet"]), ["dateCreationUniteLegale"]), typed_ul
    )
    kw = {"as_of": AS_OF, "young_years": YOUNG, "level": "epci"}
    a = sirene.aggregate(stock.paths["parquet"], legal_units=stock.paths["ul_parquet"], **kw)
    b = sirene.aggregate(typed, legal_units=typed_ul, **kw)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.report.startups_total == b.report.startups_total > 0


def test_output_and_sidecar_are_written_with_parameters(capsys, tmp_path, stock):
    out = tmp_path / "t.csv"
    aggregate_cli(capsys, stock.paths["csv"], out, "territory")
    meta = (tmp_path / "t.csv.meta.yaml").read_text(encoding="utf-8")
    assert "as_of: '2025-12-31'" in meta and "young_years: 3" in meta and "62.01Z" in meta
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_convert_caches_by_sha256_and_labels_the_parquet(tmp_path, stock):
    cache = tmp_path / "cache"
    first = sirene.convert(stock.paths["zip"], cache)
    assert not first.cached and first.path.name == f"{first.sha256}.parquet"
    second = sirene.convert(stock.paths["zip"], cache)
    assert second.cached and second.path == first.path
    meta = pq.read_metadata(first.path).metadata
    assert td.LABEL.encode() in meta[b"source_file"]
    assert sorted(p.name for p in cache.iterdir()) == sorted([first.path.name, "index.json"])
    assert pq.read_metadata(first.path).num_rows == N_ROWS
    assert sirene.convert(stock.paths["parquet"], cache).path == stock.paths["parquet"]


def test_synthetic_files_are_labelled(stock):
    for path in stock.paths.values():
        assert td.LABEL in path.name
    with zipfile.ZipFile(stock.paths["zip"]) as zf:
        assert td.LABEL.encode() in zf.comment
        assert zf.namelist() == ["StockEtablissement_utf8.csv"]
    assert td.LABEL.encode() in pq.read_schema(stock.paths["parquet"]).metadata[b"synthetic"]


def test_generator_is_deterministic(tmp_path):
    a = td.generate_stock(tmp_path / "a", 3_000, seed=3)
    b = td.generate_stock(tmp_path / "b", 3_000, seed=3)
    assert a.paths["csv"].read_bytes() == b.paths["csv"].read_bytes()
    truth = td.write_truth(a, tmp_path / "truth.json", AS_OF, YOUNG)
    assert truth.name.startswith(td.LABEL)


# ----------------------------------------------------------------------------- bad input


def _bad_zip_no_csv(d: Path, stock) -> Path:
    p = d / "nocsv.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("README.txt", "nothing here")
    return p


def _bad_zip_other_csv(d: Path, stock) -> Path:
    p = d / "other.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.write(stock.paths["ul_csv"], "StockUniteLegale_utf8.csv")
    return p


def _truncated(name: str):
    def make(d: Path, stock) -> Path:
        data = stock.paths[name].read_bytes()
        p = d / ("truncated-" + stock.paths[name].name)
        p.write_bytes(data[: len(data) // 2])
        return p

    return make


def _missing_column(d: Path, stock) -> Path:
    df = pd.read_csv(stock.paths["csv"], dtype=str, keep_default_na=False, nrows=200)
    p = d / "missing.csv"
    df.drop(columns=["etatAdministratifEtablissement", "dateCreationEtablissement"]).to_csv(
        p, index=False
    )
    return p


def _latin1(d: Path, stock) -> Path:
    lines = stock.paths["csv"].read_text(encoding="utf-8").splitlines(keepends=True)[:300]
    text = "".join(lines).replace("CHOISY-LE-ROI", "CHOISY-LE-ROI ÉCOLE")
    text = text.replace("DU PORT", "DU PORT ÉTÉ")
    p = d / "latin1.csv"
    p.write_bytes(text.encode("cp1252", errors="replace"))  # Windows-1252, a Latin-1 superset
    return p


BAD_FILES = {
    "zip without csv": (_bad_zip_no_csv, "holds no CSV"),
    "zip with another csv": (_bad_zip_other_csv, "StockUniteLegale"),
    "truncated zip": (_truncated("zip"), "truncated"),
    "truncated parquet": (_truncated("parquet"), "truncated"),
    "missing column": (
        _missing_column,
        "etatAdministratifEtablissement, dateCreationEtablissement",
    ),
    "latin-1": (_latin1, "INSEE publishes the _utf8 files"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_give_one_clear_line_and_no_output(capsys, tmp_path, stock, case):
    make, message = BAD_FILES[case]
    bad = make(tmp_path, stock)
    out = tmp_path / "out" / "o.csv"
    code, stdout, err = run_cli(
        capsys,
        "aggregate",
        str(bad),
        "--as-of",
        "2025-12-31",
        "--young-years",
        "3",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert str(bad) in err and message in err, err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    cache = tmp_path / "cache"
    assert not cache.exists() or [p.name for p in cache.iterdir() if p.name != "index.json"] == []


def test_latin1_message_says_not_utf8(tmp_path, stock):
    with pytest.raises(DataError, match=r"not UTF-8 .*_utf8 files"):
        sirene.inspect_source(_latin1(tmp_path, stock))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "2025-13-01", "--young-years", "3"], "--as-of"),
        (["--as-of", "31/12/2025", "--young-years", "3"], "YYYY-MM-DD"),
        (["--as-of", "2025-12-31", "--young-years", "-1"], "--young-years"),
        (["--as-of", "2025-12-31", "--young-years", "two"], "--young-years"),
        (["--as-of", "2025-12-31", "--young-years", "3", "--ict-codes", "62.01"], "--ict-codes"),
    ],
)
def test_bad_parameters(capsys, tmp_path, stock, args, message):
    out = tmp_path / "o.csv"
    code, _, err = run_cli(capsys, "aggregate", str(stock.paths["csv"]), *args, "--out", str(out))
    assert code == 2 and message in err and err.count("\n") == 1
    assert not out.exists()


def test_path_that_does_not_exist(capsys, tmp_path):
    missing = tmp_path / "StockEtablissement_utf8.zip"
    out = tmp_path / "o.csv"
    code, _, err = run_cli(
        capsys,
        "aggregate",
        str(missing),
        "--as-of",
        "2025-12-31",
        "--young-years",
        "3",
        "--out",
        str(out),
    )
    assert code == 2 and f"{missing}: file not found" in err
    assert not out.exists()
    with pytest.raises(DataError, match="file not found"):
        sirene.convert(missing, tmp_path / "cache")


def test_parameters_are_checked_in_the_library():
    with pytest.raises(ParameterError, match="as_of"):
        rules.as_of("2025-02-30")
    with pytest.raises(ParameterError, match="young_years"):
        rules.young_years(-2)
    assert sirene.years_before(dt.date(2024, 2, 29), 1) == dt.date(2023, 2, 28)
    assert rules.ict_codes(["6201Z,62.02A"]) == ("62.01Z", "62.02A")


def test_full_disk_while_extracting_the_zip_leaves_no_partial_cache(tmp_path, stock, monkeypatch):
    written = {"n": 0}

    def full(f, block):  # the disk fills up after 50 kB
        f.write(block[:50_000])
        written["n"] += 50_000
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(register_cache, "_write_block", full)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=f"{cache} .*no space left on device"):
        sirene.convert(stock.paths["zip"], cache)
    assert [p.name for p in cache.iterdir()] == ["index.json"]


def test_full_disk_while_writing_the_parquet_leaves_no_partial_cache(tmp_path, stock):
    """A real write error from DuckDB: the child's file-size limit makes writes fail (EFBIG)."""
    cache = tmp_path / "cache"
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, resource.RLIM_INFINITY))\n"
        "from analysis import cli\n"
        f"sys.exit(cli.main(['sirene', 'convert', {str(stock.paths['csv'])!r}, "
        f"'--cache-dir', {str(cache)!r}]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.returncode == 2, proc.stderr
    assert "no space left on device" in proc.stderr and str(stock.paths["csv"]) in proc.stderr
    assert f"{cache}/" in proc.stderr  # the cache file that could not be written
    assert [p.name for p in cache.iterdir() if p.name != "index.json"] == []
