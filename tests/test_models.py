"""Count models: known answers (closed forms, exact tables, simulated truths) and their errors.

Every test runs with warnings turned into errors, so a statsmodels warning that leaks out of
`analysis.models` fails the suite.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.core.errors import AnalysisError, InsufficientDataError, ParameterError
from analysis.core.territories import CAPITALE_IDS
from analysis.core.tidy import TIDY
from analysis.data import datasets
from analysis.methods import models

pytestmark = pytest.mark.filterwarnings("error")

Z95 = stats.norm.ppf(0.975)


def series(values, years=None, territory="aix-marseille", indicator="implantations"):
    """A tidy count series, one row per year, each year with its own source."""
    years = list(range(2015, 2015 + len(values))) if years is None else years
    return pd.DataFrame(
        {
            "territory_id": territory,
            "indicator": indicator,
            "year": pd.array(years, dtype="Int64"),
            "value": [float(v) for v in values],
            "unit": "projects",
            "source_id": [f"provence-promotion-{y}" for y in years],
        }
    )


def counts(values: dict[str, int], indicator="startups_register", year=2023):
    return pd.DataFrame(
        {
            "territory_id": list(values),
            "indicator": indicator,
            "year": pd.array([year] * len(values), dtype="Int64"),
            "value": [float(v) for v in values.values()],
            "unit": "start-ups",
            "source_id": "sirene-stock-2023",
        }
    )


def population(values: dict[str, int], census_year=2023):
    return pd.DataFrame(
        {
            "territory_id": list(values),
            "census_year": pd.array([census_year] * len(values), dtype="Int64"),
            "population_municipale": pd.array(list(values.values()), dtype="Int64"),
            "source_id": "etalab-decoupage-administratif-6.0.0",
        }
    )


THREE = ["aix-marseille", "toulouse", "bordeaux"]
HAND_COUNTS = dict(zip(THREE, [3, 5, 12], strict=True))
HAND_POP = dict(zip(THREE, [100_000, 200_000, 400_000], strict=True))


# ----------------------------------------------------------------------------- size-adjusted


@pytest.fixture(scope="module")
def hand():
    return models.fit_size_adjusted(counts(HAND_COUNTS), population(HAND_POP))


def test_poisson_offset_rate_is_total_count_over_total_population(hand):
    # MLE of exp(b0) with log(pop) as offset: sum(y) / sum(pop) = 20 / 700,000
    rate = 20 / 700_000
    pois = hand.rate.set_index("model").loc[models.POISSON]
    assert pois["estimate"] == pytest.approx(rate * 100_000, rel=1e-9)  # 2.857 per 100k
    assert math.exp(hand.poisson_result.params["intercept"]) == pytest.approx(rate, rel=1e-9)
    perf = hand.performance.set_index("territory_id")
    for t in THREE:
        assert perf.loc[t, "expected"] == pytest.approx(rate * HAND_POP[t], rel=1e-9)
    # observed / expected: 3 / (20/7) = 1.05, 5 / (40/7) = 0.875, 12 / (80/7) = 1.05
    assert perf["ratio"].to_dict() == pytest.approx(
        {"aix-marseille": 1.05, "toulouse": 0.875, "bordeaux": 1.05}
    )
    # ties share the min rank: 1, 1, 3; rows sorted by rank then territory
    assert list(hand.performance["territory_id"]) == ["aix-marseille", "bordeaux", "toulouse"]
    assert list(hand.performance["rank"]) == [1, 1, 3]


def test_poisson_rate_interval_uses_hc1_standard_errors(hand):
    # HC1: var(b0) = n / (n - 1) * sum (y - mu)^2 / (sum mu)^2
    #      = 3/2 * (1 + 25 + 16) / 49 / 20^2 = 9 / 2800 (statsmodels' own "HC1" would give HC0)
    se = math.sqrt(9 / 2800)
    assert hand.poisson_result.bse["intercept"] == pytest.approx(se, rel=1e-9)
    pois = hand.rate.set_index("model").loc[models.POISSON]
    assert pois["ci_low"] == pytest.approx(100_000 * 20 / 700_000 * math.exp(-Z95 * se))
    assert pois["ci_high"] == pytest.approx(100_000 * 20 / 700_000 * math.exp(Z95 * se))
    assert "HC1" in str(hand.summary())


def test_ratio_interval_is_the_exact_poisson_interval_over_expected(hand):
    # Garwood 95 % limits for a Poisson count (the published tables): 3 -> 0.619, 8.767;
    # 5 -> 1.623, 11.668; 12 -> 6.201, 20.962
    table = {3: (0.6187, 8.7673), 5: (1.6235, 11.6683), 12: (6.2006, 20.9617)}
    perf = hand.performance.set_index("territory_id")
    for t, y in HAND_COUNTS.items():
        lo, hi = table[y]
        assert perf.loc[t, "ratio_low"] == pytest.approx(lo / perf.loc[t, "expected"], rel=1e-4)
        assert perf.loc[t, "ratio_high"] == pytest.approx(hi / perf.loc[t, "expected"], rel=1e-4)


def test_equidispersed_counts_keep_poisson_and_report_the_lr_test(hand):
    assert hand.model == models.POISSON
    assert hand.lr_test["df"] == 1 and hand.lr_test["boundary_corrected"]
    assert hand.lr_test["p_value"] >= 0.05
    assert set(hand.performance["model"]) == {models.POISSON}
    assert hand.result is hand.poisson_result
    assert hand.census_year == 2023


def test_performance_and_tidy_layout(hand):
    assert list(hand.performance.columns) == [
        "territory_id",
        "indicator",
        "year",
        "observed",
        "expected",
        "ratio",
        "ratio_low",
        "ratio_high",
        "rank",
        "model",
        "source_ids",
    ]
    assert set(hand.performance["source_ids"]) == {
        "etalab-decoupage-administratif-6.0.0;sirene-stock-2023"
    }
    tidy = hand.tidy()
    assert list(tidy.columns) == TIDY
    assert list(tidy["territory_id"]) == sorted(THREE)
    assert set(tidy["indicator"]) == {"startups_register_observed_to_expected"}
    assert set(tidy["unit"]) == {"ratio"}
    assert tidy.set_index("territory_id")["value"]["toulouse"] == pytest.approx(0.875)


def _simulated(rng, n, rate, alpha_nb=None):
    ids = [f"sim-{i:03d}" for i in range(n)]
    pop = np.round(np.exp(rng.uniform(np.log(50_000), np.log(3_000_000), n))).astype(int)
    mu = rate * pop
    if alpha_nb is None:
        y = rng.poisson(mu)
    else:
        y = rng.negative_binomial(1 / alpha_nb, 1 / (1 + alpha_nb * mu))
    return counts(dict(zip(ids, y, strict=True))), population(dict(zip(ids, pop, strict=True)))


def test_simulated_poisson_rate_is_recovered_within_its_interval():
    c, p = _simulated(np.random.default_rng(20230401), 300, rate=35 / 100_000)
    r = models.fit_size_adjusted(c, p)
    assert r.model == models.POISSON
    row = r.rate[r.rate["chosen"]].iloc[0]
    assert row["ci_low"] < 35 < row["ci_high"]
    assert row["estimate"] == pytest.approx(35, rel=0.05)


def test_simulated_nb2_dispersion_is_recovered_and_selects_nb2():
    c, p = _simulated(np.random.default_rng(7), 400, rate=40 / 100_000, alpha_nb=0.5)
    r = models.fit_size_adjusted(c, p)
    assert r.model == models.NEGATIVE_BINOMIAL
    assert r.lr_test["p_value"] < 1e-6
    assert r.alpha_nb == pytest.approx(0.5, rel=0.25)
    assert r.alpha_nb_ci[0] < 0.5 < r.alpha_nb_ci[1]
    nb = r.rate.set_index("model").loc[models.NEGATIVE_BINOMIAL]
    assert bool(nb["chosen"]) and nb["ci_low"] < 40 < nb["ci_high"]
    assert set(r.performance["model"]) == {models.NEGATIVE_BINOMIAL}
    # the NB2 interval inverts the NB2 distribution of each count at mu = expected * ratio
    n = 1 / r.alpha_nb
    for row in r.performance.head(5).itertuples():
        mu_hi, mu_lo = row.ratio_high * row.expected, row.ratio_low * row.expected
        assert stats.nbinom.cdf(row.observed, n, n / (n + mu_hi)) == pytest.approx(0.025)
        if row.observed > 0:
            assert stats.nbinom.sf(row.observed - 1, n, n / (n + mu_lo)) == pytest.approx(0.025)


def test_capitals_with_the_embedded_population_table():
    pop = datasets.load_territory_population(2023)
    caps = pop[pop["territory_id"].isin(CAPITALE_IDS)]
    rate = 40 / 100_000
    y = {
        t: round(rate * n)
        for t, n in zip(caps["territory_id"], caps["population_municipale"], strict=True)
    }
    y["aix-marseille"] *= 2  # twice what its size predicts
    r = models.fit_size_adjusted(counts(y), pop)  # extra territories in `pop` are ignored
    assert len(r.performance) == 13
    top = r.performance.iloc[0]
    assert top["territory_id"] == "aix-marseille" and top["rank"] == 1
    assert top["ratio_low"] > 1


# ----------------------------------------------------------------------------- trend


def _poisson_lognormal_quantiles(eta, sd, q=(0.025, 0.975)):
    """Quantiles (smallest k with F(k) >= q) of Poisson(exp(N(eta, sd^2))), by quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    k = np.arange(int(10 * math.exp(eta + 6 * sd)) + 50)
    cdf = stats.poisson.cdf(k[:, None], np.exp(eta + sd * nodes)[None, :]) @ weights
    cdf /= weights.sum()
    return tuple(int(k[np.argmax(cdf >= p)]) for p in q)


