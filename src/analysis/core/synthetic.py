"""How generated data is labelled, so that it is never mistaken for a result.

Files generated for tests and benchmarks carry :data:`SYNTHETIC_LABEL` in their names (and
in their metadata); every table or figure built from such a file says so.
"""

from __future__ import annotations

from pathlib import Path

SYNTHETIC_LABEL = "SYNTHETIC-TEST-DATA"


def is_synthetic(path: Path | str) -> bool:
    """True when the file's name carries the synthetic-data label."""
    return SYNTHETIC_LABEL in Path(path).name
