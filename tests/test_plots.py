"""Figures: what is drawn (bars, points, order, colours, whiskers, gaps, captions), that
rendering is deterministic, that nothing leaks into pyplot or rcParams, and the errors."""

from __future__ import annotations

import struct

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from analysis.core.errors import InsufficientDataError, ParameterError
from analysis.core.territories import CAPITALE_IDS, FOCAL_TERRITORY
from analysis.outputs import figures as plots

FOCAL = to_rgba(plots.HIGHLIGHT)
GREY = to_rgba(plots.MUTED)


# ----------------------------------------------------------------------------- inputs


def series_frame() -> pd.DataFrame:
    """Aix-Marseille with 2016 and 2020-2021 missing (2020 as a NaN row), and France."""
    aix = pd.DataFrame(
        {
            "territory_id": FOCAL_TERRITORY,
            "year": [2014, 2015, 2017, 2018, 2019, 2020, 2022, 2023],
            "value": [60.0, 65.0, 72.0, 80.0, 85.0, np.nan, 95.0, 100.0],
            "source_ids": "provence-promotion-2015;provence-promotion-2024",
        }
    )
    fr = pd.DataFrame(
        {
            "territory_id": "france",
            "year": range(2014, 2024),
            "value": np.linspace(50.0, 120.0, 10),
            "source_ids": "business-france-2024",
        }
    )
    return pd.concat([aix, fr], ignore_index=True).assign(
        indicator="implantation_projects", unit="projects"
    )


def bars_frame() -> pd.DataFrame:
    ids = list(CAPITALE_IDS[:6])
    value = [12.0, 30.5, 7.25, 30.5, 18.0, 3.0]
    return pd.DataFrame(
        {
            "territory_id": ids,
            "indicator": "startups_per_100k",
            "year": 2023,
            "value": value,
            "low": [v * 0.8 for v in value],
            "high": [v * 1.3 for v in value],
            "unit": "start-ups per 100,000 inhabitants",
            "source_ids": [f"declared-{t};insee-population-2023" for t in ids],
        }
    )


def ove_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "territory_id": ["aix-marseille", "bordeaux", "lille", "toulouse"],
            "observed": [120.0, 40.0, 900.0, 15.0],
            "expected": [100.0, 80.0, 1000.0, 12.0],
            "ratio_low": [1.0, 0.3, 0.8, 0.9],
            "ratio_high": [1.5, 0.7, 1.0, 1.6],
            "source_ids": "sirene-stock-2025",
        }
    )


def shares_frame() -> pd.DataFrame:
    rows = [
        (ind, y, v)
        for ind, vals in {
            "digital_share_projects": [20.0, 22.0, 25.0],
            "digital_share_jobs": [15.0, np.nan, 21.0],
            "foreign_share": [40.0, 42.0, 47.5],
        }.items()
        for y, v in zip([2021, 2022, 2023], vals, strict=True)
    ]
    df = pd.DataFrame(rows, columns=["indicator", "year", "value"])
    return df.assign(territory_id=FOCAL_TERRITORY, unit="percent", source_ids="provence-promotion")


def parts_frame() -> pd.DataFrame:
    parts = {"aix-marseille": [20, 30, 40], "bordeaux": [15, 35, 45], "lille": [10, 50, 30]}
    rows = [
        (t, ind, v)
        for t, vals in parts.items()
        for ind, v in zip(["digital", "industry", "services"], vals, strict=True)
    ]
    df = pd.DataFrame(rows, columns=["territory_id", "indicator", "value"])
    return df.assign(year=2023, unit="percent", source_ids="ey-barometer-2024")


def ranks_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "territory_id": ["lille", "aix-marseille", "nantes", "brest"],
            "median_rank": [3.0, 1.0, 2.0, 4.0],
            "rank_low": [2.0, 1.0, 1.0, 3.0],
            "rank_high": [4.0, 3.0, 3.0, 4.0],
            "nominal_rank": [3.0, 2.0, 1.0, 4.0],
            "source_ids": "index-inputs-2024",
        }
    )


