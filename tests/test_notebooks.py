"""The notebooks: parameter conventions, execution with non-default parameters (asserting on
the values they record), clear failures on bad parameters, and deterministic figures.

nbval (`pytest --nbval`, configured in pyproject.toml) separately re-runs the committed
notebooks and compares every stored text output strictly.
"""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from analysis.analyses import investment
from analysis.core import territories
from analysis.data import datasets
from analysis.methods import composite_index as index
from analysis.outputs import figures as plots
from analysis.outputs import sections as report
from analysis.outputs import tables as display
from analysis.runs import inplace as execute
from analysis.runs import params
from analysis.runs.notebooks import notebook_parameters

from .conftest import ROOT

NB_DIR = ROOT / "notebooks"
ALL = sorted(NB_DIR.glob("[0-9][0-9]-*.ipynb"))


def test_the_six_notebooks_exist():
    assert [p.stem for p in ALL] == [
        "01-data-catalogue",
        "02-investment-attraction",
        "03-startup-density",
        "04-ecosystem-index",
        "05-label-effect",
        "10-territory-report",
    ]


def _code_cells(path: Path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_notebook_conventions(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    cells = _code_cells(path)
    for c in cells:
        tree = ast.parse(c.source)
        assert not any(
            isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda)
            for n in ast.walk(tree)
        ), f"{path.name}: notebooks define no functions"
        assert len(c.source.splitlines()) <= 12, f"{path.name}: code cells stay short"
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    if not notebook_parameters(path):
        assert tagged == []
        return
    assert tagged == [0], f"{path.name}: the first code cell, and only it, is tagged parameters"
    params_cell = cells[0].source
    for stmt in ast.parse(params_cell).body:
        assert isinstance(stmt, ast.AnnAssign), f"{path.name}: parameters have type annotations"
        ast.literal_eval(stmt.value)  # literals only
    for line in params_cell.splitlines():
        assert "  # " in line, f"{path.name}: every parameter has a trailing # help comment: {line}"
    assert "params.validate(" in cells[1].source, (
        f"{path.name}: the second cell validates the parameters"
    )


@pytest.mark.parametrize("path", [p for p in ALL if notebook_parameters(p)], ids=lambda p: p.stem)
def test_help_notebook_describes_every_parameter(path):
    """What `papermill --help-notebook` prints: every parameter with its type and help."""
    declared = pm.inspect_notebook(str(path))
    assert set(declared) <= set(params.RULES), "every parameter has its rule"
    for name, info in declared.items():
        assert info["inferred_type_name"] not in ("None", ""), name
        assert info["help"].strip(), f"{path.stem}: parameter {name} has no help"


# ------------------------------------------------------------------ execution (papermill)


def run(tmp_path: Path, name: str, **parameters) -> nbformat.NotebookNode:
    out = tmp_path / f"{name}.ipynb"
    pm.execute_notebook(
        str(NB_DIR / f"{name}.ipynb"),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(NB_DIR),
        progress_bar=False,
    )
    return nbformat.read(out, as_version=4)


def recorded(nb, tag: str) -> dict:
    """The machine-readable table or notice a tagged cell recorded."""
    for cell in nb.cells:
        if tag in cell.metadata.get("tags", []):
            for o in cell.get("outputs", []):
                data = o.get("data", {})
                for mime in (display.TABLE_MIME, display.NOTICE_MIME):
                    if mime in data:
                        value = data[mime]
                        return {
                            "mime": mime,
                            **(json.loads(value) if isinstance(value, str) else value),
                        }
    raise AssertionError(f"no recorded output in the cell tagged {tag!r}")


def rows(rec: dict) -> list[dict]:
    return [dict(zip(rec["columns"], r, strict=True)) for r in rec["data"]]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("territory", "indicator", "year", "value"),
    [
        ("provence-alpes-cote-d-azur", "fdi_decisions", 2021, 96),  # Business France / risingSUD
        (
            "toulouse",
            "ey_fdi_projects",
            2022,
            None,
        ),  # EY gives Toulouse only for 2024: outside 2016-2022
        ("france", "fdi_decisions", 2019, 1468),
    ],
)
def test_investment_notebook_for_other_territories_and_years(
    tmp_path, territory, indicator, year, value
):
    nb = run(
        tmp_path, "02-investment-attraction", territory=territory, start_year=2016, end_year=2022
    )
    rec = recorded(nb, "series-table")
    if value is None:
        assert (
            rec["mime"] == display.NOTICE_MIME
            and f"No cited investment series for {territory} in 2016-2022" in rec["text"]
        )
        return
    table = {r["year"]: r for r in rows(rec)}
    assert min(table) >= 2016 and max(table) <= 2022
    assert table[year][indicator] == value
    claims = rows(recorded(nb, "seed-claims"))
    assert claims[0]["recomputed_or_compared"] == "growth +112.5 %, CAGR 28.56 %/year"


