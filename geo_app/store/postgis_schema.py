"""The PostGIS schema (the DuckDB one in PostgreSQL types), a build into a schema of its own,
user rows carried over a rebuild, and the swap (see :mod:`geo_app.store.postgis`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from geo_app.store.common import (
    _TABLES,
    SCHEMA_VERSION,
    USER_TABLES,
    _by_board,
)
from geo_app.store.postgis_connect import (
    _LOCAL,
    BUILD_PREFIX,
    SCHEMA_NAME,
    _close_pool,
    _exclusive_lock,
    _pool,
    _primary_url,
    schema_for,
)

_T = 'text COLLATE "C"'
_ROWID = "rowid bigint GENERATED ALWAYS AS IDENTITY"

#: The DuckDB schema (``geo_app.store.SCHEMA``) in PostgreSQL types: same tables, columns
#: and order, ``geometry(…, 4326)`` for GEOMETRY, and a ``rowid`` last.
SCHEMA_DDL = f"""
CREATE TABLE meta (key {_T} PRIMARY KEY, value {_T}, {_ROWID});
CREATE TABLE boards (
    id {_T} PRIMARY KEY, name_zh {_T} NOT NULL UNIQUE, name_en {_T} NOT NULL,
    land_area_km2 double precision, area_year {_T}, area_source {_T},
    county_adcode {_T}, polygon_status {_T}, notes {_T}, {_ROWID});
CREATE TABLE boundaries (
    adcode {_T} PRIMARY KEY, name_zh {_T}, name_en {_T}, level {_T},
    source {_T}, source_datum {_T}, conversion {_T}, geom geometry(Geometry, 4326), {_ROWID});
CREATE TABLE water (
    id {_T} PRIMARY KEY, name_zh {_T}, name_en {_T}, kind {_T},
    source {_T}, source_datum {_T}, conversion {_T}, geom geometry(Geometry, 4326), {_ROWID});
CREATE TABLE import_batches (
    batch_id {_T} PRIMARY KEY, file_name {_T}, imported_at timestamp,
    target {_T}, row_count integer, source_datum {_T},
    actor_subject {_T}, actor_email {_T}, actor_name {_T}, actor_kind {_T}, {_ROWID});
CREATE TABLE audit (
    changed_at timestamp NOT NULL, action {_T} NOT NULL, batch_id {_T}, target {_T},
    file_name {_T}, row_count integer, actor_subject {_T} NOT NULL,
    actor_email {_T}, actor_name {_T}, actor_kind {_T} NOT NULL, {_ROWID});
CREATE TABLE entities (
    id {_T} PRIMARY KEY, name_zh {_T} NOT NULL, name_en {_T},
    kind {_T} NOT NULL, level {_T} NOT NULL, status {_T} NOT NULL, board {_T},
    lon double precision, lat double precision, location_precision {_T} NOT NULL,
    location_source {_T}, source_datum {_T}, source_lon double precision,
    source_lat double precision, conversion {_T}, source {_T} NOT NULL, notes {_T},
    origin {_T} NOT NULL DEFAULT 'shipped', batch_id {_T},
    layers {_T} NOT NULL DEFAULT '', geom geometry(Point, 4326), {_ROWID});
CREATE TABLE indicators (
    id {_T} PRIMARY KEY, metric {_T}, indicator_zh {_T}, indicator_en {_T},
    year integer, kind {_T}, comparator {_T}, value double precision,
    value_max double precision, unit {_T}, section {_T}, notes {_T}, {_ROWID});
CREATE TABLE board_indicators (
    board {_T} NOT NULL, indicator {_T} NOT NULL, year {_T} NOT NULL, value double precision,
    unit {_T}, source {_T} NOT NULL, notes {_T}, comparator {_T} NOT NULL DEFAULT '=',
    origin {_T} NOT NULL DEFAULT 'shipped', batch_id {_T}, {_ROWID});
CREATE TABLE layers (
    id {_T} PRIMARY KEY, name_zh {_T}, name_en {_T}, color {_T},
    schematic boolean NOT NULL DEFAULT TRUE, area_km2 double precision, method {_T},
    facts {_T}, spec_file {_T}, spec_json {_T}, geom geometry(Geometry, 4326), {_ROWID});
