"""PostGIS reads: tables, entities by filter, pages, counts, batches and the audit trail, as
the DuckDB backend returns them (same columns, dtypes and order)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import psycopg
import pyarrow as pa
import shapely
from psycopg import sql

from geo_app.errors import DataError
from geo_app.filters import EntityFilter
from geo_app.store.common import (
    _TABLES,
    ENTITY_COLUMNS,
    FILTER_COLUMNS,
    caseless,
    entities_to_gdf,
    page_sql,
)
from geo_app.store.postgis_connect import (
    _connection,
    _primary_url,
    _read,
    describe,
    read_url,
    schema_for,
)

# ----------------------------------------------------------------------------- frames

_ARROW_TYPES = {
    "text": pa.string(), "double precision": pa.float64(), "integer": pa.int32(),
    "bigint": pa.int64(), "boolean": pa.bool_(), "timestamp": pa.timestamp("us"),
    "smallint": pa.int16(),
}


def _arrow_type(con: psycopg.Connection[Any], desc: Any) -> pa.DataType:
    name = con.adapters.types.get(desc.type_code)
    key = {"text": "text", "varchar": "text", "float8": "double precision",
           "int4": "integer", "int8": "bigint", "bool": "boolean",
           "timestamp": "timestamp", "int2": "smallint"}.get(name.name if name else "", "text")
    return _ARROW_TYPES[key]


def _arrow_batch(names: Sequence[str], types: Sequence[pa.DataType],
                 rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = [pa.array(list(c), type=t) for c, t in zip(cols, types, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, names=list(names))


def _fetch_arrow(con: psycopg.Connection[Any], query: Any, params: Sequence[Any]) -> pa.Table:
    cur = con.execute(query, list(params))
    rows = cur.fetchall()
    desc = cur.description or []
    names = [d.name for d in desc]
    types = [_arrow_type(con, d) for d in desc]
    return pa.Table.from_batches([_arrow_batch(names, types, rows)],
                                 schema=pa.schema(list(zip(names, types, strict=True))))


def _duck_frame(table: pa.Table) -> pd.DataFrame:
    """``table`` as DuckDB's ``.df()`` returns a result: text as pandas ``str`` (``object``
    when empty), integers and booleans with a nullable dtype only when a NULL is present."""
    out: dict[str, Any] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        values = col.to_pylist()
        if pa.types.is_string(t):
            # DuckDB gives ``object`` to a text column without a single value
            some = col.null_count < len(values)
            out[name] = pd.Series(values, dtype="str" if some else object)
        elif pa.types.is_integer(t):
            nullable = col.null_count > 0
            width = {8: "8", 16: "16", 32: "32", 64: "64"}[t.bit_width]
            kind = ("UInt" if pa.types.is_unsigned_integer(t) else "Int") if nullable else \
                ("uint" if pa.types.is_unsigned_integer(t) else "int")
            out[name] = pd.Series(values, dtype=f"{kind}{width}")
        elif pa.types.is_boolean(t):
            out[name] = pd.Series(values, dtype="boolean" if col.null_count else bool)
        elif pa.types.is_timestamp(t):
            out[name] = pd.Series(pd.to_datetime(values), dtype="datetime64[us]")
        else:
            out[name] = pd.Series(values, dtype="float64")
    return pd.DataFrame(out, columns=table.column_names)


def _frame(path: Path | str, query: Any, params: Sequence[Any] = ()) -> pd.DataFrame:
    with _read(path) as con:
        return _duck_frame(_fetch_arrow(con, query, params))


# ----------------------------------------------------------------------------- reading


def read_meta(path: Path | str) -> dict[str, str]:
    """The key/value metadata of the database (data hash, build time…), read on the primary:
    whether to rebuild is decided on it (a standby that has not replayed the last rebuild
    yet would start another).

    Raises
    ------
    DataError
        When the server has no database of this app yet, or cannot be reached.
    """
    try:
        with _connection(_primary_url(), schema_for(path)) as con:
            rows = con.execute("SELECT key, value FROM meta").fetchall()
    except psycopg.errors.UndefinedTable as err:
        msg = f"{describe(_primary_url())} holds no geo-app database yet; it will be built."
        raise DataError(msg) from err
    return {str(k): str(v) for k, v in rows}


def database_version(path: Path | str) -> tuple[str, str | None]:
    """What changes whenever a write commits (the key of every per-version cache):
    the server read from and its ``data_version``."""
    try:
        with _read(path) as con:
            return _data_version(con)
    except psycopg.errors.UndefinedTable:
        return (describe(read_url()), None)


def _data_version(con: psycopg.Connection[Any]) -> tuple[str, str | None]:
    """:func:`database_version`, read inside ``con``'s transaction (with what it versions)."""
    row = con.execute("SELECT value FROM data_version").fetchone()
    return (describe(read_url()), str(row[0]) if row else None)


