"""Caches that notice when a file changes.

A researcher who edits a data file in JupyterLab must see the new value on the next call,
without restarting the kernel. :func:`cached_on_files` memoises a function on its arguments
*and* on the fingerprint (path, size, modification time in nanoseconds) of the files it
reads, so an edited, added or removed file is a cache miss. :func:`reload` empties every
such cache (``analysis.reload()``). :class:`ContentCache` keeps values keyed on a file's
content instead, for work that depends on the bytes and not on where they are, and
:class:`DiskCache` keeps such values across processes, in the user's cache folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import marshal
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

Fingerprint = tuple[tuple[str, int, int], ...]
_CACHES: list[Any] = []  # objects with a cache_clear() method


def fingerprint(files: Iterable[Path | str]) -> Fingerprint:
    """``(path, size, mtime_ns)`` of each file, sorted; ``(path, -1, -1)`` for a missing one."""
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append((str(f), st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((str(f), -1, -1))
    return tuple(sorted(out))


def cached_on_files(
    files: Callable[..., Iterable[Path | str]], maxsize: int = 16
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Memoise a function of hashable arguments on those arguments and on the fingerprint of
    ``files(*args, **kwargs)``, the files it reads.

    The fingerprint is each file's ``(path, size, mtime_ns)``, so an edited file is read
    again; :func:`reload` forgets every cache. Callers receive the cached object itself:
    return immutable values, or copy.

    Parameters
    ----------
    files : callable
        Called with the decorated function's arguments; returns the paths it reads.
    maxsize : int, default 16
        Entries kept (least recently used dropped first).

    Returns
    -------
    callable
        A decorator; the decorated function has a ``cache_clear()`` method.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.lru_cache(maxsize=maxsize)
        def keyed(_key: Fingerprint, args: tuple, kwargs: tuple) -> R:
            return func(*args, **dict(kwargs))

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            key = fingerprint(files(*args, **kwargs))
            return keyed(key, args, tuple(sorted(kwargs.items())))

        _CACHES.append(keyed)
        wrapper.cache_clear = keyed.cache_clear  # type: ignore[attr-defined]
        return wrapper

    return decorate


def reload() -> None:
    """Forget every cached table, so that the next call reads the files again."""
    for c in _CACHES:
        c.cache_clear()


class ContentCache:
    """A bounded least-recently-used map from (sha256 of a text, extra hashable key) to a value.

    Keyed on the content, so it is never stale and a copy of the same file elsewhere (a test's
    private copy of ``data/``) is a hit. Callers store values they never mutate, or copies.
    :func:`reload` empties it too.

    Parameters
    ----------
    maxsize : int
        Entries kept (least recently used dropped first).
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        _CACHES.append(self)

    @staticmethod
    def key(text: str, extra: object) -> tuple:
        """The key of `text` (by its sha256) and `extra`."""
        return (hashlib.sha256(text.encode("utf-8")).digest(), extra)

    def get(self, key: tuple) -> object | None:
        """The value stored under `key`, or None."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: tuple, value: object) -> None:
        """Store `value` under `key`, dropping the least recently used beyond `maxsize`."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def cache_clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._items.clear()


class DiskCache:
    """Plain values (str, int, tuple, list, dict of those) kept on disk between processes,
    keyed on the content they were computed from.

    A key is the sha256 of its parts: the checksums of the files read and the version of the
    code that read them, so an entry is never stale, and one that cannot be read (truncated,
    written by another Python, edited) is a miss. Values are stored with :mod:`marshal`, the
    format of Python's own bytecode cache: it loads in milliseconds and runs no code.
    Writing is best-effort and atomic (a temporary file renamed): a cache folder that cannot
    be created or written only costs the time to compute the value again. The folder is
    :func:`analysis.core.paths.user_cache_dir`; `$ANALYSIS_CACHE_DIR` moves it or turns it off.

    Parameters
    ----------
    namespace : str
        The subfolder of the cache folder.
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    @staticmethod
    def key(*parts: str) -> str:
        """The sha256 of `parts`, each ended by a newline."""
        h = hashlib.sha256()
        for part in parts:
            h.update(part.encode("utf-8") + b"\n")
        return h.hexdigest()

    def _file(self, key: str) -> Path | None:
        from analysis.core.paths import user_cache_dir

        base = user_cache_dir()
        tag = f"py{sys.version_info[0]}{sys.version_info[1]}"  # marshal's format may change
        return None if base is None else base / self.namespace / f"{key}.{tag}.marshal"

    def get(self, key: str) -> object | None:
        """The value stored under `key`, or None when there is none or it cannot be read."""
        path = self._file(key)
        if path is None:
            return None
        try:
            data = path.read_bytes()
            return marshal.loads(data)
        except (OSError, EOFError, ValueError, TypeError):
            return None

    def put(self, key: str, value: object) -> None:
        """Store `value` under `key`, if the cache folder can be written."""
        from analysis.core.atomic import atomic_write_bytes

        path = self._file(key)
        if path is not None:
            with contextlib.suppress(OSError, ValueError):
                atomic_write_bytes(path, marshal.dumps(value))

    def get_or_compute(
        self, parts: tuple[str, ...], compute: Callable[[], R], valid: Callable[[object], bool]
    ) -> R:
        """The value stored under the key of `parts` when `valid` accepts it, else
        ``compute()``, stored for next time (an exception is never stored).

        Parameters
        ----------
        parts : tuple of str
            What the value depends on (:meth:`key`).
        compute : callable
            Computes the value.
        valid : callable
            Whether a stored object has the value's shape.

        Returns
        -------
        object
            The value.
        """
        key = self.key(*parts)
        hit = self.get(key)
        if hit is not None and valid(hit):
            return hit  # type: ignore[return-value]
        value = compute()
        self.put(key, value)
        return value