@pytest.mark.slow
def test_investment_notebook_records_the_trend(tmp_path, inputs):
    nb = run(
        tmp_path,
        "02-investment-attraction",
        territory="aix-marseille",
        start_year=2015,
        end_year=2023,
    )
    growth = rows(recorded(nb, "trend-table"))[0]
    series, _ = investment.cited_series(inputs, "aix-marseille", (2015, 2023))
    fit = report.trend(series, "implantations", horizon=2, seed=0)
    expected = fit.estimates.set_index("term").loc["growth_rate"]
    assert growth["quantity"] == "growth rate, % per year"
    assert growth["estimate"] == pytest.approx(round(expected["estimate"], 2))
    assert growth["ci_low"] < growth["estimate"] < growth["ci_high"]


@pytest.mark.slow
@pytest.mark.parametrize("territory", ["toulouse", "brest"])
def test_territory_report_for_other_capitals(tmp_path, territory):
    nb = run(tmp_path, "10-territory-report", capital=territory)
    profile = rows(recorded(nb, "profile"))
    pop = datasets.load_derived("territory_population").query("territory_id == @territory")
    assert {(r["perimeter"], r["census_year"]): r["population_municipale"] for r in profile} == {
        (p, y): v
        for p, y, v in zip(
            pop["perimeter"], pop["census_year"], pop["population_municipale"], strict=True
        )
    }
    # both are ranked by the index (regional inputs and population growth)
    assert rows(recorded(nb, "index-rank"))[0]["territory_id"] == territory


@pytest.mark.slow
def test_index_notebook_with_other_weights(tmp_path, inputs):
    weights = [2.0, 1.0, 1.0, 0.5, 1.0]
    nb = run(
        tmp_path,
        "04-ecosystem-index",
        weights=weights,
        normalisation="zscore",
        n_draws=200,
        seed=7,
        perimeter="core",
    )
    nominal = rows(recorded(nb, "nominal"))
    from analysis.analyses import ecosystem

    frame, _ = ecosystem.index_inputs(inputs, 2023, "core")
    direct = index.composite(
        frame,
        weights=dict(zip(ecosystem.INDICATORS, weights, strict=True)),
        normalisation="zscore",
    )
    assert [r["territory_id"] for r in nominal] == direct["territory_id"].tolist()
    ranks = rows(recorded(nb, "ranks"))
    assert len(ranks) == len(direct)
    assert all(r["rank_low"] <= r["median_rank"] <= r["rank_high"] for r in ranks)


@pytest.mark.slow
def test_density_notebook_on_the_2016_census(tmp_path):
    nb = run(tmp_path, "03-startup-density", reference_year=2019, population_vintage=2016)
    dens = {r["territory_id"]: r for r in rows(recorded(nb, "density-table"))}
    assert dens["aix-marseille"]["value"] == pytest.approx(800 / 1_873_707 * 1e5, rel=1e-9)
    assert "population municipale 2016" in dens["aix-marseille"]["unit"]
    assert recorded(nb, "register")["mime"] == display.NOTICE_MIME


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "parameters", "message"),
    [
        (
            "02-investment-attraction",
            dict(territory="marseile"),
            "unknown territory 'marseile'; valid ids: aix-marseille",
        ),
        (
            "02-investment-attraction",
            dict(start_year=2022, end_year=2016),
            "start_year 2022 is after end_year 2016",
        ),
        (
            "04-ecosystem-index",
            dict(weights=[1.0, 1.0, 1.0]),
            "weights: 3 value(s) given, expected 5",
        ),
        (
            "03-startup-density",
            dict(perimeter="metropole"),
            "perimeter: 'metropole' is not allowed; choose one of 'label', 'core'",
        ),
    ],
)
def test_bad_parameters_stop_the_run_with_a_clear_message(tmp_path, name, parameters, message):
    with pytest.raises(pm.PapermillExecutionError) as e:
        run(tmp_path, name, **parameters)
    assert e.value.ename == "ParameterError"
    assert message in e.value.evalue


# ------------------------------------------------------------------ figures


def test_committed_figure_re_renders_to_the_same_bytes(inputs):
    """The trend figure stored in notebook 02 equals a fresh rendering of the same input."""
    nb = nbformat.read(NB_DIR / "02-investment-attraction.ipynb", as_version=4)
    stored = next(
        base64.b64decode(o["data"]["image/png"])
        for c in nb.cells
        if c.cell_type == "code" and "trend_figure" in c.source
        for o in c.outputs
        if "image/png" in o.get("data", {})
    )
    series, _ = investment.cited_series(inputs, "aix-marseille", (2014, 2025))
    fig = report.trend_figure(
        series, "implantations", report.trend(series, "implantations", horizon=2, seed=0)
    )
    assert plots.figure_to_png_bytes(fig) == stored


