"""Count the register's start-ups (young, active ICT establishments) per commune, EPCI or capital.

A *start-up from the register* (``docs/definitions.md``) is an establishment of the SIRENE
stock file ``StockEtablissement`` that

* is active: ``etatAdministratifEtablissement == "A"``;
* is classified in NAF rév. 2: ``nomenclatureActivitePrincipaleEtablissement == "NAFRev2"``
  (rows in the older NAFRev1, NAF1993 or NAPv2 nomenclatures are excluded and reported);
* has its ``activitePrincipaleEtablissement`` in the ICT list
  (:data:`analysis.core.ict_sector.ICT_NAF_CODES`, a parameter);
* was created no more than ``young_years`` years before ``as_of``:
  ``as_of - young_years <= dateCreationEtablissement <= as_of`` (both parameters; rows created
  after ``as_of``, which a stock file newer than ``as_of`` holds, are excluded and reported).

It is attributed to a territory through ``codeCommuneEtablissement``
(:mod:`analysis.data.register.lookup`). Codes that match nothing are counted and reported by
kind, never dropped silently.

DuckDB scans, filters and groups the file under a fixed memory limit
(:mod:`analysis.data.register.engine`); Python only sees the grouped counts (a few thousand
rows), and the whole path runs without pandas: :attr:`Result.table` builds a DataFrame only
when a caller asks for one.

Load inputs (:func:`~analysis.data.register.sources.inspect_source`,
:func:`~analysis.data.register.lookup.load_geography`), process (:func:`aggregate`,
:func:`yearly_creations`), save outputs (:func:`write_outputs`).
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import io
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.core import rules
from analysis.core.atomic import atomic_write_files
from analysis.core.errors import DataError, ParameterError
from analysis.core.ict_sector import DESCRIPTION as ICT_DESCRIPTION
from analysis.core.ict_sector import ICT_NAF_CODES
from analysis.core.outputs import check_files, protected_folders
from analysis.data.register import engine
from analysis.data.register.cache import DERIVED_DATE, DERIVED_ICT, DERIVED_KIND, scannable
from analysis.data.register.lookup import Geography, geography_vintage, load_geography
from analysis.data.register.sources import Source
from analysis.data.register.spec import (
    ACTIVE,
    COUNTED,
    EARLIEST_DATE,
    ETABLISSEMENT,
    LEGAL_UNIT_CATEGORIES,
    LEVELS,
    NAF_REV2,
    PLACEHOLDER_DATE,
    REASON_NAMES,
    REASONS,
    UNITE_LEGALE,
    UNMATCHED_KINDS,
    unmatched_kind,
    years_before,
)
from analysis.data.register.spec import (
    REASON_CODES as R,
)

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Report:
    """What a run scanned, excluded and could not attribute, for the CLI and the sidecar."""

    source: str
    source_form: str
    layout: str
    level: str
    as_of: dt.date
    young_years: int
    since: dt.date
    ict_codes: tuple[str, ...]
    vintage: int
    geo_version: str
    perimeter: str = "label"
    legal_units: str | None = None
    categories: tuple[str, ...] | None = None
    rows_scanned: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    startups_total: int = 0
    startups_attributed: int = 0
    unmatched: dict[str, dict[str, object]] = field(default_factory=dict)
    units: int = 0
    seconds: float = 0.0
    out: str | None = None

    def lines(self) -> list[str]:
        ict = (
            f"{len(self.ict_codes)} ICT codes ({ICT_DESCRIPTION})"
            if self.ict_codes == ICT_NAF_CODES
            else f"{len(self.ict_codes)} NAF codes given: {', '.join(self.ict_codes)}"
        )
        out = [
            f"SIRENE start-ups from {self.source} ({self.source_form}, {self.layout})",
            f"  rule: active, NAFRev2, {ict}, created {self.since} .. {self.as_of} "
            f"(as-of {self.as_of}, young-years {self.young_years})",
            f"  geography: census {self.vintage} (geography {self.geo_version}), "
            f"level {self.level}"
            + (f", perimeter {self.perimeter}" if self.level == "territory" else ""),
        ]
        if self.legal_units:
            cats = ", ".join(self.categories) if self.categories else "any"
            out.append(
                f"  legal units: {self.legal_units} (created in the same window; "
                f"categorieEntreprise: {cats})"
            )
        out.append(f"  rows scanned: {self.rows_scanned:,}")
        for reason, n in self.excluded.items():
            if n or not reason.startswith("ul_") or self.legal_units:
                out.append(f"  excluded, {REASONS[reason]}: {n:,}")
        out.append(f"  start-ups in the register: {self.startups_total:,}")
        n_un = sum(int(v["rows"]) for v in self.unmatched.values())  # type: ignore[call-overload]
        n_codes = sum(int(v["codes"]) for v in self.unmatched.values())  # type: ignore[call-overload]
        out.append(f"  codes left unmatched: {n_codes:,} codes, {n_un:,} start-ups")
        for kind, v in self.unmatched.items():
            examples = ", ".join(repr(x) for x in v.get("examples", []))  # type: ignore[union-attr]
            ex = f" (e.g. {examples})" if examples and kind != "outside" else ""
            codes = "" if kind == "empty" else f" in {int(v['codes']):,} codes"  # type: ignore[call-overload]
            out.append(
                f"    {UNMATCHED_KINDS[kind]}: {int(v['rows']):,} start-ups{codes}{ex}"  # type: ignore[call-overload]
            )
            countries = v.get("by_country") or {}
            if countries:
                top = ", ".join(f"{c}: {n:,}" for c, n in list(countries.items())[:8])  # type: ignore[union-attr]
                more = f" and {len(countries) - 8} more" if len(countries) > 8 else ""  # type: ignore[arg-type]
                out.append(f"      by country code: {top}{more}")
        dest = f" -> {self.out}" if self.out else ""
        out.append(
            f"  start-ups attributed: {self.startups_attributed:,} in {self.units:,} "
            f"{self.level} codes{dest}"
        )
        out.append(f"  time taken: {self.seconds:.2f} s")
        return out

    def text(self) -> str:
        return "\n".join(self.lines()) + "\n"

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "source_form": self.source_form,
            "layout": self.layout,
            "level": self.level,
            "as_of": self.as_of.isoformat(),
            "young_years": self.young_years,
            "created_since": self.since.isoformat(),
            "ict_codes": list(self.ict_codes),
            "ict_source": ICT_DESCRIPTION,
            "population_vintage": self.vintage,
            "geo_version": self.geo_version,
            "perimeter": self.perimeter if self.level == "territory" else None,
            "legal_units": self.legal_units,
            "legal_unit_categories": list(self.categories) if self.categories else None,
            "rows_scanned": self.rows_scanned,
            "excluded": dict(self.excluded),
            "startups_in_register": self.startups_total,
            "startups_attributed": self.startups_attributed,
            "unmatched": {
                k: {
                    "rows": int(v["rows"]),  # type: ignore[call-overload]
                    "codes": int(v["codes"]),  # type: ignore[call-overload]
                    **({"by_country": dict(v["by_country"])} if v.get("by_country") else {}),  # type: ignore[call-overload]
                }
                for k, v in self.unmatched.items()
            },
        }


@dataclass
class Result:
    """One row per code of the level (``code, name, startups``), and the run's report."""

    rows: list[tuple[str, str, int]]
    report: Report
    #: start-ups per register code (as written in the file, None when empty), before any mapping
    by_code: dict[str | None, int]
    #: yearly creations (``code, name, year, creations``), when asked for
    yearly: list[tuple[str, str, int, int]] | None = None

    @property
    def table(self) -> pd.DataFrame:
        """The rows as a DataFrame ``code, name, startups`` (pandas is imported here)."""
        import pandas as pd

        df = pd.DataFrame(self.rows, columns=["code", "name", "startups"])
        return df.astype({"startups": "int64"})

    @property
    def by_register_code(self) -> pd.DataFrame:
        """Start-ups per register code as a DataFrame ``code, startups``."""
        import pandas as pd

        return pd.DataFrame(list(self.by_code.items()), columns=["code", "startups"])


