"""The data catalogue: sources, their sidecars, and the checks of ``analysis data verify``.

Layout (OWID etl style)::

    data/raw/<source_id>/<file>              immutable input, never edited
    data/raw/<source_id>/<file>.meta.yaml    origin, licence, citation, sha256, schema
    data/derived/<table>.csv                 built by `analysis data build`
    data/derived/<table>.csv.meta.yaml       the inputs (with their sha256) it was built from

A sidecar with ``schema: archive`` describes an opaque file (a tarball); one with a ``fetch``
key describes a file that is downloaded on demand rather than committed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from analysis.core import rules, territories
from analysis.core.cache import cached_on_files
from analysis.core.checksums import sha256_file
from analysis.core.errors import AnalysisError
from analysis.data import datasets, sidecars
from analysis.data.schemas import SCHEMAS

ARCHIVE = "archive"


@dataclass
class Report:
    """What `verify` found: problems (each one line) and counts for the summary line."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: int = 0
    files: int = 0
    rows: int = 0
    derived: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        state = "OK" if self.ok else f"{len(self.problems)} problem(s)"
        return (
            f"{state}: {self.sources} sources, {self.files} raw files, {self.rows} table rows, "
            f"{self.derived} derived tables checked (sidecars, sha256, schemas)"
        )


def _base(data_dir: Path | None) -> Path:
    return datasets.data_root(data_dir)


def source_dirs(data_dir: Path | None = None) -> list[Path]:
    raw = _base(data_dir) / "raw"
    return sorted(p for p in raw.iterdir() if p.is_dir()) if raw.is_dir() else []


