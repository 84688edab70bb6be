"""Composite ecosystem index: normalise, weight, aggregate, and measure how robust its ranks are.

The construction follows the ten steps of the OECD/JRC *Handbook on Constructing Composite
Indicators: Methodology and User Guide* (OECD, 2008). The steps that are code live here:

- **Step 3, missing data.** Nothing is imputed: a missing or NaN value raises an error that
  names the territory and the indicator (impute explicitly, or drop one of them, upstream).
- **Step 5, normalisation.** :func:`normalise` — min-max or z-score, per indicator, after
  orienting every indicator so that higher is better (``direction``).
- **Step 6, weighting and aggregation.** :func:`resolve_weights`, :func:`aggregate`,
  :func:`composite` — linear (arithmetic) or geometric aggregation.
- **Step 7, uncertainty and sensitivity analysis.** :func:`monte_carlo`, after Saisana, Saltelli
  & Tarantola (2005), "Uncertainty and sensitivity analysis techniques as tools for the quality
  assessment of composite indicators", *JRSS A* 168(2), 307-323: rank intervals under random
  weights, normalisation and data noise, and variance-based sensitivity indices (Saltelli et
  al. 2010, "Variance based sensitivity analysis of model output", *Comput. Phys. Commun.* 181).
- **Step 8, back to the data.** :func:`drop_one` — how far the ranks move when each indicator is
  left out.

Steps 1, 2, 4, 9 and 10 (framework, choice of indicators, multivariate analysis, links to other
indicators, presentation) are choices documented in the notebooks, not code.

Input
-----
A frame with ``territory_id, indicator, value`` — one value per (territory, indicator) and
every indicator present for every territory — plus, optionally:

- ``sd``: the stated uncertainty of the value (e.g. a standard error), in the value's unit;
  NaN or absent means "no stated uncertainty" (the value is held fixed in :func:`monte_carlo`);
- ``source_ids`` (or ``source_id``): carried to the output, ``;``-joined per territory over the
  indicators with a positive weight;
- ``unit``: if present, it must be single per indicator (indicators may differ in units:
  normalisation removes them).

Indicators keep the order in which they first appear in the frame: a weight *sequence* is
aligned to that order (error messages list it). A mapping ``{indicator: weight}`` is safer.

Ranks: 1 is the best (highest) score; ties share the smallest rank (1, 2, 2, 4). Scores are
rounded to :data:`TIE_DECIMALS` decimals before ranking, so that float noise (``0.75 * 1/3``
against ``0.25``) does not break a tie.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from analysis.core.errors import InsufficientDataError, ParameterError
from analysis.core.tidy import join_sources

__all__ = [
    "AGGREGATIONS",
    "GEOMETRIC_FLOOR",
    "NORMALISATIONS",
    "TIE_DECIMALS",
    "IndexUncertainty",
    "aggregate",
    "composite",
    "drop_one",
    "monte_carlo",
    "normalise",
    "resolve_weights",
]

NORMALISATIONS: tuple[str, ...] = ("minmax", "zscore")
AGGREGATIONS: tuple[str, ...] = ("arithmetic", "geometric")
#: Lower end of the min-max range used before geometric aggregation: values are mapped to
#: ``[GEOMETRIC_FLOOR, 1]`` so that the lowest territory on an indicator does not zero the product.
GEOMETRIC_FLOOR = 0.01
#: Scores are rounded to this many decimals before ranking (ties within float noise are ties).
TIE_DECIMALS = 12
#: Monte Carlo draws are evaluated this many at a time (memory: CHUNK x territories x indicators).
CHUNK = 2048
#: Most bins used by the binned (given-data) first-order index of a single weight.
MAX_BINS = 20


# ----------------------------------------------------------------------------- input


@dataclass(frozen=True)
class _Matrix:
    territories: list[str]
    indicators: list[str]
    x: np.ndarray  # territories x indicators, raw values
    sd: np.ndarray  # territories x indicators, 0 where no stated uncertainty
    sources: np.ndarray  # territories x indicators, source ids ("" if none)


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ParameterError(
            f"{name}: {value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}"
        )
    return value


def _matrix(df: pd.DataFrame, check_constant: bool = True) -> _Matrix:
    """Validate a tidy indicator frame and pivot it to territories x indicators."""
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(f"expected a DataFrame of indicators, got {type(df).__name__}")
    missing = [c for c in ("territory_id", "indicator", "value") if c not in df.columns]
    if missing:
        raise ParameterError(
            f"frame lacks column(s) {', '.join(missing)}; "
            "an index needs territory_id, indicator, value (optional: sd, source_ids)"
        )
    if df.empty:
        raise InsufficientDataError("no indicator values: the frame is empty")
    d = df.reset_index(drop=True)
    for col in ("territory_id", "indicator"):
        if d[col].isna().any():
            raise ParameterError(f"row {int(d.index[d[col].isna()][0])}: {col} is missing")
    d = d.assign(territory_id=d["territory_id"].astype(str), indicator=d["indicator"].astype(str))
    try:
        value = d["value"].astype("float64")
    except (TypeError, ValueError):
        raise ParameterError("column 'value' is not numeric") from None
    bad = ~np.isfinite(value.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ParameterError(
            f"value of indicator {d['indicator'][i]!r} for territory {d['territory_id'][i]!r} "
            f"is {value[i]}; an index needs every value (impute upstream, or drop the "
            "territory or the indicator)"
        )
    dup = d.duplicated(["territory_id", "indicator"])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise ParameterError(
            f"several values of indicator {d['indicator'][i]!r} for territory "
            f"{d['territory_id'][i]!r}; keep one (e.g. select one year) first"
        )
    if "unit" in d.columns:
        units = d.groupby("indicator", sort=True)["unit"].nunique(dropna=False)
        if (units > 1).any():
            name = units.index[units > 1][0]
            raise ParameterError(
                f"indicator {name!r} has mixed units "
                f"{sorted(d.loc[d['indicator'] == name, 'unit'].astype(str).unique())}"
            )
    sd = pd.Series(0.0, index=d.index)
    if "sd" in d.columns:
        try:
            sd = d["sd"].astype("float64")
        except (TypeError, ValueError):
            raise ParameterError("column 'sd' is not numeric") from None
        s = sd.to_numpy(dtype=float, na_value=np.nan)
        bad = (s < 0) | np.isinf(s)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ParameterError(
                f"sd of indicator {d['indicator'][i]!r} for territory {d['territory_id'][i]!r} "
                f"is {s[i]}; it must be >= 0 and finite (NaN = no stated uncertainty)"
            )
        sd = pd.Series(np.nan_to_num(s, nan=0.0), index=d.index)
    src_col = next((c for c in ("source_ids", "source_id") if c in d.columns), None)
    src = (
        pd.Series([join_sources(v) for v in d[src_col].astype(object)], index=d.index)
        if src_col
        else pd.Series("", index=d.index)
    )

    indicators = list(pd.unique(d["indicator"]))
    territories = sorted(pd.unique(d["territory_id"]))
    long = d[["territory_id", "indicator"]].assign(value=value, sd=sd, src=src)
    wide = long.pivot(index="territory_id", columns="indicator")
    wide = wide.reindex(index=territories)
    x = wide["value"].reindex(columns=indicators).to_numpy(dtype=float, na_value=np.nan)
    gaps = np.argwhere(np.isnan(x))
    if len(gaps):
        pairs = [f"{indicators[j]!r} for {territories[i]!r}" for i, j in gaps[:5]]
        more = f" and {len(gaps) - 5} more" if len(gaps) > 5 else ""
        raise InsufficientDataError(
            f"no value of {', '.join(pairs)}{more}; every indicator is needed for every "
            "territory (nothing is imputed)"
        )
    if check_constant:
        for j, name in enumerate(indicators):
            if np.ptp(x[:, j]) == 0:
                raise ParameterError(
                    f"indicator {name!r} is constant ({x[0, j]:g}) across the "
                    f"{len(territories)} territories; it cannot be normalised (drop it)"
                )
    return _Matrix(
        territories=territories,
        indicators=indicators,
        x=x,
        sd=wide["sd"].reindex(columns=indicators).to_numpy(dtype=float),
        sources=wide["src"].reindex(columns=indicators).to_numpy(dtype=object),
    )


def _signs(direction: Mapping[str, float] | None, indicators: list[str]) -> np.ndarray:
    sign = np.ones(len(indicators))
    if direction is None:
        return sign
    if not isinstance(direction, Mapping):
        raise ParameterError(
            f"direction: expected a mapping {{indicator: +1 or -1}}, got {type(direction).__name__}"
        )
    unknown = sorted(str(k) for k in direction if k not in indicators)
    if unknown:
        raise ParameterError(
            f"direction: unknown indicator(s) {unknown}; the indicators are {indicators}"
        )
    for name, s in direction.items():
        if isinstance(s, bool) or s not in (1, -1):
            raise ParameterError(
                f"direction of {name!r}: expected +1 (higher is better) or -1, got {s!r}"
            )
        sign[indicators.index(name)] = float(s)
    return sign


def resolve_weights(weights: Any, indicators: Sequence[str]) -> pd.Series:
    """Weights as a Series indexed by `indicators`, normalised to sum to 1: ``w_i / sum_j w_j``.

    `weights` is ``None`` (equal weights ``1/k``), a mapping ``{indicator: weight}`` with one
    entry per indicator, or a sequence aligned to `indicators`. Weights must be >= 0 with a
    positive sum; a zero weight leaves an indicator out of the score.

    Parameters
    ----------
    weights : None, mapping or sequence
        None, ``{indicator: weight}`` with every indicator, or one weight per indicator in the
        order of `indicators`.
    indicators : sequence of str
        The indicators, in order.

    Returns
    -------
    pandas.Series
        Weights named ``weight``, indexed by `indicators`, summing to 1.

    Raises
    ------
    ParameterError
        When an indicator is unknown or has no weight, the number of weights is wrong, or a
        weight is not a number >= 0 or they do not sum to a positive value.
    """
    indicators = list(indicators)
    k = len(indicators)
    if weights is None:
        return pd.Series(np.full(k, 1.0 / k), index=indicators, name="weight")
    if isinstance(weights, Mapping | pd.Series):
        keys = list(weights.keys())
        unknown = sorted(str(n) for n in keys if n not in indicators)
        if unknown:
            raise ParameterError(
                f"weights: unknown indicator(s) {unknown}; the indicators are {indicators}"
            )
        absent = [n for n in indicators if n not in keys]
        if absent:
            raise ParameterError(
                f"weights: no weight for {absent}; give one per indicator of {indicators} "
                "(0 leaves one out)"
            )
        raw = [weights[n] for n in indicators]
    elif isinstance(weights, str) or not isinstance(weights, Sequence | np.ndarray):
        raise ParameterError(
            f"weights: expected None, a mapping or a sequence of {k} numbers, got {weights!r}"
        )
    else:
        raw = list(np.ravel(np.asarray(weights, dtype=object)))
        if len(raw) != k:
            raise ParameterError(
                f"weights: {len(raw)} value(s) given, expected {k}, one per indicator in this "
                f"order: {indicators}"
            )
    shown = dict(zip(indicators, raw, strict=True))
    try:
        w = np.array([float(v) for v in raw])
    except (TypeError, ValueError):
        raise ParameterError(
            f"weights must be ≥ 0 and sum to a positive value; got {shown}"
        ) from None
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ParameterError(f"weights must be ≥ 0 and sum to a positive value; got {shown}")
    return pd.Series(w / w.sum(), index=indicators, name="weight")


# ----------------------------------------------------------------------------- core (arrays)


def _normalise_array(x: np.ndarray, method: str, floor: float = 0.0) -> np.ndarray:
    """Normalise along the territory axis (-2) of ``(..., territories, indicators)``."""
    if method == "minmax":
        lo = x.min(axis=-2, keepdims=True)
        hi = x.max(axis=-2, keepdims=True)
        z = (x - lo) / (hi - lo)
        return floor + (1.0 - floor) * z if floor else z
    mean = x.mean(axis=-2, keepdims=True)
    return (x - mean) / x.std(axis=-2, ddof=0, keepdims=True)


def _aggregate_array(z: np.ndarray, w: np.ndarray, method: str) -> np.ndarray:
    """``(draws, territories, indicators)`` x ``(draws, indicators)`` -> ``(draws, territories)``."""
    if method == "arithmetic":
        return np.einsum("dnk,dk->dn", z, w)
    return np.exp(np.einsum("dnk,dk->dn", np.log(z), w))


def _scores(
    x: np.ndarray,
    sign: np.ndarray,
    w: np.ndarray,
    norm: np.ndarray,
    noise: np.ndarray | None,
    normalisations: Sequence[str],
    aggregation: str,
) -> np.ndarray:
    """Scores of ``len(w)`` draws: data ``x + noise``, oriented, normalised, aggregated."""
    xs = (x[None] if noise is None else x[None] + noise) * sign
    xs = np.broadcast_to(xs, (len(w), *x.shape))
    out = np.empty((len(w), x.shape[0]))
    floor = GEOMETRIC_FLOOR if aggregation == "geometric" else 0.0
    for i, method in enumerate(normalisations):
        sel = norm == i
        if sel.any():
            z = _normalise_array(xs[sel], method, floor)
            out[sel] = _aggregate_array(z, w[sel], aggregation)
    return out


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Rank along the last axis: 1 = highest, ties share the smallest rank."""
    return rankdata(-np.round(scores, TIE_DECIMALS), method="min", axis=-1).astype(np.int64)


