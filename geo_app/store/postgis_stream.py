"""PostGIS streams: entities as Arrow record batches with the DuckDB backend's columns and types,
and GeoJSON features rendered by the server byte for byte as DuckDB renders them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa

from geo_app.errors import DataError
from geo_app.filters import EntityFilter
from geo_app.store.common import (
    ENTITY_COLUMNS,
)
from geo_app.store.postgis_connect import (
    _read,
)
from geo_app.store.postgis_read import (
    _ENTITY_SCHEMA,
    _arrow_batch,
    _data_version,
    _entity_where,
    _finite,
)
from geo_app.vocab import EXACT_PRECISIONS, KINDS

# ----------------------------------------------------------------------------- streams

_STREAM_COLUMNS = frozenset({*ENTITY_COLUMNS, "layers"})
_DOUBLE_COLUMNS = frozenset({"lon", "lat", "source_lon", "source_lat"})
_COORDINATE_COLUMNS = frozenset({"lon", "lat"})


def _checked_columns(columns: Sequence[str]) -> list[str]:
    unknown = [c for c in columns if c not in _STREAM_COLUMNS]
    if unknown:
        msg = f"Not entity columns: {unknown}"
        raise ValueError(msg)
    return list(columns)


def _stream(path: Path | str, flt: EntityFilter | None, items: Sequence[str],
            types: Sequence[tuple[str, pa.DataType]], batch_size: int) -> Iterator[Any]:
    """Stream ``SELECT items FROM entities e`` (this module's select items) for ``flt`` in
    storage order, as Arrow record batches of ``types``, through a server-side cursor."""
    where, params = _entity_where(flt or EntityFilter())
    query = f"SELECT {', '.join(items)} FROM entities e{where} ORDER BY e.rowid"  # noqa: S608 (module SQL, placeholders only)
    size = max(int(batch_size), 1)
    names = [n for n, _ in types]
    arrow_types = [t for _, t in types]
    with _read(path, snapshot=True) as con, \
            con.cursor(name=f"geo_app_stream_{uuid.uuid4().hex[:8]}") as cur:
        cur.itersize = size
        cur.execute(query, params)
        while True:
            rows = cur.fetchmany(size)
            if not rows:
                return
            yield _arrow_batch(names, arrow_types, rows)


def iter_entity_batches(path: Path | str, flt: EntityFilter | None = None, *,
                        batch_size: int = 10_000,
                        columns: Sequence[str] | None = None) -> Iterator[Any]:
    """Stream the entities matching ``flt`` as Arrow record batches (as on DuckDB)."""
    names = _checked_columns(columns) if columns else [*ENTITY_COLUMNS, "layers"]
    yield from _stream(path, flt, [f"e.{c}" for c in names],
                       [(c, _ENTITY_SCHEMA.field(c).type) for c in names], batch_size)


def _round_sql(column: str, decimals: int) -> str:
    """DuckDB's ``round(double, n)``: ``std::round(x * 10^n) / 10^n`` (halves away from
    zero, in double arithmetic), which PostgreSQL's ``round`` (halves to even for a
    double; exact decimal for numeric) is not."""
    m = f"1e{int(decimals)}::float8"
    scaled = f"({column} * {m})"
    return (f"((CASE WHEN abs({scaled} - trunc({scaled})) >= 0.5 "
            f"THEN trunc({scaled}) + sign({scaled}) ELSE trunc({scaled}) END) / {m})")


def iter_entity_rows(path: Path | str, flt: EntityFilter | None, *, columns: Sequence[str],
                     decimals: int, batch_size: int = 10_000) -> Iterator[Any]:
    """As :func:`iter_entity_batches`, ``lon``/``lat`` rounded, non-finite numbers NULL."""
    items = []
    for name in _checked_columns(columns):
        col = f"e.{name}"
        if name in _COORDINATE_COLUMNS:
            items.append(f"CASE WHEN {_finite(col)} THEN {_round_sql(col, decimals)} END AS {name}")
        elif name in _DOUBLE_COLUMNS:
            items.append(f"CASE WHEN {_finite(col)} THEN {col} END AS {name}")
        else:
            items.append(col)
    types = [(c, _ENTITY_SCHEMA.field(c).type) for c in columns]
    yield from _stream(path, flt, items, types, batch_size)


def _double_text(expr: str) -> str:
    """A double as DuckDB's ``::VARCHAR`` writes it: the shortest exact digits, as
    PostgreSQL's ``::text`` does, but ``121.0`` where PostgreSQL writes ``121``."""
    return f"regexp_replace(({expr})::text, '^(-?[0-9]+)$', '\\1.0')"


