"""The only module that reads data files. It returns tidy, typed DataFrames.

Raw tables live in ``data/raw/<source_id>/<file>.csv`` beside a ``<file>.csv.meta.yaml``
sidecar whose ``schema`` key names the table's schema (see :mod:`analysis.schemas`).
Derived tables live in ``data/derived/`` and are written by ``analysis data build``.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml

from analysis import config
from analysis.errors import DataError, ParameterError, SidecarError
from analysis.schemas import Schema, get_schema, validate

SIDECAR_SUFFIX = ".meta.yaml"
REQUIRED_SIDECAR_KEYS = (
    "source_id",
    "title",
    "publisher",
    "url",
    "date_published",
    "date_accessed",
    "licence",
    "citation",
    "sha256",
    "schema",
)


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_text_utf8(path: Path) -> str:
    """The file's text; a clear error if it is missing, empty or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def read_sidecar(path: Path) -> dict:
    """The metadata of a data file, from its ``.meta.yaml`` sidecar, with every required key."""
    meta_path = sidecar_path(Path(path))
    if not meta_path.is_file():
        raise SidecarError(f"{path}: no sidecar {meta_path.name} (each data file needs one)")
    text = read_text_utf8(meta_path)
    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SidecarError(f"{meta_path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise SidecarError(f"{meta_path}: expected a mapping of keys, got {type(meta).__name__}")
    missing = [k for k in REQUIRED_SIDECAR_KEYS if meta.get(k) in (None, "")]
    if missing:
        raise SidecarError(f"{meta_path}: missing key(s) {', '.join(missing)}")
    return meta


def read_csv_table(path: Path, schema: Schema | str) -> pd.DataFrame:
    """Read a CSV file and validate it against `schema` (errors name file, line and column)."""
    path = Path(path)
    if isinstance(schema, str):
        schema = get_schema(schema, where=str(path))
    text = read_text_utf8(path)
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: not a well-formed CSV table ({e})") from None
    if raw.empty:
        raise DataError(f"{path}: has a header but no rows")
    return validate(raw, schema, path)


def count_rows(path: Path) -> int:
    """Data rows of a CSV table (records, not lines: quoted newlines are allowed)."""
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


def raw_tables(schema_name: str, data_dir: Path | None = None) -> list[Path]:
    """The raw CSV files whose sidecar declares `schema_name`, sorted by path."""
    raw = (Path(data_dir) if data_dir else config.data_dir()) / "raw"
    out = []
    for meta_path in sorted(raw.glob(f"*/*.csv{SIDECAR_SUFFIX}")):
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
        if isinstance(meta, dict) and meta.get("schema") == schema_name:
            out.append(meta_path.with_name(meta_path.name.removesuffix(SIDECAR_SUFFIX)))
    return out


def _load_raw(schema_name: str, data_dir: Path | None) -> pd.DataFrame:
    frames = []
    for path in raw_tables(schema_name, data_dir):
        df = read_csv_table(path, schema_name)
        source_id = path.parent.name
        wrong = df["source_id"] != source_id
        if wrong.any():
            i = int(wrong.to_numpy().nonzero()[0][0])
            raise DataError(
                f"{path}, line {i + 2}, column 'source_id': {df['source_id'][i]!r} differs from "
                f"the folder's source id {source_id!r}"
            )
        frames.append(df)
    if not frames:
        raise DataError(
            f"no raw table with schema {schema_name!r} under {data_dir or config.data_dir()}"
        )
    schema = get_schema(schema_name)
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(list(schema.key), kind="stable").reset_index(drop=True)


@lru_cache(maxsize=8)
def _facts_cached(data_dir: str) -> pd.DataFrame:
    return _load_raw("facts", Path(data_dir))


def load_facts(data_dir: Path | None = None) -> pd.DataFrame:
    """Every cited figure: territory_id, indicator, year, value, unit, source_id, locator, definition."""
    return _facts_cached(str(data_dir or config.data_dir())).copy()


def load_labels(data_dir: Path | None = None) -> pd.DataFrame:
    """French Tech labels (2014 métropoles, 2015 additions, 2019 capitales)."""
    return _load_raw("labels", data_dir)


def load_derived(name: str, data_dir: Path | None = None) -> pd.DataFrame:
    """A table of ``data/derived`` (``epci``, ``communes``, ``territory_population``, ...)."""
    path = (Path(data_dir) if data_dir else config.data_dir()) / "derived" / f"{name}.csv"
    if not path.is_file():
        raise DataError(f"{path}: derived table not found; build it with `analysis data build`")
    return read_csv_table(path, name)


def _check_vintage(vintage: int, available: pd.Series, what: str) -> int:
    years = sorted(int(y) for y in available.unique())
    if vintage not in years:
        raise ParameterError(
            f"population_vintage: no {what} for census year {vintage!r}; available: "
            f"{', '.join(map(str, years))}"
        )
    return vintage


def load_territory_population(
    vintage: int | None = None, data_dir: Path | None = None
) -> pd.DataFrame:
    """Population municipale of the 13 capitals, the regions and France for one census year.

    Columns: territory_id, census_year, population_municipale, source_id. Capitals sum the
    communes of their core EPCIs; regions and France sum their communes (same census year).
    """
    vintage = config.DEFAULT_POPULATION_VINTAGE if vintage is None else vintage
    caps = load_derived("territory_population", data_dir)
    regs = load_derived("region_population", data_dir)
    _check_vintage(vintage, caps["census_year"], "population table")
    cols = ["territory_id", "census_year", "population_municipale", "source_id"]
    df = pd.concat([caps[cols], regs[cols]], ignore_index=True)
    df = df[df["census_year"] == vintage]
    return df.sort_values("territory_id").reset_index(drop=True)


def load_capital_regions(data_dir: Path | None = None) -> dict[str, str]:
    """Each capital's region id (from the region of its first anchor commune)."""
    from analysis.territories import REGIONS

    pop = load_derived("territory_population", data_dir)
    latest = pop[pop["census_year"] == pop["census_year"].max()]
    return {
        t: REGIONS[r] for t, r in zip(latest["territory_id"], latest["region_code"], strict=True)
    }