def _data_files(folder: Path) -> list[Path]:
    """Files of a source folder that need a sidecar (sidecars and READMEs excepted)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.endswith(sidecars.SIDECAR_SUFFIX)
        and p.name.lower() != "readme.md"
        and not p.name.startswith(".")
    )


def _orphan_sidecars(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.glob(f"*{sidecars.SIDECAR_SUFFIX}")
        if not p.with_name(p.name.removesuffix(sidecars.SIDECAR_SUFFIX)).exists()
    )


def _check_raw_file(path: Path, report: Report) -> None:
    try:
        meta = sidecars.read_sidecar(path)
        if meta["source_id"] != path.parent.name:
            raise AnalysisError(
                f"{sidecars.sidecar_path(path)}: source_id {meta['source_id']!r} differs from "
                f"its folder {path.parent.name!r}"
            )
        actual = sha256_file(path)
        if actual != meta["sha256"]:
            raise AnalysisError(
                f"{path}: sha256 {actual} differs from its sidecar ({meta['sha256']}); "
                "raw files must not be edited"
            )
        if meta["schema"] != ARCHIVE:
            if meta["schema"] not in SCHEMAS:
                raise AnalysisError(
                    f"{sidecars.sidecar_path(path)}: unknown schema {meta['schema']!r}; known: "
                    f"{', '.join([*SCHEMAS, ARCHIVE])}"
                )
            df = datasets.read_csv_table(path, meta["schema"])
            wrong = df.index[df["source_id"] != path.parent.name]
            if len(wrong):
                raise AnalysisError(
                    f"{path}, line {datasets.line_of(df, wrong[0])}, column 'source_id': {df['source_id'][wrong[0]]!r} "
                    f"differs from the folder's source id {path.parent.name!r}"
                )
            report.rows += len(df)
    except AnalysisError as e:
        report.problems.append(str(e))


#: What a sidecar says about its source rather than its file: every sidecar of one source
#: folder must say the same (``date_accessed`` may differ: files are transcribed on
#: different days).
SOURCE_KEYS = ("title", "publisher", "url", "date_published", "licence", "citation", "source_type")


def source_meta(metas: list[tuple[Path, dict]]) -> dict:
    """The source-level metadata shared by the sidecars of one source folder.

    Parameters
    ----------
    metas : list of (file, sidecar mapping)
        Every file of the folder with its sidecar, sorted by file name.

    Returns
    -------
    dict
        The first sidecar's mapping, with ``date_accessed`` the latest of the folder's.

    Raises
    ------
    AnalysisError
        When two sidecars disagree on one of :data:`SOURCE_KEYS`, naming both and the key:
        the catalogue would otherwise show one of them and hide the other.
    """
    (first_file, first), *rest = metas
    for target, meta in rest:
        for key in SOURCE_KEYS:
            if str(meta.get(key, "")) != str(first.get(key, "")):
                raise AnalysisError(
                    f"{sidecars.sidecar_path(target)}: {key} {meta.get(key)!r} differs from "
                    f"{sidecars.sidecar_path(first_file).name}'s {first.get(key)!r} "
                    "(the sidecars of one source must describe the same source)"
                )
    latest = max(str(m["date_accessed"]) for _, m in metas)
    return {**first, "date_accessed": latest}


def _source_sidecars(folder: Path) -> list[tuple[Path, dict]]:
    """Each file of a source folder that has a sidecar, with that sidecar, by file name."""
    return [
        (target, sidecars.read_sidecar(target))
        for target in (
            meta_path.with_name(meta_path.name.removesuffix(sidecars.SIDECAR_SUFFIX))
            for meta_path in sorted(folder.glob(f"*{sidecars.SIDECAR_SUFFIX}"))
        )
    ]


def _check_source_agreement(folder: Path, report: Report) -> None:
    try:
        metas = _source_sidecars(folder)
    except AnalysisError:
        return  # already reported by the file's own check
    if len(metas) > 1:
        try:
            source_meta(metas)
        except AnalysisError as e:
            report.problems.append(str(e))


def _check_orphan(meta_path: Path, report: Report) -> None:
    """A sidecar without its file is fine only for a file fetched on demand."""
    target = meta_path.with_name(meta_path.name.removesuffix(sidecars.SIDECAR_SUFFIX))
    try:
        meta = sidecars.read_sidecar(target)
    except AnalysisError as e:
        report.problems.append(str(e))
        return
    if meta.get("fetch"):
        report.notes.append(f"{target}: not downloaded (fetched on demand: {meta['fetch']})")
    else:
        report.problems.append(
            f"{target}: missing (its sidecar {meta_path.name} has no fetch step)"
        )


def _check_derived(data_dir: Path, report: Report) -> None:
    derived = data_dir / "derived"
    raw_sha = {}
    for folder in source_dirs(data_dir):
        for meta_path in folder.glob(f"*{sidecars.SIDECAR_SUFFIX}"):
            try:
                meta = sidecars.load_mapping(meta_path)
            except AnalysisError:
                continue  # reported by the raw-file checks
            target = meta_path.with_name(meta_path.name.removesuffix(sidecars.SIDECAR_SUFFIX))
            # inputs are recorded relative to the data folder, whatever the folder's name
            raw_sha[target.relative_to(data_dir).as_posix()] = meta.get("sha256")
    for path in sorted(derived.glob("*.csv")):
        report.derived += 1
        meta_path = sidecars.sidecar_path(path)
        try:
            if not meta_path.is_file():
                raise AnalysisError(
                    f"{path}: no sidecar {meta_path.name}; rebuild with `analysis data build`"
                )
            meta = sidecars.load_mapping(meta_path)
            for key in ("schema", "sha256", "inputs", "built_by"):
                if not meta.get(key):
                    raise AnalysisError(f"{meta_path}: missing key {key}")
            if sha256_file(path) != meta["sha256"]:
                raise AnalysisError(
                    f"{path}: sha256 differs from its sidecar; rebuild with `analysis data build`"
                )
            inputs = meta["inputs"]
            if not isinstance(inputs, list) or not all(
                isinstance(i, dict) and isinstance(i.get("path"), str) and i.get("sha256")
                for i in inputs
            ):
                raise AnalysisError(
                    f"{meta_path}: inputs must be a list of {{path, sha256}}; rebuild with "
                    "`analysis data build`"
                )
            for inp in inputs:
                if raw_sha.get(inp["path"]) != inp["sha256"]:
                    raise AnalysisError(
                        f"{path}: built from {inp['path']} with sha256 {inp['sha256'][:12]}…, which "
                        "is not the raw input recorded now; rebuild with `analysis data build`"
                    )
            report.rows += len(datasets.read_csv_table(path, meta["schema"]))
        except AnalysisError as e:
            report.problems.append(str(e))


def _check_coverage(data_dir: Path, report: Report) -> None:
    """Cross-table rules: every capital is labelled, mapped and has a population per vintage."""
    try:
        labels = datasets.load_labels(data_dir)
        caps = labels.loc[labels["label"] == "capitale-french-tech", "territory_id"]
        missing = sorted(set(territories.CAPITALE_IDS) - set(caps.dropna()))
        if missing:
            report.problems.append(f"labels: no capitale-french-tech row for {', '.join(missing)}")
        pop = datasets.load_derived("territory_population", data_dir)
        for year in rules.POPULATION_VINTAGES:
            for perimeter in territories.PERIMETERS:
                sel = (pop["census_year"] == year) & (pop["perimeter"] == perimeter)
                missing = sorted(set(territories.CAPITALE_IDS) - set(pop.loc[sel, "territory_id"]))
                if missing:
                    report.problems.append(
                        f"territory_population: census year {year}, {perimeter} perimeter, "
                        f"lacks {', '.join(missing)}"
                    )
        datasets.load_facts(data_dir)
    except AnalysisError as e:
        report.problems.append(str(e))


def _check_tables_together(base: Path) -> None:
    """Check the raw tables of each schema in one stacked pass (:func:`datasets.read_csv_tables`),
    so that the file-by-file checks below find them checked; any problem is left for those
    checks to report, with its own file, line and column."""
    for name in SCHEMAS:
        try:
            paths = [p for p in datasets.raw_tables(name, base) if p.is_file()]
            if paths:
                datasets.read_csv_tables(paths, name)
        except AnalysisError:
            continue


def verify(data_dir: Path | None = None) -> Report:
    """Check every sidecar, checksum and table schema, and the catalogue's coverage rules."""
    base = _base(data_dir)
    report = Report()
    folders = source_dirs(base)
    if not folders:
        report.problems.append(f"{base / 'raw'}: no source folders")
    _check_tables_together(base)
    for folder in folders:
        report.sources += 1
        files = _data_files(folder)
        orphans = _orphan_sidecars(folder)
        if not files and not orphans:
            report.problems.append(f"{folder}: empty source folder")
        for path in files:
            report.files += 1
            _check_raw_file(path, report)
        for meta_path in orphans:
            report.files += 1  # described by its sidecar, downloaded on demand
            _check_orphan(meta_path, report)
        _check_source_agreement(folder, report)
    _check_derived(base, report)
    if not report.problems:
        _check_coverage(base, report)
    return report