EXPONENTIAL = [round(50 * 1.1**t) for t in range(8)]  # 50, 55, 61, 67, 73, 81, 89, 97


@pytest.fixture(scope="module")
def exact_trend():
    return models.fit_trend(series(EXPONENTIAL))


def test_exact_exponential_growth_is_ten_percent(exact_trend):
    est = exact_trend.estimates.set_index("term")
    g = est.loc["growth_rate"]
    assert g["estimate"] == pytest.approx(10, abs=0.1)
    assert g["ci_low"] < 10 < g["ci_high"]
    assert g["unit"] == "percent per year"
    assert est.loc["slope", "estimate"] == pytest.approx(math.log(1.1), abs=1e-3)
    # the intercept is the log expected count at the mean year 2018.5 (t = 3.5)
    assert est.loc["intercept", "estimate"] == pytest.approx(math.log(50 * 1.1**3.5), abs=5e-3)
    assert exact_trend.model == models.POISSON
    assert set(exact_trend.estimates["model"]) == {models.POISSON}
    assert exact_trend.overdispersion["p_value"] > 0.5
    assert exact_trend.overdispersion["alpha_nb"] is None
    assert list(exact_trend.fitted.columns) == ["year", "observed", "fitted"]
    assert exact_trend.fitted["fitted"].to_numpy() == pytest.approx(EXPONENTIAL, rel=0.01)


