"""`analysis run`: grid validation, parallel papermill runs, failure isolation, resume,
the manifest, the output lock and Dask. The notebooks are tiny fixtures (stdlib, pandas and
one matplotlib figure), never the project's own notebooks."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

import analysis
from analysis.cli import runs as cli_runs
from analysis.core.errors import AnalysisError
from analysis.runs import batch, book, lock, manifest, notebooks, worker
from analysis.runs import grid as grids

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
EVIL = "<script>alert(1)</script> & co"

# quick (aix-marseille), then a notebook that raises in its middle cell, then quick again
# with a name that must be escaped wherever it is shown.
GRID = f"""\
- notebook: quick.ipynb
  parameters: {{territory: aix-marseille}}
- notebook: fails.ipynb
- notebook: quick
  parameters:
    territory: {json.dumps(EVIL)}
"""
QUICK_AIX = "quick__territory=aix-marseille"
QUICK_EVIL = grids.run_id("quick", {"territory": EVIL})


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cli(argv: list[str]) -> int:
    """`analysis <argv>` as cli.main runs it: one error line and status 2 for user errors."""
    parser = argparse.ArgumentParser(prog="analysis")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_runs.add_cli(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AnalysisError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def make_project(root: Path, grid: str = GRID) -> Path:
    """A project root with the fixture notebooks, a grid and two small data files."""
    nbs = root / "notebooks"
    nbs.mkdir(parents=True)
    for p in FIXTURES.glob("*.ipynb"):
        shutil.copy(p, nbs / p.name)
    (nbs / "runs.yaml").write_text(grid, encoding="utf-8")
    (root / "data" / "raw" / "src").mkdir(parents=True)
    (root / "data" / "raw" / "src" / "facts.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (root / "data" / "raw" / "src" / "big.tgz").write_bytes(b"not read by notebooks")
    (root / "data" / "derived").mkdir(parents=True)
    (root / "data" / "derived" / "pop.csv").write_text("x\n3\n", encoding="utf-8")
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != lock.LOCK_NAME
    }


_BATCH: dict = {}


def executed_batch(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the 3-run grid once per session through the CLI handler."""
    if not _BATCH:
        root = make_project(tmp_path_factory.mktemp("batch") / "project")
        capture_out, capture_err = _capture(
            lambda: cli(["run", str(root / "notebooks" / "runs.yaml"), "--workers", "2"]), root
        )
        _BATCH.update(
            root=root,
            out=root / "reports",
            code=capture_out[0],
            stdout=capture_out[1],
            stderr=capture_err,
        )
    return _BATCH


def _capture(fn, root: Path):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANALYSIS_ROOT", str(root))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = fn()
    return (code, out.getvalue()), err.getvalue()


@pytest.fixture(scope="session")
def done(tmp_path_factory) -> dict:
    return executed_batch(tmp_path_factory)


@pytest.fixture
def project_copy(done, tmp_path, monkeypatch) -> Path:
    """A private copy of the executed project (for tests that rerun or lock it)."""
    root = tmp_path / "project"
    shutil.copytree(done["root"], root)
    monkeypatch.setenv("ANALYSIS_ROOT", str(root))
    return root


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    root = make_project(tmp_path / "project")
    monkeypatch.setenv("ANALYSIS_ROOT", str(root))
    return root


# --------------------------------------------------------------------------- the grid


