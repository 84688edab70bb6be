"""The label-effect layer: known answers worked by hand on tiny panels, agreement with
pyfixest, recovery of a known effect on SYNTHETIC-TEST-DATA panels, and every error path."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from analysis.core.errors import AnalysisError, InsufficientDataError, ParameterError
from analysis.core.synthetic import SYNTHETIC_LABEL
from analysis.methods import label_effect as le
from analysis.methods import panels


def _panel(rows: dict[str, tuple[int, list[float]]], years: list[int]) -> pd.DataFrame:
    """unit -> (first_treated, outcomes by year) as a long panel."""
    return pd.DataFrame(
        [
            {"unit": u, "year": y, "outcome": v, "first_treated": g}
            for u, (g, values) in rows.items()
            for y, v in zip(years, values, strict=True)
        ]
    )


def _hand_panel(block_2020: float = 12.0) -> pd.DataFrame:
    """One treated unit (10 -> 20), four block peers of size 10, five distant controls of
    size 100 that stay constant: the blocks are the treated unit and the four peers."""
    rows = {"T": (2020, [10, 20])}
    for name, after in zip("abcd", [11, 9, block_2020, 10], strict=True):
        rows[f"peer-{name}"] = (0, [10, after])
    for i in range(5):
        rows[f"far-{i}"] = (0, [100, 100])
    return _panel(rows, [2019, 2020])


# ---------------------------------------------------------------------------------------
# known answers worked by hand
# ---------------------------------------------------------------------------------------


def test_two_years_poisson_is_the_ratio_of_ratios():
    """With one pre-year the imputed count is the treated pre count times the comparison
    units' growth: 20 / (10 · 542 / 540) - 1 (comparison totals 540 -> 542)."""
    out = le.estimate(_hand_panel(), n_draws=999, leads=0, lags=0, alpha=0.3)
    overall = out.set_index("term").loc["overall"]
    assert overall["estimate"] == pytest.approx(20 * 540 / (10 * 542) - 1, rel=1e-12)
    assert (overall["n_treated"], overall["n_control"]) == (1, 9)


def test_exhaustive_randomisation_p_value_and_interval_by_hand():
    """Five assignments: the treated unit T or one of its 4 peers gets the label; every
    other unit is a comparison unit (2019 total 540; 2020 total 542 + x - v when the peer
    going 10 -> v is labelled, x being T's 2020 count under the null, 20 / exp(δ)). With one
    labelled unit t = θ: θ_T = log(54 x / 542), θ_v = log(54 v / (542 + x - v)).

    At δ = 0 (x = 20), θ_T = log(1080 / 542) = 0.689 and the peers' |θ_v| are at most
    log(648 / 550) = 0.164: only T reaches it, p = 1/5. At alpha 0.3 an effect is kept while
    a peer reaches T (p = 2/5), and the binding peer is v = 12 on both sides:
    - low end, θ_T = θ_12: 54 x (x + 530) = 648 · 542, so x² + 530 x - 6504 = 0, x = 12,
      δ = log(20 / 12);
    - high end, -θ_T = θ_12: 542 (x + 530) = 54 · 648 x, x = 287260 / 34450,
      δ = log(689000 / 287260)."""
    out = le.estimate(_hand_panel(), n_draws=999, leads=0, lags=0, alpha=0.3)
    overall = out.set_index("term").loc["overall"]
    assert overall["estimate"] == pytest.approx(1080 / 542 - 1, rel=1e-12)
    assert overall["p_value"] == pytest.approx(1 / 5)
    assert overall["ci_low"] == pytest.approx(20 / 12 - 1, abs=2e-4)
    assert overall["ci_high"] == pytest.approx(689000 / 287260 - 1, abs=2e-4)