#: Control characters DuckDB's ``to_json`` escapes with upper-case hex (``\\u001F``) where
#: PostgreSQL's writes lower case.
_UPPER_HEX_CONTROLS = "[\\x0b\\x0e\\x0f\\x1a-\\x1f]"


def _json_string_sql(col: str) -> str:
    """``col`` as a JSON string exactly as DuckDB's ``to_json`` writes it. The rare text
    holding one of :data:`_UPPER_HEX_CONTROLS` is escaped character by character."""
    by_char = (
        "(SELECT '\"' || string_agg(CASE WHEN ch ~ '" + _UPPER_HEX_CONTROLS + "' THEN "  # noqa: S608 (constants)
        "'\\u' || lpad(upper(to_hex(ascii(ch))), 4, '0') ELSE "
        "substr(to_json(ch)::text, 2, length(to_json(ch)::text) - 2) END, '' ORDER BY i) "
        f"|| '\"' FROM regexp_split_to_table({col}, '') WITH ORDINALITY AS c(ch, i))")
    return (f"CASE WHEN {col} ~ '{_UPPER_HEX_CONTROLS}' THEN {by_char} "
            f"ELSE to_json({col})::text END")


def _json_text_sql(name: str, decimals: int) -> str:
    col = f"e.{name}"
    if name in _COORDINATE_COLUMNS:
        return (f"CASE WHEN {_finite(col)} THEN {_double_text(_round_sql(col, decimals))} "
                "ELSE 'null' END")
    if name in _DOUBLE_COLUMNS:
        return f"CASE WHEN {_finite(col)} THEN {_double_text(col)} ELSE 'null' END"
    return f"coalesce({_json_string_sql(col)}, 'null')"


def _entity_feature_sql(properties: Sequence[str], decimals: int) -> str:
    """The exact feature text of ``e`` (raw entity columns): every string through
    :func:`_json_string_sql`. Exact for every text, but slow (a regular expression per
    string); :func:`iter_entity_geojson` uses it only for the rare row that needs it."""
    parts = ["',' || chr(10)", "'{\"type\": \"Feature\", \"id\": '", _json_text_sql("id", decimals),
             "', \"properties\": {'"]
    for i, name in enumerate(properties):
        parts.append(f"'{', ' if i else ''}\"{name}\": '")
        parts.append(_json_text_sql(name, decimals))
    lon, lat = (_double_text(_round_sql(f"e.{c}", decimals)) for c in ("lon", "lat"))
    parts += ["'}, \"geometry\": '",
              f"CASE WHEN {_finite('e.lon')} AND {_finite('e.lat')} THEN concat("
              f"'{{\"type\": \"Point\", \"coordinates\": [', {lon}, ', ', {lat}, ']}}') "
              "ELSE 'null' END", "'}'"]
    return f"concat({', '.join(parts)})"


def _fast_double_text(col: str) -> str:
    """:func:`_double_text` of a column that is NULL or finite, JSON ``null`` for NULL; the
    regular expression only for a whole number (rare)."""
    return (f"CASE WHEN {col} IS NULL THEN 'null' WHEN {col} = trunc({col}) "
            f"THEN {_double_text(col)} ELSE ({col})::text END")


def _fast_feature_sql(properties: Sequence[str]) -> str:
    """The feature text of ``f`` (:func:`_numbers_sql`'s columns), each string quoted with
    ``"`` and ``\\`` escaped: JSON as DuckDB's ``to_json`` writes it for every text without
    a control character (the rows with one are written again exactly:
    :func:`_exact_features`)."""
    def value(name: str) -> str:
        if name in _DOUBLE_COLUMNS:
            return _fast_double_text(f"f.n_{name}")
        return (f"coalesce('\"' || replace(replace(f.{name}, '\\', '\\\\'), '\"', '\\\"') "
                "|| '\"', 'null')")

    parts = ["',' || chr(10)", "'{\"type\": \"Feature\", \"id\": '", value("id"),
             "', \"properties\": {'"]
    for i, name in enumerate(properties):
        parts += [f"'{', ' if i else ''}\"{name}\": '", value(name)]
    parts += ["'}, \"geometry\": '",
              "CASE WHEN f.glon IS NOT NULL THEN '{\"type\": \"Point\", \"coordinates\": [' || "
              f"{_fast_double_text('f.glon')} || ', ' || {_fast_double_text('f.glat')} || ']}}' "
              "ELSE 'null' END", "'}'"]
    return f"concat({', '.join(parts)})"


