"""Download an official SIRENE stock file, resumably, with its checksum and sidecar."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from analysis.core.atomic import atomic_write_files, atomic_write_text
from analysis.core.errors import DataError, ParameterError
from analysis.core.formats import sniff
from analysis.core.outputs import check_files, protected_folders
from analysis.data.register import engine, sources
from analysis.data.register.cache import sha256_with_progress
from analysis.data.register.spec import (
    DEFAULT_FETCH_FILE,
    DEFAULT_URLS,
    ETABLISSEMENT,
    ETABLISSEMENT_COLUMNS_2019,
    SIRENE_DATASET_PAGE,
    TABLE_KINDS,
    UNITE_LEGALE_COLUMNS,
    TableKind,
    download_dir_default,
)

LICENCE = "Licence Ouverte / Open Licence 2.0 (Etalab)"
PUBLISHER = "INSEE (répertoire Sirene), via data.gouv.fr"


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    size: int
    resumed_from: int
    url: str


def _part_meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


class _StartOver(Exception):
    """The partial download cannot be resumed safely: discard it and start from byte 0."""


#: The names a download may have, each with the Content-Types a server may send for it
#: (``application/octet-stream`` is what file servers send for any binary). Anything else,
#: an HTML, JSON (``application/problem+json`` included) or plain-text answer, is an error
#: page, not the file. A missing Content-Type is left to the content checks.
_BINARY = frozenset({"application/octet-stream", "binary/octet-stream"})
FETCH_FORMATS: dict[str, frozenset[str]] = {
    ".csv.gz": _BINARY | {"application/gzip", "application/x-gzip"},
    ".zip": _BINARY | {"application/zip", "application/x-zip", "application/x-zip-compressed"},
    ".parquet": _BINARY
    | {"application/vnd.apache.parquet", "application/x-parquet", "application/parquet"},
    ".csv": _BINARY | {"text/csv", "application/csv", "text/plain"},
}


def fetch_format(name: str) -> str:
    """The format of a download by its name (``.zip``, ``.parquet``, ``.csv``, ``.csv.gz``);
    a ParameterError naming ``--name`` for an empty, hidden or path-like name or another
    suffix."""
    if not isinstance(name, str) or not name.strip():
        raise ParameterError("--name: empty; give a file name such as StockEtablissement_utf8.zip")
    if name != name.strip() or any(c in name for c in "/\\\x00") or name.startswith("."):
        raise ParameterError(
            f"--name: {name!r} is not a plain file name (no folder, no leading dot or space)"
        )
    for suffix in FETCH_FORMATS:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return suffix
    raise ParameterError(
        f"--name: {name!r} does not end with a suffix this command can check; the file must be "
        f"named {', '.join(FETCH_FORMATS)}"
    )


def _table_of(name: str) -> TableKind | None:
    """The register table a file's name announces (None: either)."""
    return next((t for t in TABLE_KINDS if name.startswith(t.name)), None)


def _full_header(table: TableKind) -> tuple[str, ...]:
    """Every column a published file of `table` has had since 2019 (later files add some)."""
    return ETABLISSEMENT_COLUMNS_2019 if table is ETABLISSEMENT else UNITE_LEGALE_COLUMNS


def _check_header(columns: Sequence[str], name: str) -> str | None:
    """Why `columns` is not the header row of the register file `name`, or None."""
    named = _table_of(name)
    lacking = {
        t.name: [c for c in _full_header(t) if c not in columns]
        for t in ([named] if named else TABLE_KINDS)
    }
    table, missing = min(lacking.items(), key=lambda kv: len(kv[1]))
    if not missing:
        return None
    shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    return (
        f"not a SIRENE CSV file (its header row lacks {len(missing)} of the columns of "
        f"{table}: {shown})"
    )


def _csv_header_problem(first_line: bytes, name: str) -> str | None:
    text = first_line.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
    try:
        line = text.decode("utf-8")
    except UnicodeDecodeError:
        return "not a SIRENE CSV file (its first line is not UTF-8 text)"
    delimiter = ";" if line.count(";") > line.count(",") else ","
    columns = [c.strip() for c in next(csv.reader([line], delimiter=delimiter), [])]
    return _check_header(columns, name)


