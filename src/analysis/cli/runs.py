"""``analysis run|book|notebooks``: execute the notebooks, share them as a book, refresh them."""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.core.errors import ParameterError
from analysis.core.outputs import check_folder, protected_folders
from analysis.runs.worker import DEFAULT_TIMEOUT


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} must be at least 1")
    return n


def cmd_run(args: argparse.Namespace) -> int:
    from analysis.runs.batch import run_grid

    check_folder("--out", args.out, protected=protected_folders(getattr(args, "data_dir", None)))
    result = run_grid(
        args.grid,
        workers=args.workers,
        only=args.only,
        resume=args.resume,
        dask=args.dask,
        timeout=args.timeout,
        out_dir=args.out,
        progress=not args.quiet,
    )
    print(result.summary())
    return result.exit_code


def cmd_book(args: argparse.Namespace) -> int:
    from analysis.runs.book import build_book

    check_folder(
        "--reports", args.reports, protected=protected_folders(getattr(args, "data_dir", None))
    )
    result = build_book(args.reports, jobs=args.jobs, register_counts=args.register_counts)
    print(result.summary())
    return 0


def cmd_notebooks(args: argparse.Namespace) -> int:
    from analysis.runs.inplace import execute_in_place
    from analysis.runs.notebooks import committed_notebooks

    targets = args.paths or committed_notebooks()
    for path in targets:  # each is rewritten in place: it must be a notebook, outside the data
        if Path(path).suffix != ".ipynb":
            raise ParameterError(f"{path}: not a notebook (.ipynb); nothing was executed")
        check_folder(
            "PATHS", Path(path).parent, protected=protected_folders(args.data_dir, notebooks=False)
        )
    for path in targets:
        print(f"executing {path}", flush=True)
        execute_in_place(path, timeout=args.timeout)
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``analysis run``, ``analysis book`` and ``analysis notebooks``."""
    p = sub.add_parser(
        "run",
        help="execute a grid of notebooks x parameters with papermill (default notebooks/runs.yaml)",
        description="Execute every run of a grid file in parallel; outputs, manifest and lock "
        "in the output folder (default reports/). Exit status 1 when a run failed.",
    )
    p.add_argument(
        "grid",
        nargs="?",
        type=Path,
        default=None,
        help="the grid file (default notebooks/runs.yaml)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="parallel runs (default: the CPU count; on Dask, the cluster's threads)",
    )
    p.add_argument(
        "--only",
        metavar="PATTERN",
        help="only the runs whose id or name matches (a glob, or a substring)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="run only the runs that failed, are missing or are out of date",
    )
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="submit the runs to this Dask scheduler (e.g. tcp://host:8786)",
    )
    p.add_argument(
        "--timeout",
        type=_positive_int,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"per-cell execution timeout in seconds (default {DEFAULT_TIMEOUT})",
    )
    p.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="output folder (default reports/)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-run lines")
    p.set_defaults(func=cmd_run)

    b = sub.add_parser(
        "book",
        help="build the book of the executed notebooks (reports/site/index.html)",
        description="Turn the executed notebooks of an output folder into a book (Sphinx + "
        "MyST-NB, nothing re-executed): a landing page with the findings, a chapter per "
        "notebook, a page per capital, numbered figures and tables with citations, "
        "references, search; it opens offline. Rebuilds only what changed.",
    )
    b.add_argument(
        "--reports",
        type=Path,
        default=None,
        metavar="DIR",
        help="the output folder of `analysis run` (default reports/)",
    )
    b.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        metavar="N",
        help="Sphinx processes reading pages in parallel (default 1)",
    )
    b.add_argument(
        "--register-counts",
        type=Path,
        default=None,
        metavar="CSV",
        help="add the map of register start-ups per EPCI (`analysis sirene aggregate "
        "--level epci` output)",
    )
    b.set_defaults(func=cmd_book)

    nbs = sub.add_parser("notebooks", help="re-execute the committed notebooks in place")
    nbs.add_argument(
        "paths", nargs="*", type=Path, help="notebooks (default: notebooks/NN-*.ipynb)"
    )
    nbs.add_argument(
        "--timeout", type=_positive_int, default=DEFAULT_TIMEOUT, help="per-cell timeout, seconds"
    )
    nbs.set_defaults(func=cmd_notebooks)
