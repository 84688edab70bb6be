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
import functools
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TypeVar

from analysis.core import paths, rules, territories
from analysis.core.cache import DiskCache, cached_on_files
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
    unit_names : level -> code -> name, for the codes that have one (for ``commune``, every
        commune of the geography).
    """

    vintage: int
    geo_version: str
    perimeter: str
    codes: dict[str, tuple[str, str, str, str]]
    territory_of_epci: dict[str, str]
    unit_names: dict[str, dict[str, str]]
    _names: dict[str, tuple[tuple[str, str], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def unit(self, code: str | None, level: str) -> str | None:
        """The `level` code a register code belongs to, or None when it has none."""
        return self.unit_of(level)(code)

    def unit_of(self, level: str) -> Callable[[str | None], str | None]:
        """:meth:`unit` for one `level`, as a function of the code alone (for loops over
        tens of thousands of codes)."""
        get = self.codes.get  # None is never a key: get(None) is None
        if level == "territory":
            territory = self.territory_of_epci.get

            def of(code: str | None) -> str | None:
                hit = get(code)  # type: ignore[arg-type]
                return None if hit is None else territory(hit[1])

            return of
        i = _UNIT[level]

        def of_level(code: str | None) -> str | None:
            hit = get(code)  # type: ignore[arg-type]
            return None if hit is None else (hit[i] or None)

        return of_level

    def names(self, level: str) -> tuple[tuple[str, str], ...]:
        """Every ``(code, name)`` of `level`, sorted by code; a unit without a name in the
        derived tables has ``""``. Built on first use: a count needs one level."""
        if level not in self._names:
            names = self.unit_names[level]
            if level == "commune":
                values = set(names)
            elif level == "territory":
                values = set(self.territory_of_epci.values())
            else:
                i = _UNIT[level]
                values = {v[i] for v in self.codes.values()}
            self._names[level] = tuple((v, names.get(v, "")) for v in sorted(values) if v)
        return self._names[level]

    @property
    def level_names(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """level -> :meth:`names` of that level, for every level."""
        return {level: self.names(level) for level in self.unit_names}


@dataclass(frozen=True)
class _Table:
    """A derived table as read by :func:`_read_table`: its header and its records.

    A table without any quote character (the communes table) keeps its records as bytes,
    ``raw[start:stop]``, each record preceded by a newline. The records of one census year
    are then found as one block with byte searches when the table is grouped by year (as
    ``analysis data build`` writes it), and only that block is decoded and split into
    fields. Any other table is parsed whole by the csv module.
    """

    path: Path
    header: tuple[str, ...]
    raw: bytes | None  # the file, when no field is quoted
    start: int  # the newline that ends the header
    stop: int  # the end of the last record
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
        if self.parsed is not None:
            if column is None:
                return list(self.parsed)
            (i,) = self.columns(column)
            return [r for r in self.parsed if r[i] == value]
        if column is None:
            return _split(self._lines())
        (i,) = self.columns(column)
        if i == 0:  # the records of one year, found by their first characters
            key = f"\n{value},".encode()
            first = self._find(key)
            if first < 0:
                return []
            end = self._block_end(key, first)
            if end is not None:
                return _split(self._decode(first + 1, end).split("\n"))
            return _split([ln for ln in self._lines() if ln.startswith(f"{value},")])
        return [r for r in _split(self._lines()) if r[i] == value]

    def first_two_fields(self) -> set[tuple[str, str]]:
        """The distinct ``(first field, second field)`` pairs of the records.

        On a table grouped by these two fields, one block per pair is found with byte
        searches and no record is split; otherwise every record is split.
        """
        grouped = self._grouped_pairs()
        if grouped is not None:
            return grouped
        return {(r[0], r[1]) for r in _split(self._lines())}

    def _decode(self, begin: int, end: int) -> str:
        assert self.raw is not None
        return self.raw[begin:end].decode("utf-8")

    def _lines(self) -> list[str]:
        return [ln for ln in self._decode(self.start + 1, self.stop).split("\n") if ln]

    def _find(self, key: bytes) -> int:
        assert self.raw is not None
        return self.raw.find(key, self.start, self.stop)

    def _block_end(self, key: bytes, first: int) -> int | None:
        """Where the records starting with `key` (its newline included) end, the first one
        at `first`; None when another record or a blank line lies among them."""
        raw = self.raw
        assert raw is not None
        end = raw.find(b"\n", raw.rfind(key, self.start, self.stop) + 1, self.stop)
        end = self.stop if end < 0 else end
        # a record starts after each newline: all of them start with `key`, or not grouped
        return end if raw.count(b"\n", first, end) == raw.count(key, first, end) else None

    def _grouped_pairs(self) -> set[tuple[str, str]] | None:
        """The pairs of :meth:`first_two_fields` block by block, or None if not grouped."""
        raw = self.raw
        assert raw is not None
        pairs: set[tuple[str, str]] = set()
        pos = self.start
        while pos < self.stop:
            eol = raw.find(b"\n", pos + 1, self.stop)
            parts = raw[pos + 1 : self.stop if eol < 0 else eol].split(b",", 2)
            if len(parts) < 3:
                return None
            end = self._block_end(b"\n" + parts[0] + b"," + parts[1] + b",", pos)
            if end is None:
                return None
            pairs.add((parts[0].decode("utf-8"), parts[1].decode("utf-8")))
            pos = end
        return pairs


def _split(lines: list[str]) -> list[tuple[str, ...]]:
    return [tuple(ln.split(",")) for ln in lines]


def _verified(path: Path) -> str:
    """The sha256 of a derived table, checked against its sidecar (a DataError names a
    missing table)."""
    if not path.is_file():
        raise DataError(f"{path}: derived table not found; build it with `analysis data build`")
    return verify_sha256(path, "derived")


def _read_table(path: Path) -> _Table:
    """A derived table, checked against its sidecar's sha256 and read once per version."""
    _verified(path)
    return _read_table_cached(str(path))


