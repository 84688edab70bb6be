"""The only module that reads data files. It returns tidy, typed DataFrames.

Raw tables live in ``data/raw/<source_id>/<file>.csv`` beside a ``<file>.csv.meta.yaml``
sidecar whose ``schema`` key names the table's schema (see :mod:`analysis.data.schemas`).
Derived tables live in ``data/derived/`` and are written by ``analysis data build``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from analysis.core import paths, rules
from analysis.core.cache import ContentCache, cached_on_files
from analysis.core.errors import DataError, ParameterError, SchemaError
from analysis.data.schemas import Schema, get_schema, validate
from analysis.data.sidecars import (
    SIDECAR_SUFFIX,
    load_mapping,
    read_sidecar,
    read_text_utf8,
    sidecar_path,
    verify_sha256,
)


def _physical_lines(text: str) -> tuple[list[str], int, list[int]] | None:
    """(header, its line, the line each data record starts on) of a CSV text, counted as an
    editor counts them: a quoted newline inside a record and the blank lines that pandas
    skips are lines too. None if the csv module cannot read the text (pandas says why)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    starts: list[tuple[int, list[str]]] = []
    before = 0
    try:
        for row in reader:
            if row and not (len(row) == 1 and not row[0].strip()):  # blank: skipped by pandas
                starts.append((before + 1, row))
            before = reader.line_num
    except csv.Error:
        return None
    if not starts:
        return None
    (header_line, header), *records = starts
    return header, header_line, [line for line, _ in records]


def _check_cells(raw: pd.DataFrame, path: Path) -> None:
    """No cell has spaces around its value: ``"jobs "`` would be read as another unit."""
    for col in raw.columns:
        values = raw[col].astype("str")
        padded = values != values.str.strip()
        if padded.any():
            i = padded.idxmax()
            raise DataError(
                f"{path}, line {int(i) + 2}, column {col!r}: {values[i]!r} has spaces around "
                f"the value; write it as {values[i].strip()!r}"
            )


#: Tables that passed their schema, by content: a table is parsed and checked once per
#: version of its bytes, wherever the file is (an error is never cached: it names the path).
_VALIDATED = ContentCache(maxsize=1024)


def _parse(path: Path, text: str) -> pd.DataFrame:
    """The strings of a CSV text, indexed by physical line - 2 (what the schema checks
    report as ``index + 2``); a repeated header column or a ragged table is refused."""
    found = _physical_lines(text)
    if found is not None:
        header, header_line, _ = found
        repeated = sorted({c for c in header if header.count(c) > 1})
        if repeated:
            raise SchemaError(
                f"{path}, line {header_line}: repeated column(s) {', '.join(map(repr, repeated))} "
                "in the header; each column appears once"
            )
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.ParserError as e:
        detail = " ".join(str(e).split())  # pandas' message spans lines
        raise DataError(f"{path}: not a well-formed CSV table ({detail})") from None
    if raw.empty:
        raise DataError(f"{path}: has a header but no rows")
    lines = found[2] if found is not None and len(found[2]) == len(raw) else None
    if lines is not None:
        raw.index = pd.Index([line - 2 for line in lines])
    return raw