# ----------------------------------------------------------------------------- helpers


def gid(ax, key: str) -> list:
    """The artists of `ax` whose gid is `key`, or starts with it when `key` ends in ':'."""
    return [
        a
        for a in ax.get_children()
        if ((a.get_gid() or "").startswith(key) if key.endswith(":") else a.get_gid() == key)
    ]


def caption(fig: Figure) -> str:
    (text,) = [t for t in fig.texts if t.get_gid() == "caption"]
    return text.get_text()


def caption_ids(fig: Figure) -> list[str]:
    """The ids after "Sources:", up to the note (the figure records the note it printed)."""
    note = getattr(fig, "note", None)
    flat = caption(fig).replace("\n", " ")
    head, _, body = flat.partition(": ")
    assert head in ("Source", "Sources")
    if note:
        assert body.endswith(" " + note)
        body = body[: -len(note) - 1]
    return body.split("; ")


def rgba(colour) -> tuple[float, ...]:
    return tuple(np.round(to_rgba(colour), 6))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# ----------------------------------------------------------------------------- theme, state


def test_set_theme_is_idempotent_and_readable():
    with mpl.rc_context():
        plots.set_theme()
        first = {k: mpl.rcParams[k] for k in plots.theme_rc()}
        plots.set_theme()
        assert {k: mpl.rcParams[k] for k in plots.theme_rc()} == first
        assert mpl.rcParams["font.sans-serif"] == ["DejaVu Sans"]
        assert mpl.rcParams["font.size"] == 11
        assert mpl.rcParams["axes.grid"] is True
        colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
        assert [c.lower() for c in colours] == [c.lower() for c in plots.PALETTE]
        assert plots.HIGHLIGHT not in plots.PALETTE and plots.MUTED not in plots.PALETTE


def test_figures_leave_no_pyplot_figure_and_no_rcparam_changed():
    keys = list(plots.theme_rc())
    before_rc = {k: mpl.rcParams[k] for k in keys}
    before_figs = plt.get_fignums()
    figs = [
        plots.time_series(series_frame()),
        plots.ranked_bars(bars_frame(), "low", "high"),
        plots.observed_vs_expected(ove_frame()),
        plots.shares(shares_frame()),
        plots.index_ranks(ranks_frame()),
    ]
    assert plt.get_fignums() == before_figs
    assert {k: mpl.rcParams[k] for k in keys} == before_rc
    for fig in figs:
        assert isinstance(fig, plots.CaptionedFigure)
        # themed at creation, whatever the global rcParams say
        assert fig.axes[0].title.get_fontfamily() == ["sans-serif"]
        assert fig.axes[0].xaxis.label.get_fontsize() == 11


# ----------------------------------------------------------------------------- caption


def test_caption_lists_every_source_of_the_drawn_frames_exactly_once():
    note = "Declared counts are not comparable with each other."
    df = bars_frame()
    fig = plots.ranked_bars(df, "low", "high", note=note)
    expected = sorted({s for ids in df["source_ids"] for s in ids.split(";")})
    ids = caption_ids(fig)
    assert ids == expected  # each once, sorted
    assert list(fig.source_ids) == expected
    assert fig.note == note


def test_caption_wraps_inside_the_figure_without_splitting_ids():
    long_ids = [f"a-rather-long-source-identifier-number-{i:02d}" for i in range(12)]
    df = bars_frame().assign(source_ids=";".join(long_ids))
    fig = plots.ranked_bars(df)
    lines = caption(fig).split("\n")
    assert len(lines) > 1
    for sid in long_ids:
        assert sum(line.count(sid) for line in lines) == 1
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    (text,) = [t for t in fig.texts if t.get_gid() == "caption"]
    box, page = text.get_window_extent(canvas.get_renderer()), fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0
    axes_box = fig.axes[0].get_tightbbox(canvas.get_renderer())
    assert box.y1 <= axes_box.y0  # the caption is below everything the axes draw


