"""Build step for the INSEE geography tables (``analysis data build``).

Input: the npm tarballs of ``@etalab/decoupage-administratif`` (INSEE Code officiel
géographique, DGCL EPCI composition, INSEE populations; Licence Ouverte), recorded with
their sha256 in ``data/raw/etalab-decoupage-administratif-<version>/``. Outputs, in
``data/derived/`` (small, committed, so that the default run needs no network):

* ``epci.csv``: every EPCI of each vintage, with its own population columns;
* ``communes.csv``: every commune of the 13 capitals' core EPCIs, plus the
  arrondissements municipaux of Paris, Lyon and Marseille mapped to their commune;
* ``territory_population.csv``: the 13 capitals (sum of their communes);
* ``region_population.csv``: regions and France (sum of their communes).

The census vintage is a column everywhere. In 6.0.0 the communes file carries the 2023
reference populations while the EPCI file carries the DGCL's 2022 figures; the two are
never mixed: territory, region and France totals are all sums of the communes file, and
the EPCI table keeps its own census year.

Load inputs, process, save outputs: each step is a pure function of the inputs it declares.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from analysis.core import territories
from analysis.core.atomic import atomic_write_files
from analysis.core.checksums import sha256_file
from analysis.core.errors import ChecksumError, DataError
from analysis.data.datasets import data_root
from analysis.data.schemas import SCHEMAS, validate
from analysis.data.sidecars import read_sidecar, sidecar_path

PACKAGE = "@etalab/decoupage-administratif"
MAYOTTE = "06"  # region code; excluded from population totals (see region_population_table)


@dataclass(frozen=True)
class GeoVintage:
    version: str  # npm package version
    geo_year: int  # geography (Code officiel géographique) year
    communes_census_year: int  # census year of data/communes.json populations
    epci_census_year: int  # census year of data/epci.json populations
    #: Where the capitals' populations come from: "epci" (the EPCI totals) or "communes"
    #: (the sum of member communes). See VINTAGES.
    capital_population_from: str = "communes"
    #: False when communes.json is known to undercount, so regions and France are not built.
    communes_complete: bool = True

    @property
    def source_id(self) -> str:
        return f"etalab-decoupage-administratif-{self.version}"

    @property
    def tarball_name(self) -> str:
        return f"etalab-decoupage-administratif-{self.version}.tgz"


#: The vintages the package embeds. Census years: see each tarball's sidecar for evidence.
#:
#: 0.7.0 (census 2016): communes.json gives the communes nouvelles of 1 January 2019 only part
#: of their population (Glières-Val-de-Borne, 74212: 1,126, the population of one of its two
#: former communes); its communes sum to 66,132,540 inhabitants against 66,362,000 published
#: by INSEE for France hors Mayotte on 1 January 2016. The EPCI totals (DGCL) are complete, so
#: the capitals use them, and regions and France are not built for 2016 (missing, not patched).
#: 6.0.0 (census 2023): communes.json is complete (France hors Mayotte sums to 68,094,280;
#: INSEE: 68,094,000), while epci.json carries 2022 populations, so every 2023 total is a sum
#: of communes and the EPCI table keeps its own census year.
VINTAGES: tuple[GeoVintage, ...] = (
    GeoVintage("0.7.0", 2019, 2016, 2016, capital_population_from="epci", communes_complete=False),
    GeoVintage("6.0.0", 2026, 2023, 2022),
)


def tarball_path(v: GeoVintage, data_dir: Path | None = None) -> Path:
    base = data_root(data_dir)
    return base / "raw" / v.source_id / v.tarball_name


def fetch_tarball(v: GeoVintage, data_dir: Path | None = None) -> Path:
    """Download the tarball with ``npm pack`` and keep it only if its sha256 is the recorded one."""
    target = tarball_path(v, data_dir)
    expected = read_sidecar(target)["sha256"]
    if target.is_file() and sha256_file(target) == expected:
        return target
    if shutil.which("npm") is None:
        raise DataError(
            f"{target}: missing, and npm is not installed to fetch {PACKAGE}@{v.version}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{v.version}", "--pack-destination", tmp, "--silent"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise DataError(f"npm pack {PACKAGE}@{v.version} failed: {proc.stderr.strip()[-300:]}")
        got = Path(tmp) / v.tarball_name
        actual = sha256_file(got)
        if actual != expected:
            raise ChecksumError(
                f"{PACKAGE}@{v.version}: downloaded tarball has sha256 {actual}, "
                f"expected {expected} (recorded in {target.name}.meta.yaml); nothing was written"
            )
        shutil.move(got, target)
    return target


def read_package_json(tarball: Path, member: str) -> list[dict]:
    """One JSON file of the npm tarball (``package/data/<member>``), verified first."""
    expected = read_sidecar(tarball)["sha256"]
    actual = sha256_file(tarball)
    if actual != expected:
        raise ChecksumError(f"{tarball}: sha256 {actual} differs from its sidecar ({expected})")
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            f = tar.extractfile(f"package/data/{member}")
            if f is None:
                raise DataError(f"{tarball}: package/data/{member} is not a file")
            return json.load(io.TextIOWrapper(f, encoding="utf-8"))
    except (tarfile.TarError, KeyError, json.JSONDecodeError, OSError) as e:
        raise DataError(f"{tarball}: cannot read package/data/{member} ({e})") from None


# ----------------------------------------------------------------------------- process


def epci_table(epci: list[dict], v: GeoVintage) -> pd.DataFrame:
    rows = [
        {
            "census_year": v.epci_census_year,
            "geo_version": str(v.geo_year),
            "epci_siren": e["code"],
            "epci_name": e["nom"],
            "epci_type": e["type"],
            "population_municipale": e["populationMunicipale"],
            "population_totale": e["populationTotale"],
            "n_communes": len(e["membres"]),
            "source_id": v.source_id,
        }
        for e in epci
    ]
    return pd.DataFrame(rows)


def _commune_to_epci(epci: list[dict]) -> dict[str, dict]:
    return {m["code"]: e for e in epci for m in e["membres"]}


def capital_epcis(epci: list[dict], v: GeoVintage) -> dict[str, list[dict]]:
    """For each capital, the EPCIs that contain its anchor communes (in anchor order)."""
    member_of = _commune_to_epci(epci)
    out: dict[str, list[dict]] = {}
    for cap in territories.CAPITALES:
        found: list[dict] = []
        for code in cap.anchors:
            if code not in member_of:
                raise DataError(
                    f"{v.source_id}: anchor commune {code} of {cap.territory_id} is in no EPCI"
                )
            if member_of[code] not in found:
                found.append(member_of[code])
        out[cap.territory_id] = found
    return out


def communes_table(communes: list[dict], epci: list[dict], v: GeoVintage) -> pd.DataFrame:
    """Communes of the capitals' core EPCIs, plus the arrondissements of Paris, Lyon, Marseille."""
    by_code = {c["code"]: c for c in communes if c["type"] == "commune-actuelle"}
    rows = []
    for tid, epcis in capital_epcis(epci, v).items():
        for e in epcis:
            for m in e["membres"]:
                c = by_code.get(m["code"])
                if c is None:
                    raise DataError(
                        f"{v.source_id}: commune {m['code']} of EPCI {e['code']} is missing "
                        "from communes.json"
                    )
                rows.append(_commune_row(c, None, e["code"], tid, v))
    in_set = {r["commune_code"]: r for r in rows}
    for c in communes:
        if c["type"] == "arrondissement-municipal" and c.get("commune") in in_set:
            parent = in_set[c["commune"]]
            rows.append(
                _commune_row(c, c["commune"], parent["epci_siren"], parent["territory_id"], v)
            )
    return pd.DataFrame(rows)


