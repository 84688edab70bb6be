"""Composite index: scores and ranks worked by hand, invariances, Monte Carlo, and errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import InsufficientDataError, ParameterError
from analysis.methods import composite_index as index


def frame(values: dict[str, list[float]], territories="abc", **extra) -> pd.DataFrame:
    """Tidy frame: one row per (territory, indicator), indicators in the dict's order."""
    rows = [
        (t, ind, v, f"src-{ind}")
        for ind, vals in values.items()
        for t, v in zip(territories, vals, strict=True)
    ]
    df = pd.DataFrame(rows, columns=["territory_id", "indicator", "value", "source_id"])
    return df.assign(**extra)


# x = (10, 20, 40) -> min-max (0, 1/3, 1); y = (5, 1, 3) -> min-max (1, 0, 1/2)
HAND = {"x": [10.0, 20.0, 40.0], "y": [5.0, 1.0, 3.0]}


def by_territory(out: pd.DataFrame, col: str) -> dict:
    return dict(zip(out["territory_id"], out[col], strict=True))


# ----------------------------------------------------------------------------- by hand


def test_minmax_scores_and_ranks_by_hand():
    norm = index.normalise(frame(HAND))
    assert norm["value"].tolist() == pytest.approx([0, 1 / 3, 1, 1, 0, 0.5])
    assert set(norm["unit"]) == {"min-max (0-1)"}

    out = index.composite(frame(HAND))
    # equal weights: a = (0 + 1) / 2, b = (1/3 + 0) / 2, c = (1 + 1/2) / 2
    assert by_territory(out, "score") == pytest.approx({"a": 0.5, "b": 1 / 6, "c": 0.75})
    assert out["territory_id"].tolist() == ["c", "a", "b"]
    assert out["rank"].tolist() == [1, 2, 3]
    assert by_territory(out, "source_ids") == {s: "src-x;src-y" for s in "abc"}


def test_weighted_scores_tie_and_share_the_smallest_rank():
    # weights 3:1 -> 0.75, 0.25: a = 0.25 * 1 = 0.25, b = 0.75 / 3 = 0.25, c = 0.75 + 0.125
    out = index.composite(frame(HAND), weights={"x": 3, "y": 1})
    assert by_territory(out, "score") == pytest.approx({"a": 0.25, "b": 0.25, "c": 0.875})
    assert by_territory(out, "rank") == {"c": 1, "a": 2, "b": 2}
    # the same weights as a sequence in indicator order, not normalised
    same = index.composite(frame(HAND), weights=[0.75, 0.25])
    pd.testing.assert_frame_equal(out, same)


def test_zscore_by_hand():
    # x: deviations (10/3)(-4, -1, 5), population sd (10/3) sqrt(14) -> (-4, -1, 5) / sqrt(14)
    # y: deviations (2, -2, 0), population sd sqrt(8/3) -> (sqrt(3/2), -sqrt(3/2), 0)
    norm = index.normalise(frame(HAND), "zscore")
    r14, r15 = math.sqrt(14), math.sqrt(1.5)
    assert norm["value"].tolist() == pytest.approx([-4 / r14, -1 / r14, 5 / r14, r15, -r15, 0])
    out = index.composite(frame(HAND), normalisation="zscore")
    expected = {"a": (-4 / r14 + r15) / 2, "b": (-1 / r14 - r15) / 2, "c": 5 / r14 / 2}
    assert by_territory(out, "score") == pytest.approx(expected)
    assert by_territory(out, "rank") == {"c": 1, "a": 2, "b": 3}


def test_geometric_by_hand_on_minmax_rescaled_to_the_floor():
    # min-max mapped to [0.01, 1]: x (0.01, 0.34, 1), y (1, 0.01, 0.505); score = sqrt(x y)
    assert index.GEOMETRIC_FLOOR == 0.01
    out = index.composite(frame(HAND), aggregation="geometric")
    expected = {"a": 0.1, "b": math.sqrt(0.34 * 0.01), "c": math.sqrt(0.505)}
    assert by_territory(out, "score") == pytest.approx(expected)
    assert by_territory(out, "rank") == {"c": 1, "a": 2, "b": 3}
    # the same through the two steps
    agg = index.aggregate(index.normalise(frame(HAND), floor=0.01), method="geometric")
    assert by_territory(agg, "score") == pytest.approx(expected)