def test_add_caption_on_a_plain_figure_keeps_the_axes_height():
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    height_in = ax.get_position().height * 4
    plots.add_caption(fig, "b-source;a-source", note="Note: a test.")
    assert caption(fig).startswith("Sources: a-source; b-source")
    assert fig.get_figheight() > 4
    assert ax.get_position().height * fig.get_figheight() == pytest.approx(height_in)
    with pytest.raises(ParameterError, match="already has a caption"):
        plots.add_caption(fig, "x")
    with pytest.raises(ParameterError, match="no source ids"):
        plots.add_caption(Figure(), ";")


def test_sources_are_required_unless_given():
    df = bars_frame().drop(columns="source_ids")
    with pytest.raises(ParameterError, match=r"source_ids \(or source_id\)"):
        plots.ranked_bars(df)
    assert caption_ids(plots.ranked_bars(df, sources=["manual-2024"])) == ["manual-2024"]
    assert caption_ids(plots.ranked_bars(df.assign(source_id="one-id"))) == ["one-id"]
    gap = bars_frame()
    gap.loc[2, "source_ids"] = ""
    with pytest.raises(ParameterError, match="'brest'.*no source id"):
        plots.ranked_bars(gap)


# ----------------------------------------------------------------------------- time series


def test_time_series_draws_no_segment_across_a_missing_year():
    df = series_frame()
    fig = plots.time_series(df)
    ax = fig.axes[0]
    focal_lines = gid(ax, f"series:{FOCAL_TERRITORY}")
    observed = df[(df["territory_id"] == FOCAL_TERRITORY) & df["value"].notna()]
    assert len(focal_lines) == 3  # 2014-2015, 2017-2019, 2022-2023
    xs = np.concatenate([line.get_xdata() for line in focal_lines])
    assert sorted(xs.tolist()) == observed["year"].tolist()
    for line in focal_lines:
        assert np.all(np.diff(line.get_xdata()) == 1)  # only consecutive years are joined
        assert line.get_marker() == "o"
        assert rgba(line.get_color()) == rgba(FOCAL)
    (france,) = gid(ax, "series:france")
    assert rgba(france.get_color()) == rgba(GREY)
    assert len(france.get_xdata()) == 10
    assert "aix-marseille 2016, 2020\u20132021" in caption(fig)
    assert caption_ids(fig) == [
        "business-france-2024",
        "provence-promotion-2015",
        "provence-promotion-2024",
    ]
    assert ax.get_ylabel() == "projects"
    assert ax.get_ylim()[0] == 0


def test_time_series_band_and_dashed_projection():
    df = series_frame().query("territory_id == @FOCAL_TERRITORY")
    years = np.arange(2014, 2027)
    mean = np.linspace(58.0, 115.0, len(years))
    ci = pd.DataFrame({"year": years, "mean": mean, "ci_low": mean - 5, "ci_high": mean + 7})
    fig = plots.time_series(df, ci=ci, ci_label="90% prediction interval")
    ax = fig.axes[0]
    (band,) = gid(ax, "ci-band")
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(ci["ci_low"].min())
    assert ys.max() == pytest.approx(ci["ci_high"].max())
    (trend,) = gid(ax, "trend")
    (projection,) = gid(ax, "projection")
    assert trend.get_linestyle() == "-" and projection.get_linestyle() == "--"
    assert trend.get_xdata().max() == 2023  # last observed year
    assert list(projection.get_xdata()) == list(range(2023, 2027))
    assert len(gid(ax, "projection-start")) == 1
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["90% prediction interval", "trend", "projection"]


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (
            lambda d: d.drop(columns="year"),
            ParameterError,
            "missing column.*year.*expected columns",
        ),
        (lambda d: d.iloc[0:0], InsufficientDataError, "^nothing to plot: time_series"),
        (lambda d: d.assign(value=np.nan), InsufficientDataError, "^nothing to plot"),
        (
            lambda d: d.assign(indicator=["a", "b"] * 9),
            ParameterError,
            "several indicator values",
        ),
        (lambda d: d.assign(unit=["x", "y"] * 9), ParameterError, "several unit values"),
        (lambda d: pd.concat([d, d.iloc[:1]]), ParameterError, "several values for"),
        (lambda d: d.assign(year=2014.5), ParameterError, "not a year"),
    ],
)
def test_time_series_errors(mutate, error, match):
    with pytest.raises(error, match=match):
        plots.time_series(mutate(series_frame()))


