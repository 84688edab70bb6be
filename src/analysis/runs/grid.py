"""The run grid (``notebooks/runs.yaml``): which notebooks run, with which parameters.

A grid lists notebook runs::

    - notebook: 01-data-catalogue.ipynb            # every parameter at its default
    - notebook: 02-investment-attraction.ipynb
      parameters: {territory: aix-marseille, start_year: 2015, end_year: 2023}
    - notebook: 10-territory-report.ipynb          # one run per value (cartesian product
      matrix: {capital: [aix-marseille, bordeaux]}  # over the keys of `matrix`)
      name: "report-{capital}"                     # optional; placeholders for matrix runs

A mapping ``{runs: [...]}`` is accepted too. Notebook paths are relative to the grid's folder.
Every notebook, parameter name and parameter value is checked before anything runs (values
with the notebooks' own rules, :mod:`analysis.runs.params`): a misspelt one stops the batch
with a message that lists the valid choices.

Each run gets a filesystem-safe id (its name if given, else the notebook stem and the sorted
parameters, e.g. ``10-territory-report__capital=bordeaux``).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from analysis.core import paths
from analysis.core.errors import ParameterError
from analysis.runs import params as notebook_params
from analysis.runs.notebooks import list_notebooks, notebook_parameters, validates_parameters

GRID_NAME = "runs.yaml"
_SAFE_ID = re.compile(r"[^A-Za-z0-9._,=+-]+")
_MAX_ID = 150
_RUN_KEYS = {"notebook", "parameters", "matrix", "name"}


class GridError(ParameterError):
    """The grid file is unreadable or names a notebook, a parameter or a run that is not valid."""


@dataclasses.dataclass(frozen=True)
class Run:
    """One notebook execution of the grid."""

    id: str
    name: str
    notebook: Path  # absolute path of the source notebook
    parameters: dict[str, Any]
    position: int  # 1-based position of its entry in the grid file

    @property
    def output_name(self) -> str:
        return f"{self.id}.ipynb"


def format_value(value: Any) -> str:
    """A parameter value as text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def safe_id(text: str) -> str:
    """A filesystem- and URL-safe form of `text` (runs of other characters become one '-')."""
    out = _SAFE_ID.sub("-", text).strip("-.") or "run"
    if len(out) > _MAX_ID:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
        out = f"{out[: _MAX_ID - 11]}-{digest}"
    return out