def test_aggregate_of_normalise_is_the_composite():
    agg = index.aggregate(index.normalise(frame(HAND)), weights=[1, 3])
    out = index.composite(frame(HAND), weights=[1, 3])
    assert by_territory(agg, "score") == pytest.approx(by_territory(out, "score"))
    assert agg.columns.tolist() == ["territory_id", "score", "source_ids"]


def test_direction_minus_one_reverses_an_indicator():
    # y reversed: min-max (0, 1, 1/2); a = 0, b = (1/3 + 1) / 2 = 2/3, c = (1 + 1/2) / 2
    out = index.composite(frame(HAND), direction={"y": -1})
    assert by_territory(out, "score") == pytest.approx({"a": 0.0, "b": 2 / 3, "c": 0.75})
    assert by_territory(out, "rank") == {"c": 1, "b": 2, "a": 3}
    norm = index.normalise(frame(HAND), direction={"y": -1})
    assert norm.loc[norm["indicator"] == "y", "value"].tolist() == pytest.approx([0, 1, 0.5])
    # one indicator: -1 turns the ranking upside down
    one = frame({"y": HAND["y"]})
    assert by_territory(index.composite(one), "rank") == {"a": 1, "c": 2, "b": 3}
    assert by_territory(index.composite(one, direction={"y": -1}), "rank") == {
        "b": 1,
        "c": 2,
        "a": 3,
    }


def test_zero_weight_leaves_the_indicator_and_its_sources_out():
    out = index.composite(frame(HAND), weights={"x": 1, "y": 0})
    assert by_territory(out, "score") == pytest.approx({"a": 0, "b": 1 / 3, "c": 1})
    assert set(out["source_ids"]) == {"src-x"}


def test_drop_one_by_hand():
    # nominal c1 a2 b3; without x (y only): a1 c2 b3 -> shifts 1, 0, 1;
    # without y (x only): c1 b2 a3 -> shifts 1, 1, 0
    out = index.drop_one(frame(HAND))
    assert out["indicator"].tolist() == ["x", "y"]
    assert out["mean_abs_rank_shift"].tolist() == pytest.approx([2 / 3, 2 / 3])
    assert out["max_abs_rank_shift"].tolist() == [1, 1]
    # the only indicator with a weight cannot be dropped
    lone = index.drop_one(frame(HAND), weights=[1, 0])
    assert math.isnan(lone["mean_abs_rank_shift"][0])


# ----------------------------------------------------------------------------- invariances


@pytest.mark.parametrize(
    ("normalisation", "aggregation"),
    [("minmax", "arithmetic"), ("minmax", "geometric"), ("zscore", "arithmetic")],
)
def test_rescaling_an_input_leaves_the_scores_unchanged(normalisation, aggregation):
    rescaled = {"x": [3 * v - 7 for v in HAND["x"]], "y": [0.5 * v + 100 for v in HAND["y"]]}
    kw = {"normalisation": normalisation, "aggregation": aggregation, "weights": [2, 1]}
    a = index.composite(frame(HAND), **kw)
    b = index.composite(frame(rescaled), **kw)
    assert b["score"].to_numpy() == pytest.approx(a["score"].to_numpy(), abs=1e-12)
    pd.testing.assert_frame_equal(a.drop(columns="score"), b.drop(columns="score"))


@pytest.mark.parametrize("normalisation", ["minmax", "zscore"])
def test_permuting_indicators_with_their_weights_leaves_the_ranks_unchanged(normalisation):
    rng = np.random.default_rng(7)
    values = {ind: list(rng.integers(0, 100, size=6).astype(float)) for ind in ("x", "y", "z")}
    df = frame(values, territories="abcdef")
    a = index.composite(df, weights=[0.5, 0.3, 0.2], normalisation=normalisation)
    permuted = pd.concat([df[df["indicator"] == i] for i in ("z", "x", "y")])
    b = index.composite(permuted, weights=[0.2, 0.5, 0.3], normalisation=normalisation)
    c = index.composite(permuted, weights={"x": 5, "y": 3, "z": 2}, normalisation=normalisation)
    assert a["territory_id"].tolist() == b["territory_id"].tolist() == c["territory_id"].tolist()
    assert a["rank"].tolist() == b["rank"].tolist() == c["rank"].tolist()
    assert b["score"].to_numpy() == pytest.approx(a["score"].to_numpy())
    # and the weights really matter: another order gives another ranking
    d = index.composite(permuted, weights=[0.5, 0.3, 0.2], normalisation=normalisation)
    assert d["score"].to_numpy() != pytest.approx(a["score"].to_numpy())