def test_time_series_ci_errors():
    df = series_frame()
    with pytest.raises(ParameterError, match="ci.*missing column.*ci_high"):
        plots.time_series(df, ci=pd.DataFrame({"year": [2024], "ci_low": [1.0]}))
    with pytest.raises(ParameterError, match="ci_low > ci_high in 2024"):
        plots.time_series(df, ci=pd.DataFrame({"year": [2024], "ci_low": [2.0], "ci_high": [1.0]}))
    with pytest.raises(InsufficientDataError, match="^nothing to plot"):
        plots.time_series(df, ci=pd.DataFrame(columns=["year", "ci_low", "ci_high"]))


# ----------------------------------------------------------------------------- ranked bars


def test_ranked_bars_sorted_highlighted_with_whiskers_and_labels():
    df = bars_frame()
    fig = plots.ranked_bars(df, "low", "high")
    ax = fig.axes[0]
    bars = gid(ax, "bar:")
    assert len(bars) == len(df)
    expected = df.sort_values(["value", "territory_id"], ascending=[False, True])
    top_down = sorted(bars, key=lambda b: b.get_y())  # the y axis is inverted: top first
    assert ax.yaxis_inverted()
    assert [b.get_gid()[4:] for b in top_down] == expected["territory_id"].tolist()
    assert [b.get_width() for b in top_down] == expected["value"].tolist()
    assert [t.get_text() for t in ax.get_yticklabels()] == expected["territory_id"].tolist()
    for b in bars:
        assert rgba(b.get_facecolor()) == rgba(
            FOCAL if b.get_gid() == "bar:aix-marseille" else GREY
        )
    (whiskers,) = gid(ax, "whiskers")
    segments = whiskers.get_segments()
    for seg, (_, row) in zip(segments, expected.iterrows(), strict=True):
        assert seg[0][0] == pytest.approx(row["low"]) and seg[1][0] == pytest.approx(row["high"])
        assert seg[0][1] == seg[1][1]
    labels = [t.get_text() for t in gid(ax, "value-label")]
    assert labels == ["30.5", "30.5", "18.0", "12.0", "7.2", "3.0"]  # one format
    assert ax.get_xlabel() == "start-ups per 100,000 inhabitants"


def test_ranked_bars_leaves_out_missing_values_and_says_so():
    df = bars_frame()
    df.loc[df["territory_id"] == "brest", "value"] = np.nan
    fig = plots.ranked_bars(df)
    assert len(gid(fig.axes[0], "bar:")) == len(df) - 1
    assert "No value: brest." in caption(fig)
    assert "declared-brest" not in caption_ids(fig)  # only what is drawn is cited


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda d: plots.ranked_bars(d, low="low"), ParameterError, "both low and high"),
        (
            lambda d: plots.ranked_bars(d.drop(columns="high"), "low", "high"),
            ParameterError,
            "missing column.*high.*expected columns territory_id, value, low, high",
        ),
        (lambda d: plots.ranked_bars(d.iloc[0:0]), InsufficientDataError, "^nothing to plot"),
        (
            lambda d: plots.ranked_bars(d.assign(low=d["value"] + 1), "low", "high"),
            ParameterError,
            "does not contain its value",
        ),
        (
            lambda d: plots.ranked_bars(pd.concat([d, d.iloc[:1]])),
            ParameterError,
            "several rows for territory",
        ),
        (lambda d: plots.ranked_bars(d.assign(year=[2022, 2023] * 3)), ParameterError, "year"),
        (lambda d: plots.ranked_bars(d.assign(value="many")), ParameterError, "not a number"),
        (lambda d: plots.ranked_bars(d.to_dict()), ParameterError, "expected a DataFrame"),
    ],
)
def test_ranked_bars_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(bars_frame())