def test_a_peer_with_a_larger_change_doubles_the_p_value():
    """A peer going 10 -> 30: when it is labelled its comparison totals are 540 and 550, so
    θ = log(30 · 540 / (10 · 550)) = 1.080, above the observed log(20 · 540 / (10 · 560))
    = 0.657: two of five assignments reach the observed statistic, p = 2/5."""
    out = le.estimate(_hand_panel(block_2020=30.0), n_draws=999, leads=0, lags=0, alpha=0.3)
    assert out.set_index("term").loc["overall", "p_value"] == pytest.approx(2 / 5)


def test_two_labelled_units_enumerated_by_hand():
    """Two labelled units, each in a block with one peer of its size, so 4 assignments, all
    enumerated. T1 10 -> 11 (peer P1 10 -> 14), T2 20 -> 21 (peer P2 20 -> 24), five small
    units flat at 4. The comparison group of an assignment is every unit it does not label.

    With one pre-year, θ = log(S1 C0 / (S0 C1)) (S labelled, C comparison totals) and the
    two labelled units' residuals r = y1 - (S1 / S0) y0 are ±r, so se = √(2 · 2r²) / S1:

    ===========  =======  =======  =============================  ======  ======  =====
    labelled     S0, S1   C0, C1   θ                              |r|     se      t
    ===========  =======  =======  =============================  ======  ======  =====
    T1, T2       30, 32   50, 58   log(32·50 / (30·58)) = -0.084  1/3     1/48    -4.03
    T1, P2       30, 35   50, 55   log(35/33) = 0.059             2/3     4/105   1.54
    P1, T2       30, 35   50, 55   log(35/33) = 0.059             7/3     2/15    0.44
    P1, P2       30, 38   50, 52   log(38·50 / (30·52)) = 0.197   4/3     4/57    2.81
    ===========  =======  =======  =============================  ======  ======  =====

    Only the observed assignment reaches |t| = 4.03: p = 1/4, and at alpha 0.3 the
    interval must exclude 0. The estimate is the observed assignment's θ: -8.0 % (the
    labelled units grew 7 % while their comparison grew 16 %). The former test statistic
    compared the labelled units with the flat units only (θ = log(32/30) > 0, p = 3/4): it
    tested another number than the one reported."""
    rows = {"T1": (2020, [10, 11]), "T2": (2020, [20, 21])}
    rows.update({"P1": (0, [10, 14]), "P2": (0, [20, 24])})
    rows.update({f"flat-{i}": (0, [4, 4]) for i in range(5)})
    out = le.estimate(_panel(rows, [2019, 2020]), n_draws=999, leads=0, lags=0, alpha=0.3)
    overall = out.set_index("term").loc["overall"]
    assert overall["estimate"] == pytest.approx(32 * 50 / (30 * 58) - 1, rel=1e-12)
    assert overall["p_value"] == pytest.approx(1 / 4)
    assert overall["ci_low"] < overall["estimate"] < overall["ci_high"] < 0


@pytest.mark.parametrize(
    ("seed", "effect", "pretrend", "alpha", "scale"),
    [
        (0, 0.0, 0.0, 0.05, "count"),
        (3, 0.0, 0.0, 0.2, "count"),
        (1, 0.0, 0.06, 0.2, "count"),
        (2, 0.3, 0.0, 0.05, "count"),
        (4, 0.15, 0.03, 0.1, "count"),
        (5, 0.3, 0.0, 0.2, "log1p"),
        (6, 0.0, 0.06, 0.1, "log1p"),
    ],
)
def test_p_value_below_alpha_exactly_when_the_interval_excludes_zero(
    seed, effect, pretrend, alpha, scale
):
    """The intervals invert the test: on every term, overall, leads and lags, p <= alpha
    holds exactly when 0 is outside the (1 - alpha) interval, with the same draws and seed;
    and the interval holds the estimate (SYNTHETIC-TEST-DATA panels with and without an
    effect and a pre-trend, so that both verdicts occur)."""
    panel = panels.simulate_panel(
        n_units=200,
        years=range(2010, 2020),
        cohorts={2013: 4, 2016: 3},
        effect=effect,
        pretrend=pretrend,
        seed=seed,
        treated_among=30,
    )
    out = le.estimate(
        panel, outcome_scale=scale, n_draws=199, seed=seed, leads=3, lags=3, alpha=alpha
    )
    out = out[out["term"] != "pretrend"]
    assert len(out) == 8
    rejected = out["p_value"] <= alpha
    excluded = (out["ci_low"] > 0) | (out["ci_high"] < 0)
    assert (rejected == excluded).all(), out[rejected != excluded]
    assert ((out["ci_low"] <= out["estimate"]) & (out["estimate"] <= out["ci_high"])).all()


