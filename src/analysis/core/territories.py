"""The territories the package compares, and how they map onto INSEE geography.

Definitions (not data), in one place:

* The 13 *Capitales French Tech* labelled on 3 April 2019. Their names, as the
  label announcement writes them, are data: ``data/raw/french-tech-labels-2019``.
* Each capital's core metro area is the set of EPCI (intercommunalités à
  fiscalité propre) that contain its *anchor communes*: the main cities named by
  the capital's label (e.g. Nice and Sophia Antipolis for Riviera). Anchoring on
  INSEE commune codes rather than on EPCI SIREN codes keeps the definition stable
  when an EPCI changes SIREN (Métropole Européenne de Lille: 245900410 in the 2019
  geography, 200093201 in 2026). The resolved SIREN codes of each vintage are
  written to ``data/derived/territories.csv`` by ``analysis data build``.
* Each capital has two perimeters (:data:`PERIMETERS`): ``core``, the EPCI of its anchor
  communes (defined here), and ``label``, the EPCIs of every place the 2019 label's
  published perimeter names, each cited in ``data/raw/*/label_places.csv`` (the core's
  anchors included). ``label`` is the default. ``analysis territories`` lists both.
* Regions (INSEE region codes) and ``france`` are the comparators.

The arrondissements municipaux of Paris (75101-75120), Lyon (69381-69389) and
Marseille (13201-13216) are attributed to their commune (75056, 69123, 13055) and
through it to its EPCI; see :func:`commune_of`.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.core.errors import ParameterError


@dataclass(frozen=True)
class Capitale:
    territory_id: str
    main_cities: tuple[str, ...]  # names, for display
    anchors: tuple[str, ...]  # INSEE commune codes of the main cities


#: The 13 Capitales French Tech of 3 April 2019 (ids as in the project's leads).
#: Anchor communes: INSEE Code officiel géographique. Valbonne (06152) is the
#: commune of the Sophia Antipolis technopole; Annecy is 74010 since its 2017 merger.
CAPITALES: tuple[Capitale, ...] = (
    Capitale("aix-marseille", ("Marseille", "Aix-en-Provence"), ("13055", "13001")),
    Capitale("bordeaux", ("Bordeaux",), ("33063",)),
    Capitale("brest", ("Brest",), ("29019",)),
    Capitale("est", ("Strasbourg",), ("67482",)),
    Capitale("paris", ("Paris",), ("75056",)),
    Capitale("alps", ("Grenoble", "Valence", "Annecy"), ("38185", "26362", "74010")),
    Capitale("lille", ("Lille",), ("59350",)),
    Capitale("montpellier", ("Montpellier",), ("34172",)),
    Capitale("nantes", ("Nantes",), ("44109",)),
    Capitale("lyon-saint-etienne", ("Lyon", "Saint-Étienne"), ("69123", "42218")),
    Capitale("rennes-saint-malo", ("Rennes", "Saint-Malo"), ("35238", "35288")),
    Capitale("riviera", ("Nice", "Sophia Antipolis (Valbonne)"), ("06088", "06152")),
    Capitale("toulouse", ("Toulouse",), ("31555",)),
)

CAPITALE_IDS: tuple[str, ...] = tuple(c.territory_id for c in CAPITALES)
FOCAL_TERRITORY = "aix-marseille"

#: The two perimeters of a capital: the 2019 label's cited places, and its core EPCIs.
PERIMETERS: tuple[str, ...] = ("label", "core")
DEFAULT_PERIMETER = "label"

#: INSEE region codes (2016 regions) -> territory ids.
REGIONS: dict[str, str] = {
    "01": "guadeloupe",
    "02": "martinique",
    "03": "guyane",
    "04": "la-reunion",
    "06": "mayotte",
    "11": "ile-de-france",
    "24": "centre-val-de-loire",
    "27": "bourgogne-franche-comte",
    "28": "normandie",
    "32": "hauts-de-france",
    "44": "grand-est",
    "52": "pays-de-la-loire",
    "53": "bretagne",
    "75": "nouvelle-aquitaine",
    "76": "occitanie",
    "84": "auvergne-rhone-alpes",
    "93": "provence-alpes-cote-d-azur",
    "94": "corse",
}
REGION_IDS: tuple[str, ...] = tuple(sorted(REGIONS.values()))
COUNTRY_ID = "france"

#: Arrondissements municipaux -> their commune.
ARRONDISSEMENTS: dict[str, str] = {
    **{f"751{i:02d}": "75056" for i in range(1, 21)},
    **{f"6938{i}": "69123" for i in range(1, 10)},
    **{f"132{i:02d}": "13055" for i in range(1, 17)},
}


def valid_territory_ids() -> tuple[str, ...]:
    """Every id a table or parameter may use: the 13 capitals, the regions, france."""
    return CAPITALE_IDS + REGION_IDS + (COUNTRY_ID,)


def territory_kind(territory_id: str) -> str:
    """``capitale``, ``region`` or ``country``."""
    check_territory(territory_id)
    if territory_id in CAPITALE_IDS:
        return "capitale"
    if territory_id in REGION_IDS:
        return "region"
    return "country"


def check_territory(
    territory_id: object, *, parameter: str = "territory", capitals_only: bool = False
) -> str:
    """Return `territory_id` if it is known, else raise listing the valid ids.

    Parameters
    ----------
    territory_id : object
        The id to check.
    parameter : str, default "territory"
        Name of the parameter, at the head of the error message.
    capitals_only : bool, default False
        Accept only the 13 capital ids (not the regions nor ``france``).

    Returns
    -------
    str
        `territory_id`, unchanged.

    Raises
    ------
    ParameterError
        ``<parameter>: unknown territory ...; valid ids: ...`` when `territory_id` is not a
        string of the valid ids.
    """
    valid = CAPITALE_IDS if capitals_only else valid_territory_ids()
    if not isinstance(territory_id, str) or territory_id not in valid:
        raise ParameterError(
            f"{parameter}: unknown territory {territory_id!r}; valid ids: {', '.join(valid)}"
        )
    return territory_id


def capitale(territory_id: str) -> Capitale:
    check_territory(territory_id, capitals_only=True)
    return next(c for c in CAPITALES if c.territory_id == territory_id)


def commune_of(code: str) -> str:
    """The commune code of a commune or arrondissement-municipal code (13201 -> 13055)."""
    return ARRONDISSEMENTS.get(code, code)