def _date_expr(col: str, column_type: str = "VARCHAR") -> str:
    """A DATE or NULL: strict YYYY-MM-DD text, or a date/timestamp column of a typed parquet."""
    if column_type.upper().startswith(("DATE", "TIMESTAMP")):
        return f"TRY_CAST({engine.ident(col)} AS DATE)"
    c = f"CAST({engine.ident(col)} AS VARCHAR)"
    return f"(CASE WHEN length({c}) = 10 THEN TRY_CAST({c} AS DATE) END)"


def _creation_date(src: Source) -> str:
    """The creation date as a DATE: the cache's typed column when there is one."""
    if DERIVED_DATE in src.columns:
        return engine.ident(DERIVED_DATE)
    return _date_expr("dateCreationEtablissement", src.type_of("dateCreationEtablissement"))


_COMMUNE, _COUNTRY = "codeCommuneEtablissement", "codePaysEtrangerEtablissement"


def _code_expr(src: Source) -> str:
    """The register code: the commune's, or for an establishment abroad its country's.

    INSEE leaves ``codeCommuneEtablissement`` empty for an establishment abroad and writes
    the country's code (``99xxx``) in ``codePaysEtrangerEtablissement``.
    """
    commune = f"NULLIF(trim(CAST({engine.ident(_COMMUNE)} AS VARCHAR)), '')"
    if _COUNTRY not in src.columns:
        return commune
    country = f"NULLIF(trim(CAST({engine.ident(_COUNTRY)} AS VARCHAR)), '')"
    return f"COALESCE({commune}, {country})"