def test_log1p_two_years_by_hand():
    """log(1+y): treated 9 -> 19 gains log 2; the seven comparison units gain log 2 (3 -> 7
    and five 1 -> 3) or 0 (1 -> 1), on average 6/7 log 2; effect 2^(1/7) - 1."""
    rows = {"T": (2020, [9, 19]), "A": (0, [3, 7]), "B": (0, [1, 1])}
    rows.update({f"c{i}": (0, [1, 3]) for i in range(5)})
    out = le.estimate(
        _panel(rows, [2019, 2020]), outcome_scale="log1p", leads=0, lags=0, alpha=0.5, block_size=1
    )
    overall = out.set_index("term").loc["overall"]
    assert overall["estimate"] == pytest.approx(2 ** (1 / 7) - 1, rel=1e-12)


def test_leads_are_deviations_from_the_fitted_pre_path():
    """Cohort 2021 (5, 15 before, 30 after), twelve comparison units flat at 100. Solving the
    score equations by hand: year effects ∝ 1205, 1215, 1210 (the pre-year totals and, for
    2021, their mean), the treated unit's effect 20 / 2420, so its fitted pre path is
    20·1205/2420 and 20·1215/2420 and its 2021 counterfactual 20·1210/2420 = 10. Leads are
    the deviations from that path (no reference year dropped)."""
    rows = {"T": (2021, [5, 15, 30])}
    rows.update({f"c{i}": (0, [100, 100, 100]) for i in range(12)})
    out = le.estimate(_panel(rows, [2019, 2020, 2021]), n_draws=999, leads=2, lags=0, alpha=0.3)
    ev = out[out["term"] == "event"].set_index("event_time")["estimate"]
    assert ev[-2.0] == pytest.approx(5 * 2420 / (20 * 1205) - 1, rel=1e-10)
    assert ev[-1.0] == pytest.approx(15 * 2420 / (20 * 1215) - 1, rel=1e-10)
    assert ev[0.0] == pytest.approx(30 / 10 - 1, rel=1e-10)
    assert out["term"].tolist() == ["overall", "event", "event", "event", "pretrend"]


# ---------------------------------------------------------------------------------------
# agreement with pyfixest
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return panels.simulate_panel(
        n_units=200,
        years=range(2010, 2020),
        cohorts={2013: 4, 2016: 3},
        effect=0.25,
        seed=7,
        treated_among=30,
    )


def test_poisson_cells_match_pyfixest_fepois(small):
    """Every cohort × post-year coefficient of fepois (unit and year fixed effects) equals the
    cohort-table solution; the event rows are their counterfactual-weighted averages."""
    import pyfixest as pf

    df = small.copy()
    names = []
    for g in (2013, 2016):
        for s in range(g, 2020):
            names.append(f"d{g}_{s}")
            df[names[-1]] = ((df["first_treated"] == g) & (df["year"] == s)).astype(float)
    fit = pf.fepois(
        "outcome ~ " + " + ".join(names) + " | unit + year",
        data=df,
        iwls_tol=1e-13,
        iwls_maxiter=200,
    )
    coef = fit.coef()
    d = le._design(small, "outcome", "count", "never", None)
    cells = le._stats(d, d.z.sum(axis=0), d.z[d.treated][None], le._term_masks(d, [None]), True)
    cells = cells.cells
    for c, g in enumerate((2013, 2016)):
        for s in range(g, 2020):
            assert cells[c, s - 2010] == pytest.approx(coef[f"d{g}_{s}"], abs=1e-10)
    out = le.estimate(small, n_draws=99, leads=0, lags=3)
    ev = out[out["term"] == "event"].set_index("event_time")["estimate"]
    tot = df.groupby(["first_treated", "year"])["outcome"].sum()
    for e in range(4):
        num = sum(tot[(g, g + e)] for g in (2013, 2016))
        den = sum(tot[(g, g + e)] * math.exp(-coef[f"d{g}_{g + e}"]) for g in (2013, 2016))
        assert ev[float(e)] == pytest.approx(num / den - 1, rel=1e-9)


