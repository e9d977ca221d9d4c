"""The PostgreSQL 15 + PostGIS 3 backend of the store (``GEO_APP_DATABASE_URL``; docs/deploy.md).

When ``GEO_APP_DATABASE_URL=postgresql://…`` is set, every public function of
:mod:`geo_app.store` that reads or writes the database runs here instead of on the DuckDB
file; the ``path`` those functions take then names nothing but, for a build, the new
database being written (see below). ``GEO_APP_READ_URL`` (optional) sends the readers to
another server, e.g. a streaming-replication standby; writes always go to the primary.

How the server is shared:

- **Tables live in the schema** :data:`SCHEMA_NAME` (``geo_app``), PostGIS in ``public``;
  every transaction runs with ``search_path = geo_app, public`` (set in the transaction,
  so a pooler in transaction mode keeps it; docs/deploy.md). Geometry columns are
  ``geometry(…, 4326)`` with GiST indexes, so QGIS, ArcGIS and GDAL read them directly.
  Text columns use the ``"C"`` collation, so every ``ORDER BY`` sorts as DuckDB does
  (by code point), whatever the server's locale.
- **Writes are transactions**, through a connection pool (psycopg 3, ``psycopg_pool``):
  an import writes its batch row, audit row, entities and memberships in one transaction
  and a reader sees all of it or none of it; a killed importer's transaction is rolled
  back by the server. Imports from several processes run at once: each takes a *shared*
  advisory lock (:func:`writer_lock`), and a rebuild takes it *exclusive*, so a rebuild
  never interleaves with an import while imports never wait for each other. Ids that
  arrive twice are refused by the primary key (nothing of that import is written). Batch
  ids are numbered by the sequence ``geo_app_serial.batch_serial`` (:func:`new_batch_id`),
  in a schema of its own that no rebuild swaps, so they never collide.
- **A rebuild keeps user imports.** The build writes the new shipped data into a schema of
  its own (``geo_app_build_<pid>``, named after the build's new-file path
  ``<db>.tmp<pid>``), copies the user rows across, computes the memberships there, and
  swaps the schemas by renaming them in one short transaction: readers see the old tables
  or the new ones, never a mix.
- **Every stored row has a** ``rowid`` (an identity column, last in each table), so rows
  are read in the order they were written, as DuckDB reads its storage order.
- **Every write changes** the one-row table ``data_version`` in its own transaction: the cache
  key of :func:`database_version`, which a standby sees when it has replayed the write.
"""


from __future__ import annotations

from geo_app.settings import DATABASE_URL_VAR, READ_URL_VAR
from geo_app.store.postgis_connect import (
    BUILD_PREFIX,
    SCHEMA_NAME,
    close_pools,
    describe,
    read_url,
    schema_for,
    writer_lock,
)
from geo_app.store.postgis_read import (
    count_entities,
    database_version,
    entity_counts,
    entity_ids,
    layer_ids,
    list_audit,
    list_batches,
    located_counts,
    query_entities,
    query_entities_page,
    read_geo_table,
    read_meta,
    read_table,
    shared_points,
)
from geo_app.store.postgis_schema import (
    INDEX_DDL,
    SCHEMA_DDL,
    clear_leftovers,
    copy_user_data,
    database_exists,
    drop_build,
    insert_frame,
    swap_in,
    write_database,
)
from geo_app.store.postgis_stream import (
    iter_entity_batches,
    iter_entity_geojson,
    iter_entity_rows,
    iter_point_batches,
    match_rowids,
    point_index,
    prepare_search,
)
from geo_app.store.postgis_write import (
    delete_batch,
    import_board_indicators,
    import_entities,
    new_batch_id,
    replace_memberships,
)

__all__ = [
    "BUILD_PREFIX", "DATABASE_URL_VAR", "INDEX_DDL", "READ_URL_VAR", "SCHEMA_DDL", "SCHEMA_NAME",
    "clear_leftovers", "close_pools", "copy_user_data", "count_entities", "database_exists",
    "database_version", "delete_batch", "describe", "drop_build", "entity_counts", "entity_ids",
    "import_board_indicators", "import_entities", "insert_frame", "iter_entity_batches",
    "iter_entity_geojson", "iter_entity_rows", "iter_point_batches", "layer_ids", "list_audit",
    "list_batches", "located_counts", "match_rowids", "new_batch_id", "point_index",
    "prepare_search",
    "query_entities", "query_entities_page", "read_geo_table", "read_meta", "read_table",
    "read_url", "replace_memberships", "schema_for",
    "shared_points", "swap_in", "write_database", "writer_lock",
]
