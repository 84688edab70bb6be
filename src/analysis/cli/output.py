"""How the CLI prints tables: as an aligned table, CSV or JSON, to stdout or a file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.core.atomic import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("table", "csv", "json")


def human(x: float) -> str:
    """Integers with thousands separators, other numbers with 4 significant digits."""
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.4g}"


def print_frame(df: pd.DataFrame, fmt: str, out: Path | None = None) -> None:
    """Write `df` in `fmt` to stdout, or atomically to `out`."""
    import pandas as pd

    if fmt == "csv":
        text = df.to_csv(index=False, lineterminator="\n", float_format="%.10g")
    elif fmt == "json":
        text = df.to_json(orient="records", force_ascii=False, indent=1, double_precision=10) + "\n"
    else:
        with pd.option_context(
            "display.max_rows", None, "display.width", 200, "display.max_colwidth", 60
        ):
            text = df.to_string(index=False, float_format=human) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out, text)
