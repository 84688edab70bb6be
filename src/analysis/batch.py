"""Batch runs of the parameterised notebooks: ``analysis run``.

A *grid* (YAML, default ``notebooks/runs.yaml``) lists notebook runs::

    - notebook: 01-data-catalogue.ipynb            # every parameter at its default
    - notebook: 02-investment-attraction.ipynb
      parameters: {territory: aix-marseille, start_year: 2015, end_year: 2023}
    - notebook: 10-territory-report.ipynb          # one run per value (cartesian product
      matrix: {territory: [aix-marseille, bordeaux]}  # over the keys of `matrix`)
      name: "report-{territory}"                   # optional; placeholders for matrix runs

A mapping ``{runs: [...]}`` is accepted too. Notebook paths are relative to the grid's folder.
Every notebook and every parameter is checked before anything runs: a misspelt one stops
the batch with a message that lists the valid choices.

Each run gets a filesystem-safe id (its name if given, else the notebook stem and the sorted
parameters, e.g. ``10-territory-report__territory=bordeaux``). In the output folder
(default ``reports/``):

- ``notebooks/<id>.ipynb``  the executed notebook of a successful run;
- ``failed/<id>.ipynb``     the partially executed notebook of a failed run (papermill's
  error cells included). An earlier successful output of the same run is left in place;
  nothing under the output folder is ever half-written (every file is written atomically
  by the parent process, which is the only writer);
- ``manifest.json``         one entry per run: notebook, parameters, status, duration,
  package version, checksums; rewritten (atomically) as each run finishes;
- ``.lock``                 held (``fcntl.flock``) for the whole batch: a second batch on the
  same folder is refused instead of interleaving its writes with the first.

Execution: papermill with an explicit kernel (``python3``), the kernel's working directory
being the notebook's own folder, a per-cell execution timeout, and a retry when the kernel
fails to start (the port race of parallel kernel starts). Runs are executed in a process pool
(``forkserver``; papermill is imported once in the fork server, not once per run), or on a
Dask cluster (``--dask ADDRESS``) with the same task function. A failing run never stops the
others. The executed notebooks carry no timestamps (papermill's and nbclient's timing
metadata are removed); timestamps are in the manifest only.

Data checksums: the manifest records, once at the top, the sha256 of every file under
``data/raw`` and ``data/derived`` (the notebooks read data only through ``analysis``, which
reads only these folders); each run records the digest of that list (``data_sha256``), the
sha256 of its source notebook and of its executed output. ``--resume`` reruns a run unless its
earlier entry is ok, with the same parameters, notebook checksum and data digest, and its
output is still on disk with the recorded checksum. Changes to the library code itself are not
detected (only ``analysis.__version__`` is recorded): rerun without ``--resume`` after one.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import datetime as dt
import difflib
import fcntl
import fnmatch
import functools
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import yaml

from analysis import __version__, config
from analysis.errors import AnalysisError, ParameterError
from analysis.fileio import atomic_write_text, sha256_file

GRID_NAME = "runs.yaml"
KERNEL_NAME = "python3"
DEFAULT_TIMEOUT = 600  # seconds per cell (nbclient's timeout is per cell)
START_TIMEOUT = 60  # seconds to wait for a kernel to start
START_RETRIES = 2  # extra attempts when the kernel fails to start
# How a kernel is stopped once its notebook has run. "immediate" kills it (0.1 s); "graceful"
# asks it to shut down and waits for it to exit (about 1 s for a kernel that has imported
# pandas, seaborn and statsmodels). Every output has been received by then (nbclient waits for
# each cell's idle status), and the notebooks write no file of their own, so nothing is lost.
KERNEL_SHUTDOWN = "immediate"
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"
MANIFEST_FORMAT = 1

# The environment of every kernel: the same as the Makefile's. The venv's `python3` kernelspec
# comes first (JUPYTER_PREFER_ENV_PATH) and matplotlib draws with Agg (no display needed).
KERNEL_ENV = {
    "JUPYTER_PREFER_ENV_PATH": "1",
    "JUPYTER_PLATFORM_DIRS": "1",
    "MPLBACKEND": "Agg",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"  # up to date (--resume): not executed again, earlier output reused
DONE_STATUSES = (STATUS_OK, STATUS_SKIPPED)

_SAFE_ID = re.compile(r"[^A-Za-z0-9._,=+-]+")
_MAX_ID = 150
_RUN_KEYS = {"notebook", "parameters", "matrix", "name"}


class GridError(ParameterError):
    """The grid file is unreadable or names a notebook, a parameter or a run that is not valid."""


class BatchLockedError(AnalysisError):
    """Another batch holds the lock on the output folder."""


# --------------------------------------------------------------------------- the grid


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


def list_notebooks(folder: Path) -> list[str]:
    """The notebook file names of a folder, sorted."""
    return sorted(p.name for p in Path(folder).glob("*.ipynb") if not p.name.startswith("."))


def _read_notebook_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise GridError(f"{path}: not a readable notebook ({e})") from None


def _cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def notebook_parameters(path: Path) -> list[str]:
    """The names declared in the notebook's cell tagged ``parameters`` (empty if none).

    The cell holds literals only, so Python's own parser reads it; a cell it cannot parse
    (IPython magics, say) falls back to papermill's inspection.
    """
    nb = _read_notebook_json(path)
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
        tree = ast.parse(_cell_source(cell))
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


def _format_value(value: Any) -> str:
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
    """``<stem>`` or ``<stem>__k1=v1__k2=v2`` (keys sorted), made filesystem-safe."""

    def clean(text: str) -> str:
        return _SAFE_ID.sub("-", text).strip("-")

    parts = [stem] + [
        f"{clean(k)}={clean(_format_value(parameters[k]))}" for k in sorted(parameters)
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
    return config.notebooks_dir() / GRID_NAME


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
        keys = sorted(matrix)
        combos = itertools.product(*(matrix[k] for k in keys)) if keys else [()]
        for combo in combos:
            p = dict(params) | dict(zip(keys, combo, strict=True))
            name = entry.get("name")
            if name is not None:
                try:
                    name = str(name).format(**{k: _format_value(v) for k, v in p.items()})
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
    """Runs whose id or name matches `pattern` (a glob; without glob characters, a substring)."""
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


# --------------------------------------------------------------------------- the lock


def _display(path: Path) -> str:
    """`path` relative to the current directory when below it (for messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)