def test_execute_in_place_keeps_the_notebook_on_failure(tmp_path):
    bad = tmp_path / "bad.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("1 + 1"),
        nbformat.v4.new_code_cell("raise ValueError('boom')"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, bad)
    before = bad.read_bytes()
    with pytest.raises(Exception, match="a cell failed; the committed notebook is unchanged"):
        execute.execute_in_place(bad, timeout=60)
    assert bad.read_bytes() == before


@pytest.mark.slow
def test_density_notebook_runs_on_the_register(tmp_path):
    """startups_source="sirene" on a generated register (SYNTHETIC-TEST-DATA, labelled so):
    the notebook's register counts equal the generator's own truth, per capital."""
    from analysis.data.register import testdata as sirene_testdata

    stock = sirene_testdata.generate_stock(tmp_path / "stock", 20_000, seed=3, formats=("parquet",))
    path = next((tmp_path / "stock").glob("*.parquet"))
    assert "SYNTHETIC-TEST-DATA" in path.name
    nb = run(
        tmp_path,
        "03-startup-density",
        startups_source="sirene",
        sirene_path=str(path),
        as_of="2026-06-30",
        young_years=5,
    )
    rec = recorded(nb, "register")
    assert rec["note"].startswith("SYNTHETIC TEST DATA, NOT RESULTS")
    got = {r["territory_id"]: r["register_startups"] for r in rows(rec)}
    truth = stock.expected(as_of=sirene_testdata.FILE_DATE, young_years=5).by_code
    communes = datasets.load_derived("communes").query("census_year == 2023")
    current = communes.query("commune_type == 'commune-actuelle'").set_index("commune_code")
    epci = (
        communes["parent_commune_code"].fillna(communes["commune_code"]).map(current["epci_siren"])
    )
    label = datasets.load_derived("territories").query(
        "census_year == 2023 and perimeter == 'label'"
    )
    to_territory = dict(
        zip(
            communes["commune_code"],
            epci.map(label.set_index("epci_siren")["territory_id"]),
            strict=True,
        )
    )
    expected = (
        truth.assign(t=truth["code"].map(to_territory))
        .dropna(subset=["t"])
        .groupby("t")["startups"]
        .sum()
    )
    assert got == {t: float(expected.get(t, 0)) for t in territories.CAPITALE_IDS}


@pytest.mark.slow
def test_index_notebook_on_the_2016_census_says_why_it_cannot_run(tmp_path):
    """The regions have no 2016 population: the index stops with the reason, never mixes
    vintages."""
    with pytest.raises(pm.PapermillExecutionError) as e:
        run(tmp_path, "04-ecosystem-index", population_vintage=2016, n_draws=10)
    assert e.value.ename == "InsufficientDataError"
    assert "no population of" in e.value.evalue and "census 2016" in e.value.evalue


@pytest.mark.slow
def test_label_effect_notebook_on_a_generated_panel(tmp_path):
    """panel_path set to a panel built from a generated register (SYNTHETIC-TEST-DATA): the
    notebook's estimates are the library's, and every table says the data is generated."""
    from analysis import cli
    from analysis.data.panel_file import read_panel
    from analysis.data.register import testdata as sirene_testdata
    from analysis.methods import label_effect
    from analysis.methods.panels import check_panel

    sirene_testdata.generate_stock(tmp_path / "stock", 20_000, seed=4, formats=("parquet",))
    stock = next((tmp_path / "stock").glob("*.parquet"))
    panel = tmp_path / "SYNTHETIC-TEST-DATA-panel.csv"
    assert cli.main(["sirene", "panel", str(stock), "--out", str(panel)]) == 0
    nb = run(tmp_path, "05-label-effect", panel_path=str(panel), n_draws=99, seed=5)
    rec = recorded(nb, "label-effect")
    assert rec["note"].startswith("SYNTHETIC TEST DATA, NOT RESULTS")
    got = {(r["term"], r["event_time"]): r["estimate"] for r in rows(rec)}
    want = label_effect.estimate(
        check_panel(read_panel(panel), "creations_ict"),
        outcome="creations_ict",
        n_draws=99,
        seed=5,
    )
    overall = want[want["term"] == "overall"]["estimate"].iloc[0]
    assert got[("overall", None)] == pytest.approx(round(overall, 4))
    assert recorded(nb, "cohorts")["data"]
