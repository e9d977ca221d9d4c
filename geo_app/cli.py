"""Thin command line over the package: build, info, layers, export (``geo-app --help``).

The command line is the local administrator's path: its writes (``import``,
``remove-batch``, ``import-indicators``) act as the OS user running it, a local editor,
and are recorded under that name (``geo-app batches``, ``geo-app audit``).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from geo_app import build, export, store
from geo_app.auth import local_actor
from geo_app.errors import ExportError, FilterError, GeoAppError, ImportValidationError
from geo_app.filters import add_filter_options, filter_args, filter_from_args, parse_values
from geo_app.settings import load_settings
from geo_app.vocab import BOARDS


def make_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the documentation test)."""
    parser = argparse.ArgumentParser(
        prog="geo-app", description="Suzhou Innovation Map (苏州科创地图) command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="rebuild the database from data/ and layers/ (keeps user imports)")
    sub.add_parser("info", help="counts by kind, 板块 and precision; data sources")
    sub.add_parser("layers", help="list the strategy layers with area and entity counts")
    ex = sub.add_parser("export", help="write a collection as RFC 7946 GeoJSON, CSV, Excel or "
                        "GeoPackage (the same bytes as the app's download; docs/export.md)")
    ex.add_argument("collection", choices=list(export.COLLECTIONS))
    ex.add_argument("--output", "-o", required=True, help="file to write ('-' for stdout)")
    ex.add_argument("--format", "-f", choices=list(export.FORMATS), default=None,
                    help="default: from the --output extension (.geojson/.json, .csv, .xlsx, "
                         ".gpkg), else geojson")
    add_filter_options(ex)
    _add_compare_parsers(sub)
    _add_import_parsers(sub)
    _add_api_parser(sub)
    return parser


# --- OGC API – Features server (docs/api.md) ----------------------------------------


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        msg = f"not a TCP port (1-65535): {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def _add_api_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    srv = sub.add_parser("api", help="serve the data as OGC API – Features for QGIS, ArcGIS, "
                         "GDAL (docs/api.md)")
    srv.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    srv.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000)")
    srv.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                     help="let browser scripts from ORIGIN read the API (repeatable; '*' for "
                          "any); default: no CORS headers")


def _cmd_api(args: argparse.Namespace) -> int:
    from geo_app import asgi

    db = build.ensure_database(load_settings())
    asgi.serve(db, host=args.host, port=args.port, cors_origins=args.cors_origin)
    return 0


# --- import of user entities (docs/import.md) --------------------------------------


def _add_import_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    imp = sub.add_parser("import", help="import your own entities from CSV, .xlsx or GeoJSON "
                         "(all rows or none; docs/import.md)")
    imp.add_argument("file", help="a file with the registry's columns (data/import_template.csv)")
    imp.add_argument("--datum", choices=["wgs84", "gcj02", "bd09"], default=None,
                     help="datum of every coordinate (default: the source_datum column; "
                          "GeoJSON: WGS-84)")
    imp.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    sub.add_parser("batches", help="list the import batches with who made them and when")
    sub.add_parser("audit", help="list every import and removal with who made it and when "
                   "(append-only; kept across rebuilds)")
    rm = sub.add_parser("remove-batch", help="remove one import batch and all its rows")
    rm.add_argument("batch_id", metavar="ID")


def _cmd_import(args: argparse.Namespace) -> int:
    from geo_app import ingest

    db = build.ensure_database(load_settings())
    report, batch = ingest.import_file(Path(args.file), db, actor=local_actor(), datum=args.datum,
                                       dry_run=args.dry_run)
    for problem in report.problems:
        print(f"{problem.severity}: {problem.describe('en')}\n    {problem.describe('zh')}",
              file=sys.stderr)
    print(report.summary("en"))
    if not report.ok:
        return 1
    if batch is None:
        print(f"{len(report.rows)} rows are valid; nothing was written (--dry-run)")
    else:
        print(f"imported {len(report.rows)} rows as batch {batch}")
    return 0


def _cmd_batches() -> int:
    from geo_app import ingest

    batches = ingest.list_batches(build.ensure_database(load_settings()))
    if batches.empty:
        print("no import batches")
    for b in batches.itertuples(index=False):
        print(f"{b.batch_id}  {b.imported_at:%Y-%m-%d %H:%M:%S} UTC  {b.target:<16} "
              f"{b.rows_present:>6} rows  {_text(b.source_datum):<12} by {_text(b.made_by):<24} "
              f"{b.file_name}")
    return 0


def _text(value: object) -> str:
    """A text cell as shown by the listings: ``-`` when empty or missing."""
    return value if isinstance(value, str) and value else "-"


