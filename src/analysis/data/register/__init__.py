"""The SIRENE register (INSEE's stock of establishments), scanned out of core with DuckDB.

One module per step, in the order the data flows:

``spec``       the stock files' columns, the reasons a row is excluded, the levels
``sources``    recognise a zip, CSV or parquet file and check its header (no scan)
``engine``     the DuckDB connection, SQL quoting, a query runner with progress and interrupt
``cache``      convert a zip or CSV once to a cached parquet file
``lookup``     commune code -> commune -> EPCI -> capital, from the derived tables
``counts``     the counts of start-ups and of yearly creations, and their outputs
``fetch``      the resumable download of the official files
``testdata``   SYNTHETIC-TEST-DATA stock files for tests and benchmarks (imported on demand)

The names below are the public API, each imported from its module when first used (so
that importing the package, as the CLI does, costs nothing); nothing here imports pandas.
"""

import importlib
from typing import Any

#: public name -> the module that defines it
_EXPORTS = {
    "Report": "counts",
    "Result": "counts",
    "aggregate": "counts",
    "write_outputs": "counts",
    "yearly_creations": "counts",
    "Converted": "cache",
    "convert": "cache",
    "Fetched": "fetch",
    "fetch": "fetch",
    "Geography": "lookup",
    "load_geography": "lookup",
    "geography_vintage": "lookup",
    "Source": "sources",
    "inspect_source": "sources",
    "DEFAULT_URLS": "spec",
    "ETABLISSEMENT_COLUMNS": "spec",
    "ETABLISSEMENT_COLUMNS_2019": "spec",
    "LEVELS": "spec",
    "UNITE_LEGALE_COLUMNS": "spec",
    "years_before": "spec",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
