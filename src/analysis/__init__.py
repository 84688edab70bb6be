"""Investment attraction and start-up density of the Capitales French Tech.

The package is a small library behind parameterised notebooks. Every table it returns is
tidy and carries the ids of the sources it comes from. Its layers, in the order the data
flows (a layer imports only from the layers below it; ``make lint`` checks this):

``core`` -> ``data`` -> ``methods`` -> ``analyses`` -> ``outputs`` -> ``runs`` -> ``cli``.

See the README's "The library" section for what each module does.
"""

# The ``analysis`` command answers SIGINT and SIGTERM from its first line of Python on: until
# :func:`analysis.cli.main` installs its own handlers (which clean up and stop children), a
# signal ends the start-up with one line and the status 128 + the signal number; nothing has
# been done yet. Only in the command (the console script or ``python -m analysis``): a
# notebook kernel or a test importing the package keeps its own handlers. (Python's own
# start, before this line, cannot be intercepted by any Python code.)
import os as _os
import signal as _signal
import sys as _sys


def _is_the_command() -> bool:
    argv = getattr(_sys, "orig_argv", _sys.argv)
    if _os.path.basename(_sys.argv[0] if _sys.argv else "") == "analysis":
        return True
    return any(
        a == "-m" and b in ("analysis", "analysis.cli")
        for a, b in zip(argv, argv[1:], strict=False)
    )


def _exit_on_signal(signum: int, frame: object) -> None:
    name = _signal.Signals(signum).name
    _os.write(2, f"interrupted by {name}: nothing was left half-written\n".encode())
    _os._exit(128 + signum)


if _is_the_command():
    _signal.signal(_signal.SIGINT, _exit_on_signal)
    _signal.signal(_signal.SIGTERM, _exit_on_signal)

from analysis.core.cache import reload  # noqa: E402 - after the signal handlers

__all__ = ["__version__", "reload"]


def __getattr__(name: str) -> str:
    """``analysis.__version__``, read from the installed metadata when first asked for."""
    if name != "__version__":
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("ftech-analysis")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        value = "0.0.0+unknown"
    globals()["__version__"] = value
    return value