def _code_columns(src: Source) -> str:
    """The raw columns :func:`_code_expr` reads, projected as they are (SELECT list)."""
    cols = [_COMMUNE] + ([_COUNTRY] if _COUNTRY in src.columns else [])
    return ", ".join(engine.ident(c) for c in cols)


def _unknown_date(d: str) -> str:
    """SQL: the date is INSEE's placeholder for an unknown date, or impossible."""
    return (
        f"({d} = DATE '{PLACEHOLDER_DATE.isoformat()}' OR {d} < DATE '{EARLIEST_DATE.isoformat()}')"
    )


def _siren_expr() -> str:
    """siren as 9 characters, whether the file types it as text or as an integer."""
    return "lpad(CAST(siren AS VARCHAR), 9, '0')"


def _ict_table(ict: Sequence[str]) -> str:
    """The ICT codes as a one-column table ``c``: joined, not tested with ``IN (...)``.

    DuckDB evaluates a long ``IN`` list of strings row by row, about ten times slower than a
    hash join against the same codes (benchmarks/README.md).
    """
    return "(SELECT unnest([" + ", ".join(engine.sql_str(c) for c in ict) + "]) AS c)"


def _classify_sql(
    src: Source, ict: Sequence[str], since: dt.date, as_of: dt.date, *, with_siren: bool
) -> str:
    date_col = "dateCreationEtablissement"
    d = _date_expr(date_col, src.type_of(date_col))
    scan = engine.scan_sql(src)
    siren = f", {_siren_expr()} AS siren" if with_siren else ""
    # the raw code columns: the code itself is computed for the counted rows only
    return f"""
        SELECT {_code_columns(src)}{siren},
          CASE
            WHEN etatAdministratifEtablissement IS DISTINCT FROM '{ACTIVE}' THEN {R["inactive"]}
            WHEN nomenclatureActivitePrincipaleEtablissement IS DISTINCT FROM '{NAF_REV2}'
              THEN {R["other_nomenclature"]}
            WHEN ict.c IS NULL THEN {R["not_ict"]}
            WHEN {d} IS NULL THEN {R["no_date"]}
            WHEN {_unknown_date(d)} THEN {R["unknown_date"]}
            WHEN {d} < DATE '{since.isoformat()}' THEN {R["too_old"]}
            WHEN {d} > DATE '{as_of.isoformat()}' THEN {R["after_as_of"]}
            ELSE {R[COUNTED]}
          END::UTINYINT AS reason
        FROM {scan} AS stock
        LEFT JOIN {_ict_table(ict)} AS ict ON stock.activitePrincipaleEtablissement = ict.c
    """