# ----------------------------------------------------------------------------- observed/expected


def test_observed_vs_expected_log_log_with_identity_and_labels():
    df = ove_frame()
    fig = plots.observed_vs_expected(df)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlim() == ax.get_ylim()
    (points,) = gid(ax, "points")
    offsets = points.get_offsets()
    order = df.sort_values("territory_id")
    assert len(offsets) == len(df)
    np.testing.assert_allclose(offsets[:, 0], order["expected"])
    np.testing.assert_allclose(offsets[:, 1], order["observed"])
    colours = [rgba(c) for c in points.get_facecolors()]
    focal_i = order["territory_id"].tolist().index(FOCAL_TERRITORY)
    assert colours[focal_i] == rgba(FOCAL)
    assert all(c == rgba(GREY) for i, c in enumerate(colours) if i != focal_i)
    assert [t.get_text() for t in gid(ax, "point-label")] == order["territory_id"].tolist()
    (identity,) = gid(ax, "identity")
    (x1, y1), (x2, y2) = identity._xy1, identity._xy2
    assert x1 == y1 and x2 == y2
    (whiskers,) = gid(ax, "ratio-intervals")
    for seg, (_, r) in zip(whiskers.get_segments(), order.iterrows(), strict=True):
        np.testing.assert_allclose(seg[:, 0], [r["expected"]] * 2)
        np.testing.assert_allclose(
            seg[:, 1], [r["expected"] * r["ratio_low"], r["expected"] * r["ratio_high"]]
        )


def test_observed_vs_expected_cannot_draw_zero_on_log_axes_and_says_so():
    df = ove_frame()
    df.loc[df["territory_id"] == "lille", "observed"] = 0.0
    fig = plots.observed_vs_expected(df)
    (points,) = gid(fig.axes[0], "points")
    assert len(points.get_offsets()) == len(df) - 1
    assert "Not drawn (missing, zero or negative): lille." in caption(fig)


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda d: d.drop(columns="expected"), ParameterError, "missing column.*expected"),
        (lambda d: d.drop(columns="ratio_high"), ParameterError, "both ratio_low and ratio_high"),
        (lambda d: d.assign(ratio_low=2.0), ParameterError, "ratio_low <= ratio_high"),
        (lambda d: d.iloc[0:0], InsufficientDataError, "^nothing to plot"),
        (lambda d: d.assign(observed=0.0), InsufficientDataError, "^nothing to plot"),
    ],
)
def test_observed_vs_expected_errors(mutate, error, match):
    with pytest.raises(error, match=match):
        plots.observed_vs_expected(mutate(ove_frame()))


# ----------------------------------------------------------------------------- shares


def test_shares_grouped_by_year_in_percent_with_missing_marked():
    df = shares_frame()
    fig = plots.shares(df)
    ax = fig.axes[0]
    bars = gid(ax, "share:")
    drawn = df.dropna(subset=["value"])
    assert len(bars) == len(drawn)
    heights = {b.get_gid(): b.get_height() for b in bars}
    for _, r in drawn.iterrows():
        assert heights[f"share:{r['indicator']}:{r['year']}"] == r["value"]
    assert len(gid(ax, "missing")) == 1  # digital_share_jobs 2022: n/a, not a 0-high bar
    assert "No value (n/a): digital share jobs for 2022." in caption(fig)
    assert isinstance(ax.yaxis.get_major_formatter(), PercentFormatter)
    assert "%" in ax.get_ylabel()
    bar_labels = [t.get_text() for t in ax.texts if t.get_text() and t.get_gid() != "missing"]
    assert bar_labels and all(t.endswith("%") for t in bar_labels)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2021", "2022", "2023"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["digital share jobs", "digital share projects", "foreign share"]


