"""Build step for the INSEE geography tables (``analysis data build``).

Inputs: the npm tarballs of ``@etalab/decoupage-administratif`` (INSEE Code officiel
géographique, DGCL EPCI composition, INSEE populations; Licence Ouverte), recorded with
their sha256 in ``data/raw/etalab-decoupage-administratif-<version>/``, and the cited label
places (``label_places`` raw tables). Outputs, in
``data/derived/`` (small, committed, so that the default run needs no network):

* ``epci.csv``: every EPCI of each vintage, with its own population columns;
* ``communes.csv``: every commune of France with its EPCI, department and region, plus the
  arrondissements municipaux of Paris, Lyon and Marseille and the delegated and associated
  communes, each pointing to its commune (the SIRENE register may write their codes);
* ``departments.csv``: every department with its region;
* ``territories.csv``: the EPCIs of each capital's two perimeters: ``core`` (its anchor
  communes, :mod:`analysis.core.territories`) and ``label`` (every place the 2019 label
  names, cited in ``data/raw/*/label_places.csv``), with their anchors and sources;
* ``territory_population.csv``: the 13 capitals, both perimeters (sum of their communes);
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
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from analysis.core import territories
from analysis.core.atomic import atomic_write_files, scratch_folder
from analysis.core.checksums import sha256_file
from analysis.core.errors import ChecksumError, DataError
from analysis.data.datasets import data_root, load_label_places, raw_tables
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
    """Where the vintage's npm tarball is kept: ``raw/<source_id>/<tarball_name>``.

    Parameters
    ----------
    v : GeoVintage
        The geography vintage.
    data_dir : pathlib.Path or None, default None
        Data folder; None for the package's.

    Returns
    -------
    pathlib.Path
        The tarball's path (it may not exist yet).
    """
    base = data_root(data_dir)
    return base / "raw" / v.source_id / v.tarball_name


def fetch_tarball(v: GeoVintage, data_dir: Path | None = None) -> Path:
    """Download the tarball with ``npm pack`` and keep it only if its sha256 is the recorded one.

    A tarball already present with the recorded sha256 is kept as it is.

    Parameters
    ----------
    v : GeoVintage
        The geography vintage.
    data_dir : pathlib.Path or None, default None
        Data folder; None for the package's.

    Returns
    -------
    pathlib.Path
        The verified tarball.

    Raises
    ------
    DataError
        When npm is not installed or ``npm pack`` fails.
    ChecksumError
        When the downloaded tarball's sha256 is not the one in its sidecar (nothing is written).
    """
    target = tarball_path(v, data_dir)
    expected = read_sidecar(target)["sha256"]
    if target.is_file() and sha256_file(target) == expected:
        return target
    if shutil.which("npm") is None:
        raise DataError(
            f"{target}: missing, and npm is not installed to fetch {PACKAGE}@{v.version}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # beside the target, so that the verified tarball is renamed into place, never copied
    with scratch_folder(".npm-pack-", target.parent) as tmp:
        proc = subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{v.version}", "--pack-destination", str(tmp), "--silent"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise DataError(f"npm pack {PACKAGE}@{v.version} failed: {proc.stderr.strip()[-300:]}")
        got = tmp / v.tarball_name
        actual = sha256_file(got)
        if actual != expected:
            raise ChecksumError(
                f"{PACKAGE}@{v.version}: downloaded tarball has sha256 {actual}, "
                f"expected {expected} (recorded in {target.name}.meta.yaml); nothing was written"
            )
        os.replace(got, target)
    return target


def read_package_json(tarball: Path, member: str) -> list[dict]:
    """One JSON file of the npm tarball (``package/data/<member>``), verified first.

    Parameters
    ----------
    tarball : pathlib.Path
        The npm tarball, with its sidecar.
    member : str
        File name under ``package/data/`` (e.g. ``communes.json``).

    Returns
    -------
    list of dict
        The parsed JSON.

    Raises
    ------
    ChecksumError
        When the tarball's sha256 differs from its sidecar.
    DataError
        When the member is missing or cannot be read as JSON.
    """
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
    """Every EPCI of the vintage with its own population columns (its census year).

    Parameters
    ----------
    epci : list of dict
        The tarball's ``epci.json`` (each EPCI with its ``membres``).
    v : GeoVintage
        The geography vintage.

    Returns
    -------
    pandas.DataFrame
        One row per EPCI: ``census_year, geo_version, epci_siren, epci_name, epci_type,
        population_municipale, population_totale, n_communes, source_id``.
    """
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


@dataclass(frozen=True)
class PerimeterEpci:
    """One EPCI of a capital's perimeter, with the anchor communes and sources behind it."""

    epci: dict
    anchors: tuple[str, ...]
    source_ids: tuple[str, ...]


