"""Notebook parameters: one rule per parameter name, shared by every notebook and the grid.

A notebook's first code cell (tagged ``parameters``) holds literals only; the next cell
passes them to :func:`validate`, which applies the rule of each parameter's name (the rules
themselves are :mod:`analysis.core.rules`, the ones the CLI and the library use). A wrong
type, an unknown territory, a year out of range, an inverted year range or a weights list of
the wrong length stops the run with a :class:`ParameterError` that names the parameter and
lists what is allowed. ``analysis run`` checks the grid's values with the same rules before
anything runs (:func:`check`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from analysis.analyses.ecosystem import INDICATORS
from analysis.core import rules
from analysis.core.errors import ParameterError
from analysis.methods.composite_index import NORMALISATIONS

STARTUP_SOURCES = ("declared", "sirene")
#: The outcomes of the label-effect panel (`analysis sirene panel`).
PANEL_OUTCOMES = ("creations_ict", "creations_all")
#: The label-effect estimators and comparison groups (:mod:`analysis.methods.label_effect`).
LABEL_ESTIMATORS = ("etwfe", "callaway_santanna", "twfe_biased")
LABEL_CONTROLS = ("never", "rejected")


def _optional_file(value: Any, name: str) -> Path | None:
    return None if value is None or value == "" else rules.existing_file(value, name)


#: The rule of each notebook parameter, by name.
RULES: dict[str, Callable[[Any, str], Any]] = {
    "territory": rules.territory,
    "capital": rules.capital,
    "start_year": rules.year,
    "end_year": rules.year,
    "reference_year": rules.year,
    "population_vintage": lambda v, n: rules.choice(v, n, rules.POPULATION_VINTAGES),
    "perimeter": rules.perimeter,
    "startups_source": lambda v, n: rules.choice(v, n, STARTUP_SOURCES),
    "sirene_path": _optional_file,
    "panel_path": _optional_file,
    "outcome": lambda v, n: rules.choice(v, n, PANEL_OUTCOMES),
    "late_month": lambda v, n: rules.integer(v, n, 1, 13),
    "estimator": lambda v, n: rules.choice(v, n, LABEL_ESTIMATORS),
    "control": lambda v, n: rules.choice(v, n, LABEL_CONTROLS),
    "as_of": rules.as_of,
    "young_years": rules.young_years,
    "weights": lambda v, n: rules.weights(v, n, INDICATORS),
    "normalisation": lambda v, n: rules.choice(v, n, NORMALISATIONS),
    "n_draws": lambda v, n: rules.integer(v, n, 1, 1_000_000),
    "seed": lambda v, n: rules.integer(v, n, 0, 2**32 - 1),
}


@dataclass(frozen=True)
class Params:
    """Validated parameters: attribute access (``p.territory``) and ``p.as_dict()``."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


def check(name: str, value: Any) -> Any:
    """Check one parameter by its name's rule; return it typed (paths resolved, dates parsed).

    Parameters
    ----------
    name : str
        The notebook parameter (a key of :data:`RULES`).
    value : Any
        Its value.

    Returns
    -------
    Any
        The value, checked and typed.

    Raises
    ------
    ParameterError
        When `name` is not a notebook parameter, or `value` breaks its rule (naming it).
    """
    if name not in RULES:
        raise ParameterError(
            f"{name}: not a notebook parameter; the parameters are: {', '.join(RULES)}"
        )
    return RULES[name](value, name)


def validate(**values: Any) -> Params:
    """Check a notebook's parameters and return them validated, with the rules that tie two
    parameters together (``start_year <= end_year``; the register needs ``sirene_path``)."""
    out = {name: check(name, value) for name, value in values.items()}
    if "start_year" in out and "end_year" in out:
        rules.year_range(out["start_year"], out["end_year"])
    if out.get("startups_source") == "sirene" and out.get("sirene_path") is None:
        raise ParameterError(
            "sirene_path: required when startups_source is 'sirene' (a StockEtablissement "
            "zip, CSV or parquet file; see `analysis sirene fetch`)"
        )
    return Params(MappingProxyType(out))