def _check_geometric(aggregation: str, normalisations: Sequence[str]) -> None:
    if aggregation == "geometric" and "zscore" in normalisations:
        raise ParameterError(
            "aggregation: 'geometric' is not defined on z-scores (they are negative below the "
            "mean); use normalisation 'minmax' (rescaled to [GEOMETRIC_FLOOR, 1]) or 'arithmetic'"
        )


def _territory_sources(m: _Matrix, w: np.ndarray) -> list[str]:
    keep = w > 0
    return [join_sources(list(row[keep])) for row in m.sources]


# ----------------------------------------------------------------------------- steps 5 and 6


def normalise(
    df: pd.DataFrame,
    method: str = "minmax",
    direction: Mapping[str, float] | None = None,
    floor: float = 0.0,
) -> pd.DataFrame:
    """Normalise each indicator across territories (Handbook step 5; OECD/JRC 2008, §5).

    - ``minmax``: ``(x - min) / (max - min)`` in [0, 1]; with ``floor`` = ε > 0 the result is
      rescaled to ``ε + (1 - ε) (x - min) / (max - min)`` in [ε, 1] (for geometric aggregation).
    - ``zscore``: ``(x - mean) / sd`` with the population sd (``ddof=0``).

    ``direction[i] = -1`` turns indicator i around first (``x -> -x``, so min-max gives
    ``(max - x) / (max - min)``). Both methods are invariant to ``x -> a x + b`` with a > 0.

    Parameters
    ----------
    df : pandas.DataFrame
        ``territory_id, indicator, value`` (optionally ``sd`` and ``source_ids``), one value per
        territory and indicator, every indicator present for every territory.
    method : {"minmax", "zscore"}, default "minmax"
        Normalisation.
    direction : mapping of str to float, or None, default None
        ``{indicator: +1 or -1}``; -1 turns an indicator around (lower is better). None: all +1.
    floor : float, default 0.0
        ε in [0, 1) of the min-max rescaling; min-max only.

    Returns
    -------
    pandas.DataFrame
        ``territory_id, indicator, value, unit, source_ids`` sorted by indicator (in input order)
        and territory; ``unit`` is ``"min-max (0-1)"`` (``"min-max (ε-1)"`` with a floor) or
        ``"z-score"``.

    Raises
    ------
    ParameterError
        When the method or the floor is not allowed, a direction is invalid, a value is
        missing or not numeric, or an indicator is constant.
    InsufficientDataError
        When `df` is empty.
    """
    method = _choice("normalisation", method, NORMALISATIONS)
    if not isinstance(floor, numbers.Real) or not 0.0 <= floor < 1.0:
        raise ParameterError(f"floor: expected a number in [0, 1), got {floor!r}")
    if floor and method != "minmax":
        raise ParameterError("floor: only min-max normalisation takes a floor")
    m = _matrix(df)
    z = _normalise_array(m.x * _signs(direction, m.indicators), method, float(floor))
    n, k = z.shape
    unit = "min-max (0-1)" if not floor else f"min-max ({floor:g}-1)"
    return pd.DataFrame(
        {
            "territory_id": np.tile(m.territories, k),
            "indicator": np.repeat(m.indicators, n),
            "value": z.T.ravel(),
            "unit": unit if method == "minmax" else "z-score",
            "source_ids": m.sources.T.ravel().astype(str),
        }
    )