@cached_on_files(lambda path: [path], maxsize=8)
def _read_table_cached(path: str) -> _Table:
    with open(path, "rb") as f:
        raw = f.read()
    if b'"' not in raw and b"\r" not in raw:  # no field is quoted: a record is a line
        start = raw.find(b"\n")
        start = len(raw) if start < 0 else start
        stop = len(raw)
        while stop > start and raw[stop - 1] == 0x0A:  # the final newline(s)
            stop -= 1
        header = tuple(raw[:start].decode("utf-8").split(","))
        return _Table(Path(path), header, raw, start, stop, None)
    reader = csv.reader(io.StringIO(raw.decode("utf-8"), newline=""))
    header = tuple(next(reader, ()))
    return _Table(Path(path), header, None, 0, 0, tuple(tuple(r) for r in reader if r))


_TABLES = ("communes", "epci", "departments", "region_population", "territories")


def _derived(data_dir: str) -> list[Path]:
    base = Path(data_dir) / "derived"
    return [base / f"{name}.csv" for name in _TABLES]


#: Parsed geographies kept between processes, keyed on the derived tables' checksums and on
#: this module's source (:class:`~analysis.core.cache.DiskCache`): a count then loads its
#: geography in milliseconds instead of parsing 74,000 records while DuckDB scans.
_DISK = DiskCache("register-geography")
T = TypeVar("T")


@functools.cache
def _code_version() -> str | None:
    """The sha256 of this module's source, part of every disk-cache key (None: no cache)."""
    try:
        return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    except OSError:
        return None


def _disk_cached(
    parts: tuple[str, ...], compute: Callable[[], T], valid: Callable[[object], bool]
) -> T:
    """``compute()`` through :data:`_DISK`, its key made of `parts` and this module's source."""
    version = _code_version()
    if version is None:
        return compute()
    return _DISK.get_or_compute((*parts, version), compute, valid)


def _vintages(data_dir: str) -> dict[int, int]:
    """Census vintage -> year of its geography, from the communes table."""
    communes = _derived(data_dir)[0]
    return _disk_cached(
        ("vintages", _verified(communes)),
        lambda: _parse_vintages(communes),
        lambda hit: isinstance(hit, dict) and bool(hit) and all(isinstance(k, int) for k in hit),
    )


def _parse_vintages(path: Path) -> dict[int, int]:
    table = _read_table(path)
    year, geo = table.columns("census_year", "geo_version")
    if table.raw is not None and (year, geo) == (0, 1):  # the first two fields of each line
        pairs = table.first_two_fields()
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
    tables = _derived(data_dir)
    digests = [_verified(p) for p in tables]
    geo_version, codes, territory_of_epci, unit_names = _disk_cached(
        ("geography", str(vintage), perimeter, *digests),
        lambda: _parse_geography(vintage, tables, perimeter),
        lambda hit: isinstance(hit, tuple) and len(hit) == 4 and isinstance(hit[1], dict),
    )
    # Arrondissements missing from the table still land in their commune.
    for arr, commune_code in territories.ARRONDISSEMENTS.items():
        if arr not in codes and commune_code in codes:
            codes[arr] = codes[commune_code]
    unit_names["territory"] = {
        c.territory_id: " / ".join(c.main_cities) for c in territories.CAPITALES
    }
    return Geography(vintage, geo_version, perimeter, codes, territory_of_epci, unit_names)


def _parse_geography(vintage: int, tables: list[Path], perimeter: str) -> tuple:
    """(geo_version, codes, territory_of_epci, unit_names) read from the derived tables:
    what :class:`Geography` holds, before the package's own constants are added."""
    communes, epcis, deps, regs, terrs = (_read_table(p) for p in tables)
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
    units = itemgetter(c_code, c_epci, c_dep, c_reg)
    first: dict[str, tuple[str, ...]] = {}  # a code listed twice keeps its first row
    for r in rows:
        first.setdefault(r[c_code], r)
    codes: dict[str, tuple[str, str, str, str]] = {
        code: units(by_code.get(r[c_parent] or code, r)) for code, r in first.items()
    }
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
    unit_names = {
        "commune": {c: r[c_name] for c, r in by_code.items()},
        "epci": epci_names,
        "department": dep_names,
        "region": reg_names,
    }
    return geo_version, codes, territory_of_epci, unit_names
