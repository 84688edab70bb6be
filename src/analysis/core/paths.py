"""Paths, anchored at the project root and never at the current directory.

`ANALYSIS_ROOT` overrides the root (tests use it to work on a copy of the data).
Every folder the package reads or writes is named here and nowhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/analysis


def project_root() -> Path:
    """The repository root: `$ANALYSIS_ROOT`, else the folder above `src/`."""
    env = os.environ.get("ANALYSIS_ROOT")
    if env:
        return Path(env).resolve()
    return PACKAGE_DIR.parents[1]


def data_dir() -> Path:
    """``<root>/data``: raw inputs, derived tables, downloads (``external/``)."""
    return project_root() / "data"


def raw_dir() -> Path:
    """``<root>/data/raw``: immutable inputs beside their sidecars."""
    return data_dir() / "raw"


def derived_dir() -> Path:
    """``<root>/data/derived``: tables built from raw by ``analysis data build``."""
    return data_dir() / "derived"


def notebooks_dir() -> Path:
    """``<root>/notebooks``: the committed notebooks and the default run grid."""
    return project_root() / "notebooks"


def reports_dir() -> Path:
    """``<root>/reports`` (ignored by git): executed notebooks, the site, the manifest."""
    return project_root() / "reports"


def user_cache_dir() -> Path | None:
    """The user's cache of values derived from the data (:class:`analysis.core.cache.DiskCache`):
    `$ANALYSIS_CACHE_DIR`, else ``$XDG_CACHE_HOME/analysis``, else ``~/.cache/analysis``.
    None (no cache) when `$ANALYSIS_CACHE_DIR` is set to an empty string or ``off``."""
    env = os.environ.get("ANALYSIS_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off") else Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "analysis"
    try:
        return Path.home() / ".cache" / "analysis"
    except RuntimeError:  # no home directory to be found: no cache
        return None


def shown(path: Path | str) -> str:
    """`path` relative to the current directory when below it, else as given (for messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)


def posix_relative(path: Path | str, base: Path | str) -> str:
    """POSIX path of `path` relative to `base` when below it, else absolute.

    Both are resolved first (symbolic links followed).

    Parameters
    ----------
    path : pathlib.Path or str
        The path shown.
    base : pathlib.Path or str
        The folder it is made relative to.

    Returns
    -------
    str
        ``a/b.csv`` when `path` is below `base`, else the absolute POSIX path.
    """
    try:
        return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()