def _count_sql_parquet(src: Source, ict: Sequence[str], since: dt.date, as_of: dt.date) -> str:
    """The same counts as :func:`_classify_sql`, in two parts that suit a columnar file.

    The reasons that do not depend on the date come from a grouping on three low-cardinality
    columns, or on the cache's one-byte :data:`~analysis.data.register.cache.DERIVED_KIND`
    when the ICT codes are the default ones; the commune code and the creation date, the two
    expensive columns, are read only for the candidates (active, NAFRev2, ICT), whose filter
    DuckDB pushes into the parquet scan: on a file sorted by activity (the cache,
    :mod:`analysis.data.register.cache`) it skips the row groups that hold no ICT code at all.
    """
    scan = engine.scan_sql(src)
    d = _creation_date(src)
    ict_literals = ", ".join(engine.sql_str(c) for c in ict)
    cached = tuple(ict) == ICT_NAF_CODES  # the cache's derived columns hold for these codes
    # the cache's ICT rows come first, flagged: the other row groups are skipped whole
    flagged = f"AND {DERIVED_ICT}" if cached and DERIVED_ICT in src.columns else ""
    if cached and DERIVED_KIND in src.columns:
        excluded = f"""
          SELECT {DERIVED_KIND} AS reason, NULL::VARCHAR AS code, count(*) AS n
          FROM {scan} WHERE {DERIVED_KIND} <> {R[COUNTED]} GROUP BY ALL
        """
    else:
        excluded = f"""
          SELECT CASE
                   WHEN NOT active THEN {R["inactive"]}
                   WHEN NOT rev2 THEN {R["other_nomenclature"]}
                   ELSE {R["not_ict"]}
                 END::UTINYINT AS reason,
                 NULL::VARCHAR AS code, sum(n) AS n
          FROM (
            SELECT etatAdministratifEtablissement IS NOT DISTINCT FROM '{ACTIVE}' AS active,
                   nomenclatureActivitePrincipaleEtablissement IS NOT DISTINCT FROM '{NAF_REV2}'
                     AS rev2,
                   activitePrincipaleEtablissement AS activity,
                   count(*) AS n
            FROM {scan} GROUP BY ALL
          ) AS kinds
          LEFT JOIN {_ict_table(ict)} AS ict ON kinds.activity = ict.c
          WHERE NOT active OR NOT rev2 OR ict.c IS NULL
          GROUP BY ALL
        """
    return f"""
        WITH excluded AS ({excluded}),
        candidates AS (
          SELECT CASE
                   WHEN {d} IS NULL THEN {R["no_date"]}
                   WHEN {_unknown_date(d)} THEN {R["unknown_date"]}
                   WHEN {d} < DATE '{since.isoformat()}' THEN {R["too_old"]}
                   WHEN {d} > DATE '{as_of.isoformat()}' THEN {R["after_as_of"]}
                   ELSE {R[COUNTED]}
                 END::UTINYINT AS reason,
                 {_code_expr(src)} AS code
          FROM {scan}
          WHERE etatAdministratifEtablissement = '{ACTIVE}'
            AND nomenclatureActivitePrincipaleEtablissement = '{NAF_REV2}'
            AND activitePrincipaleEtablissement IN ({ict_literals}) {flagged}
        )
        SELECT reason, code, n FROM excluded
        UNION ALL
        SELECT reason, CASE WHEN reason = {R[COUNTED]} THEN code END AS code, count(*) AS n
        FROM candidates GROUP BY ALL
    """