def _cmd_audit() -> int:
    from geo_app import ingest

    audit = ingest.list_audit(build.ensure_database(load_settings()))
    if audit.empty:
        print("no changes recorded")
    for a in audit.itertuples(index=False):
        rows = "-" if a.row_count is None or a.row_count != a.row_count else f"{int(a.row_count)}"
        print(f"{a.changed_at:%Y-%m-%d %H:%M:%S} UTC  {a.action:<7} {a.batch_id}  "
              f"{_text(a.target):<16} {rows:>6} rows  by {_text(a.made_by):<24} "
              f"{_text(a.file_name)}")
    return 0


def _cmd_remove_batch(args: argparse.Namespace) -> int:
    from geo_app import ingest

    removed = ingest.remove_batch(build.ensure_database(load_settings()), args.batch_id,
                                  actor=local_actor())
    print(f"removed batch {args.batch_id} ({removed} rows)")
    return 0


# --- 板块 comparison and user indicators (docs/indicators.md) -------------------------------------


def _add_compare_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmp = sub.add_parser("compare", help="compare the ten 板块 on one or more metrics "
                         "(the same table as the comparison page)")
    cmp.add_argument("--boards", nargs="+", action="extend", default=[], metavar="板块",
                     help="keep these 板块 (ranks stay among all ten; space- or comma-separated, "
                          f"repeatable): {', '.join(BOARDS)}")
    cmp.add_argument("--metric", action="append", default=[], metavar="KEY",
                     help="metric key (repeatable; default: the best-covered published figure, "
                          "'ind:gdp'); see --list-metrics")
    cmp.add_argument("--year", default=None,
                     help="year of public figures (default: latest per 板块)")
    cmp.add_argument("--lang", choices=["zh", "en"], default="zh", help="column headers and labels")
    cmp.add_argument("--format", choices=["table", "csv", "xlsx"], default="table")
    cmp.add_argument("--output", "-o", default="-", help="file to write ('-' for stdout; not xlsx)")
    cmp.add_argument("--list-metrics", action="store_true", help="list the metric keys and exit")
    imp = sub.add_parser("import-indicators",
                         help="import your own per-板块 figures from a CSV (docs/indicators.md)")
    imp.add_argument("file", help="CSV with columns 板块,indicator,year,value,unit,source(,notes)")
    imp.add_argument("--dry-run", action="store_true", help="check the file, write nothing")


def _cmd_compare(args: argparse.Namespace) -> int:
    from geo_app import districts

    db = build.ensure_database(load_settings())
    if args.format == "xlsx" and args.output == "-" and not args.list_metrics:
        print("geo-app: --format xlsx needs --output FILE", file=sys.stderr)
        return 2
    # checked before any work: never the database, never a folder
    out = None if args.output == "-" else export.check_output_path(args.output, db)
    boards, rejected = parse_values("board", args.boards)  # comma lists too, as in ?cmp=
    if rejected:
        raise FilterError(rejected[0].message)
    data = districts.load_compare_data(db)
    if args.list_metrics:
        for m in districts.list_metrics(data):
            print(f"{m.key:<44} {m.label(args.lang)}")
        return 0
    table = districts.comparison_table(data, args.metric, boards=boards, year=args.year,
                                       lang=args.lang)
    years = districts.mixed_years(table, args.lang)
    if years:
        print(f"geo-app: warning: the figures come from different years ({', '.join(years)}); "
              "ranks compare them anyway", file=sys.stderr)
    payload: bytes = {"csv": districts.table_to_csv, "xlsx": districts.table_to_xlsx}.get(
        args.format, lambda df: districts.table_to_text(df).encode("utf-8"))(table)
    if out is None:
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
    else:
        try:
            out.write_bytes(payload)
        except OSError as err:
            msg = f"Cannot write {out}: {err.strerror or err}"
            raise ExportError(msg) from err
        print(f"wrote {len(table)} rows to {args.output}", file=sys.stderr)
    return 0


def _cmd_import_indicators(args: argparse.Namespace) -> int:
    from geo_app import ingest

    path = Path(args.file)
    if not path.exists():
        print(f"geo-app: error: no such file {path}", file=sys.stderr)
        return 1
    try:
        # read_file refuses a device, a pipe or an oversized file before reading it whole
        data = ingest.read_file(path)
        db = build.ensure_database(load_settings())
        rows, batch = ingest.import_user_indicators(db, data, path.name,
                                                    actor=local_actor(), dry_run=args.dry_run)
    except ImportValidationError as err:
        print(f"geo-app: error: {err.user_message}", file=sys.stderr)
        for p in err.problems:
            print(f"  row {p['row']}\t{p['column']}\t{p['problem']}", file=sys.stderr)
        return 1
    if batch is None:
        print(f"{len(rows)} rows are valid; nothing was written (--dry-run)")
    else:
        print(f"imported {len(rows)} rows as batch {batch}")
    return 0