def aggregate(norm: pd.DataFrame, weights: Any = None, method: str = "arithmetic") -> pd.DataFrame:
    """Aggregate normalised indicators into one score per territory (Handbook step 6;
    OECD/JRC 2008, §6).

    - ``arithmetic``: ``score = sum_i w_i x_i`` (fully compensatory);
    - ``geometric``: ``score = prod_i x_i ** w_i`` (partly compensatory); every value must be
      > 0 — min-max values are 0 for the lowest territory, so normalise with
      ``floor=GEOMETRIC_FLOOR`` first (as :func:`composite` does); z-scores cannot be used.

    Parameters
    ----------
    norm : pandas.DataFrame
        Normalised indicators, a frame like the output of :func:`normalise`.
    weights : None, mapping or sequence, default None
        As in :func:`resolve_weights`; None gives equal weights.
    method : {"arithmetic", "geometric"}, default "arithmetic"
        Aggregation.

    Returns
    -------
    pandas.DataFrame
        ``territory_id, score, source_ids``, one row per territory.

    Raises
    ------
    ParameterError
        When the method is not allowed, a weight is invalid, a value is missing, or a value is
        not > 0 under geometric aggregation.
    """
    method = _choice("aggregation", method, AGGREGATIONS)
    m = _matrix(norm, check_constant=False)
    w = resolve_weights(weights, m.indicators).to_numpy()
    if method == "geometric" and (m.x <= 0).any():
        i, j = np.argwhere(m.x <= 0)[0]
        raise ParameterError(
            f"geometric aggregation needs values > 0; {m.indicators[j]!r} is {m.x[i, j]:g} "
            f"for {m.territories[i]!r} (normalise with floor=GEOMETRIC_FLOOR, min-max only)"
        )
    score = _aggregate_array(m.x[None], w[None], method)[0]
    return pd.DataFrame(
        {
            "territory_id": m.territories,
            "score": score,
            "source_ids": _territory_sources(m, w),
        }
    )


