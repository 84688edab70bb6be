"""Notebook files: the committed notebooks, their cells and their parameters cell."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from analysis.core import paths
from analysis.core.errors import ParameterError


def list_notebooks(folder: Path) -> list[str]:
    """The notebook file names of a folder, sorted."""
    return sorted(p.name for p in Path(folder).glob("*.ipynb") if not p.name.startswith("."))


def read_notebook_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ParameterError(f"{path}: not a readable notebook ({e})") from None


def cell_source(cell: dict) -> str:
    """A cell's source as one string (nbformat stores a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def notebook_parameters(path: Path) -> list[str]:
    """The names declared in the notebook's cell tagged ``parameters`` (empty if none).

    The cell holds literals only, so Python's own parser reads it; a cell it cannot parse
    (IPython magics, say) falls back to papermill's inspection.
    """
    nb = read_notebook_json(path)
    cell = next(
        (
            c
            for c in nb.get("cells", [])
            if c.get("cell_type") == "code"
            and "parameters" in c.get("metadata", {}).get("tags", [])
        ),
        None,
    )
    if cell is None:
        return []
    try:
        tree = ast.parse(cell_source(cell))
    except SyntaxError:
        import papermill

        return sorted(papermill.inspect_notebook(str(path)))
    names: set[str] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    names.add(n.id)
    return sorted(names)


def validates_parameters(path: Path) -> bool:
    """Does the notebook pass its parameters to :func:`analysis.runs.params.validate`?"""
    nb = read_notebook_json(path)
    return any(
        "params.validate(" in cell_source(c)
        for c in nb.get("cells", [])
        if c.get("cell_type") == "code"
    )


def committed_notebooks() -> list[Path]:
    """The committed notebooks, ``notebooks/NN-*.ipynb``, sorted."""
    return sorted(paths.notebooks_dir().glob("[0-9][0-9]-*.ipynb"))
