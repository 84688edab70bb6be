"""Download an official SIRENE stock file, resumably, with its checksum and sidecar."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from analysis.core.atomic import atomic_write_text
from analysis.core.errors import DataError, ParameterError
from analysis.data.register import engine
from analysis.data.register.cache import sha256_with_progress
from analysis.data.register.spec import (
    DEFAULT_FETCH_FILE,
    DEFAULT_URLS,
    SIRENE_DATASET_PAGE,
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


def fetch(
    url: str | None = None,
    dest: Path | str | None = None,
    *,
    name: str | None = None,
    progress: bool | None = None,
    timeout: float = 60.0,
    chunk: int = 1 << 20,
) -> Fetched:
    """Download an official file into `dest`, resuming an interrupted transfer.

    Bytes go to ``<name>.part``; a later call sends ``Range: bytes=<size of .part>-`` with
    ``If-Range`` (the ETag or Last-Modified seen first), appends the rest if the server answers
    206 and starts over if it answers 200 (the file changed, or no range support). The file is
    renamed to `name` only once complete; its sha256 is written beside it (``<name>.sha256``,
    ``sha256sum`` format, and ``<name>.meta.yaml``). Default: :data:`DEFAULT_FETCH_FILE` from
    :data:`DEFAULT_URLS`.
    """
    from tqdm import tqdm

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
    if name is None:
        name = next((k for k, v in DEFAULT_URLS.items() if v == url), None) or (
            Path(urllib.parse.unquote(parsed.path)).name or "download"
        )
    if "/" in name or name in (".", ".."):
        raise ParameterError(f"--name: {name!r} is not a file name")
    dest = Path(dest) if dest else download_dir_default()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise engine.os_error(e, f"{dest}: cannot create the download folder") from None
    target = dest / name
    part = dest / (name + ".part")
    pmeta_path = _part_meta_path(part)
    pmeta: dict = {}
    if part.is_file() and pmeta_path.is_file():
        with contextlib.suppress(ValueError, OSError):
            pmeta = json.loads(pmeta_path.read_text(encoding="utf-8"))
    if pmeta.get("url") != url:
        pmeta = {"url": url}
        part.unlink(missing_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "analysis-sirene-fetch/1 (+urllib)", "Accept-Encoding": "identity"}
    validator = pmeta.get("etag") or pmeta.get("last_modified")
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    req = urllib.request.Request(url, headers=headers)
    resumed_from = 0
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset and pmeta.get("total") == offset:
            resp = None  # the .part already holds the whole file
            resumed_from = offset
        else:
            raise DataError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"{url}: cannot connect ({reason})") from None
    if resp is not None:
        with resp:
            status = resp.status
            length = resp.headers.get("Content-Length")
            if status == 206:
                start, total = _content_range(resp.headers.get("Content-Range"), url)
                if start != offset:
                    raise DataError(f"{url}: the server resumed at byte {start}, expected {offset}")
                resumed_from = offset
                mode = "ab"
            elif status == 200:
                total = int(length) if length and length.isdigit() else None
                offset, mode = 0, "wb"
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
    digest = sha256_with_progress(part, progress)
    size = part.stat().st_size
    os.replace(part, target)
    pmeta_path.unlink(missing_ok=True)
    atomic_write_text(target.with_name(target.name + ".sha256"), f"{digest}  {target.name}\n")
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
    atomic_write_text(
        target.with_name(target.name + ".meta.yaml"),
        yaml.safe_dump(meta, sort_keys=False, allow_unicode=True),
    )
    return Fetched(target, digest, size, resumed_from, url)


def _content_range(value: str | None, url: str) -> tuple[int, int | None]:
    m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", value or "")
    if not m:
        raise DataError(f"{url}: HTTP 206 without a valid Content-Range ({value!r})")
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), total
