"""The data layer: the only code that reads data files.

``schemas`` (table rules), ``datasets`` (the readers), ``catalog`` (sidecars, checksums,
``analysis data verify``), ``inputs`` (the bundle the analyses take), ``geography`` (the
build step of the INSEE population tables), ``geometry`` (the EPCI outlines of the maps)
and ``register/`` (the SIRENE stock, scanned
with DuckDB).
"""