def _count_sql(
    src: Source,
    ict: Sequence[str],
    since: dt.date,
    as_of: dt.date,
    ul_src: Source | None,
    categories: Sequence[str] | None,
) -> str:
    """(reason, code, n): per register code for start-ups, one total per excluded reason."""
    if ul_src is None and src.kind == "parquet":
        return _count_sql_parquet(src, ict, since, as_of)
    cls = _classify_sql(src, ict, since, as_of, with_siren=ul_src is not None)
    if ul_src is None:
        return f"""
            WITH cls AS ({cls})
            SELECT reason, CASE WHEN reason = {R[COUNTED]} THEN {_code_expr(src)} END AS code,
                   count(*) AS n
            FROM cls GROUP BY ALL
        """
    d = _date_expr("dateCreationUniteLegale", ul_src.type_of("dateCreationUniteLegale"))
    ul_scan = engine.scan_sql(ul_src)
    cat_filter = (
        "ul.cat IS NULL OR ul.cat NOT IN (" + ", ".join(engine.sql_str(c) for c in categories) + ")"
        if categories
        else "false"
    )
    return f"""
        WITH cls AS ({cls}),
        agg AS (
          SELECT reason,
                 CASE WHEN reason = {R[COUNTED]} THEN {_code_expr(src)} END AS code,
                 CASE WHEN reason = {R[COUNTED]} THEN siren END AS siren,
                 count(*) AS n
          FROM cls GROUP BY ALL
        ),
        ul AS (
          SELECT {_siren_expr()} AS siren,
                 any_value({d}) AS d,
                 any_value(CAST(categorieEntreprise AS VARCHAR)) AS cat
          FROM {ul_scan}
          WHERE {_siren_expr()} IN (SELECT siren FROM agg WHERE reason = {R[COUNTED]})
          GROUP BY 1
        ),
        joined AS (
          SELECT CASE
                   WHEN agg.reason <> {R[COUNTED]} THEN agg.reason
                   WHEN ul.siren IS NULL THEN {R["ul_missing"]}
                   WHEN {cat_filter} THEN {R["ul_category"]}
                   WHEN ul.d IS NULL OR {_unknown_date("ul.d")} THEN {R["ul_no_date"]}
                   WHEN ul.d < DATE '{since.isoformat()}' THEN {R["ul_too_old"]}
                   WHEN ul.d > DATE '{as_of.isoformat()}' THEN {R["ul_after_as_of"]}
                   ELSE {R[COUNTED]}
                 END::UTINYINT AS reason,
                 agg.code, agg.n
          FROM agg LEFT JOIN ul ON agg.siren = ul.siren
        )
        SELECT reason, CASE WHEN reason = {R[COUNTED]} THEN code END AS code, sum(n) AS n
        FROM joined GROUP BY ALL
    """


def _largest_first(item: tuple[str | None, int]) -> tuple[int, str]:
    """Sort key of a (code, rows) pair: most rows first, then by code."""
    return (-item[1], str(item[0]))


def _unmatched_summary(
    unmatched: dict[str | None, int], geo: Geography
) -> dict[str, dict[str, object]]:
    """Unmatched codes by kind: how many rows, how many codes, the three largest codes, and
    for the establishments abroad the rows by country code (largest first)."""
    parts: dict[str, dict[str | None, int]] = {kind: {} for kind in UNMATCHED_KINDS}
    outside, codes = parts["outside"], geo.codes
    for c, n in unmatched.items():  # one pass: a count of France has ~20,000 such codes
        if c in codes:  # a code of the geography is always "outside" (test_sirene checks it)
            outside[c] = n
        else:
            parts[unmatched_kind(c)][c] = n
    out: dict[str, dict[str, object]] = {}
    for kind, part in parts.items():
        # every country is listed; of the other kinds, the three largest codes
        top = (
            sorted(part.items(), key=_largest_first)
            if kind == "abroad"
            else heapq.nsmallest(3, part.items(), key=_largest_first)
        )
        out[kind] = {
            "rows": int(sum(part.values())),
            "codes": len(part) if kind != "empty" else int(bool(part)),
            "examples": [c for c, _ in top[:3] if isinstance(c, str)],
        }
        if kind == "abroad":
            out[kind]["by_country"] = {str(c): int(n) for c, n in top}
    return out