def test_shares_stacked_to_100_by_territory():
    df = parts_frame()
    fig = plots.shares(
        df,
        stacked=True,
        labels={"services": "Services", "digital": "Digital"} | {"industry": "Industry"},
    )
    ax = fig.axes[0]
    order = ["bordeaux", "aix-marseille", "lille"]  # by the first indicator (services), descending
    assert [t.get_text() for t in ax.get_xticklabels()] == order
    focal = [t for t in ax.get_xticklabels() if t.get_text() == FOCAL_TERRITORY][0]
    assert focal.get_fontweight() == "bold"
    tops = {}
    for b in gid(ax, "share:"):
        x = round(b.get_x() + b.get_width() / 2)
        tops[x] = max(tops.get(x, 0), b.get_y() + b.get_height())
    assert tops == {0: pytest.approx(100), 1: pytest.approx(100), 2: pytest.approx(100)}
    assert len(gid(ax, "share:remainder")) == 3  # 100 - sum, labelled other / not specified
    assert ax.get_ylim() == (0, 100)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: plots.shares(shares_frame().assign(unit="projects")), ParameterError, "percent"),
        (
            lambda: plots.shares(shares_frame().assign(value=120.0)),
            ParameterError,
            "between 0 and 100",
        ),
        (
            lambda: plots.shares(parts_frame().assign(value=60.0), stacked=True),
            ParameterError,
            "sum to 180.0% > 100",
        ),
        (
            lambda: plots.shares(pd.concat([parts_frame(), parts_frame().assign(year=2022)])),
            ParameterError,
            "select one territory",
        ),
        (lambda: plots.shares(parts_frame(), by="sector"), ParameterError, "by must be"),
        (lambda: plots.shares(parts_frame(), by="year"), ParameterError, "needs one territory"),
        (lambda: plots.shares(shares_frame().drop(columns="unit")), ParameterError, "unit"),
        (lambda: plots.shares(shares_frame().iloc[0:0]), InsufficientDataError, "^nothing to plot"),
    ],
)
def test_shares_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------------- index ranks


def test_index_ranks_rank_one_at_top_with_intervals():
    df = ranks_frame()
    fig = plots.index_ranks(df)
    ax = fig.axes[0]
    assert ax.yaxis_inverted()
    order = df.sort_values("median_rank")
    assert [t.get_text() for t in ax.get_yticklabels()] == order["territory_id"].tolist()
    (intervals,) = gid(ax, "rank-intervals")
    for y, (seg, (_, r)) in enumerate(zip(intervals.get_segments(), order.iterrows(), strict=True)):
        assert seg.tolist() == [[r["rank_low"], y], [r["rank_high"], y]]
    (medians,) = gid(ax, "median-rank")
    np.testing.assert_array_equal(medians.get_offsets()[:, 0], order["median_rank"])
    assert rgba(medians.get_facecolors()[0]) == rgba(FOCAL)  # aix-marseille ranks first
    (nominal,) = gid(ax, "nominal-rank")
    np.testing.assert_array_equal(nominal.get_offsets()[:, 0], order["nominal_rank"])
    assert ax.get_xlim() == (0.5, 4.5)
    assert [t.get_text() for t in ax.get_yticklabels()][0] == FOCAL_TERRITORY


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda d: d.drop(columns="rank_low"), ParameterError, "missing column.*rank_low"),
        (lambda d: d.assign(rank_low=5.0), ParameterError, "rank_low <= median_rank"),
        (lambda d: d.assign(median_rank=np.nan), ParameterError, "missing rank"),
        (lambda d: d.iloc[0:0], InsufficientDataError, "^nothing to plot"),
    ],
)
def test_index_ranks_errors(mutate, error, match):
    with pytest.raises(error, match=match):
        plots.index_ranks(mutate(ranks_frame()))


# ----------------------------------------------------------------------------- files, display


