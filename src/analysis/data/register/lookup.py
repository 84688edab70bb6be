"""Where a register row belongs: commune code -> commune -> EPCI -> French Tech capital.

Read from the derived table ``communes`` of one census vintage (and ``epci`` for the
names) with the standard library's csv reader: the register path needs no pandas. The
arrondissements municipaux of Paris, Lyon and Marseille go to their commune
(:data:`analysis.core.territories.ARRONDISSEMENTS`), whether or not the table lists them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from analysis.core import paths, rules, territories
from analysis.core.cache import cached_on_files
from analysis.core.errors import DataError
from analysis.data.sidecars import verify_sha256

#: The column of the lookup that each level counts by.
_UNIT = {"commune": 0, "epci": 1, "territory": 2}


@dataclass(frozen=True)
class Geography:
    """Register code -> (commune code, EPCI SIREN, territory id), for one census vintage."""

    vintage: int
    geo_version: str
    #: register code (commune or arrondissement) -> (commune_code, epci_siren, territory_id)
    codes: dict[str, tuple[str, str, str]]
    #: level -> every code of that level with its name, sorted by code
    level_names: dict[str, tuple[tuple[str, str], ...]]

    def unit(self, code: str | None, level: str) -> str | None:
        """The `level` code a register code belongs to, or None when it matches nothing."""
        hit = self.codes.get(code) if code is not None else None
        return None if hit is None else hit[_UNIT[level]]

    def names(self, level: str) -> tuple[tuple[str, str], ...]:
        """Every ``(code, name)`` of `level`, sorted by code."""
        return self.level_names[level]


def _territory_names() -> dict[str, str]:
    """Display names of the capitals: their main cities (analysis.core.territories)."""
    return {c.territory_id: " / ".join(c.main_cities) for c in territories.CAPITALES}


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: derived table not found; build it with `analysis data build`")
    verify_sha256(path, "derived")
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _derived(data_dir: str) -> list[Path]:
    base = Path(data_dir) / "derived"
    return [base / "communes.csv", base / "epci.csv"]


def load_geography(vintage: int | None = None, data_dir: Path | None = None) -> Geography:
    """The capitals' communes, arrondissements, EPCIs and territories of one census vintage."""
    vintage = rules.population_vintage(vintage)
    base = Path(data_dir) if data_dir else paths.data_dir()
    return _load_geography(vintage, str(base.resolve()))


@cached_on_files(lambda vintage, data_dir: _derived(data_dir), maxsize=4)
def _load_geography(vintage: int, data_dir: str) -> Geography:
    communes_path, epci_path = _derived(data_dir)
    rows = [r for r in _read_rows(communes_path) if r["census_year"] == str(vintage)]
    if not rows:
        raise DataError(f"derived table communes: no row for census year {vintage}")
    geo_version = rows[0]["geo_version"]
    codes: dict[str, tuple[str, str, str]] = {}
    for r in rows:
        commune = r["parent_commune_code"] or r["commune_code"]
        codes.setdefault(r["commune_code"], (commune, r["epci_siren"], r["territory_id"]))
    # Arrondissements missing from the table still land in their commune.
    for arr, commune in territories.ARRONDISSEMENTS.items():
        if arr not in codes and commune in codes:
            codes[arr] = (commune, *codes[commune][1:])
    commune_names = sorted(
        (r["commune_code"], r["commune_name"])
        for r in rows
        if r["commune_type"] == "commune-actuelle"
    )
    epci_names = {
        r["epci_siren"]: r["epci_name"]
        for r in _read_rows(epci_path)
        if r["geo_version"] == geo_version
    }
    sirens = sorted({v[1] for v in codes.values()})
    tnames = _territory_names()
    tids = sorted({v[2] for v in codes.values()})
    names = {
        "commune": tuple(commune_names),
        "epci": tuple((s, epci_names.get(s, "")) for s in sirens),
        "territory": tuple((t, tnames.get(t, t)) for t in tids),
    }
    return Geography(vintage, geo_version, codes, names)
