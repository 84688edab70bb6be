"""The environment files agree: pyproject pins == environment.yml pins, and the lock holds them."""

from __future__ import annotations

import re
import tomllib

import yaml

from analysis.core import paths as config

ROOT = config.project_root()


def _pyproject_pins() -> set[str]:
    d = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    deps = d["project"]["dependencies"] + d["project"]["optional-dependencies"]["dev"]
    return {x.lower() for x in deps}


def _environment_pins() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(x for x in env["dependencies"] if isinstance(x, dict) and "pip" in x)["pip"]
    return {x.lower() for x in pip if not x.startswith("-")}


def test_every_dependency_is_pinned_exactly():
    for dep in _pyproject_pins():
        assert re.fullmatch(r"[a-z0-9_.\-\[\]]+==[0-9][0-9a-z.\-+]*", dep), dep


def test_environment_yml_matches_pyproject():
    py, env = _pyproject_pins(), _environment_pins()
    assert py - env == set(), f"in pyproject.toml only: {sorted(py - env)}"
    assert env - py == set(), f"in environment.yml only: {sorted(env - py)}"


def test_lock_file_holds_the_same_pins():
    lock = {
        line.strip().lower()
        for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    missing = sorted(p for p in _pyproject_pins() if p.split("[")[0] not in lock)
    assert not missing, f"constraints.txt lacks or disagrees on: {missing}"


def test_python_version_floor_matches():
    d = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert d["project"]["requires-python"] == ">=3.11"
    assert "python=3.11" in env["dependencies"]
