"""Table schemas and the checks that turn a frame of strings into a typed, tidy table.

A schema lists the columns (all required, in any order, none extra), their types and
ranges, and the key that must be unique. :func:`validate` raises a :class:`SchemaError`
or :class:`DataError` whose message names the file, the line (header = line 1) and the
column, and says what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.errors import DataError, SchemaError
from analysis.core.indicators import check_figure
from analysis.core.rules import YEAR_MAX, YEAR_MIN
from analysis.core.territories import valid_territory_ids


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # str | slug | int | float | date | territory | choice
    required: bool = True  # False: the cell may be empty (missing stays missing)
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None


@dataclass(frozen=True)
class Schema:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    description: str = ""
    sort_by: tuple[str, ...] = field(default=())
    #: a check of each typed row: the message of what is wrong, or None
    row_check: Callable[[dict], str | None] | None = None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


_T = "territory"
FACTS = Schema(
    "facts",
    (
        Column("territory_id", _T),
        Column("indicator", "slug"),
        Column("year", "int", lo=YEAR_MIN, hi=YEAR_MAX),
        Column("value", "float", lo=0),
        Column("unit", "str"),
        Column("source_id", "slug"),
        Column("locator", "str"),
        Column("definition", "str", required=False),
    ),
    key=("territory_id", "indicator", "year", "source_id"),
    description="One figure a row, as its source states it, with where it stands in the source.",
    row_check=lambda r: check_figure(r["indicator"], r["unit"], r["value"]),
)

LABEL_KINDS = ("french-tech-metropole", "french-tech-thematic", "capitale-french-tech")
LABELS = Schema(
    "labels",
    (
        Column("label_date", "date"),
        Column("label", "choice", choices=LABEL_KINDS),
        Column("name_in_source", "str"),
        Column("territory_id", _T, required=False),
        Column("source_id", "slug"),
        Column("locator", "str"),
    ),
    key=("label_date", "label", "name_in_source"),
    description="French Tech labels; territory_id is the 2019 capital the label maps to, if any.",
)

_SIREN = r"\d{9}"
_COG = r"(\d{5}|2[AB]\d{3}|97\d{3})"
EPCI = Schema(
    "epci",
    (
        Column("census_year", "int", lo=YEAR_MIN, hi=YEAR_MAX),
        Column("geo_version", "str"),
        Column("epci_siren", "str", pattern=_SIREN),
        Column("epci_name", "str"),
        Column("epci_type", "str"),
        Column("population_municipale", "int", lo=0),
        Column("population_totale", "int", lo=0),
        Column("n_communes", "int", lo=1),
        Column("source_id", "slug"),
    ),
    key=("census_year", "epci_siren"),
)

_PERIMETER = ("label", "core")

LABEL_PLACES = Schema(
    "label_places",
    (
        Column("territory_id", _T),
        Column("place_in_source", "str"),
        Column("commune_code", "str", pattern=_COG),
        Column("source_id", "slug"),
        Column("locator", "str"),
    ),
    key=("territory_id", "commune_code", "source_id"),
    description="A place the 2019 label's published perimeter names, with its anchor commune.",
)

COUNT_AREAS = Schema(
    "count_areas",
    (
        Column("territory_id", _T),
        Column("indicator", "slug"),
        Column("year", "int", lo=YEAR_MIN, hi=YEAR_MAX),
        Column("area", "str", pattern=r"label|core|zone: .+"),
        Column("source_id", "slug"),
        Column("locator", "str"),
    ),
    key=("territory_id", "indicator", "year", "source_id"),
    description="The area a published count describes: one of the capital's two perimeters, "
    "or another zone (which has no population in the package).",
)

COMMUNE_TYPES = (
    "commune-actuelle",
    "arrondissement-municipal",
    "commune-deleguee",
    "commune-associee",
)
COMMUNES = Schema(
    "communes",
    (
        Column("census_year", "int", lo=YEAR_MIN, hi=YEAR_MAX),
        Column("geo_version", "str"),
        Column("commune_code", "str", pattern=_COG),
        Column("commune_name", "str"),
        Column("commune_type", "choice", choices=COMMUNE_TYPES),
        Column("parent_commune_code", "str", required=False, pattern=_COG),
        Column("epci_siren", "str", required=False, pattern=_SIREN),
        Column("department_code", "str"),
        Column("region_code", "str", required=False),
        Column("population_municipale", "int", lo=0, required=False),
        Column("source_id", "slug"),
    ),
    key=("census_year", "commune_code"),
    description="Every commune of France (and the arrondissements, delegated and associated "
    "communes, which point to their commune), with its EPCI, department and region.",
)

TERRITORIES = Schema(
    "territories",
    (
        Column("territory_id", _T),
        Column("perimeter", "choice", choices=_PERIMETER),
        Column("census_year", "int", lo=YEAR_MIN, hi=YEAR_MAX),
        Column("geo_version", "str"),
        Column("epci_siren", "str", pattern=_SIREN),
        Column("epci_name", "str"),
        Column("anchor_communes", "str"),
        Column("source_ids", "str"),
    ),
    key=("territory_id", "perimeter", "census_year", "epci_siren"),
    description="The EPCIs of each capital's perimeter, with the cited places that anchor them.",
)

DEPARTMENTS = Schema(
    "departments",
    (
        Column("census_year", "int", lo=YEAR_MIN, hi=YEAR_MAX),
        Column("geo_version", "str"),
        Column("department_code", "str"),
        Column("department_name", "str"),
        Column("region_code", "str", required=False),
        Column("source_id", "slug"),
    ),
    key=("census_year", "department_code"),
)

TERRITORY_POPULATION = Schema(
    "territory_population",
    (
        Column("territory_id", _T),
        Column("perimeter", "choice", choices=_PERIMETER),
        Column("census_year", "int", lo=YEAR_MIN, hi=YEAR_MAX),
        Column("geo_version", "str"),
        Column("epci_sirens", "str"),
        Column("epci_names", "str"),
        Column("region_code", "str"),
        Column("n_communes", "int", lo=1),
        Column("population_municipale", "int", lo=1),
        Column("source_id", "slug"),
    ),
    key=("territory_id", "perimeter", "census_year"),
)

REGION_POPULATION = Schema(
    "region_population",
    (
        Column("territory_id", _T),
        Column("region_code", "str", required=False),
        Column("region_name", "str"),
        Column("census_year", "int", lo=YEAR_MIN, hi=YEAR_MAX),
        Column("geo_version", "str"),
        Column("n_communes", "int", lo=1),
        Column("population_municipale", "int", lo=1),
        Column("source_id", "slug"),
    ),
    key=("territory_id", "census_year"),
)

SCHEMAS: dict[str, Schema] = {
    s.name: s
    for s in (
        FACTS,
        LABELS,
        LABEL_PLACES,
        COUNT_AREAS,
        EPCI,
        COMMUNES,
        TERRITORIES,
        DEPARTMENTS,
        TERRITORY_POPULATION,
        REGION_POPULATION,
    )
}

_SLUG = re.compile(r"^[a-z0-9]+(?:[-_.][a-z0-9]+)*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def get_schema(name: str, where: str = "schema") -> Schema:
    if name not in SCHEMAS:
        raise SchemaError(f"{where}: unknown schema {name!r}; known: {', '.join(SCHEMAS)}")
    return SCHEMAS[name]


def _line(idx: int) -> int:
    """Line number in the CSV file of the frame row `idx` (the header is line 1)."""
    return int(idx) + 2


def check_header(columns: list[str], schema: Schema, where: str) -> None:
    """Columns may come in any order, but none may be missing, renamed or extra."""
    got, want = list(columns), schema.names
    dupes = sorted({c for c in got if got.count(c) > 1})
    missing = [c for c in want if c not in got]
    extra = [c for c in got if c not in want]
    if dupes or missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected column(s) {', '.join(extra)}")
        if dupes:
            parts.append(f"repeated column(s) {', '.join(dupes)}")
        raise SchemaError(
            f"{where}: {'; '.join(parts)} (schema {schema.name!r} expects: {', '.join(want)})"
        )


def validate(raw: pd.DataFrame, schema: Schema, where: str | Path) -> pd.DataFrame:
    """Check a frame of strings against `schema` and return it typed, columns in schema order.

    Empty cells of optional columns become missing values (never 0 or "").
    """
    where = str(where)
    check_header(list(raw.columns), schema, where)
    out = {}
    territories = set(valid_territory_ids())
    for col in schema.columns:
        s = raw[col.name].astype("str").str.strip()
        empty = s == ""
        if col.required and empty.any():
            i = empty.idxmax()
            raise DataError(
                f"{where}, line {_line(i)}, column {col.name!r}: empty; a value is required"
            )
        present = s[~empty]
        if col.kind in ("int", "float"):
            num = pd.to_numeric(present, errors="coerce")
            infinite = ~np.isfinite(num.fillna(0))
            bad = num.isna() | infinite
            if col.kind == "int":
                bad |= ~bad & (num % 1 != 0)
            if bad.any():
                i = bad.idxmax()
                what = "an integer" if col.kind == "int" else "a number"
                what = "a finite number" if infinite[i] else what
                raise DataError(
                    f"{where}, line {_line(i)}, column {col.name!r}: {present[i]!r} is not {what}"
                )
            if col.lo is not None and (num < col.lo).any():
                i = (num < col.lo).idxmax()
                hint = " (counts and shares cannot be negative)" if col.lo == 0 else ""
                raise DataError(
                    f"{where}, line {_line(i)}, column {col.name!r}: {present[i]} is below "
                    f"the minimum {col.lo:g}{hint}"
                )
            if col.hi is not None and (num > col.hi).any():
                i = (num > col.hi).idxmax()
                raise DataError(
                    f"{where}, line {_line(i)}, column {col.name!r}: {present[i]} is above "
                    f"the maximum {col.hi:g}"
                )
            full = pd.to_numeric(s.where(~empty), errors="coerce")
            out[col.name] = full.astype("Int64") if col.kind == "int" else full.astype("float64")
            continue
        bad = pd.Series(False, index=present.index)
        expected = ""
        if col.kind == "slug":
            bad = ~present.str.match(_SLUG)
            expected = "a lower-case id of letters, digits, '-', '_' or '.'"
        elif col.kind == "date":
            parsed = pd.to_datetime(present.where(present.str.match(_DATE)), errors="coerce")
            bad = parsed.isna()
            expected = "a date YYYY-MM-DD"
        elif col.kind == "territory":
            bad = ~present.isin(territories)
            expected = "a territory id; valid ids: " + ", ".join(valid_territory_ids())
        elif col.kind == "choice":
            bad = ~present.isin(col.choices)
            expected = "one of " + ", ".join(col.choices)
        if col.pattern is not None:
            bad |= ~present.str.fullmatch(col.pattern)
            expected = expected or f"a value matching {col.pattern}"
        if bad.any():
            i = bad.idxmax()
            label = "unknown territory" if col.kind == "territory" else "invalid value"
            raise DataError(
                f"{where}, line {_line(i)}, column {col.name!r}: {label} {present[i]!r}; "
                f"expected {expected}"
            )
        out[col.name] = s.where(~empty).astype("str") if not col.required else s
    df = pd.DataFrame(out, index=raw.index)[schema.names]
    if schema.row_check is not None:
        for i, row in zip(df.index, df.to_dict("records"), strict=True):
            problem = schema.row_check(row)
            if problem:
                raise DataError(f"{where}, line {_line(i)}, {problem}")
    dup = df.duplicated(list(schema.key), keep=False)
    if dup.any():
        rows = df.index[dup]
        first = df.loc[rows[0], list(schema.key)]
        same = rows[(df.loc[rows, list(schema.key)] == first).all(axis=1)]
        key = ", ".join(f"{k}={v}" for k, v in first.items())
        raise DataError(
            f"{where}, lines {', '.join(str(_line(i)) for i in same)}: duplicate key ({key}); "
            f"each ({', '.join(schema.key)}) must appear once"
        )
    return df.reset_index(drop=True)
