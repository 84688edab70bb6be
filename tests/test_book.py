"""`analysis book`: the executed notebooks as a Sphinx + MyST-NB book, checked on its values.

The conversion's pieces are tested on known answers (labels, number formats, BibTeX, a
small notebook); then two runs of the default grid (notebook 02 and the Aix-Marseille
territory report) are executed into a temporary folder, the book is built from them, and
its pages are read: figure numbers and captions, citations resolving to the right sidecar,
the CSV behind a figure equal to the frame the figure drew, thousands separators, no asset
from the network, the search index; headless Chromium opens it from ``file://``.
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.analyses import investment
from analysis.data import catalog
from analysis.outputs import figures, sections
from analysis.runs import batch, book, bookconvert, bookpages, lock
from analysis.runs import grid as grids

from .test_batch import cli
from .test_browser import CHROMIUM, SKIP_REASON, Tab, browser, tab  # noqa: F401 (fixtures)

INVESTMENT = "02-investment-attraction"
TERRITORY = "10-territory-report__capital=aix-marseille"

# --------------------------------------------------------------------------- the pieces


@pytest.mark.parametrize(
    ("value", "column", "shown"),
    [
        (1873707, "population_municipale", "1,873,707"),
        (1939077.0, "value", "1,939,077"),
        (2.644623808, "value", "2.645"),
        (51.2195122, "value", "51.22"),
        (0.05234, "ratio", "0.05234"),
        (1234.56, "value", "1,234.6"),
        (-12.5, "value", "-12.5"),
        (2019, "year", "2019"),
        (2016, "census_year", "2016"),
        (float("nan"), "value", "–"),
        (None, "value", "–"),
        ("aix-marseille", "territory_id", "aix-marseille"),
    ],
)
def test_cells_are_formatted_for_a_reader(value, column, shown):
    assert bookconvert.format_cell(value, column) == shown


@pytest.mark.parametrize(
    ("column", "label"),
    [
        ("implantations", "Implantations accompanied by the agency (projects)"),
        ("foreign_share_of_jobs", "Foreign share of jobs (%)"),
        ("population_municipale", "Population (inhabitants)"),
        ("territory_id", "Territory"),
        ("max_abs_rank_shift", "Largest rank shift"),
        ("years_with_some_thing", "Years with some thing"),
    ],
)
def test_columns_get_labels_with_units(column, label):
    assert bookconvert.column_label(column) == label


def test_the_book_reads_the_key_figures_write():
    assert bookconvert.FIGURE_MIME == figures.FIGURE_MIME


def test_markdown_specials_are_escaped():
    assert bookconvert.escape_md("a_b *c* [d] <e> |f| $g$ `h`") == (
        r"a\_b \*c\* \[d\] \<e\> \|f\| \$g\$ \`h\`"
    )
    assert bookconvert.escape_md("two\nlines") == "two lines"


def test_unknown_sources_are_shown_not_dropped():
    citer = bookconvert.Citer(frozenset({"a", "b"}))
    assert citer.cite("b;a") == "{cite:p}`a,b`"
    assert citer.cite(["a", "zz"]) == "{cite:p}`a` `zz`"
    assert citer.sources_line("a") == "Source: {cite:p}`a`."


def test_capitals_are_named_as_the_label_published_them(inputs):
    names = bookpages.capital_names(inputs.labels)
    assert names["aix-marseille"] == "Aix-Marseille Région Sud"
    assert names["alps"] == "In the Alps (Grenoble-Valence-Annecy)"
    assert len(names) == 13


def test_every_source_has_a_bibtex_entry_that_pybtex_formats(inputs):
    from pybtex.database import parse_string
    from pybtex.plugin import find_plugin

    text = bookpages.bibtex(inputs.sources)
    db = parse_string(text, "bibtex")
    assert sorted(db.entries) == sorted(inputs.sources["source_id"])
    seed = inputs.sources.set_index("source_id").loc[
        "nouvellespublications-investissements-etrangers-bondissent-paca-2021"
    ]
    entry = db.entries["nouvellespublications-investissements-etrangers-bondissent-paca-2021"]
    assert entry.fields["url"] == seed["url"]
    assert entry.fields["year"] == "2022"  # "unknown (2022)": the year the sidecar gives
    assert entry.fields["urldate"] == seed["date_accessed"]
    style = find_plugin("pybtex.style.formatting", "unsrt")()
    rendered = {e.key: e.text.render_as("text") for e in style.format_entries(db.entries.values())}
    # "44 %" is escaped, so the title survives LaTeX parsing whole
    assert "Les investissements étrangers bondissent de 44 % en Paca" in rendered[entry.key]


def _png_output(fig: figures.CaptionedFigure) -> dict:
    data, meta = fig._repr_mimebundle_()
    return {
        "output_type": "execute_result",
        "execution_count": 1,
        "data": {"image/png": base64.b64encode(data["image/png"]).decode(), "text/plain": "fig"},
        "metadata": json.loads(json.dumps(meta)),
    }


def test_a_figure_records_the_frame_it_drew():
    frame = pd.DataFrame(
        {
            "territory_id": ["aix-marseille", "lyon-saint-etienne"],
            "value": [41.3, 60.0],
            "source_ids": ["s1", "s2;s3"],
        }
    )
    fig = figures.ranked_bars(frame, title="Declared start-ups")
    _, meta = fig._repr_mimebundle_()
    record = meta[figures.FIGURE_MIME]
    assert record["title"] == "Declared start-ups"
    assert record["source_ids"] == ["s1", "s2", "s3"]
    got = pd.DataFrame(record["data"]["data"], columns=record["data"]["columns"])
    assert got.set_index("territory_id")["value"].to_dict() == {
        "aix-marseille": 41.3,
        "lyon-saint-etienne": 60.0,
    }
    assert got.set_index("territory_id")["source_ids"]["lyon-saint-etienne"] == "s2;s3"
    assert meta["image/png"]["width"] > 0


def test_a_notebook_is_converted_into_numbered_tables_and_figures():
    fig = figures.ranked_bars(
        pd.DataFrame({"territory_id": ["a", "b"], "value": [1.5, 2.0], "source_ids": ["s1", "s2"]}),
        title="Two bars",
        note="A note.",
    )
    table = {
        "output_type": "execute_result",
        "execution_count": 2,
        "metadata": {},
        "data": {
            "text/plain": "t",
            bookconvert.TABLE_MIME: {
                "columns": ["year", "population_municipale", "source_ids"],
                "data": [[2023, 1939077, "s1"]],
                "sources": ["s1", "unknown-id"],
                "note": "Census 2023.",
            },
        },
    }
    stream = {"output_type": "stream", "name": "stdout", "text": "Territory: aix-marseille\n"}
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"papermill": {"parameters": {}}},
        "cells": [
            {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# Territory report\n"},
            {
                "cell_type": "code",
                "id": "c1",
                "metadata": {},
                "source": "p = 1",
                "outputs": [stream],
                "execution_count": 1,
            },
            {"cell_type": "markdown", "id": "m2", "metadata": {}, "source": "## Size\n"},
            {
                "cell_type": "code",
                "id": "c2",
                "metadata": {},
                "source": "t",
                "outputs": [table],
                "execution_count": 2,
            },
            {
                "cell_type": "code",
                "id": "c3",
                "metadata": {"tags": ["x"]},
                "source": "f",
                "outputs": [_png_output(fig)],
                "execution_count": 3,
            },
        ],
    }
    page = bookconvert.convert_notebook(
        nb,
        page_id="p",
        citer=bookconvert.Citer(frozenset({"s1", "s2"})),
        title="Aix-Marseille Région Sud",
    )
    cells = page.notebook["cells"]
    assert cells[0]["source"] == "# Aix-Marseille Région Sud\n"
    assert cells[1]["source"].startswith(
        "This page shows figure {numref}`fig-p-1` and table {numref}`tbl-p-1`."
    )
    assert cells[2]["metadata"]["tags"] == ["hide-cell"]  # printed text folded with its code
    assert cells[2]["outputs"] == [stream]
    code_table, md_table = cells[4], cells[5]
    assert code_table["metadata"]["tags"] == ["hide-input"] and code_table["outputs"] == []
    md = md_table["source"]
    assert ":::{list-table} Size\n:header-rows: 1\n:name: tbl-p-1" in md
    assert "- Census year" not in md and "- Year\n  - Population (inhabitants)" in md
    assert "* - 2023\n  - 1,939,077" in md
    assert md.endswith("Sources: {cite:p}`s1` `unknown-id`. Census 2023.")
    assert cells[6]["metadata"]["tags"] == ["x", "hide-input"]
    fig_md = cells[7]["source"]
    assert fig_md.startswith(":::{figure} /figures/p/fig1.png\n:name: fig-p-1\n")
    assert "**Two bars.** A note. Sources: {cite:p}`s1,s2`." in fig_md
    assert "[Download the data (CSV)](/data/p/fig1.csv)" in fig_md
    assert page.files["data/p/fig1.csv"].decode().splitlines() == [
        "territory_id,value,source_ids",
        "b,2.0,s2",
        "a,1.5,s1",
    ]
    assert page.files["figures/p/fig1.png"] == figures.figure_to_png_bytes(fig)
    assert all(c.get("id") for c in cells)
    assert "papermill" not in page.notebook["metadata"]


def test_nothing_to_build_is_one_line(tmp_path, capsys):
    (tmp_path / "reports").mkdir()
    assert cli(["book", "--reports", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("error: nothing to put in the book") and "run `analysis run` first" in err


def test_missing_register_counts_are_one_line(tmp_path, capsys):
    (tmp_path / "reports").mkdir()
    argv = ["book", "--reports", str(tmp_path / "reports"), "--register-counts", "nope.csv"]
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: --register-counts: nope.csv is not a file (the CSV of "
        "`analysis sirene aggregate --level epci`)"
    )


def test_a_book_is_refused_while_a_batch_writes(tmp_path):
    out = tmp_path / "reports"
    (out / "notebooks").mkdir(parents=True)
    with lock.output_lock(out), pytest.raises(lock.BatchLockedError, match="another analysis run"):
        book.build_book(out)
    assert not (out / "site").exists()


# --------------------------------------------------------------------------- the built book


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """Notebook 02 and the Aix-Marseille report, executed as in the default grid, then the book."""
    runs = {r.id: r for r in grids.load_grid(grids.default_grid())}
    grid = tmp_path_factory.mktemp("grid") / "runs.yaml"
    entries = [
        {"notebook": str(runs[rid].notebook), "parameters": runs[rid].parameters}
        for rid in (INVESTMENT, TERRITORY)
    ]
    grid.write_text(yaml.safe_dump(entries), encoding="utf-8")
    out = tmp_path_factory.mktemp("book") / "reports"
    result = batch.run_grid(grid, out_dir=out, workers=2, timeout=300, progress=False)
    assert not result.failed, result.failed
    book.build_book(out, jobs=2)
    return out


def _page(built: Path, name: str) -> str:
    return (built / "site" / name).read_text(encoding="utf-8")


def _captions(page: str) -> list[tuple[str, str]]:
    """(number, caption html) of every figure caption on a page."""
    out = []
    for cap in re.findall(r"<figcaption>(.*?)</figcaption>", page, flags=re.S):
        number = re.search(r'<span class="caption-number">([^<]*)</span>', cap)
        text = cap.split('<span class="caption-text">', 1)[-1]
        out.append((number.group(1).strip() if number else "", text))
    return out


@pytest.mark.slow
def test_figures_are_numbered_with_their_caption(built):
    captions = _captions(_page(built, "chapters/02-investment-attraction.html"))
    assert len(captions) == 4
    number, caption = captions[0]
    # the first figure of the first chapter is Figure 1: the implantations and their trend
    assert number == "Figure 1"
    assert caption.startswith("<strong>Implantations accompanied by Provence Promotion.</strong>")
    assert "Download the data (CSV)" in caption
    maps = _captions(_page(built, "chapters/maps.html"))  # after the chapter: Figures 5-7
    assert [n for n, _ in maps] == ["Figure 5", "Figure 6", "Figure 7"]
    assert maps[1][1].startswith("<strong>Population density by EPCI, 2022.</strong>")
    assert "ETRS89-LAEA" in maps[1][1] and all("Download the data (CSV)" in c for _, c in maps)
    assert "register" not in _page(built, "chapters/maps.html")  # no counts given
    report = _captions(_page(built, "territories/aix-marseille.html"))
    assert [n for n, _ in report] == ["Figure 8", "Figure 9"]
    for name in (
        "chapters/02-investment-attraction.html",
        "chapters/maps.html",
        "territories/aix-marseille.html",
    ):
        page = _page(built, name)
        assert page.count("<figure") == len(_captions(page))  # every figure is numbered


@pytest.mark.slow
def test_citations_resolve_to_the_sidecar_of_their_source(built, inputs):
    page = _page(built, "chapters/02-investment-attraction.html")
    refs = _page(built, "references.html")
    _, caption = _captions(page)[0]
    links = re.findall(
        r'<a class="reference internal" href="\.\./references\.html#([^"]+)"[^>]*>(\d+)</a>',
        caption,
    )
    record = _records(built, INVESTMENT)[0]
    assert len(links) == len(record["source_ids"]) >= 2
    sources = inputs.sources.set_index("source_id")
    cited_texts = []
    for anchor, _label in links:
        m = re.search(rf'id="{re.escape(anchor)}".*?</div>', refs, flags=re.S)
        assert m, anchor
        cited_texts.append(html.unescape(re.sub(r"<[^>]+>", "", m.group(0))))
    for sid in record["source_ids"]:
        title, url = sources.loc[sid, "title"], sources.loc[sid, "url"]
        assert sum(title in t and url in t for t in cited_texts) == 1, sid


def _records(built: Path, rid: str) -> list[dict]:
    nb = json.loads((built / "notebooks" / f"{rid}.ipynb").read_text(encoding="utf-8"))
    return [
        o["metadata"][figures.FIGURE_MIME]
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if figures.FIGURE_MIME in o.get("metadata", {})
    ]


@pytest.mark.slow
def test_the_csv_link_gives_the_frame_the_figure_drew(built, inputs):
    page = _page(built, "chapters/02-investment-attraction.html")
    href = re.search(r'href="(\.\./_downloads/[^"]+/fig1\.csv)"', _captions(page)[0][1]).group(1)
    got = pd.read_csv(built / "site" / "chapters" / href)
    # the same figure drawn again from the library, as notebook 02 draws it
    series, _ = investment.cited_series(inputs, "aix-marseille", (2014, 2025))
    fit = sections.trend(series, "implantations", horizon=2, seed=0)
    drawn = sections.trend_figure(series, "implantations", fit).data.reset_index(drop=True)
    assert list(got.columns) == list(drawn.columns)
    assert got["source_ids"].notna().all()  # projected years carry the ids they come from
    pd.testing.assert_frame_equal(
        got[["year", "value"]].astype(float), drawn[["year", "value"]].astype(float)
    )
    observed = got[got["value"].notna()]
    assert (observed["year"] == 2014).any() and observed.set_index("year")["value"][2014] == 63


@pytest.mark.slow
def test_tables_have_labels_units_and_thousands_separators(built):
    page = _page(built, "territories/aix-marseille.html")
    assert "<title>Aix-Marseille Région Sud" in page
    assert "Population (inhabitants)" in page
    assert "1,873,707" in page and "1,939,077" in page  # the 2016 and 2023 censuses
    assert "population_municipale</th>" not in page
    assert 'class="analysis-scroll' in page
    assert "Territory: aix-marseille" in page  # printed text kept, folded with its code
    landing = _page(built, "index.html")
    assert "Aix-Marseille Région Sud" in landing and "Investment attraction" in landing
    assert "The label effect" not in landing  # no label notebook in this batch


_ASSET = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio)\b[^>]*?\b(?:src|href)\s*=\s*[\"']"
    r"(?:https?:)?//",
    re.I,
)
_CSS_REMOTE = re.compile(r"(?:url\(\s*[\"']?|@import\s+[\"'])(?:https?:)?//", re.I)
_JS_REMOTE = re.compile(r"(?:import\s*\(?\s*|fetch\s*\(\s*|\.src\s*=\s*)[\"'](?:https?:)?//", re.I)


@pytest.mark.slow
def test_nothing_is_loaded_from_the_network(built):
    site = built / "site"
    offenders = []
    for p in site.rglob("*"):
        if p.suffix == ".html":
            text = p.read_text(encoding="utf-8")
            offenders += [f"{p}: {m}" for m in _ASSET.findall(text)]
            assert "mathjax" not in text.lower(), p
        elif p.suffix == ".css":
            offenders += [f"{p}: {m}" for m in _CSS_REMOTE.findall(p.read_text(errors="replace"))]
        elif p.suffix == ".js":
            offenders += [f"{p}: {m}" for m in _JS_REMOTE.findall(p.read_text(errors="replace"))]
    assert offenders == []
    # the search index is a script file, which file:// pages can load
    index = (site / "searchindex.js").read_text(encoding="utf-8")
    assert index.startswith("Search.setIndex(") and index.endswith(")")
    titles = json.loads(index[len("Search.setIndex(") : -1])["titles"]
    assert "Aix-Marseille Région Sud" in titles


@pytest.mark.slow
def test_references_list_every_catalogued_source_with_its_url(built, inputs):
    refs = html.unescape(_page(built, "references.html"))
    for r in inputs.sources.itertuples(index=False):
        assert f'href="{r.url}"' in refs, r.source_id
    assert refs.count('<div class="citation"') == len(inputs.sources) or refs.count(
        'role="doc-biblioentry"'
    ) == len(inputs.sources)
    appendix = _page(built, "appendices/catalogue.html")
    assert f"{len(catalog.catalogue())} sources" in appendix


@pytest.mark.slow
def test_a_rebuild_rewrites_only_what_changed(built):
    src = built / book.BOOK_WORK / "src"
    before = {p: p.stat().st_mtime_ns for p in src.rglob("*") if p.is_file()}
    book.build_book(built)
    assert {p: p.stat().st_mtime_ns for p in src.rglob("*") if p.is_file()} == before
    nb_path = built / "notebooks" / f"{INVESTMENT}.ipynb"
    original = nb_path.read_text(encoding="utf-8")
    nb = json.loads(original)
    first = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    first["source"] = "".join(first["source"]) + "\n\nAn added sentence, for the test."
    nb_path.write_text(json.dumps(nb), encoding="utf-8")
    try:
        book.build_book(built)
        after = {p: p.stat().st_mtime_ns for p in src.rglob("*") if p.is_file()}
        changed = sorted(p.relative_to(src).as_posix() for p in after if after[p] != before.get(p))
        assert changed == [f"chapters/{INVESTMENT}.ipynb"]
        assert "An added sentence, for the test." in _page(built, f"chapters/{INVESTMENT}.html")
    finally:
        nb_path.write_text(original, encoding="utf-8")
    assert not [p for p in built.iterdir() if p.name.startswith(".site")]  # swapped whole


# --------------------------------------------------------------------------- in a browser


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
def test_the_book_opens_offline_in_a_browser(built, tab):  # noqa: F811 (the fixture)
    site = built / "site"
    tab.dt.send("Network.enable", session=tab.session)
    tab.goto((site / "index.html").as_uri())
    assert tab.errors() == []

    tab.dt.send("Network.enable", session=tab.session)
    tab.goto((site / "territories" / "aix-marseille.html").as_uri())
    tab.eval("0")
    requested = [
        e["params"]["request"]["url"]
        for e in tab.dt.events
        if e.get("sessionId") == tab.session and e["method"] == "Network.requestWillBeSent"
    ]
    assert requested and all(u.startswith(("file://", "data:")) for u in requested), requested
    assert tab.errors() == []
    assert tab.eval("document.images.length") >= 2
    assert tab.eval("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert tab.eval("document.title").startswith("Aix-Marseille Région Sud")

    tab.goto((site / "search.html").as_uri() + "?q=Aix-Marseille")
    deadline = time.monotonic() + 20
    hits: list[str] = []
    while time.monotonic() < deadline and not hits:
        hits = tab.eval(
            "Array.from(document.querySelectorAll('#search-results li a')).map(a => a.href)"
        )
        time.sleep(0.2)
    assert any(h.split("?")[0].endswith("territories/aix-marseille.html") for h in hits), hits
    assert tab.errors() == []


def _headline_rows() -> pd.DataFrame:
    rows = [
        ("implantations_growth_2014_2023", 2023, 12.6984127, "percent", "a;b", None, None),
        ("implantations_cagr_2014_2023", 2023, 1.337140272, "percent per year", "a;b", None, None),
        (
            "implantations_trend_growth",
            2023,
            2.644623808,
            "percent per year (poisson trend, 2014-2023)",
            "c",
            0.02,
            5.31,
        ),
        (
            "startups_declared_per_100k",
            2019,
            41.25674225,
            "start-ups per 100,000 inhabitants",
            "d",
            None,
            None,
        ),
        ("startups_declared_observed_to_expected", 2019, 0.7237796187, "ratio", "d", 0.39, 1.79),
        (
            "ecosystem_index_median_rank",
            2023,
            7.0,
            "rank among 7 capitals (90 % rank interval)",
            "e",
            7.0,
            7.0,
        ),
        ("population_municipale", 2023, 1939077.0, "inhabitants", "f", None, None),
    ]
    cols = ["indicator", "year", "value", "unit", "source_ids", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=cols).assign(territory_id="aix-marseille")


def test_the_landing_page_reads_the_headline_figures():
    citer = bookconvert.Citer(frozenset("abcdef"))
    page = bookpages.landing_page(_headline_rows(), name="Aix-Marseille Région Sud", citer=citer)
    assert "went from 2014 to 2023 up by 12.7 % (1.34 % a year compounded) {cite:p}`a,b`." in page
    assert "a trend of +2.6 % a year (poisson trend, 2014-2023; 95 % interval 0.0 to 5.3 %)" in page
    # an interval that holds 1 is no evidence of fewer (or more) start-ups than expected
    assert "declares about as many start-ups as a count model of the capitals expects" in page
    assert "observed over expected is 0.72 (95 % interval 0.39 to 1.79)" in page
    assert (
        "the median rank is 7 of the 7 capitals ranked, with a 90 % rank interval from 7 to 7"
        in page
    )
    assert "**1,939,077**" in page  # the population card, with its separator
    assert "The label effect" not in page
    with_label = bookpages.landing_page(
        _headline_rows(), name="X", citer=citer, label_chapter="chapters/05-label-effect"
    )
    assert "## The label effect" in with_label and "{doc}`/chapters/05-label-effect`" in with_label
