"""The label-effect panel: exact yearly creations per EPCI on SYNTHETIC-TEST-DATA, and the
treatment of each EPCI from the cited labels."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import cli
from analysis.analyses import label_cohorts
from analysis.core.errors import ParameterError
from analysis.data import datasets
from analysis.data.register import panel as register_panel
from analysis.data.register import testdata as td

EPOCH = dt.date(1970, 1, 1)


@pytest.fixture(scope="module")
def stock(tmp_path_factory) -> td.SyntheticStock:
    d = tmp_path_factory.mktemp("panel-stock")
    return td.generate_stock(d, 30_000, seed=11, formats=("parquet",), chunk_rows=10_000)


def truth(stock: td.SyntheticStock, first: int, last: int) -> pd.DataFrame:
    """Creations per EPCI and year from the generator's own arrays (2026 geography)."""
    a = stock.arrays
    code = stock.pool.codes[a.cat("code_idx")]
    day = a.cat("day").astype("int64")
    nomen, naf = a.cat("nomen"), a.cat("naf_idx")
    ict_pool = np.isin(stock.naf_pool, list(td.ICT_NAF_CODES))
    is_ict = (nomen == 0) & (naf >= 0) & ict_pool[np.maximum(naf, 0)]
    ok = (day != np.iinfo(np.int32).min) & (day != (dt.date(1900, 1, 1) - EPOCH).days)
    ok &= day >= (dt.date(1800, 1, 1) - EPOCH).days
    years = pd.to_datetime(np.where(ok, day, 0), unit="D").year.to_numpy()
    c = datasets.load_derived("communes")
    c = c[c["census_year"] == 2023]
    current = c[c["commune_type"] == "commune-actuelle"].set_index("commune_code")["epci_siren"]
    parent = c["parent_commune_code"].fillna(c["commune_code"])
    epci_of = dict(zip(c["commune_code"], parent.map(current), strict=True))
    df = pd.DataFrame({"code": code, "year": years, "ict": is_ict, "ok": ok})
    df["unit"] = df["code"].map(epci_of)
    df = df[df["ok"] & df["unit"].notna() & df["year"].between(first, last)]
    return df.groupby(["unit", "year"]).agg(
        creations_ict=("ict", "sum"), creations_all=("ict", "size")
    )


def test_yearly_creations_per_epci_equal_the_generators_truth(stock):
    res = register_panel.yearly_creations_panel(stock.paths["parquet"], first_year=2010)
    # the synthetic stock ends on 30 June 2026: 2025 is its last full year
    assert res.summary["last_year"] == 2025 and res.summary["latest_creation_date"] == "2026-06-30"
    got = pd.DataFrame(
        res.rows, columns=["unit", "name", "year", "creations_ict", "creations_all"]
    ).set_index(["unit", "year"])
    want = truth(stock, 2010, 2025)
    assert got["creations_all"].sum() == want["creations_all"].sum() > 0
    joined = got.merge(
        want, left_index=True, right_index=True, how="left", suffixes=("", "_want")
    ).fillna(0)
    assert (joined["creations_ict"] == joined["creations_ict_want"]).all()
    assert (joined["creations_all"] == joined["creations_all_want"]).all()
    # balanced: every EPCI of France, every year
    assert len(got) == got.index.get_level_values(0).nunique() * 16
    assert got.index.get_level_values(0).nunique() >= 1250


def test_last_year_after_the_last_full_year_is_refused(stock):
    with pytest.raises(ParameterError, match="after the register's last full year 2025"):
        register_panel.yearly_creations_panel(stock.paths["parquet"], last_year=2026)


