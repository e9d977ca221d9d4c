"""DuckDB streams: entities in Arrow record batches for exports of any size (each on a
read-only instance of its own; see docs/export.md) and for the map (on the process's
kept reader)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from geo_app.filters import EntityFilter
from geo_app.store.common import ENTITY_COLUMNS
from geo_app.store.duckdb_connect import (
    HEAD_START_FAILURES,
    Version,
    private_reader,
    reader,
    versioned_reader,
)
from geo_app.store.duckdb_read import _entity_where
from geo_app.vocab import EXACT_PRECISIONS, KINDS

#: Columns of ``entities`` a stream may name (:func:`iter_entity_batches`,
#: :func:`iter_entity_rows`).
_STREAM_COLUMNS = frozenset({*ENTITY_COLUMNS, "layers"})
#: The DOUBLE columns of ``entities``: streamed as NULL (JSON ``null``) where not finite.
_DOUBLE_COLUMNS = frozenset({"lon", "lat", "source_lon", "source_lat"})
#: The coordinates: streamed rounded to the requested number of decimals.
_COORDINATE_COLUMNS = frozenset({"lon", "lat"})


def _checked_columns(columns: Sequence[str]) -> list[str]:
    unknown = [c for c in columns if c not in _STREAM_COLUMNS]
    if unknown:
        msg = f"Not entity columns: {unknown}"
        raise ValueError(msg)
    return list(columns)


def _stream(path: Path, flt: EntityFilter | None, items: Sequence[str],
            batch_size: int, *, shared: bool = False) -> Iterator[Any]:
    """Stream ``SELECT items FROM entities e`` (the store's own select items) for ``flt``.

    ``shared``: on a cursor of the process's kept reader (warm caches, the instance's
    threads) instead of a read-only instance of its own with one thread.
    """
    where, params = _entity_where(flt or EntityFilter())
    sql = f"SELECT {', '.join(items)} FROM entities e{where}"  # noqa: S608 (store SQL, placeholders only)
    if shared:
        with reader(path) as cur:
            yield from cur.execute(sql, params).to_arrow_reader(max(int(batch_size), 1))
        return
    with private_reader(path) as con:
        # One scan thread: a streaming export is bound by JSON/CSV writing, not by the scan,
        # and each extra DuckDB thread holds its own buffers (1M rows: +117 → +88 MiB peak,
        # and faster on 2 cores; see benchmarks/bench_export.py).
        con.execute("SET threads = 1")
        yield from con.execute(sql, params).to_arrow_reader(max(int(batch_size), 1))


def iter_entity_batches(
    path: Path,
    flt: EntityFilter | None = None,
    *,
    batch_size: int = 10_000,
    columns: Sequence[str] | None = None,
) -> Iterator[Any]:
    """Stream the entities matching ``flt`` as Arrow record batches of ``batch_size`` rows.

    A read-only instance of its own and one streaming query (no ``ORDER BY``): rows come
    in the table's storage order (the registry, then imports in the order they were made,
    grouped by 板块 within each) and memory does not grow with the number of rows.

    Parameters
    ----------
    flt
        The entity filter (as for the map, the API and the CLI).
    columns
        Entity columns to read, e.g. ``["id", "lon"]``. Default: the columns of
        :func:`query_entities` (``ENTITY_COLUMNS`` and ``layers``).

    Yields
    ------
    pyarrow.RecordBatch
        The next rows; nothing when no entity matches.
    """
    names = _checked_columns(columns) if columns else [*ENTITY_COLUMNS, "layers"]
    yield from _stream(path, flt, [f"e.{c}" for c in names], batch_size)


def iter_entity_rows(path: Path, flt: EntityFilter | None, *, columns: Sequence[str],
                     decimals: int, batch_size: int = 10_000) -> Iterator[Any]:
    """As :func:`iter_entity_batches`, with the numbers ready for an export: ``lon`` and
    ``lat`` rounded to ``decimals``, and every number that is not finite NULL."""
    items = []
    for name in _checked_columns(columns):
        if name in _COORDINATE_COLUMNS:
            items.append(f"CASE WHEN isfinite(e.{name}) THEN round(e.{name}, {int(decimals)}) END "
                         f"AS {name}")
        elif name in _DOUBLE_COLUMNS:
            items.append(f"CASE WHEN isfinite(e.{name}) THEN e.{name} END AS {name}")
        else:
            items.append(f"e.{name}")
    yield from _stream(path, flt, items, batch_size)


def _json_text_sql(name: str, decimals: int) -> str:
    column = f"e.{name}"
    if name in _COORDINATE_COLUMNS:
        return (f"CASE WHEN isfinite({column}) THEN round({column}, {decimals})::VARCHAR "
                "ELSE 'null' END")
    if name in _DOUBLE_COLUMNS:
        return f"CASE WHEN isfinite({column}) THEN {column}::VARCHAR ELSE 'null' END"
    return f"coalesce(to_json({column}), 'null')"


def _entity_feature_sql(properties: Sequence[str], decimals: int) -> str:
    """SQL rendering one entity as ``,\\n`` + its GeoJSON Feature (DuckDB escapes the text)."""
    parts = ["',', chr(10)", "'{\"type\": \"Feature\", \"id\": '", _json_text_sql("id", decimals),
             "', \"properties\": {'"]
    for i, name in enumerate(properties):
        parts.append(f"'{', ' if i else ''}\"{name}\": '")
        parts.append(_json_text_sql(name, decimals))
    lon, lat = (f"round(e.{c}, {decimals})::VARCHAR" for c in ("lon", "lat"))
    parts += ["'}, \"geometry\": '",
              "CASE WHEN isfinite(e.lon) AND isfinite(e.lat) THEN concat("
              f"'{{\"type\": \"Point\", \"coordinates\": [', {lon}, ', ', {lat}, ']}}') "
              "ELSE 'null' END", "'}'"]
    return f"concat({', '.join(parts)}) AS feature"


def iter_entity_geojson(path: Path, flt: EntityFilter | None, *, properties: Sequence[str],
                        decimals: int, batch_size: int = 10_000) -> Iterator[Any]:
    """Stream the entities matching ``flt`` as GeoJSON Feature text rendered by the database.

    Parameters
    ----------
    properties
        Entity columns that become the feature's properties, in this order (numbers that
        are not finite become ``null``; ``lon``/``lat`` are rounded to ``decimals``).
    decimals
        Decimals of the coordinates (of the point and of the ``lon``/``lat`` properties).

    Yields
    ------
    pyarrow.RecordBatch
        Columns ``feature`` (``",\\n"`` then one Feature as JSON text) and ``glon``, ``glat``
        (the point's rounded coordinates, NULL without a point, for the bounding box).
    """
    decimals = int(decimals)
    names = _checked_columns(properties)
    items = [f"CASE WHEN isfinite(e.lon) AND isfinite(e.lat) THEN round(e.{c}, {decimals}) END AS "
             f"g{c}"
             for c in ("lon", "lat")] + [_entity_feature_sql(names, decimals)]
    yield from _stream(path, flt, items, batch_size)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


#: The columns of :func:`iter_point_batches` before the ``np_`` ones: the kind code is the
#: index of the kind in :data:`geo_app.vocab.KINDS` (``len(KINDS)`` for any other kind).
_POINT_ITEMS: tuple[str, ...] = (
    "e.lon AS lon",
    "e.lat AS lat",
    "(CASE e.kind " + " ".join(f"WHEN {_sql_text(k)} THEN {i}" for i, k in enumerate(KINDS))
    + f" ELSE {len(KINDS)} END)::UTINYINT AS kind_code",
    "(e.location_precision IN (" + ", ".join(_sql_text(p) for p in sorted(EXACT_PRECISIONS))
    + ")) AS exact",
)


def iter_point_batches(path: Path, flt: EntityFilter | None = None, *,
                       unlocated: Sequence[str] = (), batch_size: int = 10_000) -> Iterator[Any]:
    """Stream what a map needs of each entity matching ``flt`` (a few bytes a row).

    Parameters
    ----------
    unlocated
        Entity columns also read for the rows without a point (as ``np_<column>``; NULL for
        located rows, so they cost little).

    Unlike the exports' streams, this one runs on the process's kept reader
    (:func:`geo_app.store.reader`): a map reads a few columns of every match, which a
    read-only instance of its own read cold each time (~400 ms at 1M entities).

    Yields
    ------
    pyarrow.RecordBatch
        ``lon``, ``lat``; ``kind_code`` (the index of the kind in
        :data:`geo_app.vocab.KINDS`, ``len(KINDS)`` for any other); ``exact`` (the location
        precision is one of :data:`geo_app.vocab.EXACT_PRECISIONS`); ``np_<column>``.
    """
    items = [*_POINT_ITEMS, *(f"CASE WHEN e.lon IS NULL OR e.lat IS NULL THEN e.{c} END AS np_{c}"
                              for c in _checked_columns(unlocated))]
    yield from _stream(path, flt, items, batch_size, shared=True)


# ----------------------------------------------------------------------------- the map's index
# (every entity's point read once per version; a filter is then the row ids it matches)


def point_index(path: Path, *, unlocated: Sequence[str] = ()) -> tuple[Version, Any, Any]:
    """Every entity's point by storage position, for a map that filters in memory.

    One snapshot of the kept reader (two queries in one transaction).

    Parameters
    ----------
    unlocated
        Entity columns also read for the entities without a point.

    Returns
    -------
    tuple
        The :func:`~geo_app.store.database_version` of the file read; a pyarrow Table of
        every entity in storage order (``rowid``, then the point columns of
        :func:`iter_point_batches`); a pyarrow Table of the entities without a point
        (``rowid`` and the ``unlocated`` columns), in storage order.
    """
    names = _checked_columns(unlocated)
    points_sql = (f"SELECT e.rowid AS rowid, {', '.join(_POINT_ITEMS)} "  # noqa: S608 (store SQL)
                  "FROM entities e ORDER BY e.rowid")
    unlocated_sql = (f"SELECT e.rowid AS rowid{''.join(f', e.{c}' for c in names)} "  # noqa: S608 (checked names)
                     "FROM entities e WHERE e.lon IS NULL OR e.lat IS NULL ORDER BY e.rowid")
    with versioned_reader(path) as (version, cur):
        cur.execute("BEGIN TRANSACTION")
        try:
            points = cur.execute(points_sql).to_arrow_table()
            missing = cur.execute(unlocated_sql).to_arrow_table()
        finally:
            cur.execute("COMMIT")
    return version, points, missing


#: The kept reader's own copy of what a search reads: every entity's names lowercased
#: (``name_en`` '' where NULL) and its id, by ``rowid``, in the instance's in-memory
#: catalog. Made by the first search of the file the instance reads (~0.3 s and ~85 MB at
#: 1M entities), it goes with the instance when the file is replaced. A search on it
#: takes 30–45 ms at 1M, on the file's compressed columns 60–85 ms (CJK text) and
#: ~200 ms (Latin text, lowercased as it is searched).
_SEARCH_TABLE = "memory.main.entity_search"
_SEARCH_LOCK = threading.Lock()


def _ensure_search_table(cur: Any) -> None:
    """Make :data:`_SEARCH_TABLE` on the instance of ``cur`` unless it is there (then ~1 ms:
    the statement does not run its query; the lock keeps two threads from both making it)."""
    with _SEARCH_LOCK:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {_SEARCH_TABLE} AS SELECT e.rowid AS rid, "  # noqa: S608 (store SQL, no values)
                    "lower(e.name_zh) AS name_zh, lower(coalesce(e.name_en, '')) AS name_en, "
                    "e.id AS id FROM entities e ORDER BY e.rowid")


def prepare_search(path: Path) -> None:
    """Make the kept reader's copy of the searched names now (:func:`match_rowids` makes
    it at the first search otherwise), so that the first search does not wait for it.

    Only a head start, as ``duckdb_files._warm``: a failure (the file missing, held by a
    process outside the app, replaced meanwhile) is left to the next search, which makes
    the copy itself and says what is wrong.
    """
    try:
        with reader(path, retries=0) as cur:
            _ensure_search_table(cur)
    except HEAD_START_FAILURES:
        pass


def match_rowids(path: Path, flt: EntityFilter | None = None) -> tuple[Version, Any]:
    """The storage positions (``rowid``) of the entities matching ``flt``, ascending, and
    the :func:`~geo_app.store.database_version` of the file they were read from (the key
    of :func:`point_index`'s positions): ~25 ms for half of 1M entities, where reading
    their points costs ~150 ms.

    The search text is matched on the reader's :data:`_SEARCH_TABLE`, with the same result
    as :func:`~geo_app.store.duckdb_read._entity_where`'s clause: a name holds the text,
    both lowercased (which for a :func:`~geo_app.store.common.caseless` text is the same
    as holding it as it is), or the id is the text.
    """
    import numpy as np

    flt = flt or EntityFilter()
    where, params = _entity_where(flt, search=False)
    if not flt.search:
        sql = f"SELECT e.rowid AS rowid FROM entities e{where} ORDER BY e.rowid"  # noqa: S608 (placeholders only)
    else:
        found = (f"SELECT rid FROM {_SEARCH_TABLE} WHERE contains(name_zh, lower(?)) "  # noqa: S608 (store SQL)
                 "OR contains(name_en, lower(?)) OR id = ?")
        params += [flt.search] * 3
        if where:
            sql = (f"SELECT e.rowid AS rowid FROM entities e{where} "  # noqa: S608 (placeholders only)
                   f"AND e.rowid IN ({found}) ORDER BY e.rowid")
        else:
            sql = f"SELECT rid AS rowid FROM ({found}) ORDER BY rid"  # noqa: S608 (store SQL)
    with versioned_reader(path) as (version, cur):
        if flt.search:
            _ensure_search_table(cur)
        got = cur.execute(sql, params).fetchnumpy()["rowid"]
    return version, np.asarray(got, dtype=np.int64)
