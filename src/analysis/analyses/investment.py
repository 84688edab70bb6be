"""Investment attraction: the cited series of a territory, its ratios and shares, and the
seed article's claims checked against them.

Sources and their perimeters differ and are never merged: Provence Promotion counts the
implantations it accompanies in the Bouches-du-Rhône (French and foreign firms); Business
France counts foreign investment decisions creating or maintaining jobs (France and
regions); EY counts announced foreign projects (new sites and extensions). Shares are only
computed within one counter (EY metropole / EY region; Business France region / France),
except where a function says otherwise.
"""

from __future__ import annotations

import pandas as pd

from analysis.core import rules, territories
from analysis.core.errors import InsufficientDataError
from analysis.core.tidy import TIDY, join_sources
from analysis.data.inputs import Inputs
from analysis.methods import metrics, series

#: Series shown for a territory, with a label; each is one cited indicator.
SERIES_LABELS: dict[str, str] = {
    "implantations": "Implantations accompanied by Provence Promotion",
    "jobs_created": "Jobs created (Provence Promotion)",
    "jobs_created_or_maintained": "Jobs created or maintained (Provence Promotion)",
    "foreign_implantations": "Foreign implantations (Provence Promotion)",
    "foreign_share_of_implantations": "Foreign share of implantations, % (Provence Promotion)",
    "foreign_share_of_jobs": "Foreign share of jobs, % (Provence Promotion)",
    "digital_share_of_implantations": "Digital share of implantations, % (Provence Promotion)",
    "fdi_decisions": "Foreign investment decisions (Business France)",
    "fdi_jobs_created_or_maintained": "Jobs created or maintained by foreign investment (Business France)",
    "ey_fdi_projects": "Announced foreign projects (EY)",
    "ey_fdi_jobs": "Jobs of announced foreign projects (EY)",
}


