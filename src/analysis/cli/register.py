"""``analysis sirene aggregate|panel|convert|fetch``: start-ups from the SIRENE register."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from analysis.cli.options import one_of_ints
from analysis.core import outputs, rules, territories
from analysis.data.register.spec import (
    DEFAULT_FETCH_FILE,
    DEFAULT_URLS,
    LEGAL_UNIT_CATEGORIES,
    LEVELS,
)


def cmd_aggregate(args: argparse.Namespace) -> int:
    from analysis.data.register import aggregate, write_outputs, yearly_creations

    protected = outputs.protected_folders(args.data_dir)
    written = {
        "--out": args.out,
        "--out's sidecar": args.out.with_name(args.out.name + ".meta.yaml"),
        "--yearly-out": args.yearly_out,
    }
    read = {"PATH": args.path, "--legal-units": args.legal_units}
    outputs.check_files(written, read, protected=protected)
    outputs.check_folder(
        "--cache-dir", args.cache_dir, protected=protected, files={**written, **read}
    )
    result = aggregate(
        args.path,
        as_of=rules.as_of(args.as_of, "--as-of"),
        young_years=rules.young_years(args.young_years, "--young-years"),
        level=args.level,
        ict_codes=rules.ict_codes(args.ict_codes, "--ict-codes") if args.ict_codes else None,
        population_vintage=args.population_vintage,
        perimeter=args.perimeter,
        legal_units=args.legal_units,
        legal_unit_categories=args.legal_unit_categories,
        cache_dir=args.cache_dir,
        data_dir=getattr(args, "data_dir", None),
    )
    if args.yearly_out is not None:
        result.yearly, _ = yearly_creations(
            args.path,
            level=args.level,
            ict_codes=args.ict_codes,
            population_vintage=result.report.vintage,
            perimeter=args.perimeter,
            cache_dir=args.cache_dir,
            data_dir=getattr(args, "data_dir", None),
        )
    result.report.out = str(args.out)
    write_outputs(result, args.out, args.yearly_out)
    sys.stdout.write(result.report.text())
    if args.yearly_out is not None:
        print(f"  yearly creations -> {args.yearly_out}")
    return 0


def cmd_panel(args: argparse.Namespace) -> int:
    import yaml

    from analysis.analyses import label_cohorts
    from analysis.core.atomic import atomic_write_files
    from analysis.data.inputs import load_inputs
    from analysis.data.register.panel import yearly_creations_panel

    sidecar = args.out.with_name(args.out.name + ".meta.yaml")
    protected = outputs.protected_folders(args.data_dir)
    outputs.check_files(
        {"--out": args.out, "--out's sidecar": sidecar}, {"PATH": args.path}, protected=protected
    )
    outputs.check_folder("--cache-dir", args.cache_dir, protected=protected)
    inputs = load_inputs(args.data_dir)
    yearly = yearly_creations_panel(
        args.path,
        level="epci",
        first_year=args.first_year,
        last_year=args.last_year,
        cache_dir=args.cache_dir,
        data_dir=args.data_dir,
    )
    panel, left_out = label_cohorts.panel_table(
        yearly.rows,
        inputs,
        args.perimeter,
        args.population_vintage,
        args.late_month,
        args.min_population,
        args.data_dir,
    )
    treated = panel.loc[panel["first_treated"] > 0].groupby("first_treated")["unit"].nunique()
    from analysis.core.synthetic import SYNTHETIC_LABEL, is_synthetic

    synthetic = is_synthetic(args.path)
    meta = {
        "table": "label-effect panel: yearly establishment creations per EPCI, with treatment"
        + (
            f" ({SYNTHETIC_LABEL}: built from a generated register, not results)"
            if synthetic
            else ""
        ),
        "built_by": "analysis sirene panel (src/analysis/data/register/panel.py, "
        "src/analysis/analyses/label_cohorts.py)",
        "columns": list(panel.columns),
        "perimeter": args.perimeter,
        "late_month": args.late_month,
        "min_population": args.min_population,
        "population_vintage": args.population_vintage,
        "geo_version": yearly.geo_version,
        "cohorts": {int(k): int(v) for k, v in treated.items()},
        "never_labelled_units": int(panel.loc[panel["first_treated"] == 0, "unit"].nunique()),
        "left_out": [f"{r.epci_siren}: {r.reason}" for r in left_out.itertuples()],
        **yearly.summary,
    }
    atomic_write_files(
        {
            args.out: panel.to_csv(index=False, lineterminator="\n"),
            sidecar: yaml.safe_dump(meta, sort_keys=False, allow_unicode=True),
        }
    )
    s = yearly.summary
    if synthetic:
        print(f"{SYNTHETIC_LABEL}: the register is generated for tests; this panel is not a result")
    print(
        f"panel: {panel['unit'].nunique():,} EPCIs x {s['first_year']}-{s['last_year']} "
        f"({len(panel):,} rows) -> {args.out}"
    )
    print(
        "  treated by first year: "
        + ", ".join(f"{k}: {v}" for k, v in meta["cohorts"].items())
        + f"; never labelled: {meta['never_labelled_units']:,}; left out: {len(left_out)}"
    )
    print(
        f"  rows scanned {s['rows_scanned']:,}; no date {s['no_date']:,}; unknown date "
        f"{s['unknown_date']:,}; outside the years {s['outside_the_years']:,}; latest "
        f"creation {s['latest_creation_date']}"
    )
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from analysis.data.register import convert

    outputs.check_folder(
        "--cache-dir",
        args.cache_dir,
        protected=outputs.protected_folders(args.data_dir),
        files={"PATH": args.path},
    )
    t0 = time.perf_counter()
    conv = convert(args.path, args.cache_dir)
    if conv.sha256 is None:
        print(f"{conv.path}: already parquet, nothing to convert")
    else:
        state = "cache hit" if conv.cached else "converted"
        print(f"{state}: {conv.source} -> {conv.path} ({time.perf_counter() - t0:.1f} s)")
        print(f"sha256 of the source: {conv.sha256}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from analysis.data.register import fetch

    outputs.check_folder("--dest", args.dest, protected=outputs.protected_folders(args.data_dir))
    got = fetch(args.url, args.dest, name=args.file if args.url is None else args.name)
    how = f" (resumed from byte {got.resumed_from:,})" if got.resumed_from else ""
    print(f"downloaded {got.url} -> {got.path} ({got.size:,} bytes){how}")
    print(f"sha256 {got.sha256}  (written to {got.path.name}.sha256)")
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``sirene aggregate|convert|fetch``."""
    sirene = subparsers.add_parser(
        "sirene", help="start-ups from the SIRENE register (INSEE stock files, DuckDB)"
    )
    sub = sirene.add_subparsers(dest="sirene_command", required=True)

    agg = sub.add_parser(
        "aggregate",
        help="count young active ICT establishments per commune, EPCI, department, region "
        "or capital",
        description="Write code,name,startups (one row per code) and print a report.",
    )
    agg.add_argument("path", type=Path, help="StockEtablissement_utf8 .zip, .csv or .parquet")
    agg.add_argument(
        "--level",
        choices=LEVELS,
        default="territory",
        help="commune, epci, department, region: every code of France; territory: the 13 "
        "capitals (default)",
    )
    agg.add_argument(
        "--perimeter",
        choices=territories.PERIMETERS,
        default=territories.DEFAULT_PERIMETER,
        help="the capitals' perimeter at --level territory: label (the 2019 label's cited "
        "EPCIs, default) or core (their main cities' EPCIs); see `analysis territories`",
    )
    agg.add_argument("--as-of", required=True, help="reference date, YYYY-MM-DD")
    agg.add_argument(
        "--young-years",
        required=True,
        type=int,
        help=f"created at most N years before --as-of (0 <= N <= {rules.YOUNG_YEARS_MAX})",
    )
    agg.add_argument("--out", type=Path, required=True, help="CSV to write (atomically)")
    agg.add_argument(
        "--ict-codes",
        nargs="+",
        default=None,
        metavar="CODE",
        help="NAF codes to count instead of the 25 ICT codes (62.01Z or 6201Z; comma or space)",
    )
    agg.add_argument(
        "--population-vintage",
        type=one_of_ints(rules.POPULATION_VINTAGES),
        metavar="{" + ",".join(map(str, rules.POPULATION_VINTAGES)) + "}",
        default=None,
        help="census year of the geography (default: the one closest to --as-of)",
    )
    agg.add_argument(
        "--legal-units", type=Path, default=None, help="StockUniteLegale zip/csv/parquet to join"
    )
    agg.add_argument(
        "--legal-unit-categories",
        nargs="+",
        default=None,
        choices=LEGAL_UNIT_CATEGORIES,
        metavar="CAT",
        help="keep legal units of these categorieEntreprise values: "
        + ", ".join(LEGAL_UNIT_CATEGORIES),
    )
    agg.add_argument(
        "--yearly-out", type=Path, default=None, help="also write code,name,year,creations here"
    )
    agg.add_argument("--cache-dir", type=Path, default=None, help="parquet cache for zip inputs")
    agg.set_defaults(func=cmd_aggregate)

    pan = sub.add_parser(
        "panel",
        help="yearly ICT and total establishment creations per EPCI of France, with the "
        "label treatment (for `analysis label-effect`)",
        description="Write unit,name,year,creations_ict,creations_all,population,"
        "first_treated: one row per EPCI and year from --first-year to the register's last "
        "full year. first_treated is the first year a French Tech label (2014, 2015, 2019) "
        "covered the EPCI, 0 if never.",
    )
    pan.add_argument("path", type=Path, help="StockEtablissement_utf8 .zip, .csv or .parquet")
    pan.add_argument("--out", type=Path, required=True, help="CSV to write (atomically)")
    pan.add_argument(
        "--perimeter",
        choices=territories.PERIMETERS,
        default=territories.DEFAULT_PERIMETER,
        help="which EPCIs a 2019 Capitale label treats (default label)",
    )
    pan.add_argument("--first-year", type=int, default=2008, help="first year (default 2008)")
    pan.add_argument(
        "--last-year", type=int, default=None, help="last year (default: last full year)"
    )
    pan.add_argument(
        "--late-month",
        type=int,
        default=10,
        help="a label announced in or after this month counts from the next year (default "
        "10: November 2014 counts from 2015; 13 keeps every label in its own year)",
    )
    pan.add_argument(
        "--min-population",
        type=int,
        default=0,
        help="leave never-labelled EPCIs below this population out of the comparison group",
    )
    pan.add_argument(
        "--population-vintage",
        type=one_of_ints(rules.POPULATION_VINTAGES),
        metavar="{" + ",".join(map(str, rules.POPULATION_VINTAGES)) + "}",
        default=rules.DEFAULT_POPULATION_VINTAGE,
        help="census year of the EPCI populations",
    )
    pan.add_argument("--cache-dir", type=Path, default=None, help="parquet cache for zip inputs")
    pan.set_defaults(func=cmd_panel)

    conv = sub.add_parser(
        "convert", help="convert a stock zip or CSV once to a cached parquet file"
    )
    conv.add_argument("path", type=Path)
    conv.add_argument(
        "--cache-dir", type=Path, default=None, help="default: data/external/sirene-cache"
    )
    conv.set_defaults(func=cmd_convert)

    fet = sub.add_parser("fetch", help="download an official stock file (resumable)")
    fet.add_argument("--url", default=None, help="default: the stable data.gouv.fr URL of --file")
    fet.add_argument(
        "--file",
        choices=tuple(DEFAULT_URLS),
        default=DEFAULT_FETCH_FILE,
        help=f"official file to download (default {DEFAULT_FETCH_FILE})",
    )
    fet.add_argument("--name", default=None, help="file name for --url (default: from the URL)")
    fet.add_argument("--dest", type=Path, default=None, help="default: data/external/sirene")
    fet.set_defaults(func=cmd_fetch)
    return sirene