@pytest.mark.parametrize(
    ("epci", "late_month", "first"),
    [
        ("200054807", 10, 2015),  # Aix-Marseille-Provence: métropole of November 2014
        ("200054807", 13, 2014),  # ... counted from 2014 when no month is late
        ("200068120", 10, 2019),  # Quimper: added by the Brest+ capital of 2019
        ("244200770", 10, 2015),  # Saint-Étienne Métropole: thematic label of June 2015
        ("248400251", 10, 2015),  # Grand Avignon: thematic label of June 2015
        ("200054781", 10, 2019),  # Métropole du Grand Paris: the 2019 capital
    ],
)
def test_each_epci_is_treated_from_its_first_label(inputs, epci, late_month, first):
    treated, _ = label_cohorts.cohorts(inputs, "label", 2023, late_month)
    assert treated.set_index("epci_siren").loc[epci, "first_treated"] == first


def test_core_perimeter_treats_fewer_epcis_and_normandy_is_left_out(inputs):
    label, excluded = label_cohorts.cohorts(inputs, "label")
    core, _ = label_cohorts.cohorts(inputs, "core")
    assert set(core["epci_siren"]) < set(label["epci_siren"])
    assert "200068120" not in set(core["epci_siren"])  # Quimper is in Brest+ only
    assert len(excluded) == 3 and excluded["reason"].str.contains("Normandy").all()


def test_panel_cli_writes_the_panel_and_its_sidecar(stock, tmp_path, capsys):
    out = tmp_path / "panel.csv"
    code = cli.main(
        [
            "sirene",
            "panel",
            str(stock.paths["parquet"]),
            "--out",
            str(out),
            "--min-population",
            "20000",
        ]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "SYNTHETIC-TEST-DATA" in stdout
    p = pd.read_csv(out, dtype={"unit": str})
    assert list(p.columns) == label_cohorts.PANEL_COLUMNS
    assert p.groupby("unit")["year"].nunique().eq(18).all()  # 2008-2025, balanced
    never = p[p["first_treated"] == 0]
    assert never["population"].min() >= 20_000
    meta = yaml.safe_load((tmp_path / "panel.csv.meta.yaml").read_text("utf-8"))
    assert meta["cohorts"] == {2015: 19, 2019: 18} and "SYNTHETIC" in meta["table"]
    aix = p[p["unit"] == "200054807"]
    assert (aix["first_treated"] == 2015).all() and (aix["population"] == 1_939_077).all()


def test_no_cited_series_forms_a_panel_for_the_label_design(inputs):
    """Every territory with a series of its own is a labelled capital: no series has
    never-labelled units, so none is usable."""
    t = label_cohorts.cited_panels(inputs).set_index("indicator")
    assert not t["usable"].any()
    assert (t["never_labelled_units"] == 0).all()
    # Provence Promotion's implantations: Aix-Marseille alone, 2014-2023, across its label
    imp = t.loc["implantations"]
    assert (imp["units"], imp["labelled_units_before_and_after"], imp["years"]) == (
        1,
        1,
        "2014-2023",
    )


def test_the_register_grid_is_valid_once_its_files_exist(tmp_path, monkeypatch):
    """notebooks/runs-register.yaml: four runs (03 under both perimeters, 05 with two
    estimators), checked before anything runs; only the register files are missing here."""
    from analysis.core import paths
    from analysis.core.errors import ParameterError
    from analysis.runs import grid

    path = paths.project_root() / "notebooks" / "runs-register.yaml"
    monkeypatch.setenv("ANALYSIS_ROOT", str(tmp_path))  # relative paths: from the root
    with pytest.raises(ParameterError, match="sirene_path: .* does not exist"):
        grid.load_grid(path)
    (tmp_path / "data" / "external" / "sirene").mkdir(parents=True)
    (tmp_path / "data" / "external" / "sirene" / "StockEtablissement_utf8.parquet").touch()
    (tmp_path / "data" / "external" / "label-panel.csv").touch()
    runs = grid.load_grid(path)
    assert sorted(r.id for r in runs) == [
        "03-register-core",
        "03-register-label",
        "05-label-callaway_santanna",
        "05-label-etwfe",
    ]
