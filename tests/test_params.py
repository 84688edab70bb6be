"""Notebook parameters: each bad value stops the run with a message listing what is allowed."""

from __future__ import annotations

import datetime as dt

import pytest

from analysis.core.errors import ParameterError
from analysis.runs import params


def test_valid_parameters_come_back_typed():
    p = params.validate(territory="aix-marseille", start_year=2014, end_year=2024)
    assert (p.territory, p.start_year, p.end_year) == ("aix-marseille", 2014, 2024)
    assert params.validate(as_of="2024-01-01").as_of == dt.date(2024, 1, 1)
    w = params.validate(
        weights=[1, 2, 3, 4, 5],
        normalisation="zscore",
        n_draws=10,
        seed=0,
        population_vintage=2023,
    )
    assert w.weights == {
        "population_growth": 1.0,
        "fdi_decisions_per_100k": 2.0,
        "fdi_jobs_per_100k": 3.0,
        "fdi_jobs_per_decision": 4.0,
        "ey_projects_per_100k": 5.0,
    }
    assert params.validate(perimeter="core").perimeter == "core"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            dict(territory="marseile", start_year=2014, end_year=2024),
            r"territory: unknown territory 'marseile'; valid ids: aix-marseille, bordeaux",
        ),
        (
            dict(territory="aix-marseille", start_year=2020, end_year=2014),
            r"start_year 2020 is after end_year 2014; give start_year <= end_year",
        ),
        (
            dict(territory="aix-marseille", start_year="2014", end_year=2024),
            r"start_year: expected a year \(integer\), got '2014' \(str\)",
        ),
        (
            dict(territory="aix-marseille", start_year=True, end_year=2024),
            r"start_year: expected a year",
        ),
        (
            dict(territory="aix-marseille", start_year=1850, end_year=2024),
            r"start_year: 1850 is outside the allowed range 1990-2100",
        ),
        (
            dict(territory="aix-marseille", start_year=2014, end_year=2024, colour="red"),
            r"colour: not a notebook parameter; the parameters are: territory, capital, ",
        ),
        (
            dict(capital="france"),
            r"capital: unknown territory 'france'; valid ids: aix-marseille, .*toulouse$",
        ),
        (
            dict(
                weights=[1, 1, 1],
                normalisation="minmax",
                n_draws=10,
                seed=0,
                population_vintage=2023,
            ),
            r"weights: 3 value\(s\) given, expected 5, one per indicator: population_growth, "
            r"fdi_decisions_per_100k, fdi_jobs_per_100k, fdi_jobs_per_decision, "
            r"ey_projects_per_100k",
        ),
        (
            dict(
                weights=[0] * 5,
                normalisation="minmax",
                n_draws=10,
                seed=0,
                population_vintage=2023,
            ),
            r"weights must be >= 0 and sum to a positive value",
        ),
        (
            dict(
                weights=[1] * 5, normalisation="rank", n_draws=10, seed=0, population_vintage=2023
            ),
            r"normalisation: 'rank' is not allowed; choose one of 'minmax', 'zscore'",
        ),
        (
            dict(
                weights=[1] * 5,
                normalisation="minmax",
                n_draws=0,
                seed=0,
                population_vintage=2023,
            ),
            r"n_draws: 0 is outside the allowed range 1-1000000",
        ),
        (
            dict(
                reference_year=2024,
                population_vintage=2020,
                startups_source="declared",
                sirene_path=None,
                as_of="2024-01-01",
                young_years=5,
            ),
            r"population_vintage: 2020 is not allowed; choose one of 2016, 2023",
        ),
        (
            dict(
                reference_year=2024,
                population_vintage=2023,
                startups_source="sirene",
                sirene_path=None,
                as_of="2024-01-01",
                young_years=5,
            ),
            r"sirene_path: required when startups_source is 'sirene'",
        ),
        (
            dict(
                reference_year=2024,
                population_vintage=2023,
                startups_source="sirene",
                sirene_path="nope.parquet",
                as_of="2024-01-01",
                young_years=5,
            ),
            r"sirene_path: .*nope.parquet does not exist",
        ),
        (
            dict(
                reference_year=2024,
                population_vintage=2023,
                startups_source="declared",
                sirene_path=None,
                as_of="2024-13-01",
                young_years=5,
            ),
            r"as_of: expected a date 'YYYY-MM-DD', got '2024-13-01'",
        ),
        (
            dict(
                reference_year=2024,
                population_vintage=2023,
                startups_source="declared",
                sirene_path=None,
                as_of="2024-01-01",
                young_years=-1,
            ),
            r"young_years: -1 is outside the allowed range 0-100",
        ),
        (dict(as_of="2999-01-01"), r"as_of: 2999-01-01 is in the future"),
        (dict(as_of="0001-01-01"), r"as_of: 0001-01-01 is before 1973-01-01"),
        (dict(perimeter="metropole"), r"perimeter: 'metropole' is not allowed; choose one of "),
    ],
    ids=[
        "unknown-territory",
        "inverted-years",
        "year-as-string",
        "year-as-bool",
        "year-out-of-range",
        "unknown-parameter",
        "report-needs-a-capital",
        "weights-length",
        "weights-zero",
        "bad-normalisation",
        "n-draws",
        "bad-vintage",
        "sirene-without-path",
        "sirene-path-missing",
        "bad-date",
        "negative-young-years",
        "future-as-of",
        "as-of-before-sirene",
        "bad-perimeter",
    ],
)
def test_bad_parameters(values, message):
    with pytest.raises(ParameterError, match=message):
        params.validate(**values)
