"""Read a long panel from a CSV file, for ``analysis label-effect``.

Any CSV with the columns ``unit, year, first_treated`` and an outcome column works (see
:mod:`analysis.methods.panels`), not only the register panel. Errors name the file, the
column and the line of the file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.core.errors import DataError, ParameterError
from analysis.methods.panels import check_panel


def read_panel(path: Path | str, outcome: str = "outcome") -> pd.DataFrame:
    """The checked panel in `path` (``unit`` read as text, the rest as numbers).

    Raises
    ------
    DataError
        ``<path>: <what is wrong>``, the row given as the line of the file (line 1 is the
        header), when the file cannot be read or :func:`check_panel` refuses it.
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
    try:
        return check_panel(df, outcome)
    except ParameterError as e:
        raise DataError(
            f"{path}: {str(e).replace(', row ', ', line ').replace('(row ', '(line ')}"
        ) from None
