"""Methods: pure functions on tidy frames, no file read.

``series`` (one value per year from disagreeing sources), ``metrics`` (densities, growth,
CAGR, shares), ``models`` (count models with statsmodels), ``composite_index`` (OECD/JRC
composite index with Monte Carlo rank intervals), ``coverage`` (what the catalogue covers),
``panels`` (long unit × year panels: check, arrays, simulator), ``label_effect`` (staggered
difference-in-differences with randomisation inference) and ``synthetic_control`` (one
unit against a weighted average of donors).
"""