def write_grid(project: Path, text: str) -> Path:
    path = project / "notebooks" / "runs.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_misspelt_notebook_is_named_with_the_list(project, capsys):
    grid = write_grid(project, "- notebook: quick.ipynb\n- notebook: quik.ipynb\n")
    assert cli(["run", str(grid)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "run 2 (line 2)" in err and "'quik.ipynb'" in err
    assert "did you mean 'quick.ipynb'" in err
    assert "the notebooks are: fails.ipynb, quick.ipynb" in err
    assert not (project / "reports").exists()  # nothing written


def test_misspelt_parameter_is_named_with_the_declared_ones(project):
    grid = write_grid(
        project, "- notebook: quick.ipynb\n  parameters: {teritory: bordeaux, n: 2}\n"
    )
    with pytest.raises(grids.GridError) as e:
        grids.load_grid(grid)
    msg = str(e.value)
    assert "run 1 (line 1)" in msg and "quick.ipynb has no parameter 'teritory'" in msg
    assert "did you mean 'territory'" in msg and "its parameters are: n, territory" in msg


def test_matrix_parameter_is_checked_too(project):
    grid = write_grid(project, "- notebook: fails.ipynb\n  matrix: {fial: [true, false]}\n")
    with pytest.raises(grids.GridError, match="fails.ipynb has no parameter 'fial'.*: fail$"):
        grids.load_grid(grid)


def test_duplicated_run_names_are_refused(project):
    grid = write_grid(
        project,
        "- notebook: quick.ipynb\n  name: report\n"
        "- notebook: quick.ipynb\n  name: report\n  parameters: {n: 5}\n",
    )
    with pytest.raises(grids.GridError, match=r"run 2 \(line 3\): duplicated run name 'report'"):
        grids.load_grid(grid)
    grid = write_grid(project, "- notebook: fails.ipynb\n- notebook: fails\n")
    with pytest.raises(
        grids.GridError,
        match=r"run 2 \(line 2\): repeats run 1 \(the same notebook with the same parameters, id 'fails'\)",
    ):
        grids.load_grid(grid)
    grid = write_grid(
        project, "- notebook: fails.ipynb\n  name: a/b\n- notebook: fails\n  name: a:b\n"
    )
    with pytest.raises(grids.GridError, match="run id 'a-b' is also the id of run 1"):
        grids.load_grid(grid)


def test_matrix_expands_to_one_run_per_value_with_safe_ids(project):
    grid = write_grid(
        project,
        "runs:\n"
        "  - notebook: quick.ipynb\n"
        "    parameters: {n: 4}\n"
        f"    matrix: {{territory: [bordeaux, lyon, {json.dumps(EVIL)}]}}\n"
        "  - notebook: quick.ipynb\n"
        "    matrix: {territory: [brest]}\n"
        "    name: 'report-{territory}'\n",
    )
    runs = grids.load_grid(grid)
    assert [r.id for r in runs] == [
        "quick__n=4__territory=bordeaux",
        "quick__n=4__territory=lyon",
        "quick__n=4__territory=script-alert-1-script-co",
        "report-brest",
    ]
    assert runs[2].parameters == {"n": 4, "territory": EVIL}
    assert runs[3].name == "report-brest" and runs[3].parameters == {"territory": "brest"}
    assert all(r.notebook == project / "notebooks" / "quick.ipynb" for r in runs)
    assert grids.select_runs(runs, "lyon") == [runs[1]]
    assert grids.select_runs(runs, "report-*") == [runs[3]]
    with pytest.raises(grids.GridError, match="--only 'paris' matches no run; the runs are"):
        grids.select_runs(runs, "paris")


def test_bad_yaml_names_the_line(project):
    grid = write_grid(project, "- notebook: quick.ipynb\n  parameters: {n: [1, 2}\n")
    with pytest.raises(grids.GridError, match=r"runs\.yaml, line 2, column \d+: not valid YAML"):
        grids.load_grid(grid)


def test_parameters_are_read_from_the_tagged_cell():
    assert notebooks.notebook_parameters(FIXTURES / "quick.ipynb") == ["n", "territory"]
    assert notebooks.notebook_parameters(FIXTURES / "fails.ipynb") == ["fail"]


# --------------------------------------------------------------------------- the batch


@pytest.mark.slow
def test_a_failing_run_does_not_stop_the_others(done):
    out = done["out"]
    assert done["code"] == 1  # non-zero: a run failed
    summary = done["stdout"]
    assert summary.startswith("3 runs: 2 ok, 1 failed, 0 skipped")
    # the summary names the failing cell (index, prompt, first line) and the error
    assert "FAILED fails\n  cell 3 (In [3]): if fail:\n  ValueError: boom in the middle" in summary
    assert "failed/fails.ipynb" in summary
    # the progress log has one line per state change, readable without a terminal
    log = done["stderr"]
    assert log.count("running  ") == 3 and "ok       " + QUICK_AIX in log
    assert "FAILED   fails" in log
    # the other runs completed, with their figure
    for rid in (QUICK_AIX, QUICK_EVIL):
        nb = json.loads((out / "notebooks" / f"{rid}.ipynb").read_text(encoding="utf-8"))
        outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
        assert any("image/png" in o.get("data", {}) for o in outputs)
    # the partially executed notebook of the failed run is kept, error included
    failed = json.loads((out / "failed" / "fails.ipynb").read_text(encoding="utf-8"))
    errors = [
        o for c in failed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"
    ]
    assert [(o["ename"], o["evalue"]) for o in errors] == [("ValueError", "boom in the middle")]
    last = failed["cells"][-1]
    assert "".join(last["source"]).startswith("y = 2") and last["execution_count"] is None
    assert not (out / "notebooks" / "fails.ipynb").exists()


@pytest.mark.slow
def test_executed_notebooks_hold_no_timestamps(done):
    for p in (done["out"] / "notebooks").glob("*.ipynb"):
        text = p.read_text(encoding="utf-8")
        for key in ('"start_time"', '"end_time"', '"duration"', '"iopub.status', "shell.execute"):
            assert key not in text, (p.name, key)
        meta = json.loads(text)["metadata"]["papermill"]
        assert meta["input_path"] == "notebooks/quick.ipynb"
        assert meta["output_path"] == f"reports/notebooks/{p.name}"


@pytest.mark.slow
def test_the_manifest_records_runs_version_and_checksums(done):
    out, root = done["out"], done["root"]
    text = (out / "manifest.json").read_text(encoding="utf-8")
    m = json.loads(text)
    assert text == json.dumps(m, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    assert m["analysis_version"] == analysis.__version__
    assert m["batch"]["grid"] == "notebooks/runs.yaml"
    assert m["batch"]["started_at"] <= m["batch"]["finished_at"]
    # every data file read from data/raw and data/derived, fetched archives left out
    assert m["data_files"] == {
        "data/derived/pop.csv": sha(root / "data/derived/pop.csv"),
        "data/raw/src/facts.csv": sha(root / "data/raw/src/facts.csv"),
    }
    runs = m["runs"]
    assert set(runs) == {QUICK_AIX, "fails", QUICK_EVIL}
    assert {k: r["status"] for k, r in runs.items()} == {
        QUICK_AIX: "ok",
        "fails": "failed",
        QUICK_EVIL: "ok",
    }
    assert runs[QUICK_AIX]["parameters"] == {"territory": "aix-marseille"}
    assert runs[QUICK_EVIL]["parameters"] == {"territory": EVIL}
    assert runs["fails"]["parameters"] == {}
    for rid, r in runs.items():
        assert r["analysis_version"] == analysis.__version__
        assert r["data_sha256"] == m["data_sha256"]
        assert r["notebook_sha256"] == sha(root / r["notebook"])
        assert r["output_sha256"] == sha(out / r["output"])
        assert r["duration_s"] > 0 and r["attempts"] >= 1
        assert r["id"] == rid
    assert runs[QUICK_AIX]["output"] == f"notebooks/{QUICK_AIX}.ipynb"
    assert runs["fails"]["output"] == "failed/fails.ipynb"
    assert runs["fails"]["error"] == {
        "cell_index": 3,
        "cell_source": "if fail:",
        "ename": "ValueError",
        "evalue": "boom in the middle",
        "execution_count": 3,
    }
    assert runs[QUICK_AIX]["error"] is None


@pytest.mark.slow
def test_resume_reruns_only_the_failed_and_the_missing(project_copy, capsys):
    out = project_copy / "reports"
    kept = out / "notebooks" / f"{QUICK_EVIL}.ipynb"
    kept_bytes = kept.read_bytes()
    aix = out / "notebooks" / f"{QUICK_AIX}.ipynb"
    aix_bytes = aix.read_bytes()
    aix.unlink()  # missing: must run again
    grid = project_copy / "notebooks" / "runs.yaml"
    result = batch.run_grid(grid, resume=True, workers=2)
    statuses = {r.run.id: r.status for r in result.results}
    assert statuses == {QUICK_AIX: "ok", "fails": "failed", QUICK_EVIL: "skipped"}
    assert result.exit_code == 1
    assert kept.read_bytes() == kept_bytes  # not executed again
    assert aix.read_bytes() == aix_bytes  # executed again: the same bytes (deterministic)
    m = manifest.read_manifest(out)
    assert m["runs"][QUICK_EVIL]["status"] == "skipped"
    assert m["runs"][QUICK_EVIL]["output_sha256"] == sha(kept)
    assert m["batch"]["resume"] is True
    assert "resume: 1 run(s) up to date, 2 to run" in capsys.readouterr().err

    # what makes an up-to-date run stale: other parameters, notebook or data, a changed output
    run = next(r for r in grids.load_grid(grid) if r.id == QUICK_EVIL)
    prev, nb_sha = m["runs"][QUICK_EVIL], sha(run.notebook)
    assert manifest.up_to_date(prev, run.parameters, nb_sha, m["data_sha256"], out)
    assert not manifest.up_to_date(prev, run.parameters, "0" * 64, m["data_sha256"], out)
    assert not manifest.up_to_date(prev, run.parameters, nb_sha, "0" * 64, out)
    assert not manifest.up_to_date(prev, {}, nb_sha, m["data_sha256"], out)
    kept.write_bytes(kept_bytes + b" ")
    assert not manifest.up_to_date(prev, run.parameters, nb_sha, m["data_sha256"], out)


def test_a_second_run_on_the_same_folder_is_refused(project, capsys):
    out = project / "reports"
    (out / "notebooks").mkdir(parents=True)
    (out / "notebooks" / "earlier.ipynb").write_text('{"cells": []}', encoding="utf-8")
    (out / "manifest.json").write_text('{"runs": {}}\n', encoding="utf-8")
    before = snapshot(out)
    with lock.output_lock(out):
        code = cli(["run", str(project / "notebooks" / "runs.yaml")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1
        assert err.startswith("error: another analysis run is writing to ")
        assert f"reports/ (pid {os.getpid()}, started 20" in err
        assert err.endswith("wait for it or use --out")
        with pytest.raises(lock.BatchLockedError, match="another analysis run is writing"):
            book.build_book(out)
    assert snapshot(out) == before  # earlier outputs intact
    with lock.output_lock(out):  # released: it can be taken again
        pass


def test_a_run_that_cannot_start_its_kernel_is_retried(monkeypatch):
    for k in worker.KERNEL_ENV:  # execute_run sets them for the kernels; restore afterwards
        monkeypatch.setenv(k, worker.KERNEL_ENV[k])
    calls = []
    never_started = {"cells": [{"cell_type": "code", "metadata": {"papermill": {}}, "source": ""}]}

    class ZMQError(Exception):
        pass

    def flaky(task, workdir):
        calls.append(1)
        if len(calls) == 1:
            return never_started, ZMQError("Address already in use"), "bind failed"
        return {"cells": [], "metadata": {}}, None, ""

    monkeypatch.setattr(worker, "_papermill_once", flaky)
    task = {
        "id": "x",
        "cwd": str(FIXTURES),
        "retries": 2,
        "timeout": 5,
        "notebook_rel": "x.ipynb",
        "output_rel": "o.ipynb",
        "failed_rel": "f.ipynb",
    }
    res = worker.execute_run(task)
    assert res["status"] == "ok" and res["attempts"] == 2 and len(calls) == 2

    class PapermillExecutionError(Exception):
        ename, evalue = "ValueError", "bad"

    started = {"cells": [{"cell_type": "code", "metadata": {"papermill": {"start_time": "t"}}}]}
    calls.clear()
    monkeypatch.setattr(
        worker,
        "_papermill_once",
        lambda t, w: (calls.append(1), (started, PapermillExecutionError(), ""))[1],
    )
    res = worker.execute_run(task)
    assert res["status"] == "failed" and res["attempts"] == 1 and len(calls) == 1
    assert res["error"]["ename"] == "ValueError"


@pytest.mark.slow
def test_dask_runs_the_same_grid_on_a_local_cluster(project):
    from distributed import LocalCluster

    grid = write_grid(project, "- notebook: fails\n  matrix: {fail: [false, true]}\n")
    with LocalCluster(
        n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        result = batch.run_grid(grid, dask=cluster.scheduler_address, progress=False)
    out = project / "reports"
    assert {r.run.id: r.status for r in result.results} == {
        "fails__fail=false": "ok",
        "fails__fail=true": "failed",
    }
    assert result.failed[0].error["ename"] == "ValueError"
    assert result.failed[0].error["cell_source"] == "if fail:"
    assert (out / "notebooks" / "fails__fail=false.ipynb").is_file()
    assert (out / "failed" / "fails__fail=true.ipynb").is_file()
    m = manifest.read_manifest(out)
    assert m["batch"]["executor"] == f"dask {cluster.scheduler_address}"
    assert m["runs"]["fails__fail=false"]["status"] == "ok"
