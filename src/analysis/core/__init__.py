"""The bottom layer: what every other layer may use and nothing here imports from above.

Paths anchored at the project root, the exceptions, atomic writes and checksums, the
territories and their codes, the map projections, the tidy-frame conventions, the
definitions (ICT sector) and the one validator per parameter (:mod:`analysis.core.rules`),
and the file-aware caches.
"""