def perimeter_anchors(places: pd.DataFrame) -> dict[tuple[str, str], dict[str, set[str]]]:
    """(capital, perimeter) -> anchor commune -> the sources citing it.

    ``core``: the anchor communes of :data:`analysis.core.territories.CAPITALES`; ``label``:
    those and every commune of the capital's cited label places (``label_places``). A core
    anchor carries the sources that cite it as a label place.
    """
    cited: dict[tuple[str, str], set[str]] = {}
    for t, code, sid in zip(
        places["territory_id"], places["commune_code"], places["source_id"], strict=True
    ):
        cited.setdefault((t, code), set()).add(sid)
    out: dict[tuple[str, str], dict[str, set[str]]] = {}
    for cap in territories.CAPITALES:
        core = {a: cited.get((cap.territory_id, a), set()) for a in cap.anchors}
        label = dict(core)
        for (t, code), sids in sorted(cited.items()):
            if t == cap.territory_id:
                label.setdefault(code, sids)
        out[(cap.territory_id, "core")] = core
        out[(cap.territory_id, "label")] = label
    return out


def perimeter_epcis(
    epci: list[dict], anchors: dict[tuple[str, str], dict[str, set[str]]], v: GeoVintage
) -> dict[tuple[str, str], list[PerimeterEpci]]:
    """(capital, perimeter) -> its EPCIs (first anchor's first), each with anchors and sources.

    Parameters
    ----------
    epci : list of dict
        The tarball's ``epci.json`` (each EPCI with its ``membres``).
    anchors : dict
        (capital, perimeter) -> anchor commune -> citing sources, from
        :func:`perimeter_anchors`.
    v : GeoVintage
        The geography vintage.

    Returns
    -------
    dict of (str, str) to list of PerimeterEpci
        The EPCIs of each capital's perimeter.

    Raises
    ------
    DataError
        When an anchor commune is in no EPCI of the vintage, or when one EPCI would belong to
        two capitals within one perimeter.
    """
    member_of = _commune_to_epci(epci)
    out: dict[tuple[str, str], list[PerimeterEpci]] = {}
    owner: dict[tuple[str, str], str] = {}
    for (tid, perimeter), by_anchor in anchors.items():
        found: dict[str, tuple[dict, list[str], set[str]]] = {}
        for code, sids in by_anchor.items():
            if code not in member_of:
                raise DataError(
                    f"{v.source_id}: anchor commune {code} of {tid} ({perimeter} perimeter) is "
                    "in no EPCI of this geography"
                )
            e = member_of[code]
            entry = found.setdefault(e["code"], (e, [], set()))
            entry[1].append(code)
            entry[2].update(sids)
            other = owner.setdefault((perimeter, e["code"]), tid)
            if other != tid:
                raise DataError(
                    f"{v.source_id}: EPCI {e['code']} ({e['nom']}) is in the {perimeter} "
                    f"perimeter of both {other} and {tid}"
                )
        out[(tid, perimeter)] = [
            PerimeterEpci(e, tuple(a), tuple(sorted(s))) for e, a, s in found.values()
        ]
    return out


