"""Investment attraction and start-up density of the Capitales French Tech.

The package is a small library behind parameterised notebooks. Every table it
returns is tidy and carries the ids of the sources it comes from.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ftech-analysis")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
