"""Bad input: each case fails with one line naming the file, line or column, exits non-zero,
and leaves the raw data and earlier outputs untouched."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from analysis import cli
from analysis.core.atomic import atomic_path

from .conftest import ROOT, reseal

SEED = "investinprovence-capitale-french-tech-2019"


def verify(data_dir: Path, capsys) -> tuple[int, list[str]]:
    code = cli.main(["--data-dir", str(data_dir), "data", "verify"])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def seed_facts(data_dir: Path) -> Path:
    return data_dir / "raw" / SEED / "facts.csv"


def rewrite(path: Path, text: str | bytes) -> None:
    """Change a raw table *and* re-seal its sidecar, so that only the content rule fails."""
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="\n")
    else:
        path.write_bytes(text)
    reseal(path)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_the_copy_is_valid_to_start_with(data_copy, capsys):
    code, err = verify(data_copy, capsys)
    assert code == 0, err


def test_one_byte_edit_is_a_checksum_mismatch(data_copy, capsys):
    f = seed_facts(data_copy)
    data = bytearray(f.read_bytes())
    data[-2] = ord("7") if data[-2] != ord("7") else ord("8")
    f.write_bytes(bytes(data))
    code, err = verify(data_copy, capsys)
    assert code == 1
    assert any(str(f) in e and "sha256" in e and "differs from its sidecar" in e for e in err), err


def test_missing_sidecar(data_copy, capsys):
    f = seed_facts(data_copy)
    f.with_name(f.name + ".meta.yaml").unlink()
    code, err = verify(data_copy, capsys)
    assert code == 1
    assert any(str(f) in e and "no sidecar facts.csv.meta.yaml" in e for e in err), err


def test_sidecar_lacking_a_key(data_copy, capsys):
    f = seed_facts(data_copy)
    meta_path = f.with_name(f.name + ".meta.yaml")
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    del meta["licence"]
    meta_path.write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    code, err = verify(data_copy, capsys)
    assert code == 1
    assert any(str(meta_path) in e and "missing key(s) licence" in e for e in err), err


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda df: df.rename(columns={"locator": "where"}),
            r"missing column\(s\) locator; unexpected column\(s\) where",
        ),
        (
            lambda df: df.drop(columns="definition"),
            r"missing column\(s\) definition \(schema 'facts' expects",
        ),
        (lambda df: df.assign(extra="x"), r"unexpected column\(s\) extra"),
    ],
    ids=["renamed", "missing", "extra"],
)
def test_column_renamed_missing_or_extra(data_copy, capsys, change, expected):
    import pandas as pd

    f = seed_facts(data_copy)
    df = change(pd.read_csv(f, dtype=str, keep_default_na=False))
    rewrite(f, df.to_csv(index=False, lineterminator="\n"))
    code, err = verify(data_copy, capsys)
    assert code == 1
    assert any(str(f) in e and re.search(expected, e) for e in err), err


def test_columns_in_another_order_are_accepted(data_copy, capsys):
    import pandas as pd

    f = seed_facts(data_copy)
    df = pd.read_csv(f, dtype=str, keep_default_na=False)
    rewrite(f, df[list(reversed(df.columns))].to_csv(index=False, lineterminator="\n"))
    code, err = verify(data_copy, capsys)
    assert code == 0, err


def _set_cell(f: Path, row: int, column: str, value: str) -> None:
    import pandas as pd

    df = pd.read_csv(f, dtype=str, keep_default_na=False)
    df.loc[row, column] = value
    rewrite(f, df.to_csv(index=False, lineterminator="\n"))


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("value", "eight hundred", r"line 2, column 'value': 'eight hundred' is not a number"),
        (
            "value",
            "-3",
            r"line 2, column 'value': -3 is below the minimum 0 \(counts and shares cannot be negative\)",
        ),
        ("year", "1989", r"line 2, column 'year': 1989 is below the minimum 1990"),
        ("year", "2101", r"line 2, column 'year': 2101 is above the maximum 2100"),
        ("year", "2019.5", r"line 2, column 'year': '2019.5' is not an integer"),
        (
            "territory_id",
            "marseile",
            r"line 2, column 'territory_id': unknown territory 'marseile'; expected a territory id; valid ids: aix-marseille, bordeaux",
        ),
    ],
    ids=[
        "non-numeric",
        "negative",
        "year-too-early",
        "year-too-late",
        "year-not-int",
        "unknown-territory",
    ],
)
def test_bad_cell(data_copy, capsys, column, value, expected):
    f = seed_facts(data_copy)
    _set_cell(f, 0, column, value)
    code, err = verify(data_copy, capsys)
    assert code == 1
    assert any(str(f) in e and re.search(expected, e) for e in err), err


def test_duplicate_key(data_copy, capsys):
    f = seed_facts(data_copy)
    rows = lines(f)
    rewrite(f, "\n".join([*rows, rows[1]]) + "\n")
    code, err = verify(data_copy, capsys)
    assert code == 1
    n = len(rows) + 1
    assert any(str(f) in e and f"lines 2, {n}: duplicate key" in e for e in err), err


def test_not_utf8(data_copy, capsys):
    f = seed_facts(data_copy)
    text = f.read_text(encoding="utf-8")
    rewrite(f, text.encode("latin-1", errors="replace"))
    code, err = verify(data_copy, capsys)
    assert code == 1
    assert any(str(f) in e and "not UTF-8" in e and "save the file as UTF-8" in e for e in err), err


def test_empty_file(data_copy, capsys):
    f = seed_facts(data_copy)
    rewrite(f, "")
    code, err = verify(data_copy, capsys)
    assert code == 1
    assert any(str(f) in e and "file is empty" in e for e in err), err


def test_unknown_territory_parameter_lists_valid_ids(capsys):
    code = cli.main(["indicators", "--territory", "marseile"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "unknown territory 'marseile'" in err and "aix-marseille" in err and "toulouse" in err


def test_bad_vintage_parameter(capsys):
    assert cli.main(["indicators", "--population-vintage", "2020"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 2020 (choose from 2016, 2023)" in err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_a_failed_write_leaves_the_earlier_output(tmp_path):
    target = tmp_path / "out.md"
    target.write_text("earlier output", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("crash mid-write")
    assert target.read_text(encoding="utf-8") == "earlier output"
    assert [p.name for p in tmp_path.iterdir()] == ["out.md"]


def test_failed_verify_leaves_repository_data_unchanged(repo_data_checksums):
    """Runs last in this module: nothing above touched the committed data."""
    now = {
        str(p.relative_to(ROOT)): p.read_bytes()
        for p in sorted((ROOT / "data").rglob("*"))
        if p.is_file() and p.suffix != ".tgz"
    }
    assert now == repo_data_checksums