def test_png_bytes_are_deterministic_and_carry_no_software_or_time(tmp_path):
    fig = plots.ranked_bars(bars_frame(), "low", "high")
    first = plots.figure_to_png_bytes(fig)
    assert plots.figure_to_png_bytes(fig) == first  # the same figure twice
    assert plots.figure_to_png_bytes(plots.ranked_bars(bars_frame(), "low", "high")) == first
    with mpl.rc_context({"lines.linewidth": 5, "font.size": 20, "axes.grid": False}):
        # a user's global rcParams change neither the figure nor its rendering
        assert plots.figure_to_png_bytes(plots.ranked_bars(bars_frame(), "low", "high")) == first
    for marker in (b"Software", b"matplotlib version", b"atplotlib", b"tIME"):
        assert marker not in first
    w, h = fig.get_size_inches()
    assert png_size(first) == (round(w * plots.DPI), round(h * plots.DPI))
    a = plots.save_figure(fig, tmp_path / "a" / "bars.png")
    b = plots.save_figure(plots.ranked_bars(bars_frame(), "low", "high"), tmp_path / "b.png")
    assert a == tmp_path / "a" / "bars.png"
    assert a.read_bytes() == b.read_bytes() == first
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["b.png", "bars.png"]
    with pytest.raises(ParameterError, match="must end in .png"):
        plots.save_figure(fig, tmp_path / "bars.svg")


def test_rendering_restores_the_canvas_of_a_pyplot_figure():
    fig, ax = plt.subplots()
    try:
        canvas = fig.canvas
        ax.plot([1, 2])
        plots.add_caption(fig, "src-a")
        assert plots.figure_to_png_bytes(fig)[:4] == b"\x89PNG"
        assert fig.canvas is canvas
    finally:
        plt.close(fig)


def test_ipython_displays_the_figure_as_png():
    from IPython.core.formatters import DisplayFormatter

    fig = plots.index_ranks(ranks_frame())
    data, metadata = DisplayFormatter().format(fig)
    assert data["image/png"] == plots.figure_to_png_bytes(fig)
    w, _ = fig.get_size_inches()
    assert metadata["image/png"]["width"] == round(w * plots.DISPLAY_PPI)
    assert data["text/plain"].startswith("<CaptionedFigure size")


@pytest.mark.slow
def test_executed_notebook_holds_one_image_output(monkeypatch):
    """In a real kernel with MPLBACKEND=Agg (as `make` exports for papermill, nbval and lab),
    where a pyplot figure would not display at all; then with the inline backend switched
    on, whose formatter takes over: the figure still displays, once."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from jupyter_client.kernelspec import NoSuchKernel

    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    figure = (
        "plots.ranked_bars(pd.DataFrame({'territory_id': ['aix-marseille', 'lille'],"
        " 'value': [2.0, 1.0], 'source_ids': 's1'}))"
    )
    cells = [
        f"import pandas as pd\nfrom analysis.outputs import figures as plots\n{figure}",
        "%matplotlib inline",
        figure,
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    try:
        nbclient.NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    except NoSuchKernel:  # pragma: no cover - a venv without the registered kernel
        pytest.skip("no python3 kernel registered")
    for i in (0, 2):
        outputs = nb.cells[i].outputs
        assert [o["output_type"] for o in outputs] == ["execute_result"]
        assert "image/png" in outputs[0]["data"]


def test_event_study_draws_every_finite_interval_and_says_which_are_open():
    d = pd.DataFrame(
        {
            "event_time": [-2, -1, 0, 1],
            "estimate": [0.01, -0.02, 0.10, 0.20],
            "ci_low": [-0.1, -0.1, 0.02, -0.05],
            "ci_high": [0.1, 0.05, 0.2, float("inf")],
            "source_ids": "label-panel:p.csv",
        }
    )
    fig = plots.event_study(d)
    ax = fig.axes[0]
    assert fig.source_ids == ("label-panel:p.csv",)
    assert "1 interval(s) with no upper bound are not drawn." in fig.note
    # three finite intervals drawn, before (muted) and after (highlighted) the label
    assert sum(len(c.get_segments()) for c in ax.collections) == 3
    with pytest.raises(ParameterError, match="event_study.*ci_high"):
        plots.event_study(d.drop(columns="ci_high"))