def _cmd_build() -> int:
    meta = build.build_database(load_settings())
    print(f"built {load_settings().db_path} (source hash {meta['source_hash'][:12]})")
    return 0


def _cmd_info() -> int:
    db = build.ensure_database(load_settings())
    meta = store.read_meta(db)
    print(f"database: {db}\nbuilt: {meta.get('built_at')}  source hash: "
          f"{meta.get('source_hash', '')[:12]}")
    for title, column in (("kind", "kind"), ("板块 board", "board"),
                          ("location precision", "location_precision"), ("origin", "origin")):
        print(f"\nentities by {title}:")
        for v, n in store.entity_counts(db, column):
            print(f"  {v:<32} {n:>5}")
    located, total = store.located_counts(db)
    print(f"\nwith a point: {located} of {total}")
    stacks = store.shared_points(db)
    print("\nlargest stacks (entities sharing one point):" if len(stacks) else
          "\nlargest stacks: none (every point holds one entity)")
    for row in stacks.itertuples():
        print(f"  {row.lon:.5f},{row.lat:.5f}  {row.n:>4}  ({row.precisions})  {row.ids}")
    print("\nsources:")
    for table in ("boundaries", "water"):
        for src in store.read_table(db, table)["source"].drop_duplicates().sort_values():
            print(f"  {table}: {src}")
    print("  registry, indicators, boards: data/*.csv (see data/SOURCES.md)")
    return 0


def _cmd_layers() -> int:
    from geo_app.layers import layer_stats

    db = build.ensure_database(load_settings())
    summary = layer_stats(db)["summary"]
    print(f"{'id':<16} {'name_zh':<10} {'area_km2':>10} {'entities':>8}  name_en")
    for row in summary.itertuples():
        print(f"{row.id:<16} {row.name_zh:<10} {row.area_km2:>10.1f} {row.entities:>8}  "
              f"{row.name_en}")
    print("\nAll layers are schematic: built by documented rules in layers/*.toml, not official "
          "boundaries.")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    settings = load_settings()
    db = build.ensure_database(settings)
    flt = None
    if args.collection == "entities":
        flt = filter_from_args(args, known_layers=store.layer_ids(db))
    elif any(filter_args(args).values()):
        print("geo-app: filters apply to 'export entities' only", file=sys.stderr)
        return 2
    fmt = args.format or export.format_from_path(args.output) or "geojson"
    if args.output == "-":
        sys.stdout.flush()
        export.write_export(db, args.collection, fmt, sys.stdout.buffer, flt=flt)
        sys.stdout.buffer.flush()
    else:
        n = export.export_file(db, args.collection, fmt, args.output, flt=flt)
        print(f"wrote {n} features to {args.output} ({fmt})", file=sys.stderr)
    return 0


#: Exit code after the reader of stdout went away (``geo-app info | head``): 128 + SIGPIPE,
#: what the shell reports for a command a broken pipe ended.
BROKEN_PIPE_EXIT = 141


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush cannot fail again (the
    handling the Python documentation recommends for SIGPIPE)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):  # not a real file: nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _run(args: argparse.Namespace) -> int:
    if args.command == "build":
        return _cmd_build()
    if args.command == "info":
        return _cmd_info()
    if args.command == "layers":
        return _cmd_layers()
    if args.command == "export":
        return _cmd_export(args)
    if args.command == "compare":
        return _cmd_compare(args)
    if args.command == "import-indicators":
        return _cmd_import_indicators(args)
    if args.command == "import":
        return _cmd_import(args)
    if args.command == "batches":
        return _cmd_batches()
    if args.command == "audit":
        return _cmd_audit()
    if args.command == "remove-batch":
        return _cmd_remove_batch(args)
    if args.command == "api":
        return _cmd_api(args)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``geo-app`` command; returns the exit code.

    Errors the user can act on are one line on stderr (``geo-app: error: ...``, exit code
    1), never a traceback; a closed stdout (``geo-app info | head -1``) ends quietly with
    :data:`BROKEN_PIPE_EXIT`.
    """
    try:
        try:
            args = make_parser().parse_args(argv)
            return _run(args)
        except GeoAppError as err:
            print(f"geo-app: error: {err.user_message}", file=sys.stderr)
            return 1
        except BrokenPipeError:
            raise
        except OSError as err:  # a file the user named cannot be read or written
            where = f": {err.filename}" if err.filename else ""
            print(f"geo-app: error: {err.strerror or err}{where}", file=sys.stderr)
            return 1
        finally:
            sys.stdout.flush()  # here, so a closed pipe is caught below, not at exit
    except BrokenPipeError:
        _silence_stdout()
        return BROKEN_PIPE_EXIT


if __name__ == "__main__":
    sys.exit(main())
