"""The parquet cache: a stock zip or CSV is converted once to
``data/external/sirene-cache/<sha256 of the source>.parquet``, so that later runs scan parquet.

The source's sha256 is memoised in ``<cache>/index.json`` by path, size and modification
time. The parquet is written to a temporary file and renamed when complete: a failure (a
full disk, a truncated zip, a Latin-1 file) leaves the cache as it was.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from analysis.core.atomic import atomic_path, atomic_write_text, scratch_folder
from analysis.core.errors import DataError
from analysis.core.ict_sector import ICT_NAF_CODES
from analysis.data.register import engine
from analysis.data.register.sources import (
    Source,
    check_utf8_sample,
    inspect_source,
    parquet_schema,
)
from analysis.data.register.spec import (
    ACTIVE,
    CONVERT_MEMORY_LIMIT,
    CONVERT_ROW_GROUP_SIZE,
    COUNTED,
    ETABLISSEMENT,
    NAF_REV2,
    REASON_CODES,
    TableKind,
    cache_dir_default,
)


@dataclass(frozen=True)
class Converted:
    source: Path
    path: Path  # the parquet file to scan
    sha256: str | None
    cached: bool  # True when the cache already held it


def sha256_with_progress(path: Path, progress: bool | None = None, chunk: int = 1 << 22) -> str:
    from tqdm import tqdm

    h = hashlib.sha256()
    size = path.stat().st_size
    with (
        open(path, "rb") as f,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=f"sha256 {path.name}",
            disable=not engine.progress_default(progress),
            leave=False,
        ) as bar,
    ):
        while block := f.read(chunk):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


def _source_digest(path: Path, cache: Path, progress: bool | None) -> str:
    """The source's sha256, memoised in ``<cache>/index.json`` by path, size and mtime."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    index_path = cache / "index.json"
    index: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        index = json.loads(index_path.read_text(encoding="utf-8"))
    if isinstance(index, dict) and re.fullmatch(r"[0-9a-f]{64}", str(index.get(key, ""))):
        return index[key]
    digest = sha256_with_progress(path, progress)
    index = index if isinstance(index, dict) else {}
    index[key] = digest
    with contextlib.suppress(OSError):
        atomic_write_text(index_path, json.dumps(index, indent=1, sort_keys=True) + "\n")
    return digest


def _parquet_ok(path: Path) -> bool:
    try:
        parquet_schema(path)
    except DataError:
        return False
    return True


def convert(
    path: Path | str,
    cache_dir: Path | str | None = None,
    *,
    table: TableKind | None = None,
    progress: bool | None = None,
) -> Converted:
    """Convert a stock zip or CSV once to ``<cache_dir>/<sha256 of the source>.parquet``.

    Every column is kept, as VARCHAR (a faithful copy of the CSV). A StockEtablissement file
    gets three derived columns, :data:`DERIVED_ICT` (the activity is in the ICT sector),
    :data:`DERIVED_DATE` (the creation date as a DATE, NULL when invalid) and
    :data:`DERIVED_KIND` (the rules that do not depend on the date), and its ICT rows
    are written first: a count then reads the commune code and the date of those row groups
    only (:mod:`analysis.data.register.counts`). The parquet is written to a temporary file
    and renamed when complete, so a failure (a full disk, a truncated zip, a Latin-1 file, an
    interruption) leaves the cache as it was. A parquet source is returned as it is.
    """
    src = inspect_source(path, table)
    if src.kind == "parquet":
        return Converted(src.path, src.path, None, cached=False)
    cache = Path(cache_dir) if cache_dir else cache_dir_default()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise engine.os_error(e, f"{cache}: cannot create the cache folder") from None
    digest = _source_digest(src.path, cache, progress)
    target = cache / f"{digest}.parquet"
    if target.is_file() and _parquet_ok(target):
        return Converted(src.path, target, digest, cached=True)
    where = src.where
    try:
        with scratch_folder(".convert-", cache) as tmp:
            csv_src = src
            if src.kind == "zip":
                extracted = tmp / Path(src.member or "stock.csv").name
                _extract_member(src, extracted, progress)
                check_utf8_sample(extracted, where)
                csv_src = Source(extracted, "csv", src.table, src.columns, delimiter=src.delimiter)
            meta = {
                "source_file": src.path.name + (f"!{src.member}" if src.member else ""),
                "source_sha256": digest,
                "converted_by": "analysis.data.register.cache.convert (DuckDB COPY, all columns VARCHAR)",
                "table": src.table.name,
            }
            kv = ", ".join(f"{engine.ident(k)}: {engine.sql_str(v)}" for k, v in meta.items())
            with (
                atomic_path(target) as out,
                engine.connect(tmp, CONVERT_MEMORY_LIMIT) as con,
            ):
                con.execute("SET preserve_insertion_order = true")  # the ICT rows come first
                sql = (
                    f"COPY ({_rows_sql(csv_src)}) TO {engine.sql_str(out)} "
                    f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {CONVERT_ROW_GROUP_SIZE}, "
                    f"KV_METADATA {{{kv}}})"
                )
                _write_parquet(con, sql, where, progress, target)
    except OSError as e:
        raise engine.os_error(e, f"{target}: converting {where}") from None
    return Converted(src.path, target, digest, cached=False)


