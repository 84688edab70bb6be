"""Validation of notebook parameters.

Every notebook's first code cell (tagged ``parameters``) holds literals only; the next
cell calls :func:`validate` with the notebook's name and those literals. A wrong type, an
unknown territory, a year out of range, an inverted year range or a weights list of the
wrong length stops the run with a :class:`ParameterError` that names the parameter and
lists what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

from analysis import config, territories
from analysis.errors import ParameterError
from analysis.index import NORMALISATIONS

YEAR_MIN, YEAR_MAX = 1990, 2100
#: The composite index's indicators, in the order of the `weights` parameter (see ecosystem.py).
INDEX_INDICATORS: tuple[str, ...] = ("startups_per_100k", "population_growth")
STARTUP_SOURCES = ("declared", "sirene")


@dataclass(frozen=True)
class Spec:
    kind: str  # territory | capital | year | int | choice | weights | path | date
    choices: tuple[Any, ...] = ()
    lo: int | None = None
    hi: int | None = None
    optional: bool = False  # None allowed


NOTEBOOKS: dict[str, dict[str, Spec]] = {
    "01-data-catalogue": {},
    "02-investment-attraction": {
        "territory": Spec("territory"),
        "start_year": Spec("year"),
        "end_year": Spec("year"),
    },
    "03-startup-density": {
        "reference_year": Spec("year"),
        "population_vintage": Spec("choice", choices=config.POPULATION_VINTAGES),
        "startups_source": Spec("choice", choices=STARTUP_SOURCES),
        "sirene_path": Spec("path", optional=True),
        "as_of": Spec("date"),
        "young_years": Spec("int", lo=0, hi=100),
    },
    "04-ecosystem-index": {
        "weights": Spec("weights"),
        "normalisation": Spec("choice", choices=NORMALISATIONS),
        "n_draws": Spec("int", lo=1, hi=1_000_000),
        "seed": Spec("int", lo=0, hi=2**32 - 1),
        "population_vintage": Spec("choice", choices=config.POPULATION_VINTAGES),
    },
    "10-territory-report": {
        "territory": Spec("capital"),
    },
}


@dataclass(frozen=True)
class Params:
    """Validated parameters: attribute access (``p.territory``) and ``p.as_dict()``."""

    notebook: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


def _type_name(v: object) -> str:
    return type(v).__name__


def _bad_date(name: str, value: Any) -> None:
    raise ParameterError(f"{name}: expected a date 'YYYY-MM-DD', got {value!r}")


def _check(name: str, value: Any, spec: Spec) -> Any:
    if spec.optional and (value is None or value == ""):
        return None
    if spec.kind in ("territory", "capital"):
        return territories.check_territory(
            value, parameter=name, capitals_only=spec.kind == "capital"
        )
    if spec.kind in ("year", "int"):
        if isinstance(value, bool) or not isinstance(value, int):
            what = "a year (integer)" if spec.kind == "year" else "an integer"
            raise ParameterError(f"{name}: expected {what}, got {value!r} ({_type_name(value)})")
        lo = YEAR_MIN if spec.kind == "year" else spec.lo
        hi = YEAR_MAX if spec.kind == "year" else spec.hi
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ParameterError(f"{name}: {value} is outside the allowed range {lo}-{hi}")
        return value
    if spec.kind == "choice":
        if value not in spec.choices or isinstance(value, bool):
            raise ParameterError(
                f"{name}: {value!r} is not allowed; choose one of {', '.join(map(repr, spec.choices))}"
            )
        return value
    if spec.kind == "weights":
        n = len(INDEX_INDICATORS)
        if not isinstance(value, list | tuple) or not all(
            isinstance(w, int | float) and not isinstance(w, bool) for w in value
        ):
            raise ParameterError(f"{name}: expected a list of {n} numbers, got {value!r}")
        if len(value) != n:
            raise ParameterError(
                f"{name}: {len(value)} value(s) given, expected {n}, one per indicator: "
                f"{', '.join(INDEX_INDICATORS)}"
            )
        if any(w < 0 for w in value) or sum(value) <= 0:
            raise ParameterError(
                f"{name}: weights must be >= 0 and sum to a positive value; got {list(value)}"
            )
        return dict(zip(INDEX_INDICATORS, (float(w) for w in value), strict=True))
    if spec.kind == "date":
        try:
            return (
                date.fromisoformat(value).isoformat()
                if isinstance(value, str) and len(value) == 10
                else _bad_date(name, value)
            )
        except ValueError:
            return _bad_date(name, value)
    if spec.kind == "path":
        if not isinstance(value, str | Path):
            raise ParameterError(
                f"{name}: expected a file path, got {value!r} ({_type_name(value)})"
            )
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = config.project_root() / path
        if not path.exists():
            raise ParameterError(f"{name}: {path} does not exist")
        return path
    raise ParameterError(f"{name}: unknown parameter kind {spec.kind!r}")  # pragma: no cover


def validate(notebook: str, **values: Any) -> Params:
    """Check a notebook's parameters and return them validated (paths resolved, weights as tuple)."""
    if notebook not in NOTEBOOKS:
        raise ParameterError(f"notebook {notebook!r} is unknown; known: {', '.join(NOTEBOOKS)}")
    specs = NOTEBOOKS[notebook]
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ParameterError(
            f"{notebook}: unknown parameter(s) {', '.join(unknown)}; declared: {', '.join(specs) or 'none'}"
        )
    missing = sorted(set(specs) - set(values))
    if missing:
        raise ParameterError(f"{notebook}: missing parameter(s) {', '.join(missing)}")
    out = {name: _check(name, values[name], spec) for name, spec in specs.items()}
    if "start_year" in out and out["start_year"] > out["end_year"]:
        raise ParameterError(
            f"start_year {out['start_year']} is after end_year {out['end_year']}; "
            "give start_year <= end_year"
        )
    if out.get("startups_source") == "sirene" and out.get("sirene_path") is None:
        raise ParameterError(
            "sirene_path: required when startups_source is 'sirene' (a StockEtablissement "
            "zip, CSV or parquet file; see `analysis sirene fetch`)"
        )
    return Params(notebook, MappingProxyType(out))
