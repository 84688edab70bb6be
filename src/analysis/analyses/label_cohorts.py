"""Who was labelled when: the treatment of the label-effect panel, EPCI by EPCI.

Three waves of labels (``labels.csv`` in ``data/raw/``, each row cited):

* the French Tech métropoles of 12 November 2014;
* the métropoles and thematic networks of 24 June 2015;
* the 13 Capitales French Tech of 3 April 2019.

A 2014 or 2015 label names cities: it treats the EPCIs that contain them
(:data:`LABEL_CITIES`, the INSEE codes of the cities each label's name designates). A 2019
label treats the EPCIs of the capital's perimeter (``label`` or ``core``,
:mod:`analysis.analyses.perimeters`). An EPCI's first treated year is the earliest year among
its labels, where an announcement in or after month `late_month` counts from the next year
(November 2014 becomes 2015 by default): the first year the label could change a whole
year of creations.

One 2015 label, *Normandy French Tech*, names no city in a cited source: its likely
EPCIs (those of Rouen, Caen and Le Havre) are **left out of the comparison group** rather
than treated (:data:`EXCLUDED_FROM_CONTROLS`), and listed as such.
"""

from __future__ import annotations

import pandas as pd

from analysis.core import rules
from analysis.core.tidy import join_sources
from analysis.data import datasets
from analysis.data.inputs import Inputs

#: The INSEE codes of the cities each 2014-2015 label's name designates (label_date,
#: name_in_source as in labels.csv). Sophia Antipolis is Valbonne (06152); Lor'NTech is
#: Lorraine's network of Metz and Nancy, and French Tech Alsace that of Strasbourg and
#: Mulhouse (the places French Tech East's own sources name for its two networks).
LABEL_CITIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("2014-11-12", "Aix-Marseille"): ("13055", "13001"),
    ("2014-11-12", "Bordeaux"): ("33063",),
    ("2014-11-12", "Grenoble"): ("38185",),
    ("2014-11-12", "Lille"): ("59350",),
    ("2014-11-12", "Lyon"): ("69123",),
    ("2014-11-12", "Montpellier"): ("34172",),
    ("2014-11-12", "Nantes"): ("44109",),
    ("2014-11-12", "Rennes"): ("35238",),
    ("2014-11-12", "Toulouse"): ("31555",),
    ("2015-06-24", "Brest Tech plus"): ("29019",),
    ("2015-06-24", "French Tech Côte d'Azur"): ("06088", "06152"),
    ("2015-06-24", "Lor'NTech"): ("57463", "54395"),
    ("2015-06-24", "Alsace"): ("67482", "68224"),
    ("2015-06-24", "Angers"): ("49007",),
    ("2015-06-24", "Avignon"): ("84007",),
    ("2015-06-24", "Saint-Etienne"): ("42218",),
}
#: Labels whose places no cited source names: their likely cities' EPCIs are neither treated
#: nor compared with (Rouen, Caen, Le Havre for Normandy French Tech).
EXCLUDED_FROM_CONTROLS: dict[tuple[str, str], tuple[str, ...]] = {
    ("2015-06-24", "Normandy French Tech"): ("76540", "14118", "76351"),
}
#: Announcements in or after this month count from the next year, by default.
LATE_MONTH = 10

COLUMNS = ["epci_siren", "epci_name", "first_treated", "labels", "source_ids"]


def first_treated_year(label_date: str, late_month: int = LATE_MONTH) -> int:
    """The first year a label announced on `label_date` (``YYYY-MM-DD``) treats whole:
    its own year, or the next one when it came in or after `late_month`.

    Parameters
    ----------
    label_date : str
        Announcement date, ``YYYY-MM-DD``.
    late_month : int, default LATE_MONTH
        First month whose announcements count from the next year.

    Returns
    -------
    int
        ``year + 1`` if ``month >= late_month`` else ``year`` (2019-04-03 gives 2019;
        2014-11-12 gives 2015 with the default).
    """
    year, month = int(label_date[:4]), int(label_date[5:7])
    return year + 1 if month >= late_month else year


