"""The metadata beside every data file: ``<file>.meta.yaml``.

A raw file's sidecar records its origin (title, publisher, URL, dates, licence, citation),
its sha256 and the schema of its table; a derived table's sidecar records the inputs it was
built from. This module reads sidecars and nothing else; it does not import pandas, so the
register path can use it before any count exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from analysis.core.cache import cached_on_files
from analysis.core.checksums import sha256_file
from analysis.core.errors import ChecksumError, DataError, SidecarError
from analysis.core.formats import sniff

SIDECAR_SUFFIX = ".meta.yaml"
REQUIRED_SIDECAR_KEYS = (
    "source_id",
    "title",
    "publisher",
    "url",
    "date_published",
    "date_accessed",
    "licence",
    "citation",
    "sha256",
    "schema",
)


def sidecar_path(path: Path) -> Path:
    """``<file>.meta.yaml`` beside `path`."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_text_utf8(path: Path) -> str:
    """The file's text; a clear error if it is missing, empty or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    kind = sniff(data[:64])
    if kind is not None:
        raise DataError(f"{path}: a {kind} file, not a UTF-8 text table")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def load_mapping(meta_path: Path) -> dict:
    """A YAML file that must hold a mapping (a sidecar); one-line errors otherwise."""
    text = read_text_utf8(meta_path)
    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SidecarError(f"{meta_path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise SidecarError(f"{meta_path}: expected a mapping of keys, got {type(meta).__name__}")
    return meta


_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.I)


def read_sidecar(path: Path) -> dict:
    """The metadata of a data file, from its ``.meta.yaml`` sidecar, with every required key.

    The ``url`` must be an ``http(s)`` address (a ``javascript:`` or ``file:`` link would end
    up in the catalogue's links) and the ``sha256`` 64 hexadecimal digits.
    """
    meta_path = sidecar_path(Path(path))
    if not meta_path.is_file():
        raise SidecarError(f"{path}: no sidecar {meta_path.name} (each data file needs one)")
    meta = load_mapping(meta_path)
    missing = [k for k in REQUIRED_SIDECAR_KEYS if meta.get(k) in (None, "")]
    if missing:
        raise SidecarError(f"{meta_path}: missing key(s) {', '.join(missing)}")
    if not isinstance(meta["url"], str) or not _URL.match(meta["url"].strip()):
        raise SidecarError(f"{meta_path}: url {meta['url']!r} is not an http(s) address")
    if not re.fullmatch(r"[0-9a-f]{64}", str(meta["sha256"])):
        raise SidecarError(f"{meta_path}: sha256 {meta['sha256']!r} is not 64 hexadecimal digits")
    return meta


def _file_and_sidecar(path: str, what: str) -> list[Path]:
    return [Path(path), sidecar_path(Path(path))]


@cached_on_files(_file_and_sidecar, maxsize=512)
def _verified(path: str, what: str) -> str:
    meta_path = sidecar_path(Path(path))
    expected = load_mapping(meta_path).get("sha256") if meta_path.is_file() else None
    if not expected:
        raise SidecarError(f"{path}: no sha256 recorded in {meta_path.name}")
    actual = sha256_file(Path(path))
    if actual != expected:
        fix = (
            "rebuild it with `analysis data build`"
            if what == "derived"
            else "raw files are never edited: restore it (git checkout) or record the change"
        )
        raise ChecksumError(
            f"{path}: sha256 {actual[:12]}... differs from the one its sidecar records "
            f"({str(expected)[:12]}...); {fix}"
        )
    return actual


def verify_sha256(path: Path, what: str = "raw") -> str:
    """Check a file against the sha256 its sidecar records, before anyone uses it.

    Cached on the file's and the sidecar's size and modification time, so that a reader can
    call it every time: a file is hashed again only when it changes.
    """
    return _verified(str(path), what)
