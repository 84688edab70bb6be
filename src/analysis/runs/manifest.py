"""The run manifest (``reports/manifest.json``): what ran, on which data, with what result.

One entry per run: notebook, parameters, status, duration, package version, the sha256 of
the source notebook and of the executed output, and the digest of the data files it read.
The data files' checksums are recorded once at the top. The manifest is rewritten
atomically as each run finishes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from analysis.core import paths
from analysis.core.atomic import atomic_write_text
from analysis.core.checksums import sha256_file
from analysis.core.errors import AnalysisError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"  # up to date (--resume): not executed again, earlier output reused
DONE_STATUSES = (STATUS_OK, STATUS_SKIPPED)


def now_utc() -> str:
    """The current time, UTC, to the second (``2026-12-02T19:02:18Z``)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def data_checksums(data_dir: Path | None = None) -> dict[str, str]:
    """sha256 of every file under data/raw and data/derived, keyed by path relative to the root.

    Fetched archives (``*.tgz``, inputs of ``make data``, never read by a notebook) and hidden
    files are left out.
    """
    data_dir = Path(data_dir) if data_dir is not None else paths.data_dir()
    root = data_dir.parent
    out: dict[str, str] = {}
    for sub in ("raw", "derived"):
        for p in sorted((data_dir / sub).rglob("*")):
            if p.is_file() and p.suffix != ".tgz" and not p.name.startswith("."):
                out[paths.posix_relative(p, root)] = sha256_file(p)
    return out


def digest(checksums: dict[str, str]) -> str:
    """One sha256 for a set of file checksums (``sha256sum`` lines, sorted by path)."""
    text = "".join(f"{sha}  {path}\n" for path, sha in sorted(checksums.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_manifest(out_dir: Path | None = None) -> dict:
    """The manifest of an output folder ({} when there is none)."""
    path = Path(out_dir or paths.reports_dir()) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise AnalysisError(f"{path}: not valid JSON ({e}); remove it to start afresh") from None
    return doc if isinstance(doc, dict) else {}


def write_manifest(out_dir: Path, doc: dict) -> Path:
    """Write `doc` as the manifest of `out_dir`, atomically.

    Parameters
    ----------
    out_dir : pathlib.Path
        The output folder.
    doc : dict
        The manifest, written as indented JSON with sorted keys.

    Returns
    -------
    pathlib.Path
        The manifest file, ``<out_dir>/<MANIFEST_NAME>``.
    """
    path = out_dir / MANIFEST_NAME
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def up_to_date(
    entry: dict | None, parameters: dict, nb_sha: str, data_sha: str, out_dir: Path
) -> bool:
    """Can a run be skipped (``--resume``)? Its earlier entry is ok, with the same parameters,
    notebook checksum and data digest, and its output is on disk with the recorded checksum.

    Parameters
    ----------
    entry : dict or None
        The run's entry in the previous manifest (None when it has none).
    parameters : dict
        The run's parameters in this batch.
    nb_sha : str
        sha256 of the notebook in this batch.
    data_sha : str
        Digest of the data files in this batch (:func:`digest` of :func:`data_checksums`).
    out_dir : pathlib.Path
        The output folder holding the executed notebook.

    Returns
    -------
    bool
        True only when every condition holds.
    """
    if not entry or entry.get("status") not in DONE_STATUSES:
        return False
    if entry.get("parameters") != parameters:
        return False
    if entry.get("notebook_sha256") != nb_sha or entry.get("data_sha256") != data_sha:
        return False
    output = entry.get("output")
    if not output or not (out_dir / output).is_file():
        return False
    return sha256_file(out_dir / output) == entry.get("output_sha256")
