"""``analysis territories`` and ``analysis index``: the capitals' perimeters and their ranks."""

from __future__ import annotations

import argparse
import sys

from analysis.cli.options import one_of_ints
from analysis.cli.output import FORMATS
from analysis.core import rules, territories


def _vintage_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--population-vintage",
        type=one_of_ints(rules.POPULATION_VINTAGES),
        metavar="{" + ",".join(map(str, rules.POPULATION_VINTAGES)) + "}",
        default=rules.DEFAULT_POPULATION_VINTAGE,
        help=f"census year of the populations (default {rules.DEFAULT_POPULATION_VINTAGE})",
    )


def cmd_territories(args: argparse.Namespace) -> int:
    from analysis.analyses import perimeters
    from analysis.cli.output import print_frame
    from analysis.data.inputs import load_inputs

    perimeter = None if args.perimeter == "all" else args.perimeter
    frame = perimeters.listing(
        load_inputs(args.data_dir), perimeter, args.population_vintage, args.data_dir
    )
    print_frame(frame, args.format)
    return 0


#: Columns of ``analysis index``.
INDEX_COLUMNS = [
    "territory_id",
    "median_rank",
    "rank_low",
    "rank_high",
    "n_indicators",
    "score_median",
    "nominal_rank",
    "source_ids",
]


def cmd_index(args: argparse.Namespace) -> int:
    from analysis.analyses import headline
    from analysis.cli.output import print_frame
    from analysis.data.inputs import load_inputs

    mc, frame, excluded = headline.index_fit(
        load_inputs(args.data_dir), args.population_vintage, args.perimeter
    )
    if args.inputs:
        print_frame(frame, args.format)
        return 0
    n = frame.groupby("territory_id")["indicator"].nunique().rename("n_indicators")
    ranks = mc.ranks.merge(n, left_on="territory_id", right_index=True, how="left")
    columns = INDEX_COLUMNS if args.format != "table" else INDEX_COLUMNS[:-1]
    print_frame(ranks[columns], args.format)
    if args.format == "table":
        print(
            f"\n{len(ranks)} capitals ranked on {frame['indicator'].nunique()} indicators, "
            f"perimeter {args.perimeter}, {headline.INDEX_DRAWS} draws (seed "
            f"{headline.INDEX_SEED}): the 90 % rank interval carries the inputs' uncertainty "
            "and the weights and normalisation drawn. --format csv adds the source_ids."
        )
    for tid, why in excluded.items():
        print(f"note: {tid} not ranked: {why}", file=sys.stderr)
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``analysis territories`` and ``analysis index``."""
    ter = sub.add_parser(
        "territories",
        help="list the capitals' label and core perimeters, EPCI by EPCI, each cited",
        description="One row per capital, perimeter and EPCI: territory_id, perimeter, "
        "epci_siren, epci_name, commune_code, commune_name (the places the sources name), "
        "population, census_year, source_ids.",
    )
    ter.add_argument(
        "--perimeter",
        choices=(*territories.PERIMETERS, "all"),
        default="all",
        help="label (the 2019 label's cited places), core (the main cities' EPCIs) or all "
        "(default)",
    )
    ter.add_argument("--format", choices=FORMATS, default="table")
    _vintage_argument(ter)
    ter.set_defaults(func=cmd_territories)

    idx = sub.add_parser(
        "index",
        help="rank the capitals on the composite ecosystem index, with 90 % rank intervals",
        description="One row per capital: territory_id, median_rank, rank_low, rank_high, "
        "n_indicators, score_median, nominal_rank, source_ids. --inputs prints the indicator "
        "values the index is built from instead.",
    )
    idx.add_argument(
        "--perimeter",
        choices=territories.PERIMETERS,
        default=territories.DEFAULT_PERIMETER,
        help=f"the capitals' perimeter (default {territories.DEFAULT_PERIMETER})",
    )
    idx.add_argument("--format", choices=FORMATS, default="table")
    idx.add_argument(
        "--inputs", action="store_true", help="print the index's input table, with source_ids"
    )
    _vintage_argument(idx)
    idx.set_defaults(func=cmd_index)