def cited_series(
    inputs: Inputs,
    territory: str,
    years: tuple[int, int],
    indicators: tuple[str, ...] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every available series of `territory` in `years`, and the figures the series rule set
    aside.

    Indicators without any figure are simply absent; :func:`missing_series` lists them. Where
    sources disagree, :func:`analysis.methods.series.pick` chooses one value per year.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    territory : str
        Territory id.
    years : tuple of int
        First and last year, inclusive.
    indicators : tuple of str or None, default None
        Indicators looked for; None for every labelled one (:data:`SERIES_LABELS`).

    Returns
    -------
    series : pandas.DataFrame
        Tidy series (:data:`~analysis.core.tidy.TIDY`), empty with those columns when none.
    conflicts : pandas.DataFrame
        Every candidate of each year with several figures, and whether it was kept.

    Raises
    ------
    ParameterError
        When `territory` is not a known territory id.
    """
    territories.check_territory(territory)
    facts, sources = inputs.facts, inputs.sources
    found, conflicts = [], []
    for ind in indicators or tuple(SERIES_LABELS):
        try:
            s, c = series.pick(facts, sources, territory, ind, years)
        except InsufficientDataError:
            continue
        found.append(s)
        conflicts.append(c)
    out = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=TIDY)
    con = (
        pd.concat([c for c in conflicts if len(c)], ignore_index=True)
        if any(len(c) for c in conflicts)
        else pd.DataFrame()
    )
    return out, con


def missing_series(series_df: pd.DataFrame, territory: str, years: tuple[int, int]) -> pd.DataFrame:
    """For each labelled indicator, the years of `years` without a cited figure.

    Parameters
    ----------
    series_df : pandas.DataFrame
        Tidy series of the territory (as from :func:`cited_series`).
    territory : str
        Territory id, carried to every row.
    years : tuple of int
        First and last year, inclusive.

    Returns
    -------
    pandas.DataFrame
        ``territory_id, indicator, label, years_with_data, missing_years``, one row per
        labelled indicator; ``missing_years`` as ranges (``2016-2017, 2019``), ``none``, or
        ``all`` when the indicator has no figure.
    """
    all_years = set(range(years[0], years[1] + 1))
    rows = []
    for ind, label in SERIES_LABELS.items():
        have = set(series_df.loc[series_df["indicator"] == ind, "year"].astype(int))
        gap = sorted(all_years - have)
        rows.append(
            {
                "indicator": ind,
                "label": label,
                "years_with_data": len(have),
                "missing_years": _ranges(gap) if have else "all (no figure for this territory)",
            }
        )
    return pd.DataFrame(rows).assign(territory_id=territory)[
        ["territory_id", "indicator", "label", "years_with_data", "missing_years"]
    ]


def _ranges(years: list[int]) -> str:
    """[2016, 2017, 2019] -> '2016-2017, 2019'."""
    if not years:
        return "none"
    parts, start, prev = [], years[0], years[0]
    for y in years[1:] + [None]:
        if y is not None and y == prev + 1:
            prev = y
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if y is not None:
            start = prev = y
    return ", ".join(parts)


def wide(series_df: pd.DataFrame) -> pd.DataFrame:
    """Series as a year × indicator table (missing years stay empty)."""
    if series_df.empty:
        return pd.DataFrame()
    return series_df.pivot_table(index="year", columns="indicator", values="value", aggfunc="first")


def jobs_per_project(series_df: pd.DataFrame) -> pd.DataFrame:
    """Jobs created per implantation, for the years where both series have a figure."""
    jobs = series_df[series_df["indicator"] == "jobs_created"]
    impl = series_df[series_df["indicator"] == "implantations"]
    if jobs.empty or impl.empty:
        raise InsufficientDataError("jobs per project needs both jobs_created and implantations")
    return metrics.jobs_per_project(jobs, impl)


def shares_of_region_and_france(
    inputs: Inputs, territory: str, years: tuple[int, int]
) -> pd.DataFrame:
    """Shares computed within one counter: EY territory / EY region, EY region / EY France,
    Business France region / Business France France.

    Tidy, in percent: ``value = part / whole * 100``
    (:func:`analysis.methods.metrics.share_of`), for the years both are cited.

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    territory : str
        Territory id (a capital, a region, or France, which has no share).
    years : tuple of int
        First and last year, inclusive.

    Returns
    -------
    pandas.DataFrame
        Tidy shares sorted by indicator, territory and year; empty (same columns) when none
        can be computed.

    Raises
    ------
    ParameterError
        When `territory` is not a known territory id.
    """
    territories.check_territory(territory)
    facts, sources = inputs.facts, inputs.sources
    kind = territories.territory_kind(territory)
    region = inputs.capital_regions().get(territory) if kind == "capitale" else territory
    pairs = []
    if kind == "capitale" and region:
        pairs.append(("ey_fdi_projects", territory, region, "ey_projects_share_of_region"))
    if region and region != territories.COUNTRY_ID:
        pairs.append(
            ("ey_fdi_projects", region, territories.COUNTRY_ID, "ey_projects_share_of_france")
        )
        pairs.append(
            ("fdi_decisions", region, territories.COUNTRY_ID, "fdi_decisions_share_of_france")
        )
    out = []
    for ind, part_t, whole_t, name in pairs:
        try:
            part, _ = series.pick(facts, sources, part_t, ind, years)
            whole, _ = series.pick(facts, sources, whole_t, ind, years)
            out.append(metrics.share_of(part, whole, name))
        except InsufficientDataError:
            continue
    if not out:
        return pd.DataFrame(columns=TIDY)
    return (
        pd.concat(out, ignore_index=True)
        .sort_values(["indicator", "territory_id", "year"])
        .reset_index(drop=True)
    )


SEED = "investinprovence-capitale-french-tech-2019"


def _compare(computed: float, claimed: float, what: str, reading: str) -> str:
    """A verdict comparing a recomputed total with a claimed one (within ±25 % = consistent)."""
    ratio = computed / claimed
    if 0.75 <= ratio <= 1.25:
        return f"Consistent with {what} ({ratio:.2f} times the claim)."
    return f"Does not match {what} ({ratio:.1f} times the claim); {reading}."


def seed_claims(inputs: Inputs) -> pd.DataFrame:
    """The seed article's claims, recomputed, and set against the independent series.

    Columns: claim, in_the_article, recomputed_or_compared, verdict, source_ids.
    """
    facts, sources = inputs.facts, inputs.sources
    seed = facts[facts["source_id"] == SEED].set_index(["indicator", "year"])["value"]
    A = territories.FOCAL_TERRITORY
    rows = []

    files = facts[(facts["source_id"] == SEED) & (facts["indicator"] == "startup_files_examined")]
    g = metrics.growth(files, 2015, 2018)["value"].iloc[0]
    c = metrics.cagr(files, 2015, 2018)["value"].iloc[0]
    rows.append(
        (
            "Start-up files examined: 68 in 2018 against 32 in 2015",
            f"{seed[('startup_files_examined', 2018)]:.0f} vs {seed[('startup_files_examined', 2015)]:.0f}",
            f"growth {g:+.1f} %, CAGR {c:.2f} %/year",
            "Internally consistent; no other source counts start-up files, so it cannot be cross-checked.",
            SEED,
        )
    )

    impl, _ = series.pick(facts, sources, A, "implantations", (2015, 2018))
    n_years = impl["year"].nunique()
    total = impl["value"].sum()
    ids = join_sources(impl["source_ids"], [SEED])
    rows.append(
        (
            "About a hundred implantations since 2015",
            f"{seed[('implantations_since_2015', 2019)]:.0f} (approximate: 'une centaine')",
            f"Provence Promotion's yearly counts sum to {total:.0f} over 2015-2018 ({n_years} of 4 years cited)",
            _compare(
                total,
                seed[("implantations_since_2015", 2019)],
                "all implantations",
                "the article's figure most likely covers start-up implantations only",
            )
            if n_years == 4
            else "Not computable: some years 2015-2018 have no cited count.",
            ids,
        )
    )

    jobs, _ = series.pick(facts, sources, A, "jobs_created", (2015, 2018))
    missing = sorted(set(range(2015, 2019)) - set(jobs["year"].astype(int)))
    rows.append(
        (
            "1,990 jobs from those implantations since 2015",
            f"{seed[('jobs_since_2015', 2019)]:.0f}",
            "Jobs created by all implantations, 2015-2018: "
            + (
                "not computable, no cited figure for " + ", ".join(map(str, missing))
                if missing
                else f"{jobs['value'].sum():.0f}"
            ),
            "Missing years are not filled, so the total of all implantations stays unknown.",
            join_sources(jobs["source_ids"], [SEED]),
        )
    )

    jpp = seed[("jobs_since_2015", 2019)] / seed[("implantations_since_2015", 2019)]
    yearly = jobs_per_project(
        pd.concat(
            [
                series.pick(facts, sources, A, i, (2014, 2023))[0]
                for i in ("jobs_created", "implantations")
            ]
        )
    )
    rows.append(
        (
            "Jobs per implantation implied by the two figures",
            f"{jpp:.1f} (1,990 / about 100)",
            f"all implantations: {yearly['value'].min():.1f} to {yearly['value'].max():.1f} jobs per project "
            f"({int(yearly['year'].min())}-{int(yearly['year'].max())}, {len(yearly)} years)",
            "Within the range of the agency's yearly ratios."
            if yearly["value"].min() <= jpp <= yearly["value"].max()
            else f"Outside the agency's yearly range ({jpp:.1f} against "
            f"{yearly['value'].min():.1f}-{yearly['value'].max():.1f}).",
            join_sources(yearly["source_ids"], [SEED]),
        )
    )

    dig, _ = series.pick(facts, sources, A, "digital_share_of_implantations", (2014, 2024))
    rows.append(
        (
            "Digital is 36 % of the projects and 35 % of the jobs",
            f"{seed[('digital_share_of_implantations_since_2015', 2019)]:.0f} % / {seed[('digital_share_of_jobs_since_2015', 2019)]:.0f} %",
            "digital share of implantations: "
            + ", ".join(
                f"{v:.0f} % in {int(y)}" for y, v in zip(dig["year"], dig["value"], strict=True)
            ),
            "No cited figure for 2015-2019 itself; later years differ by at most "
            f"{(dig['value'] - seed[('digital_share_of_implantations_since_2015', 2019)]).abs().max():.0f} points.",
            join_sources(dig["source_ids"], [SEED]),
        )
    )

    cables = seed[("submarine_cables", 2019)]
    cited = facts[
        (facts["territory_id"] == A)
        & (facts["indicator"] == "submarine_cables")
        & (facts["source_id"] != SEED)
    ]
    later, _ = series.pick(cited, sources, A, "submarine_cables", (2020, rules.YEAR_MAX))
    counts = ", ".join(
        f"{v:.0f} in {int(y)}" for y, v in zip(later["year"], later["value"], strict=True)
    )
    rows.append(
        (
            "Submarine cables doubled in four years, to 18 in 2019",
            f"{cables:.0f} (expected: 'devrait atteindre')",
            f"doubling over 4 years = CAGR {metrics.cagr_rate(2.0, 4):.2f} %/year; "
            f"later cited counts: {counts or 'none'}",
            "The 2019 forecast is above every later cited count: the 18 were expected, not "
            "counted, and the sources may count landed cables differently."
            if len(later) and (later["value"] < cables).all()
            else "Later cited counts reach the forecast."
            if len(later)
            else "Single source; no later cable count in the catalogue.",
            join_sources(later["source_ids"], [SEED]),
        )
    )

    labels = inputs.labels
    caps = labels[
        (labels["label"] == "capitale-french-tech") & (labels["label_date"] == "2019-04-03")
    ]
    rows.append(
        (
            "Labelled Capitale French Tech on 3 April 2019 with 12 other cities",
            "13 capitals, 3 April 2019",
            f"{len(caps)} capitale rows dated 2019-04-03, Aix-Marseille among them: "
            f"{'yes' if A in set(caps['territory_id']) else 'no'}",
            "Confirmed by the label announcement.",
            join_sources(caps["source_id"], [SEED]),
        )
    )
    return pd.DataFrame(
        rows, columns=["claim", "in_the_article", "recomputed_or_compared", "verdict", "source_ids"]
    )
