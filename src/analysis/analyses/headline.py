"""The headline results: the one place that assembles them, for the notebooks and the CLI.

:func:`headline` returns a :class:`Headline`: the tidy table that ``analysis indicators``
prints (every row with its ``source_ids``, and an interval ``ci_low``, ``ci_high`` where one
is modelled), and the fitted objects the territory report shows (the composite index with
its rank intervals, the size-adjusted model). Notebook 10 and the CLI call it, so they can
never disagree. The table holds:

* ``population_municipale`` — census vintage in ``year``;
* ``startups_declared_per_100k`` — each declared count per 100,000 inhabitants;
* ``<series>_growth_<a>_<b>``, ``<series>_cagr_<a>_<b>`` — first to last cited year of the
  agency series (Provence Promotion) and of Business France's decisions;
* ``<series>_trend_growth`` — modelled growth rate (Poisson / NB2 trend) with its 95 % CI;
* ``jobs_per_project`` — by year, where jobs and implantations are both cited;
* the cited foreign and digital shares, and the shares of the region and of France;
* ``startups_declared_observed_to_expected`` and its ``_rank`` — the size-adjusted model
  on the latest declared counts, with exact 95 % intervals;
* ``ecosystem_index_median_rank`` — the composite index with its 90 % rank interval
  (equal weights, :data:`INDEX_DRAWS` draws, seed :data:`INDEX_SEED`).

The constants below are the defaults of every headline figure, defined once.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.analyses import density, ecosystem, investment
from analysis.core import rules, territories
from analysis.core.errors import InsufficientDataError
from analysis.core.tidy import TIDY
from analysis.data.inputs import Inputs
from analysis.methods import composite_index, metrics, models, series

#: The latest year of declared start-up counts the headline figures use.
REFERENCE_YEAR = 2024
#: Monte Carlo draws and seed of the headline composite index (equal weights).
INDEX_DRAWS, INDEX_SEED = 1000, 20190403
#: The years of the investment series shown in a territory report.
SERIES_YEARS = (2014, 2025)

COLUMNS = [*TIDY, "ci_low", "ci_high"]
#: Series whose first-to-last growth and modelled trend are headlines.
GROWTH_SERIES = ("implantations", "jobs_created", "fdi_decisions", "startup_files_examined")
TREND_SERIES = ("implantations", "fdi_decisions")
SHARE_SERIES = (
    "foreign_share_of_implantations",
    "foreign_share_of_jobs",
    "digital_share_of_implantations",
)


@dataclass(frozen=True)
class Headline:
    """The headline results for one territory (or all), from one set of inputs."""

    territory: str | None
    population_vintage: int
    indicators: pd.DataFrame
    """The tidy table of ``analysis indicators`` (``COLUMNS``), sorted."""
    notes: tuple[str, ...]
    """What could not be computed, and why."""
    index: composite_index.IndexUncertainty | None
    """The composite index over the capitals (ranks with their 90 % intervals); None when
    it cannot be computed for the vintage (the reason is in ``notes``)."""
    index_inputs: pd.DataFrame
    index_excluded: dict[str, str]
    size_adjusted: models.SizeAdjustedResult
    """Observed against expected declared start-ups, given population."""
    alternatives: pd.DataFrame
    """The other published values of a headline figure (territory, indicator, year), each
    with its source and why it was not used."""
    perimeter: str = "label"


def population_rows(population: pd.DataFrame, perimeter: str) -> pd.DataFrame:
    """Population municipale as tidy rows (indicator ``population_municipale``); a capital's
    population is that of `perimeter`, which the unit names.

    Parameters
    ----------
    population : pandas.DataFrame
        ``territory_id, census_year, population_municipale, source_id``, one row per territory.
    perimeter : str
        The capitals' perimeter (``label`` or ``core``), named in their unit.

    Returns
    -------
    pandas.DataFrame
        Tidy rows (:data:`~analysis.core.tidy.TIDY`), year the census year.
    """
    capital = population["territory_id"].isin(territories.CAPITALE_IDS)
    return pd.DataFrame(
        {
            "territory_id": population["territory_id"],
            "indicator": "population_municipale",
            "year": population["census_year"],
            "value": population["population_municipale"].astype(float),
            "unit": np.where(capital, f"inhabitants ({perimeter} perimeter)", "inhabitants"),
            "source_ids": population["source_id"],
        }
    )


def declared_density_rows(inputs: Inputs, population_vintage: int) -> pd.DataFrame:
    """One declared start-up count per 100,000 inhabitants per territory and year, each over
    the population of the area it describes (:func:`analysis.analyses.density.declared_by_year`).

    ``value = 100000 * count / population`` of the count's own area.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    population_vintage : int
        Census year of the denominators; territories without a population in it are left out.

    Returns
    -------
    pandas.DataFrame
        Tidy densities (:data:`~analysis.core.tidy.TIDY`).
    """
    chosen, _ = density.declared_by_year(inputs)
    chosen = chosen[
        chosen["territory_id"].isin(set(inputs.population(population_vintage)["territory_id"]))
    ]
    return density.per_own_area(inputs, chosen, population_vintage).drop(columns="area")


def series_growth(
    facts: pd.DataFrame, sources: pd.DataFrame, territory_id: str, indicator: str
) -> pd.DataFrame:
    """Growth and CAGR between the first and last years of a cited series.

    ``growth = (v_b / v_a - 1) * 100`` and ``CAGR = ((v_b / v_a) ** (1 / (b - a)) - 1) * 100``,
    with ``a`` and ``b`` the first and last cited years (:func:`analysis.methods.metrics.cagr`).

    Parameters
    ----------
    facts : pandas.DataFrame
        Cited figures (see :func:`analysis.methods.series.pick`).
    sources : pandas.DataFrame
        The catalogue of sources.
    territory_id : str
        Territory of the series.
    indicator : str
        Indicator of the series.

    Returns
    -------
    pandas.DataFrame
        Two tidy rows: ``<indicator>_growth_<a>_<b>`` (percent) and ``<indicator>_cagr_<a>_<b>``
        (percent per year).

    Raises
    ------
    InsufficientDataError
        When the series has no figure or fewer than 2 years.
    """
    s, _ = series.pick(facts, sources, territory_id, indicator)
    if len(s) < 2:
        raise InsufficientDataError(f"{indicator} of {territory_id}: fewer than 2 years")
    start, end = int(s["year"].min()), int(s["year"].max())
    return pd.concat(
        [metrics.growth(s, start, end), metrics.cagr(s, start, end)], ignore_index=True
    )


def trend_rows(s: pd.DataFrame) -> pd.DataFrame:
    """The modelled growth rate of a count series, with its 95 % interval."""
    fit = models.fit_trend(s, horizon=0)
    g = fit.estimates.set_index("term").loc["growth_rate"]
    return pd.DataFrame(
        [
            {
                "territory_id": s["territory_id"].iloc[0],
                "indicator": f"{s['indicator'].iloc[0]}_trend_growth",
                "year": int(s["year"].max()),
                "value": g["estimate"],
                "unit": f"percent per year ({fit.model.replace('_', ' ')} trend, "
                f"{int(s['year'].min())}-{int(s['year'].max())})",
                "source_ids": g["source_ids"],
                "ci_low": g["ci_low"],
                "ci_high": g["ci_high"],
            }
        ]
    )


def _series_rows(facts, sources, tid: str) -> list[pd.DataFrame]:
    parts = []
    for ind in GROWTH_SERIES:
        try:
            s, _ = series.pick(facts, sources, tid, ind)
        except InsufficientDataError:
            continue
        if len(s) >= 2:
            parts.append(series_growth(facts, sources, tid, ind))
        if ind in TREND_SERIES and len(s) >= 3:
            parts.append(trend_rows(s))
    found = []
    for ind in (*SHARE_SERIES, "implantations", "jobs_created"):
        try:
            found.append(series.pick(facts, sources, tid, ind)[0])
        except InsufficientDataError:
            continue
    if found:
        cited = pd.concat(found, ignore_index=True)
        parts.append(cited[cited["indicator"].isin(SHARE_SERIES)])
        with contextlib.suppress(InsufficientDataError):
            parts.append(investment.jobs_per_project(cited))
    return parts


def size_adjusted_fit(inputs: Inputs, population_vintage: int) -> models.SizeAdjustedResult:
    """The size-adjusted model on each capital's latest declared count (:data:`REFERENCE_YEAR`),
    with the population of the area each count describes as exposure.

    ``log μ_i = b0 + log(pop_i)``, Poisson or NB2 (Cameron & Trivedi 2013); see
    :func:`analysis.methods.models.fit_size_adjusted`.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    population_vintage : int
        Census year of the exposure populations.

    Returns
    -------
    SizeAdjustedResult
        The fitted model.
    """
    counts, _ = density.latest_declared(inputs, REFERENCE_YEAR)
    pop = density.own_area_population(inputs, counts, population_vintage)
    return models.fit_size_adjusted(counts.drop(columns="area"), pop)


def size_adjusted_rows(fit: models.SizeAdjustedResult, population_vintage: int) -> pd.DataFrame:
    """Observed / expected ratio and its rank, on the latest declared counts.

    Parameters
    ----------
    fit : SizeAdjustedResult
        The result of :func:`size_adjusted_fit`.
    population_vintage : int
        Census year of the exposure, named in the unit.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS` rows: ``startups_declared_observed_to_expected`` with its exact 95 %
        interval, and ``startups_declared_observed_to_expected_rank`` (1 = most above expected).
    """
    perf = fit.performance
    ratio = pd.DataFrame(
        {
            "territory_id": perf["territory_id"],
            "indicator": "startups_declared_observed_to_expected",
            "year": perf["year"],
            "value": perf["ratio"],
            "unit": f"ratio ({fit.model.replace('_', ' ')}, population municipale {population_vintage})",
            "source_ids": perf["source_ids"],
            "ci_low": perf["ratio_low"],
            "ci_high": perf["ratio_high"],
        }
    )
    rank = ratio.assign(
        indicator="startups_declared_observed_to_expected_rank",
        value=perf["rank"].astype(float).to_numpy(),
        unit=f"rank among {len(perf)} capitals (1 = most above expected)",
        ci_low=np.nan,
        ci_high=np.nan,
    )
    return pd.concat([ratio, rank], ignore_index=True)


def index_fit(
    inputs: Inputs, population_vintage: int, perimeter: str | None = None
) -> tuple[composite_index.IndexUncertainty, pd.DataFrame, dict[str, str]]:
    """The composite index with equal weights, :data:`INDEX_DRAWS` draws, seed :data:`INDEX_SEED`.

    Min-max and z-score normalisations, arithmetic aggregation, rank intervals by Monte Carlo
    (OECD/JRC 2008; Saisana et al. 2005); see :func:`analysis.methods.composite_index.monte_carlo`.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    population_vintage : int
        Census year of the populations the inputs are computed on.
    perimeter : str or None, default None
        The capitals' perimeter; None for the default.

    Returns
    -------
    mc : IndexUncertainty
        The Monte Carlo result (without sensitivity indices).
    frame : pandas.DataFrame
        Its input frame.
    excluded : dict of str to str
        The capitals left out, with the reason.

    Raises
    ------
    InsufficientDataError
        When a capital's region has no population for `population_vintage`, or no capital
        has every input.
    """
    frame, excluded = ecosystem.index_inputs(inputs, population_vintage, perimeter)
    mc = composite_index.monte_carlo(frame, n_draws=INDEX_DRAWS, seed=INDEX_SEED, sensitivity=False)
    return mc, frame, excluded


def index_rows(
    mc: composite_index.IndexUncertainty, population_vintage: int, n_indicators: int
) -> pd.DataFrame:
    """Composite index median rank with its 90 % rank interval (equal weights).

    Parameters
    ----------
    mc : IndexUncertainty
        The result of :func:`index_fit`.
    population_vintage : int
        Census year of the inputs, used as the rows' year.
    n_indicators : int
        Number of indicators of the index, named in the unit.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS` rows, indicator ``ecosystem_index_median_rank``, ``ci_low`` and
        ``ci_high`` the 90 % rank interval.
    """
    r = mc.ranks
    return pd.DataFrame(
        {
            "territory_id": r["territory_id"],
            "indicator": "ecosystem_index_median_rank",
            "year": population_vintage,
            "value": r["median_rank"].astype(float),
            "unit": f"rank among {len(r)} capitals on {n_indicators} indicators "
            "(90 % rank interval)",
            "source_ids": r["source_ids"],
            "ci_low": r["rank_low"].astype(float),
            "ci_high": r["rank_high"].astype(float),
        }
    )


def headline(
    inputs: Inputs,
    territory: str | None = None,
    population_vintage: int | None = None,
    perimeter: str | None = None,
) -> Headline:
    """Every headline result for one territory (or all when `territory` is None).

    Parameters
    ----------
    inputs : the tables, loaded once (:func:`analysis.data.inputs.load_inputs`).
    territory : a territory id (capital, region or ``france``), or None for all.
    population_vintage : the census year of the denominators (None: the default).
    perimeter : the capitals' perimeter, ``label`` (default) or ``core``, for their population,
        its growth and the index. A published count is always divided by the population of
        the area it describes, whatever this parameter.

    Returns
    -------
    :class:`Headline`: one row per territory, indicator and year (the other published values
    of a figure are in ``alternatives``).
    """
    if territory is not None:
        rules.territory(territory)
    vintage = rules.population_vintage(population_vintage)
    perimeter = rules.perimeter(perimeter)
    facts, sources = inputs.facts, inputs.sources
    population = inputs.population(vintage, perimeter)
    fit = size_adjusted_fit(inputs, vintage)
    notes: list[str] = []
    try:
        mc, frame, excluded = index_fit(inputs, vintage, perimeter)
    except InsufficientDataError as e:
        mc, frame, excluded = None, pd.DataFrame(columns=["indicator"]), {}
        notes.append(f"composite index not computed: {e}")
    wanted = [territory] if territory else list(territories.valid_territory_ids())
    parts = [population_rows(population, perimeter), declared_density_rows(inputs, vintage)]
    for tid in wanted:
        parts += _series_rows(facts, sources, tid)
        if territories.territory_kind(tid) != "country":
            parts.append(
                investment.shares_of_region_and_france(
                    inputs, tid, (rules.YEAR_MIN, rules.YEAR_MAX)
                )
            )
    parts.append(size_adjusted_rows(fit, vintage))
    if mc is not None:
        parts.append(index_rows(mc, vintage, frame["indicator"].nunique()))
    out = pd.concat([p.reindex(columns=COLUMNS) for p in parts if len(p)], ignore_index=True)
    # regional rows come once per capital of the region: identical copies go
    out = out.drop_duplicates(subset=[c for c in COLUMNS if c != "source_ids"] + ["source_ids"])
    key = ["territory_id", "indicator", "year"]
    _, alternatives = density.declared_by_year(inputs)
    clash = out.duplicated(subset=key, keep="first")
    if clash.any():  # never expected: kept visible rather than dropped
        alternatives = pd.concat(
            [
                alternatives,
                out[clash]
                .rename(columns={"source_ids": "source_id"})
                .assign(
                    reason="another value of the same territory, indicator and year was "
                    "listed first"
                ),
            ],
            ignore_index=True,
        )
        out = out[~clash]
    if territory is not None:
        out = out[out["territory_id"] == territory]
        alternatives = alternatives[alternatives["territory_id"] == territory]
    out = out.sort_values(["territory_id", "indicator", "year", "source_ids"])
    out = out.reset_index(drop=True)
    declared = set(facts.loc[facts["indicator"] == density.DECLARED, "territory_id"])
    if territory is not None:
        declared &= {territory}
    notes += [
        f"no population for {t} in census {vintage}: its declared start-ups per 100,000 "
        "are not computed"
        for t in sorted(declared - set(population["territory_id"]))
    ]
    return Headline(
        territory, vintage, out, tuple(notes), mc, frame, excluded, fit, alternatives, perimeter
    )
