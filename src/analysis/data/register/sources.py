"""Which stock file is this? Recognise a zip, CSV or parquet file and check its header.

:func:`inspect_source` reads only the header (and samples the bytes for UTF-8), never the
rows: errors name the file (and the zip member) and what is wrong, before any scan starts.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from analysis.core.errors import DataError
from analysis.core.formats import sniff_file
from analysis.data.register.spec import (
    ETABLISSEMENT,
    ETABLISSEMENT_COLUMNS,
    ETABLISSEMENT_COLUMNS_2019,
    TABLE_KINDS,
    TableKind,
)


@dataclass(frozen=True)
class Source:
    """A SIRENE stock file as found on disk: its form, header and (for a zip) CSV member."""

    path: Path
    kind: str  # "csv" | "zip" | "parquet"
    table: TableKind
    columns: tuple[str, ...]
    member: str | None = None
    delimiter: str = ","
    #: column -> DuckDB type name, for parquet (the official parquet may type its columns)
    types: tuple[tuple[str, str], ...] = ()

    @property
    def where(self) -> str:
        """The file, and its zip member, as error messages name them."""
        return f"{self.path}" + (f" (zip member {self.member})" if self.member else "")

    def type_of(self, column: str) -> str:
        return dict(self.types).get(column, "VARCHAR")

    @property
    def layout(self) -> str:
        own = {c for c in self.columns if not c.startswith("_analysis_")}  # the cache's additions
        n = len(own)
        if own == set(ETABLISSEMENT_COLUMNS):
            return f"{n} columns (current layout)"
        if own == set(ETABLISSEMENT_COLUMNS_2019):
            return f"{n} columns (2019 layout)"
        return f"{n} columns"


def _magic(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4)


def _check_exists(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    return path


def _not_utf8(where: str, offset: int, byte: int) -> DataError:
    return DataError(
        f"{where}: not UTF-8 (byte 0x{byte:02x} at offset {offset:,}; Latin-1/Windows-1252?); "
        "INSEE publishes the _utf8 files (StockEtablissement_utf8.zip/.csv/.parquet): "
        "download those"
    )


def _decode_header(line: bytes, where: str) -> str:
    line = line.removeprefix(codecs.BOM_UTF8).rstrip(b"\r\n")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(where, e.start, line[e.start]) from None


def _parse_header(text: str, where: str) -> tuple[tuple[str, ...], str]:
    if not text.strip():
        raise DataError(f"{where}: the first line (the header) is empty")
    delimiter = ";" if text.count(";") > text.count(",") else ","
    columns = tuple(c.strip() for c in next(csv.reader([text], delimiter=delimiter)))
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise DataError(f"{where}: duplicated column(s) in the header: {', '.join(dup)}")
    return columns, delimiter


def _read_first_line(f: io.BufferedIOBase, where: str, limit: int = 1 << 20) -> bytes:
    buf = b""
    while b"\n" not in buf and len(buf) < limit:
        block = f.read(65536)
        if not block:
            break
        buf += block
    if b"\n" not in buf and len(buf) >= limit:
        raise DataError(f"{where}: no line break in the first {limit:,} bytes; not a CSV file")
    return buf.split(b"\n", 1)[0]


#: Columns of the stock files published before 2019 (the "sirene" layout of the former
#: INSEE download service), recognised so that they are refused by name.
LEGACY_SIGNATURE = ("SIREN", "NIC", "L1_NORMALISEE")


def _check_columns(columns: Sequence[str], table: TableKind, where: str) -> None:
    missing = [c for c in table.required if c not in columns]
    if not missing:
        return
    if all(c in columns for c in LEGACY_SIGNATURE):
        raise DataError(
            f"{where}: the pre-2019 layout of the SIRENE files (SIREN;NIC;L1_NORMALISEE...), "
            "which this package does not read; use a StockEtablissement file of 2019 or later "
            "(`analysis sirene fetch`)"
        )
    other = next(
        (t for t in TABLE_KINDS if t is not table and t.signature in columns),
        None,
    )
    hint = f"; this looks like a {other.name} file, not {table.name}" if other else ""
    raise DataError(
        f"{where}: missing required column(s) {', '.join(missing)} of {table.name}{hint} "
        f"(found {len(columns)} columns)"
    )


def check_utf8_sample(path: Path, where: str | None = None, *, blocks: int = 16) -> None:
    """Check that the first MiB and `blocks` evenly spread 64 KiB blocks decode as UTF-8.

    A full check would read the whole file a second time; the counted columns are ASCII codes,
    so a stray byte elsewhere cannot change a count, while a Latin-1 file is caught here.
    """
    where = where or str(path)
    size = Path(path).stat().st_size
    spans = [(0, min(size, 1 << 20))]
    if size > 1 << 20:
        step = size // (blocks + 1)
        spans += [(step * (i + 1), 1 << 16) for i in range(blocks)]
    with open(path, "rb") as f:
        for start, length in spans:
            f.seek(start)
            _check_utf8_block(f.read(length), start, where, at_start=start == 0)


def _check_utf8_block(data: bytes, offset: int, where: str, *, at_start: bool) -> None:
    skip = 0
    if not at_start:  # a block may begin inside a multi-byte character
        while skip < min(3, len(data)) and 0x80 <= data[skip] <= 0xBF:
            skip += 1
    chunk = data[skip:]
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.reason == "unexpected end of data" and e.start >= len(chunk) - 3:
            return  # the block ends inside a multi-byte character
        raise _not_utf8(where, offset + skip + e.start, chunk[e.start]) from None


def inspect_source(path: Path | str, table: TableKind | None = ETABLISSEMENT) -> Source:
    """Identify a stock file (zip, CSV or parquet) and validate its header, without scanning it.

    `table` None accepts either StockEtablissement or StockUniteLegale (for :func:`convert`).
    Errors name the file (and zip member) and what is wrong.
    """
    path = _check_exists(Path(path))
    magic = _magic(path)
    kinds = TABLE_KINDS if table is None else (table,)
    kind = sniff_file(path)
    if kind == "parquet":
        return _inspect_parquet(path, kinds)
    if kind is not None and kind.startswith("zip"):
        return _inspect_zip(path, kinds)
    named = path.suffix.lower().lstrip(".")
    if kind is not None:
        raise DataError(
            f"{path}: a {kind} file, not a SIRENE stock file (a zip, a CSV or a parquet file)"
            + ("; decompress it first" if kind in ("gzip", "bzip2", "xz", "7z", "zstd") else "")
        )
    if named in ("parquet", "zip"):
        raise DataError(
            f"{path}: named .{named} but not a {named} file (it starts with {magic[:4]!r}, "
            "like a text file); rename it or download the file again"
        )
    where = str(path)
    with open(path, "rb") as f:
        columns, delimiter = _parse_header(_decode_header(_read_first_line(f, where), where), where)
    found = _pick_kind(columns, kinds, where)
    check_utf8_sample(path, where)
    return Source(path, "csv", found, columns, delimiter=delimiter)


def _pick_kind(columns: Sequence[str], kinds: Sequence[TableKind], where: str) -> TableKind:
    for k in kinds:
        if all(c in columns for c in k.required):
            return k
    _check_columns(columns, kinds[0], where)
    raise AssertionError  # pragma: no cover


def _inspect_zip(path: Path, kinds: Sequence[TableKind]) -> Source:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable zip file, truncated or corrupt ({e})") from None
    with zf:
        names = zf.namelist()
        csvs = [n for n in names if n.lower().endswith(".csv") and not n.endswith("/")]
        if not csvs:
            shown = ", ".join(names[:5]) or "none"
            raise DataError(f"{path}: the zip holds no CSV file (members: {shown})")
        member = _pick_member(csvs, kinds, path)
        where = f"{path} (zip member {member})"
        try:
            with zf.open(member) as f:
                first = _read_first_line(f, where)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
            raise DataError(f"{where}: cannot be read, truncated or corrupt zip ({e})") from None
        columns, delimiter = _parse_header(_decode_header(first, where), where)
        found = _pick_kind(columns, kinds, where)
    return Source(path, "zip", found, columns, member=member, delimiter=delimiter)


def _pick_member(csvs: list[str], kinds: Sequence[TableKind], path: Path | None = None) -> str:
    """The zip member holding the table: the one CSV named for it, or the zip's only CSV.
    Two candidates are refused, naming both: counting either would be a silent guess."""
    for rule in (
        lambda n, k: Path(n).name.startswith(k.name + "_"),
        lambda n, k: Path(n).name.startswith(k.name) and "Historique" not in n,
    ):
        for k in kinds:
            found = [n for n in csvs if rule(n, k)]
            if len(found) > 1:
                raise DataError(
                    f"{path}: the zip holds {len(found)} {k.name} CSV files "
                    f"({', '.join(found[:4])}); which one to count is ambiguous: keep one"
                )
            if found:
                return found[0]
    if len(csvs) > 1:
        raise DataError(
            f"{path}: the zip holds {len(csvs)} CSV files ({', '.join(csvs[:4])}) and none is "
            f"named {' or '.join(k.name for k in kinds)}; which one to count is ambiguous"
        )
    return csvs[0]


def parquet_schema(path: Path) -> tuple[tuple[str, str], ...]:
    """``(column, DuckDB type)`` of a parquet file, read from its footer by DuckDB."""
    import duckdb

    quoted = "'" + str(path).replace("'", "''") + "'"
    con = duckdb.connect()
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({quoted})").fetchall()
    except duckdb.Error as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"{path}: not a readable parquet file, truncated or corrupt ({detail})"
        ) from None
    finally:
        con.close()
    return tuple((str(r[0]), str(r[1])) for r in rows)


def _inspect_parquet(path: Path, kinds: Sequence[TableKind]) -> Source:
    types = parquet_schema(path)
    columns = tuple(name for name, _ in types)
    found = _pick_kind(columns, kinds, str(path))
    return Source(path, "parquet", found, columns, types=types)