def _commune_row(c: dict, parent: str | None, siren: str, tid: str, v: GeoVintage) -> dict:
    return {
        "census_year": v.communes_census_year,
        "geo_version": str(v.geo_year),
        "commune_code": c["code"],
        "commune_name": c["nom"],
        "commune_type": c["type"],
        "parent_commune_code": parent or "",
        "epci_siren": siren,
        "territory_id": tid,
        "population_municipale": c.get("population", ""),
        "source_id": v.source_id,
    }


def territory_population_table(
    communes: list[dict], epci: list[dict], v: GeoVintage
) -> pd.DataFrame:
    """Population municipale of each capital: its core EPCIs' communes (or EPCI totals, see VINTAGES)."""
    pop = {c["code"]: c.get("population") for c in communes if c["type"] == "commune-actuelle"}
    anchor_region = {
        c["code"]: c.get("region", "") for c in communes if c["type"] == "commune-actuelle"
    }
    rows = []
    for tid, epcis in capital_epcis(epci, v).items():
        members = [m["code"] for e in epcis for m in e["membres"]]
        missing = [m for m in members if pop.get(m) is None]
        if missing:
            raise DataError(
                f"{v.source_id}: no population for commune(s) {', '.join(missing[:5])} of {tid}"
            )
        if v.capital_population_from == "epci":
            if v.epci_census_year != v.communes_census_year:
                raise DataError(f"{v.source_id}: EPCI and commune census years differ")
            total = sum(e["populationMunicipale"] for e in epcis)
        else:
            total = sum(pop[m] for m in members)
        rows.append(
            {
                "territory_id": tid,
                "census_year": v.communes_census_year,
                "geo_version": str(v.geo_year),
                "epci_sirens": ";".join(e["code"] for e in epcis),
                "epci_names": ";".join(e["nom"] for e in epcis),
                "region_code": anchor_region[territories.capitale(tid).anchors[0]],
                "n_communes": len(members),
                "population_municipale": total,
                "source_id": v.source_id,
            }
        )
    return pd.DataFrame(rows)


