"""Checksums of files: the sha256 that sidecars record and readers check."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks of `chunk` bytes.

    Parameters
    ----------
    path : the file.
    chunk : the read size, in bytes.

    Returns
    -------
    The 64-character lower-case hexadecimal digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