def _numbers_sql(decimals: int) -> list[str]:
    """Select items of the rounded point (``glon``, ``glat``: NULL unless both are finite)
    and of each double property as exported (``n_<name>``: rounded for ``lon``/``lat``,
    NULL when not finite)."""
    finite = f"{_finite('e.lon')} AND {_finite('e.lat')}"
    items = [f"CASE WHEN {finite} THEN {_round_sql(f'e.{c}', decimals)} END AS g{c}"
             for c in ("lon", "lat")]
    for name in sorted(_DOUBLE_COLUMNS):
        col = f"e.{name}"
        value = _round_sql(col, decimals) if name in _COORDINATE_COLUMNS else col
        items.append(f"CASE WHEN {_finite(col)} THEN {value} END AS n_{name}")
    return items


def _geojson_chunk_sql(names: Sequence[str], decimals: int, where: str) -> str:
    """The query of one chunk of :func:`iter_entity_geojson`: the next ``%s`` (a limit)
    features after the rowid ``%s``, aggregated into one row of binary columns (rowids,
    ``glon``, ``glat``, feature lengths, the features' UTF-8 text, each run together)."""
    raw = sorted({*names, "lon", "lat"})
    after = f"{where} AND e.rowid > %s" if where else " WHERE e.rowid > %s"
    numbers = (f"SELECT e.rowid, {', '.join(f'e.{c}' for c in raw)}, "  # noqa: S608 (module SQL)
               f"{', '.join(_numbers_sql(decimals))} FROM entities e{after} "
               "ORDER BY e.rowid LIMIT %s")
    rows = (f"SELECT f.rowid, f.glon, f.glat, convert_to({_fast_feature_sql(names)}, 'UTF8') "  # noqa: S608
            f"AS feature FROM ({numbers}) f ORDER BY f.rowid")
    nan = "'\\x7ff8000000000000'::bytea"
    return ("SELECT count(*), string_agg(int8send(r.rowid), ''), "  # noqa: S608
            f"string_agg(coalesce(float8send(r.glon), {nan}), ''), "
            f"string_agg(coalesce(float8send(r.glat), {nan}), ''), "
            "string_agg(int4send(length(r.feature)), ''), string_agg(r.feature, '') "
            f"FROM ({rows}) r")


def _exact_features(con: psycopg.Connection[Any], rowids: Sequence[int], names: Sequence[str],
                    decimals: int) -> list[str]:
    """The features of the entities ``rowids`` (in that order) written exactly
    (:func:`_entity_feature_sql`): for texts with a control character, which DuckDB's
    ``to_json`` escapes (``\\u001F``, ``\\n``) and the fast text does not."""
    query = (f"SELECT e.rowid, {_entity_feature_sql(names, decimals)} FROM entities e "  # noqa: S608
             "WHERE e.rowid = ANY(%s)")
    found = {int(r[0]): str(r[1]) for r in con.execute(query, [list(rowids)]).fetchall()}
    return [found[i] for i in rowids]


def _geojson_batch(con: psycopg.Connection[Any], row: Sequence[Any], names: Sequence[str],
                   decimals: int) -> pa.RecordBatch:
    """One chunk's binary columns as an Arrow batch (``glon``/``glat`` NaN → null); a
    feature with a control character (a byte below 0x20 but the newline each one starts
    with) is written again exactly."""
    n = int(row[0])
    rowids = np.frombuffer(bytes(row[1]), ">i8")
    if not np.all(np.diff(rowids) > 0):
        msg = "PostgreSQL aggregated a GeoJSON chunk out of order"  # never seen; never hidden
        raise DataError(msg)
    text = bytes(row[5])
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.frombuffer(bytes(row[4]), ">i4"), out=offsets[1:])
    controls = np.setdiff1d(np.flatnonzero(np.frombuffer(text, np.uint8) < 0x20),
                            offsets[:-1] + 1)
    if len(controls):
        redo = np.unique(np.searchsorted(offsets, controls, side="right") - 1)
        features = [text[a:b].decode() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        for i, exact in zip(redo, _exact_features(con, [int(rowids[i]) for i in redo], names,
                                                  decimals), strict=True):
            features[i] = exact
        feature = pa.array(features, type=pa.string())
    else:
        feature = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text)
                                                   ).cast(pa.string())
    coords = []
    for raw in (row[2], row[3]):
        values = np.frombuffer(bytes(raw), ">f8").astype(np.float64)
        coords.append(pa.array(values, mask=np.isnan(values)))
    return pa.RecordBatch.from_arrays([*coords, feature], names=["glon", "glat", "feature"])


