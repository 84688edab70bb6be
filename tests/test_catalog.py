"""The committed catalogue passes its own checks, and data/README.md is generated from it."""

from __future__ import annotations

from analysis import cli
from analysis.core import territories
from analysis.data import catalog, datasets

from .conftest import ROOT


def test_verify_passes_on_the_committed_data():
    report = catalog.verify()
    assert report.ok, report.problems
    assert report.sources >= 20


def test_verify_cli_one_line_summary(capsys):
    assert cli.main(["data", "verify"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("OK: ")


def test_every_fact_has_a_source_and_a_locator():
    facts = datasets.load_facts()
    assert len(facts) > 50
    assert facts["source_id"].str.len().gt(0).all()
    assert facts["locator"].str.strip().str.len().gt(0).all()
    ids = set(catalog.catalogue()["source_id"])
    assert set(facts["source_id"]) <= ids


def test_the_seed_article_figures_are_in_the_catalogue():
    f = datasets.load_facts().query("source_id == 'investinprovence-capitale-french-tech-2019'")
    got = {(r.indicator, r.year): r.value for r in f.itertuples()}
    assert got[("startups_declared", 2019)] == 800
    assert got[("startup_files_examined", 2018)] == 68
    assert got[("startup_files_examined", 2015)] == 32
    assert got[("jobs_since_2015", 2019)] == 1990
    assert got[("submarine_cables", 2019)] == 18
    assert got[("ces_exhibitors", 2018)] == 25
    assert got[("digital_share_of_implantations_since_2015", 2019)] == 36
    assert got[("digital_share_of_jobs_since_2015", 2019)] == 35


def test_labels_cover_the_three_waves():
    labels = datasets.load_labels()
    caps = labels[labels["label"] == "capitale-french-tech"]
    assert sorted(caps["territory_id"]) == sorted(territories.CAPITALE_IDS)
    assert set(caps["label_date"]) == {"2019-04-03"}
    m2014 = labels[
        (labels["label"] == "french-tech-metropole") & (labels["label_date"] == "2014-11-12")
    ]
    assert len(m2014) == 9
    m2015 = labels[labels["label_date"] == "2015-06-24"]
    assert len(m2015[m2015["label"] == "french-tech-metropole"]) == 4


def test_data_readme_is_generated_not_hand_kept():
    expected = catalog.catalogue_markdown(catalog.catalogue())
    actual = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    assert actual == expected, (
        "data/README.md is stale: run `make data` or `analysis data list --markdown --out data/README.md`"
    )


def test_tables_checked_together_name_the_bad_file_and_line_as_alone(data_copy):
    """The facts tables are checked in one stacked pass; a bad value in one of them is still
    reported with its own file, line and column, exactly as reading that file alone."""
    import pytest

    from analysis.core.errors import DataError

    paths = datasets.raw_tables("facts", data_copy)
    bad = paths[len(paths) // 2]
    lines = bad.read_text("utf-8").splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    row = lines[1].rstrip("\n").split(",")
    row[header.index("year")] = "20x5"  # not a year (the first column holds no comma)
    lines[1] = ",".join(row) + "\n"
    bad.write_text("".join(lines), "utf-8")
    with pytest.raises(DataError) as alone:
        datasets.read_csv_table(bad, "facts")
    with pytest.raises(DataError) as together:
        datasets.read_csv_tables(paths, "facts")
    assert str(together.value) == str(alone.value)
    assert str(alone.value).startswith(f"{bad}, line 2, column 'year': '20x5'")
    # and the good tables read together are the tables read one by one
    good = [p for p in paths if p != bad]
    for one, many in zip(
        [datasets.read_csv_table(p, "facts") for p in good],
        datasets.read_csv_tables(good, "facts"),
        strict=True,
    ):
        assert one.equals(many) and one.attrs == many.attrs