def _check_one(path: Path, raw: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    _check_cells(raw, path)
    df = validate(raw, schema, path)
    df.attrs["lines"] = [int(i) + 2 for i in raw.index]
    return df


def read_csv_table(path: Path, schema: Schema | str) -> pd.DataFrame:
    """Read a CSV file and validate it against `schema` (errors name file, line and column).

    Line numbers are the file's physical lines (header = line 1, blank lines and quoted
    newlines counted). A repeated column name, or a cell with spaces around its value, is
    refused by name. The same bytes are checked once (see :data:`_VALIDATED`).
    """
    return read_csv_tables([Path(path)], schema)[0]


def read_csv_tables(paths: list[Path], schema: Schema | str) -> list[pd.DataFrame]:
    """:func:`read_csv_table` of each of `paths`, the tables checked together.

    The schema's checks are column-wise pandas operations whose cost is mostly per call:
    the tables not yet checked are stacked and checked in one pass. Only when that pass
    finds a problem are they checked one by one, so that the error names its file, line and
    column exactly as :func:`read_csv_table` would.

    Parameters
    ----------
    paths : list of pathlib.Path
        CSV files of one schema.
    schema : Schema or str
        The schema, or its name.

    Returns
    -------
    list of pandas.DataFrame
        One typed frame per path, in order, each with ``attrs["lines"]`` (the physical line
        of each row).

    Raises
    ------
    DataError
        The first problem, naming the file, line and column.
    """
    paths = [Path(p) for p in paths]
    if isinstance(schema, str):
        schema = get_schema(schema, where=str(paths[0]) if paths else "")
    out: list[pd.DataFrame | None] = []
    todo: list[tuple[int, Path, tuple, pd.DataFrame]] = []
    for i, path in enumerate(paths):
        text = read_text_utf8(path)
        key = _VALIDATED.key(text, schema)
        hit = _VALIDATED.get(key)
        out.append(hit.copy() if hit is not None else None)  # type: ignore[attr-defined]
        if hit is None:
            todo.append((i, path, key, _parse(path, text)))
    checked: list[pd.DataFrame] | None = None
    if len(todo) > 1 and all(list(raw.columns) == schema.names for *_, raw in todo):
        stacked = pd.concat([raw for *_, raw in todo], ignore_index=True)
        try:
            _check_cells(stacked, paths[0])
            together = validate(stacked, schema, paths[0])
        except DataError:  # found again below, one file at a time, with its own name
            together = None
        if together is not None:
            bounds = [0]
            for *_, raw in todo:
                bounds.append(bounds[-1] + len(raw))
            checked = []
            for (_, _, _, raw), a, b in zip(todo, bounds, bounds[1:], strict=False):
                part = together.iloc[a:b].reset_index(drop=True)
                part.attrs = {"lines": [int(i) + 2 for i in raw.index]}
                checked.append(part)
    if checked is None:
        checked = [_check_one(path, raw, schema) for _, path, _, raw in todo]
    for (i, _, key, _), df in zip(todo, checked, strict=True):
        _VALIDATED.put(key, df.copy())
        out[i] = df
    return out  # type: ignore[return-value]


def line_of(df: pd.DataFrame, i: int) -> int:
    """The file's line of row `i` of a frame returned by :func:`read_csv_table`."""
    lines = df.attrs.get("lines")
    return int(lines[i]) if lines and i < len(lines) else int(i) + 2


def count_rows(path: Path) -> int:
    """Data rows of a CSV table (records, not lines: quoted newlines are allowed), after its
    sha256 is checked against its sidecar (like every reader's)."""
    verify_sha256(path)
    with open(path, encoding="utf-8", newline="") as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


def data_root(data_dir: Path | str | None = None) -> Path:
    """The data folder: `data_dir`, else the project's ``data/``."""
    return Path(data_dir) if data_dir else paths.data_dir()


def raw_files(data_dir: Path | str | None = None) -> list[Path]:
    """Every file under ``raw/<source_id>/`` (the inputs a raw table depends on)."""
    return sorted((data_root(data_dir) / "raw").glob("*/*"))


def raw_tables(schema_name: str, data_dir: Path | None = None) -> list[Path]:
    """The raw CSV files whose sidecar declares `schema_name`, sorted by path."""
    return list(_raw_tables(schema_name, str(data_root(data_dir))))


def _sidecars(schema_name: str, data_dir: str) -> list[Path]:
    return sorted((Path(data_dir) / "raw").glob(f"*/*.csv{SIDECAR_SUFFIX}"))


@cached_on_files(_sidecars)
def _raw_tables(schema_name: str, data_dir: str) -> tuple[Path, ...]:
    out = []
    for meta_path in _sidecars(schema_name, data_dir):
        meta = load_mapping(meta_path)
        if meta.get("schema") == schema_name:
            out.append(meta_path.with_name(meta_path.name.removesuffix(SIDECAR_SUFFIX)))
    return tuple(out)


def _load_raw(schema_name: str, data_dir: Path | None) -> pd.DataFrame:
    frames = []
    paths = raw_tables(schema_name, data_dir)
    for path in paths:
        read_sidecar(path)
        verify_sha256(path)
    for path, df in zip(paths, read_csv_tables(paths, schema_name), strict=True):
        source_id = path.parent.name
        wrong = df["source_id"] != source_id
        if wrong.any():
            i = int(wrong.to_numpy().nonzero()[0][0])
            raise DataError(
                f"{path}, line {line_of(df, i)}, column 'source_id': {df['source_id'][i]!r} differs from "
                f"the folder's source id {source_id!r}"
            )
        frames.append(df)
    if not frames:
        raise DataError(f"no raw table with schema {schema_name!r} under {data_root(data_dir)}")
    schema = get_schema(schema_name)
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(list(schema.key), kind="stable").reset_index(drop=True)


def _raw_inputs(schema_name: str, data_dir: str) -> list[Path]:
    return raw_files(data_dir)


@cached_on_files(_raw_inputs)
def _raw_cached(schema_name: str, data_dir: str) -> pd.DataFrame:
    return _load_raw(schema_name, Path(data_dir))


def load_facts(data_dir: Path | None = None) -> pd.DataFrame:
    """Every cited figure: territory_id, indicator, year, value, unit, source_id, locator, definition.

    Read once while the raw files stay as they are (an edited file is read again).
    """
    return _raw_cached("facts", str(data_root(data_dir))).copy()


def load_labels(data_dir: Path | None = None) -> pd.DataFrame:
    """French Tech labels (2014 métropoles, 2015 additions, 2019 capitales)."""
    return _raw_cached("labels", str(data_root(data_dir))).copy()


def load_label_places(data_dir: Path | None = None) -> pd.DataFrame:
    """The places the 2019 labels name, each with its anchor commune and citation."""
    return _raw_cached("label_places", str(data_root(data_dir))).copy()


def load_count_areas(data_dir: Path | None = None) -> pd.DataFrame:
    """The area each published start-up count describes (``label``, ``core`` or a zone)."""
    return _raw_cached("count_areas", str(data_root(data_dir))).copy()


def derived_path(name: str, data_dir: Path | str | None = None) -> Path:
    """``<data>/derived/<name>.csv``."""
    return data_root(data_dir) / "derived" / f"{name}.csv"


def _derived_inputs(name: str, data_dir: str) -> list[Path]:
    path = derived_path(name, data_dir)
    return [path, sidecar_path(path)]


@cached_on_files(_derived_inputs)
def _derived_cached(name: str, data_dir: str) -> pd.DataFrame:
    path = derived_path(name, data_dir)
    if not path.is_file():
        raise DataError(f"{path}: derived table not found; build it with `analysis data build`")
    verify_sha256(path, "derived")
    return read_csv_table(path, name)


def load_derived(name: str, data_dir: Path | None = None) -> pd.DataFrame:
    """A table of ``data/derived`` (``epci``, ``communes``, ``territory_population``, ...)."""
    return _derived_cached(name, str(data_root(data_dir))).copy()


def population_of(
    capitals: pd.DataFrame,
    regions: pd.DataFrame,
    vintage: int | None = None,
    perimeter: str | None = None,
) -> pd.DataFrame:
    """Population municipale of the 13 capitals, the regions and France for one census year.

    Parameters
    ----------
    capitals : the derived table ``territory_population`` (every vintage and perimeter).
    regions : the derived table ``region_population`` (every vintage).
    vintage : the census year (:data:`analysis.core.rules.POPULATION_VINTAGES`; None: the
        default).
    perimeter : the capitals' perimeter, ``label`` (default) or ``core``.

    Returns
    -------
    ``territory_id, census_year, population_municipale, source_id``, one row per territory
    with a population in that census, sorted by id. Capitals sum the communes of their
    EPCIs; regions and France sum their communes (same census year, never mixed).
    """
    vintage = rules.population_vintage(vintage)
    capitals = capitals[capitals["perimeter"] == rules.perimeter(perimeter)]
    years = sorted(int(y) for y in capitals["census_year"].unique())
    if vintage not in years:
        raise ParameterError(
            f"population_vintage: no population table for census year {vintage!r}; available: "
            f"{', '.join(map(str, years))}"
        )
    cols = ["territory_id", "census_year", "population_municipale", "source_id"]
    df = pd.concat([capitals[cols], regions[cols]], ignore_index=True)
    df = df[df["census_year"] == vintage]
    return df.sort_values("territory_id").reset_index(drop=True)


def load_territory_population(
    vintage: int | None = None, data_dir: Path | None = None, perimeter: str | None = None
) -> pd.DataFrame:
    """:func:`population_of` on the derived tables of `data_dir`."""
    return population_of(
        load_derived("territory_population", data_dir),
        load_derived("region_population", data_dir),
        vintage,
        perimeter,
    )