CREATE TABLE layer_members (entity_id {_T}, layer_id {_T}, {_ROWID});
CREATE TABLE data_version (value {_T} NOT NULL);
"""

#: Indexes created after the bulk load of a build (GiST on every geometry).
INDEX_DDL = """
CREATE UNIQUE INDEX entities_rowid ON entities (rowid);
CREATE INDEX entities_geom ON entities USING gist (geom);
CREATE INDEX entities_board ON entities (board);
CREATE INDEX entities_batch ON entities (batch_id);
CREATE INDEX entities_lonlat ON entities (lon, lat);
CREATE INDEX boundaries_geom ON boundaries USING gist (geom);
CREATE INDEX water_geom ON water USING gist (geom);
CREATE INDEX layers_geom ON layers USING gist (geom);
CREATE INDEX layer_members_entity ON layer_members (entity_id);
CREATE INDEX layer_members_layer ON layer_members (layer_id);
CREATE INDEX board_indicators_batch ON board_indicators (batch_id);
CREATE UNIQUE INDEX board_indicators_rowid ON board_indicators (rowid);
CREATE UNIQUE INDEX indicators_rowid ON indicators (rowid);
"""

#: The tables of the schema (names are never user input).
TABLES = ("meta", "boards", "boundaries", "water", "import_batches", "audit", "entities",
          "indicators", "board_indicators", "layers", "layer_members")
_GEO_TABLES = frozenset({"boundaries", "water", "layers", "entities"})


# ----------------------------------------------------------------------------- writing


def _ewkb(geoms: Any) -> list[str | None]:
    """Hex EWKB (SRID 4326) of each geometry; None for a missing or empty one."""
    arr = np.asarray(geoms, dtype=object)
    missing = np.array([g is None for g in arr], dtype=bool)
    present = arr[~missing]
    missing[~missing] = shapely.is_empty(present)
    out = np.full(len(arr), None, dtype=object)
    keep = arr[~missing]
    if len(keep):
        out[~missing] = shapely.to_wkb(shapely.set_srid(keep, 4326), hex=True, include_srid=True)
    return list(out)


def _python(value: Any) -> Any:
    """A single value as psycopg adapts it: NaN/NA → None, numpy scalars → Python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _cells(series: pd.Series) -> list[Any]:
    """A column as Python values for COPY: NaN, NA and NaT → None (whole column at once)."""
    values = series.astype(object).where(series.notna(), None).tolist()
    return [v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in values] \
        if pd.api.types.is_datetime64_any_dtype(series) else values


def insert_frame(con: psycopg.Connection[Any], table: str, frame: pd.DataFrame) -> int:
    """COPY a (Geo)DataFrame into ``table`` by column name; geometry goes to ``geom``."""
    if table not in _TABLES:
        msg = f"Unknown table {table!r}"
        raise ValueError(msg)
    df = pd.DataFrame(frame)
    cols = list(df.columns)
    columns: list[list[Any]] = []
    if isinstance(frame, gpd.GeoDataFrame):
        cols.remove(frame.geometry.name)
    columns = [_cells(df[c]) for c in cols]
    names = list(cols)
    if isinstance(frame, gpd.GeoDataFrame):
        columns.append(_ewkb(frame.geometry.values))
        names.append("geom")
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in names))
    with con.cursor() as cur, cur.copy(stmt) as copy:
        for row in zip(*columns, strict=True):
            copy.write_row(row)
    return len(df)


def write_database(path: Path | str, tables: Mapping[str, pd.DataFrame],
                   meta: Mapping[str, str]) -> None:
    """Write a new database of ``tables`` into the schema ``path`` names (a build's schema,
    swapped in by :func:`swap_in`; or the live schema when there is none yet)."""
    schema = schema_for(path)
    _exclusive_lock()
    with _pool(_primary_url(), schema).connection() as con:
        _drop_stale_build_schemas(con, keep=())
        con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        con.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        con.execute(sql.SQL("SET LOCAL search_path = {}, public").format(sql.Identifier(schema)))
        con.execute(SCHEMA_DDL)
        for name, frame in tables.items():
            insert_frame(con, name, _by_board(frame) if name == "entities" else frame)
        with con.cursor() as cur:
            cur.executemany("INSERT INTO meta (key, value) VALUES (%s, %s)",
                            [[k, v] for k, v in {**meta, "schema_version": SCHEMA_VERSION}.items()])
            cur.execute("INSERT INTO data_version (value) VALUES (%s)", [uuid.uuid4().hex])
        con.execute(INDEX_DDL)
        for table in TABLES:
            con.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def _drop_stale_build_schemas(con: psycopg.Connection[Any], keep: Sequence[str]) -> None:
    """Drop build schemas left by builds that died (only under the exclusive lock)."""
    if getattr(_LOCAL, "con", None) is None:
        return  # without the exclusive lock another build may be using them
    rows = con.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                       [BUILD_PREFIX.replace("_", r"\_") + "%"]).fetchall()
    for (name,) in rows:
        if name not in keep:
            con.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def _schema_exists(con: psycopg.Connection[Any], schema: str) -> bool:
    row = con.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
    return bool(row and row[0])