def _plain_columns(con: psycopg.Connection[Any], table: str) -> sql.Composable:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = %s AND udt_name <> 'geometry' "
        "AND column_name <> 'rowid' ORDER BY ordinal_position", [table]).fetchall()
    return sql.SQL(", ").join(sql.Identifier(str(r[0])) for r in rows)


#: The orders :func:`read_table` takes; rows that tie come in the order they were written.
_ORDER_BY = {"1": sql.SQL("1, rowid"), "rowid": sql.SQL("rowid")}


def read_table(path: Path | str, table: str, *, order_by: str = "1") -> pd.DataFrame:
    """Read a non-spatial table (``boards``, ``indicators``, ``board_indicators``...)."""
    if table not in _TABLES:
        msg = f"Unknown table {table!r}"
        raise ValueError(msg)
    order = _ORDER_BY.get(order_by)
    if order is None:
        msg = f"Cannot order {table} by {order_by!r} (one of {sorted(_ORDER_BY)})"
        raise ValueError(msg)
    with _read(path) as con:
        cols = _plain_columns(con, table)
        query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(cols, sql.Identifier(table),
                                                                 order)
        return _duck_frame(_fetch_arrow(con, query, []))


def read_geo_table(path: Path | str, table: str) -> gpd.GeoDataFrame:
    """Read ``boundaries``, ``water`` or ``layers`` as a WGS-84 GeoDataFrame."""
    if table not in {"boundaries", "water", "layers"}:
        msg = f"Not a spatial table: {table!r}"
        raise ValueError(msg)
    with _read(path) as con:
        cols = _plain_columns(con, table)
        query = sql.SQL("SELECT {}, ST_AsBinary(geom) AS __wkb FROM {} ORDER BY 1").format(
            cols, sql.Identifier(table))
        cur = con.execute(query)
        rows = cur.fetchall()
        desc = cur.description or []
        names = [d.name for d in desc][:-1]
        types = [_arrow_type(con, d) for d in desc][:-1]
    wkb = [bytes(r[-1]) if r[-1] is not None else None for r in rows]
    df = _duck_frame(pa.Table.from_batches(
        [_arrow_batch(names, types, [r[:-1] for r in rows])],
        schema=pa.schema(list(zip(names, types, strict=True)))))
    return gpd.GeoDataFrame(df, geometry=shapely.from_wkb(wkb), crs="EPSG:4326")


