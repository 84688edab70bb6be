"""One seaborn theme for the package, and the figures its notebooks and reports draw.

Every figure function takes a tidy frame (see :mod:`analysis.metrics`), validates it and
returns a :class:`CaptionedFigure`: a :class:`matplotlib.figure.Figure` built with the
object API, never through pyplot, so that batch runs keep no global figure state and the
user's backend is left alone (the module never calls ``matplotlib.use``). Each figure
carries a caption line at the bottom listing the ``source_ids`` of the rows it drew, and
optionally a note.

Display and files:

* In Jupyter the returned figure displays as a PNG through its ``_repr_png_`` method,
  whatever the backend. This matters: the Makefile exports ``MPLBACKEND=Agg`` to every
  target (papermill, nbval, ``make lab``), so the inline backend is never loaded there
  and a pyplot figure would show as ``<Figure size ...>`` text only. The executed
  notebook holds an ``image/png`` output with the same bytes that :func:`save_figure`
  writes. (When the inline backend *is* active, its formatter takes precedence; either
  way the figure displays once.)
* Besides the PNG, the display carries the figure's record in the output's *metadata* under
  :data:`FIGURE_MIME`: its title, source ids, note and the tidy frame it drew (with
  ``source_ids``), which the book turns into the caption and the "Download the data (CSV)"
  link. Metadata, not a new output type, because nbval does not compare metadata: the
  committed notebooks' stored outputs stay valid without re-execution.
* :func:`save_figure` renders with the Agg canvas at :data:`DPI` with no ``Software``
  metadata (PNG carries no timestamp) and writes atomically: same figure, same bytes.
* The theme is applied with :func:`matplotlib.rc_context` while a figure is built and
  rendered, so figures look the same whatever the global rcParams, and building one
  changes no global setting. :func:`set_theme` applies the same theme globally, for the
  ad-hoc plots of a notebook.

Colours: the Okabe & Ito (2008) colour-blind-safe palette (*Color Universal Design*);
the focal territory is drawn in vermillion (:data:`HIGHLIGHT`), the others in a muted
grey (:data:`MUTED`).
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.layout_engine import ConstrainedLayoutEngine, TightLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.patheffects import withStroke
from matplotlib.text import Text
from matplotlib.textpath import TextToPath
from matplotlib.ticker import (
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    MultipleLocator,
    NullFormatter,
    PercentFormatter,
)

from analysis.core.atomic import atomic_path
from analysis.core.errors import InsufficientDataError, ParameterError
from analysis.core.territories import FOCAL_TERRITORY
from analysis.core.tidy import join_sources
from analysis.methods.metrics import PERCENT

__all__ = [
    "DPI",
    "FIGURE_MIME",
    "HIGHLIGHT",
    "MUTED",
    "OKABE_ITO",
    "PALETTE",
    "CaptionedFigure",
    "add_caption",
    "coverage_heatmap",
    "figure_to_png_bytes",
    "index_ranks",
    "observed_vs_expected",
    "ranked_bars",
    "save_figure",
    "set_theme",
    "shares",
    "theme_rc",
    "time_series",
]

# ----------------------------------------------------------------------------- theme

#: Okabe & Ito (2008), *Color Universal Design*: orange, sky blue, bluish green, yellow,
#: blue, vermillion, reddish purple, black.
OKABE_ITO: tuple[str, ...] = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#000000",
)
#: The focal territory's colour (vermillion).
HIGHLIGHT = "#D55E00"
#: Every other territory when one is highlighted.
MUTED = "#9A9A9A"
#: Categorical colours (indicators, series without a focal territory): Okabe-Ito without
#: the highlight colour; yellow last, as it is faint on white.
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#000000",
    "#F0E442",
)
#: Remainder segment of stacked 100% bars.
REMAINDER = "#E3E3E3"
#: Intervals, trend lines, labels.
INK = "#333333"

FONT = "DejaVu Sans"  # ships with matplotlib, so every machine renders the same glyphs
BASE_SIZE = 11
CAPTION_SIZE = 8
DPI = 150
#: CSS pixels per inch of the notebook display (the PNG has DPI pixels per inch).
DISPLAY_PPI = 100

#: Key of the figure's record (title, source ids, note, data) in the display's metadata.
FIGURE_MIME = "application/vnd.analysis.figure+json"

#: White outline around labels drawn over data.
_HALO = [withStroke(linewidth=3, foreground="white")]
_CAPTION_LINE = 1.3  # line height, in font sizes
_CAPTION_PAD_PT = 5.0  # margin around the caption, points


@functools.cache
def _theme() -> dict[str, Any]:
    rc: dict[str, Any] = {}
    rc.update(sns.axes_style("whitegrid"))
    rc.update(sns.plotting_context("notebook"))
    rc.update(
        {
            "font.family": ["sans-serif"],
            # seaborn lists Arial first: a machine that has it would render other glyphs
            "font.sans-serif": [FONT],
            "font.size": BASE_SIZE,
            "axes.labelsize": BASE_SIZE,
            "axes.titlesize": BASE_SIZE + 1,
            "axes.titleweight": "bold",
            "axes.titlelocation": "left",
            "xtick.labelsize": BASE_SIZE - 1,
            "ytick.labelsize": BASE_SIZE - 1,
            "legend.fontsize": BASE_SIZE - 1,
            "legend.title_fontsize": BASE_SIZE - 1,
            "legend.frameon": False,
            "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
            "patch.force_edgecolor": False,
            "savefig.dpi": DPI,
            "savefig.bbox": None,
            "savefig.facecolor": "white",
            "svg.hashsalt": "analysis",
        }
    )
    return rc


def theme_rc() -> dict[str, Any]:
    """The package theme as rcParams: seaborn ``whitegrid`` style and ``notebook`` context,
    DejaVu Sans at 11 pt, the Okabe-Ito palette, white background, fixed save dpi."""
    return dict(_theme())


def set_theme() -> None:
    """Apply the package theme to matplotlib's global rcParams (idempotent).

    Needed only for ad-hoc plots: the figure functions of this module apply the theme
    themselves, in a context that leaves the global rcParams as they were.
    """
    mpl.rcParams.update(_theme())


P = ParamSpec("P")
R = TypeVar("R")


def _themed(func: Callable[P, R]) -> Callable[P, R]:
    """Run `func` with the package theme in force, restoring rcParams afterwards."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with mpl.rc_context(_theme()):
            return func(*args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------------- figure, files


class CaptionedFigure(Figure):
    """A Figure that knows the sources it shows and displays itself as PNG in Jupyter.

    ``source_ids`` holds the sorted source ids of the caption, ``note`` its note.
    """

    source_ids: tuple[str, ...] = ()
    note: str | None = None
    data: pd.DataFrame | None = None
    """The tidy frame the figure drew, with a ``source_ids`` column (set by :func:`add_caption`)."""

    def _repr_png_(self) -> tuple[bytes, dict[str, int]]:
        w, h = self.get_size_inches()
        return figure_to_png_bytes(self), {
            "width": round(w * DISPLAY_PPI),
            "height": round(h * DISPLAY_PPI),
        }

    def title(self) -> str:
        """The title of the first axes that has one (centre, then left), or ``""``."""
        for ax in self.axes:
            for loc in ("center", "left"):
                if t := ax.get_title(loc=loc):
                    return t
        return ""

    def record(self) -> dict[str, Any]:
        """The figure's record: ``title``, ``source_ids``, ``note`` and ``data`` (the frame
        drawn as ``{"columns": [...], "data": [[...], ...]}``, floats to 12 significant
        digits, missing values as null)."""
        frame = self.data if self.data is not None else pd.DataFrame()
        return {
            "title": self.title(),
            "source_ids": list(self.source_ids),
            "note": self.note,
            "data": {
                "columns": [str(c) for c in frame.columns],
                "data": [[_json_value(v) for v in row] for row in frame.itertuples(index=False)],
            },
        }

    def _repr_mimebundle_(self, include=None, exclude=None) -> tuple[dict, dict]:
        """The PNG bytes, with the size and the :data:`FIGURE_MIME` record in its metadata
        (the kernel base64-encodes the bytes, as for ``_repr_png_``)."""
        png, size = self._repr_png_()
        return {"image/png": png}, {
            "image/png": size,
            FIGURE_MIME: self.record(),
        }


def _json_value(x: object) -> object:
    """A JSON-safe cell: numpy scalars unwrapped, NaN as None, floats to 12 digits."""
    if hasattr(x, "item") and not isinstance(x, str):
        x = x.item()
    if isinstance(x, float):
        return None if x != x else float(f"{x:.12g}")
    if x is None or isinstance(x, bool | int | str):
        return x
    if x is pd.NA or x is pd.NaT:
        return None
    return str(x)


def _drawn(df: pd.DataFrame, ids: Sequence[str]) -> pd.DataFrame:
    """`df` as the figure's data record: every row keeps its own ``source_ids`` (from
    ``source_ids`` or ``source_id``); a row without any (a projected year, a frame without
    the column) gets the caption's ids, from which it was computed."""
    d = df.reset_index(drop=True).copy()
    own = [c for c in _SOURCE_COLUMNS if c in d.columns]
    if own:
        d["source_ids"] = [
            join_sources(*(v for v in row if isinstance(v, str))) or join_sources(ids)
            for row in d[own].itertuples(index=False, name=None)
        ]
        d = d.drop(columns=[c for c in own if c != "source_ids"])
    else:
        d["source_ids"] = join_sources(ids)
    return d


def figure_to_png_bytes(fig: Figure) -> bytes:
    """The PNG bytes of `fig`: Agg canvas, :data:`DPI`, no ``Software`` metadata.

    The figure's own canvas is put back afterwards, so this also works on a pyplot figure.
    """
    buf = io.BytesIO()
    old_canvas = fig.canvas
    try:
        with mpl.rc_context(_theme()):
            FigureCanvasAgg(fig).print_figure(
                buf, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches=None
            )
    finally:
        fig.set_canvas(old_canvas)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as a deterministic PNG to `path` (atomically) and return the path.

    Same figure, same bytes: Agg canvas, fixed dpi, no software or time metadata. The
    file appears only once fully written; on error the previous file is left as it was.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ParameterError(f"save_figure: {str(path)!r} must end in .png (figures are PNG)")
    data = figure_to_png_bytes(fig)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def _new_figure(width: float, height: float) -> tuple[CaptionedFigure, Axes]:
    fig = CaptionedFigure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


# ----------------------------------------------------------------------------- caption

_TEXT_TO_PATH = TextToPath()


def _text_width_pt(text: str, size: float) -> float:
    prop = FontProperties(family=FONT, size=size)
    return _TEXT_TO_PATH.get_text_width_height_descent(text, prop, ismath=False)[0]


def _wrap(text: str, width_pt: float, size: float) -> list[str]:
    """Greedy wrap on spaces by measured width; ids are never split (not even at hyphens)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if current and _text_width_pt(candidate, size) > width_pt:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _split_ids(sources: Iterable[str] | str | None) -> list[str]:
    joined = join_sources(sources) if sources is not None else ""
    return [s.strip() for s in joined.split(";") if s.strip()]


def add_caption(
    fig: Figure,
    sources: Iterable[str] | str,
    note: str | None = None,
    *,
    size: float = CAPTION_SIZE,
    data: pd.DataFrame | None = None,
) -> Text:
    """Add the caption line(s) at the bottom of `fig`: ``Sources: id1; id2`` then the note.

    `sources` is an iterable of ids or a ``;``-joined string; ids are de-duplicated and
    sorted, and every id appears exactly once. The text is wrapped to the figure's width
    (an id is never split) and the figure is made taller by the caption's height, so the
    axes keep their size. `data`, the tidy frame drawn, is kept as ``fig.data`` (with a
    ``source_ids`` column) for the figure's record. Returns the caption's Text
    (``gid="caption"``).
    """
    ids = _split_ids(sources)
    if not ids:
        raise ParameterError("add_caption: no source ids; every figure lists its sources")
    if any(t.get_gid() == "caption" for t in fig.texts):
        raise ParameterError("add_caption: the figure already has a caption")
    width_in, height_in = fig.get_size_inches()
    width_pt = width_in * 72 - 2 * _CAPTION_PAD_PT
    head = "Source:" if len(ids) == 1 else "Sources:"
    lines = _wrap(f"{head} {'; '.join(ids)}", width_pt, size)
    if note and note.strip():
        lines += _wrap(note.strip(), width_pt, size)
    cap_in = (len(lines) * size * _CAPTION_LINE + 2 * _CAPTION_PAD_PT) / 72
    new_height = height_in + cap_in
    frac = cap_in / new_height
    # axes positions in figure fractions, before the resize, for figures without a layout engine
    positions = [(ax, ax.get_position(original=True)) for ax in fig.axes]
    fig.set_size_inches(width_in, new_height, forward=False)
    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):
        engine.set(rect=(0, frac, 1, 1 - frac))
    elif isinstance(engine, TightLayoutEngine):
        engine.set(rect=(0, frac, 1, 1))
    else:
        scale = height_in / new_height
        for ax, pos in positions:
            ax.set_position((pos.x0, frac + pos.y0 * scale, pos.width, pos.height * scale))
    text = fig.text(
        _CAPTION_PAD_PT / 72 / width_in,
        _CAPTION_PAD_PT / 72 / new_height,
        "\n".join(lines),
        ha="left",
        va="bottom",
        fontsize=size,
        fontfamily=FONT,
        color="#555555",
        linespacing=_CAPTION_LINE,
        parse_math=False,
        gid="caption",
    )
    fig.source_ids = tuple(ids)  # type: ignore[attr-defined]
    fig.note = note  # type: ignore[attr-defined]
    fig.data = _drawn(data, ids) if data is not None else None  # type: ignore[attr-defined]
    return text


def _join_notes(*notes: str | None) -> str | None:
    parts = [n.strip() for n in notes if n and n.strip()]
    return " ".join(parts) or None


# ----------------------------------------------------------------------------- validation

_SOURCE_COLUMNS = ("source_ids", "source_id")
_SOURCE_HINT = "source_ids (or source_id)"


def _check_frame(
    df: object,
    what: str,
    required: Sequence[str],
    optional: Sequence[str] = (),
    sourced: bool = True,
) -> pd.DataFrame:
    """`df` with its index reset, if it has the `required` columns and at least one row.

    With `sourced`, the message also asks for the source column (checked by `_sources`).
    """
    expected = ", ".join([*required, _SOURCE_HINT] if sourced else required)
    extra = f"; optional: {', '.join(optional)}" if optional else ""
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(
            f"{what}: expected a DataFrame with columns {expected}{extra}, got {type(df).__name__}"
        )
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ParameterError(
            f"{what}: missing column(s) {', '.join(missing)}; expected columns {expected}{extra}"
        )
    if df.empty:
        raise InsufficientDataError(f"nothing to plot: {what} got an empty frame")
    return df.reset_index(drop=True)


def _numeric(df: pd.DataFrame, column: str, what: str) -> pd.Series:
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = values.isna() & raw.notna()
    if bad.any():
        i = bad.idxmax()
        raise ParameterError(f"{what}: row {i}, column {column!r}: {raw[i]!r} is not a number")
    return values


def _whole_years(df: pd.DataFrame, column: str, what: str) -> pd.Series:
    years = _numeric(df, column, what)
    bad = years.isna() | (years % 1 != 0)
    if bad.any():
        i = bad.idxmax()
        raise ParameterError(f"{what}: row {i}, column {column!r}: {df[column][i]!r} is not a year")
    return years.astype(int)


def _one_value(df: pd.DataFrame, column: str, what: str) -> str | None:
    """The single value of an optional column (indicator, unit, year), or None if absent."""
    if column not in df.columns:
        return None
    values = sorted(df[column].dropna().astype(str).unique())
    if len(values) > 1:
        raise ParameterError(
            f"{what}: several {column} values {values}; select one {column} before plotting"
        )
    return values[0] if values else None


def _unique_territories(df: pd.DataFrame, what: str) -> None:
    dup = df["territory_id"].duplicated()
    if dup.any():
        raise ParameterError(
            f"{what}: several rows for territory {df['territory_id'][dup].iloc[0]!r}; "
            "expected one row per territory"
        )


def _frame_sources(
    df: pd.DataFrame | None, what: str, required: bool, name: str = "frame"
) -> list[str]:
    """Source ids of the rows of `df`; with `required`, every row must have one."""
    if df is None:
        return []
    columns = [c for c in _SOURCE_COLUMNS if c in df.columns]
    if not columns:
        if required:
            raise ParameterError(
                f"{what}: the {name} has no {_SOURCE_HINT} column; every figure lists its "
                "sources (add the column or pass sources=...)"
            )
        return []
    # a row's ids: from every source column it has (a concat of both kinds has both)
    values = [
        join_sources(*(v for v in row if isinstance(v, str)))
        for row in df[columns].itertuples(index=False, name=None)
    ]
    if required and not all(values):
        row = df.iloc[values.index("")]
        where = ", ".join(
            f"{c} {row[c]!r}" if c == "territory_id" else f"{c} {row[c]}"
            for c in ("territory_id", "year")
            if c in df.columns
        )
        raise ParameterError(
            f"{what}: a row of the {name} ({where or 'row ' + str(values.index(''))}) has no "
            f"source id in {' or '.join(columns)}; every plotted value needs one "
            "(or pass sources=...)"
        )
    return _split_ids(values)


def _sources(
    what: str,
    main: pd.DataFrame,
    sources: Iterable[str] | str | None,
    others: Sequence[tuple[pd.DataFrame | None, str]] = (),
) -> list[str]:
    ids = _frame_sources(main, what, required=sources is None)
    for frame, name in others:
        ids += _frame_sources(frame, what, required=False, name=name)
    ids += _split_ids(sources)
    return _split_ids(ids)


def _labels(df: pd.DataFrame) -> list[str]:
    """Display labels: a ``label`` column if given, else the territory ids."""
    if "label" in df.columns:
        return [
            str(lab) if pd.notna(lab) else str(t)
            for lab, t in zip(df["label"], df["territory_id"], strict=True)
        ]
    return [str(t) for t in df["territory_id"]]


def _formatter(values: Iterable[float], unit: str | None = None) -> Callable[[float], str]:
    """One number format for a set of labels: about three significant digits for the
    largest value (none after the point if every value is whole), thousands separated,
    ``%`` appended for percent units."""
    finite = [abs(float(v)) for v in values if math.isfinite(float(v))]
    top = max(finite, default=0.0)
    if all(v == int(v) for v in finite) or top >= 100:
        decimals = 0
    else:
        decimals = max(0, 2 - math.floor(math.log10(top))) if top > 0 else 0
    suffix = "%" if unit == PERCENT else ""
    return lambda v: f"{v:,.{decimals}f}{suffix}"


def _emphasise_ticklabels(labels: Iterable[Text], focal_label: str | None) -> None:
    for t in labels:
        if focal_label is not None and t.get_text() == focal_label:
            t.set_fontweight("bold")
            t.set_color(HIGHLIGHT)


def _year_ranges(years: Iterable[int]) -> str:
    """2016, 2019-2021 (en dash) from a set of years."""
    ys = sorted(set(years))
    parts: list[str] = []
    start = prev = ys[0]
    for y in [*ys[1:], None]:
        if y is not None and y == prev + 1:
            prev = y
            continue
        parts.append(str(start) if start == prev else f"{start}\u2013{prev}")
        if y is not None:
            start = prev = y
    return ", ".join(parts)


def _runs(years: np.ndarray) -> list[slice]:
    """Slices of consecutive years (a gap of one or more years starts a new run)."""
    breaks = np.flatnonzero(np.diff(years) != 1) + 1
    bounds = [0, *breaks.tolist(), len(years)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


# ----------------------------------------------------------------------------- 1. time series

_SERIES_COLUMNS = ("territory_id", "indicator", "year", "value", "unit")


@_themed
def time_series(
    df: pd.DataFrame,
    ci: pd.DataFrame | None = None,
    title: str | None = None,
    focal: str | None = FOCAL_TERRITORY,
    *,
    ci_label: str = "interval",
    note: str | None = None,
    sources: Iterable[str] | str | None = None,
) -> CaptionedFigure:
    """One indicator over the years, for one or more territories.

    `df` is tidy (``territory_id, indicator, year, value, unit, source_ids``) with one
    indicator and one unit. Each territory is a line with a marker at every observed year;
    a line joins two points only when their years are consecutive, so a missing year is a
    gap, never an interpolation (the caption lists the gaps). Rows with a missing value
    are gaps too. The focal territory is drawn in the highlight colour, the others in grey
    (with several territories and no focal one, each gets a palette colour); each line is
    labelled at its last point.

    `ci` (optional) is a band, e.g. from a fitted trend or projection: columns ``year,
    ci_low, ci_high`` and optionally ``mean``. The band is shaded; ``mean`` is drawn thin
    and solid over the observed years and dashed over the projection years (those after
    the last observed year, which a dotted vertical line marks). `ci_label` names the
    band in the legend, e.g. ``"90% prediction interval"``.

    Read: the height of the line at a year is the value in the unit on the y axis; the
    y axis starts at 0 when no value is negative.
    """
    what = "time_series"
    d = _check_frame(df, what, _SERIES_COLUMNS, optional=["label"])
    indicator = _one_value(d, "indicator", what)
    unit = _one_value(d, "unit", what)
    d = d.assign(year=_whole_years(d, "year", what), value=_numeric(d, "value", what))
    dup = d.duplicated(["territory_id", "year"])
    if dup.any():
        r = d[dup].iloc[0]
        raise ParameterError(
            f"{what}: several values for {r['territory_id']!r} in {r['year']}; choose one "
            "series first (analysis.series)"
        )
    missing_value = d[d["value"].isna()]
    d = d[d["value"].notna()].sort_values(["territory_id", "year"]).reset_index(drop=True)
    if d.empty:
        raise InsufficientDataError(f"nothing to plot: {what}: every value is missing")
    band = None
    if ci is not None:
        band = _check_frame(
            ci, f"{what} (ci)", ["year", "ci_low", "ci_high"], optional=["mean"], sourced=False
        )
        band = band.assign(
            year=_whole_years(band, "year", f"{what} (ci)"),
            ci_low=_numeric(band, "ci_low", f"{what} (ci)"),
            ci_high=_numeric(band, "ci_high", f"{what} (ci)"),
        ).sort_values("year")
        if "mean" in band.columns:
            band["mean"] = _numeric(band, "mean", f"{what} (ci)")
        cols = ["ci_low", "ci_high"] + (["mean"] if "mean" in band.columns else [])
        if band[cols].isna().any().any():
            raise ParameterError(f"{what} (ci): missing values in {', '.join(cols)}")
        repeated = band.loc[band["year"].duplicated(), "year"]
        if len(repeated):
            raise ParameterError(f"{what} (ci): several rows for year {repeated.iloc[0]}")
        bad = band["ci_low"] > band["ci_high"]
        if bad.any():
            raise ParameterError(
                f"{what} (ci): ci_low > ci_high in {band.loc[bad, 'year'].iloc[0]}"
            )
    ids = _sources(what, d, sources, [(band, "ci frame")])

    fig, ax = _new_figure(8.0, 4.8)
    territories = sorted(d["territory_id"].unique(), key=lambda t: (t == focal, t))
    has_focal = focal in territories
    gaps: list[str] = []
    for k, tid in enumerate(territories):
        s = d[d["territory_id"] == tid]
        years, values = s["year"].to_numpy(), s["value"].to_numpy()
        label = _labels(s.iloc[:1])[0]
        if tid == focal:
            colour, lw, z, weight = HIGHLIGHT, 2.4, 4, "bold"
        elif has_focal:
            colour, lw, z, weight = MUTED, 1.5, 2, "normal"
        else:
            colour, lw, z, weight = PALETTE[k % len(PALETTE)], 1.8, 3, "normal"
        for run in _runs(years):
            ax.plot(
                years[run],
                values[run],
                color=colour,
                lw=lw,
                marker="o",
                ms=5 if tid == focal else 4,
                zorder=z,
                gid=f"series:{tid}",
            )
        ax.annotate(
            label,
            (years[-1], values[-1]),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            color=colour,
            fontweight=weight,
            fontsize=BASE_SIZE - 1,
            annotation_clip=False,
            path_effects=_HALO,
            gid=f"label:{tid}",
        )
        absent = set(range(years[0], years[-1] + 1)) - set(years.tolist())
        absent |= set(missing_value.loc[missing_value["territory_id"] == tid, "year"].tolist())
        if absent:
            gaps.append(f"{label} {_year_ranges(absent)}")

    handles: list[Any] = []
    if band is not None:
        single = territories[0] if len(territories) == 1 else None
        colour = (HIGHLIGHT if single == focal else PALETTE[0]) if single is not None else INK
        last_obs = int(d["year"].max())
        by = band["year"].to_numpy()
        ax.fill_between(
            by,
            band["ci_low"].to_numpy(),
            band["ci_high"].to_numpy(),
            color=colour,
            alpha=0.18,
            linewidth=0,
            zorder=1,
            gid="ci-band",
        )
        handles.append(Patch(facecolor=colour, alpha=0.18, label=ci_label))
        if "mean" in band.columns:
            mean = band["mean"].to_numpy()
            fitted, projected = by <= last_obs, by >= last_obs
            if fitted.any():
                ax.plot(by[fitted], mean[fitted], color=colour, lw=1.1, zorder=3, gid="trend")
                handles.append(Line2D([], [], color=colour, lw=1.1, label="trend"))
            if (by > last_obs).any():
                # start the dashes at the last fitted point so the line does not break
                px, py = by[projected], mean[projected]
                if not (by == last_obs).any() and fitted.any():
                    px, py = np.r_[by[fitted][-1], px], np.r_[mean[fitted][-1], py]
                ax.plot(px, py, color=colour, lw=1.6, ls="--", zorder=3, gid="projection")
                handles.append(Line2D([], [], color=colour, lw=1.6, ls="--", label="projection"))
        if (by > last_obs).any():
            ax.axvline(last_obs, color=INK, lw=0.8, ls=":", zorder=1, gid="projection-start")
    if handles:
        ax.legend(handles=handles, loc="upper left")

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("year")
    ax.set_ylabel(unit or "")
    lows = [d["value"].min()] + ([band["ci_low"].min()] if band is not None else [])
    if min(lows) >= 0:
        ax.set_ylim(bottom=0)
    ax.set_title(title if title is not None else (indicator or "").replace("_", " "))
    auto = f"Gaps (no value, not interpolated): {'; '.join(gaps)}." if gaps else None
    if band is not None:
        extra = band.drop(columns=[c for c in _SOURCE_COLUMNS if c in band.columns])
        drawn = d.merge(extra, on="year", how="outer").sort_values("year")
    else:
        drawn = d
    add_caption(fig, ids, _join_notes(auto, note), data=drawn)
    return fig


# ----------------------------------------------------------------------------- 2. ranked bars


@_themed
def ranked_bars(
    df: pd.DataFrame,
    low: str | None = None,
    high: str | None = None,
    focal: str | None = FOCAL_TERRITORY,
    *,
    title: str | None = None,
    xlabel: str | None = None,
    note: str | None = None,
    sources: Iterable[str] | str | None = None,
) -> CaptionedFigure:
    """Territories as horizontal bars sorted by value, largest at the top.

    `df` has one row per territory: ``territory_id, value, source_ids`` (a ``label``
    column, if present, names the bars; ``indicator``, ``year`` and ``unit``, if present,
    must each hold one value and make the default title and axis label). `low` and `high`
    name two columns holding an interval (e.g. a 90% interval), drawn as a whisker from
    low to high; both or neither. The focal territory's bar is in the highlight colour,
    the others grey; each bar is labelled with its value. Rows without a value are left
    out and named in the caption.

    Read: bar length is the value; two territories whose whiskers overlap are not
    clearly different.
    """
    what = "ranked_bars"
    if (low is None) != (high is None):
        raise ParameterError(f"{what}: give both low and high (interval columns) or neither")
    interval = [low, high] if low is not None and high is not None else []
    d = _check_frame(
        df,
        what,
        ["territory_id", "value", *interval],
        optional=["label", "indicator", "year", "unit"],
    )
    indicator, year, unit = (_one_value(d, c, what) for c in ("indicator", "year", "unit"))
    _unique_territories(d, what)
    d = d.assign(value=_numeric(d, "value", what))
    for c in interval:
        d[c] = _numeric(d, c, what)
    absent = d[d["value"].isna()]
    d = d[d["value"].notna()]
    if d.empty:
        raise InsufficientDataError(f"nothing to plot: {what}: every value is missing")
    if interval:
        has = d[low].notna() & d[high].notna()
        bad = has & ((d[low] > d["value"]) | (d["value"] > d[high]))
        if bad.any():
            r = d[bad].iloc[0]
            raise ParameterError(
                f"{what}: interval of {r['territory_id']!r} does not contain its value: "
                f"{low}={r[low]}, value={r['value']}, {high}={r[high]}"
            )
    ids = _sources(what, d, sources)
    d = d.sort_values(["value", "territory_id"], ascending=[False, True]).reset_index(drop=True)
    labels = _labels(d)
    n = len(d)

    fig, ax = _new_figure(8.0, 1.2 + 0.36 * n)
    pos = np.arange(n)
    colours = [HIGHLIGHT if t == focal else MUTED for t in d["territory_id"]]
    bars = ax.barh(pos, d["value"].to_numpy(), height=0.7, color=colours, zorder=2)
    for patch, tid in zip(bars, d["territory_id"], strict=True):
        patch.set_gid(f"bar:{tid}")
    ends = d["value"].to_numpy(dtype=float).copy()
    starts = ends.copy()
    if interval:
        has = (d[low].notna() & d[high].notna()).to_numpy()
        lo, hi = d[low].to_numpy(dtype=float), d[high].to_numpy(dtype=float)
        ax.hlines(pos[has], lo[has], hi[has], color=INK, lw=1.3, zorder=3, gid="whiskers")
        ax.plot(
            np.r_[lo[has], hi[has]],
            np.r_[pos[has], pos[has]],
            ls="none",
            marker="|",
            ms=7,
            mew=1.3,
            color=INK,
            zorder=3,
            gid="whisker-caps",
        )
        ends = np.where(has, np.fmax(ends, hi), ends)
        starts = np.where(has, np.fmin(starts, lo), starts)
    fmt = _formatter(d["value"], unit)
    for p, v, end, start in zip(pos, d["value"], ends, starts, strict=True):
        negative = v < 0
        ax.annotate(
            fmt(v),
            (start if negative else end, p),
            xytext=(-4 if negative else 4, 0),
            textcoords="offset points",
            ha="right" if negative else "left",
            va="center",
            fontsize=BASE_SIZE - 2,
            color=INK,
            annotation_clip=False,
            gid="value-label",
        )
    ax.set_yticks(pos, labels)
    ax.invert_yaxis()  # largest at the top
    _emphasise_ticklabels(ax.get_yticklabels(), _focal_label(d, focal))
    ax.grid(axis="y", visible=False)
    ax.axvline(0, color=INK, lw=0.8, zorder=2)
    ax.margins(x=0.12)
    ax.set_xlabel(xlabel if xlabel is not None else (unit or "value"))
    default = (indicator or "").replace("_", " ") + (f", {year}" if year else "")
    ax.set_title(title if title is not None else default)
    auto = f"No value: {', '.join(_labels(absent))}." if len(absent) else None
    add_caption(fig, ids, _join_notes(auto, note), data=d)
    return fig


def _focal_label(d: pd.DataFrame, focal: str | None) -> str | None:
    rows = d[d["territory_id"] == focal]
    return _labels(rows)[0] if len(rows) else None


# ----------------------------------------------------------------------------- 3. observed/expected


@_themed
def observed_vs_expected(
    df: pd.DataFrame,
    focal: str | None = FOCAL_TERRITORY,
    *,
    title: str | None = None,
    note: str | None = None,
    sources: Iterable[str] | str | None = None,
) -> CaptionedFigure:
    """Observed against expected values, one labelled point per territory, log-log axes.

    `df` has ``territory_id, observed, expected, source_ids`` and optionally
    ``ratio_low, ratio_high`` (an interval of observed / expected, e.g. the ``performance``
    frame of :func:`analysis.models.fit_size_adjusted`), ``label`` (point labels), ``unit``
    (axis labels), ``indicator`` and ``year`` (one value each; the default title). x is
    expected, y is observed, both on log scales with equal ranges, and the diagonal y = x
    is drawn. The ratio interval is drawn as a vertical whisker at x = expected from
    expected x ratio_low to expected x ratio_high. The focal territory is highlighted. Rows
    with a missing or non-positive value cannot be drawn on log axes: they are left out and
    named in the caption.

    Read: points above the diagonal have more than expected, below it fewer; the vertical
    distance is the ratio (one decade = x10). A whisker that does not reach the diagonal
    marks a ratio clearly different from 1.
    """
    what = "observed_vs_expected"
    d = _check_frame(
        df,
        what,
        ["territory_id", "observed", "expected"],
        optional=["ratio_low", "ratio_high", "label", "unit", "indicator", "year"],
    )
    if ("ratio_low" in d.columns) != ("ratio_high" in d.columns):
        raise ParameterError(f"{what}: give both ratio_low and ratio_high columns or neither")
    interval = "ratio_low" in d.columns
    indicator, year, unit = (_one_value(d, c, what) for c in ("indicator", "year", "unit"))
    _unique_territories(d, what)
    for c in ["observed", "expected"] + (["ratio_low", "ratio_high"] if interval else []):
        d[c] = _numeric(d, c, what)
    drawable = (d["observed"] > 0) & (d["expected"] > 0)
    absent = d[~drawable]
    d = d[drawable].sort_values("territory_id").reset_index(drop=True)
    if d.empty:
        raise InsufficientDataError(
            f"nothing to plot: {what}: no row with observed > 0 and expected > 0"
        )
    if interval:
        has = d["ratio_low"].notna() & d["ratio_high"].notna()
        bad = has & ((d["ratio_low"] <= 0) | (d["ratio_low"] > d["ratio_high"]))
        if bad.any():
            r = d[bad].iloc[0]
            raise ParameterError(
                f"{what}: ratio interval of {r['territory_id']!r} must have "
                f"0 < ratio_low <= ratio_high, got {r['ratio_low']}, {r['ratio_high']}"
            )
    ids = _sources(what, d, sources)

    fig, ax = _new_figure(6.8, 6.2)
    x, y = d["expected"].to_numpy(dtype=float), d["observed"].to_numpy(dtype=float)
    is_focal = (d["territory_id"] == focal).to_numpy()
    colours = [HIGHLIGHT if f else MUTED for f in is_focal]
    ends = [x, y]
    if interval:
        has = (d["ratio_low"].notna() & d["ratio_high"].notna()).to_numpy()
        ylo = x * d["ratio_low"].to_numpy(dtype=float)
        yhi = x * d["ratio_high"].to_numpy(dtype=float)
        ax.vlines(
            x[has],
            ylo[has],
            yhi[has],
            color=[c for c, h in zip(colours, has, strict=True) if h],
            lw=1.2,
            zorder=2,
            gid="ratio-intervals",
        )
        ends += [ylo[has], yhi[has]]
    ax.scatter(
        x,
        y,
        s=np.where(is_focal, 70, 40),
        c=colours,
        edgecolors="white",
        linewidths=0.8,
        zorder=4,
        gid="points",
    )
    for xi, yi, label, f in zip(x, y, _labels(d), is_focal, strict=True):
        ax.annotate(
            label,
            (xi, yi),
            xytext=(5, 4),
            textcoords="offset points",
            fontsize=BASE_SIZE - 2,
            color=HIGHLIGHT if f else INK,
            fontweight="bold" if f else "normal",
            path_effects=_HALO,
            gid="point-label",
        )
    every = np.concatenate(ends)
    lo, hi = float(every.min()) / 1.5, float(every.max()) * 1.5
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_box_aspect(1)
    for axis in (ax.xaxis, ax.yaxis):  # plain numbers at 1, 2, 5 x 10^k, not 10^k notation
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.10g}"))
        axis.set_minor_formatter(NullFormatter())
    ax.axline((lo, lo), (hi, hi), color=INK, lw=1.0, ls="--", zorder=1, gid="identity")
    ax.legend(
        handles=[Line2D([], [], color=INK, lw=1.0, ls="--", label="observed = expected")],
        loc="upper left",
    )
    suffix = f" ({unit})" if unit else ""
    ax.set_xlabel(f"expected{suffix}")
    ax.set_ylabel(f"observed{suffix}")
    default = "observed vs expected" + (f": {indicator.replace('_', ' ')}" if indicator else "")
    ax.set_title(title if title is not None else default + (f", {year}" if year else ""))
    auto = (
        f"Not drawn (missing, zero or negative): {', '.join(_labels(absent))}."
        if len(absent)
        else None
    )
    add_caption(fig, ids, _join_notes(auto, note), data=d)
    return fig


# ----------------------------------------------------------------------------- 4. shares


@_themed
def shares(
    df: pd.DataFrame,
    by: str | None = None,
    stacked: bool = False,
    focal: str | None = FOCAL_TERRITORY,
    *,
    labels: dict[str, str] | None = None,
    title: str | None = None,
    note: str | None = None,
    sources: Iterable[str] | str | None = None,
) -> CaptionedFigure:
    """Shares in percent, as grouped bars (default) or stacked 100% bars.

    `df` is tidy (``territory_id, indicator, year, value, unit, source_ids``), every unit
    ``percent`` and every value in [0, 100]; each indicator is one share (e.g. the digital
    share of projects, of jobs, the foreign share). `by` is ``"year"`` (one territory,
    bars along the years) or ``"territory"`` (one year, bars along the territories,
    sorted by the first indicator, focal territory's name in bold); by default it is
    inferred from which of the two has a single value. `labels` maps indicators to legend
    labels and sets their order (default: alphabetical).

    Grouped: one bar per indicator in each group, labelled with its percentage; a share
    with no value is marked ``n/a`` rather than drawn as 0. Stacked: the indicators must be
    parts of one whole (summing to at most 100 in every group); the remainder to 100% is a
    light grey segment "other / not specified". Read: bar height is the share, in percent.
    """
    what = "shares"
    d = _check_frame(df, what, _SERIES_COLUMNS, optional=["label"])
    units = sorted(d["unit"].astype(str).unique())
    if units != [PERCENT]:
        raise ParameterError(f"{what}: unit must be {PERCENT!r}, got {units}")
    d = d.assign(year=_whole_years(d, "year", what), value=_numeric(d, "value", what))
    d = d[d["value"].notna()].reset_index(drop=True)
    if d.empty:
        raise InsufficientDataError(f"nothing to plot: {what}: every value is missing")
    out = (d["value"] < 0) | (d["value"] > 100)
    if out.any():
        r = d[out].iloc[0]
        raise ParameterError(
            f"{what}: {r['indicator']} of {r['territory_id']!r} in {r['year']} is {r['value']}; "
            "a share in percent is between 0 and 100"
        )
    n_terr, n_years = d["territory_id"].nunique(), d["year"].nunique()
    if by is None:
        by = "year" if n_terr == 1 else "territory" if n_years == 1 else None
        if by is None:
            raise ParameterError(
                f"{what}: {n_terr} territories and {n_years} years; select one territory "
                "(by='year') or one year (by='territory')"
            )
    if by not in ("year", "territory"):
        raise ParameterError(f"{what}: by must be 'year' or 'territory', got {by!r}")
    if by == "year" and n_terr > 1:
        raise ParameterError(f"{what}: by='year' needs one territory, got {n_terr}")
    if by == "territory" and n_years > 1:
        raise ParameterError(f"{what}: by='territory' needs one year, got {n_years}")
    key = "year" if by == "year" else "territory_id"
    dup = d.duplicated([key, "indicator"])
    if dup.any():
        r = d[dup].iloc[0]
        raise ParameterError(f"{what}: several values of {r['indicator']} for {r[key]!r}")
    ids = _sources(what, d, sources)

    present = sorted(d["indicator"].unique())
    if labels:
        unknown = sorted(set(present) - set(labels))
        if unknown:
            raise ParameterError(f"{what}: labels has no entry for indicator(s) {unknown}")
        indicators = [i for i in labels if i in present]
    else:
        indicators = present
    legend = {i: (labels or {}).get(i, i.replace("_", " ")) for i in indicators}
    table = d.pivot(index=key, columns="indicator", values="value").reindex(columns=indicators)
    if by == "year":
        table = table.sort_index()
        groups = [str(y) for y in table.index]
    else:
        table = table.sort_values(indicators[0], ascending=False, kind="mergesort")
        names = d.drop_duplicates("territory_id").set_index("territory_id")
        groups = _labels(names.loc[table.index].reset_index())
    if stacked:
        totals = table.sum(axis=1)
        over = totals > 100.5
        if over.any():
            raise ParameterError(
                f"{what}: shares of {over.idxmax()!r} sum to {totals[over].iloc[0]:.1f}% > 100; "
                "stacked bars need parts of one whole (use stacked=False)"
            )

    n, k = len(table), len(indicators)
    fmt = _formatter(table.stack(), PERCENT)
    gaps = [
        f"{legend[ind]} for {g}"
        for g, row in zip(groups, table.itertuples(index=False, name=None), strict=True)
        for ind, v in zip(indicators, row, strict=True)
        if pd.isna(v)
    ]
    auto = None
    if gaps and stacked:
        auto = f"No value (counted in other / not specified): {'; '.join(gaps)}."
    elif gaps:
        auto = f"No value (n/a): {'; '.join(gaps)}."
    width_in = max(6.0, 1.6 + n * (0.55 if stacked else 0.35 * k + 0.35))
    fig, ax = _new_figure(min(width_in, 14.0), 4.8)
    pos = np.arange(n)
    if stacked:
        bottom = np.zeros(n)
        for j, ind in enumerate(indicators):
            v = table[ind].fillna(0).to_numpy()
            rects = ax.bar(
                pos,
                v,
                0.65,
                bottom=bottom,
                color=PALETTE[j % len(PALETTE)],
                label=legend[ind],
                zorder=2,
            )
            for r, g in zip(rects, table.index, strict=True):
                r.set_gid(f"share:{ind}:{g}")
            ax.bar_label(
                rects,
                labels=[fmt(x) if x >= 5 else "" for x in v],
                label_type="center",
                fontsize=BASE_SIZE - 2,
                color="white" if j in (0, 5) else INK,
            )
            bottom = bottom + v
        rest = np.clip(100 - bottom, 0, None)
        if (rest > 0.05).any():
            rects = ax.bar(
                pos,
                rest,
                0.65,
                bottom=bottom,
                color=REMAINDER,
                label="other / not specified",
                zorder=2,
            )
            for r in rects:
                r.set_gid("share:remainder")
        ax.set_ylim(0, 100)
    else:
        w = 0.8 / k
        for j, ind in enumerate(indicators):
            v = table[ind].to_numpy(dtype=float)
            x = pos - 0.4 + w * (j + 0.5)
            ok = ~np.isnan(v)
            rects = ax.bar(
                x[ok], v[ok], w * 0.92, color=PALETTE[j % len(PALETTE)], label=legend[ind], zorder=2
            )
            for r, g in zip(rects, table.index[ok], strict=True):
                r.set_gid(f"share:{ind}:{g}")
            ax.bar_label(
                rects,
                labels=[fmt(x_) for x_ in v[ok]],
                padding=2,
                fontsize=BASE_SIZE - 2,
                color=INK,
            )
            for xm in x[~ok]:
                ax.text(
                    xm,
                    0,
                    "n/a",
                    ha="center",
                    va="bottom",
                    fontsize=BASE_SIZE - 3,
                    color=INK,
                    rotation=90,
                    gid="missing",
                )
        top = float(np.nanmax(table.to_numpy(dtype=float)))
        ax.set_ylim(0, min(100.0, top * 1.18) if top < 85 else 105)
    if by == "year":
        ax.set_xticks(pos, groups)
    else:
        ax.set_xticks(pos, groups, rotation=35, ha="right", rotation_mode="anchor")
    if by == "territory":
        focal_rows = d[d["territory_id"] == focal]
        _emphasise_ticklabels(
            ax.get_xticklabels(), _labels(focal_rows.iloc[:1])[0] if len(focal_rows) else None
        )
    ax.grid(axis="x", visible=False)
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.set_ylabel("share (%)")
    ax.set_xlabel("year" if by == "year" else "")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title is None:
        if by == "year":
            title = f"Shares, {_labels(d.iloc[:1])[0]}"
        else:
            title = f"Shares, {int(d['year'].iloc[0])}"
    ax.set_title(title)
    add_caption(fig, ids, _join_notes(auto, note), data=d)
    return fig


# ----------------------------------------------------------------------------- 5. index ranks


@_themed
def index_ranks(
    df: pd.DataFrame,
    focal: str | None = FOCAL_TERRITORY,
    *,
    interval_label: str = "90% rank interval",
    title: str | None = None,
    note: str | None = None,
    sources: Iterable[str] | str | None = None,
) -> CaptionedFigure:
    """Composite-index ranks with their uncertainty: a dot-and-whisker chart.

    `df` has one row per territory: ``territory_id, median_rank, rank_low, rank_high,
    source_ids`` and optionally ``nominal_rank`` (the rank with the nominal weights) and
    ``label``. Territories are listed by median rank, rank 1 at the top. The dot is the
    median rank, the whisker runs from ``rank_low`` to ``rank_high`` (`interval_label`
    names it, by default the 90% interval over the weightings tried), and a hollow diamond
    marks the nominal rank. The focal territory is highlighted.

    Read: the further left, the better; a long whisker means the rank depends on the
    weighting, and territories whose whiskers overlap cannot be ordered with confidence.
    """
    what = "index_ranks"
    cols = ["territory_id", "median_rank", "rank_low", "rank_high"]
    d = _check_frame(df, what, cols, optional=["nominal_rank", "label"])
    _unique_territories(d, what)
    numeric = cols[1:] + (["nominal_rank"] if "nominal_rank" in d.columns else [])
    for c in numeric:
        d[c] = _numeric(d, c, what)
    if d[cols[1:]].isna().any().any():
        i = d[cols[1:]].isna().any(axis=1).idxmax()
        raise ParameterError(f"{what}: row {i} ({d['territory_id'][i]!r}) has a missing rank")
    bad = (
        (d["rank_low"] > d["median_rank"])
        | (d["median_rank"] > d["rank_high"])
        | (d["rank_low"] < 1)
    )
    if bad.any():
        r = d[bad].iloc[0]
        raise ParameterError(
            f"{what}: ranks of {r['territory_id']!r} must satisfy 1 <= rank_low <= "
            f"median_rank <= rank_high, got {r['rank_low']}, {r['median_rank']}, {r['rank_high']}"
        )
    ids = _sources(what, d, sources)
    order = (
        ["median_rank"]
        + (["nominal_rank"] if "nominal_rank" in d.columns else [])
        + ["territory_id"]
    )
    d = d.sort_values(order, na_position="last").reset_index(drop=True)
    n = len(d)

    fig, ax = _new_figure(7.5, 1.2 + 0.36 * n)
    pos = np.arange(n)
    is_focal = (d["territory_id"] == focal).to_numpy()
    colours = [HIGHLIGHT if f else INK for f in is_focal]
    ax.hlines(
        pos,
        d["rank_low"],
        d["rank_high"],
        colors=[HIGHLIGHT if f else MUTED for f in is_focal],
        lw=2.2,
        zorder=2,
        gid="rank-intervals",
    )
    ax.scatter(
        d["median_rank"], pos, s=np.where(is_focal, 40, 26), c=colours, zorder=5, gid="median-rank"
    )
    handles: list[Any] = [
        Line2D([], [], color=INK, marker="o", ls="none", label="median rank"),
        Line2D([], [], color=MUTED, lw=2.2, label=interval_label),
    ]
    if "nominal_rank" in d.columns:
        has = d["nominal_rank"].notna().to_numpy()
        ax.scatter(
            d["nominal_rank"][has],
            pos[has],
            s=110,
            marker="D",
            facecolors="none",
            edgecolors=[c for c, h in zip(colours, has, strict=True) if h],
            linewidths=1.1,
            zorder=4,
            gid="nominal-rank",
        )
        handles.append(
            Line2D([], [], color=INK, marker="D", mfc="none", ls="none", label="nominal rank")
        )
    labels = _labels(d)
    ax.set_yticks(pos, labels)
    ax.invert_yaxis()  # rank 1 at the top
    _emphasise_ticklabels(ax.get_yticklabels(), _focal_label(d, focal))
    top = int(math.ceil(max(float(d["rank_high"].max()), n)))
    ax.set_xlim(0.5, top + 0.5)
    ax.xaxis.set_major_locator(MultipleLocator(1) if top <= 20 else MaxNLocator(integer=True))
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("rank (1 = best)")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title if title is not None else "Composite index: rank and its uncertainty")
    add_caption(fig, ids, note, data=d)
    return fig


# ----------------------------------------------------------------------------- coverage


@_themed
def coverage_heatmap(
    matrix: pd.DataFrame,
    *,
    sources: Iterable[str] | str,
    title: str | None = None,
    note: str | None = None,
) -> CaptionedFigure:
    """Which row (territory × indicator) has a cited figure in which year.

    `matrix` is :func:`analysis.coverage.coverage_matrix`: rows are labels (or a
    (territory, indicator) index), columns are years, cells the number of sources giving
    a figure (0 = missing). Read: blank cells are gaps that the analysis reports rather
    than fills; darker cells are years several sources agree or disagree on.
    """
    if matrix.empty:
        raise InsufficientDataError("nothing to plot: the coverage matrix is empty")
    m = matrix.copy()
    if isinstance(m.index, pd.MultiIndex):
        m.index = [" · ".join(map(str, ix)) for ix in m.index]
    values = m.to_numpy(dtype=float)
    if (values < 0).any():
        raise ParameterError("coverage_heatmap: source counts must be >= 0")
    n_rows, n_cols = values.shape
    fig, ax = _new_figure(
        min(2.5 + 0.45 * n_cols + 0.07 * max(len(str(i)) for i in m.index), 12), 1.0 + 0.26 * n_rows
    )
    shown = np.where(values > 0, values, np.nan)
    cmap = mpl.colors.ListedColormap(["#C6DBEF", "#6BAED6", "#2171B5", "#08306B"])
    norm = mpl.colors.BoundaryNorm([0.5, 1.5, 2.5, 3.5, max(4.5, np.nanmax(values) + 0.5)], cmap.N)
    ax.imshow(shown, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
    for i in range(n_rows):
        for j in range(n_cols):
            if values[i, j] > 0:
                ax.text(
                    j,
                    i,
                    f"{int(values[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if values[i, j] >= 2 else INK,
                )
    ax.set_xticks(range(n_cols), [str(c) for c in m.columns], rotation=90 if n_cols > 12 else 0)
    ax.set_yticks(range(n_rows), [str(i) for i in m.index])
    ax.set_xticks(np.arange(-0.5, n_cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n_rows, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.grid(which="major", visible=False)
    ax.tick_params(which="minor", length=0)
    ax.set_title(title or "Cited figures per year (number of sources; blank = missing)", loc="left")
    cells = m.rename_axis(index="row", columns="year").stack().rename("sources_citing")
    add_caption(fig, sources, note, data=cells.reset_index())
    return fig


# ----------------------------------------------------------------------------- event study


@_themed
def event_study(
    df: pd.DataFrame,
    *,
    title: str | None = None,
    ylabel: str = "relative change",
    note: str | None = None,
    sources: Iterable[str] | str | None = None,
) -> CaptionedFigure:
    """An event study: the estimated effect by year since the label, with its interval.

    `df` has one row per event time: ``event_time, estimate, ci_low, ci_high`` (relative
    changes, e.g. 0.1 = +10 %). Dots are the estimates, whiskers their intervals; the dashed
    vertical line separates the years before the label (leads, which should be near zero if
    the comparison holds) from the years after.

    Read: an effect is the gap between the dots after the line and zero; dots before the line
    that stray from zero warn that the comparison units were on another path already.
    """
    what = "event_study"
    cols = ["event_time", "estimate", "ci_low", "ci_high"]
    d = _check_frame(df, what, cols, optional=["source_ids"])
    for c in cols:
        d[c] = _numeric(d, c, what)
    d = d.sort_values("event_time").reset_index(drop=True)
    ids = _sources(what, d, sources) if "source_ids" in d.columns or sources else []
    fig, ax = _new_figure(7.5, 3.6)
    low = np.clip(d["estimate"] - d["ci_low"], 0, None)
    high = np.clip(d["ci_high"] - d["estimate"], 0, None)
    finite = np.isfinite(high)
    after = (d["event_time"] >= 0).to_numpy()
    for mask, colour in ((~after, MUTED), (after, HIGHLIGHT)):
        m = mask & finite
        ax.errorbar(
            d["event_time"][m],
            d["estimate"][m],
            yerr=[low[m], high[m]],
            fmt="o",
            color=colour,
            ecolor=colour,
            capsize=3,
            lw=1.6,
            zorder=3,
        )
    ax.axhline(0, color=INK, lw=0.8, zorder=1)
    ax.axvline(-0.5, color=INK, lw=0.8, ls="--", zorder=1)
    ax.xaxis.set_major_locator(MultipleLocator(1))
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:+.0%}")
    ax.set_xlabel("years since the label (0 = first treated year)")
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else "Effect by year since the label")
    open_ended = int((~finite).sum())
    extra = f"{open_ended} interval(s) with no upper bound are not drawn." if open_ended else None
    add_caption(fig, ids, _join_notes(note, extra))
    return fig