def test_projection_of_the_exact_exponential(exact_trend):
    proj = exact_trend.projection
    assert list(proj.columns) == [
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
    assert list(proj["year"]) == [2023, 2024]
    truth = [50 * 1.1**8, 50 * 1.1**9]  # 107.2, 117.9
    assert proj["mean"].to_numpy() == pytest.approx(truth, rel=0.01)
    assert (proj["ci_low"] < proj["mean"]).all() and (proj["mean"] < proj["ci_high"]).all()
    # the count's own Poisson noise (sd ~ 10) makes the PI much wider than the CI
    assert (proj["pi_low"] < proj["ci_low"]).all() and (proj["ci_high"] < proj["pi_high"]).all()
    # the PI is that of the Poisson-lognormal mixture: y ~ Poisson(exp(eta)), eta ~ N(x'b,
    # x'Vx), V = (X'WX)^-1 the model-based covariance (W = diag(fitted mean)); its quantiles
    # by quadrature: 2023 -> 82, 136; 2024 -> 89, 152 (a bare Poisson(107.2): 87, 128)
    t = np.arange(8) - 3.5
    X = np.column_stack([np.ones(8), t])
    mu = exact_trend.fitted["fitted"].to_numpy()
    V = np.linalg.inv(X.T @ (mu[:, None] * X))
    for row, t_new in zip(proj.itertuples(), (4.5, 5.5), strict=True):
        x = np.array([1.0, t_new])
        lo, hi = _poisson_lognormal_quantiles(math.log(row.mean), math.sqrt(x @ V @ x))
        assert row.pi_low == pytest.approx(lo, abs=3)
        assert row.pi_high == pytest.approx(hi, abs=3)
    bare = stats.poisson.ppf([0.025, 0.975], proj["mean"].iloc[0])
    assert proj["pi_low"].iloc[0] < bare[0] and proj["pi_high"].iloc[0] > bare[1]
    assert set(proj["source_ids"]) == {
        ";".join(f"provence-promotion-{y}" for y in range(2015, 2023))
    }


def test_gaps_use_the_actual_year():
    years = [2014, 2015, 2017, 2018, 2021]
    y = [round(100 * 1.2 ** (yr - 2014)) for yr in years]
    r = models.fit_trend(series(y, years=years), horizon=1)
    g = r.estimates.set_index("term").loc["growth_rate"]
    assert g["estimate"] == pytest.approx(20, abs=0.2)
    assert list(r.projection["year"]) == [2022]
    assert r.projection["mean"].iloc[0] == pytest.approx(100 * 1.2**8, rel=0.01)


def test_poisson_series_keeps_poisson():
    y = np.random.default_rng(2019).poisson(40 * 1.05 ** np.arange(10))
    r = models.fit_trend(series(y))
    assert r.model == models.POISSON
    assert r.overdispersion["p_value"] >= 0.05
    assert r.result is r.poisson_result


HAND_TREND = [10, 20, 40]  # 2015-2017: doubling each year, fitted exactly (mu = y)


@pytest.fixture(scope="module")
def hand_trend():
    return models.fit_trend(series(HAND_TREND))


def test_trend_standard_errors_are_model_based_worked_by_hand(hand_trend):
    # t = year - 2016 = -1, 0, 1. mu = (10, 20, 40) solves the Poisson score equations, so
    # V = (X'WX)^-1 with W = diag(mu): X'WX = [[sum mu, sum t mu], [sum t mu, sum t^2 mu]]
    # = [[70, 30], [30, 50]], det = 2600, V = [[50, -30], [-30, 70]] / 2600.
    # (HC1 would be ~0 here: every residual is 0.)
    r = hand_trend
    assert r.model == models.POISSON and r.result is r.poisson_result
    V = np.array([[50.0, -30.0], [-30.0, 70.0]]) / 2600
    assert r.result.cov_params().to_numpy() == pytest.approx(V, rel=1e-4)
    se0, se1 = math.sqrt(50 / 2600), math.sqrt(70 / 2600)  # 0.1387, 0.1641
    est = r.estimates.set_index("term")
    b0, b1 = math.log(20), math.log(2)
    assert est.loc["intercept", "estimate"] == pytest.approx(b0, abs=1e-8)
    assert est.loc["intercept", "ci_low"] == pytest.approx(b0 - Z95 * se0, rel=1e-5)
    assert est.loc["intercept", "ci_high"] == pytest.approx(b0 + Z95 * se0, rel=1e-5)
    assert est.loc["slope", "ci_low"] == pytest.approx(b1 - Z95 * se1, rel=1e-5)
    assert est.loc["slope", "ci_high"] == pytest.approx(b1 + Z95 * se1, rel=1e-5)
    # growth 100 % a year, interval 100 (2 exp(-+1.96 se1) - 1) = 45.0 %, 175.9 %
    g = est.loc["growth_rate"]
    assert g["estimate"] == pytest.approx(100, abs=1e-6)
    assert g["ci_low"] == pytest.approx(100 * (2 * math.exp(-Z95 * se1) - 1), rel=1e-5)
    assert g["ci_high"] == pytest.approx(100 * (2 * math.exp(Z95 * se1) - 1), rel=1e-5)
    assert g["ci_low"] == pytest.approx(45.0, abs=0.1)
    assert g["ci_high"] == pytest.approx(175.9, abs=0.1)
    # summary() shows the covariance actually used
    assert r.result.cov_type == "nonrobust"
    assert "nonrobust" in str(r.summary()) and "HC1" not in str(r.summary())


def test_trend_projection_uses_the_model_based_covariance(hand_trend):
    # 2018 (t = 2): mean 80, var(x'b) = (50 - 2*2*30 + 4*70) / 2600 = 210 / 2600;
    # 2019 (t = 3): mean 160, var(x'b) = (50 - 2*3*30 + 9*70) / 2600 = 500 / 2600.
    proj = hand_trend.projection.set_index("year")
    for year, mean, var in ((2018, 80, 210 / 2600), (2019, 160, 500 / 2600)):
        half = Z95 * math.sqrt(var)
        assert proj.loc[year, "mean"] == pytest.approx(mean, rel=1e-6)
        assert proj.loc[year, "ci_low"] == pytest.approx(mean * math.exp(-half), rel=1e-6)
        assert proj.loc[year, "ci_high"] == pytest.approx(mean * math.exp(half), rel=1e-6)
    # the PI draws the mean from N(b, V) with this V: wider than a bare Poisson(mean) one
    for year, mean, var in ((2018, 80, 210 / 2600), (2019, 160, 500 / 2600)):
        lo, hi = _poisson_lognormal_quantiles(math.log(mean), math.sqrt(var))
        assert proj.loc[year, "pi_low"] == pytest.approx(lo, rel=0.08)
        assert proj.loc[year, "pi_high"] == pytest.approx(hi, rel=0.08)
        bare = stats.poisson.ppf([0.025, 0.975], mean)
        assert proj.loc[year, "pi_low"] < bare[0] and proj.loc[year, "pi_high"] > bare[1]


def test_trend_standard_errors_are_the_inverse_fisher_information():
    # the same (X'WX)^-1, W = diag(mu_hat), on a noisy series (not an exact fit)
    y = np.random.default_rng(2019).poisson(40 * 1.05 ** np.arange(10))
    r = models.fit_trend(series(y))
    assert r.model == models.POISSON
    t = np.arange(10) - 4.5
    X = np.column_stack([np.ones(10), t])
    mu = np.exp(X @ r.result.params.to_numpy())
    V = np.linalg.inv(X.T @ (mu[:, None] * X))
    assert r.result.cov_params().to_numpy() == pytest.approx(V, rel=1e-6)
    se1 = math.sqrt(V[1, 1])
    slope = r.estimates.set_index("term").loc["slope"]
    assert slope["ci_low"] == pytest.approx(slope["estimate"] - Z95 * se1, rel=1e-6)
    assert slope["ci_high"] == pytest.approx(slope["estimate"] + Z95 * se1, rel=1e-6)


def test_overdispersed_series_selects_negative_binomial():
    r = models.fit_trend(series([20, 60, 15, 90, 30, 120, 25, 150]))
    od = r.overdispersion
    assert r.model == models.NEGATIVE_BINOMIAL
    assert od["p_value"] < 0.05 and od["statistic"] > 0
    assert od["pearson_chi2_df"] > 10
    assert od["alpha_nb"] > 0 and od["alpha_nb_ci_low"] < od["alpha_nb"] < od["alpha_nb_ci_high"]
    assert r.result.params["alpha"] == pytest.approx(od["alpha_nb"])
    # NB2 intervals use the NB2 model-based (inverse Hessian) standard errors
    slope = r.estimates.set_index("term").loc["slope"]
    se1 = float(r.result.bse["year_centred"])
    assert slope["ci_low"] == pytest.approx(slope["estimate"] - Z95 * se1, rel=1e-9)
    assert slope["ci_high"] == pytest.approx(slope["estimate"] + Z95 * se1, rel=1e-9)
    assert r.poisson_result.cov_type == "nonrobust"
    assert set(r.estimates["model"]) == {models.NEGATIVE_BINOMIAL}
    assert set(r.projection["model"]) == {models.NEGATIVE_BINOMIAL}
    # NB2 noise: the PI is far wider than the Poisson one would be
    p = r.projection.iloc[0]
    assert p["pi_high"] - p["pi_low"] > 4 * stats.poisson.std(p["mean"])
    assert "NegativeBinomial" in str(r.summary())


def test_same_seed_same_frames_other_seed_other_pi_only(exact_trend):
    again = models.fit_trend(series(EXPONENTIAL), seed=0)
    other = models.fit_trend(series(EXPONENTIAL), seed=1)
    for name in ("estimates", "projection", "fitted"):
        pd.testing.assert_frame_equal(getattr(exact_trend, name), getattr(again, name))
    pd.testing.assert_frame_equal(exact_trend.estimates, other.estimates)
    pd.testing.assert_frame_equal(exact_trend.fitted, other.fitted)
    a, b = exact_trend.projection, other.projection
    pi = ["pi_low", "pi_high"]
    pd.testing.assert_frame_equal(a.drop(columns=pi), b.drop(columns=pi))
    assert not a[pi].equals(b[pi])


def test_horizon_zero_gives_no_projection():
    r = models.fit_trend(series(EXPONENTIAL), horizon=0)
    assert r.projection.empty and "pi_low" in r.projection.columns


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("frame", "kwargs", "error", "match"),
    [
        (
            series([10, 12]),
            {},
            InsufficientDataError,
            r"a trend needs at least 3 years; got 2 \(years 2015, 2016\)",
        ),
        (
            series([10, 12, 14]).assign(value=[10.0, np.nan, 14.0]),
            {},
            ParameterError,
            r"column 'value' is NaN in row\(s\) 1; every row needs a value",
        ),
        (
            series([10, 12, 14]).assign(year=pd.array([2015, None, 2017], dtype="Int64")),
            {},
            ParameterError,
            r"column 'year' is NaN",
        ),
        (
            series([10, 12, 14]).drop(columns="unit"),
            {},
            ParameterError,
            r"lacks column\(s\) unit; tidy frames need",
        ),
        (
            pd.concat([series([1, 2, 3]), series([1, 2, 3], territory="toulouse")]),
            {},
            ParameterError,
            r"expected one territory and one indicator, got 2",
        ),
        (
            series([10, 12, 14], years=[2015, 2016, 2016]),
            {},
            ParameterError,
            r"several values for year\(s\) 2016; one value per year allowed",
        ),
        (
            series([10, -1, 14]),
            {},
            ParameterError,
            r"value -1 of aix-marseille in 2016 is not a count; values must be whole numbers >= 0",
        ),
        (
            series([10, 12.5, 14]),
            {},
            ParameterError,
            r"value 12.5 .* is not a count",
        ),
        (
            series([10, 12, 14]).assign(unit=["projects", "jobs", "projects"]),
            {},
            ParameterError,
            r"mixed units",
        ),
        (series([0, 0, 0]), {}, InsufficientDataError, r"every count .* is 0"),
        (
            series([0, 0, 7]),
            {},
            InsufficientDataError,
            r"positive count only in 2017, the first or last year, so the growth rate is infinite",
        ),
        (
            series([10, 12, 14]),
            {"alpha": 1.5},
            ParameterError,
            r"alpha must be a number strictly between 0 and 1, got 1.5",
        ),
        (series([10, 12, 14]), {"horizon": -1}, ParameterError, r"horizon must be an integer >= 0"),
        (series([10, 12, 14]), {"n_sim": 10}, ParameterError, r"n_sim must be an integer >= 100"),
        (series([10, 12, 14]), {"seed": 1.5}, ParameterError, r"seed must be an integer >= 0"),
    ],
)
def test_fit_trend_errors(frame, kwargs, error, match):
    with pytest.raises(error, match=match):
        models.fit_trend(frame, **kwargs)


