"""Count models: statsmodels fits returned as tidy frames with intervals.

Two questions about counts (start-ups, implantation projects, jobs) are answered here, each
with a model for counts rather than a ratio of two numbers:

* :func:`fit_trend` — how fast does one territory's count grow? A log-linear Poisson trend,
  ``log E[y_t] = b0 + b1 (t - t̄)``, refitted as a negative binomial (NB2) when the counts
  are overdispersed; growth ``exp(b1) - 1`` with its interval, and a projection with a
  confidence interval for the mean and a simulated prediction interval for the count.
* :func:`fit_size_adjusted` — which territory has more than its size predicts? A Poisson
  (or NB2) model with ``log(population)`` as offset, ``log μ_i = b0 + log(pop_i)``; each
  territory's observed / expected ratio with an exact interval that accounts for the noise
  of its own count, and a rank.

Every function returns a frozen dataclass holding tidy ``pandas`` frames (each row with its
``source_ids``), the chosen model's name, and the statsmodels results objects, so that
``result.summary()`` stays one attribute away.

Conventions
-----------
* Poisson standard errors depend on the function:

  - :func:`fit_trend` (one territory, a handful of years) uses the model-based covariance,
    the inverse Fisher information ``(XᵀWX)⁻¹`` with ``W = diag(μ̂)`` (statsmodels'
    ``cov_type="nonrobust"``), whenever the Cameron-Trivedi test keeps Poisson; when the
    test rejects, NB2 and its own model-based covariance are used instead. HC1 is not used
    here: the sandwich estimates the variance from as many squared residuals as there are
    years, and with 4 to 12 years it is biased down and noisy. In a simulation with a true
    Poisson trend the nominal 95 % growth-rate interval covered the truth in 75 / 88 / 90 %
    of series of 4 / 8 / 12 years with HC1, 95 / 95 / 95 % with the model-based covariance
    (details and the cost under mild overdispersion in :func:`fit_trend`).
  - :func:`fit_size_adjusted` (a cross-section of territories) uses heteroskedasticity-
    robust standard errors (HC1 = HC0 · n / (n - k)): Poisson pseudo-maximum likelihood
    (PPML) is consistent for the mean whenever the mean is correctly specified, whatever
    the variance, but its model-based standard errors are not (Santos Silva & Tenreyro
    2006). With few territories these intervals are too narrow too (see its docstring).
    statsmodels' ``cov_type="HC1"`` for GLM is in fact HC0 (statsmodels issue #7798), so
    HC0 is requested with ``scaling_factor = n / (n - k)``.
* NB2 fits (``Var y = μ + α μ²``) use ``statsmodels.discrete.discrete_model.NegativeBinomial``
  with ``loglike_method="nb2"``; α is estimated by maximum likelihood, never fixed at 1, and
  the standard errors are the model-based (inverse Hessian) ones.
* Intervals for parameters and expected counts are Wald intervals at level ``1 - alpha`` on
  the log scale (linear predictor), transformed back, with z = Φ⁻¹(1 - alpha / 2); the
  intervals of a single count (prediction interval, observed / expected ratio) come from
  the count distribution itself (simulation, exact inversion).
* statsmodels' expected warnings (convergence, Hessian inversion, overflow while the
  optimiser searches) are silenced; a fit that did not converge, or whose covariance is not
  finite, raises :class:`ModelFitError` instead.

References
----------
Cameron, A. C. & Trivedi, P. K. (1990). Regression-based tests for overdispersion in the
Poisson model. *Journal of Econometrics* 46(3), 347-364.
Cameron, A. C. & Trivedi, P. K. (2013). *Regression Analysis of Count Data*, 2nd ed.,
Cambridge University Press (ch. 3: Poisson, NB2, overdispersion tests and the boundary
likelihood-ratio test).
Santos Silva, J. M. C. & Tenreyro, S. (2006). The log of gravity. *Review of Economics and
Statistics* 88(4), 641-658.
Garwood, F. (1936). Fiducial limits for the Poisson distribution. *Biometrika* 28, 437-442.
Spiegelhalter, D. J. (2005). Funnel plots for comparing institutional performance.
*Statistics in Medicine* 24, 1185-1202.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import special, stats
from statsmodels.discrete.discrete_model import NegativeBinomial
from statsmodels.tools import sm_exceptions

from analysis.core.errors import AnalysisError, InsufficientDataError, ParameterError
from analysis.core.tidy import TIDY, as_tidy, join_sources, single_unit

__all__ = [
    "NEGATIVE_BINOMIAL",
    "POISSON",
    "ModelFitError",
    "SizeAdjustedResult",
    "TrendResult",
    "fit_size_adjusted",
    "fit_trend",
]

POISSON = "poisson"
NEGATIVE_BINOMIAL = "negative_binomial"
PER = 100_000  # rates are reported per 100,000 inhabitants

#: Iteration limits: IRLS (Poisson) and BFGS (NB2); Newton steps that finish an NB2 fit.
_MAXITER = 1000
_NEWTON_MAXITER = 100
#: Below this α an NB2 interval is computed as a Poisson one (numerically identical).
_ALPHA_POISSON_LIMIT = 1e-8
#: An NB2 fit stopped with α̂ · max(y) below this is at the boundary α = 0 (see _fit_nb2).
_BOUNDARY_EXCESS = 1e-4
#: Projection draws whose mean exceeds this are refused (numpy's Poisson sampler overflows).
_MAX_SIMULATED_MEAN = 1e15

_EXPECTED_WARNINGS: tuple[type[Warning], ...] = (
    sm_exceptions.ConvergenceWarning,
    sm_exceptions.HessianInversionWarning,
    sm_exceptions.PerfectSeparationWarning,
    RuntimeWarning,  # overflow / invalid values while the optimiser explores
)

_TIDY_REQUIRED = ("territory_id", "indicator", "year", "value", "unit")
_POPULATION_REQUIRED = ("territory_id", "census_year", "population_municipale", "source_id")


class ModelFitError(AnalysisError):
    """A statsmodels fit did not converge or returned a covariance that is not usable."""


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TrendResult:
    """Result of :func:`fit_trend`.

    estimates
        ``territory_id, indicator, term, estimate, ci_low, ci_high, unit, model, source_ids``;
        terms ``growth_rate`` (percent per year), ``intercept`` (log expected count at the
        mean year) and ``slope`` (log change per year).
    projection
        ``territory_id, indicator, year, mean, ci_low, ci_high, pi_low, pi_high, unit, model,
        source_ids``: one row per projected year; ``ci_*`` bound the expected count,
        ``pi_*`` the count itself.
    fitted
        ``year, observed, fitted`` for the observed years (fitted = the chosen model's mean).
    overdispersion
        ``test, statistic, p_value, df, alpha_aux, pearson_chi2_df, alpha_nb, alpha_nb_ci_low,
        alpha_nb_ci_high, nb_at_boundary``: the Cameron-Trivedi statistic and its one-sided
        p-value, its auxiliary estimate of α, the Pearson χ²/df of the Poisson fit and, when
        the test rejected, the NB2 α with its interval (``None`` otherwise). When the NB2
        maximum lies at α = 0 (``nb_at_boundary``), NB2 is the Poisson model: ``alpha_nb``
        is 0 and the Poisson fit is kept.
    model
        ``"poisson"`` or ``"negative_binomial"``.
    result
        The chosen model's statsmodels results (``result.summary()``), carrying the
        covariance every interval uses: Poisson model-based (``cov_type == "nonrobust"``),
        or NB2 model-based (inverse Hessian).
    poisson_result
        The Poisson fit, with its model-based covariance (the same object as `result` when
        Poisson is chosen).
    """

    estimates: pd.DataFrame
    projection: pd.DataFrame
    fitted: pd.DataFrame
    overdispersion: dict[str, Any]
    model: str
    result: Any
    poisson_result: Any

    def summary(self) -> Any:
        """The statsmodels summary of the chosen model."""
        return self.result.summary()


@dataclass(frozen=True)
class SizeAdjustedResult:
    """Result of :func:`fit_size_adjusted`.

    performance
        ``territory_id, indicator, year, observed, expected, ratio, ratio_low, ratio_high,
        rank, model, source_ids``, sorted by rank then territory.
    rate
        ``indicator, model, chosen, estimate, ci_low, ci_high, unit, source_ids``: the common
        rate ``exp(b0)`` per 100,000 inhabitants under each model (two rows).
    alpha_nb, alpha_nb_ci
        NB2 dispersion α and its (1 - alpha) interval (Wald on log α).
    lr_test
        ``statistic, df, p_value, boundary_corrected, alpha_at_boundary``: LR test of α = 0
        (NB2 vs Poisson). At the boundary (α̂ = 0) α is reported as 0, its interval as NaN.
    model
        The chosen model, ``"poisson"`` or ``"negative_binomial"``.
    census_year
        The census vintage of the population denominators.
    poisson_result, nb_result
        The statsmodels results of both fits (``.summary()``).
    """

    performance: pd.DataFrame
    rate: pd.DataFrame
    alpha_nb: float
    alpha_nb_ci: tuple[float, float]
    lr_test: dict[str, Any]
    model: str
    census_year: int
    poisson_result: Any
    nb_result: Any

    @property
    def result(self) -> Any:
        """The chosen model's statsmodels results."""
        return self.nb_result if self.model == NEGATIVE_BINOMIAL else self.poisson_result

    def summary(self) -> Any:
        """The statsmodels summary of the chosen model."""
        return self.result.summary()

    def tidy(self) -> pd.DataFrame:
        """The observed / expected ratios in the :data:`~analysis.metrics.TIDY` layout.

        Indicator ``<indicator>_observed_to_expected``, unit ``ratio``; rows sorted by
        territory.
        """
        p = self.performance
        out = pd.DataFrame(
            {
                "territory_id": p["territory_id"],
                "indicator": p["indicator"] + "_observed_to_expected",
                "year": p["year"],
                "value": p["ratio"],
                "unit": "ratio",
                "source_ids": p["source_ids"],
            }
        )
        return out[TIDY].sort_values("territory_id").reset_index(drop=True)


# ----------------------------------------------------------------------------- trend


def fit_trend(
    series: pd.DataFrame,
    alpha: float = 0.05,
    horizon: int = 2,
    seed: int = 0,
    n_sim: int = 4000,
) -> TrendResult:
    """Log-linear trend of one count series, with growth rate and projection.

    Model (Cameron & Trivedi 2013, ch. 3)::

        y_t ~ Poisson(μ_t)  or  NB2(μ_t, α)   (Var y_t = μ_t + α μ_t²)
        log μ_t = b0 + b1 (t - t̄)

    where ``t`` is the calendar year (gaps allowed: the actual year is the regressor) and
    ``t̄`` the mean observed year, so ``b0`` is the log expected count at ``t̄``.

    1. Poisson GLM (log link) with model-based standard errors: the inverse Fisher
       information ``V = (XᵀWX)⁻¹``, ``W = diag(μ̂)`` (not HC1: see "Standard errors").
    2. Overdispersion test of Cameron & Trivedi (1990) against NB2: the auxiliary OLS
       regression without intercept ``((y - μ̂)² - y) / μ̂ = α μ̂ + u``; the statistic is the
       t-ratio of α, one-sided (H1: α > 0), with a Student-t p-value on n - 1 df (the
       asymptotic distribution is N(0, 1); the t is more cautious for a few years). The
       Pearson χ²/df of the Poisson fit is reported alongside.
    3. If the test rejects at `alpha`, NB2 is fitted by maximum likelihood with α estimated
       (``NegativeBinomial(loglike_method="nb2")``) and becomes the chosen model (unless
       its maximum is at α = 0, where NB2 is the Poisson model and Poisson is kept).

    Growth rate: ``100 (exp(b1) - 1)`` percent per year, its interval ``100 (exp(b1 ± z
    se) - 1)``.

    Projection for the `horizon` years after the last observed year: the mean ``exp(x'b)``
    with the interval ``exp(x'b ± z se(x'b))``; the prediction interval for the count is
    simulated with ``np.random.default_rng(seed)``: `n_sim` coefficient vectors are drawn
    from their asymptotic normal ``N(b, V)``, then one count per draw from Poisson(μ*) or
    NB2(μ*, α̂) at the drawn mean μ*; the interval is the empirical ``alpha / 2`` and
    ``1 - alpha / 2`` quantiles (``inverted_cdf``, so its bounds are counts). α is held at
    its estimate (its sampling error is not propagated). The same seed gives the same
    frames.

    Standard errors: every interval (growth rate, intercept, slope, projected mean, and the
    coefficient draws of the prediction interval) uses the chosen model's model-based
    covariance: Poisson's ``(XᵀWX)⁻¹`` when the overdispersion test does not reject, NB2's
    inverse Hessian when it does; `result` and `poisson_result` carry that covariance, so
    ``summary()`` shows it. HC1 robust standard errors are not used for the Poisson
    intervals: they are far too narrow for a short series (HC1 estimates the
    variance from one squared residual per year: the series 10, 20, 40 lies on an exact
    exponential and gets a growth interval of [100 %, 100 %]). Simulation (a throwaway
    script: 1000 series per length, ``y_t ~ Poisson(40 · 1.08^t)``, the whole procedure,
    test and NB2 switch included, horizon 2; percent of series whose nominal 95 % interval
    covered the truth)::

        years                                        4      8     12
        growth rate, model-based                      95.3   94.9   95.3
        growth rate, HC1                              75.1   87.5   90.1
        projected mean (1st year), model-based        95.5   95.6   95.1
        projected mean (1st year), HC1                74.3   85.8   87.6
        prediction interval (1st year), model-based   94.6   96.0   94.4
        prediction interval (1st year), HC1           88.9   95.2   94.2

    (2nd projected year, model-based: 95.3-95.5 % for the mean, 95.4-95.9 % for the prediction
    interval; Poisson was kept in 99.6-99.7 % of series.)

    The price: the Poisson covariance assumes ``Var y = μ``, and with a few years the
    Cameron-Trivedi test has little power, so mild overdispersion that it does not detect
    makes the intervals too narrow. With NB2 data (same trend) of α = 0.02
    (variance 1.8-2.9 times the mean) the growth-rate interval covered the truth in
    84 / 83 / 83 % of series of 4 / 8 / 12 years (HC1: 74 / 85 / 87 %), with α = 0.05
    (3-5.7 times the mean) in 75 / 75 / 82 % (HC1: 74 / 85 / 89 %). A Pearson χ²/df
    (``overdispersion["pearson_chi2_df"]``) well above 1 with Poisson kept is the sign
    that the intervals are too narrow.

    Parameters
    ----------
    series
        Tidy frame (``territory_id, indicator, year, value, unit, source_id[s]``) of one
        territory and one indicator: whole counts >= 0, one row per year, >= 3 years.
    alpha
        1 - confidence level of every interval, and the level of the overdispersion test.
    horizon
        Number of years to project after the last observed year (0 for none).
    seed, n_sim
        Seed of the simulation and number of draws (>= 100).

    Returns
    -------
    TrendResult
        Estimates, projection, overdispersion test and the fitted results (see
        :class:`TrendResult`).

    Raises
    ------
    ParameterError
        A missing column, a NaN (naming the column), several territories, indicators or
        units, a duplicated year, a value that is not a whole count >= 0, a bad argument.
    InsufficientDataError
        Fewer than 3 years, all counts 0, or counts in only the first or the last year
        (the trend would be infinite).
    ModelFitError
        A fit did not converge.
    """
    what = "fit_trend"
    _check_alpha(alpha)
    _check_int("horizon", horizon, minimum=0)
    _check_int("seed", seed, minimum=0)
    _check_int("n_sim", n_sim, minimum=100)

    s = _tidy_counts(series, what)
    keys = s[["territory_id", "indicator"]].drop_duplicates()
    if len(keys) != 1:
        pairs = ", ".join(f"{t}/{i}" for t, i in keys.itertuples(index=False))
        raise ParameterError(
            f"{what}: expected one territory and one indicator, got {len(keys)} ({pairs}); "
            "select one series first"
        )
    unit = single_unit(s, what)
    if s["year"].duplicated().any():
        dup = sorted(set(s.loc[s["year"].duplicated(), "year"]))
        raise ParameterError(
            f"{what}: several values for year(s) {', '.join(map(str, dup))}; one value per year allowed"
        )
    s = s.sort_values("year").reset_index(drop=True)
    territory, indicator = keys.iloc[0]["territory_id"], keys.iloc[0]["indicator"]
    years = s["year"].to_numpy(dtype=np.int64)
    y = s["value"].to_numpy(dtype=float)
    if len(s) < 3:
        raise InsufficientDataError(
            f"{what}: a trend needs at least 3 years; got {len(s)} "
            f"(years {', '.join(map(str, years)) or 'none'}) for {territory}/{indicator}"
        )
    if y.sum() == 0:
        raise InsufficientDataError(
            f"{what}: every count of {territory}/{indicator} is 0; a log-linear trend needs "
            "at least one positive count"
        )
    positive_years = set(years[y > 0].tolist())
    if positive_years in ({int(years[0])}, {int(years[-1])}):
        raise InsufficientDataError(
            f"{what}: {territory}/{indicator} has a positive count only in "
            f"{next(iter(positive_years))}, the first or last year, so the growth rate is "
            "infinite; a trend needs positive counts in two years or in an inner year"
        )
    sources = join_sources(s["source_ids"])

    t_mean = float(years.mean())
    X = pd.DataFrame({"intercept": 1.0, "year_centred": years - t_mean})
    endog = pd.Series(y, name=indicator)
    label = f"{what} ({territory}/{indicator})"

    # model-based covariance: HC1 intervals of a short series are far too narrow (docstring)
    pois = _fit_poisson(endog, X, exposure=None, label=label, robust=False)
    mu_p = np.exp(X.to_numpy() @ pois.params.to_numpy())
    od = _cameron_trivedi(y, mu_p)
    od["pearson_chi2_df"] = float(pois.pearson_chi2 / pois.df_resid)

    a_hat = None
    result, model = pois, POISSON
    od.update(alpha_nb=None, alpha_nb_ci_low=None, alpha_nb_ci_high=None, nb_at_boundary=False)
    if od["p_value"] < alpha:
        start_alpha = od["alpha_aux"] if od["alpha_aux"] > 0 else 0.1
        nb, at_boundary = _fit_nb2(
            endog, X, exposure=None, start=[*pois.params, start_alpha], label=label
        )
        if at_boundary:  # the NB2 maximum is the Poisson model: keep the Poisson fit
            od.update(alpha_nb=0.0, nb_at_boundary=True)
        else:
            result, model = nb, NEGATIVE_BINOMIAL
            a_hat = float(nb.params["alpha"])
            lo, hi = _alpha_interval(nb, alpha)
            od.update(alpha_nb=a_hat, alpha_nb_ci_low=lo, alpha_nb_ci_high=hi)

    names = ["intercept", "year_centred"]
    b = result.params[names].to_numpy(dtype=float)
    V = result.cov_params().loc[names, names].to_numpy(dtype=float)
    _check_covariance(b, V, model, label)
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    se = np.sqrt(np.diag(V))

    def row(term: str, est: float, lo: float, hi: float, u: str) -> dict[str, Any]:
        return {
            "territory_id": territory,
            "indicator": indicator,
            "term": term,
            "estimate": est,
            "ci_low": lo,
            "ci_high": hi,
            "unit": u,
            "model": model,
            "source_ids": sources,
        }

    growth = 100.0 * np.expm1(np.array([b[1], b[1] - z * se[1], b[1] + z * se[1]]))
    estimates = pd.DataFrame(
        [
            row("growth_rate", *growth, "percent per year"),
            row(
                "intercept",
                b[0],
                b[0] - z * se[0],
                b[0] + z * se[0],
                f"log {unit} (expected, at year {t_mean:g})",
            ),
            row("slope", b[1], b[1] - z * se[1], b[1] + z * se[1], "log change per year"),
        ]
    )

    fitted = pd.DataFrame(
        {"year": years, "observed": y.astype(np.int64), "fitted": np.exp(X.to_numpy() @ b)},
    )

    projection = _project(b, V, a_hat, years, t_mean, horizon, alpha, seed, n_sim, label).assign(
        territory_id=territory,
        indicator=indicator,
        unit=unit,
        model=model,
        source_ids=sources,
    )[
        [
            "territory_id",
            "indicator",
            "year",
            "mean",
            "ci_low",
            "ci_high",
            "pi_low",
            "pi_high",
            "unit",
            "model",
            "source_ids",
        ]
    ]

    return TrendResult(
        estimates=estimates,
        projection=projection,
        fitted=fitted,
        overdispersion=od,
        model=model,
        result=result,
        poisson_result=pois,
    )


def _cameron_trivedi(y: np.ndarray, mu: np.ndarray) -> dict[str, Any]:
    """Cameron & Trivedi (1990) auxiliary-regression test of Poisson against NB2 (one-sided)."""
    aux_y = ((y - mu) ** 2 - y) / mu
    with _quiet():
        aux = sm.OLS(aux_y, mu[:, None]).fit()
    stat = float(aux.tvalues[0])
    df = int(aux.df_resid)
    if math.isnan(stat):  # a perfect fit: no evidence of overdispersion
        stat, p = 0.0, 1.0
    else:
        p = float(stats.t.sf(stat, df))
    return {
        "test": "Cameron-Trivedi (1990) auxiliary OLS, H1: NB2 overdispersion (one-sided)",
        "statistic": stat,
        "p_value": p,
        "df": df,
        "alpha_aux": float(aux.params[0]),
    }


def _project(
    b: np.ndarray,
    V: np.ndarray,
    a_hat: float | None,
    years: np.ndarray,
    t_mean: float,
    horizon: int,
    alpha: float,
    seed: int,
    n_sim: int,
    label: str,
) -> pd.DataFrame:
    """Projected mean with its CI (on the linear predictor) and the simulated PI."""
    new_years = np.arange(years[-1] + 1, years[-1] + 1 + horizon, dtype=np.int64)
    Xn = np.column_stack([np.ones(horizon), new_years - t_mean])
    eta = Xn @ b
    se = np.sqrt(np.einsum("ij,jk,ik->i", Xn, V, Xn))
    z = stats.norm.ppf(1.0 - alpha / 2.0)

    rng = np.random.default_rng(seed)
    coefs = rng.multivariate_normal(b, V, size=n_sim)
    with np.errstate(over="ignore"):
        mu = np.exp(coefs @ Xn.T)  # (n_sim, horizon)
    if horizon and not (np.isfinite(mu).all() and mu.max() <= _MAX_SIMULATED_MEAN):
        raise ModelFitError(
            f"{label}: the projected mean overflows in the simulation (the slope is too "
            "uncertain to project); use a longer series, or horizon=0 for the estimates alone"
        )
    if a_hat is None:
        draws = rng.poisson(mu)
    else:
        n = 1.0 / a_hat
        draws = rng.negative_binomial(n, n / (n + mu))
    lo = np.quantile(draws, alpha / 2.0, axis=0, method="inverted_cdf")
    hi = np.quantile(draws, 1.0 - alpha / 2.0, axis=0, method="inverted_cdf")
    return pd.DataFrame(
        {
            "year": new_years,
            "mean": np.exp(eta),
            "ci_low": np.exp(eta - z * se),
            "ci_high": np.exp(eta + z * se),
            "pi_low": lo.astype(np.int64),
            "pi_high": hi.astype(np.int64),
        }
    )


# ----------------------------------------------------------------------------- size-adjusted


def fit_size_adjusted(
    counts: pd.DataFrame, population: pd.DataFrame, alpha: float = 0.05
) -> SizeAdjustedResult:
    """Observed / size-expected counts across territories, with exact intervals and ranks.

    Model (Cameron & Trivedi 2013, §3.2-3.4), one row per territory i::

        y_i ~ Poisson(μ_i)  or  NB2(μ_i, α)   (Var y_i = μ_i + α μ_i²)
        log μ_i = b0 + log(pop_i)             (population as offset / exposure)

    so ``exp(b0)`` is the rate per inhabitant common to all territories. Under Poisson its
    MLE is ``Σ y / Σ pop`` (the pooled rate); its interval uses HC1 robust standard errors
    (PPML; see "Few territories" below).
    NB2 is fitted by maximum likelihood with α estimated. NB2 is chosen when the
    likelihood-ratio test of α = 0 rejects at `alpha`: ``LR = 2 (llf_NB2 - llf_Poisson)``;
    as α = 0 lies on the boundary, LR follows ½χ²(0) + ½χ²(1) under the null, so the
    p-value is half the χ²(1) one (Cameron & Trivedi 2013, §3.4; 1 when LR = 0).

    Few territories: the HC1 rate interval (kept here, unlike in :func:`fit_trend`) is too
    narrow when there are few territories, the more so as one territory dominates the
    total (the sandwich shrinks the residuals of high-leverage territories). In a
    simulation with Poisson counts at 40 per 100,000 over the 2023 populations of the
    capitals (1000 draws, nominal 95 %), the Poisson rate interval covered the true rate
    in 60 % of draws for 3 territories (the smallest, the median and the largest capital:
    expected counts 86 to 2857), 76 % for 5, 83 % for 8 and 89 % for all 13. Read the rate
    interval of a handful of territories as a lower bound on the uncertainty. The
    observed / expected intervals below do not use it.

    For each territory: ``expected = exp(b0) · pop`` (b0 of the chosen model), ``ratio =
    observed / expected``, and ``[ratio_low, ratio_high]``: an exact (1 - alpha) interval
    for ``μ_i / expected``, where μ_i is the territory's own mean, obtained by inverting the
    distribution of its count at the observed value (``expected`` taken as known, α at its
    estimate):

    * Poisson (Garwood 1936): ``μ_low = χ²(alpha/2; 2y) / 2``, ``μ_high = χ²(1 - alpha/2;
      2y + 2) / 2``.
    * NB2: μ_low and μ_high solve ``P(Y >= y; μ_low, α) = alpha / 2`` and ``P(Y <= y;
      μ_high, α) = alpha / 2``, in closed form through the inverse regularized incomplete
      beta function (``P(Y <= k) = I_p(1/α, k + 1)``, ``p = 1 / (1 + α μ)``).

    The interval excludes 1 exactly when the count lies outside the (1 - alpha) control
    limits of a funnel plot around the size-predicted count (Spiegelhalter 2005); under
    NB2 the limits allow for the typical between-territory spread, so only territories
    that stand out beyond it are flagged.

    Why this answers "which capital has more start-ups than its size predicts" better than
    per-capita ranks: a per-capita rate divides a count by a population and
    forgets that the count is noisy: a small territory with 3 start-ups instead of the 1.5
    its size predicts doubles its rate by chance alone, whereas a large one cannot move its
    rate as much. Raw per-capita ranks therefore put the smallest territories at both ends
    of the table. Here each ratio carries the width that its count's noise implies (wide
    for small expected counts, narrow for large ones), so "has more start-ups than its size
    predicts" means a ratio whose interval lies above 1, not a high rank that a couple of
    start-ups could undo. The ranks are still those of the raw ratios; read them with the
    intervals.

    Parameters
    ----------
    counts
        Tidy frame of one indicator and unit: whole counts >= 0, one row per territory (the
        year may differ between territories), at least 3 territories.
    population
        ``territory_id, census_year, population_municipale, source_id`` for one census year
        (e.g. :func:`analysis.data.datasets.load_territory_population`).
    alpha
        1 - confidence level, and the level of the LR test.

    Returns
    -------
    SizeAdjustedResult
        Observed / expected per territory with exact intervals and ranks, the common rate
        under both models and the LR test (see :class:`SizeAdjustedResult`).

    Raises
    ------
    ParameterError
        A missing column or a NaN (naming the column), several indicators or units, a
        territory with two rows, a value that is not a whole count >= 0, several census
        years (mixed vintages), a population <= 0 (naming the territory).
    InsufficientDataError
        Fewer than 3 territories, all counts 0, or territories with no population.
    ModelFitError
        A fit did not converge.
    """
    what = "fit_size_adjusted"
    _check_alpha(alpha)
    c = _tidy_counts(counts, f"{what} (counts)")
    indicators = sorted(c["indicator"].unique())
    if len(indicators) != 1:
        raise ParameterError(
            f"{what}: counts hold several indicators {indicators}; one indicator allowed"
        )
    indicator = indicators[0]
    unit = single_unit(c, what)
    if c["territory_id"].duplicated().any():
        t = c.loc[c["territory_id"].duplicated(), "territory_id"].iloc[0]
        yrs = ", ".join(map(str, c.loc[c["territory_id"] == t, "year"]))
        raise ParameterError(
            f"{what}: {t} has several rows (years {yrs}); one row per territory allowed, "
            "select one year"
        )
    if len(c) < 3:
        raise InsufficientDataError(
            f"{what}: a size-adjusted comparison needs at least 3 territories; got {len(c)} "
            f"({', '.join(c['territory_id']) or 'none'})"
        )
    pop, census_year = _population(population, c["territory_id"], what)
    c = c.sort_values("territory_id").reset_index(drop=True)
    y = c["value"].to_numpy(dtype=float)
    if y.sum() == 0:
        raise InsufficientDataError(
            f"{what}: every count of {indicator} is 0; a rate needs at least one positive count"
        )
    p = c["territory_id"].map(pop["population_municipale"]).to_numpy(dtype=float)
    pop_sources = c["territory_id"].map(pop["source_id"])
    row_sources = [join_sources(a, b) for a, b in zip(c["source_ids"], pop_sources, strict=True)]
    all_sources = join_sources(row_sources)

    X = pd.DataFrame({"intercept": np.ones(len(c))})
    endog = pd.Series(y, name=indicator)
    label = f"{what} ({indicator})"
    pois = _fit_poisson(endog, X, exposure=p, label=label)
    nb, at_boundary = _fit_nb2(endog, X, exposure=p, start=[*pois.params, 0.1], label=label)

    if at_boundary:  # α̂ = 0: NB2 is the Poisson model, LR = 0
        lr, a_hat, a_ci = 0.0, 0.0, (math.nan, math.nan)
    else:
        lr = max(0.0, 2.0 * (float(nb.llf) - float(pois.llf)))
        a_hat, a_ci = float(nb.params["alpha"]), _alpha_interval(nb, alpha)
    lr_p = 0.5 * float(stats.chi2.sf(lr, 1)) if lr > 0 else 1.0
    model = NEGATIVE_BINOMIAL if lr_p < alpha else POISSON

    z = stats.norm.ppf(1.0 - alpha / 2.0)
    rate_unit = f"{unit} per {PER:,} inhabitants (population municipale {census_year})"
    rate_rows = []
    for name, res in ((POISSON, pois), (NEGATIVE_BINOMIAL, nb)):
        b0, se0 = float(res.params["intercept"]), float(res.bse["intercept"])
        if name == model:
            _check_covariance(np.array([b0]), np.array([[se0**2]]), name, label)
        rate_rows.append(
            {
                "indicator": f"{indicator}_rate_per_100k",
                "model": name,
                "chosen": name == model,
                "estimate": math.exp(b0) * PER,
                "ci_low": math.exp(b0 - z * se0) * PER,
                "ci_high": math.exp(b0 + z * se0) * PER,
                "unit": rate_unit,
                "source_ids": all_sources,
            }
        )
    rate = pd.DataFrame(rate_rows)

    chosen = nb if model == NEGATIVE_BINOMIAL else pois
    expected = math.exp(float(chosen.params["intercept"])) * p
    mu_lo, mu_hi = _exact_mean_interval(y, a_hat if model == NEGATIVE_BINOMIAL else None, alpha)
    ratio = y / expected
    performance = pd.DataFrame(
        {
            "territory_id": c["territory_id"],
            "indicator": indicator,
            "year": c["year"].to_numpy(dtype=np.int64),
            "observed": y.astype(np.int64),
            "expected": expected,
            "ratio": ratio,
            "ratio_low": mu_lo / expected,
            "ratio_high": mu_hi / expected,
            # rounded so that ratios equal but for floating-point noise share a rank
            "rank": pd.Series(np.round(ratio, 10))
            .rank(ascending=False, method="min")
            .to_numpy(dtype=np.int64),
            "model": model,
            "source_ids": row_sources,
        }
    )
    performance = performance.sort_values(["rank", "territory_id"]).reset_index(drop=True)

    return SizeAdjustedResult(
        performance=performance,
        rate=rate,
        alpha_nb=a_hat,
        alpha_nb_ci=a_ci,
        lr_test={
            "statistic": lr,
            "df": 1,
            "p_value": lr_p,
            "boundary_corrected": True,
            "alpha_at_boundary": at_boundary,
        },
        model=model,
        census_year=census_year,
        poisson_result=pois,
        nb_result=nb,
    )


def _population(
    population: pd.DataFrame, territories: pd.Series, what: str
) -> tuple[pd.DataFrame, int]:
    """The population table indexed by territory, checked: one vintage, > 0, complete."""
    if not isinstance(population, pd.DataFrame):
        raise ParameterError(f"{what}: population must be a DataFrame, got {type(population)}")
    missing_cols = [col for col in _POPULATION_REQUIRED if col not in population.columns]
    if missing_cols:
        raise ParameterError(
            f"{what}: population lacks column(s) {', '.join(missing_cols)}; "
            f"it needs {', '.join(_POPULATION_REQUIRED)}"
        )
    _check_no_nan(population, _POPULATION_REQUIRED, f"{what} (population)")
    years = sorted(int(v) for v in population["census_year"].unique())
    if len(years) != 1:
        raise ParameterError(
            f"{what}: mixed vintages in population: census years {years}; "
            "select one census year (population_vintage)"
        )
    if population["territory_id"].duplicated().any():
        t = population.loc[population["territory_id"].duplicated(), "territory_id"].iloc[0]
        raise ParameterError(
            f"{what}: population has several rows for {t}; one row per territory allowed"
        )
    pop = population.set_index("territory_id")
    values = pop["population_municipale"].astype(float)
    if (values <= 0).any():
        bad = values.index[values <= 0][0]
        raise ParameterError(
            f"{what}: population of {bad} is {pop.loc[bad, 'population_municipale']} "
            f"(census {years[0]}); it must be > 0"
        )
    missing = sorted(set(territories) - set(pop.index))
    if missing:
        raise InsufficientDataError(
            f"{what}: no population for {', '.join(missing)} (census {years[0]}); "
            "every territory of the counts needs one"
        )
    return pop, years[0]


def _exact_mean_interval(
    y: np.ndarray, a_hat: float | None, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (1 - alpha) interval for the mean of each count y (Poisson, or NB2 at α)."""
    lo_q, hi_q = alpha / 2.0, 1.0 - alpha / 2.0
    if a_hat is None or a_hat < _ALPHA_POISSON_LIMIT:
        low = np.where(y > 0, stats.chi2.ppf(lo_q, 2.0 * np.maximum(y, 1.0)) / 2.0, 0.0)
        high = stats.chi2.ppf(hi_q, 2.0 * y + 2.0) / 2.0
        return low, high
    n = 1.0 / a_hat
    # P(Y <= k; μ) = I_p(n, k + 1), p = 1 / (1 + α μ), decreasing in μ; μ = (1 / p - 1) / α.
    p_high = special.betaincinv(n, y + 1.0, lo_q)
    p_low = special.betaincinv(n, np.maximum(y, 1.0), hi_q)
    high = (1.0 / p_high - 1.0) / a_hat
    low = np.where(y > 0, (1.0 / p_low - 1.0) / a_hat, 0.0)
    return low, high


# ----------------------------------------------------------------------------- fitting


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the warnings statsmodels and numpy emit while a fit searches."""
    with warnings.catch_warnings():
        for category in _EXPECTED_WARNINGS:
            warnings.simplefilter("ignore", category)
        with np.errstate(all="ignore"):
            yield


def _fit_poisson(
    endog: pd.Series,
    X: pd.DataFrame,
    exposure: np.ndarray | None,
    label: str,
    robust: bool = True,
) -> Any:
    """Poisson GLM, log link; HC1 standard errors (HC0 · n / (n - k)) when `robust`.

    Otherwise the model-based ones: the inverse Fisher information ``(XᵀWX)⁻¹`` with
    ``W = diag(μ̂)`` (statsmodels' ``cov_type="nonrobust"``; the Poisson scale is fixed at 1).
    """
    model = sm.GLM(endog, X, family=sm.families.Poisson(), exposure=exposure)
    if not robust:
        with _quiet():
            res = model.fit(maxiter=_MAXITER, cov_type="nonrobust")
    else:
        n, k = X.shape
        with _quiet():
            res = model.fit(
                maxiter=_MAXITER,
                cov_type="HC0",
                cov_kwds={"scaling_factor": n / (n - k)},
            )
        # Label what was computed, so that summary() says HC1 rather than HC0 (the wrapper
        # does not forward attribute assignment to the results it wraps).
        getattr(res, "_results", res).cov_type = "HC1"
        res.cov_kwds["description"] = (
            "Standard errors are heteroscedasticity robust (HC1 = HC0 * n / (n - k))"
        )
    if not res.converged or not np.isfinite(res.params).all():
        raise ModelFitError(
            f"{label}: the Poisson fit did not converge in {_MAXITER} iterations; "
            "check the counts for extreme values"
        )
    return res


def _fit_nb2(
    endog: pd.Series,
    X: pd.DataFrame,
    exposure: np.ndarray | None,
    start: list[float],
    label: str,
) -> tuple[Any, bool]:
    """NB2 by maximum likelihood (statsmodels.discrete), α estimated; (results, at_boundary).

    BFGS works on log α (so α stays > 0) from `start`. It can stop short of its tolerance
    for two reasons, told apart here:

    * the optimum is α = 0, on the boundary (equidispersed counts): log α drifts towards
      -inf and the line search loses precision. Whenever ``α̂ · max(y)`` is below
      :data:`_BOUNDARY_EXCESS` (the NB2 variance exceeds the Poisson one by less than that
      fraction for every count), converged or not, the fit is the Poisson fit and
      ``at_boundary`` is True;
    * "precision loss" at an interior optimum (counts in the thousands): Newton steps from
      where BFGS stopped finish the job.

    Anything else raises :class:`ModelFitError`.
    """
    model = NegativeBinomial(endog, X, loglike_method="nb2", exposure=exposure)

    def ok(r: Any) -> bool:
        return (
            bool(r.mle_retvals.get("converged", False))
            and np.isfinite(r.params).all()
            and float(r.params["alpha"]) > 0
        )

    with _quiet():
        res = model.fit(
            start_params=np.asarray(start, dtype=float),
            method="bfgs",
            maxiter=_MAXITER,
            disp=0,
        )
        a = float(res.params["alpha"])
        finite = bool(np.isfinite(res.params).all())
        if finite and 0 < a * float(endog.max()) < _BOUNDARY_EXCESS:
            return res, True
        if ok(res):
            return res, False
        if finite and a > 0:
            res = model.fit(
                start_params=np.asarray(res.params, dtype=float),
                method="newton",
                maxiter=_NEWTON_MAXITER,
                disp=0,
            )
    if not ok(res):
        raise ModelFitError(
            f"{label}: the negative binomial (NB2) fit did not converge in {_MAXITER} "
            "iterations; the dispersion α may not be identified with these counts"
        )
    return res, False


def _check_covariance(b: np.ndarray, V: np.ndarray, model: str, label: str) -> None:
    if not (np.isfinite(b).all() and np.isfinite(V).all() and (np.diag(V) > 0).all()):
        raise ModelFitError(
            f"{label}: the {model} fit gave no usable covariance (singular Hessian); "
            "its intervals cannot be computed"
        )


def _alpha_interval(nb: Any, alpha: float) -> tuple[float, float]:
    """Wald interval for the NB2 α on the log scale: exp(log α̂ ± z se(α̂) / α̂)."""
    a, se = float(nb.params["alpha"]), float(nb.bse["alpha"])
    if not (a > 0 and np.isfinite(se)):
        return (math.nan, math.nan)
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    with np.errstate(over="ignore"):  # α near 0: the upper bound is +inf
        return (float(a * np.exp(-z * se / a)), float(a * np.exp(z * se / a)))


# ----------------------------------------------------------------------------- validation


def _check_alpha(alpha: object) -> None:
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, int | float)
        or not 0.0 < float(alpha) < 1.0
    ):
        raise ParameterError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_no_nan(df: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    for col in columns:
        na = df[col].isna()
        if na.any():
            rows = ", ".join(map(str, df.index[na][:5]))
            raise ParameterError(
                f"{what}: column {col!r} is NaN in row(s) {rows}; every row needs a {col}"
            )


def _tidy_counts(df: pd.DataFrame, what: str) -> pd.DataFrame:
    """`df` as TIDY after checking columns, NaN (named) and whole, non-negative counts."""
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(f"{what}: expected a tidy DataFrame, got {type(df).__name__}")
    missing = [col for col in _TIDY_REQUIRED if col not in df.columns]
    if "source_ids" not in df.columns and "source_id" not in df.columns:
        missing.append("source_id")
    if missing:
        raise ParameterError(
            f"{what}: frame lacks column(s) {', '.join(missing)}; tidy frames need "
            f"{', '.join(_TIDY_REQUIRED)} and source_id or source_ids"
        )
    _check_no_nan(df, _TIDY_REQUIRED, what)
    out = as_tidy(df)
    year = out["year"].to_numpy(dtype=float)
    value = out["value"].to_numpy(dtype=float)
    bad_year = year != np.round(year)
    if bad_year.any():
        raise ParameterError(
            f"{what}: year {float(year[bad_year][0]):g} is not a whole year; years must be integers"
        )
    bad = ~np.isfinite(value) | (value < 0) | (value != np.round(value))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ParameterError(
            f"{what}: value {float(value[i]):g} of {out['territory_id'].iloc[i]} in "
            f"{int(year[i])} is not a count; values must be whole numbers >= 0"
        )
    return out.assign(year=out["year"].astype(np.int64))


# ----------------------------------------------------------------------------- break


@dataclass(frozen=True)
class BreakResult:
    """Result of :func:`fit_break`.

    estimates
        ``territory_id, indicator, term, estimate, ci_low, ci_high, p_value, unit,
        source_ids``; terms ``level_change`` (percent change of the expected count from
        `break_year` on, beyond the trend), ``trend`` (percent per year).
    dispersion
        The Pearson chi-squared over its degrees of freedom, by which the variances are
        scaled (quasi-Poisson); 1 means Poisson noise.
    n_before, n_after
        Years observed before and from the break.
    """

    estimates: pd.DataFrame
    dispersion: float
    n_before: int
    n_after: int


def fit_break(series: pd.DataFrame, break_year: int, alpha: float = 0.05) -> BreakResult:
    """A log-linear count trend with a level break, for one cited series.

    Model (quasi-Poisson GLM, log link; McCullagh & Nelder 1989, sec. 4.5)::

        log μ_t = b0 + b1 (t - t̄) + b2 1[t >= break_year]
        Var y_t = φ μ_t,   φ = Pearson χ² / (n - 3)

    The level change is ``100 (exp(b2) - 1)`` percent, its interval
    ``100 (exp(b2 ± z se) - 1)`` with standard errors scaled by ``φ`` (never below 1, so
    underdispersion does not narrow the interval), ``z`` the normal quantile of
    ``1 - alpha / 2``.

    Parameters
    ----------
    series : tidy counts of one territory and indicator (one row per year).
    break_year : the first year of the new level (e.g. the first full year after a label).
    alpha : 1 minus the confidence level.

    Returns
    -------
    :class:`BreakResult`.

    Raises
    ------
    InsufficientDataError
        Fewer than two years before or from the break (the break and the trend would not
        both be identified).
    ParameterError
        A series of several territories or indicators, or values that are not counts.
    """
    from scipy import stats

    _check_alpha(alpha)
    df = _tidy_counts(series, "fit_break")
    if df["territory_id"].nunique() != 1 or df["indicator"].nunique() != 1:
        raise ParameterError("fit_break: give one territory and one indicator")
    years = df["year"].to_numpy(dtype=float)
    after = years >= break_year
    n_before, n_after = int((~after).sum()), int(after.sum())
    if n_before < 2 or n_after < 2:
        raise InsufficientDataError(
            f"fit_break: {n_before} year(s) before {break_year} and {n_after} from it; "
            "at least 2 on each side are needed"
        )
    y = df["value"].to_numpy(dtype=float)
    X = np.column_stack([np.ones_like(years), years - years.mean(), after.astype(float)])
    with _quiet():
        fit = sm.GLM(y, X, family=sm.families.Poisson()).fit()
    dof = len(y) - X.shape[1]
    phi = float(np.sum((y - fit.mu) ** 2 / fit.mu) / dof) if dof > 0 else float("nan")
    scale = max(phi, 1.0) if np.isfinite(phi) else 1.0
    se = np.sqrt(np.diag(fit.cov_params()) * scale)
    z = float(stats.norm.ppf(1 - alpha / 2))
    b = np.asarray(fit.params)
    p = 2 * stats.norm.sf(np.abs(b / se))
    rows = []
    for term, k, unit in (
        ("level_change", 2, f"percent change of the expected count from {break_year}"),
        ("trend", 1, "percent per year"),
    ):
        rows.append(
            {
                "territory_id": df["territory_id"].iloc[0],
                "indicator": df["indicator"].iloc[0],
                "term": term,
                "estimate": 100 * math.expm1(b[k]),
                "ci_low": 100 * math.expm1(b[k] - z * se[k]),
                "ci_high": 100 * math.expm1(b[k] + z * se[k]),
                "p_value": float(p[k]),
                "unit": unit,
                "source_ids": ";".join(sorted(set(";".join(df["source_ids"]).split(";")))),
            }
        )
    return BreakResult(pd.DataFrame(rows), phi, n_before, n_after)
