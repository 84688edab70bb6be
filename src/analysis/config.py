"""Paths, anchored at the project root and never at the current directory.

`ANALYSIS_ROOT` overrides the root (tests use it to work on a copy of the data).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The repository root: `$ANALYSIS_ROOT`, else the folder above `src/`."""
    env = os.environ.get("ANALYSIS_ROOT")
    if env:
        return Path(env).resolve()
    return PACKAGE_DIR.parents[1]


def data_dir() -> Path:
    return project_root() / "data"


def raw_dir() -> Path:
    return data_dir() / "raw"


def derived_dir() -> Path:
    return data_dir() / "derived"


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def reports_dir() -> Path:
    return project_root() / "reports"


# Census vintages of the population tables (INSEE "population municipale").
# 2016: legal populations 2016 in the 2019 geography (@etalab/decoupage-administratif 0.7.0).
# 2023: reference populations 2023 in the 2026 geography (@etalab/decoupage-administratif 6.0.0).
POPULATION_VINTAGES: tuple[int, ...] = (2016, 2023)
DEFAULT_POPULATION_VINTAGE = 2023