def test_log1p_overall_matches_pyfixest_did2s(small):
    """The imputation estimator's mean effect on log(1+y) equals exact least squares on the
    untreated observations (numpy, to 1e-10) and Gardner's two-stage estimator (pyfixest's
    did2s, whose iterative demeaning stops at a tolerance: to 1e-5)."""
    import pyfixest as pf

    df = small.copy()
    df["z"] = np.log1p(df["outcome"])
    df["treat"] = (df["first_treated"] > 0) & (df["year"] >= df["first_treated"])
    fit = pf.did2s(
        df,
        yname="z",
        first_stage="~ 0 | unit + year",
        second_stage="~ treat",
        treatment="treat",
        cluster="unit",
    )
    beta = float(fit.coef().iloc[0])
    out = le.estimate(small, outcome_scale="log1p", n_draws=99, leads=0, lags=0)
    got = out.set_index("term").loc["overall", "estimate"]
    assert got == pytest.approx(math.expm1(beta), rel=1e-5)
    untreated = df[~df["treat"]]
    x = pd.concat(
        [
            pd.get_dummies(untreated["unit"], dtype=float),
            pd.get_dummies(untreated["year"], dtype=float).iloc[:, 1:],
        ],
        axis=1,
    )
    b = dict(
        zip(x.columns, np.linalg.lstsq(x.to_numpy(), untreated["z"].to_numpy())[0], strict=True)
    )
    treated = df[df["treat"]]
    fitted = [b[u] + b.get(y, 0.0) for u, y in zip(treated["unit"], treated["year"], strict=True)]
    exact = math.expm1(float(np.mean(treated["z"].to_numpy() - fitted)))
    assert got == pytest.approx(exact, rel=1e-10)


def test_twfe_biased_is_pyfixest_feols_and_says_it_is_biased(small):
    import pyfixest as pf

    df = small.assign(
        z=np.log1p(small["outcome"]),
        post=((small["first_treated"] > 0) & (small["year"] >= small["first_treated"])).astype(
            float
        ),
    )
    b = pf.feols("z ~ post | unit + year", data=df, vcov={"CRV1": "unit"}).coef()["post"]
    out = le.estimate(small, estimator="twfe_biased")
    assert out["estimator"].tolist() == ["twfe_biased (biased baseline)"]
    assert out["estimate"].iloc[0] == pytest.approx(math.expm1(b), rel=1e-10)
    assert out["ci_low"].iloc[0] < out["estimate"].iloc[0] < out["ci_high"].iloc[0]


# ---------------------------------------------------------------------------------------
# recovery on generated panels
# ---------------------------------------------------------------------------------------


def test_recovers_a_known_effect_and_finds_none_where_there_is_none():
    big = panels.simulate_panel(n_units=400, effect=0.3, seed=3, treated_among=40)
    null = panels.simulate_panel(n_units=400, effect=0.0, seed=3, treated_among=40)
    hit = le.estimate(big, n_draws=199, leads=2, lags=2).set_index("term").loc["overall"]
    assert 0.15 < hit["estimate"] < 0.45
    assert hit["p_value"] < 0.05 and hit["ci_low"] < 0.3 < hit["ci_high"]
    none = le.estimate(null, n_draws=199, leads=2, lags=2).set_index("term").loc["overall"]
    assert abs(none["estimate"]) < 0.15
    assert none["p_value"] > 0.05 and none["ci_low"] < 0 < none["ci_high"]


