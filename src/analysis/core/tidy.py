"""The tidy layout every table of the package follows, and the helpers that keep it.

A tidy frame has one value per row and the columns :data:`TIDY` =
``territory_id, indicator, year, value, unit, source_ids``. ``source_ids`` is the sorted,
``;``-joined set of every source behind the value, so that any number can be traced to
its sources (``data/raw/<source_id>/``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from analysis.core.errors import ParameterError

TIDY = ["territory_id", "indicator", "year", "value", "unit", "source_ids"]


def join_sources(*values: Iterable[str] | str | float | None) -> str:
    """Sorted, de-duplicated ``;``-joined source ids from strings or iterables of strings.

    Parameters
    ----------
    *values : source ids, ``;``-joined strings of them, iterables of either, or missing
        values (None, NaN), which are skipped.

    Returns
    -------
    ``"a;b;c"``: every id once, sorted; ``""`` when there is none.
    """
    out: set[str] = set()
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        items = [v] if isinstance(v, str) else list(v)
        for item in items:
            out.update(s for s in str(item).split(";") if s)
    return ";".join(sorted(out))


def as_tidy(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with a ``source_ids`` column (from ``source_id`` if needed), in TIDY order.

    Raises
    ------
    ParameterError
        When a TIDY column is missing or ``territory_id``, ``year`` or ``value`` is NaN.
    """
    if "source_ids" not in df.columns:
        if "source_id" not in df.columns:
            raise ParameterError("frame has neither 'source_ids' nor 'source_id' column")
        df = df.assign(source_ids=df["source_id"])
    missing = [c for c in TIDY if c not in df.columns]
    if missing:
        raise ParameterError(f"frame lacks column(s) {', '.join(missing)}; tidy frames need {TIDY}")
    if df[["territory_id", "year", "value"]].isna().any().any():
        bad = df[df[["territory_id", "year", "value"]].isna().any(axis=1)].index[0]
        raise ParameterError(f"row {bad}: NaN in a required column (territory_id, year, value)")
    return df[TIDY].reset_index(drop=True)


def single_unit(df: pd.DataFrame, what: str) -> str:
    """The one unit of `df`; a ParameterError naming `what` when units are mixed."""
    units = sorted(df["unit"].astype(str).unique())
    if len(units) != 1:
        raise ParameterError(f"{what}: mixed units {units}; select one unit first")
    return units[0]