def _content_problem(path: Path, name: str) -> str | None:
    """Why the downloaded bytes are not what `name` says, or None: the magic bytes, then the
    structure (a zip's directory and its CSV's header, a parquet footer and its columns, a
    CSV's header row, inside the gzip for ``.csv.gz``)."""
    fmt = fetch_format(name)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(1 << 16)
        f.seek(max(0, size - 4))
        tail = f.read(4)
    if fmt == ".zip":
        if not head.startswith(b"PK\x03\x04"):
            return "not a zip file"
        table = _table_of(name)
        try:
            found = sources.inspect_source(path, table)
        except DataError as e:
            return f"not a SIRENE stock zip ({str(e).removeprefix(str(path)).lstrip(': ')})"
        return _check_header(found.columns, found.table.name)
    if fmt == ".parquet":
        if not (head.startswith(b"PAR1") and tail == b"PAR1"):
            return "not a whole parquet file (PAR1 at both ends)"
        try:
            found = sources.inspect_source(path, _table_of(name))
        except DataError as e:
            return f"not a SIRENE parquet file ({str(e).removeprefix(str(path)).lstrip(': ')})"
        return _check_header(found.columns, found.table.name)
    if fmt == ".csv.gz":
        if not head.startswith(b"\x1f\x8b"):
            return "not a gzip file"
        try:
            with gzip.open(path, "rb") as g:
                first = g.read(1 << 20).split(b"\n", 1)[0]
        except (OSError, EOFError, zlib.error) as e:
            return f"not a readable gzip file ({e})"
        return _csv_header_problem(first, name)
    if sniff(head) is not None:
        return "not a SIRENE CSV file"
    return _csv_header_problem(head.split(b"\n", 1)[0], name)


def _check_content(path: Path, name: str, url: str) -> None:
    """The downloaded bytes are what the file's name says, else a DataError (the caller
    deletes them)."""
    problem = _content_problem(path, name)
    if problem:
        with open(path, "rb") as f:
            head = f.read(64)
        kind = sniff(head)
        seen = f"it starts like a {kind} file" if kind else f"it starts with {head[:8]!r}"
        raise DataError(f"{url}: the download is {problem} ({seen}); it was deleted")


def fetch(
    url: str | None = None,
    dest: Path | str | None = None,
    *,
    name: str | None = None,
    progress: bool | None = None,
    timeout: float = 60.0,
    chunk: int = 1 << 20,
) -> Fetched:
    """Download an official file into `dest`, resuming an interrupted transfer safely.

    Bytes go to ``<name>.part``. A later call resumes it only with a validator: it sends
    ``Range: bytes=<size of .part>-`` with ``If-Range`` (the ETag or Last-Modified of the first
    response) and appends the rest if the server answers 206 from that very byte; a ``.part``
    without a validator, larger than the file, or answered from another byte is discarded and
    the download starts from zero (once). `name` must end with ``.zip``, ``.parquet``,
    ``.csv`` or ``.csv.gz`` (checked before any network or disk work), and the response's
    Content-Type must be one of that format's (:data:`FETCH_FORMATS`): an HTML, JSON or
    plain-text error page is refused. Once complete, the file must be what its name says
    (:func:`_content_problem`: ``PK`` and a readable directory with the register's CSV for a
    zip, ``PAR1`` at both ends and the register's columns for a parquet, the register's
    whole header row for a CSV, inside the gzip for ``.csv.gz``), else it is deleted and
    nothing is recorded. The file is renamed to `name` only then; its sha256 is written beside
    it (``<name>.sha256``, ``sha256sum`` format) with a ``<name>.meta.yaml`` sidecar.
    Default: :data:`DEFAULT_FETCH_FILE` from :data:`DEFAULT_URLS`.
    """
    if url is None:
        name = name or DEFAULT_FETCH_FILE
        if name not in DEFAULT_URLS:
            raise ParameterError(
                f"--file: unknown official file {name!r}; choose from {', '.join(DEFAULT_URLS)}"
            )
        url = DEFAULT_URLS[name]
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ParameterError(f"--url: {url!r} is not an http(s) URL")
    from_url = name is None
    if name is None:
        name = next((k for k, v in DEFAULT_URLS.items() if v == url), None) or (
            Path(urllib.parse.unquote(parsed.path)).name
        )
        if not name:
            raise ParameterError(f"--url: {url!r} names no file; give one with --name")
    try:
        fetch_format(name)  # before any network or disk work
    except ParameterError as e:
        if from_url:
            raise ParameterError(
                f"{e} (the name was taken from --url; give one with --name)"
            ) from None
        raise
    dest = Path(dest) if dest else download_dir_default()
    target = dest / name
    written = {
        "the download": target,
        "its .part": dest / (name + ".part"),
        "its .part.json": dest / (name + ".part.json"),
        "its .sha256": target.with_name(target.name + ".sha256"),
        "its sidecar": target.with_name(target.name + ".meta.yaml"),
    }
    check_files(
        {f"--dest ({what})": p for what, p in written.items()}, protected=protected_folders()
    )
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise engine.os_error(e, f"{dest}: cannot create the download folder") from None
    part = dest / (name + ".part")
    try:
        pmeta, resumed_from = _transfer(url, name, part, progress, timeout, chunk)
    except _StartOver:
        _discard(part)
        pmeta, resumed_from = _transfer(url, name, part, progress, timeout, chunk)
    try:
        _check_content(part, name, url)
    except DataError:
        _discard(part)
        raise
    digest = sha256_with_progress(part, progress)
    size = part.stat().st_size
    os.replace(part, target)
    _part_meta_path(part).unlink(missing_ok=True)
    meta = {
        "title": f"SIRENE stock file {target.name}",
        "publisher": PUBLISHER,
        "url": url,
        "final_url": pmeta.get("final_url"),
        "etag": pmeta.get("etag"),
        "last_modified": pmeta.get("last_modified"),
        "date_accessed": dt.date.today().isoformat(),
        "licence": LICENCE,
        "dataset": SIRENE_DATASET_PAGE,
        "bytes": size,
        "sha256": digest,
    }
    atomic_write_files(
        {
            target.with_name(target.name + ".sha256"): f"{digest}  {target.name}\n",
            target.with_name(target.name + ".meta.yaml"): yaml.safe_dump(
                meta, sort_keys=False, allow_unicode=True
            ),
        }
    )
    return Fetched(target, digest, size, resumed_from, url)


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _part_meta_path(part).unlink(missing_ok=True)