@contextlib.contextmanager
def output_lock(out_dir: Path, what: str = "analysis run") -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on ``<out_dir>/.lock`` for the block.

    Raises BatchLockedError naming the holder (pid, start time) when another process holds it.
    The lock file itself is never removed (removing a flock'd file lets two holders coexist);
    the lock is released by the kernel when the holder exits, even if it is killed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lock_path = out_dir / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = {}
            with contextlib.suppress(OSError, ValueError):
                holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
            who = holder.get("command", "analysis run")
            raise BatchLockedError(
                f"another {who} is writing to {_display(out_dir)}/ "
                f"(pid {holder.get('pid', '?')}, started {holder.get('started', '?')}); "
                "wait for it or use --out"
            ) from None
        info = {"pid": os.getpid(), "started": _now(), "command": what}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info, sort_keys=True) + "\n").encode("utf-8"), 0)
        yield
    finally:
        os.close(fd)  # releases the flock if we held it


# --------------------------------------------------------------------------- checksums, manifest


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _rel(path: Path, base: Path) -> str:
    """POSIX path of `path` relative to `base` when below it, else absolute."""
    try:
        return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()


def data_checksums(data_dir: Path | None = None) -> dict[str, str]:
    """sha256 of every file under data/raw and data/derived, keyed by path relative to the root.

    Fetched archives (``*.tgz``, inputs of ``make data``, never read by a notebook) and hidden
    files are left out.
    """
    data_dir = Path(data_dir) if data_dir is not None else config.data_dir()
    root = data_dir.parent
    out: dict[str, str] = {}
    for sub in ("raw", "derived"):
        for p in sorted((data_dir / sub).rglob("*")):
            if p.is_file() and p.suffix != ".tgz" and not p.name.startswith("."):
                out[_rel(p, root)] = sha256_file(p)
    return out