def copy_user_data(old: Path | str, new: Path | str) -> int:
    """Copy every user-imported row of the live schema into the build's; returns the count.

    A user row whose id the new shipped registry now uses is kept as ``<id>@<batch>``
    with a note saying why (as on DuckDB).
    """
    src, dst = schema_for(old), schema_for(new)
    with _pool(_primary_url(), dst).connection() as con:
        if not _schema_exists(con, src):
            return 0
        copied = 0
        for table in USER_TABLES:
            copied += _copy(con, src, dst, table, "TRUE")
        for table in ("entities", "board_indicators"):
            copied += _copy(con, src, dst, table, "origin = 'user'")
    return copied


def _columns(con: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = %s AND column_name <> 'rowid' ORDER BY ordinal_position",
        [schema, table]).fetchall()
    return [str(r[0]) for r in rows]


def _copy(con: psycopg.Connection[Any], src: str, dst: str, table: str, where: str) -> int:
    shared = [c for c in _columns(con, dst, table) if c in set(_columns(con, src, table))]
    if not shared:
        return 0
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in shared)
    old = sql.Identifier(src, table)
    new = sql.Identifier(dst, table)
    cond = sql.SQL(where)  # one of two constant conditions of this module
    row = con.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(old, cond)).fetchone()
    n = int(row[0]) if row else 0
    if table != "entities":
        con.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} WHERE {} ORDER BY rowid")
                    .format(new, cols, cols, old, cond))
        return n
    clash = sql.SQL("o.id IN (SELECT id FROM {} WHERE origin = 'shipped')").format(new)
    renamed = sql.SQL(", ").join(
        sql.SQL("o.id || '@' || coalesce(o.batch_id, 'user')") if c == "id" else
        sql.SQL("concat_ws('; ', nullif(o.notes, ''), 'id ' || o.id || ' was taken by the "
                "shipped registry in a later release; kept under this id')") if c == "notes"
        else sql.SQL("o.{}").format(sql.Identifier(c))
        for c in shared)
    plain = sql.SQL(", ").join(sql.SQL("o.{}").format(sql.Identifier(c)) for c in shared)
    con.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} o WHERE {} AND NOT {} "
                        "ORDER BY o.rowid").format(new, cols, plain, old, cond, clash))
    con.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} o WHERE {} AND {} "
                        "ORDER BY o.rowid").format(new, cols, renamed, old, cond, clash))
    return n


def swap_in(new: Path | str, live: Path | str) -> None:
    """Make the build's schema the live one, in one short transaction (readers see the old
    tables or the new ones), then drop the old tables."""
    src, dst = schema_for(new), schema_for(live)
    if src == dst:
        return
    old = f"{BUILD_PREFIX}old_{uuid.uuid4().hex[:8]}"
    with _pool(_primary_url(), dst).connection() as con:
        if _schema_exists(con, dst):
            con.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(dst), sql.Identifier(old)))
        con.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
            sql.Identifier(src), sql.Identifier(dst)))
    _close_pool(_primary_url(), src)
    with _pool(_primary_url(), dst).connection() as con:
        con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(old)))


def drop_build(path: Path | str) -> None:
    """Drop the schema of a build that did not finish (``path`` is its new file)."""
    schema = schema_for(path)
    if schema == SCHEMA_NAME:
        return
    _close_pool(_primary_url(), schema)
    with _pool(_primary_url(), SCHEMA_NAME).connection() as con:
        con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def database_exists(path: Path | str) -> bool:
    """Whether the schema ``path`` names exists on the primary."""
    with _pool(_primary_url(), SCHEMA_NAME).connection() as con:
        return _schema_exists(con, schema_for(path))


def clear_leftovers(path: Path | str) -> list[Path]:
    """No files to clear on PostgreSQL (a killed build's schema is dropped by the next build,
    under the exclusive lock: :func:`write_database`); returns an empty list."""
    return []
