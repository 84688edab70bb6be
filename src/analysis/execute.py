"""Re-execute the committed notebooks in place (``make notebooks``).

Each notebook runs top to bottom on its default parameters, from its own folder, with the
``python3`` kernel; the result replaces the file atomically only if every cell ran, so a
failing notebook leaves the committed one untouched. No timing or papermill metadata is
recorded, so re-running on unchanged data and code gives the same file.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from analysis import config
from analysis.errors import AnalysisError
from analysis.fileio import atomic_write_text

KERNEL = "python3"


def execute_in_place(path: Path, timeout: int = 600) -> Path:
    """Execute `path` and overwrite it with the executed notebook (atomically)."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
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


def committed_notebooks() -> list[Path]:
    return sorted(config.notebooks_dir().glob("[0-9][0-9]-*.ipynb"))