def _transfer(
    url: str, name: str, part: Path, progress: bool | None, timeout: float, chunk: int
) -> tuple[dict, int]:
    """Fill `part` with the whole file: (what the first response said, byte resumed from)."""
    from tqdm import tqdm

    pmeta_path = _part_meta_path(part)
    pmeta: dict = {}
    if part.is_file() and pmeta_path.is_file():
        with contextlib.suppress(ValueError, OSError):
            pmeta = json.loads(pmeta_path.read_text(encoding="utf-8"))
    validator = pmeta.get("etag") or pmeta.get("last_modified") if isinstance(pmeta, dict) else None
    if not isinstance(pmeta, dict) or pmeta.get("url") != url or not validator:
        pmeta = {"url": url}  # nothing proves the .part is a prefix of this file
        _discard(part)
    offset = part.stat().st_size if part.is_file() else 0
    total = pmeta.get("total")
    if offset and isinstance(total, int) and offset > total:
        raise _StartOver
    headers = {"User-Agent": "analysis-sirene-fetch/1 (+urllib)", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        headers["If-Range"] = validator
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            if total == offset:
                return pmeta, offset  # the .part already holds the whole file
            raise _StartOver from None
        raise DataError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"{url}: cannot connect ({reason})") from None
    with resp:
        ctype = resp.headers.get_content_type() if resp.headers.get("Content-Type") else None
        if ctype is not None and ctype not in FETCH_FORMATS[fetch_format(name)]:
            raise DataError(
                f"{url}: the server sent a {ctype} page, not the file {name} (an error or "
                f"login page?); expected {', '.join(sorted(FETCH_FORMATS[fetch_format(name)]))}; "
                "nothing was saved"
            )
        status = resp.status
        length = resp.headers.get("Content-Length")
        if status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"), url)
            if start != offset:
                raise _StartOver
            resumed_from, mode = offset, "ab"
        elif status == 200:
            total = int(length) if length and length.isdigit() else None
            resumed_from, offset, mode = 0, 0, "wb"
            pmeta = {
                "url": url,
                "final_url": resp.geturl(),
                "etag": resp.headers.get("ETag"),
                "last_modified": resp.headers.get("Last-Modified"),
                "total": total,
            }
            atomic_write_text(pmeta_path, json.dumps(pmeta))
        else:
            raise DataError(f"{url}: unexpected HTTP status {status}")
        got = offset
        try:
            with (
                open(part, mode) as f,
                tqdm(
                    total=total,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    desc=name,
                    disable=not engine.progress_default(progress),
                ) as bar,
            ):
                while True:
                    block = resp.read(chunk)
                    if not block:
                        break
                    f.write(block)
                    got += len(block)
                    bar.update(len(block))
        except (http.client.IncompleteRead, ConnectionError, TimeoutError) as e:
            raise DataError(
                f"{url}: transfer interrupted after {got:,} of "
                f"{total if total is not None else '?'} bytes ({type(e).__name__}); "
                f"run the same command again to resume from {part}"
            ) from None
        except OSError as e:
            raise engine.os_error(e, f"{part}: writing the download") from None
        if total is not None and got != total:
            raise DataError(
                f"{url}: transfer interrupted after {got:,} of {total:,} bytes; "
                f"run the same command again to resume from {part}"
            )
    return pmeta, resumed_from


def _content_range(value: str | None, url: str) -> tuple[int, int | None]:
    m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", value or "")
    if not m:
        raise DataError(f"{url}: HTTP 206 without a valid Content-Range ({value!r})")
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), total
