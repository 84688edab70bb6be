"""Investment attraction and start-up density of the Capitales French Tech.

The package is a small library behind parameterised notebooks. Every table it returns is
tidy and carries the ids of the sources it comes from. Its layers, in the order the data
flows (a layer imports only from the layers below it; ``make lint`` checks this):

``core`` -> ``data`` -> ``methods`` -> ``analyses`` -> ``outputs`` -> ``runs`` -> ``cli``.

See the README's "The library" section for what each module does.
"""

from analysis.core.cache import reload

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
