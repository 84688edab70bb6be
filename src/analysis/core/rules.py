"""One validator per parameter, shared by the CLI, the notebooks and the library.

Each function takes the value and the name to report (``"as_of"`` in the library and the
notebooks, ``"--as-of"`` on the command line), returns the value checked and typed, and
raises :class:`~analysis.core.errors.ParameterError` with a message that names the parameter
and says what is allowed. Python values are checked strictly (a year is an ``int``, not the
string ``"2014"`` nor ``True``); the CLI converts its strings first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from analysis.core import paths, territories
from analysis.core.errors import ParameterError
from analysis.core.ict_sector import ICT_NAF_CODES

T = TypeVar("T")

#: Years a figure, a series bound or a census may take.
YEAR_MIN, YEAR_MAX = 1990, 2100

#: Census vintages of the population tables (INSEE "population municipale"): 2016, the legal
#: populations in the 2019 geography (@etalab/decoupage-administratif 0.7.0); 2023, the
#: reference populations in the 2026 geography (6.0.0).
POPULATION_VINTAGES: tuple[int, ...] = (2016, 2023)
DEFAULT_POPULATION_VINTAGE = 2023

#: The register's start-ups are at most this many years old.
YOUNG_YEARS_MAX = 100
#: The earliest register date: INSEE's SIRENE directory was created in 1973.
AS_OF_MIN = dt.date(1973, 1, 1)

_NAF = re.compile(r"^\d{2}\.\d{2}[A-Z]$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(value: object, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """An ``int`` in ``[lo, hi]``."""
    if not _is_int(value):
        raise ParameterError(f"{name}: expected an integer, got {value!r} ({type(value).__name__})")
    return _within(value, name, lo, hi)  # type: ignore[arg-type]


def _within(value: int, name: str, lo: int | None, hi: int | None) -> int:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"{lo}-{hi}" if lo is not None and hi is not None else f">= {lo}"
        raise ParameterError(f"{name}: {value} is outside the allowed range {bounds}")
    return value


def year(value: object, name: str = "year") -> int:
    """A calendar year, ``YEAR_MIN`` to ``YEAR_MAX``."""
    if not _is_int(value):
        raise ParameterError(
            f"{name}: expected a year (integer), got {value!r} ({type(value).__name__})"
        )
    return _within(value, name, YEAR_MIN, YEAR_MAX)  # type: ignore[arg-type]


def year_range(
    start: object, end: object, names: tuple[str, str] = ("start_year", "end_year")
) -> tuple[int, int]:
    """Two years with ``start <= end``."""
    a, b = year(start, names[0]), year(end, names[1])
    if a > b:
        raise ParameterError(
            f"{names[0]} {a} is after {names[1]} {b}; give {names[0]} <= {names[1]}"
        )
    return a, b


def choice(value: T, name: str, choices: Sequence[T]) -> T:
    """One of `choices` (booleans never match numbers)."""
    if isinstance(value, bool) or value not in choices:
        allowed = ", ".join(map(repr, choices))
        raise ParameterError(f"{name}: {value!r} is not allowed; choose one of {allowed}")
    return value


def population_vintage(value: object = None, name: str = "population_vintage") -> int:
    """A census year of the population tables (None: the default vintage)."""
    if value is None:
        return DEFAULT_POPULATION_VINTAGE
    return choice(value, name, POPULATION_VINTAGES)  # type: ignore[return-value]


def perimeter(value: object = None, name: str = "perimeter") -> str:
    """A capital's perimeter: ``label`` (the 2019 label's cited places, the default) or
    ``core`` (the EPCIs of its main cities)."""
    if value is None:
        return territories.DEFAULT_PERIMETER
    return choice(value, name, territories.PERIMETERS)  # type: ignore[return-value]


def territory(value: object, name: str = "territory") -> str:
    """A capital id, a region id or ``france``."""
    return territories.check_territory(value, parameter=name)


def capital(value: object, name: str = "capital") -> str:
    """One of the 13 capital ids."""
    return territories.check_territory(value, parameter=name, capitals_only=True)


def as_of(value: object, name: str = "as_of", *, today: dt.date | None = None) -> dt.date:
    """A reference date: a ``datetime.date`` or ``'YYYY-MM-DD'``, from 1973 to today.

    The register cannot describe the future, and INSEE's directory starts in 1973.
    """
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        with contextlib.suppress(ValueError):
            value = dt.date.fromisoformat(value.strip())
    if not isinstance(value, dt.date):
        raise ParameterError(f"{name}: expected a date 'YYYY-MM-DD', got {value!r}")
    today = today or dt.date.today()
    if value < AS_OF_MIN:
        raise ParameterError(
            f"{name}: {value.isoformat()} is before {AS_OF_MIN.isoformat()}, the start of "
            "INSEE's SIRENE directory"
        )
    if value > today:
        raise ParameterError(
            f"{name}: {value.isoformat()} is in the future (today is {today.isoformat()}); "
            "the register describes the past"
        )
    return value


def young_years(value: object, name: str = "young_years") -> int:
    """The maximum age of a register start-up, in whole years: 0 to ``YOUNG_YEARS_MAX``."""
    return integer(value, name, 0, YOUNG_YEARS_MAX)


def ict_codes(codes: Iterable[str] | str | None, name: str = "ict_codes") -> tuple[str, ...]:
    """Sorted unique NAF rév. 2 codes written with a dot (``6201Z`` becomes ``62.01Z``).

    None gives the ICT sector (:data:`analysis.core.ict_sector.ICT_NAF_CODES`).
    """
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
            if not _NAF.match(c):
                raise ParameterError(
                    f"{name}: {raw.strip()!r} is not a NAF rév. 2 sub-class code such as 62.01Z"
                )
            out.add(c)
    if not out:
        raise ParameterError(f"{name}: give at least one NAF code")
    return tuple(sorted(out))


def weights(value: object, name: str, indicators: Sequence[str]) -> dict[str, float]:
    """One weight >= 0 per indicator, in order, summing to more than 0."""
    n = len(indicators)
    if not isinstance(value, list | tuple) or not all(
        isinstance(w, int | float) and not isinstance(w, bool) for w in value
    ):
        raise ParameterError(f"{name}: expected a list of {n} numbers, got {value!r}")
    if len(value) != n:
        raise ParameterError(
            f"{name}: {len(value)} value(s) given, expected {n}, one per indicator: "
            f"{', '.join(indicators)}"
        )
    if any(w < 0 for w in value) or sum(value) <= 0:
        raise ParameterError(
            f"{name}: weights must be >= 0 and sum to a positive value; got {list(value)}"
        )
    return dict(zip(indicators, (float(w) for w in value), strict=True))


def existing_file(value: object, name: str) -> Path:
    """A path to an existing file; a relative path is taken from the project root."""
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ParameterError(
            f"{name}: expected a file path, got {value!r} ({type(value).__name__})"
        )
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = paths.project_root() / path
    if not path.exists():
        raise ParameterError(f"{name}: {path} does not exist")
    return path