def test_the_pretrend_test_detects_a_violation_of_parallel_trends():
    """Labelled units growing 8 % a year faster before their label: the joint test of the
    leads rejects; on the same panel without the violation it does not."""
    bent = panels.simulate_panel(n_units=400, pretrend=0.08, seed=3, treated_among=40)
    flat = panels.simulate_panel(n_units=400, seed=3, treated_among=40)
    p_bent = le.estimate(bent, n_draws=199, leads=4, lags=0).set_index("term")
    p_flat = le.estimate(flat, n_draws=199, leads=4, lags=0).set_index("term")
    assert p_bent.loc["pretrend", "p_value"] <= 0.01
    assert p_flat.loc["pretrend", "p_value"] > 0.5
    leads = p_bent[p_bent["event_time"] < 0].sort_values("event_time")["estimate"]
    assert leads.iloc[0] < leads.iloc[-1]  # the deviations rise towards the label


def test_compare_stacks_every_estimator(small):
    out = le.compare(small, n_draws=99, leads=1, lags=1)
    assert list(out.columns) == le.COLUMNS
    assert out["estimator"].unique().tolist() == [
        "etwfe",
        "etwfe (log1p)",
        "callaway_santanna",
        "twfe_biased (biased baseline)",
    ]
    cs = out[out["estimator"] == "callaway_santanna"].set_index("term").loc["overall"]
    assert -0.2 < cs["estimate"] < 0.8 and cs["ci_low"] < cs["estimate"] < cs["ci_high"]


def test_simulated_panel_is_labelled_and_has_the_requested_shape():
    p = panels.simulate_panel(n_units=100, years=range(2010, 2015), cohorts={2012: 3}, seed=1)
    assert p.attrs["synthetic"] == SYNTHETIC_LABEL
    assert p["unit"].str.startswith(SYNTHETIC_LABEL).all()
    assert len(p) == 500 and p.groupby("unit").size().eq(5).all()
    firsts = p.groupby("unit")["first_treated"].first()
    assert firsts.value_counts().to_dict() == {0: 97, 2012: 3}
    size = p.groupby("unit")["population"].first()
    assert set(firsts[firsts > 0].index) <= set(size.nlargest(60).index)
    same = panels.simulate_panel(n_units=100, years=range(2010, 2015), cohorts={2012: 3}, seed=1)
    pd.testing.assert_frame_equal(p, same)


# ---------------------------------------------------------------------------------------
# errors: one line, naming the parameter, column or row
# ---------------------------------------------------------------------------------------


def test_a_design_too_small_for_alpha_is_refused():
    with pytest.raises(InsufficientDataError, match=r"only 5 assignments.*0\.2 > alpha 0\.05"):
        le.estimate(_hand_panel(), leads=0, lags=0)


