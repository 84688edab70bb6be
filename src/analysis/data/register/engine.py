"""The DuckDB engine: a connection under a fixed memory limit, SQL quoting, the scan of a
source, and a query runner with a progress bar and clean interruption."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.core.atomic import scratch_folder
from analysis.core.errors import DataError
from analysis.data.register.sources import Source
from analysis.data.register.spec import MEMORY_LIMIT

if TYPE_CHECKING:  # duckdb is imported when a scan runs, not when the CLI is built
    import duckdb


def sql_str(text: str | Path) -> str:
    """`text` as an SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def ident(name: str) -> str:
    """`name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def scan_sql(src: Source) -> str:
    """The DuckDB table function reading `src` (CSV: no sniffing, every column VARCHAR)."""
    if src.kind == "parquet":
        return f"read_parquet({sql_str(src.path)})"
    if src.kind != "csv":
        raise AssertionError(f"{src.path}: a {src.kind} must be converted first")
    cols = ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in src.columns)
    return (
        f"read_csv({sql_str(src.path)}, header = true, auto_detect = false, "
        f"delim = {sql_str(src.delimiter)}, quote = '\"', escape = '\"', "
        f"columns = {{{cols}}})"
    )


# ----------------------------------------------------------------------------- DuckDB


@contextlib.contextmanager
def connect(
    workdir: Path | None = None, memory_limit: str = MEMORY_LIMIT
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with a memory limit, all cores and a private spill folder."""
    import duckdb

    with scratch_folder("sirene-duckdb-", workdir) as tmp:
        con = duckdb.connect(
            config={
                "memory_limit": memory_limit,
                "threads": os.cpu_count() or 1,
                "temp_directory": str(tmp),
                "preserve_insertion_order": False,
            }
        )
        try:
            # progress is tracked for the tqdm bar (run) but never printed by DuckDB itself.
            # Inside Jupyter DuckDB refuses the setting unless ipywidgets is installed; the
            # scan then simply runs without a bar.
            with contextlib.suppress(duckdb.Error):
                con.execute("SET enable_progress_bar_print = false")
                con.execute("SET enable_progress_bar = true")
            yield con
        finally:
            con.close()


#: Below this many free bytes where a file is being written, a failed write is a full disk
#: whatever DuckDB calls it (it reports a spill that found no room as "Out of Memory Error").
FULL_DISK_MARGIN = 64 * 2**20


def _disk_nearly_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path).free < FULL_DISK_MARGIN
    except OSError:
        return False


def engine_error(e: Exception, where: str, writing: Path | None = None) -> DataError:
    """A DuckDB error as a one-line DataError naming `where` (the file, and zip member).

    With `writing` (the output file of the statement): a write that failed for want of
    space (a "No space left", "File too large" or "Could not write" I/O error, or an "Out of
    Memory Error" while the output's disk is nearly full) names that file and says "no
    space left on device"."""
    msg = str(e)
    low = msg.lower()
    if writing is not None:
        full = any(k in low for k in ("no space left", "file too large", "could not write"))
        full |= "out of memory" in low and _disk_nearly_full(Path(writing).parent)
        if full:
            first = msg.splitlines()[0] if msg.strip() else type(e).__name__
            return DataError(
                f"{writing}: no space left on device while writing it from {where}; nothing "
                f"was kept ({first[:200]})"
            )
    if "unicode" in low or "utf-8" in low or "utf8" in low:
        return DataError(
            f"{where}: not UTF-8 ({msg.splitlines()[0]}); INSEE publishes the _utf8 files "
            "(StockEtablissement_utf8.zip/.csv/.parquet): download those"
        )
    if "no space left" in low or "file too large" in low or "disk" in low and "full" in low:
        return DataError(f"{where}: no space left on device ({msg.splitlines()[0]})")
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    detail = "; ".join(lines[:4])
    return DataError(f"{where}: cannot be read ({detail})")


def run(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list | None,
    *,
    where: str,
    desc: str,
    progress: bool | None,
    meanwhile: Callable[[], object] | None = None,
    writing: Path | None = None,
) -> list[tuple]:
    """Run `sql` in a worker thread while a tqdm bar follows DuckDB's progress (stderr, TTY only).

    `meanwhile` runs in this thread while DuckDB scans (DuckDB releases the GIL), to hide
    Python work such as loading the geography behind the scan. `writing` names the file the
    statement writes, for the error of a full disk (:func:`engine_error`).
    """
    out: dict[str, object] = {}
    done = threading.Event()

    def work() -> None:
        try:
            out["rows"] = con.execute(sql, params or []).fetchall()
        except BaseException as e:  # re-raised in the caller's thread
            out["error"] = e
        finally:
            done.set()

    def wait(step: float | None) -> None:
        # An Event, not Thread.join: a signal that interrupts join() leaves the thread marked
        # as stopped while DuckDB still runs in it (CPython bpo-45274), and the process then
        # aborts at exit ("terminate called ... FATAL").
        while not done.wait(step):
            if step is None:
                break

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        if meanwhile is not None:
            meanwhile()
        if not progress:
            wait(0.5)
        else:
            from tqdm import tqdm

            with tqdm(total=100, desc=desc, unit="%", leave=False) as bar:
                while not done.wait(0.1):
                    p = con.query_progress()
                    if p is not None and p >= 0:
                        bar.n = min(100.0, round(float(p), 1))
                        bar.refresh()
    except BaseException:  # an interruption, or `meanwhile` failed: stop DuckDB, then go
        con.interrupt()  # DuckDB stops the query through its API
        wait(0.1)
        raise
    worker.join()
    err = out.get("error")
    import duckdb

    if isinstance(err, duckdb.Error):
        raise engine_error(err, where, writing) from None
    if isinstance(err, OSError):
        raise os_error(err, where) from None
    if isinstance(err, BaseException):
        raise err
    return out["rows"]  # type: ignore[return-value]


def os_error(e: OSError, where: str) -> DataError:
    """An OSError as a one-line DataError; a full disk says "no space left on device"."""
    if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return DataError(f"{where}: no space left on device ({e.strerror or e}); nothing was kept")
    return DataError(f"{where}: {e.strerror or e}")


def progress_default(progress: bool | None) -> bool:
    """Progress bars by default only on a terminal."""
    return sys.stderr.isatty() if progress is None else progress
