"""How complete the catalogue is: which territory × indicator × year has a cited figure.

Missing stays missing: these tables show the gaps rather than filling them.
"""

from __future__ import annotations

import pandas as pd

from analysis.core.errors import InsufficientDataError


def coverage(facts: pd.DataFrame) -> pd.DataFrame:
    """One row per (territory, indicator, year) with a figure: how many values and sources."""
    if facts.empty:
        raise InsufficientDataError("no facts to describe")
    g = facts.groupby(["territory_id", "indicator", "year"])
    out = pd.DataFrame(
        {
            "n_sources": g["source_id"].nunique(),
            "n_values": g["value"].nunique(),
            "source_ids": g["source_id"].agg(lambda s: ";".join(sorted(set(s)))),
        }
    ).reset_index()
    return out.sort_values(["territory_id", "indicator", "year"]).reset_index(drop=True)


def coverage_matrix(facts: pd.DataFrame, territory_ids: list[str] | None = None) -> pd.DataFrame:
    """Territory × indicator rows, one column per year: the number of sources (0 = missing).

    Disagreement shows as a count above 1; whether values differ is in :func:`coverage`.

    Parameters
    ----------
    facts : pandas.DataFrame
        Cited figures with ``territory_id, indicator, year, value, source_id``.
    territory_ids : list of str or None, default None
        Territories kept; None keeps every territory.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(territory_id, indicator)``, one int column per year (as text) from the
        first to the last year with a figure.

    Raises
    ------
    InsufficientDataError
        When `facts` is empty or holds no figure for `territory_ids`.
    """
    cov = coverage(facts)
    if territory_ids is not None:
        cov = cov[cov["territory_id"].isin(territory_ids)]
        if cov.empty:
            raise InsufficientDataError(f"no facts for {', '.join(territory_ids)}")
    years = list(range(int(cov["year"].min()), int(cov["year"].max()) + 1))
    m = cov.pivot_table(
        index=["territory_id", "indicator"],
        columns="year",
        values="n_sources",
        fill_value=0,
        aggfunc="sum",
    )
    m = m.reindex(columns=years, fill_value=0).astype(int)
    m.columns = [str(c) for c in m.columns]
    return m


#: Indicator families by name prefix; everything else comes from Provence Promotion and
#: the seed article (implantations, jobs, shares, start-up files, cables, CES).
FAMILIES: tuple[tuple[str, str], ...] = (
    ("fdi_", "Business France: foreign investment decisions"),
    ("ey_", "EY barometer: announced foreign projects"),
    ("startups_", "Start-up counts: declared and observatories"),
    ("capitales_", "French Tech labels"),
    ("communautes_", "French Tech labels"),
    ("french_tech_", "French Tech labels"),
)
OTHER_FAMILY = "Provence Promotion and the seed article"


def family(indicator: str) -> str:
    """The family an indicator belongs to (see FAMILIES)."""
    return next((name for prefix, name in FAMILIES if indicator.startswith(prefix)), OTHER_FAMILY)


def by_family(facts: pd.DataFrame) -> pd.DataFrame:
    """Facts, sources, territories and years covered, per indicator family."""
    out = (
        facts.assign(family=facts["indicator"].map(family))
        .groupby("family")
        .agg(
            facts=("value", "size"),
            sources=("source_id", "nunique"),
            territories=("territory_id", "nunique"),
            first_year=("year", "min"),
            last_year=("year", "max"),
        )
    )
    return out.reset_index().sort_values("family").reset_index(drop=True)


def disagreements(facts: pd.DataFrame) -> pd.DataFrame:
    """Every (territory, indicator, year) for which cited sources give different values."""
    g = facts.groupby(["territory_id", "indicator", "year"])
    n = g["value"].transform("nunique")
    d = facts[n > 1]
    if d.empty:
        return pd.DataFrame(columns=["territory_id", "indicator", "year", "values", "source_ids"])
    out = d.groupby(["territory_id", "indicator", "year"]).agg(
        values=("value", lambda v: "; ".join(f"{x:g}" for x in sorted(set(v)))),
        source_ids=("source_id", lambda s: ";".join(sorted(set(s)))),
    )
    return out.reset_index()
