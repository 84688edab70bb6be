"""The book's pages that come from the data rather than from a notebook.

- :func:`landing_page` — the findings for the focal capital, from
  :func:`analysis.analyses.headline.headline` (the function behind ``analysis indicators``):
  cards, one paragraph per area (investment attraction, start-up density, the composite
  index, and the label effect once a notebook about it is in the batch), and the table of
  headline figures. Nothing on it is typed by hand.
- :func:`bibtex` — one BibTeX ``@misc`` entry per catalogued source (publisher, title,
  publication date, URL, access date, licence), for sphinxcontrib-bibtex.
- :func:`catalogue_page` and :func:`run_log_page` — the appendices.
- :func:`capital_names` — each capital's name as the 2019 label published it
  ("Aix-Marseille Région Sud"), which titles its territory report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

from analysis.core import territories
from analysis.runs.bookconvert import Citer, escape_md, format_cell, list_table

CAPITAL_LABEL = "capitale-french-tech"
_BIB_UNSAFE = re.compile(r"[{}\\]")
_LATEX_SPECIAL = re.compile(r"([%&#$_^])")


def capital_names(labels: pd.DataFrame) -> dict[str, str]:
    """Territory id → the capital's name in the 2019 label's source (label rows)."""
    rows = labels[(labels["label"] == CAPITAL_LABEL) & labels["territory_id"].notna()]
    rows = rows.sort_values(["territory_id", "label_date"])
    return {
        str(t): str(n) for t, n in zip(rows["territory_id"], rows["name_in_source"], strict=True)
    }


def _bib_value(text: object, raw: bool = False) -> str:
    """A field value for BibTeX: braces and backslashes (which would unbalance it) dropped,
    and, unless `raw` (a URL, which pybtex does not parse), LaTeX's special characters
    escaped (``44 %`` would otherwise start a comment)."""
    s = " ".join(_BIB_UNSAFE.sub("", str(text)).split())
    return s if raw else _LATEX_SPECIAL.sub(r"\\\1", s).replace("~", "{\\textasciitilde}")


def bibtex(catalogue: pd.DataFrame) -> str:
    """One ``@misc`` entry per source of the catalogue, keyed by its ``source_id``.

    The publisher is a corporate author (double braces keep it whole), the year and month
    come from ``date_published``, and the note gives both dates and the licence, e.g.
    ``Published 2019-04-03; accessed 2026-11-20. Licence: ...``.
    """
    months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    entries = []
    for r in catalogue.sort_values("source_id").itertuples(index=False):
        published = str(r.date_published)
        fields = [
            ("author", "{" + _bib_value(r.publisher) + "}"),
            ("title", "{" + _bib_value(r.title) + "}"),
            ("howpublished", _bib_value(r.publisher)),
        ]
        if year := re.search(r"\b\d{4}\b", published):
            fields.append(("year", year.group()))
            if re.match(r"^\d{4}-\d{2}", published) and 1 <= int(published[5:7]) <= 12:
                fields.append(("month", months[int(published[5:7]) - 1]))
        fields += [
            ("url", _bib_value(r.url, raw=True)),
            ("urldate", _bib_value(r.date_accessed)),
            (
                "note",
                _bib_value(
                    f"Published {published}; accessed {r.date_accessed}. Licence: {r.licence}"
                ),
            ),
        ]
        body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields)
        entries.append(f"@misc{{{r.source_id},\n{body}\n}}\n")
    return "\n".join(entries)


# --------------------------------------------------------------------------- landing page


def _rows(ind: pd.DataFrame, indicator: str) -> pd.DataFrame:
    return ind[ind["indicator"] == indicator].sort_values(["year", "source_ids"])


def _latest(ind: pd.DataFrame, indicator: str) -> pd.Series | None:
    rows = _rows(ind, indicator)
    return None if rows.empty else rows.iloc[-1]


def _matching(ind: pd.DataFrame, pattern: str) -> pd.Series | None:
    rows = ind[ind["indicator"].str.fullmatch(pattern)].sort_values(["year", "indicator"])
    return None if rows.empty else rows.iloc[-1]


def _num(value: float, decimals: int = 1) -> str:
    return f"{value:,.{decimals}f}"


def _interval(row: pd.Series, decimals: int = 1, unit: str = "") -> str:
    if pd.isna(row.get("ci_low")) or pd.isna(row.get("ci_high")):
        return ""
    return f"{_num(row['ci_low'], decimals)} to {_num(row['ci_high'], decimals)}{unit}"


def _investment(ind: pd.DataFrame, cite: Citer) -> str:
    out = []
    growth = _matching(ind, r"implantations_growth_\d{4}_\d{4}")
    cagr = _matching(ind, r"implantations_cagr_\d{4}_\d{4}")
    if growth is not None:
        a, b = re.findall(r"\d{4}", str(growth["indicator"]))
        text = (
            f"The implantations accompanied by the metropolitan agency went from {a} to {b} "
            f"{'up' if growth['value'] >= 0 else 'down'} by {_num(abs(growth['value']))} %"
        )
        if cagr is not None:
            text += f" ({_num(cagr['value'], 2)} % a year compounded)"
        out.append(f"{text} {cite.cite(growth['source_ids'])}.")
    trend = _latest(ind, "implantations_trend_growth")
    if trend is not None:
        ci = _interval(trend)
        model = escape_md(str(trend["unit"]).removeprefix("percent per year").strip(" ()"))
        detail = "; ".join(p for p in (model, f"95 % interval {ci} %" if ci else "") if p)
        out.append(
            f"A count model fitted to every cited year gives a trend of "
            f"{trend['value']:+.1f} % a year"
            + (f" ({detail})" if detail else "")
            + f" {cite.cite(trend['source_ids'])}."
        )
    jobs = _latest(ind, "jobs_per_project")
    if jobs is not None:
        out.append(
            f"Each project brought {_num(jobs['value'])} jobs on average in "
            f"{int(jobs['year'])} {cite.cite(jobs['source_ids'])}."
        )
    foreign = _latest(ind, "foreign_share_of_implantations")
    if foreign is not None:
        out.append(
            f"{_num(foreign['value'], 0)} % of the implantations of {int(foreign['year'])} "
            f"came from abroad {cite.cite(foreign['source_ids'])}."
        )
    return " ".join(out) or "No investment figure is cited for this territory."


def _density(ind: pd.DataFrame, cite: Citer) -> str:
    out = []
    d = _latest(ind, "startups_declared_per_100k")
    if d is not None:
        out.append(
            f"The latest declared start-up count ({int(d['year'])}) amounts to "
            f"{_num(d['value'])} {escape_md(d['unit'])} {cite.cite(d['source_ids'])}; "
            "declared counts follow each publisher's own definition and are not comparable "
            "between capitals."
        )
    oe = _latest(ind, "startups_declared_observed_to_expected")
    rank = _latest(ind, "startups_declared_observed_to_expected_rank")
    if oe is not None:
        ci = _interval(oe, 2)
        lo, hi = oe.get("ci_low"), oe.get("ci_high")
        if ci and lo <= 1 <= hi:  # the interval holds 1: no clear difference
            side = "about as many start-ups as"
        else:
            side = "fewer start-ups than" if oe["value"] < 1 else "more start-ups than"
        text = (
            f"Given its population, the capital declares {side} a count model of the "
            f"capitals expects: observed over expected is {_num(oe['value'], 2)}"
            + (f" (95 % interval {ci})" if ci else "")
        )
        if rank is not None:
            text += f", {escape_md(str(rank['unit']).replace('rank among', 'rank ' + format_cell(rank['value']) + ' among'))}"
        out.append(f"{text} {cite.cite(oe['source_ids'])}.")
    return " ".join(out) or "No declared start-up count is cited for this territory."


def _index(ind: pd.DataFrame, cite: Citer) -> str:
    r = _latest(ind, "ecosystem_index_median_rank")
    if r is None:
        return (
            "The composite index does not rank this territory: it lacks at least one input, "
            "and nothing is imputed."
        )
    unit = str(r["unit"])
    among = re.search(r"among (\d+) capitals", unit)
    ci = _interval(r, 0)
    return (
        f"On the composite index (OECD/JRC handbook, equal weights, Monte Carlo over the "
        f"weights), the median rank is {format_cell(r['value'])}"
        + (f" of the {among.group(1)} capitals ranked" if among else "")
        + (f", with a 90 % rank interval from {ci}" if ci else "")
        + f" {cite.cite(r['source_ids'])}. Overlapping rank intervals mean that two "
        "capitals cannot be ordered with confidence."
    )


def _cards(ind: pd.DataFrame, cite: Citer) -> str:
    specs = [
        ("population_municipale", "inhabitants", 0),
        ("startups_declared_per_100k", "declared start-ups per 100,000 inhabitants", 1),
        ("implantations_trend_growth", "percent a year: trend of the implantations", 1),
        ("ecosystem_index_median_rank", "median rank on the composite index", 0),
    ]
    cards = []
    for indicator, what, decimals in specs:
        r = _latest(ind, indicator)
        if r is None:
            continue
        value = _num(r["value"], decimals)
        ci = _interval(r, decimals)
        extra = f" (interval {ci})" if ci else ""
        cards.append(
            "\n".join(
                [
                    ":::{container} analysis-card",
                    f"**{value}**",
                    "",
                    f"{what}, {int(r['year'])}{extra} {cite.cite(r['source_ids'])}",
                    ":::",
                ]
            )
        )
    return "\n".join(["::::{container} analysis-cards", *cards, "::::"]) if cards else ""


def _headline_table(ind: pd.DataFrame, cite: Citer) -> str:
    columns = ["indicator", "year", "value", "unit", "interval", "sources"]
    rows = []
    for r in ind.itertuples(index=False):
        ci = (
            ""
            if pd.isna(r.ci_low) or pd.isna(r.ci_high)
            else f"{format_cell(r.ci_low)} to {format_cell(r.ci_high)}"
        )
        rows.append([r.indicator, int(r.year), float(r.value), r.unit, ci, r.source_ids])

    def cell(value: object, column: str) -> str:
        if column == "sources":
            return cite.cite(value)
        if column == "indicator":
            return escape_md(str(value).replace("_", " "))
        return escape_md(format_cell(value, column))

    return list_table(
        columns,
        rows,
        caption="Headline figures (the rows of `analysis indicators`)",
        name="tbl-headline",
        cells=cell,
    )


def landing_page(
    indicators: pd.DataFrame,
    *,
    name: str,
    citer: Citer,
    label_chapter: str | None = None,
) -> str:
    """The landing page's Markdown, before its table of contents.

    Parameters
    ----------
    indicators : the headline table of the focal territory (``Headline.indicators``).
    name : the focal capital's name.
    citer : turns source ids into citations.
    label_chapter : the docname of a notebook on the label's effect, when the batch has one;
        its paragraph appears only then.
    """
    parts = [
        "# French Tech capitals: investment attraction and start-up density",
        "",
        f"How well does a metropolitan tech ecosystem attract investment, and how dense is its "
        f"start-up fabric? The first case is **{escape_md(name)}**, one of the 13 Capitales "
        "French Tech labelled on 3 April 2019, compared with the twelve other capitals and "
        "with France. Every number below comes from the headline function behind "
        "`analysis indicators`, with its sources cited and, where a model gives one, its "
        "interval (see {numref}`tbl-headline`).",
        "",
        _cards(indicators, citer),
        "",
        "## Investment attraction",
        "",
        _investment(indicators, citer),
        "",
        "## Start-up density",
        "",
        _density(indicators, citer),
        "",
        "## The ecosystem index",
        "",
        _index(indicators, citer),
        "",
    ]
    if label_chapter:
        parts += [
            "## The label effect",
            "",
            "Whether the French Tech labels changed anything is estimated in "
            f"{{doc}}`/{label_chapter}`, against the territories that were not labelled.",
            "",
        ]
    parts += ["## Headline figures", "", _headline_table(indicators, citer), ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- appendices


def catalogue_page(catalogue: pd.DataFrame, citer: Citer) -> str:
    """The data catalogue appendix: one row per source, its citation and its link."""
    df = catalogue.sort_values("source_id")
    columns = ["source_id", "publisher", "title", "date_published", "date_accessed", "licence"]
    columns += ["rows"]
    # the title cell carries its URL: (title, url), shown as a link
    rows = [
        [(r.title, r.url) if c == "title" else getattr(r, c) for c in columns]
        for r in df.itertuples(index=False)
    ]

    def cell(value: object, column: str) -> str:
        if column == "source_id":
            return f"{citer.cite(value)} `{value}`"
        if column == "title":
            title, url = value  # type: ignore[misc]
            return f"[{escape_md(title)}](<{url}>)"
        return escape_md(format_cell(value, column))

    n_rows = int(df["rows"].sum()) if len(df) else 0
    return "\n".join(
        [
            "# Data catalogue",
            "",
            f"{len(df)} sources and {format_cell(n_rows)} table rows. Each raw file sits in "
            "`data/raw/<source_id>/` beside a sidecar recording its origin, licence and "
            "sha256; figures were transcribed with a verbatim locator (see "
            "{numref}`tbl-catalogue` and the {doc}`/references`).",
            "",
            list_table(
                columns,
                rows,
                caption="The catalogue",
                name="tbl-catalogue",
                cells=cell,
            ),
            "",
        ]
    )


def run_log_page(manifest: dict, entries: Iterable[dict], pages: dict[str, str]) -> str:
    """The run log appendix: each run of the manifest, its parameters, status and page."""
    columns = ["run", "notebook", "parameters", "status", "duration"]
    rows = []
    for e in entries:
        rid = str(e["id"])
        params = e.get("parameters") or {}
        status = str(e.get("status", "unknown"))
        if status == "failed" and e.get("error"):
            status += ": " + " ".join(str(e["error"]).split())[:300]
        duration = e.get("duration_s")
        rows.append(
            [
                rid,
                str(e.get("notebook", "")),
                ", ".join(f"{k} = {params[k]}" for k in sorted(params)) or "defaults",
                status,
                f"{duration:.1f} s" if isinstance(duration, int | float) else "",
            ]
        )

    def cell(value: object, column: str) -> str:
        if column == "run" and value in pages:
            return f"{{doc}}`{escape_md(value)} </{pages[str(value)]}>`"
        return escape_md(value)

    batch = manifest.get("batch") or {}
    when = (
        f" The last batch ran from {batch['started_at']} to {batch.get('finished_at', '?')}."
        if batch.get("started_at")
        else ""
    )
    digest = manifest.get("data_sha256", "")
    data = (
        f" Data digest `{digest[:12]}` over {len(manifest.get('data_files') or {})} files."
        if digest
        else ""
    )
    return "\n".join(
        [
            "# Run log",
            "",
            f"Every run of the batch ({{numref}}`tbl-run-log`), package version "
            f"{escape_md(manifest.get('analysis_version', '?'))}.{when}{data}",
            "",
            list_table(
                columns, rows, caption="The runs of the batch", name="tbl-run-log", cells=cell
            ),
            "",
        ]
    )


def focal_territory() -> str:
    return territories.FOCAL_TERRITORY


__all__ = [
    "bibtex",
    "capital_names",
    "catalogue_page",
    "focal_territory",
    "landing_page",
    "run_log_page",
]
