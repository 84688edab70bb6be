"""One executed notebook as a page of the book: the conversion MyST-NB then reads, unexecuted.

:func:`convert_notebook` takes an executed notebook (``reports/notebooks/<id>.ipynb``) and
returns the notebook the book renders, with the files it refers to:

- every code cell is folded behind a toggle (MyST-NB's ``hide-input`` tag); a cell whose
  only outputs are printed text (``Territory: aix-marseille``) is folded whole with its text
  (``hide-cell``);
- every package table (the :data:`~analysis.outputs.tables.TABLE_MIME` output) becomes a
  numbered MyST ``list-table``: column labels with their units instead of snake_case names
  (:func:`column_label`), thousands separators (:func:`format_cell`), a box that scrolls
  sideways, and numbered citations beneath in place of the list of source ids;
- every figure (a PNG output carrying the :data:`~analysis.outputs.figures.FIGURE_MIME`
  record) becomes a numbered figure whose caption holds its title, note, citations and a
  "Download the data (CSV)" link to the frame it drew, ``source_ids`` included;
- a notice ("no data for this section") becomes an admonition;
- the page opens with a sentence that links its figures and tables.

Citations use sphinxcontrib-bibtex's ``{cite:p}`` role with the source ids as keys (the
References page holds one BibTeX entry per catalogued source); an id the catalogue does
not know is shown as a literal rather than dropped.
"""

from __future__ import annotations

import base64
import copy
import io
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from analysis.core.indicators import INDICATORS
from analysis.outputs.tables import NOTICE_MIME, TABLE_MIME

#: :data:`analysis.outputs.figures.FIGURE_MIME`, repeated so that the book does not import
#: matplotlib and seaborn (seconds) to read it; a test keeps the two equal.
FIGURE_MIME = "application/vnd.analysis.figure+json"

_SOURCE_COLUMNS = ("source_ids", "source_id")

#: Display labels of the columns the package's tables use; a unit, where one applies,
#: goes in brackets after the label. Indicator columns take their description and unit
#: from :data:`analysis.core.indicators.INDICATORS`.
COLUMN_LABELS: dict[str, str] = {
    "territory_id": "Territory",
    "territories": "Territories",
    "indicator": "Indicator",
    "year": "Year",
    "census_year": "Census year",
    "first_year": "First year",
    "last_year": "Last year",
    "label_date": "Label date",
    "date_published": "Published",
    "value": "Value",
    "values": "Values",
    "unit": "Unit",
    "label": "Label",
    "name_in_source": "Name in the source",
    "population_municipale": "Population (inhabitants)",
    "n_communes": "Communes",
    "epci_names": "EPCI",
    "epci_sirens": "EPCI SIREN",
    "ci_low": "95 % interval, low",
    "ci_high": "95 % interval, high",
    "pi_low": "Prediction interval, low",
    "pi_high": "Prediction interval, high",
    "median_rank": "Median rank",
    "nominal_rank": "Nominal rank",
    "rank_low": "Rank interval, low",
    "rank_high": "Rank interval, high",
    "max_abs_rank_shift": "Largest rank shift",
    "mean_abs_rank_shift": "Mean rank shift",
    "score_median": "Median score",
    "observed": "Observed",
    "expected": "Expected",
    "ratio": "Observed / expected",
    "ratio_low": "Ratio, 95 % low",
    "ratio_high": "Ratio, 95 % high",
    "missing_years": "Years without a figure",
    "years_with_data": "Years with a figure",
    "sd": "Standard deviation",
    "in_the_article": "In the article",
    "recomputed_or_compared": "Recomputed or compared",
    "total_effect": "Total effect",
    "first_order": "First-order effect",
    "source_type": "Type",
    "rows": "Rows",
    "facts": "Cited figures",
}

_WORD_COLUMNS = ("year", "code", "siren", "insee", "sirens", "date")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|$~^])")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def escape_md(text: object) -> str:
    """`text` on one line, with the characters Markdown or MyST would interpret escaped."""
    s = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", s)


def column_label(name: str) -> str:
    """The header shown for column `name`: its label, with the unit in brackets.

    ``implantations`` → ``Implantations accompanied by the agency (projects)``; an unknown
    ``some_column`` → ``Some column``.
    """
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    if name in INDICATORS:
        spec = INDICATORS[name]
        desc = spec.description[:1].upper() + spec.description[1:]
        unit = "%" if spec.unit == "percent" else spec.unit
        return f"{desc} ({unit})"
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _is_word_column(name: str) -> bool:
    """Columns whose numbers are names (years, codes): shown without separators."""
    return any(name == w or name.endswith("_" + w) for w in _WORD_COLUMNS)