def test_too_few_draws_are_refused(small):
    with pytest.raises(ParameterError, match=r"n_draws: 9 draws .* at least 20 draws"):
        le.estimate(small, n_draws=9)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.drop(columns="first_treated"), r"lacks column\(s\) first_treated"),
        (lambda p: p.drop(index=3), r"not balanced: unit 'A' has no row for year 2013"),
        (lambda p: pd.concat([p, p.iloc[[0]]]), r"row 0: unit 'A', year 2010 appears twice"),
        (lambda p: p.assign(outcome=p["outcome"].where(p.index != 2, -1)), r"'outcome', row 2"),
        (lambda p: p.assign(outcome=p["outcome"].where(p.index != 2, "x")), r"row 2: 'x' is not"),
        (
            lambda p: p.assign(first_treated=p["first_treated"].where(p.index != 8, 2012)),
            r"'first_treated': unit 'C' has more than one value",
        ),
        (
            lambda p: p.assign(first_treated=p["first_treated"].replace(2012, 2010)),
            r"first treated in 2010, but a treated unit needs at least one year before",
        ),
        (lambda p: p.assign(year=p["year"] + 0.5), r"'year', row 0: .* not an integer"),
    ],
)
def test_bad_panels_are_refused_naming_column_and_row(edit, message):
    rows = {"A": (2012, [1, 2, 3, 4]), "B": (0, [1, 1, 1, 1]), "C": (0, [2, 2, 2, 2])}
    p = _panel(rows, [2010, 2011, 2012, 2013])
    with pytest.raises(ParameterError, match=message):
        panels.check_panel(edit(p))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"estimator": "ols"}, r"estimator: 'ols' is not allowed; choose one of etwfe"),
        ({"outcome_scale": "log"}, r"outcome_scale: 'log' is not allowed"),
        ({"control": "rejected"}, r"control: 'rejected' needs the panel column 'applicant'"),
        ({"alpha": 1.5}, r"alpha: expected a number between 0 and 1"),
        ({"leads": -1}, r"leads: expected an integer >= 0"),
        ({"estimator": "callaway_santanna", "outcome_scale": "count"}, r"log\(1 \+ y\) only"),
        ({"block_size": 80}, r"block_size: 80 comparison units for each of 7 treated units"),
    ],
)
def test_bad_parameters_are_refused(small, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        le.estimate(small.drop(columns="applicant"), **kwargs)


def test_a_cohort_with_no_pre_period_count_is_refused():
    rows = {"T": (2020, [0, 5])}
    rows.update({f"c{i}": (0, [3, 4]) for i in range(10)})
    with pytest.raises(InsufficientDataError, match=r"cohort first treated in 2020 counts 0"):
        le.estimate(_panel(rows, [2019, 2020]), alpha=0.3)


def test_rejected_applicants_as_the_comparison_group():
    p = panels.simulate_panel(
        n_units=300, years=range(2010, 2018), cohorts={2014: 3}, seed=2, n_rejected=30
    )
    out = le.estimate(p, control="rejected", n_draws=99, leads=0, lags=0)
    assert out["n_control"].iloc[0] == 30
    assert out["n_treated"].iloc[0] == 3


# ---------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def panel_csv(tmp_path_factory, small):
    path = tmp_path_factory.mktemp("panel") / f"{SYNTHETIC_LABEL}-panel.csv"
    small.to_csv(path, index=False)
    return path


def test_cli_writes_the_tidy_columns(panel_csv, tmp_path, capsys):
    out = tmp_path / "effect.csv"
    code = main(
        ["label-effect", "--panel", str(panel_csv), "--draws", "99", "--lags", "1"]
        + ["--leads", "1", "--format", "csv", "--out", str(out)]
    )
    assert code == 0
    table = pd.read_csv(out)
    assert list(table.columns) == le.COLUMNS
    assert table["term"].tolist() == ["overall", "event", "event", "event", "pretrend"]
    direct = le.estimate(panel_csv and pd.read_csv(panel_csv), n_draws=99, leads=1, lags=1)
    assert table["estimate"].iloc[0] == pytest.approx(direct["estimate"].iloc[0], rel=1e-9)
    assert "SYNTHETIC TEST DATA, NOT RESULTS" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outcome", "nope"], r"panel\.csv: panel lacks column\(s\) nope"),
        (["--draws", "5"], r"n_draws: 5 draws cannot give a p-value"),
        (["--draws", "0"], r"--draws: 0 is outside the allowed range"),
        (["--alpha", "2"], r"2 is not between 0 and 1"),
        (["--estimator", "all", "--scale", "count"], r"--scale: --estimator all runs every"),
    ],
)
def test_cli_errors_are_one_line(panel_csv, capsys, args, message):
    code = main(["label-effect", "--panel", str(panel_csv), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert pytest.importorskip("re").search(message, err), err
    assert "Traceback" not in err


def test_cli_refuses_to_overwrite_its_panel_and_reports_bad_lines(panel_csv, tmp_path, capsys):
    assert main(["label-effect", "--panel", str(panel_csv), "--out", str(panel_csv)]) == 2
    assert "is the input --panel" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("unit,year,outcome,first_treated\nA,2010,1,0\nA,2011,x,0\n", encoding="utf-8")
    assert main(["label-effect", "--panel", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv: panel column 'outcome', line 3: 'x' is not a finite number" in err


def test_the_help_is_fast_and_imports_nothing_heavy():
    code = (
        "import sys\nfrom analysis.cli import main\n"
        "try:\n    main(['label-effect', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('heavy:' + ','.join(m for m in ('pandas', 'numpy', 'pyfixest', 'diff_diff', "
        "'scipy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "heavy:"
    assert "--control" in out.stdout


def test_errors_are_analysis_errors():
    assert issubclass(InsufficientDataError, AnalysisError)


# ---------------------------------------------------------------------------------------
# synthetic control, sensitivity, power
# ---------------------------------------------------------------------------------------


def _sc_panel() -> pd.DataFrame:
    """T = 0.3 A + 0.7 B before 2015 (exactly), +50 % after; C and D are unrelated."""
    years = list(range(2010, 2018))
    a = [10, 12, 11, 13, 12, 14, 13, 15]
    b = [20, 19, 22, 21, 23, 22, 24, 23]
    c = [5, 9, 4, 8, 3, 9, 4, 8]
    d = [30, 31, 29, 33, 28, 34, 27, 35]
    t = [0.3 * x + 0.7 * y for x, y in zip(a, b, strict=True)]
    t = [v * (1.5 if yr >= 2015 else 1.0) for v, yr in zip(t, years, strict=True)]
    rows = {"T": (2015, t), "A": (0, a), "B": (0, b), "C": (0, c), "D": (0, d)}
    return _panel(rows, years)


def test_synthetic_control_recovers_exact_weights_and_flags_the_exact_fit():
    from analysis.methods.synthetic_control import synthetic_control

    res = synthetic_control(_sc_panel(), "T", scale="level")
    w = res.weights.set_index("unit")["weight"]
    assert w.to_dict() == pytest.approx({"B": 0.7, "A": 0.3}, abs=1e-6)
    s = res.summary.iloc[0]
    assert s["effect"] == pytest.approx(0.5, abs=1e-6)
    assert s["pre_rmspe"] == pytest.approx(0.0, abs=1e-5)
    assert s["n_donors"] == 4 and s["n_pre_years"] == 5
    assert any("fitted exactly" in n for n in res.notes)
    # the exact pre-fit makes the treated ratio infinite: rank 1 of 5, p = 1/5
    assert (s["rank"], s["p_value"]) == (1, pytest.approx(1 / 5))


def test_synthetic_control_weights_match_pysyncon():
    """The same quadratic programme solved by pysyncon (SLSQP, its default tolerance): the
    weights agree to 2e-3 and ours reach at most its loss."""
    from pysyncon import Synth

    from analysis.methods.synthetic_control import simplex_weights, synthetic_control

    p = panels.simulate_panel(
        n_units=60,
        years=range(2008, 2020),
        cohorts={2015: 1},
        effect=0.3,
        seed=5,
        treated_among=10,
    )
    unit = p.loc[p["first_treated"] > 0, "unit"].iloc[0]
    res = synthetic_control(p, unit, n_donors=12)
    donors = sorted(res.placebos["unit"])
    wide = p.pivot(index="year", columns="unit", values="outcome")
    pre = wide.index < 2015
    x = wide / wide[pre].mean()
    x0, x1 = x.loc[pre, donors], x.loc[pre, unit]
    ref = Synth()
    v = (pd.concat([x0, x1], axis=1).std(axis=1) ** 2).to_numpy()
    ref.fit(X0=x0, X1=x1, Z0=x0, Z1=x1, custom_V=v)
    ours = simplex_weights(x1.to_numpy(), x0.to_numpy())
    assert ours == pytest.approx(np.asarray(ref.W), abs=2e-3)
    loss = lambda w: float(((x1.to_numpy() - x0.to_numpy() @ w) ** 2).sum())  # noqa: E731
    assert loss(ours) <= loss(np.asarray(ref.W)) + 1e-12
    got = res.weights.set_index("unit")["weight"].to_dict()
    want = {d: w for d, w in zip(donors, ours, strict=True) if w > 1e-6}
    assert got == pytest.approx(want, abs=1e-9)


def test_synthetic_control_errors():
    from analysis.methods.synthetic_control import synthetic_control

    p = _sc_panel()
    with pytest.raises(ParameterError, match=r"unit: 'X' is not in the panel"):
        synthetic_control(p, "X")
    with pytest.raises(ParameterError, match=r"first_year: 2011 leaves 1 pre-label year"):
        synthetic_control(p, "T", first_year=2011)
    with pytest.raises(ParameterError, match=r"donors: 'T' is treated"):
        synthetic_control(p, "A", first_year=2015, donors=["T", "B"])
    with pytest.raises(ParameterError, match=r"scale: 'log' is not allowed"):
        synthetic_control(p, "T", scale="log")


def test_sensitivity_table_widens_with_m(small):
    out = le.sensitivity(small, m_values=(0.0, 0.5, 1.0))
    assert list(out.columns) == ["M", "ci_low", "ci_high", "breakdown_m"]
    widths = (out["ci_high"] - out["ci_low"]).to_numpy()
    assert np.all(np.diff(widths) >= 0)
    cs = le.estimate(small, estimator="callaway_santanna").set_index("term")
    assert out["ci_low"].iloc[0] <= cs.loc["overall", "estimate"] <= out["ci_high"].iloc[0]


def test_minimum_detectable_effect_interpolates_the_power_curve():
    table = pd.DataFrame({"effect": [0.1, 0.2, 0.3], "power": [0.2, 0.6, 0.9]})
    assert le._interpolate_mde(table, 0.8) == pytest.approx(0.2 + 0.2 / 0.3 * 0.1)
    assert math.isnan(le._interpolate_mde(table.assign(power=[0.1, 0.2, 0.3]), 0.8))
    p = panels.simulate_panel(
        n_units=150, years=range(2010, 2018), seed=4, treated_among=40, cohorts={2014: 8, 2016: 4}
    )
    mde = le.minimum_detectable_effect(p, n_sims=6, n_draws=19, effects=(0.02, 1.0), seed=1)
    assert mde["power"].tolist()[1] == 1.0 and mde["power"].tolist()[0] < 0.8
    assert 0.02 < mde.attrs["mde"] <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cohorts": {2030: 2}}, r"cohorts: first treated year 2030 is not inside 2009-2024"),
        (
            {"cohorts": {2015: 70}},
            r"cohorts: 70 treated unit\(s\) must be > 0 and <= treated_among",
        ),
        ({"effect": -1.0}, r"effect: -1.0 would make the mean negative"),
        ({"persistence": 1.0}, r"persistence: 1.0 is not in \[0, 1\)"),
        ({"n_rejected": 50}, r"n_rejected: 15 treated \+ 50 rejected applicants exceed"),
        ({"years": [2010]}, r"years: expected at least two consecutive years"),
    ],
)
def test_simulator_parameters_are_checked(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        panels.simulate_panel(n_units=200, seed=0, **kwargs)


def test_sensitivity_and_power_parameters_are_checked(small):
    with pytest.raises(ParameterError, match=r"m_values: expected numbers >= 0"):
        le.sensitivity(small, m_values=(-1.0,))
    with pytest.raises(ParameterError, match=r"power: expected a number between 0 and 1"):
        le.minimum_detectable_effect(small, power=1.2)
    with pytest.raises(ParameterError, match=r"n_sims: expected an integer >= 2"):
        le.minimum_detectable_effect(small, n_sims=1)
    with pytest.raises(
        ParameterError, match=r"control: 'nevr' is not allowed; choose one of never, rejected"
    ):
        le.minimum_detectable_effect(small, control="nevr")