def _entity_where(flt: EntityFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, field in FILTER_COLUMNS:
        values = getattr(flt, field)
        if values:
            clauses.append(f"e.{column} = ANY(%s)")
            params.append(list(values))
    if flt.layers:
        clauses.append("e.id IN (SELECT entity_id FROM layer_members WHERE layer_id = ANY(%s))")
        params.append(list(flt.layers))
    if flt.search and "\x00" in flt.search:
        clauses.append("FALSE")  # PostgreSQL text holds no NUL: nothing matches, as on DuckDB
    elif flt.search and caseless(flt.search):  # lowercasing cannot change a match
        clauses.append("(strpos(e.name_zh, %s) > 0 OR strpos(coalesce(e.name_en, ''), %s) > 0 "
                       "OR e.id = %s)")
        params.extend([flt.search, flt.search, flt.search])
    elif flt.search:
        clauses.append("(strpos(lower(e.name_zh), lower(%s)) > 0 OR "
                       "strpos(lower(coalesce(e.name_en, '')), lower(%s)) > 0 OR e.id = %s)")
        params.extend([flt.search, flt.search, flt.search])
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


_ENTITY_SCHEMA = pa.schema([(c, pa.float64() if c in {"lon", "lat", "source_lon", "source_lat"}
                             else pa.string()) for c in (*ENTITY_COLUMNS, "layers")])


def _entities_table(con: psycopg.Connection[Any], query: str, params: Sequence[Any]) -> pa.Table:
    rows = con.execute(query, list(params)).fetchall()
    return pa.Table.from_batches(
        [_arrow_batch(_ENTITY_SCHEMA.names, _ENTITY_SCHEMA.types, rows)], schema=_ENTITY_SCHEMA)


def _entities_gdf(table: pa.Table) -> gpd.GeoDataFrame:
    return entities_to_gdf(table.to_pandas())


def query_entities(path: Path | str, flt: EntityFilter | None = None) -> gpd.GeoDataFrame:
    """Entities matching ``flt`` with their layer ids, by id, as a WGS-84 GeoDataFrame."""
    where, params = _entity_where(flt or EntityFilter())
    cols = ", ".join(f"e.{c}" for c in ENTITY_COLUMNS)
    query = f"SELECT {cols}, e.layers FROM entities e{where} ORDER BY e.id"  # noqa: S608 (placeholders only)
    with _read(path) as con:
        return _entities_gdf(_entities_table(con, query, params))


def count_entities(path: Path | str, flt: EntityFilter | None = None) -> int:
    """Number of entities matching ``flt``."""
    where, params = _entity_where(flt or EntityFilter())
    with _read(path) as con:
        row = con.execute(f"SELECT count(*) FROM entities e{where}", params).fetchone()  # noqa: S608
    return int(row[0]) if row else 0


_COUNT_COLUMNS = frozenset({"kind", "level", "status", "board", "location_precision", "origin"})


def entity_counts(path: Path | str, column: str) -> list[tuple[str, int]]:
    """``(value, count)`` of entities grouped by ``column`` (one of a fixed allow-list)."""
    if column not in _COUNT_COLUMNS:
        msg = f"Cannot count entities by {column!r}"
        raise ValueError(msg)
    query = sql.SQL("SELECT coalesce(nullif({c}, ''), '(none)') AS v, count(*) AS n "
                    "FROM entities GROUP BY 1 ORDER BY 2 DESC, 1").format(c=sql.Identifier(column))
    with _read(path) as con:
        return [(str(v), int(n)) for v, n in con.execute(query).fetchall()]


_FINITE = ("({c} IS NOT NULL AND "
           "{c} NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8))")


def _finite(column: str) -> str:
    return _FINITE.format(c=column)


def located_counts(path: Path | str, flt: EntityFilter | None = None) -> tuple[int, int]:
    """``(entities with a point, all entities)`` matching ``flt``."""
    where, params = _entity_where(flt or EntityFilter())
    query = (f"SELECT count(*) FILTER (WHERE {_finite('e.lon')} AND {_finite('e.lat')}), "  # noqa: S608
             f"count(*) FROM entities e{where}")
    with _read(path) as con:
        row = con.execute(query, params).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def shared_points(path: Path | str, *, limit: int = 5) -> pd.DataFrame:
    """The largest groups of entities that share one coordinate, largest first."""
    query = ("SELECT lon, lat, count(*) AS n, "
             "string_agg(DISTINCT location_precision, ',' ORDER BY location_precision) "
             "AS precisions, string_agg(id, ',' ORDER BY id) AS ids FROM entities "
             "WHERE lon IS NOT NULL GROUP BY lon, lat HAVING count(*) > 1 "
             "ORDER BY n DESC, lon, lat LIMIT %s")
    return _frame(path, query, [int(limit)])


def layer_ids(path: Path | str) -> list[str]:
    """Ids of the strategy layers, in id order."""
    with _read(path) as con:
        return [str(r[0]) for r in con.execute("SELECT id FROM layers ORDER BY id").fetchall()]


def entity_ids(path: Path | str) -> frozenset[str]:
    """Every entity id (read on the primary: an import checks its ids against it)."""
    with _connection(_primary_url(), schema_for(path)) as con:
        return frozenset(str(r[0]) for r in con.execute("SELECT id FROM entities").fetchall())


def list_audit(path: Path | str) -> pd.DataFrame:
    """The audit trail, newest first (columns as on DuckDB)."""
    return _frame(path, (
        "SELECT changed_at, action, batch_id, target, file_name, row_count, "
        "CASE WHEN actor_kind = 'local' THEN 'local:' || actor_subject "
        "ELSE coalesce(nullif(actor_email, ''), actor_subject) END AS made_by, "
        "actor_subject, actor_email, actor_name, actor_kind "
        "FROM audit ORDER BY changed_at DESC, action DESC, batch_id"))


def list_batches(path: Path | str) -> pd.DataFrame:
    """Every import batch, newest first, with ``rows_present`` and ``made_by``."""
    return _frame(path, (
        "SELECT b.batch_id, b.file_name, b.imported_at, b.target, b.row_count, b.source_datum, "
        "CASE WHEN b.actor_subject IS NULL THEN '' WHEN b.actor_kind = 'local' "
        "THEN 'local:' || b.actor_subject "
        "ELSE coalesce(nullif(b.actor_email, ''), b.actor_subject) END AS made_by, "
        "b.actor_subject, b.actor_email, b.actor_kind, "
        "(SELECT count(*) FROM entities e WHERE e.batch_id = b.batch_id AND e.origin = 'user') + "
        "(SELECT count(*) FROM board_indicators i WHERE i.batch_id = b.batch_id "
        "AND i.origin = 'user') AS rows_present "
        "FROM import_batches b ORDER BY b.imported_at DESC, b.batch_id"))


def query_entities_page(
    path: Path | str,
    flt: EntityFilter | None = None,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int | None = None,
    offset: int = 0,
    entity_id: str | None = None,
) -> tuple[gpd.GeoDataFrame, int]:
    """One page of the entities in storage order and the number matched (as on DuckDB);
    both read in one snapshot."""
    where, params = _entity_where(flt or EntityFilter())
    clauses = [where.removeprefix(" WHERE ")] if where else []
    if bbox is not None:
        min_lon, min_lat, max_lon, max_lat = bbox
        joint = "AND" if min_lon <= max_lon else "OR"
        clauses.append(f"(e.lon >= %s {joint} e.lon <= %s) AND e.lat >= %s AND e.lat <= %s")
        params += [float(min_lon), float(max_lon), float(min_lat), float(max_lat)]
    if entity_id is not None and "\x00" in entity_id:
        clauses.append("FALSE")  # no id holds a NUL (PostgreSQL text cannot)
    elif entity_id is not None:
        clauses.append("e.id = %s")
        params.append(entity_id)
    where_sql = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    cols = ", ".join(f"e.{c}" for c in ENTITY_COLUMNS)
    select_sql = f"SELECT {cols}, e.layers FROM entities e{where_sql} ORDER BY e.rowid"  # noqa: S608 (placeholders only)
    with _read(path, snapshot=True) as con:
        row = con.execute(f"SELECT count(*) FROM entities e{where_sql}", params).fetchone()  # noqa: S608
        matched = int(row[0]) if row else 0
        sql, page_params = page_sql(select_sql, params, limit=limit, offset=offset,
                                    matched=matched, placeholder="%s")
        table = _entities_table(con, sql, page_params)
    return _entities_gdf(table), matched
