"""Atomic writes: a failed step never leaves a half-written file, nor a broken pair.

Each output is written to a temporary file beside its target and renamed onto it only once
complete. Files that belong together (a table and its sidecar) are replaced as one
transaction (:func:`atomic_write_files`): all written in full first, then renamed with
SIGINT and SIGTERM held, each previous version kept until the last rename succeeded and put
back if any fails. A full disk, a failed rename or an interruption leaves the previous
files, all of them, as they were. An error names the output file, not its temporary.
Temporary folders (:func:`scratch_folder`, :func:`remove_tree`) are removed whole, an
interruption included.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from analysis.core.errors import DataError


def _temporary_beside(target: Path) -> Path:
    """A new empty temporary file beside `target`. Made with SIGINT and SIGTERM held, and
    removed if one arrives meanwhile: an interruption never leaves it behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with _signals_held():
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual mode
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
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
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        if e.filename in (None, str(tmp_path)):  # a full disk: name the output, not the temp
            raise OSError(e.errno, e.strerror or str(e), str(target)) from None
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _write_temp(target: Path, content: str | bytes) -> Path:
    """`content` in a new temporary file beside `target`; an OSError names `target`."""
    tmp = _temporary_beside(target)
    try:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8", newline="\n")
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror or str(e), str(target)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the length of the block, then deliver them (none is lost).

    The signals are blocked for this thread (``pthread_sigmask``) and, in the main thread,
    their Python handlers are swapped for one that only records them: a signal that another
    thread receives still runs its handler in the main thread. On exit the handlers are put
    back and each recorded signal is raised again.
    """
    held = (signal.SIGINT, signal.SIGTERM)
    got: list[int] = []
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in held}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending signal is recorded now
        for s, handler in handlers.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(got):
            signal.raise_signal(signum)


def remove_tree(path: Path | str) -> None:
    """Remove the folder `path` whole: SIGINT and SIGTERM wait until it is gone.

    A signal that lands during ``shutil.rmtree`` would otherwise stop it half-way and leave
    part of the folder behind; held (:func:`_signals_held`), it is delivered once the folder
    is gone. A folder already gone is not an error.
    """
    with _signals_held():
        shutil.rmtree(path, ignore_errors=True)


def make_scratch_folder(prefix: str, parent: Path | str | None = None) -> Path:
    """A new temporary folder (in `parent`, or the system's), for the caller to remove with
    :func:`remove_tree`. Made with SIGINT and SIGTERM held: one that arrives meanwhile
    removes it again before it is delivered."""
    path = None
    try:
        with _signals_held():
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    except BaseException:
        if path is not None:
            remove_tree(path)
        raise
    return path


def replace_folder(new: Path, target: Path) -> None:
    """Put the folder `new` in the place of the folder `target`, by two renames made with
    SIGINT and SIGTERM held (`target` is never missing, and a failed rename puts the old
    folder back); the old folder is removed after, whole."""
    old = None
    try:
        with _signals_held():
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
                old.rmdir()
                target.rename(old)
            try:
                new.rename(target)
            except BaseException:
                if old is not None:
                    old.rename(target)
                    old = None
                raise
    finally:
        if old is not None:
            remove_tree(old)


@contextlib.contextmanager
def scratch_folder(prefix: str, parent: Path | str | None = None) -> Iterator[Path]:
    """A new temporary folder for the block (in `parent`, or the system's), removed on every
    way out, an interruption included, by :func:`remove_tree`.

    Use it instead of :class:`tempfile.TemporaryDirectory`, whose clean-up a signal can
    stop half-way.
    """
    path = None
    try:
        with _signals_held():
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        yield path
    finally:
        if path is not None:
            remove_tree(path)


def _backup_of(target: Path) -> Path | None:
    """A hard link to the current `target` (its previous content), or None if it is new."""
    if not os.path.lexists(target):
        return None
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".bak", dir=target.parent)
    os.close(fd)
    backup = Path(name)
    try:
        backup.unlink()
        os.link(target, backup, follow_symlinks=False)
    except OSError:  # no hard links here: a copy keeps the previous content just as well
        try:
            shutil.copy2(target, backup, follow_symlinks=False)
        except BaseException:
            backup.unlink(missing_ok=True)
            raise
    return backup


def _replace_all(pairs: list[tuple[Path, Path]]) -> None:
    """Rename each temporary file onto its target; on any failure put every target back."""
    done: list[tuple[Path, Path | None]] = []  # (target, its backup or None if it was new)
    try:
        for tmp, target in pairs:
            backup = _backup_of(target)
            done.append((target, backup))
            os.replace(tmp, target)
    except BaseException:
        stuck = []
        for target, backup in reversed(done):
            try:
                if backup is None:
                    target.unlink(missing_ok=True)
                else:
                    os.replace(backup, target)
                    # a rename onto the same file (the target was never replaced) does nothing
                    backup.unlink(missing_ok=True)
            except OSError:
                stuck.append(f"{target} (previous version kept as {backup})")
        if stuck:
            raise DataError(
                "the files written together could not all be put back after a failed "
                f"replace: {'; '.join(stuck)}"
            ) from None
        raise
    for _, backup in done:
        if backup is not None:
            with contextlib.suppress(OSError):
                backup.unlink()


def atomic_write_files(files: Mapping[Path, str | bytes]) -> None:
    """Write several files that belong together: all replaced, or none.

    1. Every target is checked (none may be an existing folder) and every temporary file is
       written in full (text as UTF-8 with LF newlines): a full disk stops here, with no
       target touched.
    2. The renames run with SIGINT and SIGTERM held (they are delivered once the block is
       over), each target's previous version kept as a hard link. If any rename fails, every
       target already replaced gets its previous version back (or is removed if it is new):
       the files are the old set or the new set, never a mix. The sidecar of a table goes
       last, so that a reader who sees a new sidecar sees the new table too.

    Raises OSError naming the file that could not be written (nothing replaced), or
    DataError naming the files that could not be put back (which should never happen: a
    rename back onto a name just freed needs no space).
    """
    contents = [(Path(t), c) for t, c in files.items()]
    for target, _ in contents:
        if target.is_dir():
            raise DataError(f"{target}: is a folder; nothing was written")
    temps: list[tuple[Path, Path]] = []
    try:
        for target, content in contents:
            temps.append((_write_temp(target, content), target))
        temps.sort(key=lambda t: t[1].name.endswith(".meta.yaml"))
        with _signals_held():
            _replace_all(temps)
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


def atomic_write_text(target: Path, text: str) -> None:
    """Write `text` (UTF-8, LF newlines) to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
