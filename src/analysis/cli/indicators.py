"""``analysis indicators``: the headline indicators, with their sources."""

from __future__ import annotations

import argparse
import sys

from analysis.cli.options import one_of_ints
from analysis.cli.output import FORMATS
from analysis.core import rules, territories


def cmd_indicators(args: argparse.Namespace) -> int:
    from analysis.analyses import headline
    from analysis.cli.output import print_frame
    from analysis.data.inputs import load_inputs

    territory = (
        None if args.territory in (None, "all") else rules.territory(args.territory, "--territory")
    )
    result = headline.headline(
        load_inputs(args.data_dir), territory, args.population_vintage, args.perimeter
    )
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.indicators.empty and args.format == "table":
        print(
            f"no indicator for {args.territory} (census {args.population_vintage})", file=sys.stderr
        )
        return 0
    if args.alternatives:
        print_frame(result.alternatives, args.format)
        return 0
    print_frame(result.indicators, args.format)
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``analysis indicators``."""
    ind = sub.add_parser("indicators", help="print the headline indicators, with their sources")
    ind.add_argument("--territory", default="all", help="a territory id, or 'all' (default)")
    ind.add_argument("--format", choices=FORMATS, default="table")
    ind.add_argument(
        "--population-vintage",
        type=one_of_ints(rules.POPULATION_VINTAGES),
        metavar="{" + ",".join(map(str, rules.POPULATION_VINTAGES)) + "}",
        default=rules.DEFAULT_POPULATION_VINTAGE,
        help="census year of the population denominator "
        f"(default {rules.DEFAULT_POPULATION_VINTAGE})",
    )
    ind.add_argument(
        "--perimeter",
        choices=territories.PERIMETERS,
        default=territories.DEFAULT_PERIMETER,
        help="the capitals' perimeter for their population, its growth and the index "
        f"(default {territories.DEFAULT_PERIMETER}); a published count is always divided by "
        "the population of the area it describes",
    )
    ind.add_argument(
        "--alternatives",
        action="store_true",
        help="print the values not chosen as headline (another count of the same year, or "
        "of another area), each with its source and the reason",
    )
    ind.set_defaults(func=cmd_indicators)
