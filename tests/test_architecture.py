"""The house rules of the package: layers, one headline path, caches that notice changes,
and a command line that answers without importing the heavy libraries."""

from __future__ import annotations

import ast
import csv
import json
import marshal
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import analysis
from analysis.analyses import headline
from analysis.core import paths
from analysis.core.cache import DiskCache
from analysis.data import datasets
from analysis.data.register import lookup
from analysis.outputs.tables import TABLE_MIME

from .conftest import ROOT, reseal

HEAVY = ("pandas", "numpy", "duckdb", "seaborn", "statsmodels", "matplotlib", "scipy", "pyarrow")


def test_layers_and_no_cycles():
    """`lint-imports` (pyproject's contracts) fails on an upward import or an import cycle."""
    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 kept, 0 broken" in proc.stdout


def test_the_command_line_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from analysis.cli import build_parser\n"
        "build_parser().format_help()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _edit_first_value(path: Path, new: str) -> dict[str, str]:
    """Set the `value` of the table's first row to `new`; return that row as it was."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    first = dict(rows[0])
    rows[0]["value"] = new
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return first


def test_an_edited_data_file_is_read_again_without_restarting(data_copy):
    seed = data_copy / "raw" / "investinprovence-capitale-french-tech-2019" / "facts.csv"
    datasets.load_facts(data_copy)  # cached now
    first = _edit_first_value(seed, "12345")
    reseal(seed)  # a deliberate edit records the new checksum (an unrecorded one is refused)
    after = datasets.load_facts(data_copy)
    row = after[
        (after["source_id"] == seed.parent.name)
        & (after["indicator"] == first["indicator"])
        & (after["year"] == int(first["year"]))
    ]
    assert row["value"].tolist() == [12345.0]


def test_an_edited_derived_table_changes_the_register_lookup(data_copy):
    table = data_copy / "derived" / "territories.csv"
    geo = lookup.load_geography(2023, data_copy)
    assert geo.unit("13055", "territory") == "aix-marseille"
    text = table.read_text(encoding="utf-8")
    assert "\naix-marseille,label,2023,2026,200054807," in text
    text = text.replace(
        "\naix-marseille,label,2023,2026,200054807,", "\ntoulouse,label,2023,2026,200054807,"
    )
    table.write_text(text, encoding="utf-8")
    reseal(table)
    assert lookup.load_geography(2023, data_copy).unit("13055", "territory") == "toulouse"


def _geography_facts(geo: lookup.Geography) -> tuple:
    return (geo.geo_version, geo.codes, geo.territory_of_epci, geo.level_names)


def test_the_register_geography_is_kept_on_disk_by_content(data_copy, tmp_path, monkeypatch):
    """A parsed geography is kept in the user's cache folder, keyed on the derived tables'
    checksums: a new process loads it without parsing, and an edited table is parsed again."""
    monkeypatch.setenv("ANALYSIS_CACHE_DIR", str(tmp_path / "cache"))
    analysis.reload()
    assert lookup.geography_vintage(None, data_copy) == 2023
    parsed = lookup.load_geography(2023, data_copy, "label")
    kept = sorted((tmp_path / "cache" / "register-geography").glob("*.marshal"))
    assert len(kept) == 2  # the geography and the census vintages of the communes table
    real = lookup._parse_geography
    monkeypatch.setattr(lookup, "_parse_geography", lambda *a: pytest.fail("parsed again"))
    monkeypatch.setattr(lookup, "_parse_vintages", lambda *a: pytest.fail("parsed again"))
    analysis.reload()  # as a new process would: nothing in memory
    assert lookup.geography_vintage("2017-01-01", data_copy) == 2016
    assert _geography_facts(lookup.load_geography(2023, data_copy, "label")) == (
        _geography_facts(parsed)
    )
    table = data_copy / "derived" / "territories.csv"
    table.write_text(
        table.read_text("utf-8").replace(
            "\naix-marseille,label,2023,2026,200054807,", "\ntoulouse,label,2023,2026,200054807,"
        ),
        "utf-8",
    )
    reseal(table)
    monkeypatch.setattr(lookup, "_parse_geography", real)
    edited = lookup.load_geography(2023, data_copy, "label")
    assert edited.unit("13055", "territory") == "toulouse" != parsed.unit("13055", "territory")


@pytest.mark.parametrize("state", ["corrupt", "truncated", "off", "not_a_folder"])
def test_a_broken_or_missing_geography_cache_only_costs_time(
    data_copy, tmp_path, monkeypatch, state
):
    """A cache entry that cannot be read is parsed again and rewritten; a cache folder that
    is turned off or cannot be created changes nothing but the time."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ANALYSIS_CACHE_DIR", str(cache))
    analysis.reload()
    want = _geography_facts(lookup.load_geography(2016, data_copy, "core"))
    assert lookup.geography_vintage(None, data_copy) == 2023
    entries = sorted((cache / "register-geography").glob("*.marshal"))
    assert len(entries) == 2
    if state in ("corrupt", "truncated"):
        for e in entries:
            data = e.read_bytes()
            e.write_bytes(b"\x00garbage" if state == "corrupt" else data[: len(data) // 2])
    elif state == "off":
        shutil.rmtree(cache)
        monkeypatch.setenv("ANALYSIS_CACHE_DIR", "off")
    else:
        shutil.rmtree(cache)
        cache.write_text("a file where the cache folder should be\n")
    analysis.reload()
    assert _geography_facts(lookup.load_geography(2016, data_copy, "core")) == want
    assert lookup.geography_vintage(None, data_copy) == 2023
    if state in ("corrupt", "truncated"):  # rewritten whole
        assert [marshal.loads(e.read_bytes()) is not None for e in entries] == [True, True]
    elif state == "off":
        assert not cache.exists()
    else:
        assert cache.read_text() == "a file where the cache folder should be\n"


def test_the_user_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ANALYSIS_CACHE_DIR", str(tmp_path))
    assert paths.user_cache_dir() == tmp_path
    for off in ("", "off", " OFF "):
        monkeypatch.setenv("ANALYSIS_CACHE_DIR", off)
        assert paths.user_cache_dir() is None
    monkeypatch.delenv("ANALYSIS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.user_cache_dir() == tmp_path / "xdg" / "analysis"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.user_cache_dir() == tmp_path / "home" / ".cache" / "analysis"

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", no_home)
    assert paths.user_cache_dir() is None
    assert DiskCache.key("a", "b") != DiskCache.key("ab", "") != DiskCache.key("a\nb")


def test_reload_empties_every_cache(data_copy, monkeypatch):
    datasets.load_facts(data_copy)
    calls = []
    real = datasets._load_raw
    monkeypatch.setattr(datasets, "_load_raw", lambda *a: calls.append(a) or real(*a))
    datasets.load_facts(data_copy)
    assert calls == []  # cached
    analysis.reload()
    datasets.load_facts(data_copy)
    assert len(calls) == 1


def test_notebook_10_and_the_cli_share_one_headline(inputs):
    """The committed territory report shows the index rank that `analysis indicators` prints."""
    nb = json.loads((ROOT / "notebooks" / "10-territory-report.ipynb").read_text("utf-8"))
    cell = next(
        c
        for c in nb["cells"]
        if c["cell_type"] == "code" and "index-rank" in c["metadata"].get("tags", [])
    )
    table = next(o["data"][TABLE_MIME] for o in cell["outputs"] if TABLE_MIME in o.get("data", {}))
    row = dict(zip(table["columns"], table["data"][0], strict=True))
    h = headline.headline(inputs, "aix-marseille")
    ind = h.indicators.set_index("indicator").loc["ecosystem_index_median_rank"]
    assert (row["median_rank"], row["rank_low"], row["rank_high"]) == (
        ind["value"],
        ind["ci_low"],
        ind["ci_high"],
    )


def test_the_package_points_nowhere_outside_the_repository():
    for path in (ROOT / "src").rglob("*.py"):
        assert "../shared" not in path.read_text(encoding="utf-8"), path
    assert (ROOT / "docs" / "definitions.md").is_file()


def test_temporary_folders_come_from_core_atomic_only():
    """A temporary folder is made and removed by analysis.core.atomic (scratch_folder,
    remove_tree), whose removal a signal cannot stop half-way: no module calls
    TemporaryDirectory, mkdtemp or rmtree itself."""
    calls = {"TemporaryDirectory", "mkdtemp", "rmtree"}
    found = []
    for path in (ROOT / "src" / "analysis").rglob("*.py"):
        if path.relative_to(ROOT / "src" / "analysis").as_posix() == "core/atomic.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in calls:
                found.append(f"{path.name}:{node.lineno} {node.attr}")
            if isinstance(node, ast.ImportFrom) and any(a.name in calls for a in node.names):
                found.append(f"{path.name}:{node.lineno} import")
    assert found == []


def test_python_dash_m_runs_the_command():
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("analysis ")


#: Modules whose public functions are held to numpydoc `Parameters` / `Returns` sections.
DOCUMENTED_MODULES = (
    "src/analysis/outputs/sections.py",
    "src/analysis/methods/metrics.py",
    "src/analysis/methods/composite_index.py",
    "src/analysis/methods/series.py",
    "src/analysis/methods/coverage.py",
    "src/analysis/methods/models.py",
    "src/analysis/methods/label_effect.py",
    "src/analysis/methods/panels.py",
    "src/analysis/methods/synthetic_control.py",
    "src/analysis/analyses/headline.py",
    "src/analysis/analyses/density.py",
    "src/analysis/analyses/ecosystem.py",
    "src/analysis/analyses/investment.py",
    "src/analysis/analyses/label_cohorts.py",
    "src/analysis/analyses/perimeters.py",
    "src/analysis/data/geography.py",
    "src/analysis/data/register/lookup.py",
    "src/analysis/data/register/counts.py",
    "src/analysis/data/register/spec.py",
    "src/analysis/data/register/panel.py",
    "src/analysis/core/paths.py",
    "src/analysis/core/territories.py",
    "src/analysis/core/indicators.py",
    "src/analysis/core/cache.py",
    "src/analysis/core/processes.py",
    "src/analysis/core/formats.py",
    "src/analysis/runs/grid.py",
    "src/analysis/runs/manifest.py",
    "src/analysis/runs/lock.py",
    "src/analysis/runs/params.py",
    "src/analysis/runs/batch.py",
    "src/analysis/runs/inplace.py",
)


def _undocumented(path: Path) -> list[str]:
    """`module:function` for each public module-level function of two or more parameters
    (self and cls aside) whose docstring lacks a `Parameters` or a `Returns` section."""
    module = path.relative_to(ROOT / "src").with_suffix("").as_posix().replace("/", ".")
    missing = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        a = node.args
        names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
        names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
        if node.name.startswith("_") or len(set(names) - {"self", "cls"}) < 2:
            continue
        doc = ast.get_docstring(node) or ""
        if not all(f"{s}\n{'-' * len(s)}" in doc for s in ("Parameters", "Returns")):
            missing.append(f"{module}:{node.name}")
    return missing


def test_public_functions_document_their_parameters():
    missing = [m for rel in DOCUMENTED_MODULES for m in _undocumented(ROOT / rel)]
    assert not missing, "no numpydoc Parameters/Returns section: " + ", ".join(missing)
