"""The store: the only package that imports duckdb; every SQL statement of the app is here.

The rest of the package uses the store only through the names re-exported here (``from
geo_app import store; store.query_entities(...)``), never through its modules. Today every
name is implemented by the DuckDB backend, the embedded database file; what is not DuckDB's
(tables, columns, row conversions) is in ``common``, so another backend can sit beside it:

==========================  =====================================================================
module                      what it holds
==========================  =====================================================================
``common``                  tables and columns, schema version, entity rows ⇄ GeoDataFrame
``duckdb_connect``          spatial extension, opening with retries, the readers a process keeps
``duckdb_files``            writer lock, the files beside a database, copy-write-swap
``duckdb_schema``           the schema, a new file from frames (build), user rows over a rebuild
``duckdb_read``             tables, entities by filter, pages, batches and the audit trail
``duckdb_stream``           entities as Arrow record batches (exports, the map)
``duckdb_write``            memberships, user imports, removals (each one transaction)
``backend``                 the switch: ``GEO_APP_DATABASE_URL`` sends every call to PostGIS
``postgis``                 the PostgreSQL 15 + PostGIS 3 backend (``postgis_connect``: pools,
                            locks; ``postgis_schema``: tables, build, swap; ``postgis_read``,
                            ``postgis_stream``, ``postgis_write``: as their DuckDB namesakes)
==========================  =====================================================================

With ``GEO_APP_DATABASE_URL=postgresql://…`` set, every function that reads or writes the
database runs on PostgreSQL/PostGIS instead (docs/deploy.md); unset, on the DuckDB file.
"""

from __future__ import annotations

from geo_app.store.backend import database_exists, new_batch_id, on_postgis, postgis_active
from geo_app.store.common import (
    ACTOR_COLUMNS,
    ENTITY_COLUMNS,
    SCHEMA_VERSION,
    USER_TABLES,
    entities_to_gdf,
    utc_now,
)
from geo_app.store.duckdb_connect import (
    MAX_OPEN_READERS,
    Version,
    connect,
    database_version,
    file_stamp,
    forget_readers,
    private_reader,
    reader,
)
from geo_app.store.duckdb_files import (
    SIDECARS,
    clear_leftovers,
    database_files,
    is_database_file,
    process_alive,
    rewrite,
    swap_in,
    writer_lock,
)
from geo_app.store.duckdb_read import (
    count_entities,
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
from geo_app.store.duckdb_schema import SCHEMA, copy_user_data, insert_frame, write_database
from geo_app.store.duckdb_stream import (
    iter_entity_batches,
    iter_entity_geojson,
    iter_entity_rows,
    iter_point_batches,
    match_rowids,
    point_index,
    prepare_search,
)
from geo_app.store.duckdb_write import (
    delete_batch,
    import_board_indicators,
    import_entities,
    replace_memberships,
)

# GEO_APP_DATABASE_URL moves every function below onto PostgreSQL/PostGIS (store/postgis.py);
# unset, they run on the DuckDB file exactly as imported above (store/backend.py).
clear_leftovers = on_postgis(clear_leftovers)
copy_user_data = on_postgis(copy_user_data)
count_entities = on_postgis(count_entities)
database_version = on_postgis(database_version)
delete_batch = on_postgis(delete_batch)
entity_counts = on_postgis(entity_counts)
entity_ids = on_postgis(entity_ids)
import_board_indicators = on_postgis(import_board_indicators)
import_entities = on_postgis(import_entities)
iter_entity_batches = on_postgis(iter_entity_batches)
iter_entity_geojson = on_postgis(iter_entity_geojson)
iter_entity_rows = on_postgis(iter_entity_rows)
iter_point_batches = on_postgis(iter_point_batches)
layer_ids = on_postgis(layer_ids)
list_audit = on_postgis(list_audit)
list_batches = on_postgis(list_batches)
located_counts = on_postgis(located_counts)
match_rowids = on_postgis(match_rowids)
point_index = on_postgis(point_index)
prepare_search = on_postgis(prepare_search)
query_entities = on_postgis(query_entities)
query_entities_page = on_postgis(query_entities_page)
read_geo_table = on_postgis(read_geo_table)
read_meta = on_postgis(read_meta)
read_table = on_postgis(read_table)
replace_memberships = on_postgis(replace_memberships)
shared_points = on_postgis(shared_points)
swap_in = on_postgis(swap_in)
write_database = on_postgis(write_database)
writer_lock = on_postgis(writer_lock)

__all__ = [
    "database_exists", "new_batch_id", "on_postgis", "postgis_active",
    "ACTOR_COLUMNS", "ENTITY_COLUMNS", "MAX_OPEN_READERS", "SCHEMA", "SCHEMA_VERSION", "SIDECARS",
    "USER_TABLES", "Version", "clear_leftovers", "connect", "copy_user_data", "count_entities",
    "database_files", "database_version", "delete_batch", "entities_to_gdf", "entity_counts",
    "entity_ids", "file_stamp", "forget_readers", "import_board_indicators", "import_entities",
    "insert_frame", "is_database_file", "iter_entity_batches", "iter_entity_geojson",
    "iter_entity_rows", "iter_point_batches", "layer_ids", "list_audit", "list_batches",
    "located_counts", "match_rowids", "point_index", "prepare_search", "private_reader",
    "process_alive",
    "query_entities", "query_entities_page",
    "read_geo_table", "read_meta", "read_table", "reader", "replace_memberships", "rewrite",
    "shared_points", "swap_in", "utc_now", "write_database", "writer_lock",
]
