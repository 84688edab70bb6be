"""Shared fixtures. Tests that break data work on a copy; the repository's data is never touched."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from analysis.core import paths as config
from analysis.core.checksums import sha256_file

ROOT = config.project_root()

# The register keeps parsed geographies in the user's cache folder between processes
# (analysis.core.cache.DiskCache): the tests, their subprocesses and kernels use a folder of
# their own, removed at the end, unless one is given.
if "ANALYSIS_CACHE_DIR" not in os.environ:
    os.environ["ANALYSIS_CACHE_DIR"] = tempfile.mkdtemp(prefix="analysis-test-cache-")
    atexit.register(shutil.rmtree, os.environ["ANALYSIS_CACHE_DIR"], ignore_errors=True)


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of data/ (raw and derived), for tests that corrupt it."""
    dst = tmp_path / "data"
    shutil.copytree(ROOT / "data", dst, ignore=shutil.ignore_patterns("*.tgz", "external"))
    return dst


@pytest.fixture(scope="session", autouse=True)
def repo_data_checksums() -> dict[str, bytes]:
    """The bytes of every committed data file at session start (to prove nothing changed them)."""
    return {
        str(p.relative_to(ROOT)): p.read_bytes()
        for p in sorted((ROOT / "data").rglob("*"))
        if p.is_file() and p.suffix != ".tgz"
    }


@pytest.fixture(scope="session")
def inputs():
    """The analyses' inputs from the committed data (read-only)."""
    from analysis.data.inputs import load_inputs

    return load_inputs()


def reseal(path: Path) -> None:
    """Record a changed data file's sha256 in its sidecar, as a deliberate edit would (an
    edit that is not recorded is refused by every reader)."""
    meta_path = path.with_name(path.name + ".meta.yaml")
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    meta["sha256"] = sha256_file(path)
    meta_path.write_text(yaml.safe_dump(meta, allow_unicode=True, sort_keys=False), "utf-8")
