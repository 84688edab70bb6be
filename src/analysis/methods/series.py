"""One value per year from cited figures that may disagree.

Several sources often give a figure for the same territory, indicator and year (a press
article and the agency's own report; a first release and a restatement). Nothing is
averaged or invented: one of the cited values is chosen by a fixed rule, and every
disagreement is returned so that the analysis can show it.

Choice rule, in order:

1. an exact figure beats an approximate one (definition starting "approximate" or
   "lower bound", e.g. "près de 2 000");
2. a primary source (the body that produced the figure) beats a secondary one;
3. a value that more sources give beats a value fewer sources give (corroboration:
   a typo in one article does not outvote three that agree);
4. a later publication beats an earlier one (restatements supersede first releases);
5. the source id, alphabetically, so that the choice is deterministic.
"""

from __future__ import annotations

import re

import pandas as pd

from analysis.core.errors import InsufficientDataError
from analysis.core.tidy import TIDY

_APPROX = re.compile(r"^\s*(approximate|lower bound|upper bound)", re.I)


def _date_key(text: object) -> str:
    """Sortable key of a free-text publication date: its leading YYYY[-MM[-DD]], else ''."""
    m = re.match(r"^\s*(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", str(text))
    if not m:
        return ""
    return "-".join(p or "00" for p in m.groups())


def is_approximate(definition: object) -> bool:
    return isinstance(definition, str) and bool(_APPROX.match(definition))


def rank_candidates(facts: pd.DataFrame, sources: pd.DataFrame) -> pd.DataFrame:
    """`facts` with a `choice` column: 0 for the figure the rule keeps in each key group.

    Within each (territory, indicator, year) the candidates are sorted by the module's choice
    rule: exact before approximate, primary before secondary, most corroborated value (number
    of distinct sources giving it), latest publication, then source id.

    Parameters
    ----------
    facts : pandas.DataFrame
        Cited figures with ``territory_id, indicator, year, value, source_id, definition``.
    sources : pandas.DataFrame
        The catalogue of sources, ``source_id, source_type, date_published``.

    Returns
    -------
    pandas.DataFrame
        `facts` sorted by key and rule, with ``choice`` = 0, 1, ... within each key group.
    """
    meta = sources.set_index("source_id")
    df = facts.copy()
    df["_approx"] = df["definition"].map(is_approximate)
    df["_secondary"] = df["source_id"].map(meta["source_type"]).ne("primary")
    df["_votes"] = df.groupby(["territory_id", "indicator", "year", "value"])[
        "source_id"
    ].transform("nunique")
    df["_date"] = df["source_id"].map(meta["date_published"]).map(_date_key)
    df = df.sort_values(
        [
            "territory_id",
            "indicator",
            "year",
            "_approx",
            "_secondary",
            "_votes",
            "_date",
            "source_id",
        ],
        ascending=[True, True, True, True, True, False, False, True],
        kind="stable",
    )
    df["choice"] = df.groupby(["territory_id", "indicator", "year"]).cumcount()
    return df.drop(columns=["_approx", "_secondary", "_votes", "_date"])


def pick(
    facts: pd.DataFrame,
    sources: pd.DataFrame,
    territory_id: str,
    indicator: str,
    years: tuple[int, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The series of one indicator for one territory, and the figures it set aside.

    Parameters
    ----------
    facts : pandas.DataFrame
        Cited figures with ``territory_id, indicator, year, value, unit, source_id,
        definition``.
    sources : pandas.DataFrame
        The catalogue of sources (see :func:`rank_candidates`).
    territory_id : str
        Territory of the series.
    indicator : str
        Indicator of the series.
    years : tuple of int or None, default None
        First and last year kept, inclusive; None keeps every year.

    Returns
    -------
    series : pandas.DataFrame
        Tidy (``TIDY`` columns), one row per year, sorted by year.
    conflicts : pandas.DataFrame
        For each year with several figures, every candidate with its source, definition and
        whether it was kept (``kept``).

    Raises
    ------
    InsufficientDataError
        When there is no figure for `indicator` and `territory_id` (in `years`), or the
        figures mix units.
    """
    sel = facts[(facts["territory_id"] == territory_id) & (facts["indicator"] == indicator)]
    if years is not None:
        sel = sel[sel["year"].between(*years)]
    if sel.empty:
        raise InsufficientDataError(
            f"no figure for indicator {indicator!r} and territory {territory_id!r}"
            + (f" in {years[0]}-{years[1]}" if years else "")
        )
    units = sorted(sel["unit"].unique())
    if len(units) > 1:
        raise InsufficientDataError(
            f"indicator {indicator!r} for {territory_id!r} mixes units {units}; fix the raw tables"
        )
    ranked = rank_candidates(sel, sources)
    kept = ranked[ranked["choice"] == 0]
    series = kept.assign(source_ids=kept["source_id"])[TIDY].sort_values("year")
    n = ranked.groupby("year")["value"].transform("size")
    conflicts = ranked[n > 1].assign(kept=lambda d: d["choice"] == 0)
    conflicts = conflicts[
        ["territory_id", "indicator", "year", "value", "unit", "source_id", "kept", "definition"]
    ]
    return series.reset_index(drop=True), conflicts.reset_index(drop=True)