def _bad_population(**changes):
    pop = population(HAND_POP)
    for column, values in changes.items():
        pop[column] = values
    return pop


@pytest.mark.parametrize(
    ("frame", "pop", "error", "match"),
    [
        (
            counts(HAND_COUNTS),
            _bad_population(census_year=pd.array([2016, 2023, 2023], dtype="Int64")),
            ParameterError,
            r"mixed vintages in population: census years \[2016, 2023\]; select one census year",
        ),
        (
            counts(HAND_COUNTS),
            _bad_population(population_municipale=pd.array([100_000, 0, 400_000], dtype="Int64")),
            ParameterError,
            r"population of toulouse is 0 \(census 2023\); it must be > 0",
        ),
        (
            counts(HAND_COUNTS),
            _bad_population(population_municipale=pd.array([-5, 1, 1], dtype="Int64")),
            ParameterError,
            r"population of aix-marseille is -5",
        ),
        (
            counts({**HAND_COUNTS, "brest": 1, "rennes-saint-malo": 4}),
            population(HAND_POP),
            InsufficientDataError,
            r"no population for brest, rennes-saint-malo \(census 2023\)",
        ),
        (
            counts({"aix-marseille": 3, "toulouse": 5}),
            population(HAND_POP),
            InsufficientDataError,
            r"needs at least 3 territories; got 2 \(aix-marseille, toulouse\)",
        ),
        (
            pd.concat([counts(HAND_COUNTS), counts({"toulouse": 4}, year=2022)]),
            population(HAND_POP),
            ParameterError,
            r"toulouse has several rows \(years 2023, 2022\); one row per territory allowed",
        ),
        (
            pd.concat([counts(HAND_COUNTS), counts({"brest": 4}, indicator="startups_declared")]),
            population(HAND_POP),
            ParameterError,
            r"several indicators .*; one indicator allowed",
        ),
        (
            counts(HAND_COUNTS),
            population(HAND_POP).drop(columns="census_year"),
            ParameterError,
            r"population lacks column\(s\) census_year; it needs territory_id, census_year",
        ),
        (
            counts(HAND_COUNTS),
            _bad_population(population_municipale=pd.array([1, None, 1], dtype="Int64")),
            ParameterError,
            r"column 'population_municipale' is NaN in row\(s\) 1",
        ),
        (
            counts(dict.fromkeys(THREE, 0)),
            population(HAND_POP),
            InsufficientDataError,
            r"every count of startups_register is 0",
        ),
        (
            counts(HAND_COUNTS).assign(value=[3.0, 5.0, np.nan]),
            population(HAND_POP),
            ParameterError,
            r"column 'value' is NaN in row\(s\) 2",
        ),
    ],
)
def test_fit_size_adjusted_errors(frame, pop, error, match):
    with pytest.raises(error, match=match):
        models.fit_size_adjusted(frame, pop)


