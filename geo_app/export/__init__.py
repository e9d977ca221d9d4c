"""Export entities, layers, boundaries, 板块 and water: RFC 7946 GeoJSON, CSV, Excel, GeoPackage.

One function produces the bytes for the app's download buttons, the CLI and the tests
(:func:`write_export`), so the same filter gives the same features everywhere; the app's
downloads are written by the CLI's :func:`export_file` into a folder the app serves from
disk (:func:`prepare_download`).

- **GeoJSON** (RFC 7946): WGS-84 ``[lon, lat]``, no ``crs`` member, exterior rings
  counter-clockwise and holes clockwise, at most 7 decimals, a ``bbox`` (after the
  features, so it can be computed while streaming), UTF-8 without BOM, strict JSON (never
  ``NaN``); entities without a point have ``"geometry": null``.
- **CSV**: UTF-8 with BOM, CRLF rows, ``lon``/``lat`` columns; **Excel** ``.xlsx``. In both,
  text cells starting with ``= + - @``, tab or CR get a leading ``'`` so no formula runs;
  numbers stay numbers. Polygon collections carry a label point (``label_lon``/``label_lat``).
- **GeoPackage**: every feature, including entities without a point (null geometry).

Entities are streamed from the store in batches (:func:`geo_app.store.iter_entity_rows`,
:func:`geo_app.store.iter_entity_geojson`): the database renders each GeoJSON feature and
the writer copies the text buffers straight to the output, so a million entities export
without building the document in memory.
The property schema is documented in ``docs/export.md`` and
``schemas/entities.schema.json``.

Modules: ``formats`` (collections, formats, property schema, strict values), ``rows`` (the
collections as frames and row batches), ``writers`` (GeoJSON, CSV, Excel, GeoPackage),
``files`` (:func:`write_export`, :func:`export_file`), ``downloads`` (the app's downloads).
Every public name is re-exported here: use ``from geo_app import export; export.write_export``.
"""

from __future__ import annotations

from geo_app.export.downloads import (
    DOWNLOAD_MAX_AGE_S,
    Download,
    clear_old_downloads,
    prepare_download,
)
from geo_app.export.files import (
    check_output_path,
    clear_stale_temps,
    export_bytes,
    export_file,
    write_export,
)
from geo_app.export.formats import (
    BATCH_SIZE,
    COLLECTIONS,
    DECIMALS,
    EXTENSIONS,
    FORMATS,
    FORMULA_START,
    GRID,
    ID_COLUMNS,
    LABEL_COLUMNS,
    MEDIA_TYPES,
    PROPERTIES,
    XLSX_MAX_ROWS,
    XLSX_NUMBER_FORMAT,
    check_collection,
    check_format,
    file_name,
    format_from_path,
    geometry_to_geojson,
    neutralise,
    prepare_geometry,
)
from geo_app.export.rows import (
    collection_gdf,
    count_features,
    feature_ids,
    iter_features,
)
from geo_app.export.writers import (
    table_columns,
    write_geojson,
)

__all__ = [
    "BATCH_SIZE", "COLLECTIONS", "DECIMALS", "DOWNLOAD_MAX_AGE_S", "EXTENSIONS", "FORMATS",
    "FORMULA_START", "GRID", "ID_COLUMNS", "LABEL_COLUMNS", "MEDIA_TYPES", "PROPERTIES",
    "XLSX_MAX_ROWS", "XLSX_NUMBER_FORMAT", "Download", "check_collection", "check_format",
    "check_output_path", "clear_old_downloads", "clear_stale_temps", "collection_gdf",
    "count_features", "export_bytes", "export_file", "feature_ids", "file_name",
    "format_from_path", "geometry_to_geojson", "iter_features", "neutralise", "prepare_download",
    "prepare_geometry", "table_columns", "write_export", "write_geojson",
]
