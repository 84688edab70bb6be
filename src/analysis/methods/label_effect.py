"""Did the label matter? Staggered difference-in-differences with few treated units.

:func:`estimate` takes a long panel (:mod:`analysis.methods.panels`) and returns tidy rows
``estimator, term, event_time, estimate, ci_low, ci_high, p_value, n_treated, n_control``
with ``term`` one of ``overall``, ``event`` (one row per event time, leads before 0) and
``pretrend`` (the joint test of the leads). ``estimate`` is always a relative change.

The main estimator, ``etwfe``
-----------------------------
A Poisson regression with unit and year fixed effects and one dummy per treated cohort ×
post-label year (the extended two-way fixed effects of Wooldridge 2023, the count analogue
of Sun & Abraham 2021)::

    log E[y_it] = α_i + γ_t + Σ_{g, s >= g} β_gs 1[G_i = g, t = s]

estimated on the treated units and the comparison units only (never-treated units, or
rejected applicants), so that a treated unit is compared only with them and with its own
years before the label. With every post-label cell saturated, the dummies fit the cohort
totals of those cells exactly, and the fixed effects are those of the Poisson model fitted
on the untreated cells alone: this is the Poisson form of the imputation estimator
(Borusyak, Jaravel & Spiess 2024). The unit effects solve
``exp(α_i) = Σ_{t<g_i} y_it / Σ_{t<g_i} exp(γ_t)``, so the year effects and every ``β_gs``
depend on the data only through the cohort × year totals: the model is solved exactly on
that small table (iterative proportional fitting of the untreated cells), which is what
makes a thousand refits for randomisation inference cheap. Tests check every ``β_gs``
against ``pyfixest.fepois`` on the unit-level data.

The reported effects are ratios of observed to counterfactual totals::

    overall:      exp(θ) - 1,   θ = log( Σ_post y_gs / Σ_post ŷ⁰_gs )
    event e:      the same over the cells with s - g = e

i.e. the average of ``exp(β_gs) - 1`` weighted by the counterfactual counts ``ŷ⁰_gs``. For
``e < 0`` (leads) the cells are pre-label cells, which the model fits: a lead is the
deviation of the cohorts from their own fitted pre-period path, with no reference year
dropped. With ``outcome_scale="log1p"`` the same design is estimated by least squares on
``log(1 + y)`` (the imputation estimator; Gardner's 2022 two-stage estimator gives the same
point estimate, checked against ``pyfixest.did2s``), ``θ`` being the mean of the imputed
effects over the treated cells.

Inference: randomisation inference with blocks
----------------------------------------------
With 10 to 30 treated units, cluster-robust standard errors are unreliable (MacKinnon &
Webb 2020). Instead, each treated unit forms a block with its ``block_size`` nearest
comparison units by size (mean outcome before the first label, on the log scale), and the
label is re-assigned at random inside each block — one unit per block gets the block's
cohort — `n_draws` times (every assignment when there are fewer than `n_draws`). The
statistic of an assignment is the estimator itself applied to it: the units it labels
against every unit it does not label (the sharp null says what their outcomes would be),
so that the observed assignment's statistic is the reported estimate. It is studentised,
``t = θ / se`` with ``se`` the labelled units' cluster-robust standard error of ``θ``
(``se² = K/(K-1) Σ_k r_k² / (Σ ŷ⁰)²``, ``r_k`` the unit's residual in the term's cells;
with one labelled unit, ``θ`` itself). The p-value is two-sided: the share of assignments
whose ``|t|`` reaches the observed one, the observed assignment included (``(h + 1) /
(D + 1)`` for ``D`` random draws; ``h / D`` when all ``D`` assignments are enumerated).

Post-label intervals invert the test (Imbens & Rubin 2015, ch. 5): the interval holds
every effect ``δ`` whose sharp null — the treated post-label outcomes of the term divided
by ``exp(δ)`` are the untreated ones, the other post-label cells at their own estimated
effects — has ``p > alpha``. The reported p-value is this test at ``δ = 0``, with the same
draws, and the bisection for each bound is bracketed by the estimate (kept) and 0 (whose
verdict is then known), so ``p <= alpha`` exactly when 0 is outside the interval. A side
that the test never closes within ``|δ| <= 5`` (a factor e⁵) is reported as -100 % or
+inf. Lead intervals are studentised: ``θ ± q · se`` with ``q`` the randomisation critical
value of ``|t|`` under "no lead deviates" (post-label cells at their estimated effects),
the smallest value above which the p-value is at most `alpha`; again ``p <= alpha``
exactly when 0 is outside.

The joint pre-trend test sums the squared studentised leads and compares the sum with its
randomisation distribution.

References
----------
Borusyak, K., Jaravel, X. & Spiess, J. (2024). Revisiting event-study designs: robust and
efficient estimation. *Review of Economic Studies* 91(6), 3253-3285.
Callaway, B. & Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time
periods. *Journal of Econometrics* 225(2), 200-230.
Gardner, J. (2022). Two-stage differences in differences. arXiv:2207.05943.
Imbens, G. W. & Rubin, D. B. (2015). *Causal Inference for Statistics, Social, and
Biomedical Sciences*. Cambridge University Press.
MacKinnon, J. G. & Webb, M. D. (2020). Randomization inference for difference-in-differences
with few treated clusters. *Journal of Econometrics* 218(2), 435-450.
Rambachan, A. & Roth, J. (2023). A more credible approach to parallel trends. *Review of
Economic Studies* 90(5), 2555-2591.
Sun, L. & Abraham, S. (2021). Estimating dynamic treatment effects in event studies with
heterogeneous treatment effects. *Journal of Econometrics* 225(2), 175-199.
Wooldridge, J. M. (2023). Simulating the estimated DiD with nonlinear models: extended
two-way fixed effects with staggered adoption. *The Econometrics Journal* 26(3), C31-C66.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.core.errors import InsufficientDataError, ParameterError
from analysis.methods.panels import check_panel, to_arrays

__all__ = [
    "COLUMNS",
    "CONTROLS",
    "ESTIMATORS",
    "SCALES",
    "compare",
    "estimate",
    "minimum_detectable_effect",
    "sensitivity",
]

ESTIMATORS = ("etwfe", "callaway_santanna", "twfe_biased")
SCALES = ("count", "log1p")
CONTROLS = ("never", "rejected")
COLUMNS = [
    "estimator",
    "term",
    "event_time",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "n_treated",
    "n_control",
]
#: Labels of the estimators in the output (the biased baseline says so).
LABELS = {
    "etwfe": "etwfe",
    "callaway_santanna": "callaway_santanna",
    "twfe_biased": "twfe_biased (biased baseline)",
}
DEFAULT_BLOCK_SIZE = 4
#: Comparison units that must stay outside the randomisation blocks.
MIN_COMPARISON = 5
#: Test inversion searches effects within exp(±_SEARCH) of the estimate.
_SEARCH = 5.0
_BISECT = 16
_IPF_TOL = 1e-12
_IPF_MAXITER = 5000
#: Draws handled at once (bounds the memory of the gathered outcomes).
_CHUNK = 1000


# ----------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------


def _choice(value: object, name: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ParameterError(
            f"{name}: {value!r} is not allowed; choose one of {', '.join(allowed)}"
        )
    return value


def _int(value: object, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        raise ParameterError(f"{name}: expected an integer >= {lo}, got {value!r}")
    return int(value)


def _alpha(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ParameterError(f"alpha: expected a number between 0 and 1, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------------
# the design: sample, cohorts, blocks
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Design:
    """The estimation sample as arrays, the treated slots and their blocks."""

    z: np.ndarray  # (N, T) outcome on the estimation scale (counts, or log(1 + y))
    years: np.ndarray  # (T,)
    cohorts: np.ndarray  # (C,) treated first years, ascending
    slot_cohort: np.ndarray  # (K,) index into cohorts of each treated slot
    blocks: np.ndarray  # (K, B + 1) unit rows; column 0 is the treated unit
    scale: str
    n_control: int  # comparison units (every row of `z` that is not a treated unit)

    @property
    def treated(self) -> np.ndarray:
        return self.blocks[:, 0]

    def event(self) -> np.ndarray:
        """(K, T) event time of each slot's year."""
        return self.years[None, :] - self.cohorts[self.slot_cohort][:, None]

    def fit_mask(self) -> np.ndarray:
        """(C + 1, T) cells that fit the fixed effects: untreated cohort-years; row C is
        the comparison group (every year)."""
        pre = self.years[None, :] < self.cohorts[:, None]
        return np.vstack([pre, np.ones((1, len(self.years)), bool)])


