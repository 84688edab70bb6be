"""Investment attraction and start-up density of the Capitales French Tech.

The package is a small library behind parameterised notebooks. Every table it returns is
tidy and carries the ids of the sources it comes from. Its layers, in the order the data
flows (a layer imports only from the layers below it; ``make lint`` checks this):

``core`` -> ``data`` -> ``methods`` -> ``analyses`` -> ``outputs`` -> ``runs`` -> ``cli``.

See the README's "The library" section for what each module does.
"""

from importlib.metadata import PackageNotFoundError, version

from analysis.core.cache import reload

try:
    __version__ = version("ftech-analysis")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "reload"]
