"""The SIRENE register (INSEE's stock of establishments), scanned out of core with DuckDB.

One module per step, in the order the data flows:

``spec``       the stock files' columns, the reasons a row is excluded, the levels
``sources``    recognise a zip, CSV or parquet file and check its header (no scan)
``engine``     the DuckDB connection, SQL quoting, a query runner with progress and interrupt
``cache``      convert a zip or CSV once to a cached parquet file
``lookup``     commune code -> commune -> EPCI -> capital, from the derived tables
``aggregate``  the counts of start-ups and of yearly creations, and their outputs
``fetch``      the resumable download of the official files
``testdata``   SYNTHETIC-TEST-DATA stock files for tests and benchmarks (imported on demand)

The names below are the public API; nothing here imports pandas.
"""

from analysis.data.register.aggregate import (
    Report,
    Result,
    aggregate,
    write_outputs,
    yearly_creations,
)
from analysis.data.register.cache import Converted, convert
from analysis.data.register.fetch import DEFAULT_URLS, Fetched, fetch
from analysis.data.register.lookup import Geography, load_geography
from analysis.data.register.sources import Source, inspect_source
from analysis.data.register.spec import (
    ETABLISSEMENT_COLUMNS,
    ETABLISSEMENT_COLUMNS_2019,
    LEVELS,
    UNITE_LEGALE_COLUMNS,
    years_before,
)

__all__ = [
    "DEFAULT_URLS",
    "ETABLISSEMENT_COLUMNS",
    "ETABLISSEMENT_COLUMNS_2019",
    "LEVELS",
    "UNITE_LEGALE_COLUMNS",
    "Converted",
    "Fetched",
    "Geography",
    "Report",
    "Result",
    "Source",
    "aggregate",
    "convert",
    "fetch",
    "inspect_source",
    "load_geography",
    "write_outputs",
    "yearly_creations",
    "years_before",
]
