"""The metadata beside every data file: ``<file>.meta.yaml``.

A raw file's sidecar records its origin (title, publisher, URL, dates, licence, citation),
its sha256 and the schema of its table; a derived table's sidecar records the inputs it was
built from. This module reads sidecars and nothing else; it does not import pandas, so the
register path can use it before any count exists.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from analysis.core.errors import DataError, SidecarError

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
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def read_sidecar(path: Path) -> dict:
    """The metadata of a data file, from its ``.meta.yaml`` sidecar, with every required key."""
    meta_path = sidecar_path(Path(path))
    if not meta_path.is_file():
        raise SidecarError(f"{path}: no sidecar {meta_path.name} (each data file needs one)")
    text = read_text_utf8(meta_path)
    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SidecarError(f"{meta_path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise SidecarError(f"{meta_path}: expected a mapping of keys, got {type(meta).__name__}")
    missing = [k for k in REQUIRED_SIDECAR_KEYS if meta.get(k) in (None, "")]
    if missing:
        raise SidecarError(f"{meta_path}: missing key(s) {', '.join(missing)}")
    return meta