def region_population_table(
    communes: list[dict], regions: list[dict], v: GeoVintage
) -> pd.DataFrame:
    """Population municipale of each region and of France: sums of communes with a population.

    France is every commune with a population in metropolitan France and the overseas
    régions, *hors Mayotte* as in INSEE's legal populations: the 2019 geography gives Mayotte
    no population, and the 2026 one gives it the 2017 census (see the 6.0.0 README), which
    would mix vintages. Collectivités d'outre-mer are excluded.
    """
    df = pd.DataFrame(
        [
            (c["region"], c["population"])
            for c in communes
            if c["type"] == "commune-actuelle"
            and c.get("population") is not None
            and c.get("region") in territories.REGIONS
            and c.get("region") != MAYOTTE
        ],
        columns=["region_code", "population"],
    )
    names = {r["code"]: r["nom"] for r in regions}
    g = df.groupby("region_code")["population"].agg(["sum", "size"]).reset_index()
    rows = [
        {
            "territory_id": territories.REGIONS[code],
            "region_code": code,
            "region_name": names[code],
            "census_year": v.communes_census_year,
            "geo_version": str(v.geo_year),
            "n_communes": int(n),
            "population_municipale": int(s),
            "source_id": v.source_id,
        }
        for code, s, n in g.itertuples(index=False)
    ]
    rows.append(
        {
            "territory_id": territories.COUNTRY_ID,
            "region_code": "",
            "region_name": "France",
            "census_year": v.communes_census_year,
            "geo_version": str(v.geo_year),
            "n_communes": int(len(df)),
            "population_municipale": int(df["population"].sum()),
            "source_id": v.source_id,
        }
    )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- save

DERIVED_TABLES = ("epci", "communes", "territory_population", "region_population")


def build_tables(data_dir: Path | None = None) -> dict[str, pd.DataFrame]:
    """Every derived geography table, from the tarballs (pure: no file is written)."""
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in DERIVED_TABLES}
    for v in VINTAGES:
        tgz = tarball_path(v, data_dir)
        if not tgz.is_file():
            raise DataError(f"{tgz}: not downloaded; run `analysis data build --fetch` (needs npm)")
        communes = read_package_json(tgz, "communes.json")
        epci = read_package_json(tgz, "epci.json")
        regions = read_package_json(tgz, "regions.json")
        parts["epci"].append(epci_table(epci, v))
        parts["communes"].append(communes_table(communes, epci, v))
        parts["territory_population"].append(territory_population_table(communes, epci, v))
        if v.communes_complete:
            parts["region_population"].append(region_population_table(communes, regions, v))
    out = {}
    for name, frames in parts.items():
        schema = SCHEMAS[name]
        df = pd.concat(frames, ignore_index=True).astype(str).replace({"nan": "", "None": ""})
        df = validate(df, schema, f"derived table {name}")
        out[name] = df.sort_values(list(schema.key), kind="stable").reset_index(drop=True)
    return out


def write_derived(tables: dict[str, pd.DataFrame], data_dir: Path | None = None) -> list[Path]:
    """Write the tables and their sidecars, all or none; each sidecar records the inputs' sha256
    (paths relative to the data folder, so that a copy of the folder stays valid)."""
    base = data_root(data_dir)
    inputs = [
        {
            "path": tarball_path(v, base).relative_to(base).as_posix(),
            "sha256": read_sidecar(tarball_path(v, base))["sha256"],
        }
        for v in VINTAGES
    ]
    files: dict[Path, str] = {}
    for name, df in tables.items():
        target = base / "derived" / f"{name}.csv"
        text = df.to_csv(index=False, lineterminator="\n")
        meta = {
            "table": name,
            "schema": name,
            "built_by": "analysis data build (src/analysis/data/geography.py)",
            "rows": int(len(df)),
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "inputs": inputs,
        }
        files[target] = text
        files[sidecar_path(target)] = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    atomic_write_files(files)  # every table and sidecar, or none
    return [p for p in files if p.suffix == ".csv"]


def build(
    data_dir: Path | None = None, fetch: bool = False, progress: Iterable | None = None
) -> list[Path]:
    """Fetch (optionally) and verify the tarballs, then rebuild every derived geography table."""
    if fetch:
        for v in VINTAGES:
            fetch_tarball(v, data_dir)
    return write_derived(build_tables(data_dir), data_dir)