#: Derived columns of a cached StockEtablissement (their names mark them as the package's).
DERIVED_ICT = "_analysis_ict"
DERIVED_DATE = "_analysis_creation_date"
#: The reason code (:data:`~analysis.data.register.spec.REASON_CODES`) of the rules that do
#: not depend on the date: ``inactive``, ``other_nomenclature``, ``not_ict``, and
#: ``counted`` for a candidate (active, NAFRev2, ICT). One small integer per row, so that a
#: count groups one byte-wide column instead of three text columns.
DERIVED_KIND = "_analysis_kind"


def kind_sql(ict: str) -> str:
    """SQL: the :data:`DERIVED_KIND` of a row, given `ict`, the ICT codes as an SQL list."""
    return (
        "(CASE "
        f"WHEN etatAdministratifEtablissement IS DISTINCT FROM '{ACTIVE}' "
        f"THEN {REASON_CODES['inactive']} "
        f"WHEN nomenclatureActivitePrincipaleEtablissement IS DISTINCT FROM '{NAF_REV2}' "
        f"THEN {REASON_CODES['other_nomenclature']} "
        f"WHEN activitePrincipaleEtablissement IS NULL "
        f"OR activitePrincipaleEtablissement NOT IN ({ict}) THEN {REASON_CODES['not_ict']} "
        f"ELSE {REASON_CODES[COUNTED]} END)::UTINYINT"
    )


def _rows_sql(src: Source) -> str:
    """Every row of `src`; for StockEtablissement, with the derived columns, ICT rows first."""
    scan = engine.scan_sql(src)
    if src.table is not ETABLISSEMENT:
        return f"SELECT * FROM {scan}"
    ict = ", ".join(engine.sql_str(c) for c in ICT_NAF_CODES)
    date = engine.ident("dateCreationEtablissement")
    select = (
        f"SELECT *, activitePrincipaleEtablissement IN ({ict}) AS {DERIVED_ICT}, "
        f"CASE WHEN length({date}) = 10 THEN TRY_CAST({date} AS DATE) END AS {DERIVED_DATE}, "
        f"{kind_sql(ict)} AS {DERIVED_KIND} "
        f"FROM {scan}"
    )
    return (
        f"{select} WHERE activitePrincipaleEtablissement IN ({ict}) UNION ALL "
        f"{select} WHERE activitePrincipaleEtablissement IS NULL "
        f"OR activitePrincipaleEtablissement NOT IN ({ict})"
    )


def _write_parquet(
    con, sql: str, where: str, progress: bool | None, target: Path | None = None
) -> None:
    """Run the COPY ... TO parquet statement (a seam for the full-disk tests)."""
    engine.run(
        con,
        sql,
        None,
        where=where,
        desc="parquet",
        progress=engine.progress_default(progress),
        writing=target,
    )


def _extract_member(src: Source, dest: Path, progress: bool | None) -> None:
    """Stream the CSV member of a zip to `dest` (CRC checked at the end)."""
    from tqdm import tqdm

    where = f"{src.path} (zip member {src.member})"
    try:
        with zipfile.ZipFile(src.path) as zf:
            info = zf.getinfo(src.member or "")
            with (
                zf.open(info) as fin,
                open(dest, "wb") as fout,
                tqdm(
                    total=info.file_size,
                    unit="B",
                    unit_scale=True,
                    desc=f"unzip {Path(info.filename).name}",
                    disable=not engine.progress_default(progress),
                    leave=False,
                ) as bar,
            ):
                while block := fin.read(1 << 22):
                    _write_block(fout, block)
                    bar.update(len(block))
    except (zipfile.BadZipFile, EOFError, RuntimeError) as e:
        raise DataError(f"{where}: cannot be extracted, truncated or corrupt zip ({e})") from None
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise engine.os_error(
                e, f"{dest.parent.parent} (the cache, extracting {where})"
            ) from None
        raise DataError(f"{where}: cannot be extracted, truncated or corrupt zip ({e})") from None


def _write_block(f: io.BufferedWriter, block: bytes) -> None:
    f.write(block)


def scannable(
    path: Path | str,
    table: TableKind,
    cache_dir: Path | str | None,
    progress: bool | None,
) -> tuple[Source, Source]:
    """(the source as given, the source DuckDB scans): a zip becomes its cached parquet."""
    src = inspect_source(path, table)
    if src.kind != "zip":
        return src, src
    conv = convert(src.path, cache_dir, table=table, progress=progress)
    return src, inspect_source(conv.path, table)
