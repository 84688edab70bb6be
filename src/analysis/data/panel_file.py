"""Read a long panel from a CSV file, for ``analysis label-effect``.

Any CSV with the columns ``unit, year, first_treated`` and an outcome column works (see
:mod:`analysis.methods.panels`, which checks it), not only the register panel. The frame's
index is the line of the file (line 1 is the header), so that the check's messages name the
line to fix.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.core.errors import DataError


def read_panel(path: Path | str) -> pd.DataFrame:
    """The CSV in `path` as read (``unit`` as text), indexed by the line of the file.

    Raises
    ------
    DataError
        ``<path>: <what is wrong>`` when the file is missing or is not a readable CSV.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"unit": str}, keep_default_na=True)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: not a readable CSV panel ({first})") from None
    df.index = pd.RangeIndex(2, len(df) + 2, name="line")
    return df