def _design(
    panel: pd.DataFrame, outcome: str, scale: str, control: str, block_size: int | None
) -> _Design:
    arr = to_arrays(panel, outcome)
    treated = arr.first_treated > 0
    if control == "rejected":
        if arr.applicant is None:
            raise ParameterError(
                "control: 'rejected' needs the panel column 'applicant' (1 = applied for the label)"
            )
        comparison = ~treated & arr.applicant
        if not comparison.any():
            raise ParameterError(
                "control: 'rejected' but no never-treated unit has applicant = 1 in the panel"
            )
    else:
        comparison = ~treated
    keep = treated | comparison
    y = arr.y[keep]
    first = arr.first_treated[keep]
    is_treated = first > 0
    n_control = int((~is_treated).sum())
    cohorts = np.unique(first[is_treated])
    if scale == "count":
        z = y
        pre = y[:, arr.years < cohorts[0]].mean(axis=1)
        for g in cohorts:
            tot = y[first == g][:, arr.years < g].sum()
            if tot <= 0:
                raise InsufficientDataError(
                    f"{outcome}: the cohort first treated in {g} counts 0 in every year before "
                    "its label; a relative effect cannot be estimated (try outcome_scale='log1p')"
                )
        fit_total = y[first == 0].sum(axis=0)
        if (fit_total <= 0).any():
            bad = int(arr.years[np.argmax(fit_total <= 0)])
            raise InsufficientDataError(
                f"{outcome}: every comparison unit counts 0 in {bad}; the year effect cannot be "
                "estimated"
            )
    else:
        z = np.log1p(y)
        pre = y[:, arr.years < cohorts[0]].mean(axis=1)
    k = int(is_treated.sum())
    if block_size is None:
        block_size = min(DEFAULT_BLOCK_SIZE, (n_control - MIN_COMPARISON) // k)
        if block_size < 1:
            raise InsufficientDataError(
                f"control: {n_control} comparison unit(s) for {k} treated units; randomisation "
                f"inference needs one comparison unit per treated unit in its block and "
                f"{MIN_COMPARISON} more outside the blocks"
            )
    elif block_size * k + MIN_COMPARISON > n_control:
        raise ParameterError(
            f"block_size: {block_size} comparison units for each of {k} treated units, plus "
            f"{MIN_COMPARISON} outside the blocks, need {block_size * k + MIN_COMPARISON}, but "
            f"the comparison group has {n_control}"
        )
    size = np.log1p(pre)
    treated_rows = np.flatnonzero(is_treated)
    # the largest treated units choose first (they have the fewest peers)
    order = treated_rows[np.argsort(-size[treated_rows], kind="stable")]
    free = np.flatnonzero(~is_treated)
    blocks = {}
    for row in order:
        dist = np.abs(size[free] - size[row])
        near = np.argsort(dist, kind="stable")[:block_size]
        blocks[row] = np.concatenate([[row], free[near]])
        free = np.delete(free, near)
    slots = treated_rows[np.lexsort((treated_rows, first[treated_rows]))]
    slot_cohort = np.searchsorted(cohorts, first[slots])
    return _Design(
        z=z.astype("float64"),
        years=arr.years,
        cohorts=cohorts,
        slot_cohort=slot_cohort,
        blocks=np.vstack([blocks[r] for r in slots]),
        scale=scale,
        n_control=n_control,
    )


# ----------------------------------------------------------------------------------------
# the model on the cohort × year table, vectorised over assignments
# ----------------------------------------------------------------------------------------


def _fit_table(
    s: np.ndarray, n: np.ndarray, mask: np.ndarray, scale: str
) -> tuple[np.ndarray, np.ndarray]:
    """Cohort and year effects fitted on the table's `mask` cells, for each assignment.

    Parameters
    ----------
    s : (D, C + 1, T) cohort totals of the outcome (counts or log(1 + y)).
    n : (C + 1,) units per cohort.
    mask : (C + 1, T) cells that enter the fit.
    scale : ``count``: Poisson, ``E[S_ct] = A_c G_t`` (returns A, G, multiplicative);
        ``log1p``: least squares with weights ``n_c`` on cell means, ``S_ct / n_c = a_c + g_t``
        (returns a, g, additive).
    """
    m = mask.astype("float64")
    if scale == "count":
        sm = s * m
        row_tot = sm.sum(axis=2)
        col_tot = sm.sum(axis=1)
        g = col_tot / (m * n[:, None]).sum(axis=0)  # a start: the per-unit mean
        for _ in range(_IPF_MAXITER):
            a = row_tot / np.einsum("ct,dt->dc", m, g)
            g_new = col_tot / np.einsum("ct,dc->dt", m, a)
            done = np.max(np.abs(g_new / g - 1)) < _IPF_TOL
            g = g_new
            if done:
                break
        a = row_tot / np.einsum("ct,dt->dc", m, g)
        return a, g
    mean = s / n[None, :, None]
    w = m * n[:, None]
    g = (mean * w).sum(axis=1) / w.sum(axis=0)
    cnt = m.sum(axis=1)
    prev = None
    for _ in range(_IPF_MAXITER):
        a = ((mean - g[:, None, :]) * m).sum(axis=2) / cnt
        g = ((mean - a[:, :, None]) * w).sum(axis=1) / w.sum(axis=0)
        if prev is not None and np.max(np.abs(g - prev)) < _IPF_TOL:
            break
        prev = g
    a = ((mean - g[:, None, :]) * m).sum(axis=2) / cnt
    return a, g


@dataclass
class _Stats:
    theta: np.ndarray  # (D, E) log effect per term
    t: np.ndarray  # (D, E) studentised
    se: np.ndarray  # (D, E)
    cells: np.ndarray | None = None  # (C, T) log effect per cohort-year (first draw)


def _term_masks(design: _Design, terms: list[int | None]) -> np.ndarray:
    """(E, K, T) cells of each term: None = every post-label cell, e = event time e."""
    ev = design.event()
    return np.stack([(ev >= 0) if e is None else (ev == e) for e in terms])


def _stats(
    design: _Design, total: np.ndarray, zs: np.ndarray, masks: np.ndarray, want_cells: bool = False
) -> _Stats:
    """Statistics of every term for assignments whose treated slots hold the rows `zs`.

    total : (T,) the sample's yearly totals of the outcomes in use (the observed ones, or
        those imputed under a sharp null).
    zs : (D, K, T) outcomes of the units in the treated slots. Every other unit of the
        sample is a comparison unit: the comparison totals are `total` minus the slots'.
        The same function thus gives the point estimate (the observed assignment) and the
        statistic of every re-assignment, which is what makes the p-value and the interval
        refer to the reported estimate.
    """
    d, k, t = zs.shape
    c = len(design.cohorts)
    onehot = np.zeros((k, c + 1))
    onehot[np.arange(k), design.slot_cohort] = 1
    s = np.einsum("dkt,kc->dct", zs, onehot)
    s[:, c, :] = total[None, :] - zs.sum(axis=1)
    n = onehot.sum(axis=0)
    n[c] = design.n_control
    mask = design.fit_mask()
    a, g = _fit_table(s, n, mask, design.scale)
    slot_mask = mask[design.slot_cohort].astype("float64")  # (K, T)
    if design.scale == "count":
        unit = (zs * slot_mask).sum(axis=2) / np.einsum("kt,dt->dk", slot_mask, g)
        pred = unit[:, :, None] * g[:, None, :]
        num = np.einsum("ekt,dkt->de", masks, zs)
        den = np.einsum("ekt,dkt->de", masks, pred)
        with np.errstate(divide="ignore", invalid="ignore"):
            theta = np.log(num / den)
        resid = np.einsum("ekt,dkt->dek", masks, zs) - np.exp(theta)[:, :, None] * np.einsum(
            "ekt,dkt->dek", masks, pred
        )
        scale_se = np.exp(theta) * den
    else:
        unit = ((zs - g[:, None, :]) * slot_mask).sum(axis=2) / slot_mask.sum(axis=1)
        tau = zs - unit[:, :, None] - g[:, None, :]
        ncell = masks.sum(axis=(1, 2)).astype("float64")
        theta = np.einsum("ekt,dkt->de", masks, tau) / ncell
        resid = np.einsum("ekt,dkt->dek", masks, tau) - theta[:, :, None] * masks.sum(axis=2)
        scale_se = np.broadcast_to(ncell, theta.shape)
    kk = masks.any(axis=2).sum(axis=1)  # treated units per term
    var = (resid**2).sum(axis=2) * np.where(kk > 1, kk / np.maximum(kk - 1, 1), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(var) / scale_se
    se = np.where(kk > 1, se, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = np.where(se > 0, theta / se, 0.0)
    cells = None
    if want_cells:
        if design.scale == "count":
            with np.errstate(divide="ignore"):
                cells = np.log(s[0, :c] / (a[0, :c, None] * g[0, None, :]))
        else:
            cells = s[0, :c] / n[:c, None] - a[0, :c, None] - g[0, None, :]
    return _Stats(theta, tstat, se, cells)


# ----------------------------------------------------------------------------------------
# randomisation inference
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Draws:
    choice: np.ndarray  # (D, K) position inside each block
    exhaustive: bool


def _draws(design: _Design, n_draws: int, seed: int, alpha: float) -> _Draws:
    k, b = design.blocks.shape
    total = b**k if k * math.log(b) < math.log(10**9) else math.inf
    if total <= n_draws:
        choice = np.array(list(itertools.product(range(b), repeat=k)), dtype="int64")
        smallest = 1 / total
        exhaustive = True
    else:
        rng = np.random.default_rng(seed)
        choice = rng.integers(0, b, size=(n_draws, k))
        smallest = 1 / (n_draws + 1)
        exhaustive = False
    if smallest > alpha:
        if exhaustive:
            raise InsufficientDataError(
                f"n_draws: {k} treated unit(s) in blocks of {b} allow only {int(total)} "
                f"assignments of the label, so no p-value can fall below {smallest:.3g} > alpha "
                f"{alpha:g}; the design is too small for a test at this level"
            )
        raise ParameterError(
            f"n_draws: {n_draws} draws cannot give a p-value below {smallest:.3g} > alpha "
            f"{alpha:g}; give at least {math.ceil(1 / alpha)} draws"
        )
    return _Draws(choice, exhaustive)


def _reach(t_draws: np.ndarray) -> np.ndarray:
    """The largest observed |t| that each draw's |t| still reaches (a relative tolerance
    of 1e-10 so that an assignment equal to the observed one up to rounding counts)."""
    return (np.abs(t_draws) + 1e-14) / (1 - 1e-10)


def _p_value(t_obs: np.ndarray, t_draws: np.ndarray, exhaustive: bool) -> np.ndarray:
    """Two-sided randomisation p-value: the share of assignments whose ``|t|`` reaches the
    observed one, the observed assignment included (``(hits + 1) / (D + 1)`` for `D` random
    draws; ``hits / D`` when the `D` assignments are all of them, the observed one among
    them)."""
    hit = (_reach(t_draws) >= np.abs(t_obs)[None, :]).sum(axis=0)
    n = t_draws.shape[0]
    return hit / n if exhaustive else (hit + 1) / (n + 1)


def _critical(t_draws: np.ndarray, alpha: float, exhaustive: bool) -> np.ndarray:
    """(E,) the value ``q`` with ``p_value(t) <= alpha  ⇔  |t| > q`` for every term.

    With ``h(t)`` draws reaching ``|t|``, the p-value is at most `alpha` exactly when
    ``h(t) <= m``, `m` the largest hit count whose p-value is at most `alpha` (computed
    with the same arithmetic as :func:`_p_value`); that holds exactly when ``|t|`` is above
    the (m + 1)-th largest reach of the draws.
    """
    n = t_draws.shape[0]
    hits = np.arange(n + 1)
    p = hits / n if exhaustive else (hits + 1) / (n + 1)
    m = int(hits[p <= alpha].max()) if (p <= alpha).any() else -1
    if m < 0:  # no p-value can be small enough: nothing is rejected
        return np.full(t_draws.shape[1], np.inf)
    if m >= n:  # every |t| is rejected (only when alpha reaches the smallest p of 1)
        return np.full(t_draws.shape[1], -np.inf)
    reach = -np.sort(-_reach(t_draws), axis=0)  # descending
    return reach[m]


def _gather(design: _Design, z: np.ndarray, choice: np.ndarray) -> Iterator[np.ndarray]:
    rows = design.blocks[np.arange(design.blocks.shape[0])[None, :], choice]
    for i in range(0, len(rows), _CHUNK):
        yield z[rows[i : i + _CHUNK]]


def _ri_t(design: _Design, z: np.ndarray, masks: np.ndarray, draws: _Draws) -> np.ndarray:
    """(D, E) studentised statistics of every assignment, on outcomes `z`."""
    total = z.sum(axis=0)
    return np.concatenate(
        [_stats(design, total, zs, masks).t for zs in _gather(design, z, draws.choice)]
    )


def _shift(design: _Design, z: np.ndarray, cells: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """`z` with the treated units' cells `cells` (K, T) moved back by `delta` (K, T) on the
    log scale: the untreated outcomes under the sharp null."""
    out = z.copy()
    rows = design.treated
    if design.scale == "count":
        out[rows] = np.where(cells, z[rows] * np.exp(-delta), z[rows])
    else:
        out[rows] = np.where(cells, z[rows] - delta, z[rows])
    return out


def _null_base(design: _Design, cells: np.ndarray, effects: np.ndarray) -> np.ndarray:
    """The outcomes with the treated units' post-label cells outside `cells` (K, T) set
    back to their untreated values under the estimated cell effects `effects` (K, T): the
    nuisance part of the sharp null of a single term."""
    post = design.event() >= 0
    other = post & ~cells
    return _shift(design, design.z, other, np.where(other, effects, 0.0))


def _invert(
    design: _Design,
    term: int | None,
    theta: float,
    effects: np.ndarray,
    draws: _Draws,
    alpha: float,
) -> tuple[float, float, float]:
    """The p-value of "no effect" and the bounds (log scale) of the set of effects that the
    randomisation test does not reject, for one post-label term.

    The sharp null of an effect ``δ``: the treated units' outcomes in the term's cells,
    divided by ``exp(δ)`` (less ``δ`` on the log1p scale), are their untreated outcomes; the
    other post-label cells are set back by their estimated effects `effects`. Under it every
    assignment's outcomes are known and the test is exact. ``p(0)`` is the reported
    p-value. Each bound is found by bisection between a point the test keeps and one it
    rejects; ``θ`` (kept: ``p(θ) = 1``) and ``0`` (whose verdict ``p(0)`` is known) serve as
    brackets, so ``p(0) <= alpha`` holds exactly when 0 falls outside the interval.
    """
    ev = design.event()
    this = (ev >= 0) if term is None else ev == term
    mask = _term_masks(design, [term])
    base = _null_base(design, this, effects)

    def p_at(delta: float) -> float:
        z0 = _shift(design, base, this, np.full(this.shape, delta))
        t_obs = _stats(design, z0.sum(axis=0), z0[design.treated][None], mask).t[0]
        return float(_p_value(t_obs, _ri_t(design, z0, mask, draws), draws.exhaustive)[0])

    p0 = p_at(0.0)
    bounds = []
    for side in (-1.0, 1.0):
        inside: float = theta
        outside: float | None = None
        far = theta + side * _SEARCH
        if side * (0.0 - theta) > 0:  # 0 lies on this side of the estimate
            if p0 > alpha:
                inside = 0.0
                far = far if side * (far - inside) > 0 else side * _SEARCH
            else:
                outside = 0.0
        if outside is None:
            if p_at(far) > alpha:
                bounds.append(side * math.inf)
                continue
            outside = far
        for _ in range(_BISECT):
            mid = (inside + outside) / 2
            if p_at(mid) > alpha:
                inside = mid
            else:
                outside = mid
        bounds.append((inside + outside) / 2)
    return p0, bounds[0], bounds[1]


# ----------------------------------------------------------------------------------------
# estimators
# ----------------------------------------------------------------------------------------


def _rel(x: float) -> float:
    return -1.0 if x == -math.inf else math.inf if x == math.inf else math.expm1(x)


def _etwfe(
    design: _Design, n_draws: int, seed: int, leads: int, lags: int, alpha: float
) -> pd.DataFrame:
    ev = design.event()
    have = set(np.unique(ev).tolist())
    lead_terms = [e for e in range(-leads, 0) if e in have]
    lag_terms = [e for e in range(0, lags + 1) if e in have]
    terms: list[int | None] = [None, *lead_terms, *lag_terms]
    masks = _term_masks(design, terms)
    # the estimate is the statistic of the observed assignment; every p-value and interval
    # below is a randomisation test of that same statistic
    point = _stats(design, design.z.sum(axis=0), design.z[design.treated][None], masks, True)
    assert point.cells is not None
    effects = point.cells[design.slot_cohort]  # (K, T) estimated log effect of every cell
    effects = np.where(np.isfinite(effects), effects, 0.0)
    draws = _draws(design, n_draws, seed, alpha)
    kk = masks.any(axis=2).sum(axis=1)
    p = np.full(len(terms), np.nan)
    lo = np.full(len(terms), np.nan)
    hi = np.full(len(terms), np.nan)
    lead_idx = [terms.index(e) for e in lead_terms]
    joint_p = math.nan
    if lead_idx:
        # leads: the sharp null "no lead deviates" with every post-label cell at its
        # estimated effect; the interval is the studentised one, θ ± q·se with q the
        # randomisation critical value, which holds 0 exactly when p > alpha
        base = _null_base(design, np.zeros_like(ev, dtype=bool), effects)
        t_draws = _ri_t(design, base, masks[lead_idx], draws)
        t_obs = point.t[0, lead_idx]
        p[lead_idx] = _p_value(t_obs, t_draws, draws.exhaustive)
        q = _critical(t_draws, alpha, draws.exhaustive)
        theta, se = point.theta[0, lead_idx], point.se[0, lead_idx]
        lo[lead_idx], hi[lead_idx] = theta - q * se, theta + q * se
        joint = np.sqrt((t_draws**2).sum(axis=1))
        joint_obs = np.array([math.sqrt((t_obs**2).sum())])
        joint_p = float(_p_value(joint_obs, joint[:, None], draws.exhaustive)[0])
    for j, term in enumerate(terms):
        if j not in lead_idx:
            p[j], lo[j], hi[j] = _invert(
                design, term, float(point.theta[0, j]), effects, draws, alpha
            )
    rows = [
        {
            "estimator": LABELS["etwfe"],
            "term": "overall" if term is None else "event",
            "event_time": np.nan if term is None else float(term),
            "estimate": math.expm1(float(point.theta[0, j])),
            "ci_low": _rel(float(lo[j])),
            "ci_high": _rel(float(hi[j])),
            "p_value": float(p[j]),
            "n_treated": int(kk[j]),
            "n_control": design.n_control,
        }
        for j, term in enumerate(terms)
    ]
    if lead_idx:
        rows.append(
            {
                "estimator": LABELS["etwfe"],
                "term": "pretrend",
                "event_time": np.nan,
                "estimate": np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "p_value": joint_p,
                "n_treated": int(max(kk[i] for i in lead_idx)),
                "n_control": design.n_control,
            }
        )
    return _tidy(rows)


def _tidy(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    order = {"overall": 0, "event": 1, "pretrend": 2}
    df = df.sort_values(
        ["estimator", "term", "event_time"],
        key=lambda s: s.map(order) if s.name == "term" else s,
        kind="mergesort",
    )
    return df.astype({"n_treated": "int64", "n_control": "int64"}).reset_index(drop=True)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _sample(panel: pd.DataFrame, outcome: str, control: str) -> pd.DataFrame:
    """The checked panel restricted to treated and comparison units, with ``z = log1p``."""
    df = check_panel(panel, outcome)
    if control == "rejected":
        if "applicant" not in df.columns:
            raise ParameterError(
                "control: 'rejected' needs the panel column 'applicant' (1 = applied for the label)"
            )
        df = df[(df["first_treated"] > 0) | (df["applicant"] == 1)]
    df = df.rename(columns={outcome: "y"})[["unit", "year", "y", "first_treated"]].copy()
    df["z"] = np.log1p(df["y"])
    df["unit_code"] = pd.factorize(df["unit"])[0]
    return df.reset_index(drop=True)


def _callaway_santanna(
    panel: pd.DataFrame, outcome: str, control: str, leads: int, lags: int, alpha: float
) -> tuple[pd.DataFrame, object]:
    from diff_diff import CallawaySantAnna

    df = _sample(panel, outcome, control)
    n_treated = int(df.loc[df["first_treated"] > 0, "unit"].nunique())
    n_control = int(df.loc[df["first_treated"] == 0, "unit"].nunique())
    with _quiet():
        res = CallawaySantAnna(
            control_group="never_treated",
            estimation_method="reg",
            alpha=alpha,
            base_period="varying",
        ).fit(
            df,
            outcome="z",
            unit="unit_code",
            time="year",
            first_treat="first_treated",
            aggregate="all",
        )
    rows = [
        {
            "estimator": LABELS["callaway_santanna"],
            "term": "overall",
            "event_time": np.nan,
            "estimate": math.expm1(res.overall_att),
            "ci_low": math.expm1(res.overall_conf_int[0]),
            "ci_high": math.expm1(res.overall_conf_int[1]),
            "p_value": float(res.overall_p_value),
            "n_treated": n_treated,
            "n_control": n_control,
        }
    ]
    for e, eff in sorted(res.event_study_effects.items()):
        if not -leads <= e <= lags or not np.isfinite(eff["effect"]):
            continue
        if e < 0 and eff.get("n_groups", 1) == 0:
            continue
        lo, hi = eff["conf_int"]
        rows.append(
            {
                "estimator": LABELS["callaway_santanna"],
                "term": "event",
                "event_time": float(e),
                "estimate": math.expm1(eff["effect"]),
                "ci_low": math.expm1(lo),
                "ci_high": math.expm1(hi),
                "p_value": float(eff["p_value"]),
                "n_treated": n_treated,
                "n_control": n_control,
            }
        )
    return _tidy(rows), res


def _twfe_biased(
    panel: pd.DataFrame, outcome: str, scale: str, control: str, alpha: float
) -> pd.DataFrame:
    import pyfixest as pf

    df = _sample(panel, outcome, control)
    df["post"] = ((df["first_treated"] > 0) & (df["year"] >= df["first_treated"])).astype(float)
    with _quiet():
        if scale == "count":
            fit = pf.fepois("y ~ post | unit_code + year", data=df, vcov={"CRV1": "unit_code"})
        else:
            fit = pf.feols("z ~ post | unit_code + year", data=df, vcov={"CRV1": "unit_code"})
        tidy = fit.tidy(alpha=alpha).loc["post"]
    lo_col = next(c for c in tidy.index if str(c).startswith(f"{100 * alpha / 2:g}"))
    hi_col = next(c for c in tidy.index if str(c).startswith(f"{100 * (1 - alpha / 2):g}"))
    row = {
        "estimator": LABELS["twfe_biased"],
        "term": "overall",
        "event_time": np.nan,
        "estimate": math.expm1(tidy["Estimate"]),
        "ci_low": math.expm1(tidy[lo_col]),
        "ci_high": math.expm1(tidy[hi_col]),
        "p_value": float(tidy["Pr(>|t|)"]),
        "n_treated": int(df.loc[df["first_treated"] > 0, "unit"].nunique()),
        "n_control": int(df.loc[df["first_treated"] == 0, "unit"].nunique()),
    }
    return _tidy([row])


def estimate(
    panel: pd.DataFrame,
    *,
    outcome: str = "outcome",
    estimator: str = "etwfe",
    outcome_scale: str | None = None,
    control: str = "never",
    n_draws: int = 999,
    seed: int = 0,
    leads: int = 5,
    lags: int = 5,
    alpha: float = 0.05,
    block_size: int | None = None,
) -> pd.DataFrame:
    """The label's effect on `outcome`, as tidy rows (see the module docstring).

    Parameters
    ----------
    panel : a long panel (:func:`analysis.methods.panels.check_panel`).
    outcome : the outcome column.
    estimator : ``etwfe`` (main: Poisson extended TWFE with randomisation inference),
        ``callaway_santanna`` (cross-check, diff-diff's estimator on ``log(1 + y)`` with its
        analytic intervals) or ``twfe_biased`` (one post-label dummy with unit and year
        fixed effects, pyfixest with unit-clustered errors: biased under staggered adoption
        with dynamic effects, shown only as the baseline).
    outcome_scale : ``count`` (Poisson) or ``log1p`` (least squares on ``log(1 + y)``);
        None: ``count`` for etwfe, ``log1p`` for the others. Callaway–Sant'Anna is
        ``log1p`` only.
    control : ``never`` (never-treated units) or ``rejected`` (never-treated units with
        ``applicant = 1``).
    n_draws, seed : randomisation draws and their seed (etwfe).
    leads, lags : event times ``-leads … -1`` and ``0 … lags`` reported.
    alpha : 1 - the intervals' level; the test's level.
    block_size : comparison units per treated unit in the randomisation blocks (default
        4, fewer when the comparison group is small).

    Returns
    -------
    DataFrame with exactly the columns :data:`COLUMNS`; ``estimate``, ``ci_low`` and
    ``ci_high`` are relative changes (``exp(θ) - 1``; -1 and +inf for open interval
    sides); the ``pretrend`` row has only a p-value.

    Raises
    ------
    ParameterError
        Naming the argument when a choice is not allowed, a number is out of range, or
        callaway_santanna is asked on the count scale; naming the column when the panel
        fails :func:`analysis.methods.panels.check_panel`.
    """
    estimator = _choice(estimator, "estimator", ESTIMATORS)
    if outcome_scale is None:
        outcome_scale = "count" if estimator == "etwfe" else "log1p"
    outcome_scale = _choice(outcome_scale, "outcome_scale", SCALES)
    control = _choice(control, "control", CONTROLS)
    n_draws = _int(n_draws, "n_draws", 1)
    seed = _int(seed, "seed", 0)
    leads = _int(leads, "leads", 0)
    lags = _int(lags, "lags", 0)
    alpha = _alpha(alpha)
    if block_size is not None:
        block_size = _int(block_size, "block_size", 1)
    if estimator == "etwfe":
        design = _design(panel, outcome, outcome_scale, control, block_size)
        return _etwfe(design, n_draws, seed, leads, lags, alpha)
    if estimator == "callaway_santanna":
        if outcome_scale != "log1p":
            raise ParameterError(
                "outcome_scale: callaway_santanna is estimated on log(1 + y) only; give 'log1p'"
            )
        return _callaway_santanna(panel, outcome, control, leads, lags, alpha)[0]
    return _twfe_biased(panel, outcome, outcome_scale, control, alpha)


def compare(panel: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
    """Every estimator on the same panel, stacked: etwfe (count), etwfe on ``log(1 + y)``,
    Callaway–Sant'Anna and the biased TWFE baseline.

    Parameters
    ----------
    panel : a long panel (:func:`analysis.methods.panels.check_panel`).
    **kwargs : keyword arguments of :func:`estimate`, without ``estimator`` and
        ``outcome_scale``; ``n_draws``, ``seed`` and ``block_size`` go to etwfe only.

    Returns
    -------
    DataFrame with the columns :data:`COLUMNS`, the four estimators' rows stacked in that
    order (``estimator`` = ``etwfe (log1p)`` for the second).

    Raises
    ------
    ParameterError
        When ``estimator`` or ``outcome_scale`` is given, or as :func:`estimate`.
    """
    for bad in ("estimator", "outcome_scale"):
        if bad in kwargs:
            raise ParameterError(f"{bad}: compare() runs every estimator; do not give {bad}")
    main = estimate(panel, estimator="etwfe", outcome_scale="count", **kwargs)  # type: ignore[arg-type]
    logs = estimate(panel, estimator="etwfe", outcome_scale="log1p", **kwargs)  # type: ignore[arg-type]
    logs["estimator"] = "etwfe (log1p)"
    rest = {k: v for k, v in kwargs.items() if k not in ("n_draws", "seed", "block_size")}
    cs = estimate(panel, estimator="callaway_santanna", **rest)  # type: ignore[arg-type]
    tw = estimate(panel, estimator="twfe_biased", **rest)  # type: ignore[arg-type]
    return pd.concat([main, logs, cs, tw], ignore_index=True)[COLUMNS]


def sensitivity(
    panel: pd.DataFrame,
    *,
    outcome: str = "outcome",
    control: str = "never",
    m_values: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """How large a violation of parallel trends would overturn the result.

    Relative-magnitudes bounds (Rambachan & Roth 2023, ``Δ^RM(M)``): the post-label
    violation of parallel trends may be up to ``M`` times the largest violation between
    consecutive pre-label periods. Computed by diff-diff's ``HonestDiD`` on the
    Callaway–Sant'Anna event study on ``log(1 + y)`` (it needs the event study's covariance
    matrix), for the average post-label effect.

    Parameters
    ----------
    panel : a long panel (:func:`analysis.methods.panels.check_panel`).
    outcome : the outcome column.
    control : ``never`` (never-treated units) or ``rejected`` (never-treated units with
        ``applicant = 1``).
    m_values : the bounds ``M`` tried, each >= 0.
    alpha : 1 - the intervals' level.

    Returns
    -------
    Columns ``M, ci_low, ci_high, breakdown_m``: the robust interval of the average effect
    as relative changes for each ``M``, and the breakdown value (the smallest ``M`` whose
    interval contains 0; NaN when none of the tried values reaches it, inf when the
    bound never includes 0).

    Raises
    ------
    ParameterError
        When `control`, `alpha` or `m_values` is invalid, or the panel fails its checks.
    """
    from diff_diff import HonestDiD

    control = _choice(control, "control", CONTROLS)
    alpha = _alpha(alpha)
    if not m_values or any(
        isinstance(m, bool) or not isinstance(m, int | float) or m < 0 for m in m_values
    ):
        raise ParameterError(f"m_values: expected numbers >= 0, got {m_values!r}")
    _, res = _callaway_santanna(panel, outcome, control, 100, 100, alpha)
    rows = []
    with _quiet():
        hd = HonestDiD(method="relative_magnitude", alpha=alpha)
        for m in m_values:
            r = hd.fit(res, M=float(m))
            rows.append({"M": float(m), "ci_low": r.ci_lb, "ci_high": r.ci_ub})
        try:
            breakdown = float(hd.breakdown_value(res))
        except Exception:  # noqa: BLE001 - the library signals "none found" by raising
            breakdown = math.nan
    out = pd.DataFrame(rows)
    out["ci_low"] = np.expm1(out["ci_low"].astype(float))
    out["ci_high"] = np.expm1(out["ci_high"].astype(float))
    out["breakdown_m"] = breakdown
    return out


def minimum_detectable_effect(
    panel: pd.DataFrame,
    *,
    outcome: str = "outcome",
    control: str = "never",
    power: float = 0.8,
    alpha: float = 0.05,
    n_sims: int = 100,
    n_draws: int = 199,
    effects: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5),
    seed: int = 0,
) -> pd.DataFrame:
    """The smallest effect the etwfe test detects with probability `power`, by simulation.

    Each simulated panel keeps the real panel's units, years and cohorts, and draws
    counts from a Poisson-lognormal model fitted to the panel's own comparison units
    (:func:`_fit_noise`): unit means, year effects and an AR(1) log noise with the panel's
    variance and persistence. The label multiplies the treated post-label means by
    ``1 + effect``; power is the share of panels whose overall randomisation p-value is
    below `alpha`. The MDE is interpolated linearly between the tried effects:
    ``mde = e_{j-1} + (power - p_{j-1}) (e_j - e_{j-1}) / (p_j - p_{j-1})`` at the first
    tried effect ``e_j`` whose power ``p_j`` reaches `power`.

    Parameters
    ----------
    panel : a long panel (:func:`analysis.methods.panels.check_panel`).
    outcome : the outcome column.
    control : ``rejected`` (comparison units with ``applicant = 1``) or ``never``.
    power : the power to reach, in (0, 1).
    alpha : the level of the randomisation test.
    n_sims : simulated panels per effect (>= 2).
    n_draws : randomisation draws per simulated panel.
    effects : the relative effects tried (0.1 = +10 %), in increasing order.
    seed : seed of the simulation and of each panel's draws.

    Returns
    -------
    Columns ``effect, power, n_sims`` (one row per tried effect) and, in
    ``attrs["mde"]``, the minimum detectable effect (NaN if no tried effect reaches `power`).

    Raises
    ------
    ParameterError
        When `power` or `n_sims` is out of range, `control` is not ``never`` or
        ``rejected``, ``control='rejected'`` lacks the column ``applicant``, or the panel fails
        its checks.
    """
    if not 0 < power < 1:
        raise ParameterError(f"power: expected a number between 0 and 1, got {power!r}")
    n_sims = _int(n_sims, "n_sims", 2)
    control = _choice(control, "control", CONTROLS)
    arr = to_arrays(panel, outcome)
    if control == "rejected":
        if arr.applicant is None:
            raise ParameterError("control: 'rejected' needs the panel column 'applicant'")
        keep = (arr.first_treated > 0) | arr.applicant
    else:
        keep = np.ones(len(arr.units), bool)
    y, first, years = arr.y[keep], arr.first_treated[keep], arr.years
    noise = _fit_noise(y, first, years)
    rng = np.random.default_rng(seed)
    rows = []
    for eff in effects:
        rejections = 0
        for i in range(n_sims):
            sim = _simulate_like(noise, first, years, eff, rng)
            res = estimate(sim, n_draws=n_draws, seed=seed + i, leads=0, lags=0, alpha=alpha).query(
                "term == 'overall'"
            )
            rejections += int(res["p_value"].iloc[0] <= alpha)
        rows.append({"effect": float(eff), "power": rejections / n_sims, "n_sims": n_sims})
    out = pd.DataFrame(rows)
    out.attrs["mde"] = _interpolate_mde(out, power)
    return out


def _interpolate_mde(table: pd.DataFrame, power: float) -> float:
    e, p = table["effect"].to_numpy(), table["power"].to_numpy()
    above = np.flatnonzero(p >= power)
    if len(above) == 0:
        return math.nan
    j = above[0]
    if j == 0:
        return float(e[0])
    return float(e[j - 1] + (power - p[j - 1]) * (e[j] - e[j - 1]) / (p[j] - p[j - 1]))


@dataclass(frozen=True)
class _Noise:
    log_mean: np.ndarray  # (N,) unit log means
    year: np.ndarray  # (T,) year effects
    sigma2: float
    rho: float


def _fit_noise(y: np.ndarray, first: np.ndarray, years: np.ndarray) -> _Noise:
    """Unit and year effects and the AR(1) log noise of the comparison units' counts.

    The extra-Poisson variance of log counts is estimated by moments: for cells with a
    mean above 5, ``Var(log y) ≈ σ² + 1/μ``; ρ is the first-order autocorrelation of the
    residuals ``log y - unit - year``.
    """
    ctrl = y[first == 0]
    unit_tot = y.sum(axis=1)
    year_eff = np.log(ctrl.sum(axis=0) / ctrl.sum(axis=0).mean())
    log_mean = np.log(np.maximum(unit_tot, 0.5) / np.exp(year_eff).sum())
    mu = np.exp(log_mean[first == 0][:, None] + year_eff[None, :])
    big = (mu > 5).all(axis=1)
    if big.sum() < 5:
        return _Noise(log_mean, year_eff, 0.0, 0.0)
    r = np.log(np.maximum(ctrl[big], 0.5)) - np.log(mu[big])
    r = r - r.mean(axis=1, keepdims=True)
    t = r.shape[1]
    sigma2 = max(float((r**2).sum() / (r.size - len(r) - t) - (1 / mu[big]).mean()), 0.0)
    rho = float((r[:, 1:] * r[:, :-1]).sum() / (r**2).sum()) if sigma2 > 0 else 0.0
    return _Noise(log_mean, year_eff, sigma2, min(max(rho, 0.0), 0.95))


def _simulate_like(
    noise: _Noise, first: np.ndarray, years: np.ndarray, effect: float, rng: np.random.Generator
) -> pd.DataFrame:
    n, t = len(first), len(years)
    u = np.empty((n, t))
    u[:, 0] = rng.normal(0, math.sqrt(noise.sigma2), n)
    innov = math.sqrt((1 - noise.rho**2) * noise.sigma2)
    for j in range(1, t):
        u[:, j] = noise.rho * u[:, j - 1] + rng.normal(0, innov, n)
    d = (first[:, None] > 0) & (years[None, :] >= first[:, None])
    mu = np.exp(noise.log_mean[:, None] + noise.year[None, :] + u + math.log1p(effect) * d)
    y = rng.poisson(mu)
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n), t),
            "year": np.tile(years, n),
            "outcome": y.ravel(),
            "first_treated": np.repeat(first, t),
        }
    )
