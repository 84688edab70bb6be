"""The ``analysis`` command: one module per command group.

``data`` (verify, list, build), ``indicators``, ``runs`` (run, book, notebooks) and
``register`` (sirene aggregate, convert, fetch). Building the parser imports no heavy
library (pandas, seaborn, statsmodels, DuckDB): each handler imports what it needs, so
``analysis --help`` answers at once.

Errors the user can fix are printed on one line (no traceback unless ``--debug``) and the
command exits with status 2. SIGINT and SIGTERM end the command with one line and the status
128 + the signal number, after every temporary file is removed and every child process (a
batch worker, a Jupyter kernel) is stopped.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import analysis
from analysis.cli import data, indicators, register, runs
from analysis.core.errors import AnalysisError, Interrupted

EXIT_USER_ERROR = 2


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked for."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):  # noqa: ANN001
        super().__init__(option_strings, dest=dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        print(f"{parser.prog} {analysis.__version__}")
        parser.exit(0)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error of the command."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the global options, then each group's sub-commands."""
    p = Parser(
        prog="analysis",
        description="Investment attraction and start-up density of the Capitales French Tech.",
    )
    p.add_argument("--version", action=_Version, help="show the version and exit")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument(
        "--data-dir", type=Path, default=None, help="data folder (default: the project's data/)"
    )
    sub = p.add_subparsers(dest="command", required=True)
    for group in (data, indicators, runs, register):
        group.add_cli(sub)
    return p


def _on_signal(signum: int, frame: object) -> None:
    """Turn SIGTERM or SIGINT into an exception, once: a second one does not abort the
    clean-up."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Interrupted(signum)


def _interrupted(signum: int) -> int:
    from analysis.core.processes import terminate_descendants

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stopped = terminate_descendants()
    name = signal.Signals(signum).name
    extra = f"; {stopped} child process(es) stopped" if stopped else ""
    print(f"interrupted by {name}: nothing was left half-written{extra}", file=sys.stderr)
    return 128 + signum


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return int(e.code or 0)
    try:
        return int(args.func(args) or 0)
    except AnalysisError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as e:  # a full disk, a read-only folder, a missing permission
        if args.debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}; nothing was left half-written", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return _interrupted(signal.SIGINT)
    except Interrupted as e:
        return _interrupted(e.signum)
