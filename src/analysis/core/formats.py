"""What a file is, by its first bytes: so that a wrong file is named for what it is.

A gzip archive is not "not UTF-8", and a text file named ``.parquet`` is not a parquet file
with "missing columns": :func:`sniff` recognises the usual formats by their magic bytes.
"""

from __future__ import annotations

from pathlib import Path

#: (magic bytes at offset 0, format name), longest first where they share a prefix.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PAR1", "parquet"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip (empty)"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"(\xb5/\xfd", "zstd"),
    (b"%PDF", "PDF"),
    (b"\xd0\xcf\x11\xe0", "OLE2 (old Excel or Word)"),
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"SQLite format 3", "SQLite database"),
)


def sniff(head: bytes) -> str | None:
    """The format `head` (a file's first bytes) announces, or None for plain text or unknown."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "HTML page"
    if text.startswith(b"<?xml"):
        return "XML document"
    return None


def sniff_file(path: Path | str, n: int = 64) -> str | None:
    """:func:`sniff` on the first `n` bytes of a file (None if it cannot be read).

    Parameters
    ----------
    path : pathlib.Path or str
        The file.
    n : int, default 64
        Number of leading bytes read.

    Returns
    -------
    str or None
        The format its first bytes announce (e.g. ``gzip``, ``HTML page``), or None for plain
        text, an unknown format or a file that cannot be read.
    """
    try:
        with open(path, "rb") as f:
            return sniff(f.read(n))
    except OSError:
        return None
