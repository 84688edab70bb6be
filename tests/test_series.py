"""One value per year from disagreeing sources: the rule, and the conflicts it reports."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.core.errors import InsufficientDataError
from analysis.data import catalog, datasets
from analysis.methods import series


def facts_frame(rows):
    return pd.DataFrame(
        rows,
        columns=[
            "territory_id",
            "indicator",
            "year",
            "value",
            "unit",
            "source_id",
            "locator",
            "definition",
        ],
    )


SOURCES = pd.DataFrame(
    {
        "source_id": ["press-old", "press-new", "agency", "press-approx"],
        "source_type": ["secondary", "secondary", "primary", "secondary"],
        "date_published": ["2018-03", "2020-01-02", "unknown", "2021"],
    }
)


def test_rule_exact_then_primary_then_latest():
    f = facts_frame(
        [
            ("t", "jobs", 2017, 1456, "jobs", "press-old", "l", ""),
            ("t", "jobs", 2017, 1756, "jobs", "press-new", "l", ""),
            ("t", "jobs", 2018, 1800, "jobs", "press-approx", "l", "approximate ('près de 1 800')"),
            ("t", "jobs", 2018, 1790, "jobs", "press-old", "l", ""),
            ("t", "jobs", 2019, 1935, "jobs", "press-new", "l", ""),
            ("t", "jobs", 2019, 1900, "jobs", "agency", "l", ""),
        ]
    )
    s, conflicts = series.pick(f, SOURCES, "t", "jobs")
    assert s["value"].tolist() == [1756, 1790, 1900]  # latest; exact; primary
    assert s["source_ids"].tolist() == ["press-new", "press-old", "agency"]
    assert len(conflicts) == 6 and conflicts["kept"].sum() == 3


def test_corroboration_beats_a_lone_later_figure():
    f = facts_frame(
        [
            ("t", "jobs", 2018, 30302, "jobs", "press-old", "l", ""),
            ("t", "jobs", 2018, 30302, "jobs", "press-approx", "l", ""),
            ("t", "jobs", 2018, 33302, "jobs", "press-new", "l", ""),
        ]
    )
    s, _ = series.pick(f, SOURCES, "t", "jobs")
    assert s["value"].tolist() == [30302]


def test_missing_indicator_says_so():
    with pytest.raises(InsufficientDataError, match="no figure for indicator 'nope'"):
        series.pick(
            facts_frame([("t", "jobs", 2017, 1, "jobs", "agency", "l", "")]), SOURCES, "t", "nope"
        )


def test_provence_promotion_implantations_cover_at_least_five_years():
    facts = datasets.load_facts()
    s, _ = series.pick(facts, catalog.catalogue(), "aix-marseille", "implantations")
    assert s["year"].nunique() >= 5
    assert s["year"].is_monotonic_increasing
    assert (s["source_ids"] != "").all()