def catalogue(data_dir: Path | None = None) -> pd.DataFrame:
    """One row per source: id, title, publisher, dates, licence, url, files and rows.

    Read once while the raw files stay as they are; a copy is returned.
    """
    return _catalogue_cached(str(_base(data_dir))).copy()


def _raw_files(data_dir: str) -> list[Path]:
    return datasets.raw_files(data_dir)


@cached_on_files(_raw_files)
def _catalogue_cached(data_dir: str) -> pd.DataFrame:
    rows = []
    for folder in source_dirs(Path(data_dir)):
        metas = _source_sidecars(folder)
        if not metas:
            continue
        meta = source_meta(metas)
        n_rows = sum(
            datasets.count_rows(target)
            for target, m in metas
            if m["schema"] in SCHEMAS and target.is_file()
        )
        rows.append(
            {
                "source_id": folder.name,
                "title": meta["title"],
                "publisher": meta["publisher"],
                "date_published": str(meta["date_published"]),
                "date_accessed": str(meta["date_accessed"]),
                "source_type": meta.get("source_type", ""),
                "licence": meta["licence"],
                "url": meta["url"],
                "files": ", ".join(t.name for t, _ in metas),
                "rows": n_rows,
                "citation": meta["citation"],
            }
        )
    return pd.DataFrame(rows)


def _md_cell(value: object) -> str:
    """Text for a Markdown table cell: no cell break, no link, no HTML tag it could open."""
    text = re.sub(r"([\\\[\]`])", r"\\\1", str(value).replace("\n", " "))
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _md_link(text: object, url: str) -> str:
    """``[text](url)`` with the URL percent-encoded wherever it could end the link early."""
    return f"[{_md_cell(text)}]({quote(url, safe=sidecars.URL_SAFE)})"


def catalogue_markdown(df: pd.DataFrame) -> str:
    """The catalogue as the Markdown page ``data/README.md``."""
    head = [
        "# Data catalogue",
        "",
        "Generated by `analysis data list --markdown --out data/README.md`; do not edit by hand.",
        "One row per source. Each raw file sits in `data/raw/<source_id>/` beside a",
        "`<file>.meta.yaml` sidecar (origin, licence, citation, sha256). Figures were transcribed",
        "from the source with a verbatim `locator`; `analysis data verify` checks every checksum",
        "and schema. Tables in `data/derived/` are rebuilt from raw inputs by `make data`.",
        "",
        f"{len(df)} sources, {int(df['rows'].sum()) if len(df) else 0} rows.",
        "",
        "| source_id | publisher | title | published | accessed | type | rows | licence |",
        "|---|---|---|---|---|---|---|---|",
    ]
    body = []
    for r in df.itertuples(index=False):
        cells = (r.publisher, r.title, r.date_published, r.date_accessed, r.source_type)
        cells += (r.rows, r.licence)
        body.append("| " + " | ".join([_md_link(r.source_id, r.url), *map(_md_cell, cells)]) + " |")
    return "\n".join(head + body) + "\n"


def checksums(data_dir: Path | None = None) -> pd.DataFrame:
    """Every raw file of the catalogue: its recorded sha256 and whether the file matches it.

    ``on_demand`` files (tarballs fetched by ``make data``) are ``verified`` once downloaded
    and ``not downloaded`` before; the committed files are always present.
    """
    rows = []
    for folder in source_dirs(data_dir):
        for meta_path in sorted(folder.glob(f"*{sidecars.SIDECAR_SUFFIX}")):
            target = meta_path.with_name(meta_path.name.removesuffix(sidecars.SIDECAR_SUFFIX))
            meta = sidecars.read_sidecar(target)
            if not target.is_file():
                status = "not downloaded" if meta.get("fetch") else "MISSING"
            else:
                status = "verified" if sha256_file(target) == meta["sha256"] else "MISMATCH"
            rows.append(
                {
                    "source_id": folder.name,
                    "file": target.name,
                    "sha256": meta["sha256"],
                    "on_demand": bool(meta.get("fetch")),
                    "status": status,
                }
            )
    return pd.DataFrame(rows)