def test_fit_size_adjusted_rejects_a_bad_alpha():
    with pytest.raises(ParameterError, match=r"alpha must be a number strictly between 0 and 1"):
        models.fit_size_adjusted(counts(HAND_COUNTS), population(HAND_POP), alpha=0)


def test_a_fit_that_does_not_converge_raises_a_model_fit_error(monkeypatch):
    monkeypatch.setattr(models, "_MAXITER", 1)
    monkeypatch.setattr(models, "_NEWTON_MAXITER", 1)
    with pytest.raises(models.ModelFitError, match=r"did not converge") as info:
        models.fit_trend(series([20, 60, 15, 90, 30, 120, 25, 150]))
    assert isinstance(info.value, AnalysisError)


def test_an_untractable_projection_raises_instead_of_overflowing():
    # one positive year in the middle: the NB2 slope is unbounded in the simulation
    with pytest.raises(models.ModelFitError, match=r"horizon=0 for the estimates alone"):
        models.fit_trend(series([0, 5, 0]))
    r = models.fit_trend(series([0, 5, 0]), horizon=0)
    assert r.estimates.set_index("term").loc["slope", "estimate"] == pytest.approx(0, abs=1e-6)


def test_fit_break_recovers_a_level_that_doubles_by_hand():
    """10 a year for four years, then 20: no trend, a level change of exactly +100 %."""
    from analysis.methods.models import fit_break

    s = pd.DataFrame(
        {
            "territory_id": "aix-marseille",
            "indicator": "implantations",
            "year": range(2011, 2019),
            "value": [10, 10, 10, 10, 20, 20, 20, 20],
            "unit": "projects",
            "source_ids": "s1",
        }
    )
    r = fit_break(s, 2015).estimates.set_index("term")
    assert r.loc["level_change", "estimate"] == pytest.approx(100.0, abs=1e-6)
    assert r.loc["trend", "estimate"] == pytest.approx(0.0, abs=1e-6)
    assert r.loc["level_change", "ci_low"] < 100 < r.loc["level_change", "ci_high"]
    with pytest.raises(InsufficientDataError, match="1 year\\(s\\) before 2012"):
        fit_break(s, 2012)
