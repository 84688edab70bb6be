"""The SIRENE stock (INSEE), ingested out of core with DuckDB: the register-based start-up measure.

A *start-up from the register* (``../shared/design.md``) is an establishment of the SIRENE stock
file ``StockEtablissement`` that

* is active: ``etatAdministratifEtablissement == "A"``;
* is classified in NAF rév. 2: ``nomenclatureActivitePrincipaleEtablissement == "NAFRev2"``
  (rows in the older NAFRev1, NAF1993 or NAPv2 nomenclatures are excluded and reported);
* has its ``activitePrincipaleEtablissement`` in the ICT list :data:`ICT_NAF_CODES`
  (a parameter);
* was created no more than ``young_years`` years before ``as_of``:
  ``as_of - young_years <= dateCreationEtablissement <= as_of`` (both parameters; rows created
  after ``as_of``, which a stock file newer than ``as_of`` holds, are excluded and reported).

It is attributed to a territory through ``codeCommuneEtablissement``: commune (the
arrondissements of Paris, Lyon and Marseille go to their commune), then EPCI, then French Tech
capital, with the derived table ``communes`` of one census vintage. Codes that match nothing are
counted and reported by kind, never dropped silently.

The three published forms are read: ``StockEtablissement_utf8.zip`` (CSV inside a zip),
the unzipped CSV, and ``StockEtablissement_utf8.parquet``; the current 54-column header and
the 48-column one of 2019. Columns are selected by name, never by position. DuckDB does the
scanning, filtering and aggregation under a fixed memory limit; pandas only receives the
aggregated counts (a few thousand rows). A zip is converted once to a parquet file cached
under ``data/external/sirene-cache/<sha256 of the source>.parquet`` (:func:`convert`).

Load inputs (:func:`inspect_source`, :func:`load_geography`), process (:func:`aggregate`,
:func:`yearly_creations`), save outputs (:func:`write_outputs`); :func:`fetch` downloads the
official files; :func:`add_cli` registers the ``analysis sirene`` commands (also run as
``python -m analysis.sirene sirene aggregate|convert|fetch ...``).

With network access, the real register::

    analysis sirene fetch                      # StockEtablissement_utf8.parquet, ~2 GB, resumable
    analysis sirene aggregate data/external/sirene/StockEtablissement_utf8.parquet \
        --level territory --as-of 2026-06-30 --young-years 5 --out reports/sirene-startups.csv
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import csv
import datetime as dt
import errno
import functools
import hashlib
import http.client
import io
import json
import os
import re
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import yaml

from analysis import config, territories
from analysis.errors import DataError, ParameterError
from analysis.fileio import atomic_path, atomic_write_text

if TYPE_CHECKING:  # duckdb is imported when a scan runs, not when the CLI is built
    import duckdb

# ----------------------------------------------------------------------------- definitions

#: The ICT sector (secteur des TIC), INSEE definition after the OECD (2007) in NAF rév. 2:
#: manufacturing 26.1-26.4 and 26.8, wholesale 46.51-46.52, software publishing 58.2,
#: telecommunications 61, computer programming and consultancy 62, data processing and web
#: portals 63.1, repair of computers and communication equipment 95.1. Listed in
#: ``../shared/design.md`` ("ICT sector (INSEE / OECD, NAF rév. 2)"); the SIRENE files write
#: the codes with a dot, as here. This is the one place the list lives.
ICT_NAF_CODES: tuple[str, ...] = (
    "26.11Z",
    "26.12Z",
    "26.20Z",
    "26.30Z",
    "26.40Z",
    "26.80Z",
    "46.51Z",
    "46.52Z",
    "58.21Z",
    "58.29A",
    "58.29B",
    "58.29C",
    "61.10Z",
    "61.20Z",
    "61.30Z",
    "61.90Z",
    "62.01Z",
    "62.02A",
    "62.02B",
    "62.03Z",
    "62.09Z",
    "63.11Z",
    "63.12Z",
    "95.11Z",
    "95.12Z",
)
ICT_SOURCE = "INSEE / OECD ICT sector, NAF rév. 2 (25 sub-classes, see ../shared/design.md)"
NAF_REV2 = "NAFRev2"
ACTIVE = "A"

#: Header of StockEtablissement_utf8.csv as published from December 2025 (54 columns). Public
#: parsers list it in this order: the 53 columns of 2023-2025 (with dernierNumeroVoie*,
#: identifiantAdresse* and the Lambert coordinates) in e.g. the "ETABLISSEMENTS_SCHEMA" of a
#: public Spark pipeline and the "ETABLISSEMENT_COLS" of a public polars loader found with the
#: code search (find_string "indiceRepetitionDernierNumeroVoieEtablissement", index file ids
#: 41909706789 and 52377291374), the latter ending with activitePrincipaleNAF25Etablissement,
#: the column INSEE added on 16 December 2025. The reader never relies on this order.
ETABLISSEMENT_COLUMNS: tuple[str, ...] = (
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "activitePrincipaleRegistreMetiersEtablissement",
    "dateDernierTraitementEtablissement",
    "etablissementSiege",
    "nombrePeriodesEtablissement",
    "complementAdresseEtablissement",
    "numeroVoieEtablissement",
    "indiceRepetitionEtablissement",
    "dernierNumeroVoieEtablissement",
    "indiceRepetitionDernierNumeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "libelleCommuneEtrangerEtablissement",
    "distributionSpecialeEtablissement",
    "codeCommuneEtablissement",
    "codeCedexEtablissement",
    "libelleCedexEtablissement",
    "codePaysEtrangerEtablissement",
    "libellePaysEtrangerEtablissement",
    "identifiantAdresseEtablissement",
    "coordonneeLambertAbscisseEtablissement",
    "coordonneeLambertOrdonneeEtablissement",
    "complementAdresse2Etablissement",
    "numeroVoie2Etablissement",
    "indiceRepetition2Etablissement",
    "typeVoie2Etablissement",
    "libelleVoie2Etablissement",
    "codePostal2Etablissement",
    "libelleCommune2Etablissement",
    "libelleCommuneEtranger2Etablissement",
    "distributionSpeciale2Etablissement",
    "codeCommune2Etablissement",
    "codeCedex2Etablissement",
    "libelleCedex2Etablissement",
    "codePaysEtranger2Etablissement",
    "libellePaysEtranger2Etablissement",
    "dateDebut",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "enseigne2Etablissement",
    "enseigne3Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "caractereEmployeurEtablissement",
    "activitePrincipaleNAF25Etablissement",
)

#: The six columns added since 2019 (address number ranges and BAN identifier, Lambert 93
#: coordinates, NAF 2025 activity).
_ADDED_SINCE_2019 = frozenset(
    {
        "dernierNumeroVoieEtablissement",
        "indiceRepetitionDernierNumeroVoieEtablissement",
        "identifiantAdresseEtablissement",
        "coordonneeLambertAbscisseEtablissement",
        "coordonneeLambertOrdonneeEtablissement",
        "activitePrincipaleNAF25Etablissement",
    }
)

#: Header of the 2019 files (48 columns), as listed by the public parsers
#: MTES-MCT/trackdechets-sirene-search, src/indexation/indexInsee.helpers.ts (siretIndexConfig
#: "headers") and fds-developers/siren,
#: src/main/java/com/fds/opendata/siren/dao/SirenStockEtablissement.java (@JsonPropertyOrder).
ETABLISSEMENT_COLUMNS_2019: tuple[str, ...] = tuple(
    c for c in ETABLISSEMENT_COLUMNS if c not in _ADDED_SINCE_2019
)

#: Header of StockUniteLegale_utf8.csv (2019-2023 layout, 33 columns), as listed by
#: MTES-MCT/trackdechets-sirene-search, src/indexation/indexInsee.helpers.ts
#: (sireneIndexConfig "headers"). Later files add columns; only three are read here.
UNITE_LEGALE_COLUMNS: tuple[str, ...] = (
    "siren",
    "statutDiffusionUniteLegale",
    "unitePurgeeUniteLegale",
    "dateCreationUniteLegale",
    "sigleUniteLegale",
    "sexeUniteLegale",
    "prenom1UniteLegale",
    "prenom2UniteLegale",
    "prenom3UniteLegale",
    "prenom4UniteLegale",
    "prenomUsuelUniteLegale",
    "pseudonymeUniteLegale",
    "identifiantAssociationUniteLegale",
    "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale",
    "dateDernierTraitementUniteLegale",
    "nombrePeriodesUniteLegale",
    "categorieEntreprise",
    "anneeCategorieEntreprise",
    "dateDebut",
    "etatAdministratifUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "denominationUniteLegale",
    "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale",
    "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale",
    "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale",
    "caractereEmployeurUniteLegale",
)


@dataclass(frozen=True)
class TableKind:
    name: str  # "StockEtablissement" | "StockUniteLegale"
    required: tuple[str, ...]
    #: columns whose presence says "this is that table" (to name a wrong file clearly)
    signature: str


ETABLISSEMENT = TableKind(
    "StockEtablissement",
    (
        "siren",
        "codeCommuneEtablissement",
        "etatAdministratifEtablissement",
        "activitePrincipaleEtablissement",
        "nomenclatureActivitePrincipaleEtablissement",
        "dateCreationEtablissement",
    ),
    "codeCommuneEtablissement",
)
UNITE_LEGALE = TableKind(
    "StockUniteLegale",
    ("siren", "dateCreationUniteLegale", "categorieEntreprise"),
    "dateCreationUniteLegale",
)
TABLE_KINDS = (ETABLISSEMENT, UNITE_LEGALE)

#: The official monthly files, by name. Stable data.gouv.fr resource URLs
#: (``/api/1/datasets/r/<resource id>`` redirects to the current month's file) of the dataset
#: "Base Sirene des entreprises et de leurs établissements (SIREN, SIRET)". Resource ids as used
#: by the Annuaire des Entreprises pipelines (annuaire-entreprises-data-gouv-fr/search-infra,
#: workflows/data_pipelines/sirene/stock/config.py, for StockUniteLegale 825f4199-...) and by
#: public loaders found with the code search (0651fb76-... StockEtablissement zip,
#: a29c1297-... StockEtablissement parquet, 350182c9-... StockUniteLegale parquet). The older
#: ``https://files.data.gouv.fr/insee-sirene/<name>`` paths are the ones the data.gouv.fr API
#: listed for these resources until 2022 (e.g. MTES-MCT/trackdechets-sirene-search); they are
#: reported to answer 404 since INSEE moved the files (August 2026), hence the stable ids.
SIRENE_DATASET_PAGE = (
    "https://www.data.gouv.fr/datasets/"
    "base-sirene-des-entreprises-et-de-leurs-etablissements-siren-siret/"
)
DEFAULT_URLS: dict[str, str] = {
    "StockEtablissement_utf8.zip": (
        "https://www.data.gouv.fr/api/1/datasets/r/0651fb76-bcf3-4f6a-a38d-bc04fa708576"
    ),
    "StockEtablissement_utf8.parquet": (
        "https://www.data.gouv.fr/api/1/datasets/r/a29c1297-1f92-4e2a-8f6b-8c902ce96c5f"
    ),
    "StockUniteLegale_utf8.zip": (
        "https://www.data.gouv.fr/api/1/datasets/r/825f4199-cadd-486c-ac46-a65a8ea1a047"
    ),
    "StockUniteLegale_utf8.parquet": (
        "https://www.data.gouv.fr/api/1/datasets/r/350182c9-148a-46e0-8389-76c2ec1374a3"
    ),
}
DEFAULT_FETCH_FILE = "StockEtablissement_utf8.parquet"
LICENCE = "Licence Ouverte / Open Licence 2.0 (Etalab)"
PUBLISHER = "INSEE (répertoire Sirene), via data.gouv.fr"

#: DuckDB settings: memory does not grow with the file. The one-off conversion to parquet gets
#: more room, so that it writes row groups of DuckDB's default size without spilling.
MEMORY_LIMIT = "256MB"
CONVERT_MEMORY_LIMIT = "512MB"

LEVELS = ("commune", "epci", "territory")

#: Why a row is not a start-up, in the order the rules are applied.
REASONS: dict[str, str] = {
    "inactive": "not active (etatAdministratifEtablissement != 'A')",
    "other_nomenclature": "activity in another nomenclature than NAFRev2 (or none)",
    "not_ict": "activity not in the ICT list",
    "no_date": "no or invalid dateCreationEtablissement",
    "too_old": "created before as-of minus young-years",
    "after_as_of": "created after as-of",
    "ul_missing": "legal unit (siren) not in the StockUniteLegale file",
    "ul_category": "legal unit's categorieEntreprise not in the chosen categories",
    "ul_no_date": "legal unit without a valid dateCreationUniteLegale",
    "ul_too_old": "legal unit created before as-of minus young-years",
    "ul_after_as_of": "legal unit created after as-of",
}
COUNTED = "counted"
#: Reasons as small integers in SQL (cheaper to compute and group than strings).
_R: dict[str, int] = {name: i for i, name in enumerate((COUNTED, *REASONS))}
_R_NAME: dict[int, str] = {i: name for name, i in _R.items()}

#: Kinds of commune code that match no commune of the capitals.
UNMATCHED_KINDS: dict[str, str] = {
    "outside": "outside the 13 capitals' EPCIs (expected: the derived table covers only the "
    "capitals; includes codes absent from its geography)",
    "abroad": "abroad (99xxx country codes)",
    "invalid": "not a valid commune code",
    "empty": "empty",
}
_COG_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAF_RE = re.compile(r"^\d{2}\.\d{2}[A-Z]$")


def cache_dir_default() -> Path:
    """``data/external/sirene-cache`` (git-ignored)."""
    return config.data_dir() / "external" / "sirene-cache"


def download_dir_default() -> Path:
    """``data/external/sirene`` (git-ignored)."""
    return config.data_dir() / "external" / "sirene"


# ----------------------------------------------------------------------------- parameters


def parse_as_of(value: object) -> dt.date:
    """A date, or a ``YYYY-MM-DD`` string; else a ParameterError naming ``--as-of``."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE_RE.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ParameterError(
        f"--as-of (as_of): {value!r} is not a calendar date in YYYY-MM-DD form, e.g. 2025-12-31"
    )


