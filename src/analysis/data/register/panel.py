"""Yearly establishment creations per unit of France, for the label-effect panel.

For every code of a level (by default the EPCIs of France) and every year from
``first_year`` to the register's last full year, two counts from the SIRENE stock:

* ``creations_ict``: establishments whose activity is in the ICT list (NAF rév. 2), by year of
  ``dateCreationEtablissement``, closed establishments included: the stock keeps closed
  establishments (``etatAdministratifEtablissement = 'F'``), so a year's creations do not
  shrink as they close. INSEE purges nothing from the establishment stock except on legal
  request (diffusion refusals are kept as non-diffusible rows in the full file);
* ``creations_all``: all establishments created that year, whatever their activity or
  nomenclature, for placebo outcomes and denominators.

A missing or invalid date, INSEE's placeholder ``1900-01-01`` and dates before 1800 never
become a year. Codes are read in the latest geography (communes merged since are in the
unit they joined); codes with no unit are reported by kind, as in
:func:`analysis.data.register.aggregate`.

The *last full year* is the year before the latest creation date in the file, unless that
date is a 31 December: a stock extracted in June holds half a year, which would look like a
fall in creations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from analysis.core import rules
from analysis.core.errors import DataError, ParameterError
from analysis.data.register import engine
from analysis.data.register.cache import scannable
from analysis.data.register.counts import (
    _code_expr,
    _creation_date,
    _ict_table,
    _unknown_date,
    _unmatched_summary,
)
from analysis.data.register.lookup import geography_vintage, load_geography
from analysis.data.register.spec import ETABLISSEMENT, LEVELS, NAF_REV2

#: The first year of the panel by default: NAF rév. 2 starts in 2008, so earlier ICT
#: creations would be undercounted.
FIRST_YEAR = 2008


@dataclass(frozen=True)
class YearlyCreations:
    """``rows``: ``(code, name, year, creations_ict, creations_all)`` for every code of the level
    and every year; ``summary``: what was not counted, and the years covered."""

    rows: list[tuple[str, str, int, int, int]]
    summary: dict
    level: str
    vintage: int
    geo_version: str


def yearly_creations_panel(
    path: Path | str,
    *,
    level: str = "epci",
    first_year: int = FIRST_YEAR,
    last_year: int | None = None,
    ict_codes: Iterable[str] | str | None = None,
    perimeter: str | None = None,
    cache_dir: Path | str | None = None,
    data_dir: Path | None = None,
    progress: bool | None = None,
) -> YearlyCreations:
    """Yearly ICT and total creations per code of `level` (see the module docstring).

    Parameters
    ----------
    path : a ``StockEtablissement`` zip, CSV or parquet file.
    level : ``commune``, ``epci`` (default), ``department``, ``region`` or ``territory``.
    first_year : first year of the panel (default 2008, the first year of NAF rév. 2).
    last_year : last year; by default the register's last full year.
    ict_codes : NAF codes counted as ICT instead of the ICT sector.
    perimeter : the capitals' perimeter at the ``territory`` level.

    Returns
    -------
    :class:`YearlyCreations`, rows sorted by code and year, zeros included.
    """
    level = rules.choice(level, "level", LEVELS)  # type: ignore[assignment]
    this_year = dt.date.today().year
    first_year = rules.integer(first_year, "first_year", 1901, this_year)
    if last_year is not None:
        last_year = rules.integer(last_year, "last_year", 1901, this_year)
    ict = rules.ict_codes(ict_codes, "ict_codes")
    geo = load_geography(geography_vintage(None, data_dir), data_dir, perimeter)
    progress = engine.progress_default(progress)
    given, src = scannable(path, ETABLISSEMENT, cache_dir, progress)
    d = _creation_date(src)
    sql = f"""
        SELECT {_code_expr(src)} AS code,
               CASE WHEN {d} IS NULL THEN NULL
                    WHEN {_unknown_date(d)} THEN -1
                    ELSE year({d}) END AS year,
               (nomenclatureActivitePrincipaleEtablissement IS NOT DISTINCT FROM '{NAF_REV2}'
                AND ict.c IS NOT NULL) AS is_ict,
               count(*) AS n,
               max({d}) AS latest
        FROM {engine.scan_sql(src)} AS stock
        LEFT JOIN {_ict_table(ict)} AS ict ON stock.activitePrincipaleEtablissement = ict.c
        GROUP BY ALL
    """
    with engine.connect() as con:
        raw = engine.run(con, sql, None, where=given.where, desc="panel", progress=progress)
    if not raw:
        raise DataError(f"{given.where}: has a header but no rows; not a stock file to count")
    dated = [r for r in raw if r[1] is not None and int(r[1]) >= 0]
    if not dated:
        raise DataError(f"{given.where}: no establishment has a valid creation date")
    latest: dt.date = max(r[4] for r in dated)
    full = latest.year if (latest.month, latest.day) == (12, 31) else latest.year - 1
    last = full if last_year is None else int(last_year)
    if last > full:
        raise ParameterError(
            f"last_year: {last} is after the register's last full year {full} (its latest "
            f"creation date is {latest.isoformat()})"
        )
    if first_year > last:
        raise ParameterError(f"first_year {first_year} is after last_year {last}")
    ict_n: dict[tuple[str, int], int] = {}
    all_n: dict[tuple[str, int], int] = {}
    unmatched: dict[str | None, int] = {}
    out_of_years = 0
    unit_of = geo.unit_of(level)
    for code, year, is_ict, n, _ in dated:
        year, n = int(year), int(n)
        if not first_year <= year <= last:
            out_of_years += n
            continue
        unit = unit_of(code)
        if unit is None:
            unmatched[code] = unmatched.get(code, 0) + n
            continue
        all_n[(unit, year)] = all_n.get((unit, year), 0) + n
        if is_ict:
            ict_n[(unit, year)] = ict_n.get((unit, year), 0) + n
    years = range(first_year, last + 1)
    rows = [
        (code, name, y, ict_n.get((code, y), 0), all_n.get((code, y), 0))
        for code, name in geo.names(level)
        for y in years
    ]
    summary = {
        "source": str(given.path),
        "rows_scanned": sum(int(r[3]) for r in raw),
        "no_date": sum(int(r[3]) for r in raw if r[1] is None),
        "unknown_date": sum(int(r[3]) for r in raw if r[1] is not None and int(r[1]) < 0),
        "outside_the_years": out_of_years,
        "latest_creation_date": latest.isoformat(),
        "first_year": first_year,
        "last_year": last,
        "unmatched": _unmatched_summary(unmatched, geo),
    }
    return YearlyCreations(rows, summary, level, geo.vintage, geo.geo_version)
