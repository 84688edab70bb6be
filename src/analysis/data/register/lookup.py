"""Where a register row belongs: commune code -> commune -> EPCI, department, region, capital.

Read from the derived tables of one geography vintage with the standard library's csv
reader (the register path needs no pandas):

* ``communes``: every commune of France with its EPCI, department and region, plus the
  arrondissements municipaux of Paris, Lyon and Marseille and the communes déléguées and
  associées of merged communes, each pointing to the commune it belongs to today (so a
  register row still written with Pierre-Bénite's code 69152 lands in Oullins-Pierre-Bénite,
  69149, in the 2026 geography);
* ``epci``, ``departments`` and ``region_population`` for the names;
* ``territories``: the EPCIs of each capital under a perimeter (``label`` or ``core``).

:func:`geography_vintage` picks the vintage whose geography is closest to the count's
``as_of`` date, so that codes are read in the geography in force when the stock was written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

from analysis.core import paths, rules, territories
from analysis.core.cache import cached_on_files
from analysis.core.errors import DataError
from analysis.data.sidecars import verify_sha256

#: The column of :attr:`Geography.codes` that each level counts by (territory goes via EPCI).
_UNIT = {"commune": 0, "epci": 1, "department": 2, "region": 3}


@dataclass(frozen=True)
class Geography:
    """Register code -> commune, EPCI, department, region, and EPCI -> capital, for one vintage.

    Attributes
    ----------
    vintage, geo_version : the census year of the populations and the geography's year.
    perimeter : the capitals' perimeter used by the ``territory`` level.
    codes : register code (commune, arrondissement, commune déléguée or associée) ->
        ``(commune_code, epci_siren, department_code, region_code)``; ``""`` when the commune
        belongs to no EPCI (four islands).
    territory_of_epci : EPCI SIREN -> territory id under `perimeter`.
    level_names : level -> every ``(code, name)`` of that level, sorted by code.
    """

    vintage: int
    geo_version: str
    perimeter: str
    codes: dict[str, tuple[str, str, str, str]]
    territory_of_epci: dict[str, str]
    level_names: dict[str, tuple[tuple[str, str], ...]]

    def unit(self, code: str | None, level: str) -> str | None:
        """The `level` code a register code belongs to, or None when it has none."""
        hit = self.codes.get(code) if code is not None else None
        if hit is None:
            return None
        if level == "territory":
            return self.territory_of_epci.get(hit[1])
        return hit[_UNIT[level]] or None

    def known(self, code: str | None) -> bool:
        """Whether `code` is a commune, arrondissement or former commune of this geography."""
        return code is not None and code in self.codes

    def names(self, level: str) -> tuple[tuple[str, str], ...]:
        """Every ``(code, name)`` of `level`, sorted by code."""
        return self.level_names[level]


@dataclass(frozen=True)
class _Table:
    """A derived table as read by :func:`_read_table`: its header and its records.

    A table without any quote character (the communes table) keeps its records as text
    lines, parsed on demand, so that the records of one census year are the only ones split
    into fields; any other table is parsed whole by the csv module.
    """

    path: Path
    header: tuple[str, ...]
    lines: tuple[str, ...] | None  # the records as text, when no field is quoted
    parsed: tuple[tuple[str, ...], ...] | None  # else the records parsed

    def columns(self, *names: str) -> tuple[int, ...]:
        """The positions of `names` in the header (a DataError names a missing one)."""
        missing = [n for n in names if n not in self.header]
        if missing:
            raise DataError(
                f"{self.path}: missing column(s) {', '.join(missing)}; rebuild it with "
                "`analysis data build`"
            )
        return tuple(self.header.index(n) for n in names)

    def rows(self, column: str | None = None, value: str | None = None) -> list[tuple[str, ...]]:
        """The records, or only those whose `column` equals `value`."""
        if column is None:
            return list(self.parsed) if self.parsed is not None else self._split(self.lines)
        (i,) = self.columns(column)
        if self.parsed is not None:
            return [r for r in self.parsed if r[i] == value]
        if i == 0:  # the records of one year are found by their first characters
            return self._split([ln for ln in self.lines if ln.startswith(f"{value},")])
        return [r for r in self._split(self.lines) if r[i] == value]

    @staticmethod
    def _split(lines: object) -> list[tuple[str, ...]]:
        return [tuple(ln.split(",")) for ln in lines]  # type: ignore[attr-defined]


def _read_table(path: Path) -> _Table:
    """A derived table, checked against its sidecar's sha256 and read once per version."""
    if not path.is_file():
        raise DataError(f"{path}: derived table not found; build it with `analysis data build`")
    return _read_table_cached(str(path))


@cached_on_files(lambda path: [path], maxsize=8)
def _read_table_cached(path: str) -> _Table:
    verify_sha256(Path(path), "derived")
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    if '"' not in text and "\r" not in text:  # no field is quoted: a record is a line
        header, *lines = text.split("\n")
        return _Table(Path(path), tuple(header.split(",")), tuple(ln for ln in lines if ln), None)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = tuple(next(reader, ()))
    return _Table(Path(path), header, None, tuple(tuple(r) for r in reader if r))


_TABLES = ("communes", "epci", "departments", "region_population", "territories")


def _derived(data_dir: str) -> list[Path]:
    base = Path(data_dir) / "derived"
    return [base / f"{name}.csv" for name in _TABLES]