def run_id(stem: str, parameters: dict[str, Any]) -> str:
    """``<stem>`` or ``<stem>__k1=v1__k2=v2`` (keys sorted), made filesystem-safe.

    Parameters
    ----------
    stem : str
        The notebook's stem (file name without ``.ipynb``).
    parameters : dict
        The run's parameters; values are written with ``format_value``.

    Returns
    -------
    str
        The run id: each run of characters other than letters, digits and ``._,=+-``
        becomes ``-``; an id longer than 150 characters is cut and ends with the first 10
        hex digits of its sha256.
    """

    def clean(text: str) -> str:
        return _SAFE_ID.sub("-", text).strip("-")

    parts = [stem] + [
        f"{clean(k)}={clean(format_value(parameters[k]))}" for k in sorted(parameters)
    ]
    return safe_id("__".join(parts))


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _entry_lines(text: str) -> list[int]:
    """1-based line of each run entry in the YAML text (for messages); [] if unknown."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if isinstance(node, yaml.MappingNode):
        node = next((v for k, v in node.value if getattr(k, "value", None) == "runs"), None)
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]


def default_grid() -> Path:
    """``notebooks/runs.yaml``."""
    return paths.notebooks_dir() / GRID_NAME


def load_grid(path: Path | str | None = None) -> list[Run]:
    """Read and validate a grid file; every notebook and parameter is checked.

    Raises GridError naming the file, the entry (position and line) and the valid choices.
    """
    path = Path(path) if path is not None else default_grid()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise GridError(f"{path}: cannot read the grid file ({e.strerror or e})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise GridError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if isinstance(doc, dict) and set(doc) == {"runs"}:
        doc = doc["runs"]
    if not isinstance(doc, list) or not doc:
        raise GridError(
            f"{path}: expected a non-empty list of runs (each with a 'notebook' key), "
            f"or a mapping with the single key 'runs'"
        )
    lines = _entry_lines(text)
    folder = path.parent
    available = list_notebooks(folder)
    declared_cache: dict[Path, list[str]] = {}
    runs: list[Run] = []
    seen_names: dict[str, int] = {}
    seen_ids: dict[str, int] = {}

    for pos, entry in enumerate(doc, start=1):
        line = f" (line {lines[pos - 1]})" if len(lines) >= pos else ""
        where = f"{path}, run {pos}{line}"
        if not isinstance(entry, dict) or "notebook" not in entry:
            raise GridError(f"{where}: expected a mapping with a 'notebook' key, got {entry!r}")
        unknown = sorted(set(map(str, entry)) - _RUN_KEYS)
        if unknown:
            raise GridError(
                f"{where}: unknown key {unknown[0]!r}; a run has the keys "
                f"{', '.join(sorted(_RUN_KEYS))}"
            )
        nb_name = str(entry["notebook"])
        if not nb_name.endswith(".ipynb"):
            nb_name += ".ipynb"
        nb_path = (folder / nb_name).resolve()
        if not nb_path.is_file():
            listing = ", ".join(available) if available else "none"
            raise GridError(
                f"{where}: no notebook {entry['notebook']!r} in {folder}"
                f"{_suggest(nb_name, available)}; the notebooks are: {listing}"
            )
        params = entry.get("parameters") or {}
        matrix = entry.get("matrix") or {}
        for key, value in (("parameters", params), ("matrix", matrix)):
            if not isinstance(value, dict):
                raise GridError(f"{where}: '{key}' must be a mapping of parameter names")
        for k, v in matrix.items():
            if not isinstance(v, list) or not v:
                raise GridError(f"{where}: matrix value of {k!r} must be a non-empty list")
        both = sorted(set(params) & set(matrix))
        if both:
            raise GridError(f"{where}: parameter {both[0]!r} is in both 'parameters' and 'matrix'")
        if nb_path not in declared_cache:
            declared_cache[nb_path] = notebook_parameters(nb_path)
        declared = declared_cache[nb_path]
        for k in sorted(set(params) | set(matrix), key=str):
            if k not in declared:
                listing = ", ".join(declared) if declared else "none (no cell tagged 'parameters')"
                raise GridError(
                    f"{where}: {nb_name} has no parameter {k!r}{_suggest(str(k), declared)}; "
                    f"its parameters are: {listing}"
                )
        checked = validates_parameters(nb_path)  # the package's notebooks: same rules here
        for k, v in [*params.items(), *((k, x) for k, vs in matrix.items() for x in vs)]:
            if not checked or k not in notebook_params.RULES:
                continue
            try:
                notebook_params.check(k, v)
            except ParameterError as e:
                raise GridError(f"{where}: {nb_name}: {e}") from None
        keys = sorted(matrix)
        combos = itertools.product(*(matrix[k] for k in keys)) if keys else [()]
        for combo in combos:
            p = dict(params) | dict(zip(keys, combo, strict=True))
            name = entry.get("name")
            if name is not None:
                try:
                    name = str(name).format(**{k: format_value(v) for k, v in p.items()})
                except (KeyError, IndexError, ValueError) as e:
                    raise GridError(
                        f"{where}: the name {entry['name']!r} has a placeholder that is not a "
                        f"parameter of the run ({e})"
                    ) from None
            rid = safe_id(name) if name is not None else run_id(nb_path.stem, p)
            if name is None and rid in seen_ids:
                raise GridError(
                    f"{where}: repeats run {seen_ids[rid]} (the same notebook with the same "
                    f"parameters, id {rid!r}); remove one, or give them distinct names"
                )
            name = name if name is not None else rid
            if name in seen_names:
                raise GridError(
                    f"{where}: duplicated run name {name!r} (also run {seen_names[name]}); "
                    "give each run a distinct name or parameters"
                )
            if rid in seen_ids:
                raise GridError(
                    f"{where}: run id {rid!r} is also the id of run {seen_ids[rid]}; "
                    "give each run a distinct name or parameters"
                )
            seen_names[name] = pos
            seen_ids[rid] = pos
            runs.append(Run(rid, name, nb_path, p, pos))
    return runs


def select_runs(runs: Sequence[Run], pattern: str | None) -> list[Run]:
    """Runs whose id or name matches `pattern` (a glob; without glob characters, a substring).

    Parameters
    ----------
    runs : sequence of Run
        The runs of the grid.
    pattern : str or None
        A glob (``*``, ``?``, ``[``), or a substring; None or empty keeps every run.

    Returns
    -------
    list of Run
        The matching runs, in grid order.

    Raises
    ------
    GridError
        When no run matches, listing the run ids.
    """
    if not pattern:
        return list(runs)
    glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    chosen = [
        r for r in runs if fnmatch.fnmatchcase(r.id, glob) or fnmatch.fnmatchcase(r.name, glob)
    ]
    if not chosen:
        raise GridError(
            f"--only {pattern!r} matches no run; the runs are: {', '.join(r.id for r in runs)}"
        )
    return chosen