def _digest(checksums: dict[str, str]) -> str:
    text = "".join(f"{sha}  {path}\n" for path, sha in sorted(checksums.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_manifest(out_dir: Path | None = None) -> dict:
    """The manifest of an output folder ({} when there is none)."""
    path = Path(out_dir or config.reports_dir()) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise AnalysisError(f"{path}: not valid JSON ({e}); remove it to start afresh") from None
    return doc if isinstance(doc, dict) else {}


def _write_manifest(out_dir: Path, doc: dict) -> Path:
    path = out_dir / MANIFEST_NAME
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return path


# --------------------------------------------------------------------------- the worker side


@functools.cache
def _kernel_manager_class():
    """An AsyncKernelManager whose kernel writes its stdout/stderr to a log file.

    Kernel processes otherwise inherit the terminal, and their warnings would be interleaved
    with the progress lines; the log's tail goes into the failure summary instead.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Unicode

    class LoggedKernelManager(AsyncKernelManager):
        log_path = Unicode("", config=True, help="file receiving the kernel's stdout/stderr")

        async def start_kernel(self, **kw):
            if self.log_path and "stdout" not in kw:
                f = open(self.log_path, "ab")  # noqa: SIM115 - closed after the Popen
                kw["stdout"] = kw["stderr"] = f
                try:
                    return await super().start_kernel(**kw)
                finally:
                    f.close()
            return await super().start_kernel(**kw)

    return LoggedKernelManager


def _strip_timing(nb: dict, notebook_rel: str, output_rel: str) -> None:
    """Remove timestamps and random ids from an executed notebook, make its paths portable:
    the same run on the same inputs gives the same bytes."""
    meta = nb.setdefault("metadata", {}).setdefault("papermill", {})
    for key in ("start_time", "end_time", "duration"):
        meta.pop(key, None)
    meta["input_path"] = notebook_rel
    meta["output_path"] = output_rel
    for cell in nb.get("cells", []):
        cmeta = cell.get("metadata", {})
        if "injected-parameters" in cmeta.get("tags", []) and "id" in cell:
            cell["id"] = "injected-parameters"  # papermill draws a random one
        cmeta.pop("execution", None)
        pm = cmeta.get("papermill")
        if isinstance(pm, dict):
            for key in ("start_time", "end_time", "duration"):
                pm.pop(key, None)


def _failing_cell(nb: dict) -> dict:
    """Locate the failing cell of an executed notebook: the first code cell with an error
    output, else (a dead kernel, a timeout) the last cell that started. The index counts the
    cells of the *source* notebook (papermill's injected and error-marker cells left out)."""
    cells = []
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags or "papermill-error-cell-tag" in tags:
            continue
        cells.append(cell)
    found = None
    for i, cell in enumerate(cells):
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error" and not (
                out.get("ename") == "SystemExit" and out.get("evalue") in ("", "0")
            ):
                found = i
                break
        if found is not None:
            break
    if found is None:
        started = [
            i
            for i, c in enumerate(cells)
            if c.get("cell_type") == "code"
            and (c.get("metadata", {}).get("papermill") or {}).get("start_time")
        ]
        found = started[-1] if started else None
    if found is None:
        return {}
    cell = cells[found]
    first = next((ln.strip() for ln in _cell_source(cell).splitlines() if ln.strip()), "")
    return {
        "cell_index": found,
        "execution_count": cell.get("execution_count"),
        "cell_source": first[:120],
    }


def _error_of(exc: BaseException) -> tuple[str, str]:
    ename = getattr(exc, "ename", None) or type(exc).__name__
    evalue = getattr(exc, "evalue", None)
    if evalue is None:
        evalue = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return str(ename), str(evalue)[:2000]


def _is_start_failure(exc: BaseException, nb: dict | None) -> bool:
    """Did the run fail before its first cell started (so that a retry is safe)?"""
    names = {c.__name__ for c in type(exc).__mro__}
    # An error raised by a cell, or a kernelspec that does not exist: retrying cannot help.
    if names & {"PapermillExecutionError", "NoSuchKernel"}:
        return False
    if nb is None:
        return True
    return not any(
        (c.get("metadata", {}).get("papermill") or {}).get("start_time")
        for c in nb.get("cells", [])
    )


def _papermill_once(task: dict, workdir: Path) -> tuple[dict | None, BaseException | None, str]:
    """One papermill execution in `workdir`: (executed notebook or None, exception, kernel log)."""
    import papermill
    import zmq
    from traitlets.config import Config

    src = workdir / task["notebook_name"]
    src.write_text(task["notebook_source"], encoding="utf-8")
    out = workdir / f"executed-{task['notebook_name']}"
    out.unlink(missing_ok=True)
    log = workdir / "kernel.log"
    log.unlink(missing_ok=True)
    cfg = Config()
    cfg.LoggedKernelManager.log_path = str(log)
    if zmq.has("curve"):
        # CurveZMQ keys for kernels whose spec declares support (ipykernel does): the
        # kernel's channels are encrypted and it does not warn about plain-text TCP.
        cfg.KernelManager.transport_encryption = "auto"
    exc: BaseException | None = None
    try:
        papermill.execute_notebook(
            str(src),
            str(out),
            parameters=task["parameters"],
            kernel_name=task["kernel_name"],
            progress_bar=False,
            log_output=False,
            start_timeout=task["start_timeout"],
            execution_timeout=task["timeout"],
            # The kernel's working directory: the notebook's own folder. Passed to the kernel
            # launch (nbclient's resources path) rather than papermill's `cwd=`, which would
            # chdir the whole worker process (unsafe with threads, as in a Dask worker).
            resources={"metadata": {"path": task["cwd"]}},
            record_timing=False,  # no timestamps in the outputs
            shutdown_kernel=task.get("kernel_shutdown", KERNEL_SHUTDOWN),
            kernel_manager_class=_kernel_manager_class(),
            config=cfg,
        )
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the batch
        exc = e
    nb = None
    if out.is_file():
        with contextlib.suppress(OSError, ValueError):
            nb = json.loads(out.read_text(encoding="utf-8"))
    log_text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    return nb, exc, log_text


def execute_run(task: dict) -> dict:
    """Execute one run (in a pool worker or on a Dask worker); never raises.

    `task` holds plain data (picklable, no shared filesystem needed for the outputs): the
    notebook's source text, parameters, kernel name, timeouts, the kernel's working directory
    and the relative paths to record. Returns the executed notebook as text (timestamps
    removed) with the status, the attempts and, for a failure, the failing cell and the error.
    """
    os.environ.update(KERNEL_ENV)
    # nbclient logs a dead kernel or a timeout through papermill's logger; the failure is
    # reported in the summary and the manifest, not as a stray line among the progress lines.
    logging.getLogger("papermill").setLevel(logging.CRITICAL)
    t0 = time.monotonic()
    attempts = 0
    nb: dict | None = None
    exc: BaseException | None = None
    log_text = ""
    if not Path(task["cwd"]).is_dir():
        return {
            "id": task["id"],
            "status": STATUS_FAILED,
            "attempts": 0,
            "duration_s": 0.0,
            "notebook_text": None,
            "error": {
                "ename": "FileNotFoundError",
                "evalue": f"the notebook folder {task['cwd']} does not exist on host "
                f"{os.uname().nodename}: a Dask worker needs the project at the same path",
            },
        }
    with tempfile.TemporaryDirectory(prefix="analysis-run-") as tmp:
        for attempt in range(1, task["retries"] + 2):
            attempts = attempt
            nb, exc, log_text = _papermill_once(task, Path(tmp))
            if exc is None or attempt > task["retries"] or not _is_start_failure(exc, nb):
                break
            # The kernel failed to start. Under parallel starts this is usually the port race
            # documented in nteract/papermill#511 ("zmq.error.ZMQError: Address already in
            # use" when running notebooks with multiprocessing) and jupyter/jupyter_client#154
            # (ports chosen, released, then taken by another kernel before this one binds
            # them; seen as "Kernel died before replying to kernel_info" or a start timeout).
            # Nothing ran yet, so starting again with fresh ports is safe.
            time.sleep(0.2 * attempt + random.random() * 0.3)
    result: dict[str, Any] = {
        "id": task["id"],
        "status": STATUS_OK if exc is None else STATUS_FAILED,
        "attempts": attempts,
        "duration_s": round(time.monotonic() - t0, 3),
        "notebook_text": None,
        "error": None,
    }
    if exc is not None:
        ename, evalue = _error_of(exc)
        if type(exc).__name__ == "CellTimeoutError":
            evalue = f"a cell ran longer than the {task['timeout']} s timeout (--timeout)"
        err: dict[str, Any] = {"ename": ename, "evalue": evalue}
        if nb is not None:
            err |= _failing_cell(nb)
        tail = [ln for ln in log_text.splitlines() if ln.strip()][-15:]
        kernel_trouble = not hasattr(exc, "ename") and type(exc).__name__ != "CellTimeoutError"
        if tail and kernel_trouble:  # a kernel that died or never started: its own words
            err["kernel_log"] = "\n".join(tail)
        result["error"] = err
    if nb is not None:
        output_rel = task["failed_rel"] if exc is not None else task["output_rel"]
        _strip_timing(nb, task["notebook_rel"], output_rel)
        result["notebook_text"] = (
            json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        )
    return result


def _init_worker(env: dict[str, str]) -> None:
    """Pool initializer: the worker gets the parent's environment as it is now (the fork
    server may have been started earlier, with another one) plus the kernels' variables."""
    os.environ.clear()
    os.environ.update(env)
    os.environ.update(KERNEL_ENV)


# --------------------------------------------------------------------------- results, progress


@dataclasses.dataclass
class RunResult:
    run: Run
    status: str
    duration_s: float | None = None
    attempts: int = 0
    output: str | None = None  # relative to the output folder
    error: dict | None = None


@dataclasses.dataclass
class BatchResult:
    """What `run_grid` did. `exit_code` is 0 when no run failed, 1 otherwise."""

    out_dir: Path
    manifest_path: Path
    results: list[RunResult]
    seconds: float

    def _with(self, status: str) -> list[RunResult]:
        return [r for r in self.results if r.status == status]

    @property
    def ok(self) -> list[RunResult]:
        return self._with(STATUS_OK)

    @property
    def failed(self) -> list[RunResult]:
        return self._with(STATUS_FAILED)

    @property
    def skipped(self) -> list[RunResult]:
        return self._with(STATUS_SKIPPED)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def summary(self) -> str:
        n = len(self.results)
        lines = [
            f"{n} run{'s' * (n != 1)}: {len(self.ok)} ok, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped (up to date) in {self.seconds:.1f} s"
        ]
        for r in self.failed:
            lines.append(f"FAILED {r.run.id}")
            lines.extend("  " + ln for ln in describe_failure(r.error or {}).splitlines())
            if r.output:
                lines.append(f"  executed notebook: {_display(self.out_dir / r.output)}")
        lines.append(f"manifest: {_display(self.manifest_path)}")
        return "\n".join(lines)


def describe_failure(error: dict) -> str:
    """'cell 4 (In [3]): first line of the cell' and 'ename: evalue', on two lines."""
    lines = []
    if "cell_index" in error:
        count = error.get("execution_count")
        prompt = f" (In [{count}])" if count is not None else ""
        lines.append(f"cell {error['cell_index']}{prompt}: {error.get('cell_source', '')}")
    evalue = str(error.get("evalue", "")).strip().splitlines()
    lines.append(f"{error.get('ename', 'Error')}: {evalue[0] if evalue else ''}".rstrip(": "))
    if error.get("kernel_log"):
        lines.append("kernel log (last lines):")
        lines.extend("  " + ln for ln in error["kernel_log"].splitlines())
    return "\n".join(lines)


class _Progress:
    """A tqdm bar of overall progress (on a terminal) plus one line per state change.

    The lines ('running', 'ok', 'FAILED') make a readable log when stderr is not a terminal;
    the bar, which rewrites itself, is shown only on a terminal.
    """

    def __init__(self, total: int, enabled: bool, stream=None):
        from tqdm.auto import tqdm

        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.total = total
        self.done = 0
        self.counts = {"queued": total, "running": 0, STATUS_OK: 0, STATUS_FAILED: 0}
        tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = tqdm(
            total=total, unit="run", desc="runs", file=self.stream, disable=not tty, leave=True
        )
        self.width = len(str(total))

    def _line(self, text: str) -> None:
        if self.enabled:
            self.bar.write(text, file=self.stream)

    def _refresh(self) -> None:
        self.bar.set_postfix(self.counts, refresh=True)

    def running(self, run: Run) -> None:
        self.counts["queued"] -= 1
        self.counts["running"] += 1
        self._line(f"{'':{2 * self.width + 3}} running  {run.id}")
        self._refresh()

    def finished(self, res: RunResult) -> None:
        self.counts["running"] -= 1
        self.counts[res.status] += 1
        self.done += 1
        extra = f"  ({res.duration_s:.1f} s)" if res.duration_s is not None else ""
        if res.attempts > 1:
            extra += f"  after {res.attempts} kernel starts"
        label = "ok      " if res.status == STATUS_OK else "FAILED  "
        self._line(f"[{self.done:>{self.width}}/{self.total}] {label} {res.run.id}{extra}")
        if res.status == STATUS_FAILED and self.enabled:
            for ln in describe_failure(res.error or {}).splitlines():
                self._line(" " * (2 * self.width + 4) + ln)
        self.bar.update(1)
        self._refresh()

    def close(self) -> None:
        self.bar.close()


# --------------------------------------------------------------------------- executors


class _LocalExecutor:
    """A forkserver process pool; papermill and its dependencies are imported once, in the
    fork server (importing nbformat/jsonschema costs about 2 s), not in every worker."""

    def __init__(self, workers: int):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["analysis.batch", "papermill", "nbclient", "jupyter_client"])
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(dict(os.environ),),
        )
        self.slots = workers

    def submit(self, task: dict) -> Future:
        return self.pool.submit(execute_run, task)

    def wait(self, futures) -> set:
        done, _ = wait(futures, return_when=FIRST_COMPLETED)
        return done

    def result(self, fut) -> dict:
        return fut.result()

    def close(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


class _DaskExecutor:
    """The same task function on a Dask distributed scheduler."""

    def __init__(self, address: str, workers: int | None):
        try:
            from distributed import Client
        except ImportError as e:  # pragma: no cover - distributed is a dependency
            raise AnalysisError(f"--dask needs the 'distributed' package ({e})") from None
        try:
            self.client = Client(address, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise AnalysisError(f"cannot connect to the Dask scheduler at {address}: {e}") from None
        threads = sum(self.client.nthreads().values()) or 1
        self.slots = workers or threads

    def submit(self, task: dict):
        key = f"analysis-run-{task['id']}-{os.urandom(4).hex()}"
        return self.client.submit(execute_run, task, key=key, pure=False, retries=0)

    def wait(self, futures) -> set:
        while True:  # runs last seconds to minutes: polling every 0.1 s costs nothing
            done = {f for f in futures if f.done()}
            if done:
                return done
            time.sleep(0.1)

    def result(self, fut) -> dict:
        try:
            return fut.result()
        except Exception as e:  # noqa: BLE001 - a lost worker fails this run only
            ename, evalue = _error_of(e)
            return {
                "status": STATUS_FAILED,
                "attempts": 1,
                "duration_s": None,
                "notebook_text": None,
                "error": {"ename": ename, "evalue": f"Dask: {evalue}"},
            }

    def close(self, cancel: bool = False) -> None:
        self.client.close()


# --------------------------------------------------------------------------- the batch


def _up_to_date(run: Run, prev: dict | None, nb_sha: str, data_sha: str, out_dir: Path) -> bool:
    if not prev or prev.get("status") not in DONE_STATUSES:
        return False
    if prev.get("parameters") != run.parameters:
        return False
    if prev.get("notebook_sha256") != nb_sha or prev.get("data_sha256") != data_sha:
        return False
    output = prev.get("output")
    if not output or not (out_dir / output).is_file():
        return False
    return sha256_file(out_dir / output) == prev.get("output_sha256")


def run_grid(
    grid: Path | str | None = None,
    *,
    workers: int | None = None,
    only: str | None = None,
    resume: bool = False,
    dask: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    out_dir: Path | str | None = None,
    kernel_name: str = KERNEL_NAME,
    retries: int = START_RETRIES,
    kernel_shutdown: str = KERNEL_SHUTDOWN,
    progress: bool = True,
    stream=None,
) -> BatchResult:
    """Execute a grid of notebook runs; see the module docstring for the files written.

    grid      the grid file (default notebooks/runs.yaml)
    workers   parallel runs (default: os.cpu_count() locally, the cluster's threads on Dask)
    only      run only the runs whose id or name matches this glob (or substring)
    resume    skip the runs that are up to date in the manifest (ok, same parameters, same
              notebook and data checksums, output intact)
    dask      a Dask scheduler address, e.g. tcp://10.0.0.5:8786 (the workers need the
              project at the same path)
    timeout   per-cell execution timeout, in seconds
    kernel_shutdown  "immediate" (default) or "graceful": see KERNEL_SHUTDOWN
    out_dir   the output folder (default reports/)
    progress  show the progress bar and per-run lines on `stream` (default stderr)

    Raises GridError for a grid that is not valid and BatchLockedError when another batch is
    writing to `out_dir`; failed runs do not raise: see BatchResult.failed / exit_code.
    """
    t0 = time.monotonic()
    grid_path = Path(grid) if grid is not None else default_grid()
    all_runs = load_grid(grid_path)
    runs = select_runs(all_runs, only)
    if timeout is not None and not timeout > 0:
        raise ParameterError(f"--timeout must be a positive number of seconds, not {timeout}")
    timeout = None if timeout is None else math.ceil(timeout)  # nbclient takes whole seconds
    if kernel_shutdown not in ("immediate", "graceful"):
        raise ParameterError(
            f"kernel_shutdown must be 'immediate' or 'graceful', not {kernel_shutdown!r}"
        )
    if workers is not None and workers < 1:
        raise ParameterError(f"--workers must be at least 1, not {workers}")
    out = Path(out_dir) if out_dir is not None else config.reports_dir()
    root = config.project_root()

    n_local = workers or os.cpu_count() or 1
    with output_lock(out):
        previous = read_manifest(out)
        prev_runs = previous.get("runs", {}) if isinstance(previous.get("runs"), dict) else {}
        data = data_checksums()
        data_sha = _digest(data)
        # The manifest describes the runs of this grid: entries of runs no longer in it are
        # dropped (their files stay); runs left out by --only keep their earlier entry.
        grid_ids = {r.id for r in all_runs}
        entries = {k: v for k, v in prev_runs.items() if k in grid_ids}
        manifest = {
            "analysis_version": __version__,
            "batch": {
                "grid": _rel(grid_path, root),
                "grid_sha256": sha256_file(grid_path),
                "only": only,
                "resume": resume,
                "executor": f"dask {dask}" if dask else f"local, {n_local} workers",
                "started_at": _now(),
                "finished_at": None,
            },
            "data_files": data,
            "data_sha256": data_sha,
            "format": MANIFEST_FORMAT,
            "runs": entries,
        }

        results: dict[str, RunResult] = {}
        todo: list[tuple[Run, str]] = []
        for run in runs:
            nb_sha = sha256_file(run.notebook)
            prev = prev_runs.get(run.id)
            if resume and _up_to_date(run, prev, nb_sha, data_sha, out):
                entries[run.id] = dict(prev) | {"status": STATUS_SKIPPED}
                results[run.id] = RunResult(
                    run, STATUS_SKIPPED, prev.get("duration_s"), 0, prev.get("output")
                )
            else:
                todo.append((run, nb_sha))
        manifest_path = _write_manifest(out, manifest)

        log = stream or sys.stderr
        if progress and resume and results:
            print(f"resume: {len(results)} run(s) up to date, {len(todo)} to run", file=log)
        if todo:
            executor: _LocalExecutor | _DaskExecutor
            if dask:
                executor = _DaskExecutor(dask, workers)
            else:
                executor = _LocalExecutor(min(n_local, len(todo)))
            bar = _Progress(len(todo), progress, log)
            pending = {}
            queue = list(todo)
            cancel = False
            try:
                while queue or pending:
                    while queue and len(pending) < executor.slots:
                        run, nb_sha = queue.pop(0)
                        task = _task(run, nb_sha, out, root, kernel_name, timeout, retries)
                        task["kernel_shutdown"] = kernel_shutdown
                        pending[executor.submit(task)] = (run, nb_sha)
                        bar.running(run)
                    for fut in executor.wait(set(pending)):
                        run, nb_sha = pending.pop(fut)
                        res = _record(
                            executor.result(fut), run, nb_sha, data_sha, out, root, entries
                        )
                        results[run.id] = res
                        manifest_path = _write_manifest(out, manifest)
                        bar.finished(res)
            except BaseException:
                cancel = True
                raise
            finally:
                bar.close()
                executor.close(cancel=cancel)
                manifest["batch"]["finished_at"] = _now()
                manifest_path = _write_manifest(out, manifest)
        else:
            manifest["batch"]["finished_at"] = _now()
            manifest_path = _write_manifest(out, manifest)

    ordered = [results[r.id] for r in runs if r.id in results]
    return BatchResult(out, manifest_path, ordered, time.monotonic() - t0)


def _task(
    run: Run, nb_sha: str, out: Path, root: Path, kernel_name: str, timeout, retries: int
) -> dict:
    return {
        "id": run.id,
        "notebook_name": run.notebook.name,
        "notebook_source": run.notebook.read_text(encoding="utf-8"),
        "notebook_sha256": nb_sha,
        "notebook_rel": _rel(run.notebook, root),
        "output_rel": _rel(out / "notebooks" / run.output_name, root),
        "failed_rel": _rel(out / "failed" / run.output_name, root),
        "parameters": run.parameters,
        "cwd": str(run.notebook.parent),
        "kernel_name": kernel_name,
        "timeout": timeout,
        "start_timeout": START_TIMEOUT,
        "retries": retries,
    }


def _record(
    res: dict, run: Run, nb_sha: str, data_sha: str, out: Path, root: Path, entries: dict
) -> RunResult:
    """Write a finished run's notebook (atomically) and its manifest entry."""
    status = res["status"]
    ok_rel = f"notebooks/{run.output_name}"
    failed_rel = f"failed/{run.output_name}"
    output = None
    out_sha = None
    text = res.get("notebook_text")
    if text is not None:
        output = ok_rel if status == STATUS_OK else failed_rel
        atomic_write_text(out / output, text)
        out_sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if status == STATUS_OK:
        (out / failed_rel).unlink(missing_ok=True)  # a stale failure of this run
    entry = {
        "id": run.id,
        "name": run.name,
        "notebook": _rel(run.notebook, root),
        "notebook_sha256": nb_sha,
        "parameters": run.parameters,
        "status": status,
        "duration_s": res.get("duration_s"),
        "attempts": res.get("attempts"),
        "output": output,
        "output_sha256": out_sha,
        "analysis_version": __version__,
        "data_sha256": data_sha,
        "finished_at": _now(),
        "error": res.get("error"),
    }
    entries[run.id] = entry
    return RunResult(
        run, status, res.get("duration_s"), res.get("attempts", 0), output, res.get("error")
    )


# --------------------------------------------------------------------------- the CLI


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} must be at least 1")
    return n


def _seconds(text: str) -> int:
    try:
        x = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if x < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1 second")
    return x


def cmd_run(args: argparse.Namespace) -> int:
    result = run_grid(
        args.grid,
        workers=args.workers,
        only=args.only,
        resume=args.resume,
        dask=args.dask,
        timeout=args.timeout,
        out_dir=args.out,
        progress=not args.quiet,
    )
    print(result.summary())
    return result.exit_code


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``analysis run`` on the CLI's subparsers; returns the new parser."""
    p = subparsers.add_parser(
        "run",
        help="execute a grid of notebooks x parameters with papermill (default notebooks/runs.yaml)",
        description="Execute every run of a grid file in parallel; outputs, manifest and lock "
        "in the output folder (default reports/). Exit status 1 when a run failed.",
    )
    p.add_argument(
        "grid",
        nargs="?",
        type=Path,
        default=None,
        help="the grid file (default notebooks/runs.yaml)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="parallel runs (default: the CPU count; on Dask, the cluster's threads)",
    )
    p.add_argument(
        "--only",
        metavar="PATTERN",
        help="only the runs whose id or name matches (a glob, or a substring)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="run only the runs that failed, are missing or are out of date",
    )
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="submit the runs to this Dask scheduler (e.g. tcp://host:8786)",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"per-cell execution timeout in seconds (default {DEFAULT_TIMEOUT})",
    )
    p.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="output folder (default reports/)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-run lines")
    p.set_defaults(func=cmd_run)
    return p


__all__ = [
    "BatchLockedError",
    "BatchResult",
    "GridError",
    "Run",
    "RunResult",
    "add_cli",
    "data_checksums",
    "default_grid",
    "describe_failure",
    "execute_run",
    "list_notebooks",
    "load_grid",
    "notebook_parameters",
    "output_lock",
    "read_manifest",
    "run_grid",
    "run_id",
    "select_runs",
]