def iter_entity_geojson(path: Path | str, flt: EntityFilter | None, *,
                        properties: Sequence[str], decimals: int,
                        batch_size: int = 10_000) -> Iterator[Any]:
    """Stream GeoJSON Feature text rendered by the server (columns ``glon``, ``glat``,
    ``feature``, as on DuckDB).

    Each feature is written first by the fast path (strings quoted and ``"``/``\\``
    escaped, as ``to_json`` writes a text without control characters); the rare one whose
    text holds a control character is written again exactly (:func:`_exact_features`),
    as DuckDB writes the hex of some in upper case. Nested selects compute every value
    once. The features come ``batch_size`` at a time (by rowid, in one snapshot), each
    chunk aggregated by the server into one row of binary columns that become Arrow arrays
    without a Python step per feature.
    """
    names = _checked_columns(properties)
    where, params = _entity_where(flt or EntityFilter())
    query = _geojson_chunk_sql(names, int(decimals), where)
    size = max(int(batch_size), 1)
    last = -1
    with _read(path, snapshot=True) as con, con.cursor(binary=True) as cur:
        while True:
            # never prepared: a generic plan, blind to the limit, sorts the whole table
            row = cur.execute(query, [*params, last, size], prepare=False).fetchone()
            if row is None or not row[0]:
                return
            batch = _geojson_batch(con, row, names, int(decimals))
            yield batch
            if batch.num_rows < size:
                return
            last = int(np.frombuffer(bytes(row[1])[-8:], ">i8")[0])


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_POINT_ITEMS: tuple[str, ...] = (
    "e.lon AS lon",
    "e.lat AS lat",
    "(CASE e.kind " + " ".join(f"WHEN {_sql_text(k)} THEN {i}" for i, k in enumerate(KINDS))
    + f" ELSE {len(KINDS)} END)::smallint AS kind_code",
    "(e.location_precision IN (" + ", ".join(_sql_text(p) for p in sorted(EXACT_PRECISIONS))
    + ")) AS exact",
)


def iter_point_batches(path: Path | str, flt: EntityFilter | None = None, *,
                       unlocated: Sequence[str] = (), batch_size: int = 10_000) -> Iterator[Any]:
    """Stream what a map needs of each entity (columns as on DuckDB; ``kind_code`` uint8)."""
    names = _checked_columns(unlocated)
    items = [*_POINT_ITEMS, *(f"CASE WHEN e.lon IS NULL OR e.lat IS NULL THEN e.{c} END AS np_{c}"
                              for c in names)]
    types = [("lon", pa.float64()), ("lat", pa.float64()), ("kind_code", pa.uint8()),
             ("exact", pa.bool_()), *((f"np_{c}", _ENTITY_SCHEMA.field(c).type) for c in names)]
    yield from _stream(path, flt, items, types, batch_size)


# ----------------------------------------------------------------------------- the map's index


def point_index(path: Path | str, *, unlocated: Sequence[str] = ()
                ) -> tuple[tuple[str, str | None], pa.Table, pa.Table]:
    """Every entity's point by storage position (as on DuckDB), read in one snapshot."""
    names = _checked_columns(unlocated)
    point_types = [("rowid", pa.int64()), ("lon", pa.float64()), ("lat", pa.float64()),
                   ("kind_code", pa.uint8()), ("exact", pa.bool_())]
    missing_types = [("rowid", pa.int64()), *((c, _ENTITY_SCHEMA.field(c).type) for c in names)]
    with _read(path, snapshot=True) as con:
        version = _data_version(con)
        points = con.execute(f"SELECT e.rowid, {', '.join(_POINT_ITEMS)} FROM entities e "  # noqa: S608 (module SQL)
                             "ORDER BY e.rowid").fetchall()
        missing = con.execute(f"SELECT e.rowid{''.join(f', e.{c}' for c in names)} "  # noqa: S608 (checked names)
                              "FROM entities e WHERE e.lon IS NULL OR e.lat IS NULL "
                              "ORDER BY e.rowid").fetchall()
    return version, _arrow_table(point_types, points), _arrow_table(missing_types, missing)


def _arrow_table(types: Sequence[tuple[str, pa.DataType]], rows: Sequence[Any]) -> pa.Table:
    names = [n for n, _ in types]
    return pa.Table.from_batches([_arrow_batch(names, [t for _, t in types], rows)],
                                 schema=pa.schema(list(types)))


def prepare_search(path: Path | str) -> None:
    """Nothing to make on PostgreSQL: the DuckDB reader's copy of the searched names has no
    counterpart here (the server keeps its own caches)."""


def match_rowids(path: Path | str, flt: EntityFilter | None = None
                 ) -> tuple[tuple[str, str | None], np.ndarray]:
    """The storage positions (``rowid``) of the entities matching ``flt``, ascending, and
    the version they were read at (as on DuckDB)."""
    where, params = _entity_where(flt or EntityFilter())
    with _read(path, snapshot=True) as con:
        version = _data_version(con)
        rows = con.execute(f"SELECT e.rowid FROM entities e{where} ORDER BY e.rowid",  # noqa: S608 (placeholders only)
                           params).fetchall()
    return version, np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