def composite(
    df: pd.DataFrame,
    weights: Any = None,
    normalisation: str = "minmax",
    aggregation: str = "arithmetic",
    direction: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The composite index: orient, normalise, weight and aggregate, then rank (OECD/JRC 2008,
    steps 5-6).

    ``score_c = sum_i w_i z_ci`` (arithmetic) or ``prod_i z_ci ** w_i`` (geometric), where
    ``z`` is the :func:`normalise` of the oriented data; for geometric aggregation min-max
    values are taken in ``[GEOMETRIC_FLOOR, 1]`` and z-scores are refused.

    Parameters
    ----------
    df : pandas.DataFrame
        ``territory_id, indicator, value`` (optionally ``sd`` and ``source_ids``), one value per
        territory and indicator, every indicator present for every territory.
    weights : None, mapping or sequence, default None
        As in :func:`resolve_weights`; None gives equal weights.
    normalisation : {"minmax", "zscore"}, default "minmax"
        Normalisation (:func:`normalise`).
    aggregation : {"arithmetic", "geometric"}, default "arithmetic"
        Aggregation (:func:`aggregate`).
    direction : mapping of str to float, or None, default None
        ``{indicator: +1 or -1}``; -1 turns an indicator around (lower is better). None: all +1.

    Returns
    -------
    pandas.DataFrame
        ``territory_id, score, rank, source_ids`` sorted by rank then territory; rank 1 is the
        highest score and ties share the smallest rank.

    Raises
    ------
    ParameterError
        When a choice is not allowed, a weight or direction is invalid, a value is missing or
        not numeric, or an indicator is constant.
    InsufficientDataError
        When `df` is empty.
    """
    normalisation = _choice("normalisation", normalisation, NORMALISATIONS)
    aggregation = _choice("aggregation", aggregation, AGGREGATIONS)
    _check_geometric(aggregation, (normalisation,))
    m = _matrix(df)
    w = resolve_weights(weights, m.indicators).to_numpy()
    sign = _signs(direction, m.indicators)
    score = _scores(m.x, sign, w[None], np.zeros(1, int), None, (normalisation,), aggregation)
    out = pd.DataFrame(
        {
            "territory_id": m.territories,
            "score": score[0],
            "rank": _ranks(score)[0],
            "source_ids": _territory_sources(m, w),
        }
    )
    return out.sort_values(["rank", "territory_id"], ignore_index=True)


def drop_one(
    df: pd.DataFrame,
    weights: Any = None,
    normalisation: str = "minmax",
    aggregation: str = "arithmetic",
    direction: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """How far the ranks move when each indicator is left out (Handbook step 8; OECD/JRC 2008).

    For each indicator i, the composite is recomputed without it (its weight set to 0, the
    others rescaled to sum 1) and compared with the full composite:
    ``mean_abs_rank_shift = (1/M) sum_c |rank_c - rank_c^(-i)|`` over the M territories, and
    ``max_abs_rank_shift`` the largest such shift. NaN when no other indicator has a positive
    weight.

    Parameters
    ----------
    df : pandas.DataFrame
        ``territory_id, indicator, value`` (optionally ``sd`` and ``source_ids``), one value per
        territory and indicator, every indicator present for every territory.
    weights : None, mapping or sequence, default None
        As in :func:`resolve_weights`; None gives equal weights.
    normalisation : {"minmax", "zscore"}, default "minmax"
        Normalisation (:func:`normalise`).
    aggregation : {"arithmetic", "geometric"}, default "arithmetic"
        Aggregation (:func:`aggregate`).
    direction : mapping of str to float, or None, default None
        ``{indicator: +1 or -1}``; -1 turns an indicator around (lower is better). None: all +1.

    Returns
    -------
    pandas.DataFrame
        ``indicator, weight, mean_abs_rank_shift, max_abs_rank_shift`` in input order.

    Raises
    ------
    ParameterError
        When a choice is not allowed, a weight or direction is invalid, a value is missing or
        not numeric, or an indicator is constant.
    InsufficientDataError
        When `df` is empty.
    """
    normalisation = _choice("normalisation", normalisation, NORMALISATIONS)
    aggregation = _choice("aggregation", aggregation, AGGREGATIONS)
    _check_geometric(aggregation, (normalisation,))
    m = _matrix(df)
    w = resolve_weights(weights, m.indicators).to_numpy()
    sign = _signs(direction, m.indicators)
    return _drop_one(m, w, sign, normalisation, aggregation)


def _drop_one(
    m: _Matrix, w: np.ndarray, sign: np.ndarray, normalisation: str, aggregation: str
) -> pd.DataFrame:
    k = len(w)
    nominal = _ranks(
        _scores(m.x, sign, w[None], np.zeros(1, int), None, (normalisation,), aggregation)
    )
    w_drop = np.tile(w, (k, 1))
    w_drop[np.arange(k), np.arange(k)] = 0.0
    total = w_drop.sum(axis=1)
    ok = total > 0
    mean_shift = np.full(k, np.nan)
    max_shift = np.full(k, np.nan)
    if ok.any():
        wd = w_drop[ok] / total[ok, None]
        r = _ranks(
            _scores(m.x, sign, wd, np.zeros(len(wd), int), None, (normalisation,), aggregation)
        )
        shift = np.abs(r - nominal)
        mean_shift[ok], max_shift[ok] = shift.mean(axis=1), shift.max(axis=1)
    return pd.DataFrame(
        {
            "indicator": m.indicators,
            "weight": w,
            "mean_abs_rank_shift": mean_shift,
            "max_abs_rank_shift": max_shift,
        }
    )


# ----------------------------------------------------------------------------- step 7


@dataclass(frozen=True)
class IndexUncertainty:
    """The result of :func:`monte_carlo`.

    - ``ranks``: ``territory_id, median_rank, rank_low, rank_high, score_median, nominal_rank,
      source_ids``, sorted by nominal rank then territory. ``[rank_low, rank_high]`` is the 90 %
      rank interval (5th and 95th percentiles of the draws' ranks, taken as order statistics
      rounded outwards, so at least 90 % of the draws lie inside); ``median_rank`` may end in
      .5; ``score_median`` is the median score over the draws that used the first (nominal)
      normalisation, so that it is on the scale of :func:`composite` (NaN if no draw did);
      ``nominal_rank`` is the rank of :func:`composite` with the given weights and the first
      normalisation.
    - ``draws``: ``draw, territory_id, normalisation, rank, score``, one row per draw and
      territory (categoricals and int32 to keep it small). Scores of draws with different
      normalisations are on different scales; compare ranks.
    - ``weights``: ``draw, indicator, weight`` — the weights of each draw.
    - ``sensitivity``: ``output, territory_id, factor, kind, indicator, first_order,
      total_effect, estimator`` — see :func:`monte_carlo`.
    - ``dropped``: the :func:`drop_one` table under the nominal settings.
    """

    ranks: pd.DataFrame
    draws: pd.DataFrame
    weights: pd.DataFrame
    sensitivity: pd.DataFrame
    dropped: pd.DataFrame


SENSITIVITY_COLUMNS = [
    "output",
    "territory_id",
    "factor",
    "kind",
    "indicator",
    "first_order",
    "total_effect",
    "estimator",
]


def _draw_factors(
    rng: np.random.Generator,
    n_draws: int,
    w0: np.ndarray,
    concentration: float | None,
    n_norm: int,
) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng_w, rng_n, rng_e = rng.spawn(3)
    if concentration is None:
        w = np.tile(w0, (n_draws, 1))
    else:  # alpha_i = 0 for a zero weight: numpy then draws w_i = 0
        w = rng_w.dirichlet(concentration * w0, size=n_draws)
    norm = rng_n.integers(0, n_norm, size=n_draws)
    return w, norm, rng_e


def _outputs(ranks: np.ndarray, nominal: np.ndarray) -> np.ndarray:
    """Per draw: the mean absolute rank shift from the nominal ranking, then each rank."""
    shift = np.abs(ranks - nominal).mean(axis=1, keepdims=True)
    return np.hstack([shift, ranks]).astype(float)


def _binned_first_order(factor: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``Var(E[y | factor]) / Var(y)`` per column of y, from equal-count bins of `factor`."""
    n = len(factor)
    bins = min(MAX_BINS, max(2, math.isqrt(n)))
    b = np.empty(n, dtype=int)
    b[np.argsort(factor, kind="stable")] = np.arange(n) * bins // n
    counts = np.bincount(b, minlength=bins).astype(float)
    means = np.stack([np.bincount(b, weights=col, minlength=bins) for col in y.T], axis=1)
    means = means / np.where(counts > 0, counts, 1.0)[:, None]
    centre = y.mean(axis=0)
    between = (counts[:, None] * (means - centre) ** 2).sum(axis=0)
    total = ((y - centre) ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, between / total, np.nan)


def monte_carlo(
    df: pd.DataFrame,
    weights: Any = None,
    n_draws: int = 1000,
    seed: int | None = 0,
    concentration: float | None = 50.0,
    normalisations: Sequence[str] = ("minmax", "zscore"),
    aggregation: str = "arithmetic",
    direction: Mapping[str, float] | None = None,
    sensitivity: bool = True,
) -> IndexUncertainty:
    """Uncertainty and sensitivity analysis of the ranks (Handbook step 7; Saisana et al. 2005).

    **Uncertainty.** Each of the `n_draws` draws (i) draws the weights from a Dirichlet centred
    on the given weights ``w`` (``alpha = concentration * w``, so ``E[w_i] = w_i`` and
    ``Var[w_i] = w_i (1 - w_i) / (concentration + 1)``; an indicator with zero weight keeps it;
    ``concentration=None`` or ``np.inf`` keeps the weights fixed); (ii) picks the normalisation
    uniformly among `normalisations`; (iii) replaces each value ``x`` with a stated ``sd`` by
    ``x + sd * N(0, 1)`` (values without an sd stay fixed); then computes the scores and ranks.
    ``ranks`` summarises them: median, 90 % interval, and the nominal rank (the given weights,
    the first normalisation, no noise). With fixed weights, one normalisation and no sd, every
    draw is the nominal composite and each interval is a point.

    **Sensitivity** (``sensitivity=True``). Outputs ``Y``: the mean absolute rank shift
    ``R_S = (1/M) sum_c |rank_c - nominal_rank_c|`` of each draw (Saisana et al. 2005, eq. 6;
    ``output = "mean_abs_rank_shift"``), and each territory's rank (``output = "rank"``). The
    uncertain inputs are grouped into independent factors — ``weights`` (the whole weight
    vector: its components are dependent, as they sum to 1), ``normalisation``, and
    ``noise:<indicator>`` (the noise of all of one indicator's values) — each listed only if it
    varies. For each factor g, with two independent samples A and B of `n_draws` draws and
    ``A_B^g`` = A with factor g taken from B, so that ``Y_B`` and ``Y_g = Y_{A_B^g}`` share
    only g (pick-freeze; ``estimator = "pick-freeze"``; the model runs
    ``n_draws * (2 + number of factors)`` times):

    - ``first_order S_g = V(E[Y | g]) / V(Y)``, the share of the variance that g alone explains,
      by the estimator of Janon et al. (2014), *ESAIM: PS* 18, 342-364:
      ``S_g = (mean(Y_B Y_g) - m^2) / (mean((Y_B^2 + Y_g^2) / 2) - m^2)`` with
      ``m = mean((Y_B + Y_g) / 2)`` (exactly 1 when g is the only factor that varies);
    - ``total_effect ST_g = mean((Y_A - Y_g)^2) / 2 / V(Y)`` (Jansen; Saltelli et al. 2010,
      Table 2 (f)) — g's effect including its interactions, with ``V(Y)`` over A and B.

    Besides, for each single weight w_i that
    varies, ``first_order = Var(E[Y | w_i]) / Var(Y)`` is estimated on sample A by averaging
    Y in ``B = min(20, max(2, floor(sqrt(n_draws))))`` equal-count bins of w_i
    (``estimator = "binned"``, no total effect). As the weights are dependent, these per-weight
    indices overlap and do not add up; the binned estimate is biased upwards by about
    ``(B - 1) / (n_draws - 1)``. Estimates carry Monte Carlo error (small negative values mean
    about 0); an index is NaN where ``V(Y) = 0`` (that territory's rank never moves).

    ``draws`` keeps sample A only; the streams come from ``np.random.default_rng(seed)``
    (spawned per sample and per factor, so fixing one factor does not change the draws of the
    others). ``dropped`` is :func:`drop_one` under the nominal settings.

    Parameters
    ----------
    df : pandas.DataFrame
        ``territory_id, indicator, value`` (optionally ``sd`` and ``source_ids``), one value per
        territory and indicator, every indicator present for every territory.
    weights : None, mapping or sequence, default None
        As in :func:`resolve_weights`; None gives equal weights.
    n_draws : int, default 1000
        Number of draws of each sample, >= 1.
    seed : int or None, default 0
        Seed of ``np.random.default_rng``; None draws fresh entropy (not reproducible).
    concentration : float or None, default 50.0
        Dirichlet concentration of the weights, > 0; None or ``np.inf`` keeps them fixed.
    normalisations : sequence of str, default ("minmax", "zscore")
        Normalisations drawn uniformly, each once; the first is the nominal one.
    aggregation : {"arithmetic", "geometric"}, default "arithmetic"
        Aggregation (:func:`aggregate`).
    direction : mapping of str to float, or None, default None
        ``{indicator: +1 or -1}``; -1 turns an indicator around (lower is better). None: all +1.
    sensitivity : bool, default True
        Estimate the sensitivity indices (runs the model ``n_draws * (2 + factors)`` times).

    Returns
    -------
    IndexUncertainty
        ``ranks``, ``draws``, ``weights``, ``sensitivity`` (empty when `sensitivity` is False)
        and ``dropped``.

    Raises
    ------
    ParameterError
        When `n_draws`, `concentration`, a normalisation, the aggregation, a weight or a
        direction is invalid, or a value is missing or not numeric.
    InsufficientDataError
        When `df` is empty.
    """
    if isinstance(n_draws, bool) or not isinstance(n_draws, numbers.Integral) or n_draws < 1:
        raise ParameterError(f"n_draws: expected an integer >= 1, got {n_draws!r}")
    n_draws = int(n_draws)
    if isinstance(normalisations, str):
        normalisations = (normalisations,)
    normalisations = tuple(normalisations)
    if not normalisations:
        raise ParameterError(
            f"normalisations: give at least one of {', '.join(map(repr, NORMALISATIONS))}"
        )
    for name in normalisations:
        _choice("normalisations", name, NORMALISATIONS)
    if len(set(normalisations)) != len(normalisations):
        raise ParameterError(f"normalisations: {normalisations} lists one twice")
    aggregation = _choice("aggregation", aggregation, AGGREGATIONS)
    _check_geometric(aggregation, normalisations)
    if concentration is not None:
        if (
            isinstance(concentration, bool)
            or not isinstance(concentration, numbers.Real)
            or math.isnan(concentration)
            or concentration <= 0
        ):
            raise ParameterError(
                f"concentration: expected a number > 0 (or None/np.inf for fixed weights), "
                f"got {concentration!r}"
            )
        concentration = None if math.isinf(concentration) else float(concentration)

    m = _matrix(df)
    w0 = resolve_weights(weights, m.indicators).to_numpy()
    sign = _signs(direction, m.indicators)
    n, k = m.x.shape
    nominal = _ranks(
        _scores(m.x, sign, w0[None], np.zeros(1, int), None, normalisations, aggregation)
    )

    root = np.random.default_rng(seed)
    sample_a, sample_b = root.spawn(2)
    w_a, norm_a, noise_a = _draw_factors(sample_a, n_draws, w0, concentration, len(normalisations))
    noisy = [j for j in range(k) if (m.sd[:, j] > 0).any()]
    groups: list[tuple[str, str, str | None]] = []
    if concentration is not None and (w0 > 0).sum() > 1:
        groups.append(("weights", "weights", None))
    if len(normalisations) > 1:
        groups.append(("normalisation", "normalisation", None))
    groups += [(f"noise:{m.indicators[j]}", "noise", m.indicators[j]) for j in noisy]
    do_sens = sensitivity and bool(groups)
    if do_sens:
        w_b, norm_b, noise_b = _draw_factors(
            sample_b, n_draws, w0, concentration, len(normalisations)
        )

    def run(w: np.ndarray, norm: np.ndarray, e: np.ndarray | None) -> np.ndarray:
        return _scores(m.x, sign, w, norm, e, normalisations, aggregation)

    scores_a = np.empty((n_draws, n))
    ranks_a = np.empty((n_draws, n), dtype=np.int64)
    y_b = np.empty((n_draws, 1 + n))
    y_ab = np.empty((len(groups), n_draws, 1 + n))
    for start in range(0, n_draws, CHUNK):
        sl = slice(start, min(n_draws, start + CHUNK))
        size = sl.stop - sl.start
        e_a = noise_a.standard_normal((size, n, k)) * m.sd if noisy else None
        scores_a[sl] = run(w_a[sl], norm_a[sl], e_a)
        ranks_a[sl] = _ranks(scores_a[sl])
        if not do_sens:
            continue
        e_b = noise_b.standard_normal((size, n, k)) * m.sd if noisy else None
        y_b[sl] = _outputs(_ranks(run(w_b[sl], norm_b[sl], e_b)), nominal)
        for g, (_, kind, ind) in enumerate(groups):
            w, norm, e = w_a[sl], norm_a[sl], e_a
            if kind == "weights":
                w = w_b[sl]
            elif kind == "normalisation":
                norm = norm_b[sl]
            else:
                j = m.indicators.index(ind)
                e = e_a.copy()
                e[:, :, j] = e_b[:, :, j]
            y_ab[g, sl] = _outputs(_ranks(run(w, norm, e)), nominal)

    # ranks
    first = norm_a == 0
    score_median = np.median(scores_a[first], axis=0) if first.any() else np.full(n, np.nan)
    ranks = pd.DataFrame(
        {
            "territory_id": m.territories,
            "median_rank": np.median(ranks_a, axis=0),
            "rank_low": np.quantile(ranks_a, 0.05, axis=0, method="lower").astype(np.int64),
            "rank_high": np.quantile(ranks_a, 0.95, axis=0, method="higher").astype(np.int64),
            "score_median": score_median,
            "nominal_rank": nominal[0],
            "source_ids": _territory_sources(m, w0),
        }
    ).sort_values(["nominal_rank", "territory_id"], ignore_index=True)

    draws = pd.DataFrame(
        {
            "draw": np.repeat(np.arange(n_draws, dtype=np.int32), n),
            "territory_id": pd.Categorical(
                np.tile(m.territories, n_draws), categories=m.territories
            ),
            "normalisation": pd.Categorical.from_codes(
                np.repeat(norm_a, n), categories=list(normalisations)
            ),
            "rank": ranks_a.ravel().astype(np.int32),
            "score": scores_a.ravel(),
        }
    )
    weights_drawn = pd.DataFrame(
        {
            "draw": np.repeat(np.arange(n_draws, dtype=np.int32), k),
            "indicator": pd.Categorical(np.tile(m.indicators, n_draws), categories=m.indicators),
            "weight": w_a.ravel(),
        }
    )

    # sensitivity
    rows: list[dict[str, Any]] = []
    if do_sens:
        y_a = _outputs(ranks_a, nominal)
        var = np.concatenate([y_a, y_b]).var(axis=0)
        centre = ((y_b + y_ab) / 2).mean(axis=1, keepdims=True)  # groups x outputs
        cov = (y_b * y_ab).mean(axis=1) - centre[:, 0] ** 2
        var_g = ((y_b**2 + y_ab**2) / 2).mean(axis=1) - centre[:, 0] ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            s1 = np.where((var > 0) & (var_g > 0), cov / var_g, np.nan)
            st = np.where(var > 0, ((y_a - y_ab) ** 2).mean(axis=1) / 2 / var, np.nan)
        weights_vary = any(kind == "weights" for _, kind, _ in groups)
        varying_w = [j for j in range(k) if w0[j] > 0] if weights_vary else []
        binned = {j: _binned_first_order(w_a[:, j], y_a) for j in varying_w}
        outputs = [("mean_abs_rank_shift", None)] + [("rank", t) for t in m.territories]
        for o, (output, territory) in enumerate(outputs):
            for g, (factor, kind, ind) in enumerate(groups):
                rows.append(
                    {
                        "output": output,
                        "territory_id": territory,
                        "factor": factor,
                        "kind": kind,
                        "indicator": ind,
                        "first_order": s1[g, o],
                        "total_effect": st[g, o],
                        "estimator": "pick-freeze",
                    }
                )
                if kind == "weights":
                    rows += [
                        {
                            "output": output,
                            "territory_id": territory,
                            "factor": f"weight:{m.indicators[j]}",
                            "kind": "weight",
                            "indicator": m.indicators[j],
                            "first_order": binned[j][o],
                            "total_effect": np.nan,
                            "estimator": "binned",
                        }
                        for j in varying_w
                    ]
    sens = pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)
    sens = sens.astype({"first_order": float, "total_effect": float})

    return IndexUncertainty(
        ranks=ranks,
        draws=draws,
        weights=weights_drawn,
        sensitivity=sens,
        dropped=_drop_one(m, w0, sign, normalisations[0], aggregation),
    )