def parse_young_years(value: object) -> int:
    """An integer >= 0 (an int, or a string of digits); else a ParameterError."""
    if isinstance(value, bool):
        value = repr(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if not isinstance(value, int) or value < 0 or value > 200:
        raise ParameterError(
            f"--young-years (young_years): expected an integer >= 0 (years), got {value!r}"
        )
    return value


def parse_ict_codes(codes: Iterable[str] | str | None) -> tuple[str, ...]:
    """Sorted unique NAF codes written with a dot (``6201Z`` becomes ``62.01Z``)."""
    if codes is None:
        return ICT_NAF_CODES
    if isinstance(codes, str):
        codes = [codes]
    out = set()
    for item in codes:
        for raw in str(item).replace(";", ",").split(","):
            c = raw.strip().upper()
            if not c:
                continue
            if re.fullmatch(r"\d{4}[A-Z]", c):
                c = f"{c[:2]}.{c[2:]}"
            if not _NAF_RE.match(c):
                raise ParameterError(
                    f"--ict-codes (ict_codes): {raw.strip()!r} is not a NAF rév. 2 sub-class "
                    "code such as 62.01Z"
                )
            out.add(c)
    if not out:
        raise ParameterError("--ict-codes (ict_codes): give at least one NAF code")
    return tuple(sorted(out))


def parse_vintage(vintage: object) -> int:
    vintage = config.DEFAULT_POPULATION_VINTAGE if vintage is None else vintage
    if isinstance(vintage, str) and vintage.strip().isdigit():
        vintage = int(vintage)
    if vintage not in config.POPULATION_VINTAGES:
        raise ParameterError(
            f"--population-vintage (population_vintage): {vintage!r} is not an available census "
            f"year; choose from {', '.join(map(str, config.POPULATION_VINTAGES))}"
        )
    return int(vintage)  # type: ignore[arg-type]


def parse_level(level: object) -> str:
    if level not in LEVELS:
        raise ParameterError(f"--level (level): {level!r}; choose from {', '.join(LEVELS)}")
    return str(level)


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` earlier (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """A SIRENE stock file as found on disk: its form, header and (for a zip) CSV member."""

    path: Path
    kind: str  # "csv" | "zip" | "parquet"
    table: TableKind
    columns: tuple[str, ...]
    member: str | None = None
    delimiter: str = ","
    #: column -> arrow type name, for parquet (the official parquet may type its columns)
    types: tuple[tuple[str, str], ...] = ()

    def type_of(self, column: str) -> str:
        return dict(self.types).get(column, "string")

    @property
    def layout(self) -> str:
        n = len(self.columns)
        if set(self.columns) == set(ETABLISSEMENT_COLUMNS):
            return f"{n} columns (current layout)"
        if set(self.columns) == set(ETABLISSEMENT_COLUMNS_2019):
            return f"{n} columns (2019 layout)"
        return f"{n} columns"


def _magic(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4)


def _check_exists(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    return path


def _not_utf8(where: str, offset: int, byte: int) -> DataError:
    return DataError(
        f"{where}: not UTF-8 (byte 0x{byte:02x} at offset {offset:,}; Latin-1/Windows-1252?); "
        "INSEE publishes the _utf8 files (StockEtablissement_utf8.zip/.csv/.parquet): "
        "download those"
    )


def _decode_header(line: bytes, where: str) -> str:
    line = line.removeprefix(codecs.BOM_UTF8).rstrip(b"\r\n")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(where, e.start, line[e.start]) from None


def _parse_header(text: str, where: str) -> tuple[tuple[str, ...], str]:
    if not text.strip():
        raise DataError(f"{where}: the first line (the header) is empty")
    delimiter = ";" if text.count(";") > text.count(",") else ","
    columns = tuple(c.strip() for c in next(csv.reader([text], delimiter=delimiter)))
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise DataError(f"{where}: duplicated column(s) in the header: {', '.join(dup)}")
    return columns, delimiter


def _read_first_line(f: io.BufferedIOBase, where: str, limit: int = 1 << 20) -> bytes:
    buf = b""
    while b"\n" not in buf and len(buf) < limit:
        block = f.read(65536)
        if not block:
            break
        buf += block
    if b"\n" not in buf and len(buf) >= limit:
        raise DataError(f"{where}: no line break in the first {limit:,} bytes; not a CSV file")
    return buf.split(b"\n", 1)[0]


def _check_columns(columns: Sequence[str], table: TableKind, where: str) -> None:
    missing = [c for c in table.required if c not in columns]
    if not missing:
        return
    other = next(
        (t for t in TABLE_KINDS if t is not table and t.signature in columns),
        None,
    )
    hint = f"; this looks like a {other.name} file, not {table.name}" if other else ""
    raise DataError(
        f"{where}: missing required column(s) {', '.join(missing)} of {table.name}{hint} "
        f"(found {len(columns)} columns)"
    )


def check_utf8_sample(path: Path, where: str | None = None, *, blocks: int = 16) -> None:
    """Check that the first MiB and `blocks` evenly spread 64 KiB blocks decode as UTF-8.

    A full check would read the whole file a second time; the counted columns are ASCII codes,
    so a stray byte elsewhere cannot change a count, while a Latin-1 file is caught here.
    """
    where = where or str(path)
    size = Path(path).stat().st_size
    spans = [(0, min(size, 1 << 20))]
    if size > 1 << 20:
        step = size // (blocks + 1)
        spans += [(step * (i + 1), 1 << 16) for i in range(blocks)]
    with open(path, "rb") as f:
        for start, length in spans:
            f.seek(start)
            _check_utf8_block(f.read(length), start, where, at_start=start == 0)


def _check_utf8_block(data: bytes, offset: int, where: str, *, at_start: bool) -> None:
    skip = 0
    if not at_start:  # a block may begin inside a multi-byte character
        while skip < min(3, len(data)) and 0x80 <= data[skip] <= 0xBF:
            skip += 1
    chunk = data[skip:]
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.reason == "unexpected end of data" and e.start >= len(chunk) - 3:
            return  # the block ends inside a multi-byte character
        raise _not_utf8(where, offset + skip + e.start, chunk[e.start]) from None


def inspect_source(path: Path | str, table: TableKind | None = ETABLISSEMENT) -> Source:
    """Identify a stock file (zip, CSV or parquet) and validate its header, without scanning it.

    `table` None accepts either StockEtablissement or StockUniteLegale (for :func:`convert`).
    Errors name the file (and zip member) and what is wrong.
    """
    path = _check_exists(Path(path))
    magic = _magic(path)
    kinds = TABLE_KINDS if table is None else (table,)
    if magic.startswith(b"PK"):
        return _inspect_zip(path, kinds)
    if magic == b"PAR1":
        return _inspect_parquet(path, kinds)
    where = str(path)
    with open(path, "rb") as f:
        columns, delimiter = _parse_header(_decode_header(_read_first_line(f, where), where), where)
    found = _pick_kind(columns, kinds, where)
    check_utf8_sample(path, where)
    return Source(path, "csv", found, columns, delimiter=delimiter)


def _pick_kind(columns: Sequence[str], kinds: Sequence[TableKind], where: str) -> TableKind:
    for k in kinds:
        if all(c in columns for c in k.required):
            return k
    _check_columns(columns, kinds[0], where)
    raise AssertionError  # pragma: no cover


def _inspect_zip(path: Path, kinds: Sequence[TableKind]) -> Source:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable zip file, truncated or corrupt ({e})") from None
    with zf:
        names = zf.namelist()
        csvs = [n for n in names if n.lower().endswith(".csv") and not n.endswith("/")]
        if not csvs:
            shown = ", ".join(names[:5]) or "none"
            raise DataError(f"{path}: the zip holds no CSV file (members: {shown})")
        member = _pick_member(csvs, kinds)
        where = f"{path} (zip member {member})"
        try:
            with zf.open(member) as f:
                first = _read_first_line(f, where)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
            raise DataError(f"{where}: cannot be read, truncated or corrupt zip ({e})") from None
        columns, delimiter = _parse_header(_decode_header(first, where), where)
        found = _pick_kind(columns, kinds, where)
    return Source(path, "zip", found, columns, member=member, delimiter=delimiter)


def _pick_member(csvs: list[str], kinds: Sequence[TableKind]) -> str:
    for k in kinds:
        exact = [n for n in csvs if Path(n).name.startswith(k.name + "_")]
        if exact:
            return exact[0]
    for k in kinds:
        plain = [n for n in csvs if Path(n).name.startswith(k.name) and "Historique" not in n]
        if plain:
            return plain[0]
    return csvs[0]


def _inspect_parquet(path: Path, kinds: Sequence[TableKind]) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(path).schema_arrow
    except (pa.ArrowException, OSError) as e:
        raise DataError(
            f"{path}: not a readable parquet file, truncated or corrupt ({str(e).splitlines()[0]})"
        ) from None
    columns = tuple(schema.names)
    found = _pick_kind(columns, kinds, str(path))
    types = tuple((f.name, str(f.type)) for f in schema)
    return Source(path, "parquet", found, columns, types=types)


def _sql_str(text: str | Path) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def scan_sql(src: Source) -> str:
    """The DuckDB table function reading `src` (CSV: no sniffing, every column VARCHAR)."""
    if src.kind == "parquet":
        return f"read_parquet({_sql_str(src.path)})"
    if src.kind != "csv":
        raise AssertionError(f"{src.path}: a {src.kind} must be converted first")
    cols = ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in src.columns)
    return (
        f"read_csv({_sql_str(src.path)}, header = true, auto_detect = false, "
        f"delim = {_sql_str(src.delimiter)}, quote = '\"', escape = '\"', "
        f"columns = {{{cols}}})"
    )


# ----------------------------------------------------------------------------- DuckDB


@contextlib.contextmanager
def _duckdb(
    workdir: Path | None = None, memory_limit: str = MEMORY_LIMIT
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with a memory limit, all cores and a private spill folder."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="sirene-duckdb-", dir=workdir) as tmp:
        con = duckdb.connect(
            config={
                "memory_limit": memory_limit,
                "threads": os.cpu_count() or 1,
                "temp_directory": tmp,
                "preserve_insertion_order": False,
            }
        )
        try:
            # progress is tracked for the tqdm bar (_run) but never printed by DuckDB itself.
            # Inside Jupyter DuckDB refuses the setting unless ipywidgets is installed; the
            # scan then simply runs without a bar.
            with contextlib.suppress(duckdb.Error):
                con.execute("SET enable_progress_bar_print = false")
                con.execute("SET enable_progress_bar = true")
            yield con
        finally:
            con.close()


def _engine_error(e: Exception, where: str) -> DataError:
    msg = str(e)
    low = msg.lower()
    if "unicode" in low or "utf-8" in low or "utf8" in low:
        return DataError(
            f"{where}: not UTF-8 ({msg.splitlines()[0]}); INSEE publishes the _utf8 files "
            "(StockEtablissement_utf8.zip/.csv/.parquet): download those"
        )
    if "no space left" in low or "file too large" in low or "disk" in low and "full" in low:
        return DataError(f"{where}: write failed, disk full ({msg.splitlines()[0]})")
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    detail = "; ".join(lines[:4])
    return DataError(f"{where}: cannot be read ({detail})")


def _run(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list | None,
    *,
    where: str,
    desc: str,
    progress: bool | None,
    meanwhile: Callable[[], object] | None = None,
) -> list[tuple]:
    """Run `sql` in a worker thread while a tqdm bar follows DuckDB's progress (stderr, TTY only).

    `meanwhile` runs in this thread while DuckDB scans (DuckDB releases the GIL), to hide
    Python work such as loading the geography behind the scan.
    """
    from tqdm import tqdm

    out: dict[str, object] = {}

    def work() -> None:
        try:
            out["rows"] = con.execute(sql, params or []).fetchall()
        except BaseException as e:  # re-raised in the caller's thread
            out["error"] = e

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    if meanwhile is not None:
        try:
            meanwhile()
        except BaseException:
            con.interrupt()
            worker.join()
            raise
    with tqdm(total=100, desc=desc, unit="%", disable=not progress, leave=False) as bar:
        try:
            while worker.is_alive():
                worker.join(0.25)
                p = con.query_progress()
                if p is not None and p >= 0:
                    bar.n = min(100.0, round(float(p), 1))
                    bar.refresh()
        except KeyboardInterrupt:
            con.interrupt()
            worker.join()
            raise
    err = out.get("error")
    import duckdb

    if isinstance(err, duckdb.Error):
        raise _engine_error(err, where) from None
    if isinstance(err, OSError):
        raise _os_error(err, where) from None
    if isinstance(err, BaseException):
        raise err
    return out["rows"]  # type: ignore[return-value]


def _os_error(e: OSError, where: str) -> DataError:
    if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return DataError(f"{where}: write failed, disk full ({e.strerror or e})")
    return DataError(f"{where}: {e.strerror or e}")


def _progress_default(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


# ----------------------------------------------------------------------------- convert


@dataclass(frozen=True)
class Converted:
    source: Path
    path: Path  # the parquet file to scan
    sha256: str | None
    cached: bool  # True when the cache already held it


def sha256_with_progress(path: Path, progress: bool | None = None, chunk: int = 1 << 22) -> str:
    from tqdm import tqdm

    h = hashlib.sha256()
    size = path.stat().st_size
    with (
        open(path, "rb") as f,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=f"sha256 {path.name}",
            disable=not _progress_default(progress),
            leave=False,
        ) as bar,
    ):
        while block := f.read(chunk):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


def _source_digest(path: Path, cache: Path, progress: bool | None) -> str:
    """The source's sha256, memoised in ``<cache>/index.json`` by path, size and mtime."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    index_path = cache / "index.json"
    index: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        index = json.loads(index_path.read_text(encoding="utf-8"))
    if isinstance(index, dict) and re.fullmatch(r"[0-9a-f]{64}", str(index.get(key, ""))):
        return index[key]
    digest = sha256_with_progress(path, progress)
    index = index if isinstance(index, dict) else {}
    index[key] = digest
    with contextlib.suppress(OSError):
        atomic_write_text(index_path, json.dumps(index, indent=1, sort_keys=True) + "\n")
    return digest


def _parquet_ok(path: Path) -> bool:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pq.ParquetFile(path)
    except (pa.ArrowException, OSError):
        return False
    return True


def convert(
    path: Path | str,
    cache_dir: Path | str | None = None,
    *,
    table: TableKind | None = None,
    progress: bool | None = None,
) -> Converted:
    """Convert a stock zip or CSV once to ``<cache_dir>/<sha256 of the source>.parquet``.

    Every column is kept, as VARCHAR (a faithful copy of the CSV). The parquet is written to a
    temporary file and renamed when complete, so a failure (a full disk, a truncated zip, a
    Latin-1 file) leaves the cache as it was. A parquet source is returned as it is.
    """
    src = inspect_source(path, table)
    if src.kind == "parquet":
        return Converted(src.path, src.path, None, cached=False)
    cache = Path(cache_dir) if cache_dir else cache_dir_default()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _os_error(e, f"{cache}: cannot create the cache folder") from None
    digest = _source_digest(src.path, cache, progress)
    target = cache / f"{digest}.parquet"
    if target.is_file() and _parquet_ok(target):
        return Converted(src.path, target, digest, cached=True)
    where = f"{src.path}" + (f" (zip member {src.member})" if src.member else "")
    try:
        with tempfile.TemporaryDirectory(prefix=".convert-", dir=cache) as tmp:
            csv_src = src
            if src.kind == "zip":
                extracted = Path(tmp) / Path(src.member or "stock.csv").name
                _extract_member(src, extracted, progress)
                check_utf8_sample(extracted, where)
                csv_src = Source(extracted, "csv", src.table, src.columns, delimiter=src.delimiter)
            meta = {
                "source_file": src.path.name + (f"!{src.member}" if src.member else ""),
                "source_sha256": digest,
                "converted_by": "analysis.sirene.convert (DuckDB COPY, all columns VARCHAR)",
                "table": src.table.name,
            }
            kv = ", ".join(f"{_ident(k)}: {_sql_str(v)}" for k, v in meta.items())
            with (
                atomic_path(target) as out,
                _duckdb(Path(tmp), CONVERT_MEMORY_LIMIT) as con,
            ):
                sql = (
                    f"COPY (SELECT * FROM {scan_sql(csv_src)}) TO {_sql_str(out)} "
                    f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880, "
                    f"KV_METADATA {{{kv}}})"
                )
                _write_parquet(con, sql, where, progress)
    except OSError as e:
        raise _os_error(e, f"{where}: converting to {target}") from None
    return Converted(src.path, target, digest, cached=False)


def _write_parquet(con: duckdb.DuckDBPyConnection, sql: str, where: str, progress) -> None:
    """Run the COPY ... TO parquet statement (a seam for the full-disk tests)."""
    _run(
        con,
        sql,
        None,
        where=where,
        desc="parquet",
        progress=_progress_default(progress),
    )


def _extract_member(src: Source, dest: Path, progress: bool | None) -> None:
    """Stream the CSV member of a zip to `dest` (CRC checked at the end)."""
    from tqdm import tqdm

    where = f"{src.path} (zip member {src.member})"
    try:
        with zipfile.ZipFile(src.path) as zf:
            info = zf.getinfo(src.member or "")
            with (
                zf.open(info) as fin,
                open(dest, "wb") as fout,
                tqdm(
                    total=info.file_size,
                    unit="B",
                    unit_scale=True,
                    desc=f"unzip {Path(info.filename).name}",
                    disable=not _progress_default(progress),
                    leave=False,
                ) as bar,
            ):
                while block := fin.read(1 << 22):
                    _write_block(fout, block)
                    bar.update(len(block))
    except (zipfile.BadZipFile, EOFError, RuntimeError) as e:
        raise DataError(f"{where}: cannot be extracted, truncated or corrupt zip ({e})") from None
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise _os_error(e, f"{where}: extracting to {dest.parent}") from None
        raise DataError(f"{where}: cannot be extracted, truncated or corrupt zip ({e})") from None


def _write_block(f: io.BufferedWriter, block: bytes) -> None:
    f.write(block)


def scannable(
    path: Path | str,
    table: TableKind,
    cache_dir: Path | str | None,
    progress: bool | None,
) -> tuple[Source, Source]:
    """(the source as given, the source DuckDB scans): a zip becomes its cached parquet."""
    src = inspect_source(path, table)
    if src.kind != "zip":
        return src, src
    conv = convert(src.path, cache_dir, table=table, progress=progress)
    return src, inspect_source(conv.path, table)


# ----------------------------------------------------------------------------- geography


@dataclass(frozen=True)
class Geography:
    """Register code -> commune -> EPCI -> territory, for one census vintage."""

    vintage: int
    geo_version: str
    #: register code (commune or arrondissement) -> commune code, epci_siren, territory_id
    codes: pd.DataFrame
    #: every commune and EPCI code with its name (sorted by code)
    level_names: dict[str, pd.DataFrame]
    data_dir: str

    def names(self, level: str) -> pd.DataFrame:
        """Every code of `level` with its name, sorted by code."""
        if level != "territory":
            return self.level_names[level]
        tnames = _territory_names()
        tids = sorted(self.codes["territory_id"].unique())
        return pd.DataFrame({"code": tids, "name": [tnames.get(t, t) for t in tids]})

    def unit(self, level: str) -> str:
        return {"commune": "commune_code", "epci": "epci_siren", "territory": "territory_id"}[level]


def _territory_names() -> dict[str, str]:
    """Display names of the capitals: their main cities (analysis.territories).

    The label names of 3 April 2019 live in the raw labels table, whose loading (every raw
    sidecar) costs more than scanning the parquet register: not worth it for a display name.
    """
    return {c.territory_id: " / ".join(c.main_cities) for c in territories.CAPITALES}


def load_geography(vintage: int | None = None, data_dir: Path | None = None) -> Geography:
    """The capitals' communes, arrondissements, EPCIs and territories of one census vintage."""
    vintage = parse_vintage(vintage)
    base = Path(data_dir) if data_dir else config.data_dir()
    return _load_geography(vintage, str(base.resolve()))


@functools.lru_cache(maxsize=4)
def _load_geography(vintage: int, data_dir_str: str) -> Geography:
    from analysis import datasets

    data_dir = Path(data_dir_str)
    communes = datasets.load_derived("communes", data_dir)
    communes = communes[communes["census_year"] == vintage]
    if communes.empty:
        raise DataError(f"derived table communes: no row for census year {vintage}")
    geo_version = str(communes["geo_version"].iloc[0])
    parent = communes["parent_commune_code"].fillna("").astype(str)
    own = communes["commune_code"].astype(str)
    commune_code = parent.where(parent != "", own)
    codes = pd.DataFrame(
        {
            "code": own.to_numpy(),
            "commune_code": commune_code.to_numpy(),
            "epci_siren": communes["epci_siren"].astype(str).to_numpy(),
            "territory_id": communes["territory_id"].astype(str).to_numpy(),
        }
    )
    # Arrondissements missing from the table still land in their commune (territories.commune_of).
    by_commune = codes.drop_duplicates("code").set_index("code")
    extra = [
        {"code": a, "commune_code": c, **by_commune.loc[c, ["epci_siren", "territory_id"]]}
        for a, c in territories.ARRONDISSEMENTS.items()
        if a not in by_commune.index and c in by_commune.index
    ]
    if extra:
        codes = pd.concat([codes, pd.DataFrame(extra)], ignore_index=True)
    actual = communes[communes["commune_type"] == "commune-actuelle"]
    commune_names = pd.DataFrame(
        {"code": actual["commune_code"].astype(str), "name": actual["commune_name"].astype(str)}
    )
    epci = datasets.load_derived("epci", data_dir)
    epci = epci[epci["geo_version"].astype(str) == geo_version]
    epci_names = dict(
        zip(epci["epci_siren"].astype(str), epci["epci_name"].astype(str), strict=True)
    )
    sirens = sorted(codes["epci_siren"].unique())
    epci_frame = pd.DataFrame({"code": sirens, "name": [epci_names.get(s, "") for s in sirens]})
    names = {
        "commune": commune_names.sort_values("code").reset_index(drop=True),
        "epci": epci_frame,
    }
    return Geography(vintage, geo_version, codes.reset_index(drop=True), names, data_dir_str)


def unmatched_kind(code: object) -> str:
    """``empty``, ``invalid``, ``abroad`` or ``outside`` for a code absent from the geography."""
    if code is None or (isinstance(code, float) and code != code) or not str(code).strip():
        return "empty"
    text = str(code).strip()
    if not _COG_RE.match(text):
        return "invalid"
    if text.startswith("99"):
        return "abroad"
    return "outside"


# ----------------------------------------------------------------------------- aggregate


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
            f"{len(self.ict_codes)} ICT codes ({ICT_SOURCE})"
            if self.ict_codes == ICT_NAF_CODES
            else f"{len(self.ict_codes)} NAF codes given: {', '.join(self.ict_codes)}"
        )
        out = [
            f"SIRENE start-ups from {self.source} ({self.source_form}, {self.layout})",
            f"  rule: active, NAFRev2, {ict}, created {self.since} .. {self.as_of} "
            f"(as-of {self.as_of}, young-years {self.young_years})",
            f"  geography: census {self.vintage} (geography {self.geo_version}), "
            f"level {self.level}",
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
            "ict_source": ICT_SOURCE,
            "population_vintage": self.vintage,
            "geo_version": self.geo_version,
            "legal_units": self.legal_units,
            "legal_unit_categories": list(self.categories) if self.categories else None,
            "rows_scanned": self.rows_scanned,
            "excluded": dict(self.excluded),
            "startups_in_register": self.startups_total,
            "startups_attributed": self.startups_attributed,
            "unmatched": {
                k: {"rows": int(v["rows"]), "codes": int(v["codes"])}  # type: ignore[call-overload]
                for k, v in self.unmatched.items()
            },
        }


@dataclass
class Result:
    """One row per code of the level (``code, name, startups``), and the run's report."""

    table: pd.DataFrame
    report: Report
    #: start-ups per register code (as written in the file), before any mapping
    by_register_code: pd.DataFrame
    yearly: pd.DataFrame | None = None


def _date_expr(col: str, arrow_type: str = "string") -> str:
    """A DATE or NULL: strict YYYY-MM-DD text, or a date/timestamp column of a typed parquet."""
    if arrow_type.startswith(("date", "timestamp")):
        return f"TRY_CAST({_ident(col)} AS DATE)"
    c = f"CAST({_ident(col)} AS VARCHAR)"
    return f"(CASE WHEN length({c}) = 10 THEN TRY_CAST({c} AS DATE) END)"


def _siren_expr() -> str:
    """siren as 9 characters, whether the file types it as text or as an integer."""
    return "lpad(CAST(siren AS VARCHAR), 9, '0')"


def _classify_sql(
    src: Source, ict: Sequence[str], since: dt.date, as_of: dt.date, *, with_siren: bool
) -> str:
    ict_list = ", ".join(_sql_str(c) for c in ict)
    date_col = "dateCreationEtablissement"
    d = _date_expr(date_col, src.type_of(date_col))
    scan = scan_sql(src)
    siren = f", {_siren_expr()} AS siren" if with_siren else ""
    return f"""
        SELECT CAST(codeCommuneEtablissement AS VARCHAR) AS code{siren},
          CASE
            WHEN etatAdministratifEtablissement IS DISTINCT FROM '{ACTIVE}' THEN {_R["inactive"]}
            WHEN nomenclatureActivitePrincipaleEtablissement IS DISTINCT FROM '{NAF_REV2}'
              THEN {_R["other_nomenclature"]}
            WHEN activitePrincipaleEtablissement IS NULL
              OR activitePrincipaleEtablissement NOT IN ({ict_list}) THEN {_R["not_ict"]}
            WHEN {d} IS NULL THEN {_R["no_date"]}
            WHEN {d} < DATE '{since.isoformat()}' THEN {_R["too_old"]}
            WHEN {d} > DATE '{as_of.isoformat()}' THEN {_R["after_as_of"]}
            ELSE {_R[COUNTED]}
          END::UTINYINT AS reason
        FROM {scan}
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
    cls = _classify_sql(src, ict, since, as_of, with_siren=ul_src is not None)
    if ul_src is None:
        return f"""
            WITH cls AS ({cls})
            SELECT reason, CASE WHEN reason = {_R[COUNTED]} THEN code END AS code, count(*) AS n
            FROM cls GROUP BY ALL
        """
    d = _date_expr("dateCreationUniteLegale", ul_src.type_of("dateCreationUniteLegale"))
    ul_scan = scan_sql(ul_src)
    cat_filter = (
        "ul.cat IS NULL OR ul.cat NOT IN (" + ", ".join(_sql_str(c) for c in categories) + ")"
        if categories
        else "false"
    )
    return f"""
        WITH cls AS ({cls}),
        agg AS (
          SELECT reason,
                 CASE WHEN reason = {_R[COUNTED]} THEN code END AS code,
                 CASE WHEN reason = {_R[COUNTED]} THEN siren END AS siren,
                 count(*) AS n
          FROM cls GROUP BY ALL
        ),
        ul AS (
          SELECT {_siren_expr()} AS siren,
                 any_value({d}) AS d,
                 any_value(CAST(categorieEntreprise AS VARCHAR)) AS cat
          FROM {ul_scan}
          WHERE {_siren_expr()} IN (SELECT siren FROM agg WHERE reason = {_R[COUNTED]})
          GROUP BY 1
        ),
        joined AS (
          SELECT CASE
                   WHEN agg.reason <> {_R[COUNTED]} THEN agg.reason
                   WHEN ul.siren IS NULL THEN {_R["ul_missing"]}
                   WHEN {cat_filter} THEN {_R["ul_category"]}
                   WHEN ul.d IS NULL THEN {_R["ul_no_date"]}
                   WHEN ul.d < DATE '{since.isoformat()}' THEN {_R["ul_too_old"]}
                   WHEN ul.d > DATE '{as_of.isoformat()}' THEN {_R["ul_after_as_of"]}
                   ELSE {_R[COUNTED]}
                 END::UTINYINT AS reason,
                 agg.code, agg.n
          FROM agg LEFT JOIN ul ON agg.siren = ul.siren
        )
        SELECT reason, CASE WHEN reason = {_R[COUNTED]} THEN code END AS code, sum(n) AS n
        FROM joined GROUP BY ALL
    """


def _attribute(
    by_code: pd.DataFrame, geo: Geography, level: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map register codes to `level` codes: (rows with a ``unit`` column, unmatched rows)."""
    unit = geo.unit(level)
    merged = by_code.merge(geo.codes[["code", unit]], on="code", how="left", validate="many_to_one")
    matched = merged[merged[unit].notna()].rename(columns={unit: "unit"})
    unmatched = merged[merged[unit].isna()].drop(columns=[unit])
    return matched, unmatched


def _unmatched_summary(unmatched: pd.DataFrame, count_col: str) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    if unmatched.empty:
        return {k: {"rows": 0, "codes": 0, "examples": []} for k in UNMATCHED_KINDS}
    kinds = unmatched["code"].map(unmatched_kind)
    for kind in UNMATCHED_KINDS:
        part = unmatched[kinds == kind]
        codes = part.groupby("code", dropna=False)[count_col].sum().sort_values(ascending=False)
        out[kind] = {
            "rows": int(part[count_col].sum()),
            "codes": int(len(codes)) if kind != "empty" else int(len(part) > 0),
            "examples": [c for c in codes.index[:3] if isinstance(c, str)],
        }
    return out


def aggregate(
    path: Path | str,
    *,
    as_of: object,
    young_years: object,
    level: str = "territory",
    ict_codes: Iterable[str] | str | None = None,
    population_vintage: int | None = None,
    legal_units: Path | str | None = None,
    legal_unit_categories: Iterable[str] | None = None,
    cache_dir: Path | str | None = None,
    data_dir: Path | None = None,
    progress: bool | None = None,
) -> Result:
    """Count the register's start-ups (see the module docstring) per code of `level`.

    `legal_units` (a StockUniteLegale zip, CSV or parquet) adds two rules, joined on siren:
    the legal unit must also have been created in the window (a new branch of an old company
    is not a start-up) and, if `legal_unit_categories` is given (e.g. ``["PME"]``), its
    categorieEntreprise must be one of them. Every excluded row is counted under its reason.
    """
    t0 = time.perf_counter()
    as_of = parse_as_of(as_of)
    young_years = parse_young_years(young_years)
    level = parse_level(level)
    ict = parse_ict_codes(ict_codes)
    vintage = parse_vintage(population_vintage)
    categories = (
        tuple(sorted({c.strip() for c in legal_unit_categories if c.strip()}))
        if legal_unit_categories
        else None
    )
    if categories and legal_units is None:
        raise ParameterError(
            "--legal-unit-categories (legal_unit_categories) needs --legal-units (legal_units)"
        )
    since = years_before(as_of, young_years)
    progress = _progress_default(progress)
    given, src = scannable(path, ETABLISSEMENT, cache_dir, progress)
    ul_src = ul_given = None
    if legal_units is not None:
        ul_given, ul_src = scannable(legal_units, UNITE_LEGALE, cache_dir, progress)
    sql = _count_sql(src, ict, since, as_of, ul_src, categories)
    loaded: dict[str, Geography] = {}

    def geography() -> None:  # loaded while DuckDB scans
        loaded["geo"] = load_geography(vintage, data_dir)

    with _duckdb() as con:
        rows = _run(
            con, sql, None, where=_where(given), desc="scan", progress=progress, meanwhile=geography
        )
    geo = loaded["geo"]
    counts = pd.DataFrame(rows, columns=["reason", "code", "n"])
    counts["reason"] = counts["reason"].map(_R_NAME)
    counts["n"] = counts["n"].astype("int64")
    excluded_keys = [k for k in REASONS if legal_units is not None or not k.startswith("ul_")]
    excluded = {k: int(counts.loc[counts["reason"] == k, "n"].sum()) for k in excluded_keys}
    started = counts[counts["reason"] == COUNTED]
    by_code = started.groupby("code", dropna=False)["n"].sum().rename("startups").reset_index()
    by_code["startups"] = by_code["startups"].astype("int64")
    matched, unmatched = _attribute(by_code, geo, level)
    per_unit = matched.groupby("unit")["startups"].sum()
    table = geo.names(level).copy()
    table["startups"] = table["code"].map(per_unit).fillna(0).astype("int64")
    report = Report(
        source=str(given.path),
        source_form=given.kind + (f" member {given.member}" if given.member else ""),
        layout=given.layout,
        level=level,
        as_of=as_of,
        young_years=young_years,
        since=since,
        ict_codes=ict,
        vintage=vintage,
        geo_version=geo.geo_version,
        legal_units=str(ul_given.path) if ul_given else None,
        categories=categories,
        rows_scanned=int(counts["n"].sum()),
        excluded=excluded,
        startups_total=int(by_code["startups"].sum()),
        startups_attributed=int(table["startups"].sum()),
        unmatched=_unmatched_summary(unmatched, "startups"),
        units=len(table),
    )
    report.seconds = time.perf_counter() - t0
    return Result(table=table, report=report, by_register_code=by_code)


def _where(src: Source) -> str:
    return f"{src.path}" + (f" (zip member {src.member})" if src.member else "")


def yearly_creations(
    path: Path | str,
    *,
    level: str = "territory",
    ict_codes: Iterable[str] | str | None = None,
    population_vintage: int | None = None,
    active_only: bool = False,
    cache_dir: Path | str | None = None,
    data_dir: Path | None = None,
    progress: bool | None = None,
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Establishments created each year per code of `level` (``code, name, year, creations``).

    Counts NAFRev2 rows whose activity is in the ICT list by year of dateCreationEtablissement,
    closed establishments included unless `active_only` (the stock keeps closed establishments,
    so a year's creations do not shrink as they close). Rows classified in an older
    nomenclature are not counted, which undercounts the years before 2008. Every code of the
    level gets a row for every year from the first to the last year found (zeros included).
    Returns the table and a summary (rows counted, rows without a valid date, unmatched).
    """
    level = parse_level(level)
    ict = parse_ict_codes(ict_codes)
    vintage = parse_vintage(population_vintage)
    geo = load_geography(vintage, data_dir)
    progress = _progress_default(progress)
    given, src = scannable(path, ETABLISSEMENT, cache_dir, progress)
    ict_list = ", ".join(_sql_str(c) for c in ict)
    d = _date_expr("dateCreationEtablissement", src.type_of("dateCreationEtablissement"))
    active = f"AND etatAdministratifEtablissement = '{ACTIVE}'" if active_only else ""
    sql = f"""
        SELECT CAST(codeCommuneEtablissement AS VARCHAR) AS code, year({d}) AS year, count(*)
        FROM {scan_sql(src)}
        WHERE nomenclatureActivitePrincipaleEtablissement = '{NAF_REV2}'
          AND activitePrincipaleEtablissement IN ({ict_list}) {active}
        GROUP BY ALL
    """
    with _duckdb() as con:
        rows = _run(con, sql, None, where=_where(given), desc="yearly", progress=progress)
    raw = pd.DataFrame(rows, columns=["code", "year", "creations"])
    no_date = int(raw.loc[raw["year"].isna(), "creations"].sum())
    raw = raw[raw["year"].notna()].astype({"year": "int64", "creations": "int64"})
    matched, unmatched = _attribute(raw, geo, level)
    per = matched.groupby(["unit", "year"])["creations"].sum()
    names = geo.names(level)
    years = range(int(raw["year"].min()), int(raw["year"].max()) + 1) if len(raw) else range(0)
    grid = pd.MultiIndex.from_product([names["code"], years], names=["code", "year"])
    table = (
        per.rename_axis(["code", "year"]).reindex(grid, fill_value=0).rename("creations")
    ).reset_index()
    table = table.merge(names, on="code", how="left")[["code", "name", "year", "creations"]]
    table["creations"] = table["creations"].astype("int64")
    summary = {
        "rows_counted": int(raw["creations"].sum()),
        "no_date": no_date,
        "unmatched": _unmatched_summary(unmatched, "creations"),
        "active_only": active_only,
    }
    return table.sort_values(["code", "year"]).reset_index(drop=True), summary


def write_outputs(result: Result, out: Path | str, yearly_out: Path | str | None = None) -> None:
    """Write ``code,name,startups`` to `out` and its ``.meta.yaml`` sidecar, atomically."""
    out = Path(out)
    meta = {
        "table": "sirene start-ups from the register",
        "built_by": "analysis sirene aggregate (src/analysis/sirene.py)",
        "columns": ["code", "name", "startups"],
        **result.report.as_dict(),
    }
    text = result.table[["code", "name", "startups"]].to_csv(index=False, lineterminator="\n")
    atomic_write_text(
        out.with_name(out.name + ".meta.yaml"),
        yaml.safe_dump(meta, sort_keys=False, allow_unicode=True),
    )
    atomic_write_text(out, text)
    if yearly_out is not None and result.yearly is not None:
        atomic_write_text(Path(yearly_out), result.yearly.to_csv(index=False, lineterminator="\n"))


# ----------------------------------------------------------------------------- fetch


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    size: int
    resumed_from: int
    url: str


def _part_meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def fetch(
    url: str | None = None,
    dest: Path | str | None = None,
    *,
    name: str | None = None,
    progress: bool | None = None,
    timeout: float = 60.0,
    chunk: int = 1 << 20,
) -> Fetched:
    """Download an official file into `dest`, resuming an interrupted transfer.

    Bytes go to ``<name>.part``; a later call sends ``Range: bytes=<size of .part>-`` with
    ``If-Range`` (the ETag or Last-Modified seen first), appends the rest if the server answers
    206 and starts over if it answers 200 (the file changed, or no range support). The file is
    renamed to `name` only once complete; its sha256 is written beside it (``<name>.sha256``,
    ``sha256sum`` format, and ``<name>.meta.yaml``). Default: :data:`DEFAULT_FETCH_FILE` from
    :data:`DEFAULT_URLS`.
    """
    from tqdm import tqdm

    if url is None:
        name = name or DEFAULT_FETCH_FILE
        if name not in DEFAULT_URLS:
            raise ParameterError(
                f"--file: unknown official file {name!r}; choose from {', '.join(DEFAULT_URLS)}"
            )
        url = DEFAULT_URLS[name]
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ParameterError(f"--url: {url!r} is not an http(s) URL")
    if name is None:
        name = next((k for k, v in DEFAULT_URLS.items() if v == url), None) or (
            Path(urllib.parse.unquote(parsed.path)).name or "download"
        )
    if "/" in name or name in (".", ".."):
        raise ParameterError(f"--name: {name!r} is not a file name")
    dest = Path(dest) if dest else download_dir_default()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _os_error(e, f"{dest}: cannot create the download folder") from None
    target = dest / name
    part = dest / (name + ".part")
    pmeta_path = _part_meta_path(part)
    pmeta: dict = {}
    if part.is_file() and pmeta_path.is_file():
        with contextlib.suppress(ValueError, OSError):
            pmeta = json.loads(pmeta_path.read_text(encoding="utf-8"))
    if pmeta.get("url") != url:
        pmeta = {"url": url}
        part.unlink(missing_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "analysis-sirene-fetch/1 (+urllib)", "Accept-Encoding": "identity"}
    validator = pmeta.get("etag") or pmeta.get("last_modified")
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    req = urllib.request.Request(url, headers=headers)
    resumed_from = 0
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset and pmeta.get("total") == offset:
            resp = None  # the .part already holds the whole file
            resumed_from = offset
        else:
            raise DataError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"{url}: cannot connect ({reason})") from None
    if resp is not None:
        with resp:
            status = resp.status
            length = resp.headers.get("Content-Length")
            if status == 206:
                start, total = _content_range(resp.headers.get("Content-Range"), url)
                if start != offset:
                    raise DataError(f"{url}: the server resumed at byte {start}, expected {offset}")
                resumed_from = offset
                mode = "ab"
            elif status == 200:
                total = int(length) if length and length.isdigit() else None
                offset, mode = 0, "wb"
                pmeta = {
                    "url": url,
                    "final_url": resp.geturl(),
                    "etag": resp.headers.get("ETag"),
                    "last_modified": resp.headers.get("Last-Modified"),
                    "total": total,
                }
                atomic_write_text(pmeta_path, json.dumps(pmeta))
            else:
                raise DataError(f"{url}: unexpected HTTP status {status}")
            got = offset
            try:
                with (
                    open(part, mode) as f,
                    tqdm(
                        total=total,
                        initial=offset,
                        unit="B",
                        unit_scale=True,
                        desc=name,
                        disable=not _progress_default(progress),
                    ) as bar,
                ):
                    while True:
                        block = resp.read(chunk)
                        if not block:
                            break
                        f.write(block)
                        got += len(block)
                        bar.update(len(block))
            except (http.client.IncompleteRead, ConnectionError, TimeoutError) as e:
                raise DataError(
                    f"{url}: transfer interrupted after {got:,} of "
                    f"{total if total is not None else '?'} bytes ({type(e).__name__}); "
                    f"run the same command again to resume from {part}"
                ) from None
            except OSError as e:
                raise _os_error(e, f"{part}: writing the download") from None
            if total is not None and got != total:
                raise DataError(
                    f"{url}: transfer interrupted after {got:,} of {total:,} bytes; "
                    f"run the same command again to resume from {part}"
                )
    digest = sha256_with_progress(part, progress)
    size = part.stat().st_size
    os.replace(part, target)
    pmeta_path.unlink(missing_ok=True)
    atomic_write_text(target.with_name(target.name + ".sha256"), f"{digest}  {target.name}\n")
    meta = {
        "title": f"SIRENE stock file {target.name}",
        "publisher": PUBLISHER,
        "url": url,
        "final_url": pmeta.get("final_url"),
        "etag": pmeta.get("etag"),
        "last_modified": pmeta.get("last_modified"),
        "date_accessed": dt.date.today().isoformat(),
        "licence": LICENCE,
        "dataset": SIRENE_DATASET_PAGE,
        "bytes": size,
        "sha256": digest,
    }
    atomic_write_text(
        target.with_name(target.name + ".meta.yaml"),
        yaml.safe_dump(meta, sort_keys=False, allow_unicode=True),
    )
    return Fetched(target, digest, size, resumed_from, url)


def _content_range(value: str | None, url: str) -> tuple[int, int | None]:
    m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", value or "")
    if not m:
        raise DataError(f"{url}: HTTP 206 without a valid Content-Range ({value!r})")
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), total


# ----------------------------------------------------------------------------- CLI


def _cmd_aggregate(args: argparse.Namespace) -> int:
    result = aggregate(
        args.path,
        as_of=args.as_of,
        young_years=args.young_years,
        level=args.level,
        ict_codes=args.ict_codes,
        population_vintage=args.population_vintage,
        legal_units=args.legal_units,
        legal_unit_categories=args.legal_unit_categories,
        cache_dir=args.cache_dir,
        data_dir=getattr(args, "data_dir", None),
    )
    if args.yearly_out is not None:
        result.yearly, _ = yearly_creations(
            args.path,
            level=args.level,
            ict_codes=args.ict_codes,
            population_vintage=args.population_vintage,
            cache_dir=args.cache_dir,
            data_dir=getattr(args, "data_dir", None),
        )
    result.report.out = str(args.out)
    write_outputs(result, args.out, args.yearly_out)
    sys.stdout.write(result.report.text())
    if args.yearly_out is not None:
        print(f"  yearly creations -> {args.yearly_out}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    conv = convert(args.path, args.cache_dir)
    if conv.sha256 is None:
        print(f"{conv.path}: already parquet, nothing to convert")
    else:
        state = "cache hit" if conv.cached else "converted"
        print(f"{state}: {conv.source} -> {conv.path} ({time.perf_counter() - t0:.1f} s)")
        print(f"sha256 of the source: {conv.sha256}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    got = fetch(args.url, args.dest, name=args.file if args.url is None else args.name)
    how = f" (resumed from byte {got.resumed_from:,})" if got.resumed_from else ""
    print(f"downloaded {got.url} -> {got.path} ({got.size:,} bytes){how}")
    print(f"sha256 {got.sha256}  (written to {got.path.name}.sha256)")
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``sirene aggregate|convert|fetch`` on an argparse subparsers object.

    Handlers are set with ``set_defaults(func=...)`` and raise :mod:`analysis.errors`
    exceptions; ``args.data_dir`` is used when the parent parser defines it.
    """
    sirene = subparsers.add_parser(
        "sirene", help="start-ups from the SIRENE register (INSEE stock files, DuckDB)"
    )
    sub = sirene.add_subparsers(dest="sirene_command", required=True)

    agg = sub.add_parser(
        "aggregate",
        help="count young active ICT establishments per commune, EPCI or territory",
        description="Write code,name,startups (one row per code) and print a report.",
    )
    agg.add_argument("path", type=Path, help="StockEtablissement_utf8 .zip, .csv or .parquet")
    agg.add_argument("--level", choices=LEVELS, default="territory")
    agg.add_argument("--as-of", required=True, help="reference date, YYYY-MM-DD")
    agg.add_argument(
        "--young-years", required=True, help="created at most N years before --as-of (N >= 0)"
    )
    agg.add_argument("--out", type=Path, required=True, help="CSV to write (atomically)")
    agg.add_argument(
        "--ict-codes",
        nargs="+",
        default=None,
        metavar="CODE",
        help="NAF codes to count instead of the 25 ICT codes (62.01Z or 6201Z; comma or space)",
    )
    agg.add_argument(
        "--population-vintage",
        type=int,
        choices=config.POPULATION_VINTAGES,
        default=config.DEFAULT_POPULATION_VINTAGE,
        help="census year of the commune -> EPCI -> territory table",
    )
    agg.add_argument(
        "--legal-units", type=Path, default=None, help="StockUniteLegale zip/csv/parquet to join"
    )
    agg.add_argument(
        "--legal-unit-categories",
        nargs="+",
        default=None,
        metavar="CAT",
        help="keep legal units of these categorieEntreprise values (PME, ETI, GE)",
    )
    agg.add_argument(
        "--yearly-out", type=Path, default=None, help="also write code,name,year,creations here"
    )
    agg.add_argument("--cache-dir", type=Path, default=None, help="parquet cache for zip inputs")
    agg.set_defaults(func=_cmd_aggregate)

    conv = sub.add_parser(
        "convert", help="convert a stock zip or CSV once to a cached parquet file"
    )
    conv.add_argument("path", type=Path)
    conv.add_argument(
        "--cache-dir", type=Path, default=None, help="default: data/external/sirene-cache"
    )
    conv.set_defaults(func=_cmd_convert)

    fet = sub.add_parser("fetch", help="download an official stock file (resumable)")
    fet.add_argument("--url", default=None, help="default: the stable data.gouv.fr URL of --file")
    fet.add_argument(
        "--file",
        choices=tuple(DEFAULT_URLS),
        default=DEFAULT_FETCH_FILE,
        help=f"official file to download (default {DEFAULT_FETCH_FILE})",
    )
    fet.add_argument("--name", default=None, help="file name for --url (default: from the URL)")
    fet.add_argument("--dest", type=Path, default=None, help="default: data/external/sirene")
    fet.set_defaults(func=_cmd_fetch)
    return sirene


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m analysis.sirene sirene ...``: the ``analysis`` command itself."""
    from analysis.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
