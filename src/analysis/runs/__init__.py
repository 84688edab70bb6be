"""Runs: executing the notebooks and sharing them.

``params`` (the notebooks' parameter rules), ``notebooks`` (notebook files and their
parameters cell), ``grid`` (the run grid), ``worker`` (one papermill run), ``executors``
(local pool or Dask), ``progress``, ``lock``, ``manifest``, ``batch`` (``analysis run``),
``inplace`` (``analysis notebooks``) and ``book``, ``bookconvert``, ``bookpages``
(``analysis book``: the book of the executed notebooks, Sphinx + MyST-NB).
"""