def _vintages(data_dir: str) -> dict[int, int]:
    """Census vintage -> year of its geography, from the communes table."""
    table = _read_table(_derived(data_dir)[0])
    year, geo = table.columns("census_year", "geo_version")
    if table.lines is not None and (year, geo) == (0, 1):  # the first two fields of each line
        pairs = {tuple(ln.split(",", 2)[:2]) for ln in table.lines}
    else:
        pairs = {(r[year], r[geo]) for r in table.rows()}
    out: dict[int, int] = {}
    for y, g in sorted(pairs):
        if int(y) in out:
            raise DataError(
                f"{table.path}: census year {y} has two geographies ({out[int(y)]} and {g}); "
                "rebuild it with `analysis data build`"
            )
        out[int(y)] = int(g)
    return out


def geography_vintage(as_of: object = None, data_dir: Path | None = None) -> int:
    """The census vintage whose geography is closest to `as_of` (the latest one if None).

    A tie goes to the later geography: a stock file keeps the codes in force when it was
    written, and the later table also lists the communes merged since as communes déléguées.
    The distance is ``|geo_year - year(as_of)|``, with ``geo_year`` the geography's year.

    Parameters
    ----------
    as_of : object, default None
        Reference date (a ``datetime.date`` or ``'YYYY-MM-DD'``); None for the latest
        vintage.
    data_dir : pathlib.Path or None, default None
        Data folder holding ``derived/``; None for the package's.

    Returns
    -------
    int
        The census vintage.

    Raises
    ------
    DataError
        When the derived table ``communes`` has no row.
    ParameterError
        When `as_of` is not a valid date.
    """
    base = str((Path(data_dir) if data_dir else paths.data_dir()).resolve())
    vintages = _vintages(base)
    if not vintages:
        raise DataError("derived table communes: no row")
    if as_of is None:
        return max(vintages)
    year = rules.as_of(as_of, "as_of").year if not isinstance(as_of, dt.date) else as_of.year
    return min(vintages, key=lambda v: (abs(vintages[v] - year), -vintages[v]))


def load_geography(
    vintage: int | None = None, data_dir: Path | None = None, perimeter: str | None = None
) -> Geography:
    """France's communes, EPCIs, departments, regions and the capitals, for one vintage.

    Parameters
    ----------
    vintage : census vintage (:func:`analysis.core.rules.population_vintage`).
    data_dir : the data folder holding ``derived/``.
    perimeter : the capitals' perimeter for the ``territory`` level (default ``label``).

    Returns
    -------
    :class:`Geography`: the lookup from any commune code to its unit at each level, with
    the units' names. Cached on the derived files: an edited file is read again.

    Raises
    ------
    ParameterError
        When `vintage` or `perimeter` is not allowed.
    DataError
        When a derived table is missing, fails its checksum or has no row for `vintage`.
    """
    vintage = rules.population_vintage(vintage)
    perimeter = rules.perimeter(perimeter)
    base = Path(data_dir) if data_dir else paths.data_dir()
    return _load_geography(vintage, str(base.resolve()), perimeter)


@cached_on_files(lambda vintage, data_dir, perimeter: _derived(data_dir), maxsize=4)
def _load_geography(vintage: int, data_dir: str, perimeter: str) -> Geography:
    communes, epcis, deps, regs, terrs = (_read_table(p) for p in _derived(data_dir))
    year = str(vintage)
    c_year, c_geo, c_code, c_type, c_parent, c_epci, c_dep, c_reg, c_name = communes.columns(
        "census_year",
        "geo_version",
        "commune_code",
        "commune_type",
        "parent_commune_code",
        "epci_siren",
        "department_code",
        "region_code",
        "commune_name",
    )
    rows = communes.rows("census_year", year)
    if not rows:
        raise DataError(f"{communes.path}: no row for census year {vintage}")
    geo_version = rows[0][c_geo]
    by_code = {r[c_code]: r for r in rows if r[c_type] == "commune-actuelle"}
    codes: dict[str, tuple[str, str, str, str]] = {}
    for r in rows:
        commune = by_code.get(r[c_parent] or r[c_code], r)
        codes.setdefault(
            r[c_code], (commune[c_code], commune[c_epci], commune[c_dep], commune[c_reg])
        )
    # Arrondissements missing from the table still land in their commune.
    for arr, commune_code in territories.ARRONDISSEMENTS.items():
        if arr not in codes and commune_code in codes:
            codes[arr] = codes[commune_code]
    t_year, t_perimeter, t_epci, t_id = terrs.columns(
        "census_year", "perimeter", "epci_siren", "territory_id"
    )
    territory_of_epci = {
        r[t_epci]: r[t_id]
        for r in terrs.rows()
        if r[t_year] == year and r[t_perimeter] == perimeter
    }
    e_geo, e_siren, e_name = epcis.columns("geo_version", "epci_siren", "epci_name")
    epci_names = {r[e_siren]: r[e_name] for r in epcis.rows() if r[e_geo] == geo_version}
    d_year, d_code, d_name = deps.columns("census_year", "department_code", "department_name")
    dep_names = {r[d_code]: r[d_name] for r in deps.rows() if r[d_year] == year}
    r_code, r_name = regs.columns("region_code", "region_name")
    reg_names = {r[r_code]: r[r_name] for r in regs.rows()}
    # overseas collectivities are their own "region" in the geography: their own name
    reg_names.update({k: v for k, v in dep_names.items() if k not in reg_names})
    tnames = {c.territory_id: " / ".join(c.main_cities) for c in territories.CAPITALES}

    def named(values: set[str], names: dict[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple((v, names.get(v, "")) for v in sorted(values) if v)

    level_names = {
        "commune": tuple(sorted((c, r[c_name]) for c, r in by_code.items())),
        "epci": named({v[1] for v in codes.values()}, epci_names),
        "department": named({v[2] for v in codes.values()}, dep_names),
        "region": named({v[3] for v in codes.values()}, reg_names),
        "territory": named(set(territory_of_epci.values()), tnames),
    }
    return Geography(vintage, geo_version, perimeter, codes, territory_of_epci, level_names)