def test_row_order_of_territories_does_not_matter():
    df = frame(HAND, sd=0.0)
    pd.testing.assert_frame_equal(
        index.composite(df), index.composite(df.iloc[::-1].reset_index(drop=True))
    )


# ----------------------------------------------------------------------------- Monte Carlo


@pytest.mark.parametrize("concentration", [None, np.inf])
@pytest.mark.parametrize("sd", [None, 0.0, np.nan])
def test_no_uncertainty_collapses_the_intervals_to_the_nominal_rank(concentration, sd):
    df = frame(HAND) if sd is None else frame(HAND, sd=sd)
    mc = index.monte_carlo(
        df, weights=[3, 1], n_draws=40, concentration=concentration, normalisations=("minmax",)
    )
    r = mc.ranks
    assert r.columns.tolist() == [
        "territory_id",
        "median_rank",
        "rank_low",
        "rank_high",
        "score_median",
        "nominal_rank",
        "source_ids",
    ]
    # the tie of a and b (0.25 each) survives every draw
    assert by_territory(r, "nominal_rank") == {"c": 1, "a": 2, "b": 2}
    assert (r["rank_low"] == r["nominal_rank"]).all()
    assert (r["rank_high"] == r["nominal_rank"]).all()
    assert (r["median_rank"] == r["nominal_rank"]).all()
    assert by_territory(r, "score_median") == pytest.approx({"a": 0.25, "b": 0.25, "c": 0.875})
    assert len(mc.draws) == 40 * 3
    assert mc.sensitivity.empty
    assert mc.sensitivity.columns.tolist() == index.SENSITIVITY_COLUMNS


def test_nominal_rank_is_the_composite_with_the_first_normalisation():
    df = frame(HAND, sd=[1.0, 2.0, 3.0, 0.5, 0.5, np.nan])
    mc = index.monte_carlo(df, n_draws=200, normalisations=("zscore", "minmax"))
    nominal = index.composite(frame(HAND), normalisation="zscore")
    assert by_territory(mc.ranks, "nominal_rank") == by_territory(nominal, "rank")
    assert (mc.ranks["rank_low"] <= mc.ranks["median_rank"]).all()
    assert (mc.ranks["median_rank"] <= mc.ranks["rank_high"]).all()
    # each draw's ranks are a ranking of the three territories
    assert (mc.draws.groupby("draw", observed=True)["rank"].min() == 1).all()
    assert set(mc.draws["normalisation"].astype(str)) == {"zscore", "minmax"}


def test_same_seed_same_frames_other_seed_other_draws():
    df = frame(HAND, sd=[1.0, 2.0, 3.0, 0.5, 0.5, np.nan])
    a = index.monte_carlo(df, n_draws=100, seed=3)
    b = index.monte_carlo(df, n_draws=100, seed=3)
    c = index.monte_carlo(df, n_draws=100, seed=4)
    for name in ("ranks", "draws", "weights", "sensitivity", "dropped"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.draws["score"].to_numpy(), c.draws["score"].to_numpy())
    assert not np.array_equal(a.weights["weight"].to_numpy(), c.weights["weight"].to_numpy())
    # the main sample does not depend on whether the sensitivity indices are computed
    d = index.monte_carlo(df, n_draws=100, seed=3, sensitivity=False)
    pd.testing.assert_frame_equal(a.draws, d.draws)
    assert d.sensitivity.empty


def test_dirichlet_weights_are_centred_on_the_given_weights():
    # E[w_i] = w_i, Var[w_i] = w_i (1 - w_i) / (concentration + 1) = 0.1875 / 51
    mc = index.monte_carlo(frame(HAND), weights=[3, 1], n_draws=2000, sensitivity=False)
    w = mc.weights.pivot(index="draw", columns="indicator", values="weight")
    assert w.sum(axis=1).to_numpy() == pytest.approx(1.0)
    assert w["x"].mean() == pytest.approx(0.75, abs=0.01)
    assert w["x"].var(ddof=0) == pytest.approx(0.1875 / 51, rel=0.15)
    # a zero weight stays zero
    mc0 = index.monte_carlo(frame(HAND), weights=[1, 0], n_draws=50, sensitivity=False)
    assert (mc0.weights.loc[mc0.weights["indicator"] == "y", "weight"] == 0).all()


