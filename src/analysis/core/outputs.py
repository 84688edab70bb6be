"""Where outputs may go: never onto an input, onto another output, or into the data.

Every command checks all its outputs before any work starts. A file output is refused when
it resolves (symbolic links and hard links followed) to one of the command's inputs or an
input's companion file (its ``.meta.yaml`` sidecar, its ``.sha256``), to a committed
notebook or the default run grid (inputs of every run), to another output of the same
command, to an existing folder, or to a path inside a protected folder: ``data/raw/``
(immutable inputs), ``data/derived/`` (written only by ``analysis data build``) and
``notebooks/`` (the committed notebooks, rewritten in place only by ``analysis notebooks``).
A folder output is refused inside a protected folder, onto an existing file, or onto a file
the same command reads or writes. Errors name the option and say what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from analysis.core import paths
from analysis.core.errors import ParameterError


def protected_folders(data_dir: Path | str | None = None, notebooks: bool = True) -> list[Path]:
    """``raw/`` and ``derived/`` of the project's data folder, and of `data_dir` if given; with
    `notebooks`, the folder of the committed notebooks too (``analysis notebooks`` alone
    rewrites them, in place)."""
    folders = [paths.raw_dir(), paths.derived_dir()]
    if data_dir is not None:
        folders += [Path(data_dir) / "raw", Path(data_dir) / "derived"]
    if notebooks:
        folders.append(paths.notebooks_dir())
    return folders


#: The files written beside a data file that describe it; they are as much an input as it.
COMPANION_SUFFIXES = (".meta.yaml", ".sha256")


def with_companions(path: Path) -> list[Path]:
    """`path` and its companion files (:data:`COMPANION_SUFFIXES`)."""
    path = Path(path)
    return [path, *(path.with_name(path.name + suffix) for suffix in COMPANION_SUFFIXES)]


def committed_inputs() -> dict[str, Path]:
    """The committed notebooks and the default run grid: inputs of every run, never outputs."""
    folder = paths.notebooks_dir()
    found = {f"the committed notebook {p.name}": p for p in sorted(folder.glob("*.ipynb"))}
    found["the default run grid"] = folder / "runs.yaml"
    return found


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links too
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _check_protected(name: str, path: Path, protected: Iterable[Path]) -> None:
    for folder in protected:
        if _inside(path, folder):
            what = {
                "raw": "the immutable inputs, never written",
                "derived": "tables written only by `analysis data build`",
            }.get(folder.name, "the committed notebooks, rewritten only by `analysis notebooks`")
            raise ParameterError(
                f"{name}: {path} is inside {folder} ({what}); write the output elsewhere, "
                "e.g. under reports/"
            )


def check_files(
    outputs: Mapping[str, Path | None],
    inputs: Mapping[str, Path | None] | None = None,
    *,
    protected: Iterable[Path] = (),
) -> None:
    """Refuse file outputs that would overwrite an input, another output or protected data.

    Parameters
    ----------
    outputs : option name -> the file it writes (None: not written this time).
    inputs : option name -> a file the command reads.
    protected : folders no output may be written into (:func:`protected_folders`).
    """
    protected = list(protected)
    given_inputs: dict[str, Path] = {}
    for in_name, in_path in {**committed_inputs(), **(inputs or {})}.items():
        if in_path is None:
            continue
        main, *companions = with_companions(Path(in_path))
        given_inputs[in_name] = main
        for companion in companions:
            given_inputs[f"{in_name}'s companion {companion.name}"] = companion
    seen: dict[str, Path] = {}
    for name, value in outputs.items():
        if value is None:
            continue
        out = Path(value)
        if out.is_dir():
            raise ParameterError(f"{name}: {out} is a folder; give the name of a file to write")
        for in_name, in_path in given_inputs.items():
            if _same(out, in_path):
                raise ParameterError(
                    f"{name}: {out} is {_input_words(in_name)} of this command; writing it "
                    "would destroy it: choose another file"
                )
        for other_name, other in seen.items():
            if _same(out, other):
                raise ParameterError(
                    f"{name}: {out} is also {other_name}; give two different files"
                )
        _check_protected(name, out, protected)
        seen[name] = out


def _input_words(in_name: str) -> str:
    return in_name if in_name.startswith("the ") else f"the input {in_name}"


def check_folder(
    name: str,
    folder: Path | None,
    *,
    protected: Iterable[Path] = (),
    files: Mapping[str, Path | None] | None = None,
) -> None:
    """Refuse an output folder inside protected data, that is an existing file, or that is
    one of `files` (the command's other inputs and outputs, by option name)."""
    if folder is None:
        return
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"{name}: {folder} is a file; give a folder")
    for other_name, other in (files or {}).items():
        if other is not None and _same(folder, Path(other)):
            raise ParameterError(f"{name}: {folder} is also {other_name}; give a folder of its own")
    _check_protected(name, folder, protected)
