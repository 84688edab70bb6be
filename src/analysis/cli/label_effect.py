"""``analysis label-effect``: did the label change the outcome? (staggered DiD, RI)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.cli.output import FORMATS
from analysis.core import outputs, rules
from analysis.core.errors import DataError, ParameterError

ESTIMATORS = ("etwfe", "callaway_santanna", "twfe_biased", "all")
SCALES = ("count", "log1p")
CONTROLS = ("never", "rejected")


def _positive_int(name: str, lo: int):  # noqa: ANN202 - an argparse type
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        try:
            return rules.integer(value, name, lo)
        except ParameterError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value:g} is not between 0 and 1")
    return value


def cmd_label_effect(args: argparse.Namespace) -> int:
    outputs.check_files(
        {"--out": args.out},
        {"--panel": args.panel},
        protected=outputs.protected_folders(args.data_dir),
    )
    panel_path = rules.existing_file(str(args.panel), "--panel")

    from analysis.cli.output import print_frame
    from analysis.core.synthetic import is_synthetic
    from analysis.data.panel_file import read_panel
    from analysis.methods import label_effect
    from analysis.methods.panels import check_panel

    try:
        panel = check_panel(read_panel(panel_path), args.outcome)
    except ParameterError as e:  # the rows are the file's lines: say so, with the file
        where = str(e).replace(", row ", ", line ").replace("(row ", "(line ")
        raise DataError(f"{panel_path}: {where}") from None
    common = {
        "outcome": args.outcome,
        "control": args.control,
        "leads": args.leads,
        "lags": args.lags,
        "alpha": args.alpha,
    }
    ri = {"n_draws": args.draws, "seed": args.seed}
    if args.estimator == "all":
        if args.scale is not None:
            raise ParameterError("--scale: --estimator all runs every scale; drop --scale")
        table = label_effect.compare(panel, **common, **ri)
    elif args.estimator == "etwfe":
        table = label_effect.estimate(
            panel, estimator="etwfe", outcome_scale=args.scale, **common, **ri
        )
    else:
        table = label_effect.estimate(
            panel, estimator=args.estimator, outcome_scale=args.scale, **common
        )
    if is_synthetic(panel_path):
        print("note: SYNTHETIC TEST DATA, NOT RESULTS: the panel is generated", file=sys.stderr)
    print_frame(table, args.format, args.out)
    if args.out is not None:
        print(f"{len(table)} rows -> {args.out}", file=sys.stderr)
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``analysis label-effect``."""
    p = sub.add_parser(
        "label-effect",
        help="estimate the label's effect on a panel (staggered DiD, randomisation inference)",
        description="Estimate the effect of the French Tech labels on a long panel "
        "(unit, year, outcome, first_treated; 0 = never treated). See docs/label-effect.md.",
    )
    p.add_argument("--panel", type=Path, required=True, help="CSV panel to read")
    p.add_argument("--outcome", default="outcome", help="outcome column (default: outcome)")
    p.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default="etwfe",
        help="etwfe (main), callaway_santanna (cross-check), twfe_biased (biased baseline), "
        "or all (default: etwfe)",
    )
    p.add_argument(
        "--scale",
        choices=SCALES,
        default=None,
        help="count (Poisson) or log1p (least squares on log(1+y)); default: count for etwfe, "
        "log1p otherwise",
    )
    p.add_argument("--control", choices=CONTROLS, default="never", help="comparison group")
    p.add_argument(
        "--draws",
        type=_positive_int("--draws", 1),
        default=999,
        help="randomisation draws (default 999)",
    )
    p.add_argument("--seed", type=_positive_int("--seed", 0), default=0, help="seed (default 0)")
    p.add_argument("--leads", type=_positive_int("--leads", 0), default=5, help="leads (default 5)")
    p.add_argument("--lags", type=_positive_int("--lags", 0), default=5, help="lags (default 5)")
    p.add_argument("--alpha", type=_alpha, default=0.05, help="test level (default 0.05)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")
    p.set_defaults(func=cmd_label_effect)