def test_normalisation_as_the_only_factor():
    # x (0, 1, 2, 10), y (10, 6, 5, 0), equal weights:
    # min-max: a 0.5, b 0.35, c 0.35, d 0.5 -> a1 d1 b3 c3
    # z-score: a 0.2565, b -0.1788, c -0.1929, d 0.1152 -> a1 d2 b3 c4
    df = frame({"x": [0, 1, 2, 10], "y": [10, 6, 5, 0]}, territories="abcd")
    assert by_territory(index.composite(df), "rank") == {"a": 1, "d": 1, "b": 3, "c": 3}
    z = index.composite(df, normalisation="zscore")
    assert by_territory(z, "score") == pytest.approx(
        {"a": 0.2565, "b": -0.1788, "c": -0.1929, "d": 0.1152}, abs=1e-4
    )
    assert by_territory(z, "rank") == {"a": 1, "d": 2, "b": 3, "c": 4}

    mc = index.monte_carlo(df, n_draws=400, concentration=None)
    assert by_territory(mc.ranks, "rank_low") == {"a": 1, "d": 1, "b": 3, "c": 3}
    assert by_territory(mc.ranks, "rank_high") == {"a": 1, "d": 2, "b": 3, "c": 4}
    s = mc.sensitivity
    assert s["factor"].unique().tolist() == ["normalisation"]
    # the only factor explains all the variance of what moves; ranks that never move: NaN
    first = dict(zip(s["territory_id"].fillna("all"), s["first_order"], strict=True))
    assert first["all"] == pytest.approx(1.0)
    assert first["c"] == pytest.approx(1.0) and first["d"] == pytest.approx(1.0)
    assert math.isnan(first["a"]) and math.isnan(first["b"])
    total = s.loc[s["territory_id"].isna(), "total_effect"].iloc[0]
    assert total == pytest.approx(1.0, abs=0.15)


def test_noise_on_a_zero_weight_indicator_moves_nothing():
    df = frame(HAND, sd=[np.nan, np.nan, np.nan, 5.0, 5.0, 5.0])
    mc = index.monte_carlo(df, weights=[1, 0], n_draws=100, concentration=None)
    assert (mc.ranks["rank_low"] == mc.ranks["rank_high"]).all()
    # with one weighted indicator, the normalisation cannot reorder either
    assert mc.sensitivity["factor"].unique().tolist() == ["normalisation", "noise:y"]
    assert mc.sensitivity["first_order"].isna().all()  # V(Y) = 0


def test_sensitivity_separates_noise_from_weights():
    # x noise (sd 0.1 on a range of 30) cannot reorder x; y noise (sd 3 on a range of 4) can
    df = frame(HAND, sd=[0.1, 0.1, 0.1, 3.0, 3.0, 3.0])
    mc = index.monte_carlo(df, n_draws=1000, normalisations=("minmax",))
    s = mc.sensitivity[mc.sensitivity["output"] == "mean_abs_rank_shift"]
    first = dict(zip(s["factor"], s["first_order"], strict=True))
    assert list(first) == ["weights", "weight:x", "weight:y", "noise:x", "noise:y"]
    assert first["noise:x"] == pytest.approx(0.0, abs=0.05)
    assert first["noise:y"] > 0.3
    assert first["noise:y"] > first["weights"]


# ----------------------------------------------------------------------------- errors


def test_bad_normalisation_name():
    with pytest.raises(ParameterError, match=r"normalisation: 'rank' is not allowed; .*'minmax'"):
        index.normalise(frame(HAND), "rank")
    with pytest.raises(ParameterError, match=r"'l2' is not allowed; choose one of 'minmax', 'zs"):
        index.composite(frame(HAND), normalisation="l2")
    with pytest.raises(ParameterError, match=r"normalisations: 'pca' is not allowed"):
        index.monte_carlo(frame(HAND), normalisations=("minmax", "pca"))
    with pytest.raises(ParameterError, match=r"normalisations: give at least one"):
        index.monte_carlo(frame(HAND), normalisations=())