def communes_table(communes: list[dict], epci: list[dict], v: GeoVintage) -> pd.DataFrame:
    """Every commune of the vintage with its EPCI, department and region; the arrondissements
    municipaux, delegated and associated communes point to their commune (a register may
    write their codes).

    Parameters
    ----------
    communes : list of dict
        The tarball's ``communes.json``.
    epci : list of dict
        The tarball's ``epci.json`` (each EPCI with its ``membres``).
    v : GeoVintage
        The geography vintage.

    Returns
    -------
    pandas.DataFrame
        One row per code, ``parent_commune_code`` empty for a commune; a population only for
        communes and arrondissements municipaux.
    """
    member_of = _commune_to_epci(epci)
    actual = {c["code"]: c for c in communes if c["type"] == "commune-actuelle"}
    rows = []
    for c in communes:
        if c["type"] == "commune-actuelle":
            parent = None
        elif c["type"] == "arrondissement-municipal":
            parent = c.get("commune")
        else:  # commune-deleguee, commune-associee
            parent = c.get("chefLieu")
            if c["code"] in actual or parent not in actual:
                continue  # the same code as its commune nouvelle, or nothing to point to
        code = parent or c["code"]
        e = member_of.get(code)
        rows.append(
            {
                "census_year": v.communes_census_year,
                "geo_version": str(v.geo_year),
                "commune_code": c["code"],
                "commune_name": c["nom"],
                "commune_type": c["type"],
                "parent_commune_code": parent or "",
                "epci_siren": e["code"] if e else "",
                # a collectivité d'outre-mer has no department: its COG code stands for one
                "department_code": c.get("departement")
                or (c.get("collectiviteOutremer") or {}).get("code", ""),
                "region_code": c.get("region", ""),
                "population_municipale": c.get("population", "")
                if c["type"] in ("commune-actuelle", "arrondissement-municipal")
                else "",
                "source_id": v.source_id,
            }
        )
    return pd.DataFrame(rows)


def territories_table(
    perims: dict[tuple[str, str], list[PerimeterEpci]], v: GeoVintage
) -> pd.DataFrame:
    """The EPCIs of every capital's two perimeters, with their anchors and sources.

    Parameters
    ----------
    perims : dict
        (capital, perimeter) -> its EPCIs, from :func:`perimeter_epcis`.
    v : GeoVintage
        The geography vintage.

    Returns
    -------
    pandas.DataFrame
        One row per capital, perimeter and EPCI, ``anchor_communes`` and ``source_ids``
        ``;``-joined (the geography's source included).
    """
    rows = [
        {
            "territory_id": tid,
            "perimeter": perimeter,
            "census_year": v.communes_census_year,
            "geo_version": str(v.geo_year),
            "epci_siren": p.epci["code"],
            "epci_name": p.epci["nom"],
            "anchor_communes": ";".join(p.anchors),
            "source_ids": ";".join(sorted({*p.source_ids, v.source_id})),
        }
        for (tid, perimeter), epcis in perims.items()
        for p in epcis
    ]
    return pd.DataFrame(rows)


def departments_table(departments: list[dict], v: GeoVintage) -> pd.DataFrame:
    """Every department of the vintage with its name and region.

    Parameters
    ----------
    departments : list of dict
        The tarball's ``departements.json``.
    v : GeoVintage
        The geography vintage.

    Returns
    -------
    pandas.DataFrame
        One row per department.
    """
    return pd.DataFrame(
        [
            {
                "census_year": v.communes_census_year,
                "geo_version": str(v.geo_year),
                "department_code": d["code"],
                "department_name": d["nom"],
                "region_code": d.get("region", ""),
                "source_id": v.source_id,
            }
            for d in departments
        ]
    )


