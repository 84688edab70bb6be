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


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: derived table not found; build it with `analysis data build`")
    verify_sha256(path, "derived")
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


_TABLES = ("communes", "epci", "departments", "region_population", "territories")


def _derived(data_dir: str) -> list[Path]:
    base = Path(data_dir) / "derived"
    return [base / f"{name}.csv" for name in _TABLES]


@cached_on_files(lambda data_dir: _derived(data_dir)[:1], maxsize=2)
def _vintages(data_dir: str) -> dict[int, int]:
    """Census vintage -> year of its geography, from the communes table."""
    out: dict[int, int] = {}
    for r in _read_rows(_derived(data_dir)[0]):
        out.setdefault(int(r["census_year"]), int(r["geo_version"]))
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
    communes_path, epci_path, dep_path, reg_path, terr_path = _derived(data_dir)
    year = str(vintage)
    rows = [r for r in _read_rows(communes_path) if r["census_year"] == year]
    if not rows:
        raise DataError(f"{communes_path}: no row for census year {vintage}")
    geo_version = rows[0]["geo_version"]
    by_code = {r["commune_code"]: r for r in rows if r["commune_type"] == "commune-actuelle"}
    codes: dict[str, tuple[str, str, str, str]] = {}
    for r in rows:
        commune = by_code.get(r["parent_commune_code"] or r["commune_code"], r)
        codes.setdefault(
            r["commune_code"],
            (
                commune["commune_code"],
                commune["epci_siren"],
                commune["department_code"],
                commune["region_code"],
            ),
        )
    # Arrondissements missing from the table still land in their commune.
    for arr, commune_code in territories.ARRONDISSEMENTS.items():
        if arr not in codes and commune_code in codes:
            codes[arr] = codes[commune_code]
    terr = [
        r for r in _read_rows(terr_path) if r["census_year"] == year and r["perimeter"] == perimeter
    ]
    territory_of_epci = {r["epci_siren"]: r["territory_id"] for r in terr}
    epci_names = {
        r["epci_siren"]: r["epci_name"]
        for r in _read_rows(epci_path)
        if r["geo_version"] == geo_version
    }
    dep_names = {
        r["department_code"]: r["department_name"]
        for r in _read_rows(dep_path)
        if r["census_year"] == year
    }
    reg_names = {r["region_code"]: r["region_name"] for r in _read_rows(reg_path)}
    # overseas collectivities are their own "region" in the geography: their own name
    reg_names.update({k: v for k, v in dep_names.items() if k not in reg_names})
    tnames = {c.territory_id: " / ".join(c.main_cities) for c in territories.CAPITALES}

    def named(values: set[str], names: dict[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple((v, names.get(v, "")) for v in sorted(values) if v)

    level_names = {
        "commune": tuple(sorted((c, r["commune_name"]) for c, r in by_code.items())),
        "epci": named({v[1] for v in codes.values()}, epci_names),
        "department": named({v[2] for v in codes.values()}, dep_names),
        "region": named({v[3] for v in codes.values()}, reg_names),
        "territory": named(set(territory_of_epci.values()), tnames),
    }
    return Geography(vintage, geo_version, perimeter, codes, territory_of_epci, level_names)
