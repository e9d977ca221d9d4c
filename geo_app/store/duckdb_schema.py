"""The DuckDB schema and whole-file writes: a new database file from frames (the build),
frame inserts, and the user rows carried from the old file into a rebuilt one.

- **Entities are stored grouped by 板块** within the shipped registry and within each
  import, so a 板块 filter reads a few contiguous blocks (DuckDB skips the rest by their
  min/max statistics) instead of decompressing every column of every row group.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd

from geo_app.errors import DataError
from geo_app.store.common import _TABLES, SCHEMA_VERSION, USER_TABLES, _by_board, _geoms_to_wkb
from geo_app.store.duckdb_connect import _scalar, connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS boards (
    id VARCHAR PRIMARY KEY, name_zh VARCHAR NOT NULL UNIQUE, name_en VARCHAR NOT NULL,
    land_area_km2 DOUBLE, area_year VARCHAR, area_source VARCHAR,
    county_adcode VARCHAR, polygon_status VARCHAR, notes VARCHAR);
CREATE TABLE IF NOT EXISTS boundaries (
    adcode VARCHAR PRIMARY KEY, name_zh VARCHAR, name_en VARCHAR, level VARCHAR,
    source VARCHAR, source_datum VARCHAR, conversion VARCHAR, geom GEOMETRY);
CREATE TABLE IF NOT EXISTS water (
    id VARCHAR PRIMARY KEY, name_zh VARCHAR, name_en VARCHAR, kind VARCHAR,
    source VARCHAR, source_datum VARCHAR, conversion VARCHAR, geom GEOMETRY);
CREATE TABLE IF NOT EXISTS import_batches (
    batch_id VARCHAR PRIMARY KEY, file_name VARCHAR, imported_at TIMESTAMP,
    target VARCHAR, row_count INTEGER, source_datum VARCHAR,
    actor_subject VARCHAR, actor_email VARCHAR, actor_name VARCHAR, actor_kind VARCHAR);
CREATE TABLE IF NOT EXISTS audit (
    changed_at TIMESTAMP NOT NULL, action VARCHAR NOT NULL, batch_id VARCHAR, target VARCHAR,
    file_name VARCHAR, row_count INTEGER, actor_subject VARCHAR NOT NULL,
    actor_email VARCHAR, actor_name VARCHAR, actor_kind VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    id VARCHAR PRIMARY KEY, name_zh VARCHAR NOT NULL, name_en VARCHAR,
    kind VARCHAR NOT NULL, level VARCHAR NOT NULL, status VARCHAR NOT NULL, board VARCHAR,
    lon DOUBLE, lat DOUBLE, location_precision VARCHAR NOT NULL, location_source VARCHAR,
    source_datum VARCHAR, source_lon DOUBLE, source_lat DOUBLE, conversion VARCHAR,
    source VARCHAR NOT NULL, notes VARCHAR,
    origin VARCHAR NOT NULL DEFAULT 'shipped', batch_id VARCHAR,
    layers VARCHAR NOT NULL DEFAULT '', geom GEOMETRY);
CREATE TABLE IF NOT EXISTS indicators (
    id VARCHAR PRIMARY KEY, metric VARCHAR, indicator_zh VARCHAR, indicator_en VARCHAR,
    year INTEGER, kind VARCHAR, comparator VARCHAR, value DOUBLE, value_max DOUBLE,
    unit VARCHAR, section VARCHAR, notes VARCHAR);
CREATE TABLE IF NOT EXISTS board_indicators (
    board VARCHAR NOT NULL, indicator VARCHAR NOT NULL, year VARCHAR NOT NULL, value DOUBLE,
    unit VARCHAR, source VARCHAR NOT NULL, notes VARCHAR, comparator VARCHAR NOT NULL DEFAULT '=',
    origin VARCHAR NOT NULL DEFAULT 'shipped', batch_id VARCHAR);
CREATE TABLE IF NOT EXISTS layers (
    id VARCHAR PRIMARY KEY, name_zh VARCHAR, name_en VARCHAR, color VARCHAR,
    schematic BOOLEAN NOT NULL DEFAULT TRUE, area_km2 DOUBLE, method VARCHAR,
    facts VARCHAR, spec_file VARCHAR, spec_json VARCHAR, geom GEOMETRY);
CREATE TABLE IF NOT EXISTS layer_members (entity_id VARCHAR, layer_id VARCHAR);
"""


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    """Insert a (Geo)DataFrame into ``table`` by column name; geometry goes to ``geom``.

    ``table`` must be one of the schema's tables (it is not user input).
    """
    if table not in _TABLES:
        msg = f"Unknown table {table!r}"
        raise ValueError(msg)
    df = pd.DataFrame(frame).copy()
    geom_sql = ""
    if isinstance(frame, gpd.GeoDataFrame):
        df = df.drop(columns=[frame.geometry.name])
        df["__wkb"] = _geoms_to_wkb(frame.geometry.values)
        geom_sql = ", geom"
    cols = [c for c in df.columns if c != "__wkb"]
    col_sql = ", ".join(f'"{c}"' for c in cols)
    select = ", ".join(f'"{c}"' for c in cols)
    if geom_sql:
        select += ", CASE WHEN __wkb IS NULL THEN NULL ELSE ST_GeomFromWKB(__wkb) END"
    con.register("__frame", df)
    try:
        con.execute(f"INSERT INTO {table} ({col_sql}{geom_sql}) SELECT {select} FROM __frame")  # noqa: S608 (names from the schema)
    finally:
        con.unregister("__frame")
    return len(df)