def test_bad_aggregation():
    with pytest.raises(ParameterError, match=r"aggregation: 'harmonic' is not allowed; .*'geo"):
        index.composite(frame(HAND), aggregation="harmonic")
    with pytest.raises(ParameterError, match=r"aggregation: 'harmonic' is not allowed"):
        index.aggregate(index.normalise(frame(HAND)), method="harmonic")
    with pytest.raises(ParameterError, match=r"'geometric' is not defined on z-scores"):
        index.composite(frame(HAND), normalisation="zscore", aggregation="geometric")
    with pytest.raises(ParameterError, match=r"'geometric' is not defined on z-scores"):
        index.monte_carlo(frame(HAND), aggregation="geometric")
    # min-max without a floor has zeros: named
    with pytest.raises(ParameterError, match=r"needs values > 0; 'x' is 0 for 'a'"):
        index.aggregate(index.normalise(frame(HAND)), method="geometric")


@pytest.mark.parametrize(
    "weights", [[1, -1], [0, 0], {"x": -0.5, "y": 2}, [1, float("nan")], ["a", 1]]
)
def test_negative_or_zero_sum_weights(weights):
    with pytest.raises(
        ParameterError, match=r"weights must be ≥ 0 and sum to a positive value; got"
    ):
        index.composite(frame(HAND), weights=weights)


def test_weights_of_the_wrong_length_or_names():
    with pytest.raises(
        ParameterError,
        match=r"3 value\(s\) given, expected 2, one per indicator in this order: \['x', 'y'\]",
    ):
        index.composite(frame(HAND), weights=[1, 2, 3])
    with pytest.raises(
        ParameterError, match=r"unknown indicator\(s\) \['z'\]; the indicators are \['x', 'y'\]"
    ):
        index.composite(frame(HAND), weights={"x": 1, "y": 1, "z": 1})
    with pytest.raises(ParameterError, match=r"no weight for \['y'\]"):
        index.monte_carlo(frame(HAND), weights={"x": 1})
    with pytest.raises(ParameterError, match=r"weights: expected None, a mapping or a sequence"):
        index.composite(frame(HAND), weights="x")


def test_constant_indicator_is_named():
    with pytest.raises(ParameterError, match=r"indicator 'y' is constant \(4\) across the 3"):
        index.composite(frame({"x": HAND["x"], "y": [4.0, 4.0, 4.0]}))


def test_nan_value_names_the_indicator_and_the_territory():
    with pytest.raises(ParameterError, match=r"value of indicator 'y' for territory 'b' is nan"):
        index.composite(frame({"x": HAND["x"], "y": [5.0, np.nan, 3.0]}))
    with pytest.raises(ParameterError, match=r"indicator 'x' for territory 'c' is inf"):
        index.normalise(frame({"x": [1.0, 2.0, np.inf]}))


def test_missing_and_duplicate_values():
    df = frame(HAND)
    with pytest.raises(InsufficientDataError, match=r"no value of 'y' for 'b'"):
        index.composite(df.drop(index=4))
    with pytest.raises(ParameterError, match=r"several values of indicator 'x' for territory 'a'"):
        index.composite(pd.concat([df, df.iloc[[0]]]))
    with pytest.raises(ParameterError, match=r"lacks column\(s\) value"):
        index.composite(df.drop(columns="value"))
    with pytest.raises(ParameterError, match=r"indicator 'x' has mixed units"):
        index.composite(df.assign(unit=["u", "u", "v", "w", "w", "w"]))


def test_bad_sd_direction_and_floor():
    with pytest.raises(ParameterError, match=r"sd of indicator 'x' for territory 'b' is -1"):
        index.monte_carlo(frame(HAND, sd=[0.0, -1.0, 0.0, 0.0, 0.0, 0.0]))
    with pytest.raises(ParameterError, match=r"direction of 'y': expected \+1 .* or -1, got 2"):
        index.composite(frame(HAND), direction={"y": 2})
    with pytest.raises(ParameterError, match=r"direction: unknown indicator\(s\) \['z'\]"):
        index.composite(frame(HAND), direction={"z": -1})
    with pytest.raises(ParameterError, match=r"floor: only min-max"):
        index.normalise(frame(HAND), "zscore", floor=0.1)


@pytest.mark.parametrize("n_draws", [0, -5, 2.5, True])
def test_n_draws_below_one(n_draws):
    with pytest.raises(ParameterError, match=r"n_draws: expected an integer >= 1, got"):
        index.monte_carlo(frame(HAND), n_draws=n_draws)


@pytest.mark.parametrize("concentration", [0, -1.0, float("nan")])
def test_bad_concentration(concentration):
    with pytest.raises(ParameterError, match=r"concentration: expected a number > 0"):
        index.monte_carlo(frame(HAND), concentration=concentration)
