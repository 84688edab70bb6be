"""The ICT sector (secteur des TIC), the one definition the register measure uses.

INSEE's ICT sector follows the OECD's 2007 definition of the information and communication
technology sector, written in NAF rév. 2 (the French version of NACE Rev. 2 / ISIC Rev. 4):

* manufacturing: 26.11Z-26.40Z and 26.80Z (division 26 without 26.5-26.7);
* wholesale of ICT equipment: 46.51Z, 46.52Z;
* software publishing: 58.21Z, 58.29A-58.29C (58.2);
* telecommunications: 61.10Z-61.90Z (division 61);
* computer programming, consultancy and related activities: 62.01Z-62.09Z (division 62);
* data processing, hosting and web portals: 63.11Z, 63.12Z (63.1);
* repair of computers and communication equipment: 95.11Z, 95.12Z (95.1).

The package's own copy of this definition, with its references (OECD, *Information Economy -
Sector Definitions Based on the International Standard Industry Classification (ISIC 4)*,
DSTI/ICCP/IIS(2006)2/FINAL, 20 March 2007; INSEE's definition of the ICT sector), is
``docs/definitions.md`` in the repository (:data:`REFERENCE`). The SIRENE files write the codes
with a dot, as here.
"""

from __future__ import annotations

#: The 25 NAF rév. 2 sub-classes of the ICT sector.
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

#: Where the definition and its references are written down, inside the repository.
REFERENCE = "docs/definitions.md#the-ict-sector"

#: How reports name the definition.
DESCRIPTION = (
    f"INSEE ICT sector after the OECD 2007 definition, NAF rév. 2, 25 sub-classes ({REFERENCE})"
)
