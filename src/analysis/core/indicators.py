"""The registry of indicators: every indicator a cited figure may carry, with its unit and
the values it can take.

A figure in ``data/raw/*/facts.csv`` must name an indicator of this registry, in its unit,
with a finite value in its range (a count is a whole number >= 0, a share lies between 0
and 100 percent). ``analysis data verify`` and every reader check each row against it and
name the file, line and column of a row that breaks it: a misspelt indicator would
otherwise vanish silently from every output.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Indicator:
    unit: str
    description: str
    lo: float = 0.0
    hi: float = math.inf
    whole: bool = True  # a count: whole numbers only


def _count(unit: str, description: str) -> Indicator:
    return Indicator(unit, description)


def _share(description: str) -> Indicator:
    return Indicator("percent", description, 0.0, 100.0, whole=False)


INDICATORS: dict[str, Indicator] = {
    # French Tech labels
    "capitales_french_tech": _count("labels", "Capitales French Tech labelled"),
    "communautes_french_tech": _count("labels", "Communautés French Tech labelled"),
    "french_tech_metropoles": _count("labels", "Métropoles French Tech labelled"),
    "french_tech_metropoles_added": _count("labels", "Métropoles French Tech added"),
    # Provence Promotion and the seed article
    "implantations": _count("projects", "implantations accompanied by the agency"),
    "implantations_since_2015": _count("projects", "implantations since 2015 (seed article)"),
    "foreign_implantations": _count("projects", "foreign implantations"),
    "french_implantations": _count("projects", "French implantations"),
    "digital_implantations": _count("projects", "digital implantations"),
    "jobs_created": _count("jobs", "jobs created by the implantations"),
    "jobs_maintained": _count("jobs", "jobs maintained by the implantations"),
    "jobs_created_or_maintained": _count("jobs", "jobs created or maintained"),
    "jobs_since_2015": _count("jobs", "jobs since 2015 (seed article)"),
    "foreign_jobs": _count("jobs", "jobs of foreign implantations"),
    "french_jobs": _count("jobs", "jobs of French implantations"),
    "foreign_share_of_implantations": _share("foreign share of implantations"),
    "foreign_share_of_jobs": _share("foreign share of jobs"),
    "french_share_of_implantations": _share("French share of implantations"),
    "digital_share_of_implantations": _share("digital share of implantations"),
    "digital_share_of_implantations_since_2015": _share("digital share since 2015 (seed)"),
    "digital_share_of_jobs_since_2015": _share("digital share of jobs since 2015 (seed)"),
    "startup_files_examined": _count("files", "start-up files examined by the agency"),
    "ces_exhibitors": _count("start-ups", "local start-ups exhibiting at CES"),
    "submarine_cables": _count("cables", "submarine cables landing in Marseille"),
    # Business France
    "fdi_decisions": _count("decisions", "foreign investment decisions (Business France)"),
    "fdi_decisions_cumulative_since_2014": _count("decisions", "decisions since 2014"),
    "fdi_jobs_created": _count("jobs", "jobs created by foreign investment decisions"),
    "fdi_jobs_maintained": _count("jobs", "jobs maintained by foreign investment decisions"),
    "fdi_jobs_created_or_maintained": _count("jobs", "jobs created or maintained (BF)"),
    "fdi_jobs_created_or_maintained_cumulative_since_2014": _count("jobs", "jobs since 2014"),
    "fdi_projects_10_jobs_or_more": _count("projects", "decisions with 10 jobs or more"),
    "fdi_jobs_projects_10_jobs_or_more": _count("jobs", "jobs of decisions with 10 jobs or more"),
    # EY barometer
    "ey_fdi_projects": _count("projects", "announced foreign projects (EY)"),
    "ey_fdi_jobs": _count("jobs", "jobs of announced foreign projects (EY)"),
    "ey_fdi_projects_lyon": _count("projects", "EY projects in the Lyon metropole"),
    "ey_fdi_jobs_lyon": _count("jobs", "EY jobs in the Lyon metropole"),
    "ey_fdi_projects_nice": _count("projects", "EY projects in Nice"),
    "ey_fdi_jobs_nice": _count("jobs", "EY jobs in Nice"),
    "ey_jobs_per_project": Indicator("jobs per project", "EY jobs per project", whole=False),
    "ey_fdi_projects_sophia_antipolis": _count("projects", "EY projects in Sophia Antipolis"),
    "ey_challenger_share": _share("executives naming the city as Paris's challenger (EY survey)"),
    "ey_challenger_share_first": _share("executives naming the city first as Paris's challenger"),
    # regional agencies (another definition than Business France's)
    "fdi_projects_regional_agency": _count(
        "projects", "foreign projects counted by a regional agency"
    ),
    "fdi_jobs_regional_agency": _count("jobs", "jobs of foreign projects (regional agency count)"),
    # INSEE enterprise creations
    "enterprise_creations": _count("enterprises", "enterprise creations (INSEE, micro included)"),
    "enterprise_creations_excl_micro": _count("enterprises", "creations without micro-enterprises"),
    # French Tech programmes
    "ft120_members": _count("companies", "members of the French Tech 120"),
    "next40_members": _count("companies", "members of the French Tech Next40"),
    # start-up counts
    "startups_declared": _count("start-ups", "start-ups declared by an ecosystem or the press"),
    "startups_members": _count("start-ups", "members of the local French Tech association"),
    "startups_identified_trendeo": _count("start-ups", "start-ups identified by Trendeo"),
    "startups_motherbase": _count("start-ups", "start-ups listed in Motherbase"),
}


def shown(value: float) -> str:
    """`value` as written, to the last digit that tells it apart (``100.0001``, never the
    ``100`` of ``{:g}``): Python's shortest round-trip ``repr``, without a trailing ``.0``."""
    return repr(float(value)).removesuffix(".0")


def check_figure(indicator: str, unit: str, value: float) -> str | None:
    """What is wrong with one figure, or None. Used by the facts reader on every row.

    A figure is right when its indicator is declared in :data:`INDICATORS`, its unit is the
    indicator's, and its value is finite, within the indicator's range ``[lo, hi]`` and a
    whole number for a count.

    Parameters
    ----------
    indicator : str
        Indicator name.
    unit : str
        Unit as written in the row.
    value : float
        The figure.

    Returns
    -------
    str or None
        One sentence naming the column at fault (``column 'unit': ...``), or None.
    """
    spec = INDICATORS.get(indicator)
    if spec is None:
        close = difflib.get_close_matches(indicator, list(INDICATORS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (
            f"column 'indicator': unknown indicator {indicator!r}{hint}; every indicator is "
            "declared in analysis.core.indicators"
        )
    if unit != spec.unit:
        return f"column 'unit': {unit!r}, but {indicator} is measured in {spec.unit!r}"
    if not math.isfinite(value):
        return f"column 'value': {value} is not a finite number"
    if not spec.lo <= value <= spec.hi:
        hi = "" if math.isinf(spec.hi) else f" and {spec.hi:g}"
        return (
            f"column 'value': {shown(value)} is outside the range of {indicator} "
            f"({spec.lo:g}{hi}, {spec.unit})"
            if hi
            else f"column 'value': {shown(value)} is below {spec.lo:g} ({indicator} is a count)"
        )
    if spec.whole and value != int(value):
        return f"column 'value': {shown(value)} is not a whole number ({indicator} is a count)"
    return None
