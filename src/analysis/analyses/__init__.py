"""Analyses: the results, assembled from the inputs with the methods.

``investment`` (the cited series, ratios, shares and the seed article's claims),
``density`` (declared and register start-up counts per inhabitant), ``ecosystem`` (the
composite index's inputs) and ``headline`` (the one place that assembles the headline
results for the notebooks and the CLI). Each function takes the
:class:`~analysis.data.inputs.Inputs` bundle and reads no file.
"""
