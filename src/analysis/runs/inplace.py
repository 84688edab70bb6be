"""Re-execute the committed notebooks in place (``make notebooks``).

Each notebook runs top to bottom on its default parameters, from its own folder, with the
kernel and environment of every batch run (:mod:`analysis.runs.worker`); the result replaces
the file atomically only if every cell ran, so a failing notebook leaves the committed one
untouched. No timing or papermill metadata is recorded, so re-running on unchanged data and
code gives the same file.
"""

from __future__ import annotations

import os
from pathlib import Path

from analysis.core.atomic import atomic_write_text
from analysis.core.errors import AnalysisError
from analysis.runs.worker import DEFAULT_TIMEOUT, KERNEL_ENV, KERNEL_NAME


def execute_in_place(path: Path, timeout: int = DEFAULT_TIMEOUT) -> Path:
    """Execute `path` and overwrite it with the executed notebook (atomically).

    Parameters
    ----------
    path : pathlib.Path
        The notebook, run from its own folder.
    timeout : int, default DEFAULT_TIMEOUT
        Per-cell execution timeout, in seconds.

    Returns
    -------
    pathlib.Path
        `path`, rewritten (cells' execution metadata removed).

    Raises
    ------
    AnalysisError
        ``<path>: a cell failed; the committed notebook is unchanged.`` with the error's last line.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    for key, value in KERNEL_ENV.items():
        os.environ.setdefault(key, value)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=timeout,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except CellExecutionError as e:
        first = str(e).strip().splitlines()
        raise AnalysisError(
            f"{path}: a cell failed; the committed notebook is unchanged. {first[-1] if first else ''}"
        ) from None
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)
    atomic_write_text(path, nbformat.writes(nb) + "\n")
    return path