def format_cell(value: object, column: str = "") -> str:
    """A value as a reader reads it: thousands separators, at most four significant digits
    after the point, ``–`` for a missing value; years and codes as they are.

    ``1873707`` → ``1,873,707``; ``2.644623808`` → ``2.645``; ``0.05234`` → ``0.05234``;
    ``2019`` in a ``year`` column → ``2019``.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and _is_word_column(column):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer():
            return f"{int(value):,}"
        size = abs(value)
        decimals = 1 if size >= 1000 else max(0, 3 - int(math.floor(math.log10(size))))
        return f"{value:,.{decimals}f}".rstrip("0").rstrip(".")
    return str(value)


@dataclass
class Citer:
    """Writes citations for the source ids of the catalogue; others stay visible as ids."""

    known: frozenset[str]

    def ids(self, sources: Iterable[str] | str | None) -> list[str]:
        if sources is None:
            return []
        if isinstance(sources, str):
            sources = [sources]
        out: list[str] = []
        for s in sources:
            for part in str(s).split(";"):
                if part.strip() and part.strip() not in out:
                    out.append(part.strip())
        return sorted(out)

    def cite(self, sources: Iterable[str] | str | None) -> str:
        """``{cite:p}`a,b``` (numbered ``[1, 2]`` in the book), unknown ids as literals."""
        ids = self.ids(sources)
        keys = [i for i in ids if i in self.known]
        unknown = [i for i in ids if i not in self.known]
        parts = [f"{{cite:p}}`{','.join(keys)}`"] if keys else []
        parts += [f"`{i}`" for i in unknown]
        return " ".join(parts)

    def sources_line(self, sources: Iterable[str] | str | None) -> str:
        cited = self.cite(sources)
        n = len(self.ids(sources))
        return f"{'Source' if n == 1 else 'Sources'}: {cited}." if cited else ""


def list_table(
    columns: list[str],
    rows: list[list[object]],
    *,
    caption: str,
    name: str,
    cells: Callable[[object, str], str] | None = None,
) -> str:
    """A MyST ``list-table`` (numbered, captioned, labelled `name`) in a scrolling box.

    `cells` turns a value of a column into Markdown (default: :func:`format_cell`, escaped).
    """
    fmt = cells or (lambda v, c: escape_md(format_cell(v, c)))
    lines = [
        "::::{container} analysis-scroll",
        f":::{{list-table}} {caption}",
        ":header-rows: 1",
        f":name: {name}",
        ":class: analysis-table",
        "",
        "* " + "\n  ".join(f"- {escape_md(column_label(c))}" for c in columns),
    ]
    for row in rows:
        lines.append(
            "* " + "\n  ".join(f"- {fmt(v, c) or ' '}" for v, c in zip(row, columns, strict=True))
        )
    lines += [":::", "::::"]
    return "\n".join(lines)


@dataclass
class Page:
    """A converted notebook: the notebook to write and the files beside it."""

    notebook: dict
    files: dict[str, bytes] = field(default_factory=dict)
    """Paths relative to the book's source folder → bytes (figures, CSV files)."""
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    title: str = ""


def _text(source: object) -> str:
    return "".join(source) if isinstance(source, list) else str(source or "")