def _check_options(
    as_of: object,
    young_years: object,
    level: object,
    ict_codes: Iterable[str] | str | None,
    population_vintage: object,
    perimeter: object,
) -> tuple[dt.date, int, str, tuple[str, ...], int | None, str]:
    return (
        rules.as_of(as_of, "as_of"),
        rules.young_years(young_years, "young_years"),
        rules.choice(level, "level", LEVELS),  # type: ignore[arg-type]
        rules.ict_codes(ict_codes, "ict_codes"),
        None
        if population_vintage is None
        else rules.population_vintage(population_vintage, "population_vintage"),
        rules.perimeter(perimeter, "perimeter"),
    )


def _categories(values: Iterable[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    cats = sorted({str(c).strip() for c in values if str(c).strip()})
    for c in cats:
        rules.choice(c, "legal_unit_categories", LEGAL_UNIT_CATEGORIES)
    return tuple(cats) or None


def aggregate(
    path: Path | str,
    *,
    as_of: object,
    young_years: object,
    level: str = "territory",
    ict_codes: Iterable[str] | str | None = None,
    population_vintage: int | None = None,
    perimeter: str | None = None,
    legal_units: Path | str | None = None,
    legal_unit_categories: Iterable[str] | None = None,
    cache_dir: Path | str | None = None,
    data_dir: Path | None = None,
    progress: bool | None = None,
) -> Result:
    """Count the register's start-ups (see the module docstring) per code of `level`.

    Parameters
    ----------
    path : a ``StockEtablissement`` zip, CSV or parquet file.
    as_of, young_years : the window: created in ``[as_of - young_years, as_of]``.
    level : ``commune``, ``epci``, ``department`` or ``region`` (every code of France), or
        ``territory`` (the 13 capitals under `perimeter`).
    ict_codes : NAF codes to count instead of the ICT sector.
    population_vintage : the census vintage of the geography; by default the one whose
        geography is closest to `as_of` (:func:`~analysis.data.register.lookup.geography_vintage`).
    perimeter : the capitals' perimeter at the ``territory`` level: ``label`` (default) or
        ``core``.
    legal_units : a ``StockUniteLegale`` file. Adds two rules, joined on siren: the legal unit
        must also have been created in the window (a new branch of an old company is not a
        start-up) and, if `legal_unit_categories` is given (``PME``, ``ETI``, ``GE``), its
        categorieEntreprise must be one of them.
    cache_dir : where a zip's parquet conversion is cached.
    data_dir : the data folder holding ``derived/communes.csv``.
    progress : progress bars (default: on a terminal).

    Returns
    -------
    :class:`Result`: one row per code of the level with its count, every excluded row counted
    under its reason in the report, every unmatched code reported by kind.
    """
    t0 = time.perf_counter()
    as_of, young_years, level, ict, vintage, perimeter = _check_options(
        as_of, young_years, level, ict_codes, population_vintage, perimeter
    )
    categories = _categories(legal_unit_categories)
    if categories and legal_units is None:
        raise ParameterError("legal_unit_categories: needs legal_units (a StockUniteLegale file)")
    since = years_before(as_of, young_years)
    progress = engine.progress_default(progress)
    given, src = scannable(path, ETABLISSEMENT, cache_dir, progress)
    ul_src = ul_given = None
    if legal_units is not None:
        ul_given, ul_src = scannable(legal_units, UNITE_LEGALE, cache_dir, progress)
    sql = _count_sql(src, ict, since, as_of, ul_src, categories)
    loaded: dict[str, Geography] = {}

    def geography() -> None:  # chosen and loaded while DuckDB scans (the SQL needs neither)
        v = geography_vintage(as_of, data_dir) if vintage is None else vintage
        loaded["geo"] = load_geography(v, data_dir, perimeter)

    with engine.connect() as con:
        counts = engine.run(
            con, sql, None, where=given.where, desc="scan", progress=progress, meanwhile=geography
        )
    geo = loaded["geo"]
    if not counts:
        raise DataError(f"{given.where}: has a header but no rows; not a stock file to count")
    excluded = {k: 0 for k in REASONS if legal_units is not None or not k.startswith("ul_")}
    by_code: dict[str | None, int] = {}
    counted = R[COUNTED]
    for reason, code, n in counts:
        if reason == counted:
            by_code[code] = by_code.get(code, 0) + int(n)
        else:
            excluded[REASON_NAMES[reason]] += int(n)
    per_unit: dict[str, int] = {}
    unmatched: dict[str | None, int] = {}
    unit_of = geo.unit_of(level)
    for code, n in by_code.items():
        unit = unit_of(code)
        if unit is None:
            unmatched[code] = n
        else:
            per_unit[unit] = per_unit.get(unit, 0) + n
    rows = [(code, name, per_unit.get(code, 0)) for code, name in geo.names(level)]
    report = Report(
        source=str(given.path),
        source_form=given.kind + (f" member {given.member}" if given.member else ""),
        layout=given.layout,
        level=level,
        as_of=as_of,
        young_years=young_years,
        since=since,
        ict_codes=ict,
        vintage=geo.vintage,
        geo_version=geo.geo_version,
        perimeter=perimeter,
        legal_units=str(ul_given.path) if ul_given else None,
        categories=categories,
        rows_scanned=int(sum(int(n) for _, _, n in counts)),
        excluded=excluded,
        startups_total=int(sum(by_code.values())),
        startups_attributed=int(sum(n for _, _, n in rows)),
        unmatched=_unmatched_summary(unmatched, geo),
        units=len(rows),
    )
    report.seconds = time.perf_counter() - t0
    return Result(rows=rows, report=report, by_code=by_code)


def yearly_creations(
    path: Path | str,
    *,
    level: str = "territory",
    ict_codes: Iterable[str] | str | None = None,
    population_vintage: int | None = None,
    perimeter: str | None = None,
    active_only: bool = False,
    cache_dir: Path | str | None = None,
    data_dir: Path | None = None,
    progress: bool | None = None,
) -> tuple[list[tuple[str, str, int, int]], dict[str, Any]]:
    """Establishments created each year per code of `level` (``code, name, year, creations``).

    Counts NAFRev2 rows whose activity is in the ICT list by year of dateCreationEtablissement,
    closed establishments included unless `active_only` (the stock keeps closed establishments,
    so a year's creations do not shrink as they close). Rows classified in an older
    nomenclature are not counted, which undercounts the years before 2008. A missing or invalid
    date, INSEE's placeholder 1900-01-01 and dates before 1800 never become a year: they are
    counted apart (``no_date``, ``unknown_date``). Every code of the level gets a row for
    every year from the first to the last year found (zeros included). The geography is the
    latest vintage unless `population_vintage` is given.

    Parameters
    ----------
    path : pathlib.Path or str
        The StockEtablissement file (CSV, zip or parquet).
    level : str, default "territory"
        Geographic level of the codes (one of ``LEVELS``).
    ict_codes : iterable of str, str or None, default None
        NAF rév. 2 codes counted; None for the package's ICT list.
    population_vintage : int or None, default None
        Census vintage of the geography; None for the latest.
    perimeter : str or None, default None
        The capitals' perimeter for the ``territory`` level; None for the default.
    active_only : bool, default False
        Count only establishments still active.
    cache_dir : pathlib.Path, str or None, default None
        Folder of the parquet cache of a CSV stock; None for the default.
    data_dir : pathlib.Path or None, default None
        Data folder holding ``derived/``; None for the package's.
    progress : bool or None, default None
        Show a progress bar; None decides from the terminal.

    Returns
    -------
    rows : list of tuple
        ``(code, name, year, creations)`` sorted by code and year.
    summary : dict
        Rows counted, rows without a valid or known date (``no_date``, ``unknown_date``),
        unmatched codes by kind, and ``active_only``.

    Raises
    ------
    ParameterError
        When `level`, `ict_codes`, `perimeter` or `population_vintage` is not allowed.
    DataError
        When the file cannot be read, or has a header but no rows.
    """
    level = rules.choice(level, "level", LEVELS)
    ict = rules.ict_codes(ict_codes, "ict_codes")
    perimeter = rules.perimeter(perimeter, "perimeter")
    if population_vintage is None:
        vintage = geography_vintage(None, data_dir)
    else:
        vintage = rules.population_vintage(population_vintage, "population_vintage")
    geo = load_geography(vintage, data_dir, perimeter)
    progress = engine.progress_default(progress)
    given, src = scannable(path, ETABLISSEMENT, cache_dir, progress)
    d = _creation_date(src)
    active = f"AND etatAdministratifEtablissement = '{ACTIVE}'" if active_only else ""
    sql = f"""
        SELECT {_code_expr(src)} AS code,
               CASE WHEN {_unknown_date(d)} THEN -1 ELSE year({d}) END AS year, count(*)
        FROM {engine.scan_sql(src)}
        WHERE nomenclatureActivitePrincipaleEtablissement = '{NAF_REV2}'
          AND activitePrincipaleEtablissement IN (SELECT c FROM {_ict_table(ict)}) {active}
        GROUP BY ALL
    """
    with engine.connect() as con:
        raw = engine.run(con, sql, None, where=given.where, desc="yearly", progress=progress)
    if not raw and _is_empty(src):
        raise DataError(f"{given.where}: has a header but no rows; not a stock file to count")
    no_date = sum(int(n) for _, y, n in raw if y is None)
    unknown_date = sum(int(n) for _, y, n in raw if y is not None and int(y) < 0)
    dated = [(c, int(y), int(n)) for c, y, n in raw if y is not None and int(y) >= 0]
    per: dict[tuple[str, int], int] = {}
    unmatched: dict[str | None, int] = {}
    unit_of = geo.unit_of(level)
    for code, year, n in dated:
        unit = unit_of(code)
        if unit is None:
            unmatched[code] = unmatched.get(code, 0) + n
        else:
            per[(unit, year)] = per.get((unit, year), 0) + n
    years = range(min(y for _, y, _ in dated), max(y for _, y, _ in dated) + 1) if dated else ()
    rows = [
        (code, name, y, per.get((code, y), 0)) for code, name in geo.names(level) for y in years
    ]
    summary = {
        "rows_counted": sum(n for _, _, n in dated),
        "no_date": no_date,
        "unknown_date": unknown_date,
        "unmatched": _unmatched_summary(unmatched, geo),
        "active_only": active_only,
    }
    return rows, summary


def _is_empty(src: Source) -> bool:
    with engine.connect() as con:
        return con.execute(f"SELECT count(*) FROM {engine.scan_sql(src)}").fetchone()[0] == 0


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_outputs(result: Result, out: Path | str, yearly_out: Path | str | None = None) -> None:
    """Write ``code,name,startups`` to `out`, its ``.meta.yaml`` sidecar and the yearly table:
    all of them or none (:func:`analysis.core.atomic.atomic_write_files`), never onto the
    register file itself.

    Parameters
    ----------
    result : Result
        The aggregation, with its report.
    out : pathlib.Path or str
        The CSV file of counts to write.
    yearly_out : pathlib.Path, str or None, default None
        The CSV file of yearly creations, written when given and `result` has them.

    Returns
    -------
    None

    Raises
    ------
    ParameterError
        When an output is a folder, is the register file or another output, or lies in a
        protected folder.
    """
    import yaml

    out = Path(out)
    sidecar = out.with_name(out.name + ".meta.yaml")
    check_files(
        {"out": out, "out's sidecar": sidecar, "yearly_out": yearly_out},
        {"the register": Path(result.report.source)},
        protected=protected_folders(),
    )
    meta = {
        "table": "sirene start-ups from the register",
        "built_by": "analysis sirene aggregate (src/analysis/data/register/counts.py)",
        "columns": ["code", "name", "startups"],
        **result.report.as_dict(),
    }
    files: dict[Path, str] = {out: _csv_text(["code", "name", "startups"], result.rows)}
    if yearly_out is not None and result.yearly is not None:
        files[Path(yearly_out)] = _csv_text(["code", "name", "year", "creations"], result.yearly)
    files[sidecar] = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    atomic_write_files(files)
