"""The ``analysis`` command: one module per command group.

``data`` (verify, list, build), ``indicators``, ``territories`` (territories, index),
``runs`` (run, book, notebooks), ``register`` (sirene aggregate, panel, convert, fetch) and
``label_effect`` (label-effect). Building the parser imports no heavy library (pandas,
seaborn, statsmodels, DuckDB): each handler imports what it needs, so ``analysis --help``
answers at once.

Errors the user can fix are printed on one line (no traceback unless ``--debug``) and the
command exits with status 2. SIGINT and SIGTERM end the command with one line and the status
128 + the signal number, after every temporary file is removed and every child process (a
batch worker, a Jupyter kernel) is stopped.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import analysis
from analysis.cli import data, indicators, label_effect, register, runs, territories
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
    for group in (data, indicators, territories, runs, register, label_effect):
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
    """Run the command; return its exit status.

    SIGINT and SIGTERM raise :class:`~analysis.core.errors.Interrupted` from the first line
    on, parsing included; the handlers that were in place before are put back on return.
    """
    held = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, _on_signal) for s in held}
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)  # until parsed
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help, --version, or a usage error already printed
            return int(e.code or 0)
        debug = args.debug
        return int(args.func(args) or 0)
    except AnalysisError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as e:  # a full disk, a read-only folder, a missing permission
        if debug:
            raise
        print(f"error: {_os_error(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return _interrupted(signal.SIGINT)
    except Interrupted as e:
        return _interrupted(e.signum)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def _os_error(e: OSError) -> str:
    """One line for an OSError: the file, what happened in plain words; "no space left on
    device" and "file too large" say that the output was not written."""
    where = f"{e.filename}: " if e.filename else ""
    what = e.strerror or str(e)
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"{where}{what.lower()}; not written, the previous version (if any) is unchanged"
    return f"{where}{what}; nothing was left half-written"
