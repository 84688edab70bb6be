"""Notebook sections: each function returns something to display — a figure, a table with
its sources, or a :class:`~analysis.outputs.tables.Notice` saying plainly that the data is
missing.

This keeps the notebooks to short calls that run for every territory: a section without
data says so instead of breaking the run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.analyses import density, ecosystem, investment, label_cohorts
from analysis.core import territories
from analysis.core.errors import InsufficientDataError
from analysis.core.synthetic import is_synthetic
from analysis.core.tidy import join_sources
from analysis.data.inputs import Inputs
from analysis.methods import models
from analysis.outputs import figures, tables
from analysis.outputs.figures import CaptionedFigure
from analysis.outputs.tables import Notice, Table

Shown = CaptionedFigure | Table | Notice


def _label(indicator: str) -> str:
    return investment.SERIES_LABELS.get(indicator, indicator.replace("_", " "))


# ----------------------------------------------------------------------------- series


def series_table(series: pd.DataFrame, territory: str, years: tuple[int, int]) -> Shown:
    """The cited series of a territory, one column per indicator (– = no cited figure).

    Parameters
    ----------
    series : pandas.DataFrame
        Tidy cited series (``indicator, year, value, source_ids``), as from
        :func:`analysis.analyses.investment.cited_series`.
    territory : str
        Territory id, named in the notice when there is no series.
    years : tuple of int
        First and last year asked for, inclusive; named in the notice.

    Returns
    -------
    Table or Notice
        A year × indicator table with its sources, or a notice saying which sources cover what.
    """
    if series.empty:
        return Notice(
            f"No cited investment series for {territory} in {years[0]}-{years[1]}. Provence "
            "Promotion's series cover Aix-Marseille only; Business France covers France and "
            "the regions; EY gives a few metropoles."
        )
    wide = investment.wide(series).reset_index()
    wide.columns = [str(c) for c in wide.columns]
    return tables.table(wide, sources=series["source_ids"])


def gaps_table(series: pd.DataFrame, territory: str, years: tuple[int, int]) -> Shown:
    """For each labelled indicator, the years of `years` without a cited figure.

    Parameters
    ----------
    series : pandas.DataFrame
        Tidy cited series of the territory (may be empty).
    territory : str
        Territory id.
    years : tuple of int
        First and last year, inclusive.

    Returns
    -------
    Table
        One row per indicator: years with data and the missing years as ranges. Gaps are
        reported, never filled.
    """
    gaps = investment.missing_series(series, territory, years)
    note = "Gaps are reported, never filled: growth and shares are computed only on cited years."
    return tables.table(
        gaps, sources=series["source_ids"] if len(series) else "this package's catalogue", note=note
    )


def one_series(series: pd.DataFrame, indicator: str) -> pd.DataFrame:
    """The rows of one indicator.

    Parameters
    ----------
    series : pandas.DataFrame
        Tidy series with an ``indicator`` column.
    indicator : str
        Indicator to keep.

    Returns
    -------
    pandas.DataFrame
        The rows whose ``indicator`` is `indicator` (empty when there is none).
    """
    return series[series["indicator"] == indicator]


def trend(
    series: pd.DataFrame, indicator: str, horizon: int = 2, seed: int = 0
) -> models.TrendResult | Notice:
    """Fit a count trend (Poisson, or NB2 if overdispersed) to one cited series.

    Model ``log μ_t = b0 + b1 (t - t̄)``, growth rate ``100 (exp(b1) - 1)`` percent a year;
    see :func:`analysis.methods.models.fit_trend` (Cameron & Trivedi 2013, *Regression Analysis
    of Count Data*, ch. 3).

    Parameters
    ----------
    series : pandas.DataFrame
        Tidy cited series.
    indicator : str
        Indicator whose counts are fitted.
    horizon : int, default 2
        Number of years projected after the last observed year.
    seed : int, default 0
        Seed of the simulated prediction intervals of the projected counts.

    Returns
    -------
    TrendResult or Notice
        The fitted trend, or a notice when the series is missing or too short to fit.
    """
    s = one_series(series, indicator)
    if s.empty:
        return Notice(f"No cited figure for '{_label(indicator)}': no trend can be fitted.")
    try:
        return models.fit_trend(s, horizon=horizon, seed=seed)
    except InsufficientDataError as e:
        return Notice(f"{_label(indicator)}: {e}")


def trend_figure(series: pd.DataFrame, indicator: str, fit: models.TrendResult | Notice) -> Shown:
    """The series, and its fitted trend projected (dashed) with the 95 % band of the mean.

    Parameters
    ----------
    series : pandas.DataFrame
        Tidy cited series.
    indicator : str
        Indicator drawn.
    fit : TrendResult or Notice
        The result of :func:`trend`; a notice draws the series alone with its text as note.

    Returns
    -------
    CaptionedFigure or Notice
        The figure, or a notice when the indicator has no cited figure.
    """
    s = one_series(series, indicator)
    if s.empty:
        return Notice(f"No cited figure for '{_label(indicator)}'.")
    if isinstance(fit, Notice):
        return figures.time_series(s, title=_label(indicator), note=fit.text)
    growth = fit.estimates.set_index("term").loc["growth_rate"]
    note = (
        f"{fit.model.replace('_', ' ')} trend: {growth['estimate']:+.1f} % a year "
        f"(95 % CI {growth['ci_low']:+.1f} to {growth['ci_high']:+.1f}); band = 95 % CI of the "
        "projected mean."
    )
    return figures.time_series(
        s,
        ci=fit.projection[["year", "mean", "ci_low", "ci_high"]],
        title=_label(indicator),
        note=note,
        ci_label="projection, 95 % CI",
    )


def trend_table(fit: models.TrendResult | Notice) -> Shown:
    """Growth rate with its 95 % interval, then the projected counts with their confidence
    interval (of the expected count) and prediction interval (of the count itself)."""
    if isinstance(fit, Notice):
        return fit
    g = fit.estimates.set_index("term").loc["growth_rate"]
    rows = [
        {
            "quantity": "growth rate, % per year",
            "year": "",
            "estimate": g["estimate"],
            "ci_low": g["ci_low"],
            "ci_high": g["ci_high"],
            "pi_low": float("nan"),
            "pi_high": float("nan"),
        }
    ]
    rows += [
        {
            "quantity": "projected count",
            "year": str(int(r.year)),
            "estimate": r.mean,
            "ci_low": r.ci_low,
            "ci_high": r.ci_high,
            "pi_low": r.pi_low,
            "pi_high": r.pi_high,
        }
        for r in fit.projection.itertuples(index=False)
    ]
    od = fit.overdispersion
    note = (
        f"Model: {fit.model.replace('_', ' ')}. Overdispersion test (Cameron-Trivedi 1990): "
        f"statistic {od['statistic']:.2f}, p = {od['p_value']:.3f}; Pearson chi2/df = "
        f"{od['pearson_chi2_df']:.2f}. ci = 95 % interval of the expected count; pi = 95 % "
        "prediction interval of the count."
    )
    return tables.table(pd.DataFrame(rows).round(2), sources=fit.estimates["source_ids"], note=note)


def ratio_figure(series: pd.DataFrame) -> Shown:
    """Jobs created per implantation project by year, or a notice when no year has both."""
    try:
        jpp = investment.jobs_per_project(series)
    except InsufficientDataError as e:
        return Notice(f"Jobs per project: {e}.")
    return figures.time_series(
        jpp,
        title="Jobs created per implantation project",
        note="Years without both figures are gaps, not zeros.",
    )


def shares_figure(series: pd.DataFrame) -> Shown:
    """The cited foreign and digital shares by year, as published, or a notice."""
    keep = [
        "foreign_share_of_implantations",
        "foreign_share_of_jobs",
        "digital_share_of_implantations",
    ]
    s = series[series["indicator"].isin(keep)]
    if s.empty:
        return Notice("No cited foreign or digital shares for this territory.")
    return figures.shares(
        s,
        by="year",
        labels={k: _label(k) for k in keep},
        title="Foreign and digital shares, as published",
    )


def region_shares(inputs: Inputs, territory: str, years: tuple[int, int]) -> tuple[Shown, Shown]:
    """The shares of the region and of France, as a table and a figure.

    Each share is computed within one counter (EY territory / EY region, EY region / EY France),
    ``share = 100 x_part / x_whole`` percent.

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    territory : str
        Territory id.
    years : tuple of int
        First and last year, inclusive.

    Returns
    -------
    tuple of (Table, CaptionedFigure), or (Notice, Notice)
        The shares as a table and as a figure, or the same notice twice when no share can be
        computed.
    """
    sh = investment.shares_of_region_and_france(inputs, territory, years)
    if sh.empty:
        n = Notice(
            f"No share of the region or of France can be computed for {territory} within one counter."
        )
        return n, n
    fig = figures.shares(
        sh.assign(territory_id=territory),
        by="year",
        title="Shares of the region and of France (each within one counter)",
    )
    return tables.table(sh.round(2)), fig


def conflicts_table(conflicts: pd.DataFrame) -> Shown:
    """The figures on which two sources disagree, with the one the series rule kept."""
    if conflicts.empty:
        return Notice("No two sources disagree on these series.")
    c = conflicts[["indicator", "year", "value", "source_id", "kept"]]
    return tables.table(
        c,
        source_col="source_id",
        note="Rule: exact before approximate, primary before secondary, the most corroborated value, then the latest publication.",
    )


# ----------------------------------------------------------------------------- density


def declared_table(inputs: Inputs, reference_year: int) -> Table:
    """Every published start-up count up to `reference_year`, with its definition.

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    reference_year : int
        Last year shown, inclusive.

    Returns
    -------
    Table
        One row per count, with its kind, the area it counts, its definition and source, and a
        note that the definitions are not comparable.
    """
    t = density.declared_table(inputs)
    t = t[t["year"] <= reference_year][
        ["territory_id", "year", "value", "kind", "area", "definition", "source_id"]
    ]
    return tables.table(
        t,
        source_col="source_id",
        note="WARNING: these counts use different definitions and are not comparable with each "
        "other. area: the area the source counts (label or core perimeter of the capital, "
        "another zone, or not stated); only a count of a perimeter is divided by a population.",
    )


def declared_density_table(inputs: Inputs, reference_year: int, population_vintage: int) -> Table:
    """Each capital's latest declared count per 100,000 inhabitants of the area it counts,
    with the capitals left out and why.

    Density ``d = 100000 n / P``, with ``n`` the declared count and ``P`` the population
    municipale (INSEE) of the area the count describes.

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    reference_year : int
        Latest year of a count that may be used, inclusive.
    population_vintage : int
        Census year of the population denominators.

    Returns
    -------
    Table
        One row per capital, with a note naming the capitals left out and why.
    """
    declared, excluded = density.declared_density(inputs, reference_year, population_vintage)
    left_out = "; ".join(f"{t}: {why}" for t, why in excluded.items()) or "none"
    return tables.table(
        declared,
        note="Each count is divided by the population of the area it describes (its "
        f"perimeter, census {population_vintage}). Left out: {left_out}.",
    )


def spread_figure(inputs: Inputs, population_vintage: int) -> CaptionedFigure:
    """The range of densities each capital's published counts give.

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    population_vintage : int
        Census year of the population denominators.

    Returns
    -------
    CaptionedFigure
        Ranked bars (highest published density) with whiskers from the lowest to the highest.
    """
    sp = density.declared_spread(inputs, population_vintage)
    df = sp.assign(value=sp["high"])
    return figures.ranked_bars(
        df,
        low="low",
        high="high",
        title="Start-ups per 100,000 inhabitants: the range across published counts",
        note="Bar = highest published count; whisker = lowest to highest. The spread is what the definition does, not a confidence interval.",
        xlabel=f"start-ups per 100,000 inhabitants (population municipale {population_vintage})",
    )


def size_adjusted(
    inputs: Inputs, counts: pd.DataFrame | Notice, population_vintage: int
) -> models.SizeAdjustedResult | Notice:
    """The size-adjusted count model on `counts` (with their ``area``), the population of each
    count's own area as exposure, or a notice saying why it cannot run.

    Model ``log μ_i = b0 + log(pop_i)``, Poisson or NB2 (Cameron & Trivedi 2013,
    §3.2-3.4); ``ratio = observed / (exp(b0) pop)``. See
    :func:`analysis.methods.models.fit_size_adjusted`.

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    counts : pandas.DataFrame or Notice
        Tidy counts with an ``area`` column; a notice is passed through.
    population_vintage : int
        Census year of the exposure populations.

    Returns
    -------
    SizeAdjustedResult or Notice
        The fitted model, or a notice when there is no count or too few to fit.
    """
    if isinstance(counts, Notice):
        return counts
    pop = density.own_area_population(inputs, counts, population_vintage)
    try:
        return models.fit_size_adjusted(counts.drop(columns="area"), pop)
    except InsufficientDataError as e:
        return Notice(f"Size-adjusted model: {e}")


def size_adjusted_table(fit: models.SizeAdjustedResult | Notice) -> Shown:
    """Observed, expected and their ratio with its exact 95 % interval, per capital, with the
    common rate and the LR test of NB2 against Poisson in the note (a notice is passed through).
    """
    if isinstance(fit, Notice):
        return fit
    perf = fit.performance[
        [
            "territory_id",
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
    ]
    rate = fit.rate[fit.rate["chosen"]].iloc[0]
    note = (
        f"Model: {fit.model.replace('_', ' ')}; common rate {rate['estimate']:.1f} per 100,000 "
        f"(95 % CI {rate['ci_low']:.1f}-{rate['ci_high']:.1f}); LR test of NB2 against Poisson: "
        f"p = {fit.lr_test['p_value']:.3g}. A ratio interval above 1 means more than the size predicts."
    )
    return tables.table(perf.round(3), note=note)


def size_adjusted_figure(fit: models.SizeAdjustedResult | Notice) -> Shown:
    """Observed against size-expected counts on log scales (a notice is passed through)."""
    if isinstance(fit, Notice):
        return fit
    perf = fit.performance.drop(columns="year")  # counts of different years: see the table
    return figures.observed_vs_expected(
        perf, title="Observed against expected from population (log scales)"
    )


def ratio_ranks_figure(fit: models.SizeAdjustedResult | Notice) -> Shown:
    """Observed / expected ratios ranked, with their 95 % intervals (a notice is passed through)."""
    if isinstance(fit, Notice):
        return fit
    perf = fit.performance.drop(columns="year").assign(value=fit.performance["ratio"])
    return figures.ranked_bars(
        perf,
        low="ratio_low",
        high="ratio_high",
        title="Observed / expected, with 95 % intervals",
        xlabel="observed / expected (1 = as the size predicts)",
    )


# ----------------------------------------------------------------------------- territory


def profile(inputs: Inputs, territory: str) -> Table:
    """Population of one capital by census and perimeter, with the EPCIs each holds.

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    territory : str
        Territory id.

    Returns
    -------
    Table
        One row per perimeter and census year.
    """
    pop = inputs.capitals
    p = pop[pop["territory_id"] == territory][
        [
            "perimeter",
            "census_year",
            "population_municipale",
            "n_communes",
            "epci_names",
            "epci_sirens",
            "source_id",
        ]
    ]
    return tables.table(p)


def perimeters(inputs: Inputs, territory: str) -> Table:
    """The EPCIs of a capital's two perimeters side by side, each with the places the label
    names and the sources that cite them (latest geography).

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    territory : str
        Territory id.

    Returns
    -------
    Table
        One row per EPCI with one boolean column per perimeter (``label``, ``core``), core
        members first.
    """
    p = inputs.perimeters
    p = p[(p["territory_id"] == territory) & (p["census_year"] == p["census_year"].max())]
    wide = (
        p.assign(member=True)
        .pivot_table(
            index=["epci_siren", "epci_name", "anchor_communes"],
            columns="perimeter",
            values="member",
            aggfunc="any",
            fill_value=False,
        )
        .reindex(columns=list(territories.PERIMETERS), fill_value=False)
        .reset_index()
    )
    sources = p.groupby("epci_siren")["source_ids"].agg(join_sources)
    wide["source_ids"] = wide["epci_siren"].map(sources)
    wide = wide.sort_values(["core", "epci_siren"], ascending=[False, True])
    return tables.table(
        wide,
        note="label: the 2019 label's published perimeter (each place cited); core: the EPCIs "
        "of the capital's main cities. anchor_communes: the communes the sources name.",
    )


def labels(inputs: Inputs, territory: str) -> Shown:
    """The French Tech labels that map to one capital.

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    territory : str
        Territory id.

    Returns
    -------
    Table or Notice
        The label rows with their dates and sources, or a notice when none maps to `territory`.
    """
    lab = inputs.labels
    lab = lab[lab["territory_id"] == territory][
        ["label_date", "label", "name_in_source", "source_id"]
    ]
    if lab.empty:
        return Notice(f"No French Tech label row maps to {territory}.")
    return tables.table(lab)


def peers_figure(values: pd.DataFrame, focal: str, title: str, xlabel: str) -> Shown:
    """Ranked bars of every capital's value, `focal` highlighted.

    Parameters
    ----------
    values : pandas.DataFrame
        Tidy values, one per ``territory_id``.
    focal : str
        Territory id highlighted; a note says when it has no value.
    title : str
        Figure title.
    xlabel : str
        Label of the value axis.

    Returns
    -------
    CaptionedFigure or Notice
        The figure, or a notice when `values` is empty.
    """
    if values.empty:
        return Notice(f"No values to compare for {title.lower()}.")
    note = (
        None
        if focal in set(values["territory_id"])
        else f"{focal} has no value here (missing, not zero)."
    )
    return figures.ranked_bars(values, focal=focal, title=title, xlabel=xlabel, note=note)


def facts_of(inputs: Inputs, territory: str) -> Shown:
    """Every cited figure about one territory.

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    territory : str
        Territory id.

    Returns
    -------
    Table or Notice
        The cited facts (up to 200 rows shown), or a notice when none is about `territory`.
    """
    f = inputs.facts
    f = f[f["territory_id"] == territory][["indicator", "year", "value", "unit", "source_id"]]
    if f.empty:
        return Notice(f"No cited figure is about {territory} itself.")
    return tables.table(f, max_rows=200)


def growth_peers(inputs: Inputs, perimeter: str | None = None) -> pd.DataFrame:
    """Population growth of every capital, for the peer comparison.

    Growth is the compound annual rate between the two censuses,
    ``CAGR = 100 ((P_1 / P_0)^(1 / (t_1 - t_0)) - 1)``; see
    :func:`analysis.analyses.ecosystem.population_growth`.

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    perimeter : str or None, default None
        Perimeter of the capitals (``label`` or ``core``); None for the default.

    Returns
    -------
    pandas.DataFrame
        Tidy rows ``territory_id, indicator, year, value, unit, source_ids``, year the last census.
    """
    g = ecosystem.population_growth(inputs, perimeter)
    return g.assign(year=ecosystem.LAST_CENSUS)[
        ["territory_id", "indicator", "year", "value", "unit", "source_ids"]
    ]


def declared_peers(inputs: Inputs, reference_year: int, population_vintage: int) -> pd.DataFrame:
    """Each capital's latest declared count per 100,000, for the peer comparison.

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    reference_year : int
        Latest year of a count that may be used, inclusive.
    population_vintage : int
        Census year of the population denominators.

    Returns
    -------
    pandas.DataFrame
        Tidy rows without ``year`` (the capitals' latest years differ), with a unit naming the
        perimeter counted and the census.
    """
    d, _ = density.declared_density(inputs, reference_year, population_vintage)
    # each capital's latest count (years differ), each over its own perimeter (named per bar)
    unit = (
        "start-ups per 100,000 inhabitants of the perimeter counted "
        f"(population municipale {population_vintage})"
    )
    return d.drop(columns="year").assign(unit=unit)


def ranks_with_focal(ranks: pd.DataFrame, focal: str) -> Shown:
    """The composite-index rank row of the focal capital.

    Parameters
    ----------
    ranks : pandas.DataFrame
        Ranks of the composite index, one row per ``territory_id``.
    focal : str
        Territory id.

    Returns
    -------
    Table or Notice
        The focal capital's row, or a notice that it lacks an input (nothing is imputed).
    """
    if focal not in set(ranks["territory_id"]):
        return Notice(
            f"{focal} is not ranked by the composite index: it lacks at least one input (nothing is imputed)."
        )
    return tables.table(ranks[ranks["territory_id"] == focal])


def register_counts(
    startups_source: str,
    sirene_path: Path | None,
    as_of: object,
    young_years: int,
    population_vintage: int,
    perimeter: str | None = None,
) -> pd.DataFrame | Notice:
    """Register start-ups per capital (SIRENE, :func:`analysis.data.register.aggregate`), tidy.

    A file generated for tests (``SYNTHETIC-TEST-DATA`` in its name) is labelled as such in
    every table built from it.

    Parameters
    ----------
    startups_source : str
        ``"sirene"`` to count in the register; any other value returns a notice.
    sirene_path : pathlib.Path or None
        The SIRENE stock file; None returns a notice.
    as_of : object
        Date of the count (anything the register's ``as_of`` rule accepts).
    young_years : int
        Age limit, in years, of an establishment counted as a start-up.
    population_vintage : int
        Census year of the geography used to place communes in capitals.
    perimeter : str or None, default None
        Perimeter of the capitals; None for the default.

    Returns
    -------
    pandas.DataFrame or Notice
        Tidy counts with the aggregation report in ``attrs["report"]`` and
        ``attrs["synthetic"]``, or a notice when the register was not asked for.
    """
    if startups_source != "sirene" or sirene_path is None:
        return Notice(
            "The register measure was not run: startups_source is 'declared'. Download the "
            "SIRENE stock with `analysis sirene fetch` and rerun with startups_source='sirene' "
            "and sirene_path set (see the README)."
        )
    from analysis.data import register

    result = register.aggregate(
        sirene_path,
        as_of=as_of,
        young_years=young_years,
        level="territory",
        perimeter=perimeter,
        population_vintage=population_vintage,
        progress=False,
    )
    source = f"sirene-stock:{Path(sirene_path).name}"
    counts = density.register_counts(result.table, as_of, source, result.report.perimeter)
    counts.attrs["synthetic"] = is_synthetic(sirene_path)
    counts.attrs["report"] = result.report
    return counts


def register_table(
    inputs: Inputs, counts: pd.DataFrame | Notice, reference_year: int, population_vintage: int
) -> Shown:
    """Register start-ups per 100,000 set against each capital's latest declared count.

    Both densities are ``100000 n / P`` over the perimeter counted;
    ``declared_to_register`` is their ratio (empty where the register density is 0).

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    counts : pandas.DataFrame or Notice
        Register counts from :func:`register_counts`; a notice is passed through.
    reference_year : int
        Latest year of a declared count that may be used, inclusive.
    population_vintage : int
        Census year of the population denominators.

    Returns
    -------
    Table or Notice
        One row per capital, its note marked as synthetic when the register file is.
    """
    if isinstance(counts, Notice):
        return counts
    reg = density.per_own_area(inputs, counts, population_vintage)
    declared, _ = density.declared_density(inputs, reference_year, population_vintage)
    d = declared.set_index("territory_id")["value"]
    table = pd.DataFrame(
        {
            "territory_id": reg["territory_id"],
            "register_startups": counts["value"].to_numpy(),
            "register_per_100k": reg["value"].round(2),
            "declared_per_100k": reg["territory_id"].map(d).round(2),
        }
    )
    register = table["register_per_100k"].where(table["register_per_100k"] > 0)  # 0: no ratio
    table["declared_to_register"] = (table["declared_per_100k"] / register).round(2)
    table["source_ids"] = [
        join_sources(a, declared.set_index("territory_id")["source_ids"].get(t, ""))
        for a, t in zip(reg["source_ids"], reg["territory_id"], strict=True)
    ]
    note = (
        "Register: active ICT establishments created in the window (SIRENE), per 100,000 "
        "inhabitants of the perimeter counted. Declared: see above, each over its own area; "
        "– = no declared count of a perimeter."
    )
    if counts.attrs.get("synthetic"):
        note = "SYNTHETIC TEST DATA, NOT RESULTS: the register file is generated for tests. " + note
    return tables.table(table, note=note)


def populations(inputs: Inputs) -> Table:
    """The population denominators of the capitals, both census vintages."""
    pop = inputs.capitals
    cols = [
        "territory_id",
        "perimeter",
        "census_year",
        "population_municipale",
        "n_communes",
        "epci_sirens",
        "source_id",
    ]
    return tables.table(pop[cols])


def index_inputs(frame: pd.DataFrame, excluded: dict[str, str]) -> Table:
    """The composite index's inputs, with the capitals left out and why.

    Parameters
    ----------
    frame : pandas.DataFrame
        The index's input table, one row per capital.
    excluded : dict of str to str
        Capital left out -> reason (a missing input; nothing is imputed).

    Returns
    -------
    Table
        `frame` with a note naming the capitals left out.
    """
    left_out = "; ".join(f"{t}: {r}" for t, r in excluded.items()) or "none"
    return tables.table(frame, note=f"Left out (missing input, not imputed): {left_out}")


# ----------------------------------------------------------------------------- label effect

#: The EPCI of the focal capital (Métropole d'Aix-Marseille-Provence), for its synthetic control.
FOCAL_EPCI = "200054807"


def label_cohorts_table(inputs: Inputs, perimeter: str, late_month: int) -> Table:
    """The EPCIs each label treats, with their first treated year and the labels' sources.

    Parameters
    ----------
    inputs : Inputs
        The loaded inputs of the package.
    perimeter : str
        Perimeter whose EPCIs a label treats (``label`` or ``core``).
    late_month : int
        A label given in or after this month counts from the next year.

    Returns
    -------
    Table
        One row per treated EPCI, with a note counting them by first treated year and naming the
        EPCIs left out of the comparison group.
    """
    treated, left_out = label_cohorts.cohorts(inputs, perimeter, late_month=late_month)
    t = treated.sort_values(["first_treated", "epci_siren"])
    waves = t.groupby("first_treated")["epci_siren"].size()
    gone = "; ".join(f"{r.epci_siren}: {r.reason}" for r in left_out.itertuples()) or "none"
    return tables.table(
        t[["epci_siren", "epci_name", "first_treated", "labels", "source_ids"]],
        max_rows=100,
        note=f"{len(t)} treated EPCIs, by first treated year: "
        + ", ".join(f"{y}: {n}" for y, n in waves.items())
        + f" (a label in or after month {late_month} counts from the next year). Left out of "
        f"the comparison group: {gone}.",
    )


def label_panel(
    panel_path: Path | None, outcome: str, first_year: int = 2008
) -> pd.DataFrame | Notice:
    """The label-effect panel from `panel_path` (checked, from `first_year` on), or a notice
    saying how to build it.

    Parameters
    ----------
    panel_path : pathlib.Path or None
        The panel file written by ``analysis sirene panel``; None returns a notice.
    outcome : str
        Outcome column the panel must hold.
    first_year : int
        First year kept (earlier rows are dropped before the checks).

    Returns
    -------
    pandas.DataFrame or Notice
        The checked panel with ``attrs["synthetic"]`` and ``attrs["source"]``, or a notice.

    Raises
    ------
    DataError
        When the file is missing or is not a readable CSV.
    ParameterError
        When the panel fails its checks (see :func:`analysis.methods.panels.check_panel`).
    """
    if panel_path is None:
        return Notice(
            "No panel given: the estimates need the register. Build the panel with "
            "`analysis sirene fetch` then `analysis sirene panel <file> --out "
            "reports/label-panel.csv`, and rerun with panel_path set (see the README)."
        )
    from analysis.data.panel_file import read_panel
    from analysis.methods.panels import check_panel

    raw = read_panel(panel_path)
    if "year" in raw.columns:
        raw = raw[pd.to_numeric(raw["year"], errors="coerce").fillna(first_year) >= first_year]
    panel = check_panel(raw, outcome)
    panel.attrs["synthetic"] = is_synthetic(panel_path)
    # the panel's own source: the register file it was built from (see its sidecar)
    panel.attrs["source"] = f"label-panel:{Path(panel_path).name}"
    return panel


def _synthetic_note(panel: pd.DataFrame, note: str) -> str:
    if panel.attrs.get("synthetic"):
        return (
            "SYNTHETIC TEST DATA, NOT RESULTS: the panel is built from a generated register. "
            + note
        )
    return note


def label_effect(
    panel: pd.DataFrame | Notice,
    outcome: str,
    n_draws: int,
    seed: int,
    estimator: str = "etwfe",
    control: str = "never",
) -> pd.DataFrame | Notice:
    """The main estimate (Poisson extended TWFE, randomisation inference) as tidy rows.

    See :func:`analysis.methods.label_effect.estimate` (extended two-way fixed effects,
    Wooldridge 2023, *Econometrics Journal* 26(3); intervals by inverting a randomisation test).

    Parameters
    ----------
    panel : pandas.DataFrame or Notice
        The checked EPCI × year panel; a notice is passed through.
    outcome : str
        Count outcome column.
    n_draws : int
        Number of randomisation draws.
    seed : int
        Seed of the draws.
    estimator : str
        ``etwfe`` (the main one), ``callaway_santanna`` or ``twfe_biased``.
    control : str
        ``never`` (never-labelled units) or ``rejected`` (applicants not labelled).

    Returns
    -------
    pandas.DataFrame or Notice
        Tidy estimate rows (overall, pre-trend, event), carrying the panel's ``attrs``.
    """
    if isinstance(panel, Notice):
        return panel
    from analysis.methods import label_effect as le

    res = le.estimate(
        panel, outcome=outcome, estimator=estimator, control=control, n_draws=n_draws, seed=seed
    )
    res.attrs.update(panel.attrs)
    return res


def label_effect_table(res: pd.DataFrame | Notice) -> Shown:
    """Overall effect, pre-trend test and effect by year since the label."""
    if isinstance(res, Notice):
        return res
    note = (
        "estimate: relative change exp(beta) - 1 (0.10 = +10 %); 95 % interval by inverting a "
        "randomisation test (the label re-assigned among EPCIs of similar size); pretrend: "
        "joint test that the years before the label show no effect."
    )
    return tables.table(res.round(4), sources=res.attrs["source"], note=_synthetic_note(res, note))


def label_event_figure(res: pd.DataFrame | Notice) -> Shown:
    """The label's effect by year since the label, with its intervals (a notice passes
    through)."""
    if isinstance(res, Notice):
        return res
    ev = res[res["term"] == "event"]
    fig = figures.event_study(
        ev,
        title="ICT establishment creations: effect by year since the label",
        note=_synthetic_note(res, "Poisson extended TWFE; randomisation-inference intervals."),
        sources=res.attrs["source"],
    )
    return fig


def label_effect_compare(
    panel: pd.DataFrame | Notice, outcome: str, n_draws: int, seed: int
) -> Shown:
    """Every estimator's overall estimate side by side (the main one first).

    Parameters
    ----------
    panel : pandas.DataFrame or Notice
        The checked EPCI × year panel; a notice is passed through.
    outcome : str
        Count outcome column.
    n_draws : int
        Number of randomisation draws.
    seed : int
        Seed of the draws.

    Returns
    -------
    Table or Notice
        The overall rows of every estimator, with a note on what each one assumes.
    """
    if isinstance(panel, Notice):
        return panel
    from analysis.methods import label_effect as le

    res = le.compare(panel, outcome=outcome, n_draws=n_draws, seed=seed)
    overall = res[res["term"] == "overall"].round(4)
    note = (
        "etwfe: the main estimate. callaway_santanna: a cross-check on log(1 + y), biased when "
        "treated and comparison units differ in size. twfe_biased: plain two-way fixed "
        "effects, biased under staggered adoption, shown as the baseline only."
    )
    return tables.table(overall, sources=panel.attrs["source"], note=_synthetic_note(panel, note))


def label_synthetic_control(
    panel: pd.DataFrame | Notice, outcome: str, unit: str = FOCAL_EPCI
) -> Shown:
    """The synthetic control of one EPCI (Aix-Marseille-Provence by default).

    See :func:`analysis.methods.synthetic_control.synthetic_control` (Abadie, Diamond &
    Hainmueller 2010, *JASA* 105(490)).

    Parameters
    ----------
    panel : pandas.DataFrame or Notice
        The checked EPCI × year panel; a notice is passed through.
    outcome : str
        Outcome column.
    unit : str, default FOCAL_EPCI
        SIREN of the treated EPCI.

    Returns
    -------
    Table or Notice
        The summary (pre-period fit, placebo p-value), with the method's notes.
    """
    if isinstance(panel, Notice):
        return panel
    from analysis.methods.synthetic_control import synthetic_control

    sc = synthetic_control(panel, unit, outcome=outcome)
    note = " ".join(sc.notes) or "Pre-period fit and placebo p-value in the table."
    return tables.table(
        sc.summary.round(4), sources=panel.attrs["source"], note=_synthetic_note(panel, note)
    )


def cited_panels(inputs: Inputs) -> Shown:
    """Whether a cited series of the catalogue forms a panel for the label design: labelled
    units observed before and after their label, and never-labelled units to compare with."""
    t = label_cohorts.cited_panels(inputs)
    usable = t[t["usable"]]
    if usable.empty:
        return Notice(
            "No cited series of the catalogue forms a panel for this design: every territory "
            "with a series of its own is a labelled capital (regions and France are not "
            "units of the label), so there is no never-labelled unit to compare with. "
            f"{len(t)} series checked; the estimates need the register panel."
        )
    return tables.table(usable, note="Cited series that form a panel for the label design.")


def label_break(inputs: Inputs, indicator: str = "implantations") -> Shown:
    """Aix-Marseille's own cited series around each label, as a count trend with a break.

    Parameters
    ----------
    inputs : Inputs
        The loaded tables.
    indicator : str
        The cited count series (default Provence Promotion's implantations).

    Returns
    -------
    Table or Notice
        The level change and trend of :func:`analysis.methods.models.fit_break` at the first
        full year of each label, or a notice when no break can be estimated.
    """
    series, _ = investment.cited_series(inputs, territories.FOCAL_TERRITORY, (2008, 2025))
    s = series[series["indicator"] == indicator]
    rows, why = [], []
    for label, year in (("métropole, November 2014", 2015), ("capitale, April 2019", 2019)):
        try:
            r = models.fit_break(s, year)
        except InsufficientDataError as e:
            why.append(f"{label}: {e}")
            continue
        rows.append(r.estimates.assign(label=label, break_year=year).round(3))
    if not rows:
        return Notice("No break can be estimated: " + "; ".join(why))
    out = pd.concat(rows, ignore_index=True)
    cols = ["label", "break_year", "term", "estimate", "ci_low", "ci_high", "p_value", "unit"]
    note = (
        "Quasi-Poisson trend with a level break (95 % intervals). One territory with no "
        "comparison group: a break, or its absence, says nothing of the label's effect; "
        "anything that changed that year would show the same."
        + (" Not estimated: " + "; ".join(why) + "." if why else "")
    )
    return tables.table(out[cols + ["source_ids"]], note=note)


def label_recovery(n_draws: int, seed: int) -> Shown:
    """SYNTHETIC-TEST-DATA: the main estimator on two generated panels of the register panel's
    shape, one with no effect and one with +20 %, to show what it recovers.

    Parameters
    ----------
    n_draws : int
        Randomisation draws.
    seed : int
        Seed of the panels and of the draws.

    Returns
    -------
    Table
        The overall estimate of each panel with its true effect, labelled synthetic.
    """
    from analysis.methods import label_effect as le
    from analysis.methods.panels import simulate_panel

    rows = []
    for effect in (0.0, 0.2):
        panel = simulate_panel(effect=effect, seed=seed)
        res = le.estimate(panel, n_draws=n_draws, seed=seed, leads=0, lags=0)
        rows.append(res[res["term"] == "overall"].assign(true_effect=effect))
    out = pd.concat(rows, ignore_index=True).round(4)
    return tables.table(
        out,
        sources=["SYNTHETIC-TEST-DATA"],
        note="SYNTHETIC TEST DATA, NOT RESULTS: generated panels (1,250 units, 2008-2024, 15 "
        "labelled among the 60 largest) with a known effect. The interval should hold "
        "true_effect; over 300 such panels it held it 96 % of the time, and the minimum "
        "detectable effect at 80 % power was about 15 % (benchmarks/README.md).",
    )
