"""Caches that notice when a file changes.

A researcher who edits a data file in JupyterLab must see the new value on the next call,
without restarting the kernel. :func:`cached_on_files` memoises a function on its arguments
*and* on the fingerprint (path, size, modification time in nanoseconds) of the files it
reads, so an edited, added or removed file is a cache miss. :func:`reload` empties every
such cache (``analysis.reload()``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

Fingerprint = tuple[tuple[str, int, int], ...]
_CACHES: list[functools._lru_cache_wrapper] = []


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