def territory_population_table(
    communes: list[dict], perims: dict[tuple[str, str], list[PerimeterEpci]], v: GeoVintage
) -> pd.DataFrame:
    """Population municipale of each capital's two perimeters: the sum of their EPCIs'
    communes (or of the EPCI totals, see VINTAGES).

    ``P = sum of population_municipale over the member communes`` (INSEE), or the sum of the
    EPCI totals when ``v.capital_population_from == "epci"``.

    Parameters
    ----------
    communes : list of dict
        The tarball's ``communes.json``.
    perims : dict
        (capital, perimeter) -> its EPCIs, from :func:`perimeter_epcis`.
    v : GeoVintage
        The geography vintage.

    Returns
    -------
    pandas.DataFrame
        One row per capital and perimeter, with its EPCIs, region, number of communes and
        population.

    Raises
    ------
    DataError
        When a member commune has no population, or EPCI totals are asked for while the EPCI
        and commune census years differ.
    """
    pop = {c["code"]: c.get("population") for c in communes if c["type"] == "commune-actuelle"}
    region = {c["code"]: c.get("region", "") for c in communes if c["type"] == "commune-actuelle"}
    rows = []
    for (tid, perimeter), epcis in perims.items():
        members = [m["code"] for p in epcis for m in p.epci["membres"]]
        missing = [m for m in members if pop.get(m) is None]
        if missing:
            raise DataError(
                f"{v.source_id}: no population for commune(s) {', '.join(missing[:5])} of {tid}"
            )
        if v.capital_population_from == "epci":
            if v.epci_census_year != v.communes_census_year:
                raise DataError(f"{v.source_id}: EPCI and commune census years differ")
            total = sum(p.epci["populationMunicipale"] for p in epcis)
        else:
            total = sum(pop[m] for m in members)
        rows.append(
            {
                "territory_id": tid,
                "perimeter": perimeter,
                "census_year": v.communes_census_year,
                "geo_version": str(v.geo_year),
                "epci_sirens": ";".join(p.epci["code"] for p in epcis),
                "epci_names": ";".join(p.epci["nom"] for p in epcis),
                "region_code": region[territories.capitale(tid).anchors[0]],
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

    Parameters
    ----------
    communes : list of dict
        The tarball's ``communes.json``.
    regions : list of dict
        The tarball's ``regions.json`` (names).
    v : GeoVintage
        The geography vintage.

    Returns
    -------
    pandas.DataFrame
        One row per region, then France.
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

DERIVED_TABLES = (
    "epci",
    "communes",
    "departments",
    "territories",
    "territory_population",
    "region_population",
)


def build_tables(data_dir: Path | None = None) -> dict[str, pd.DataFrame]:
    """Every derived geography table, from the tarballs and the cited label places (pure: no
    file is written)."""
    anchors = perimeter_anchors(load_label_places(data_dir))
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in DERIVED_TABLES}
    for v in VINTAGES:
        tgz = tarball_path(v, data_dir)
        if not tgz.is_file():
            raise DataError(f"{tgz}: not downloaded; run `analysis data build --fetch` (needs npm)")
        communes = read_package_json(tgz, "communes.json")
        epci = read_package_json(tgz, "epci.json")
        regions = read_package_json(tgz, "regions.json")
        perims = perimeter_epcis(epci, anchors, v)
        parts["epci"].append(epci_table(epci, v))
        parts["communes"].append(communes_table(communes, epci, v))
        parts["departments"].append(
            departments_table(read_package_json(tgz, "departements.json"), v)
        )
        parts["territories"].append(territories_table(perims, v))
        parts["territory_population"].append(territory_population_table(communes, perims, v))
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
    (paths relative to the data folder, so that a copy of the folder stays valid).

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Derived table name -> table, from :func:`build_tables`.
    data_dir : pathlib.Path or None, default None
        Data folder; None for the package's.

    Returns
    -------
    list of pathlib.Path
        The CSV files written under ``derived/``.
    """
    base = data_root(data_dir)
    sources = [tarball_path(v, base) for v in VINTAGES] + raw_tables("label_places", base)
    inputs = [
        {"path": p.relative_to(base).as_posix(), "sha256": read_sidecar(p)["sha256"]}
        for p in sources
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
    """Fetch (optionally) and verify the tarballs, then rebuild every derived geography table.

    Parameters
    ----------
    data_dir : pathlib.Path or None, default None
        Data folder; None for the package's.
    fetch : bool, default False
        Download the tarballs with npm first (:func:`fetch_tarball`).
    progress : iterable or None, default None
        Not used.

    Returns
    -------
    list of pathlib.Path
        The CSV files written.

    Raises
    ------
    DataError
        When a tarball is missing (without `fetch`) or unreadable, or a table fails its schema.
    ChecksumError
        When a tarball's sha256 differs from its sidecar.
    """
    if fetch:
        for v in VINTAGES:
            fetch_tarball(v, data_dir)
    return write_derived(build_tables(data_dir), data_dir)
