"""Thin command line over the package: build, info, layers, export (``geo-app --help``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from geo_app import build, export, store
from geo_app.errors import GeoAppError
from geo_app.filters import make_filter
from geo_app.settings import load_settings
from geo_app.vocab import BOARDS, KINDS, LEVELS, STATUSES


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", action="append", default=[], choices=list(KINDS),
                   help="keep this kind (repeatable)")
    p.add_argument("--level", action="append", default=[], choices=list(LEVELS),
                   help="keep this level (repeatable)")
    p.add_argument("--status", action="append", default=[], choices=list(STATUSES),
                   help="keep this status (repeatable)")
    p.add_argument("--board", action="append", default=[], metavar="板块",
                   help=f"keep this 板块 (repeatable): {', '.join(BOARDS)}")
    p.add_argument("--layer", action="append", default=[], metavar="ID",
                   help="keep entities inside this strategy layer (repeatable)")
    p.add_argument("--search", "-q", default="", help="name contains this text (zh or en)")


def make_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the documentation test)."""
    parser = argparse.ArgumentParser(
        prog="geo-app", description="Suzhou Innovation Map (苏州科创地图) command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="rebuild the database from data/ and layers/ (keeps user imports)")
    sub.add_parser("info", help="counts by kind, 板块 and precision; data sources")
    sub.add_parser("layers", help="list the strategy layers with area and entity counts")
    ex = sub.add_parser("export", help="write a collection as RFC 7946 GeoJSON")
    ex.add_argument("collection", choices=list(export.COLLECTIONS))
    ex.add_argument("--output", "-o", required=True, help="file to write ('-' for stdout)")
    _add_filters(ex)
    return parser


def _cmd_build() -> int:
    meta = build.build_database(load_settings())
    print(f"built {load_settings().db_path} (source hash {meta['source_hash'][:12]})")
    return 0


def _cmd_info() -> int:
    db = build.ensure_database(load_settings())
    meta = store.read_meta(db)
    print(f"database: {db}\nbuilt: {meta.get('built_at')}  source hash: {meta.get('source_hash', '')[:12]}")
    for title, column in (("kind", "kind"), ("板块 board", "board"),
                          ("location precision", "location_precision"), ("origin", "origin")):
        df = store.query_sql(
            db, f"SELECT coalesce(nullif({column}, ''), '(none)') AS v, count(*) AS n "  # noqa: S608 (fixed column names)
                f"FROM entities GROUP BY 1 ORDER BY 2 DESC, 1")
        print(f"\nentities by {title}:")
        for v, n in df.itertuples(index=False):
            print(f"  {v:<32} {n:>5}")
    located = store.query_sql(db, "SELECT count(*) FILTER (WHERE lon IS NOT NULL), count(*) FROM entities")
    print(f"\nwith a point: {located.iloc[0, 0]} of {located.iloc[0, 1]}")
    print("\nsources:")
    for table in ("boundaries", "water"):
        for src in store.query_sql(db, f"SELECT DISTINCT source FROM {table} ORDER BY 1")["source"]:  # noqa: S608
            print(f"  {table}: {src}")
    print("  registry, indicators, boards: data/*.csv (see data/SOURCES.md)")
    return 0


def _cmd_layers() -> int:
    from geo_app.layers import layer_stats

    db = build.ensure_database(load_settings())
    summary = layer_stats(db)["summary"]
    print(f"{'id':<16} {'name_zh':<10} {'area_km2':>10} {'entities':>8}  name_en")
    for row in summary.itertuples():
        print(f"{row.id:<16} {row.name_zh:<10} {row.area_km2:>10.1f} {row.entities:>8}  {row.name_en}")
    print("\nAll layers are schematic: built by documented rules in layers/*.toml, not official boundaries.")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    settings = load_settings()
    db = build.ensure_database(settings)
    flt = None
    if args.collection == "entities":
        flt = make_filter(kinds=args.kind, levels=args.level, statuses=args.status,
                          boards=args.board, layers=args.layer, search=args.search,
                          known_layers=store.layer_ids(db))
    elif any((args.kind, args.level, args.status, args.board, args.layer, args.search)):
        print("geo-app: filters apply to 'export entities' only", file=sys.stderr)
        return 2
    if args.output == "-":
        n = export.export_geojson(db, args.collection, None, flt=flt, out=sys.stdout)
    else:
        n = export.export_geojson(db, args.collection, Path(args.output), flt=flt)
        print(f"wrote {n} features to {args.output}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``geo-app`` command; returns the exit code."""
    args = make_parser().parse_args(argv)
    try:
        if args.command == "build":
            return _cmd_build()
        if args.command == "info":
            return _cmd_info()
        if args.command == "layers":
            return _cmd_layers()
        if args.command == "export":
            return _cmd_export(args)
    except GeoAppError as err:
        print(f"geo-app: error: {err.user_message}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
