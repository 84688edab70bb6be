"""Tables for notebooks: a DataFrame shown with its sources beneath it.

:func:`table` returns an object that Jupyter renders as the table followed by a
"Sources: …" line (HTML), and as plain text elsewhere. Both renderings are deterministic
(no generated ids), so that nbval can compare them strictly; every value is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

import pandas as pd

from analysis.core.errors import ParameterError
from analysis.core.tidy import join_sources

MAX_ROWS = 80
#: Machine-readable copy of a table or notice in the notebook's outputs, for tests and tools
#: that read executed notebooks (values as JSON, floats to 12 significant digits).
TABLE_MIME = "application/vnd.analysis.table+json"
NOTICE_MIME = "application/vnd.analysis.notice+json"


def _json_value(x: object) -> object:
    if isinstance(x, float):
        return None if x != x else float(f"{x:.12g}")
    if hasattr(x, "item"):  # numpy scalars
        return _json_value(x.item())
    return x


def _fmt(x: object) -> str:
    if isinstance(x, float):
        if x != x:  # NaN: missing stays visibly missing
            return "–"
        return f"{x:,.0f}" if x.is_integer() and abs(x) >= 1000 else f"{x:,.4g}"
    return str(x)


class Table:
    """A DataFrame with its source ids and an optional note, for display."""

    def __init__(self, df: pd.DataFrame, sources: str, note: str | None, max_rows: int) -> None:
        self.df = df
        self.sources = sources
        self.note = note
        self.max_rows = max_rows

    def _shown(self) -> pd.DataFrame:
        return self.df.head(self.max_rows)

    def _footer(self) -> list[str]:
        lines = []
        if len(self.df) > self.max_rows:
            lines.append(f"({len(self.df) - self.max_rows} more rows not shown)")
        lines.append(f"Sources: {self.sources.replace(';', '; ')}")
        if self.note:
            lines.append(self.note)
        return lines

    def _repr_html_(self) -> str:
        body = self._shown().to_html(
            index=False, escape=True, na_rep="–", formatters=None, float_format=_fmt, border=0
        )
        foot = "".join(
            f'<p style="font-size:85%;color:#555;margin:2px 0">{html.escape(t)}</p>'
            for t in self._footer()
        )
        return f"<div>{body}{foot}</div>"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {
            "text/plain": repr(self),
            "text/html": self._repr_html_(),
            TABLE_MIME: {
                "columns": [str(c) for c in self.df.columns],
                "data": [[_json_value(v) for v in row] for row in self.df.itertuples(index=False)],
                "sources": self.sources.split(";"),
                "note": self.note,
            },
        }

    def __repr__(self) -> str:
        with pd.option_context(
            "display.width", 160, "display.max_columns", 30, "display.max_colwidth", 60
        ):
            text = self._shown().to_string(index=False, na_rep="–", float_format=_fmt)
        return "\n".join([text, *self._footer()])


def table(
    df: pd.DataFrame,
    sources: Iterable[str] | str | None = None,
    note: str | None = None,
    source_col: str | None = None,
    max_rows: int = MAX_ROWS,
) -> Table:
    """`df` with a "Sources:" line beneath: the ids of `source_col` (``source_ids`` or
    ``source_id`` by default) and any extra `sources`. A table must cite something."""
    col = source_col or next((c for c in ("source_ids", "source_id") if c in df.columns), None)
    ids = join_sources(df[col] if col else [], sources if sources is not None else [])
    if not ids:
        raise ParameterError("table: no sources; every table shows its sources beneath it")
    return Table(df.reset_index(drop=True), ids, note, max_rows)


class Notice:
    """A plain statement shown where a section has no data ("missing stays missing")."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_html_(self) -> str:
        return (
            '<p style="border-left:4px solid #E69F00;padding:4px 8px;background:#FFF7E6">'
            f"{html.escape(self.text)}</p>"
        )

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {
            "text/plain": repr(self),
            "text/html": self._repr_html_(),
            NOTICE_MIME: {"text": self.text},
        }

    def __repr__(self) -> str:
        return f"Note: {self.text}"


def notice(text: str) -> Notice:
    return Notice(text)
