"""The layout of INSEE's SIRENE stock files and the rules of the register measure.

The stock files' columns (the current 54-column header of ``StockEtablissement`` and the
48-column one of 2019, the 33 columns of ``StockUniteLegale``), what identifies each table,
why a row is not counted (:data:`REASONS`), the levels counts are given at, the kinds of
unmatched commune codes, and the DuckDB memory limits. The ICT sector itself is
:data:`analysis.core.ict_sector.ICT_NAF_CODES`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from analysis.core import paths

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

#: DuckDB settings: memory does not grow with the file. The one-off conversion to parquet
#: writes row groups of 61,440 rows (half DuckDB's default), which keeps it within the same
#: limit without spilling: peak RSS about 290 MB whatever the size (benchmarks/README.md).
MEMORY_LIMIT = "256MB"
CONVERT_MEMORY_LIMIT = "256MB"
CONVERT_ROW_GROUP_SIZE = 61_440

#: Levels of the counts: every code of France at the first four, the 13 capitals (under a
#: perimeter) at the last.
LEVELS = ("commune", "epci", "department", "region", "territory")

#: INSEE's placeholder for an unknown creation date, and the earliest date taken as real:
#: anything before it is an impossible date, counted with the placeholder as unknown.
PLACEHOLDER_DATE = dt.date(1900, 1, 1)
EARLIEST_DATE = dt.date(1800, 1, 1)

#: Why a row is not a start-up, in the order the rules are applied.
REASONS: dict[str, str] = {
    "inactive": "not active (etatAdministratifEtablissement != 'A')",
    "other_nomenclature": "activity in another nomenclature than NAFRev2 (or none)",
    "not_ict": "activity not in the ICT list",
    "no_date": "no or invalid dateCreationEtablissement",
    "unknown_date": "unknown dateCreationEtablissement (INSEE's placeholder 1900-01-01, "
    "or before 1800)",
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
REASON_CODES: dict[str, int] = {name: i for i, name in enumerate((COUNTED, *REASONS))}
REASON_NAMES: dict[int, str] = {i: name for name, i in REASON_CODES.items()}

#: Kinds of register code that have no unit at the level counted.
UNMATCHED_KINDS: dict[str, str] = {
    "outside": "in France, outside every unit of the level (territory: outside the capitals' "
    "perimeter; epci: a commune in no EPCI)",
    "abroad": "abroad (codePaysEtrangerEtablissement, or a 99xxx code), by country",
    "unknown": "a well-formed commune code absent from the geography and its former communes",
    "invalid": "not a valid commune code",
    "empty": "empty (no commune and no country)",
}
COG_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")

#: Values of StockUniteLegale's categorieEntreprise (INSEE: small and medium, intermediate
#: and large enterprises).
LEGAL_UNIT_CATEGORIES = ("PME", "ETI", "GE")


def unmatched_kind(code: object, known: bool = False) -> str:
    """Why a commune code matched no unit of the geography.

    Parameters
    ----------
    code : object
        The code as read from the register (may be None or NaN).
    known : bool, default False
        The code is a commune of the geography (it lies outside the units counted).

    Returns
    -------
    str
        ``empty`` (missing or blank), ``invalid`` (not a COG code, :data:`COG_RE`),
        ``abroad`` (``99xxx``), ``unknown`` or, for a `known` code, ``outside``.
    """
    if code is None or (isinstance(code, float) and code != code) or not str(code).strip():
        return "empty"
    text = str(code).strip()
    if not COG_RE.match(text):
        return "invalid"
    if text.startswith("99"):
        return "abroad"
    return "outside" if known else "unknown"


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` earlier (29 February becomes 28 February).

    Parameters
    ----------
    day : datetime.date
        The reference day.
    years : int
        Number of years back.

    Returns
    -------
    datetime.date
        ``day`` with its year minus `years` (2024-02-29, 1 year -> 2023-02-28).
    """
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def cache_dir_default() -> Path:
    """``data/external/sirene-cache`` (git-ignored)."""
    return paths.data_dir() / "external" / "sirene-cache"


def download_dir_default() -> Path:
    """``data/external/sirene`` (git-ignored)."""
    return paths.data_dir() / "external" / "sirene"