def _markdown_cell(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "page"


def _is_text_only(output: dict) -> bool:
    if output.get("output_type") == "stream":
        return True
    data = output.get("data") or {}
    return output.get("output_type") in ("execute_result", "display_data") and set(data) <= {
        "text/plain"
    }


def _csv(columns: list[str], rows: list[list[object]]) -> bytes:
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue().encode("utf-8")


def convert_notebook(
    nb: dict,
    *,
    page_id: str,
    citer: Citer,
    title: str | None = None,
) -> Page:
    """The book's version of the executed notebook `nb` (a dict as stored in the file).

    Parameters
    ----------
    nb : the executed notebook (nbformat 4, as JSON).
    page_id : a slug unique in the book; figure and table labels are ``fig-<page_id>-N``
        and ``tbl-<page_id>-N``, their files ``figures/<page_id>/figN.png`` and
        ``data/<page_id>/figN.csv``.
    citer : turns source ids into citations.
    title : replaces the notebook's first heading (a territory report is titled with the
        capital's name).
    """
    out = copy.deepcopy(nb)
    cells: list[dict] = []
    page = Page(notebook=out)
    heading = ""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            text = _text(cell.get("source"))
            if title is not None and not page.title:
                m = _HEADING.search(text)
                if m and len(m.group(1)) == 1:
                    text = text[: m.start()] + f"# {escape_md(title)}" + text[m.end() :]
            for m in _HEADING.finditer(text):
                if not page.title and len(m.group(1)) == 1:
                    page.title = m.group(2)
                heading = m.group(2)
            cells.append({**copy.deepcopy(cell), "source": text})
            continue
        if cell.get("cell_type") != "code":
            cells.append(copy.deepcopy(cell))
            continue
        kept, after = [], []
        for output in cell.get("outputs") or []:
            data = output.get("data") or {}
            meta = output.get("metadata") or {}
            if TABLE_MIME in data:
                page.tables.append(f"tbl-{page_id}-{len(page.tables) + 1}")
                after.append(_table_markdown(data[TABLE_MIME], heading, page.tables[-1], citer))
            elif NOTICE_MIME in data:
                after.append(f":::{{note}}\n{escape_md(data[NOTICE_MIME].get('text', ''))}\n:::")
            elif "image/png" in data:
                n = len(page.figures) + 1
                page.figures.append(f"fig-{page_id}-{n}")
                png = data["image/png"]
                png_path = f"figures/{page_id}/fig{n}.png"
                page.files[png_path] = base64.b64decode(_text(png))
                record = meta.get(FIGURE_MIME) or {}
                csv_path = None
                if record.get("data", {}).get("columns"):
                    csv_path = f"data/{page_id}/fig{n}.csv"
                    page.files[csv_path] = _csv(record["data"]["columns"], record["data"]["data"])
                after.append(
                    figure_markdown(
                        record,
                        heading,
                        page.figures[-1],
                        "/" + png_path,
                        csv_path and "/" + csv_path,
                        citer,
                    )
                )
            else:
                kept.append(output)
        new = copy.deepcopy(cell)
        new["outputs"] = kept
        tags = [t for t in new.get("metadata", {}).get("tags", []) if not t.startswith("hide-")]
        fold = "hide-cell" if all(_is_text_only(o) for o in kept) and kept else "hide-input"
        if not kept and not after:
            fold = "hide-cell"  # setup code without output
        new.setdefault("metadata", {})["tags"] = [*tags, fold]
        cells.append(new)
        cells.extend(_markdown_cell(a) for a in after)
    opening = _opening(page)
    first_md = next((i for i, c in enumerate(cells) if c.get("cell_type") == "markdown"), None)
    cells.insert(0 if first_md is None else first_md + 1, _markdown_cell(opening))
    for i, cell in enumerate(cells):  # cells made here get an id, as nbformat 4.5 wants
        cell.setdefault("id", f"book-{i}")
    out["cells"] = cells
    out["nbformat"], out["nbformat_minor"] = 4, max(5, int(out.get("nbformat_minor", 5)))
    out.setdefault("metadata", {}).pop("papermill", None)
    return page


def _table_markdown(spec: dict, heading: str, name: str, citer: Citer) -> str:
    columns = [c for c in spec.get("columns", []) if c not in _SOURCE_COLUMNS]
    index = [spec["columns"].index(c) for c in columns]
    rows = [[row[i] for i in index] for row in spec.get("data", [])]
    caption = escape_md(heading or "Table")
    parts = [list_table(columns, rows, caption=caption, name=name)]
    below = [citer.sources_line(spec.get("sources"))]
    if spec.get("note"):
        below.append(escape_md(spec["note"]))
    parts.append(" ".join(b for b in below if b))
    return "\n\n".join(p for p in parts if p)


def figure_markdown(
    record: dict,
    heading: str,
    name: str,
    png: str,
    csv: str | None,
    citer: Citer,
) -> str:
    """A numbered MyST figure: the PNG `png`, labelled `name`, its caption made of the
    record's title (else `heading`), note, citations and, when `csv` is given, the link
    "Download the data (CSV)" (paths absolute from the book's source folder)."""
    title = record.get("title") or heading or "Figure"
    caption = [f"**{escape_md(title)}.**"]
    if record.get("note"):
        caption.append(escape_md(record["note"]))
    if record.get("source_ids"):
        caption.append(citer.sources_line(record["source_ids"]))
    if csv:
        caption.append(f"[Download the data (CSV)]({csv})")
    return "\n".join(
        [
            f":::{{figure}} {png}",
            f":name: {name}",
            f":alt: {escape_md(title)}",
            ":class: analysis-figure",
            "",
            " ".join(caption),
            ":::",
        ]
    )


def _opening(page: Page) -> str:
    """The sentence that opens a page: links to every figure and table on it."""

    def refs(names: list[str]) -> str:
        links = [f"{{numref}}`{n}`" for n in names]
        return links[0] if len(links) == 1 else ", ".join(links[:-1]) + " and " + links[-1]

    parts = []
    if page.figures:
        parts.append(f"{'figure' if len(page.figures) == 1 else 'figures'} {refs(page.figures)}")
    if page.tables:
        parts.append(f"{'table' if len(page.tables) == 1 else 'tables'} {refs(page.tables)}")
    if not parts:
        return "This page has no figure or table; its code cells are folded below."
    return (
        f"This page shows {' and '.join(parts)}. Code cells are folded: open one to see how "
        "a result was computed."
    )


__all__ = [
    "COLUMN_LABELS",
    "Citer",
    "Page",
    "column_label",
    "convert_notebook",
    "escape_md",
    "figure_markdown",
    "format_cell",
    "list_table",
]