def write_database(path: Path, tables: Mapping[str, pd.DataFrame], meta: Mapping[str, str]) -> None:
    """Create a new database file at ``path`` holding ``tables`` (one transaction)."""
    path = Path(path)
    if path.exists():
        path.unlink()
    with connect(path, read_only=False) as con:
        con.execute("BEGIN")
        con.execute(SCHEMA)
        for name, frame in tables.items():
            insert_frame(con, name, _by_board(frame) if name == "entities" else frame)
        con.executemany("INSERT INTO meta VALUES (?, ?)",
                        [[k, v] for k, v in {**meta, "schema_version": SCHEMA_VERSION}.items()])
        con.execute("COMMIT")
        con.execute("CHECKPOINT")


def copy_user_data(old: Path, new: Path) -> int:
    """Copy every user-imported row from ``old`` into ``new``; returns the rows copied.

    Runs in one transaction on ``new``; ``old`` is attached read-only.
    """
    if not Path(old).exists():
        return 0
    with connect(new, read_only=False) as con:
        oldq = str(old).replace("'", "''")
        try:
            con.execute(f"ATTACH '{oldq}' AS old (READ_ONLY)")
        except duckdb.Error as err:
            msg = f"Cannot read the previous database {old} to carry user imports over: {err}"
            raise DataError(msg) from err
        try:
            tables = {r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'old'"
            ).fetchall()}
            con.execute("BEGIN")
            copied = 0
            for table in USER_TABLES:
                if table in tables:
                    copied += _copy(con, table, "TRUE")
            for table in ("entities", "board_indicators"):
                if table in tables:
                    copied += _copy(con, table, "origin = 'user'")
            con.execute("COMMIT")
        finally:
            con.execute("DETACH old")
        con.execute("CHECKPOINT")
    return copied


def _copy(con: duckdb.DuckDBPyConnection, table: str, where: str) -> int:
    new_cols = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_name = ? ORDER BY ordinal_position",
        [table]).fetchall()]
    old_cols = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_catalog = 'old' AND table_name = ?", [table]).fetchall()}
    shared = [c for c in new_cols if c in old_cols]
    cols = ", ".join(f'"{c}"' for c in shared)
    n = _scalar(con, f"SELECT count(*) FROM old.{table} WHERE {where}")  # noqa: S608 (package SQL)
    if table != "entities":
        con.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM old.{table} "  # noqa: S608
                    f"WHERE {where}")
        return n
    # A user row whose id a newer shipped registry now uses is never dropped: the shipped
    # row keeps the id, the user row is kept as '<id>@<batch>' with a note saying why.
    clash = "id IN (SELECT id FROM main.entities WHERE origin = 'shipped')"
    renamed = [
        "o.id || '@' || coalesce(o.batch_id, 'user')" if c == "id" else
        "concat_ws('; ', nullif(o.notes, ''), 'id ' || o.id || ' was taken by the shipped registry "
        "in a later release; kept under this id')" if c == "notes" else f'o."{c}"'
        for c in shared
    ]
    con.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM old.{table} "  # noqa: S608
                f"WHERE {where} AND NOT {clash}")
    con.execute(f"INSERT INTO main.{table} ({cols}) SELECT {', '.join(renamed)} "  # noqa: S608
                f"FROM old.{table} o WHERE {where} AND {clash}")
    return n