def cohorts(
    inputs: Inputs,
    perimeter: str | None = None,
    population_vintage: int | None = None,
    late_month: int = LATE_MONTH,
    data_dir=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The treated EPCIs with their first treated year, and the EPCIs left out of the controls.

    An EPCI's first treated year is the earliest :func:`first_treated_year` of the labels
    that name one of its communes (or, for a capital, of its `perimeter`).

    Parameters
    ----------
    inputs : Inputs
        The tables, loaded once.
    perimeter : str or None, default None
        The capitals' perimeter whose EPCIs the capital label treats; None for the default.
    population_vintage : int or None, default None
        Census year of the commune-to-EPCI geography; None for the default.
    late_month : int, default LATE_MONTH
        First month whose announcements count from the next year.
    data_dir : path or None, default None
        Data folder of the derived tables; None for the package's.

    Returns
    -------
    treated : pandas.DataFrame
        :data:`COLUMNS` (``labels`` lists each label as ``date name``), by ``epci_siren``.
    excluded : pandas.DataFrame
        ``epci_siren, reason``: EPCIs of labels that name no city, kept out of the controls.

    Raises
    ------
    ParameterError
        When `perimeter`, `population_vintage` or `late_month` is not allowed.
    """
    perimeter = rules.perimeter(perimeter)
    vintage = rules.population_vintage(population_vintage)
    late_month = rules.integer(late_month, "late_month", 1, 13)
    communes = datasets.load_derived("communes", data_dir)
    communes = communes[communes["census_year"] == vintage]
    epci_of = dict(zip(communes["commune_code"], communes["epci_siren"], strict=True))
    rows = []
    for lab in inputs.labels.itertuples():
        key = (lab.label_date, lab.name_in_source)
        if key in LABEL_CITIES:
            epcis = {epci_of[c] for c in LABEL_CITIES[key] if epci_of.get(c)}
        elif lab.label == "capitale-french-tech" and isinstance(lab.territory_id, str):
            p = inputs.perimeters
            p = p[
                (p["territory_id"] == lab.territory_id)
                & (p["perimeter"] == perimeter)
                & (p["census_year"] == vintage)
            ]
            epcis = set(p["epci_siren"])
        else:
            continue
        for e in epcis:
            rows.append(
                (
                    e,
                    first_treated_year(lab.label_date, late_month),
                    f"{lab.label_date} {lab.name_in_source}",
                    lab.source_id,
                )
            )
    t = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "epci_name"])
    treated = (
        t.groupby("epci_siren", as_index=False)
        .agg(
            first_treated=("first_treated", "min"),
            labels=("labels", lambda s: "; ".join(sorted(set(s)))),
            source_ids=("source_ids", join_sources),
        )
        .sort_values("epci_siren")
        .reset_index(drop=True)
    )
    epci = datasets.load_derived("epci", data_dir)
    geo = communes["geo_version"].iloc[0]
    names = epci[epci["geo_version"] == geo].set_index("epci_siren")["epci_name"]
    treated.insert(1, "epci_name", treated["epci_siren"].map(names).fillna(""))
    excluded = pd.DataFrame(
        [
            (epci_of[c], f"{name} ({date}) names no city in a cited source")
            for (date, name), codes in EXCLUDED_FROM_CONTROLS.items()
            for c in codes
            if epci_of.get(c) and epci_of[c] not in set(treated["epci_siren"])
        ],
        columns=["epci_siren", "reason"],
    ).drop_duplicates("epci_siren")
    return treated, excluded.reset_index(drop=True)


#: Columns of :func:`panel_table`.
PANEL_COLUMNS = [
    "unit",
    "name",
    "year",
    "creations_ict",
    "creations_all",
    "population",
    "first_treated",
]


def panel_table(
    rows: list[tuple[str, str, int, int, int]],
    inputs: Inputs,
    perimeter: str | None = None,
    population_vintage: int | None = None,
    late_month: int = LATE_MONTH,
    min_population: int = 0,
    data_dir=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The label-effect panel: yearly creations per EPCI with its treatment.

    Parameters
    ----------
    rows : ``(epci_siren, name, year, creations_ict, creations_all)`` for every EPCI and year
        (:func:`analysis.data.register.panel.yearly_creations_panel` at the ``epci`` level).
    perimeter, population_vintage, late_month : see :func:`cohorts`.
    min_population : never-labelled EPCIs below this population municipale are left out of
        the comparison group (treated EPCIs are always kept).

    Returns
    -------
    ``(panel, left_out)``: the balanced panel with :data:`PANEL_COLUMNS` (``first_treated``
    0 for never labelled; ``population`` is the EPCI's population municipale of the census
    vintage, the sum over its communes, the same every year), and the EPCIs left out with the
    reason.
    """
    vintage = rules.population_vintage(population_vintage)
    min_population = rules.integer(min_population, "min_population", 0, 10**8)
    treated, excluded = cohorts(inputs, perimeter, vintage, late_month, data_dir)
    communes = datasets.load_derived("communes", data_dir)
    current = communes[
        (communes["census_year"] == vintage) & (communes["commune_type"] == "commune-actuelle")
    ]
    population = current.groupby("epci_siren")["population_municipale"].sum()
    panel = pd.DataFrame(rows, columns=PANEL_COLUMNS[:5])
    panel["population"] = panel["unit"].map(population).astype("Int64")
    first = treated.set_index("epci_siren")["first_treated"]
    panel["first_treated"] = panel["unit"].map(first).fillna(0).astype("int64")
    small = panel[(panel["first_treated"] == 0) & (panel["population"].fillna(0) < min_population)][
        "unit"
    ].unique()
    left_out = pd.concat(
        [
            excluded,
            pd.DataFrame(
                {
                    "epci_siren": small,
                    "reason": f"never labelled, population below {min_population:,}",
                }
            ),
        ],
        ignore_index=True,
    )
    panel = panel[~panel["unit"].isin(left_out["epci_siren"])]
    return panel.reset_index(drop=True)[PANEL_COLUMNS], left_out


def cited_panels(inputs: Inputs) -> pd.DataFrame:
    """Each cited series of a territory of its own, checked as a panel for the label design.

    A series is usable when it has at least two labelled units observed both before and
    after their first label, and at least two never-labelled units. The territories with
    series of their own are the capitals (all labelled) and the regions and France, which
    are not units of the label: no series has never-labelled units.

    Parameters
    ----------
    inputs : the loaded tables.

    Returns
    -------
    ``indicator, units, labelled_units_before_and_after, never_labelled_units, years,
    usable``, one row per indicator with capital-level values.
    """
    from analysis.core import territories

    first = {
        t: first_treated_year(d)
        for t, d in inputs.labels.dropna(subset=["territory_id"])
        .groupby("territory_id")["label_date"]
        .min()
        .items()
    }
    facts = inputs.facts[inputs.facts["territory_id"].isin(territories.CAPITALE_IDS)]
    rows = []
    for indicator, f in facts.groupby("indicator"):
        years = f.groupby("territory_id")["year"].agg(["min", "max"])
        both = sum(1 for t, r in years.iterrows() if t in first and r["min"] < first[t] <= r["max"])
        never = sum(1 for t in years.index if t not in first)
        rows.append(
            (
                indicator,
                len(years),
                both,
                never,
                f"{int(f['year'].min())}-{int(f['year'].max())}",
                both >= 2 and never >= 2,
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "indicator",
            "units",
            "labelled_units_before_and_after",
            "never_labelled_units",
            "years",
            "usable",
        ],
    )
