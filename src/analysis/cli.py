"""The ``analysis`` command.

Errors the user can fix are printed on one line (no traceback unless ``--debug``) and the
command exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis import __version__, config
from analysis.errors import AnalysisError
from analysis.fileio import atomic_write_text

EXIT_USER_ERROR = 2


def _human(x: float) -> str:
    """Integers with thousands separators, other numbers with 4 significant digits."""
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.4g}"


def _print_frame(df: pd.DataFrame, fmt: str, out: Path | None = None) -> None:
    if fmt == "csv":
        text = df.to_csv(index=False, lineterminator="\n", float_format="%.10g")
    elif fmt == "json":
        text = df.to_json(orient="records", force_ascii=False, indent=1, double_precision=10) + "\n"
    else:
        with pd.option_context(
            "display.max_rows", None, "display.width", 200, "display.max_colwidth", 60
        ):
            text = df.to_string(index=False, float_format=_human) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out, text)


def cmd_data_verify(args: argparse.Namespace) -> int:
    from analysis import catalog

    report = catalog.verify(args.data_dir)
    for p in report.problems:
        print(p, file=sys.stderr)
    if args.verbose:
        for n in report.notes:
            print(f"note: {n}")
    print(report.summary(), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def cmd_data_list(args: argparse.Namespace) -> int:
    from analysis import catalog

    df = catalog.catalogue(args.data_dir)
    if args.markdown:
        text = catalog.catalogue_markdown(df)
        if args.out:
            atomic_write_text(args.out, text)
        else:
            sys.stdout.write(text)
    else:
        _print_frame(df[["source_id", "publisher", "date_published", "rows"]], "table", args.out)
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    from analysis import geography

    for path in geography.build(args.data_dir, fetch=args.fetch):
        print(f"wrote {path}")
    return 0


def cmd_indicators(args: argparse.Namespace) -> int:
    from analysis import indicators

    territory = None if args.territory in (None, "all") else args.territory
    df = indicators.headline(territory, args.population_vintage, args.data_dir)
    for note in df.attrs.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    if df.empty and args.format == "table":
        print(
            f"no indicator for {args.territory} (census {args.population_vintage})", file=sys.stderr
        )
        return 0
    _print_frame(df, args.format)
    return 0


def cmd_notebooks(args: argparse.Namespace) -> int:
    from analysis import execute

    paths = args.paths or execute.committed_notebooks()
    for path in paths:
        print(f"executing {path}", flush=True)
        execute.execute_in_place(path, timeout=args.timeout)
    return 0


def _vintage(text: str) -> int:
    try:
        year = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year") from None
    if year not in config.POPULATION_VINTAGES:
        raise argparse.ArgumentTypeError(
            f"{year} is not an available census year; choose from "
            f"{', '.join(map(str, config.POPULATION_VINTAGES))}"
        )
    return year


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="analysis",
        description="Investment attraction and start-up density of the Capitales French Tech.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument(
        "--data-dir", type=Path, default=None, help="data folder (default: the project's data/)"
    )
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="the data catalogue").add_subparsers(
        dest="data_command", required=True
    )
    v = data.add_parser("verify", help="check every sidecar, checksum and table schema")
    v.add_argument(
        "--verbose", action="store_true", help="also print notes (files fetched on demand)"
    )
    v.set_defaults(func=cmd_data_verify)
    lst = data.add_parser("list", help="show the catalogue, one row per source")
    lst.add_argument("--markdown", action="store_true", help="as the Markdown page data/README.md")
    lst.add_argument("--out", type=Path, help="write to this file (atomically) instead of stdout")
    lst.set_defaults(func=cmd_data_list)
    b = data.add_parser("build", help="rebuild data/derived from data/raw")
    b.add_argument("--fetch", action="store_true", help="download missing raw archives (npm pack)")
    b.set_defaults(func=cmd_data_build)

    ind = sub.add_parser("indicators", help="print the headline indicators, with their sources")
    ind.add_argument("--territory", default="all", help="a territory id, or 'all' (default)")
    ind.add_argument("--format", choices=("table", "csv", "json"), default="table")
    ind.add_argument(
        "--population-vintage",
        type=_vintage,
        default=config.DEFAULT_POPULATION_VINTAGE,
        help=f"census year of the population denominator (default {config.DEFAULT_POPULATION_VINTAGE})",
    )
    ind.set_defaults(func=cmd_indicators)

    nbs = sub.add_parser("notebooks", help="re-execute the committed notebooks in place")
    nbs.add_argument(
        "paths", nargs="*", type=Path, help="notebooks (default: notebooks/NN-*.ipynb)"
    )
    nbs.add_argument("--timeout", type=int, default=600, help="per-cell timeout, seconds")
    nbs.set_defaults(func=cmd_notebooks)

    from analysis import batch, render, sirene

    batch.add_cli(sub)
    render.add_cli(sub)
    sirene.add_cli(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AnalysisError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
