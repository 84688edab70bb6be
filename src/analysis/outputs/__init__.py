"""Outputs: how results are shown.

``tables`` (a frame with its sources beneath it), ``figures`` (one theme, captions with
sources, deterministic PNGs), ``maps`` (maps by EPCI in Lambert-93) and ``sections`` (the notebooks' sections: a figure, a table or
a plain notice that the data is missing).
"""
