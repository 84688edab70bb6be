"""Atomic writes: a failed step never leaves a half-written file, nor a broken pair.

Each output is written to a temporary file beside its target and renamed onto it only once
complete. Files that belong together (a table and its sidecar) are all written to their
temporary files first and renamed only when every one of them is complete: a full disk or
an interruption while writing leaves the previous files, all of them, as they were.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path


def _temporary_beside(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual mode
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only on success.

    On any exception (an interruption included) the temporary file is removed and `target`
    is left as it was.
    """
    target = Path(target)
    tmp_path = _temporary_beside(target)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_files(files: Mapping[Path, str | bytes]) -> None:
    """Write several files that belong together: all complete, or none replaced.

    Every temporary file is written (text as UTF-8 with LF newlines) before the first rename;
    the renames themselves need no disk space. The sidecar of a table goes last, so that a
    reader who sees a new sidecar sees the new table too.
    """
    temps: list[tuple[Path, Path]] = []
    try:
        for target, content in files.items():
            tmp = _temporary_beside(Path(target))
            temps.append((tmp, Path(target)))
            if isinstance(content, bytes):
                tmp.write_bytes(content)
            else:
                tmp.write_text(content, encoding="utf-8", newline="\n")
        for tmp, target in sorted(temps, key=lambda t: t[1].name.endswith(".meta.yaml")):
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(target: Path, text: str) -> None:
    """Write `text` (UTF-8, LF newlines) to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
