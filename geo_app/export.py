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
"""

from __future__ import annotations

import atexit
import csv
import glob
import io
import itertools
import json
import math
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from shapely.geometry import mapping

from geo_app import store
from geo_app.datum import METRIC_CRS
from geo_app.errors import ExportError
from geo_app.filters import EntityFilter

DECIMALS = 7
GRID = 10.0**-DECIMALS
COLLECTIONS = ("entities", "layers", "boundaries", "boards", "water")
FORMATS = ("geojson", "csv", "xlsx", "gpkg")
EXTENSIONS: Mapping[str, str] = {"geojson": ".geojson", "csv": ".csv", "xlsx": ".xlsx",
                                 "gpkg": ".gpkg"}
MEDIA_TYPES: Mapping[str, str] = {
    "geojson": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "gpkg": "application/geopackage+sqlite3",
}
#: Rows of entities read from DuckDB at a time (a few MB of GeoJSON text).
BATCH_SIZE = 4096
#: An Excel sheet holds 1,048,576 rows, one of them the header.
XLSX_MAX_ROWS = 1_048_575
#: Number format of the empty numeric cells of an .xlsx (up to 7 decimals, as coordinates).
XLSX_NUMBER_FORMAT = "0.0######"
#: First characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_STR, _FLOAT, _BOOL = "string", "number", "boolean"

#: Property columns of each collection, in output order, with their JSON type.
PROPERTIES: Mapping[str, Mapping[str, str]] = {
    "entities": {
        "id": _STR, "name_zh": _STR, "name_en": _STR, "kind": _STR, "level": _STR,
        "status": _STR, "board": _STR, "lon": _FLOAT, "lat": _FLOAT,
        "location_precision": _STR, "location_source": _STR, "source_datum": _STR,
        "source_lon": _FLOAT, "source_lat": _FLOAT, "conversion": _STR, "source": _STR,
        "notes": _STR, "origin": _STR, "batch_id": _STR, "layers": _STR,
    },
    "layers": {
        "id": _STR, "name_zh": _STR, "name_en": _STR, "color": _STR, "schematic": _BOOL,
        "area_km2": _FLOAT, "method": _STR, "description_zh": _STR, "description_en": _STR,
        "facts": _STR, "spec_file": _STR, "source": _STR, "source_datum": _STR,
        "conversion": _STR,
    },
    "boundaries": {
        "adcode": _STR, "name_zh": _STR, "name_en": _STR, "level": _STR, "source": _STR,
        "source_datum": _STR, "conversion": _STR,
    },
    "boards": {
        "id": _STR, "name_zh": _STR, "name_en": _STR, "land_area_km2": _FLOAT,
        "area_year": _STR, "area_source": _STR, "county_adcode": _STR,
        "polygon_status": _STR, "notes": _STR, "source": _STR, "source_datum": _STR,
        "conversion": _STR,
    },
    "water": {
        "id": _STR, "name_zh": _STR, "name_en": _STR, "kind": _STR, "source": _STR,
        "source_datum": _STR, "conversion": _STR,
    },
}
#: The property that is also the GeoJSON feature ``id``.
ID_COLUMNS: Mapping[str, str] = {"entities": "id", "layers": "id", "boundaries": "adcode",
                                 "boards": "id", "water": "id"}
#: Extra CSV/Excel columns of the polygon collections: a point inside each polygon.
LABEL_COLUMNS = ("label_lon", "label_lat")
_COORDINATE_PROPERTIES = frozenset({"lon", "lat"})


# ----------------------------------------------------------------------------- formats


def format_from_path(path: str | Path) -> str | None:
    """The export format named by a file extension (``.json`` is GeoJSON), or None.

    >>> format_from_path("out/entities.GPKG"), format_from_path("x.json"), format_from_path("x")
    ('gpkg', 'geojson', None)
    """
    suffix = Path(str(path)).suffix.lower()
    if suffix == ".json":
        return "geojson"
    for fmt, ext in EXTENSIONS.items():
        if suffix == ext:
            return fmt
    return None


def check_format(fmt: str) -> str:
    """Return ``fmt`` if it is an export format; raise :class:`ExportError` otherwise."""
    if fmt not in FORMATS:
        msg = f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}"
        raise ExportError(msg)
    return fmt


def check_collection(collection: str) -> str:
    """Return ``collection`` if it can be exported; raise :class:`ExportError` otherwise."""
    if collection not in COLLECTIONS:
        msg = f"Unknown collection {collection!r}; choose one of {', '.join(COLLECTIONS)}"
        raise ExportError(msg)
    return collection


def file_name(collection: str, fmt: str) -> str:
    """The default download name, e.g. ``suzhou-entities.geojson``."""
    return f"suzhou-{check_collection(collection)}{EXTENSIONS[check_format(fmt)]}"


def neutralise(value: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula; other text is unchanged.

    >>> neutralise("=HYPERLINK(1)"), neutralise("-1"), neutralise("a=b"), neutralise("")
    ("'=HYPERLINK(1)", "'-1", 'a=b', '')
    """
    return "'" + value if value.startswith(FORMULA_START) else value


# ----------------------------------------------------------------------------- values


def _clean(value: Any) -> Any:
    """Make a cell strict JSON: NaN/NaT/inf → None, numpy scalars → Python, times → ISO."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, pd.Timestamp):
        return None if value is pd.NaT else value.isoformat()
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value


def _clean_column(name: str, values: Iterable[Any]) -> list[Any]:
    cleaned = [_clean(v) for v in values]
    if name in _COORDINATE_PROPERTIES:
        return [round(float(v), DECIMALS) if isinstance(v, (int, float)) and not isinstance(v, bool)
                else None for v in cleaned]
    return cleaned


def prepare_geometry(geom: Any) -> Any:
    """A geometry ready to write: None if missing or empty, else snapped to a 1e-7° grid
    (valid, no repeated points) with exterior rings counter-clockwise and holes clockwise."""
    if geom is None or shapely.is_empty(geom):
        return None
    if geom.geom_type == "Point":
        return shapely.Point(round(geom.x, DECIMALS), round(geom.y, DECIMALS))
    geom = shapely.set_precision(geom, GRID)
    if shapely.is_empty(geom):
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon", "GeometryCollection"):
        geom = shapely.orient_polygons(geom, exterior_cw=False)
    return geom


def _round_coords(obj: Any) -> Any:
    if isinstance(obj, (list, tuple)):
        if obj and isinstance(obj[0], (int, float)):
            return [round(float(c), DECIMALS) for c in obj]
        return [_round_coords(o) for o in obj]
    return obj


def _to_lists(gj: Any) -> Any:
    if isinstance(gj, dict):
        return {k: _round_coords(v) if k == "coordinates" else _to_lists(v) for k, v in gj.items()}
    if isinstance(gj, (list, tuple)):
        return [_to_lists(g) for g in gj]
    return gj


def geometry_to_geojson(geom: Any) -> dict[str, Any] | None:
    """RFC 7946 geometry: CCW exterior rings, CW holes, ≤ 7 decimals; None for no geometry.

    >>> geometry_to_geojson(shapely.Point(120.123456789, 31.0))
    {'type': 'Point', 'coordinates': [120.1234568, 31.0]}
    """
    geom = prepare_geometry(geom)
    return None if geom is None else _to_lists(mapping(geom))


# ----------------------------------------------------------------------------- collections


def collection_gdf(db_path: Path, collection: str, flt: EntityFilter | None = None) -> gpd.GeoDataFrame:
    """The rows of one collection as a WGS-84 GeoDataFrame with the documented properties.

    The filter applies to ``entities`` only. Columns: :data:`PROPERTIES` of the collection
    and ``geometry`` (raw; writers prepare it with :func:`prepare_geometry`).
    """
    check_collection(collection)
    if collection == "entities":
        gdf = store.query_entities(db_path, flt)
    elif collection == "layers":
        gdf = _layers_gdf(db_path)
    elif collection == "boards":
        gdf = _boards_gdf(db_path)
    else:
        gdf = store.read_geo_table(db_path, collection)
    cols = list(PROPERTIES[collection])
    return gpd.GeoDataFrame(gdf[cols], geometry=gdf.geometry.values, crs="EPSG:4326")


def _layers_gdf(db_path: Path) -> gpd.GeoDataFrame:

    gdf = store.read_geo_table(db_path, "layers")
    specs = [json.loads(s) if isinstance(s, str) and s else {} for s in gdf["spec_json"]]
    gdf["description_zh"] = [s.get("description_zh") for s in specs]
    gdf["description_en"] = [s.get("description_en") for s in specs]
    gdf["source"] = [f"layers/{f}: schematic area built by rule from the boundaries and water "
                     "(not an official boundary; the facts name their sources)"
                     for f in gdf["spec_file"]]
    gdf["source_datum"] = "WGS84"
    gdf["conversion"] = f"built in {METRIC_CRS} (UTM 51N) from WGS-84 inputs, stored in WGS-84"
    return gdf  # spec_json is left out: it holds the local path of the spec file


def _boards_gdf(db_path: Path) -> gpd.GeoDataFrame:
    """The ten 板块 with the county polygon each maps to (SIP has none: null geometry)."""
    boards = store.read_table(db_path, "boards")
    bounds = store.read_geo_table(db_path, "boundaries").set_index("adcode")
    codes = [c if isinstance(c, str) and c in bounds.index else None
             for c in boards["county_adcode"]]
    for column in ("source", "source_datum", "conversion"):
        boards[column] = [bounds.at[c, column] if c else None for c in codes]
    geoms = [bounds.geometry.get(c) if c else None for c in codes]
    return gpd.GeoDataFrame(boards, geometry=geoms, crs="EPSG:4326")


def count_features(db_path: Path, collection: str,
                   flt: EntityFilter | None = None) -> tuple[int, int]:
    """How many features an export of ``collection`` holds, and how many have no geometry."""
    if check_collection(collection) == "entities":
        located, n = store.located_counts(db_path, flt)
        return n, n - located
    gdf = collection_gdf(db_path, collection)
    return len(gdf), int(gdf.geometry.isna().sum() + gdf.geometry.is_empty.sum())


def iter_features(gdf: gpd.GeoDataFrame, *, id_column: str | None = "id") -> Iterator[dict[str, Any]]:
    """Yield RFC 7946 Feature dicts, one per row (properties are strict JSON).

    Every non-geometry column is a property; ``lon``/``lat`` are rounded to 7 decimals.
    """
    geom_col = gdf.geometry.name
    cols = {c: _clean_column(c, gdf[c]) for c in gdf.columns if c != geom_col}
    for i, geom in enumerate(gdf.geometry.values):
        props = {c: values[i] for c, values in cols.items()}
        feature: dict[str, Any] = {"type": "Feature"}
        if id_column and props.get(id_column) is not None:
            feature["id"] = props[id_column]
        feature["properties"] = props
        feature["geometry"] = geometry_to_geojson(geom)
        yield feature


def feature_ids(features: Iterable[dict[str, Any]]) -> list[str]:
    """The ids of a sequence of features (a helper for comparisons)."""
    return [str(f.get("id")) for f in features]


# ----------------------------------------------------------------------------- row batches


@dataclass(frozen=True)
class _Rows:
    """One batch of export rows: property columns (strict values) and prepared geometries."""

    columns: dict[str, list[Any]]
    geometry: np.ndarray

    def __len__(self) -> int:
        return len(self.geometry)


def _object_array(items: list[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _points(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    ok = np.isfinite(lon) & np.isfinite(lat)
    geoms = np.full(len(lon), None, dtype=object)
    geoms[ok] = shapely.points(lon[ok], lat[ok])
    return geoms


def _entity_rows(db_path: Path, flt: EntityFilter | None, batch_size: int) -> Iterator[_Rows]:
    for batch in store.iter_entity_rows(db_path, flt, columns=list(PROPERTIES["entities"]),
                                        decimals=DECIMALS, batch_size=batch_size):
        columns = {name: batch.column(name).to_pylist() for name in PROPERTIES["entities"]}
        lon = batch.column("lon").to_numpy(zero_copy_only=False).astype(float)
        lat = batch.column("lat").to_numpy(zero_copy_only=False).astype(float)
        yield _Rows(columns, _points(lon, lat))


def _gdf_rows(gdf: gpd.GeoDataFrame, collection: str) -> _Rows:
    columns = {c: _clean_column(c, gdf[c]) for c in PROPERTIES[collection]}
    return _Rows(columns, _object_array([prepare_geometry(g) for g in gdf.geometry.values]))


def _iter_rows(db_path: Path, collection: str, flt: EntityFilter | None,
               batch_size: int) -> Iterator[_Rows]:
    if collection == "entities":
        yield from _entity_rows(db_path, flt, batch_size)
    else:
        yield _gdf_rows(collection_gdf(db_path, collection), collection)


# ----------------------------------------------------------------------------- GeoJSON


def _bbox_text(bounds: list[float] | None) -> str:
    if bounds is None:
        return ""
    return ', "bbox": ' + json.dumps([round(float(v), DECIMALS) for v in bounds], allow_nan=False)


_HEAD = b'{"type": "FeatureCollection", "features": [\n'


def _tail(bounds: list[float] | None) -> bytes:
    return ("\n]" + _bbox_text(bounds) + "}\n").encode()


def write_geojson(gdf: gpd.GeoDataFrame, out: IO[bytes], *, id_column: str | None = "id") -> int:
    """Write a WGS-84 GeoDataFrame to ``out`` as an RFC 7946 FeatureCollection; returns the count."""
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")
    out.write(_HEAD)
    n = 0
    bounds: list[float] | None = None
    for feature in iter_features(gdf, id_column=id_column):
        if n:
            out.write(b",\n")
        out.write(json.dumps(feature, ensure_ascii=False, allow_nan=False).encode())
        bounds = _grow(bounds, _geojson_bounds(feature["geometry"]))
        n += 1
    out.write(_tail(bounds))
    return n


def _geojson_bounds(geometry: dict[str, Any] | None) -> list[float] | None:
    if geometry is None:
        return None
    coords = shapely.get_coordinates(shapely.geometry.shape(geometry))
    if not len(coords):
        return None
    return [*coords.min(axis=0).tolist(), *coords.max(axis=0).tolist()]


def _grow(bounds: list[float] | None, other: list[float] | None) -> list[float] | None:
    if other is None:
        return bounds
    if bounds is None:
        return list(other)
    return [min(bounds[0], other[0]), min(bounds[1], other[1]),
            max(bounds[2], other[2]), max(bounds[3], other[3])]


def _utf8(arr: pa.Array) -> bytes | memoryview:
    """The concatenated UTF-8 bytes of a string array (zero-copy for Arrow strings)."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        _validity, offsets_buf, data = arr.buffers()
        dtype = np.int64 if pa.types.is_large_string(arr.type) else np.int32
        offsets = np.frombuffer(offsets_buf, dtype=dtype)
        start, end = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
        return memoryview(data)[start:end] if data is not None and end > start else b""
    return "".join(arr.to_pylist()).encode()


def _write_entities_geojson(db_path: Path, flt: EntityFilter | None, out: IO[bytes],
                            batch_size: int) -> int:
    out.write(_HEAD)
    n = 0
    bounds: list[float] | None = None
    for batch in store.iter_entity_geojson(db_path, flt, properties=list(PROPERTIES["entities"]),
                                           decimals=DECIMALS, batch_size=batch_size):
        data = _utf8(batch.column("feature"))
        out.write(data[2:] if n == 0 else data)  # the first feature has no ",\n" before it
        n += batch.num_rows
        lon, lat = pc.min_max(batch.column("glon")), pc.min_max(batch.column("glat"))
        if lon["min"].is_valid:
            bounds = _grow(bounds, [lon["min"].as_py(), lat["min"].as_py(),
                                    lon["max"].as_py(), lat["max"].as_py()])
    out.write(_tail(bounds))
    return n


# ----------------------------------------------------------------------------- CSV and Excel


def _label_points(geoms: np.ndarray) -> tuple[list[float | None], list[float | None]]:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for g in geoms:
        if g is None:
            xs.append(None)
            ys.append(None)
        else:
            p = shapely.point_on_surface(g)
            xs.append(round(p.x, DECIMALS))
            ys.append(round(p.y, DECIMALS))
    return xs, ys


def table_columns(collection: str) -> list[str]:
    """Column headers of the CSV and Excel exports of ``collection``."""
    cols = list(PROPERTIES[check_collection(collection)])
    return cols if collection == "entities" else cols + list(LABEL_COLUMNS)


def _table_rows(rows: _Rows, collection: str) -> Iterator[list[Any]]:
    columns = [rows.columns[c] for c in PROPERTIES[collection]]
    if collection != "entities":
        columns += list(_label_points(rows.geometry))
    return (list(r) for r in zip(*columns, strict=True))


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def _write_csv(batches: Iterable[_Rows], collection: str, out: IO[bytes]) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        text.write("\ufeff")  # the BOM lets Excel in Chinese read UTF-8
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(table_columns(collection))
        n = 0
        for rows in batches:
            writer.writerows([_csv_cell(v) for v in row] for row in _table_rows(rows, collection))
            n += len(rows)
        text.flush()
    finally:
        text.detach()  # leave the caller's stream open
    return n


def _xlsx_cell(value: Any) -> Any:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, str):
        # control characters other than tab, LF and CR cannot be stored in .xlsx
        return neutralise(ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
    return value


def _typed_columns(collection: str) -> list[int]:
    """Positions of the number and boolean columns in the CSV/Excel table of ``collection``."""
    kinds = {**PROPERTIES[collection], **dict.fromkeys(LABEL_COLUMNS, _FLOAT)}
    return [i for i, name in enumerate(table_columns(collection)) if kinds[name] != _STR]


def _write_xlsx(batches: Iterable[_Rows], collection: str, out: IO[bytes]) -> int:
    """Write the sheet; an unknown number is an *empty numeric cell*, never a missing one.

    GDAL's XLSX driver (and so QGIS) takes the first row as the header only when the second
    row has a cell that is not text (``OGR_XLSX_HEADERS=AUTO``: ``DetectHeaderLine`` in
    ``ogr/ogrsf_frmts/xlsx``). An entity without a point has text in every other column,
    so with its ``lon``/``lat`` cells left out GDAL read the header as a data row whenever
    such an entity came first. Every row therefore carries its number columns (``lon``,
    ``lat``, ``source_lon``, ``source_lat``, areas, ``label_lon``/``label_lat``) as
    numeric cells, empty when the value is unknown (:data:`XLSX_NUMBER_FORMAT` gives them
    a style, without which openpyxl would leave an empty cell out). No value is invented:
    Excel and openpyxl read those cells as blank.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(collection)
    ws.freeze_panes = "A2"
    header = []
    for name in table_columns(collection):
        cell = WriteOnlyCell(ws, value=name)
        cell.font = Font(bold=True)
        header.append(cell)
    ws.append(header)
    typed = _typed_columns(collection)

    def empty_number() -> WriteOnlyCell:
        cell = WriteOnlyCell(ws)
        cell.number_format = XLSX_NUMBER_FORMAT
        return cell

    n = 0
    for rows in batches:
        if n + len(rows) > XLSX_MAX_ROWS:
            msg = (f"An Excel sheet holds at most {XLSX_MAX_ROWS:,} rows; this export has more. "
                   "Use CSV or GeoPackage, or filter further. / Excel 最多 1,048,575 行，"
                   "请改用 CSV 或 GeoPackage，或缩小筛选范围。")
            raise ExportError(msg)
        for row in _table_rows(rows, collection):
            cells = [_xlsx_cell(v) for v in row]
            for i in typed:
                if cells[i] is None:
                    cells[i] = empty_number()
            ws.append(cells)
        n += len(rows)
    wb.save(out)
    return n


# ----------------------------------------------------------------------------- GeoPackage


_ARROW_TYPES: Mapping[str, pa.DataType] = {_STR: pa.string(), _FLOAT: pa.float64(),
                                           _BOOL: pa.bool_()}


def _arrow_batch(rows: _Rows, collection: str, schema: pa.Schema, multi: bool) -> pa.RecordBatch:
    geoms = rows.geometry
    if multi:
        geoms = _object_array([shapely.MultiPolygon([g]) if g is not None and g.geom_type == "Polygon"
                               else g for g in geoms])
    arrays = [pa.array(rows.columns[name], type=_ARROW_TYPES[kind])
              for name, kind in PROPERTIES[collection].items()]
    arrays.append(pa.array(list(shapely.to_wkb(geoms)), type=pa.binary()))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _write_gpkg(batches: Iterable[_Rows], collection: str, path: Path) -> int:
    import pyogrio

    fields = [pa.field(n, _ARROW_TYPES[k]) for n, k in PROPERTIES[collection].items()]
    schema = pa.schema([*fields, pa.field("geometry", pa.binary())])
    rest = iter(batches)
    first = [b for b in [next(rest, None)] if b is not None]
    if collection == "entities":
        geometry_type, multi = "Point", False
    else:  # the small collections come as one batch: their geometry types are known
        types = {g.geom_type for rows in first for g in rows.geometry if g is not None}
        multi = bool(types) and types <= {"Polygon", "MultiPolygon"}
        geometry_type = "MultiPolygon" if multi else "Unknown"
    written = [0]

    def arrow_batches() -> Iterator[pa.RecordBatch]:
        for rows in itertools.chain(first, rest):
            written[0] += len(rows)
            yield _arrow_batch(rows, collection, schema, multi)

    reader = pa.RecordBatchReader.from_batches(schema, arrow_batches())
    pyogrio.write_arrow(reader, str(path), layer=collection, driver="GPKG",
                        geometry_name="geometry", geometry_type=geometry_type, crs="EPSG:4326")
    return written[0]


# ----------------------------------------------------------------------------- entry points


def _check_request(collection: str, fmt: str, flt: EntityFilter | None) -> None:
    check_collection(collection)
    check_format(fmt)
    if flt is not None and not flt.is_empty() and collection != "entities":
        msg = f"Filters apply to entities only, not to {collection!r}"
        raise ExportError(msg)


def _check_xlsx_rows(db_path: Path, flt: EntityFilter | None) -> None:
    count, _ = count_features(db_path, "entities", flt)
    if count > XLSX_MAX_ROWS:
        msg = (f"{count:,} entities match, but an Excel sheet holds at most {XLSX_MAX_ROWS:,} "
               f"rows: use CSV or GeoPackage, or filter further. / 匹配 {count:,} 个主体，超过 "
               "Excel 的行数上限，请改用 CSV 或 GeoPackage，或缩小筛选范围。")
        raise ExportError(msg)


def write_export(db_path: Path, collection: str, fmt: str, out: IO[bytes], *,
                 flt: EntityFilter | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Write ``collection`` (entities filtered by ``flt``) as ``fmt`` to the binary stream ``out``.

    This is the one function behind the app's downloads and ``geo-app export``.

    Returns
    -------
    int
        The number of features written.

    Raises
    ------
    ExportError
        For an unknown format or collection, a filter on a collection other than
        entities, more rows than an Excel sheet holds, or ``out`` open on the database.
    """
    _check_request(collection, fmt, flt)
    _check_stream(out, db_path)
    if fmt == "gpkg":  # GDAL writes files, not streams
        with tempfile.TemporaryDirectory(prefix="geo-app-export-") as tmp:
            path = Path(tmp) / file_name(collection, fmt)
            n = _write_gpkg(_iter_rows(db_path, collection, flt, batch_size), collection, path)
            with open(path, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
        return n
    if fmt == "geojson":
        if collection == "entities":
            return _write_entities_geojson(db_path, flt, out, batch_size)
        return write_geojson(collection_gdf(db_path, collection), out,
                             id_column=ID_COLUMNS[collection])
    if fmt == "xlsx" and collection == "entities":
        _check_xlsx_rows(db_path, flt)
    rows = _iter_rows(db_path, collection, flt, batch_size)
    writer = _write_csv if fmt == "csv" else _write_xlsx
    return writer(rows, collection, out)


def export_bytes(db_path: Path, collection: str, fmt: str, *,
                 flt: EntityFilter | None = None) -> bytes:
    """The bytes of an export, held in memory (for tests and small collections).

    The app serves its downloads from disk instead (:func:`prepare_download`).
    """
    buf = io.BytesIO()
    write_export(db_path, collection, fmt, buf, flt=flt)
    return buf.getvalue()


def check_output_path(path: str | Path, db_path: Path) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` if an export may write it.

    Refused: an empty path, a folder, a path whose folder does not exist, and the database
    ``db_path`` itself or any file the store keeps beside it (its WAL, lock, write copies,
    build files), whether named directly, through a symlink, with ``..`` or as a hard
    link: writing one would destroy the database and every import batch in it.

    Raises
    ------
    ExportError
        Saying which of these the path is and what to give instead.
    """
    if not str(path).strip():
        msg = "The output path is empty: give a file name, e.g. entities.geojson"
        raise ExportError(msg)
    path = Path(path)
    if store.is_database_file(path, db_path):
        msg = (f"Refusing to export to {path}: it is the app's database {db_path} or one of "
               "its files, and writing it would destroy every import. Choose another file. "
               "/ 不能导出到数据库文件，请换一个文件名。")
        raise ExportError(msg)
    if path.is_dir():
        msg = f"Cannot write {path}: it is a folder; give a file name inside it"
        raise ExportError(msg)
    if not path.parent.is_dir():
        msg = f"Cannot write {path}: the folder {path.parent} does not exist"
        raise ExportError(msg)
    return path


def _check_stream(out: IO[bytes], db_path: Path) -> None:
    """Refuse a stream open on the database or one of its files (``-o - >> geo_app.duckdb``)."""
    try:
        st = os.fstat(out.fileno())
    except (AttributeError, OSError, ValueError):  # an in-memory stream has no file
        return
    for path in store.database_files(db_path):
        try:
            other = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino):
            msg = (f"Refusing to export into the app's database {db_path} (the output stream "
                   "is that file): it would destroy every import. Redirect to another file.")
            raise ExportError(msg)


#: Name of the hidden file an export writes before moving it over its target: the
#: target's stem, the writer's process id and a random token, the target's suffix.
_TEMP = r"\.{stem}\.tmp(?P<pid>\d+)(?:-[0-9a-f]+)?{suffix}"


def _temp_path(path: Path) -> Path:
    """A new hidden file beside ``path`` for an export to write (GDAL wants the suffix).

    The token keeps two exports of one process (threads) or a reused process id apart.
    """
    return path.with_name(f".{path.stem}.tmp{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")


def clear_stale_temps(path: Path) -> list[Path]:
    """Delete the temporary files of exports to ``path`` whose process is gone.

    An export killed mid-write leaves ``.<stem>.tmp<pid><suffix>`` beside its target;
    a temporary file of a live process (another export running now) is kept.

    Returns
    -------
    list of Path
        The files deleted.
    """
    path = Path(path)
    pattern = re.compile(_TEMP.format(stem=re.escape(path.stem), suffix=re.escape(path.suffix)))
    gone = []
    for stale in path.parent.glob(f".{glob.escape(path.stem)}.tmp*"):
        match = pattern.fullmatch(stale.name)
        if match and stale.is_file() and not store.process_alive(int(match["pid"])):
            stale.unlink(missing_ok=True)
            gone.append(stale)
    return gone


def export_file(db_path: Path, collection: str, fmt: str, path: str | Path, *,
                flt: EntityFilter | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Write an export to ``path``, streaming, atomically: a failed export leaves no file.

    The path is checked first (:func:`check_output_path`: never the database); stale
    temporary files of killed exports to the same path are removed.

    Returns
    -------
    int
        The number of features written.

    Raises
    ------
    ExportError
        For a refused path, a bad request, or when the file cannot be written (the
        operating system's reason is in the message).
    """
    path = check_output_path(path, db_path)
    _check_request(collection, fmt, flt)
    clear_stale_temps(path)
    tmp = _temp_path(path)
    try:
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            if fmt == "gpkg":
                tmp.unlink()  # GDAL creates its own file
                n = _write_gpkg(_iter_rows(db_path, collection, flt, batch_size), collection, tmp)
            else:
                with open(tmp, "wb") as fh:
                    n = write_export(db_path, collection, fmt, fh, flt=flt, batch_size=batch_size)
            os.replace(tmp, path)
        except OSError as err:
            reason = err.strerror or str(err)
            if err.filename == str(tmp):  # the temporary file beside it
                reason = f"cannot create a new file in {path.parent} ({reason})"
            elif err.filename not in (None, str(path)):
                reason = f"{reason}: {err.filename}"
            msg = f"Cannot write {path}: {reason}"
            raise ExportError(msg) from err
    finally:
        tmp.unlink(missing_ok=True)
    return n


# ----------------------------------------------------------------------------- app downloads


#: How long a prepared download stays on disk (seconds) before the next export removes it.
DOWNLOAD_MAX_AGE_S = 15 * 60
#: A download folder's name: ``secrets.token_urlsafe(24)`` (32 characters, 192 random bits).
_DOWNLOAD_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
_own_download_dirs: set[Path] = set()
_download_lock = threading.Lock()


@dataclass(frozen=True)
class Download:
    """An export written for the app to serve from disk.

    Attributes
    ----------
    path
        The file: ``<root>/<token>/<file name>``.
    url_path
        Its path below the served root, ``<token>/<file name>`` (URL-safe as it is:
        the token is URL-safe base64 and the name is :func:`file_name`'s).
    name
        The file name (:func:`file_name`: from the fixed collections and formats).
    size
        Bytes.
    features
        Features written.
    """

    path: Path
    url_path: str
    name: str
    size: int
    features: int


def clear_old_downloads(root: Path, max_age_s: float = DOWNLOAD_MAX_AGE_S, *,
                        now: float | None = None) -> list[Path]:
    """Delete the download folders in ``root`` not modified for ``max_age_s`` seconds.

    Only real folders (never a symlink) named like a token are removed; a file being
    served while its folder is removed is still read to its end (the open file lives on).

    Returns
    -------
    list of Path
        The folders deleted.
    """
    now = time.time() if now is None else now
    gone = []
    for entry in root.glob("*") if root.is_dir() else []:
        try:
            st = entry.lstat()
        except OSError:
            continue
        if (_DOWNLOAD_TOKEN.fullmatch(entry.name) and stat.S_ISDIR(st.st_mode)
                and now - st.st_mtime > max_age_s):
            shutil.rmtree(entry, ignore_errors=True)
            gone.append(entry)
    return gone


def _remove_own_downloads(pid: int) -> None:
    if os.getpid() == pid:  # not from a forked child that inherited the exit handler
        for folder in list(_own_download_dirs):
            shutil.rmtree(folder, ignore_errors=True)


def _new_download_dir(root: Path) -> Path:
    """A new folder ``root/<token>`` of this process, removed at its exit at the latest."""
    with _download_lock:
        root.mkdir(parents=True, exist_ok=True)
        folder = root / secrets.token_urlsafe(24)
        folder.mkdir()  # a collision (2**-192) fails rather than shares a folder
        if not _own_download_dirs:
            atexit.register(_remove_own_downloads, os.getpid())
        _own_download_dirs.add(folder)
        return folder


def prepare_download(db_path: Path, collection: str, fmt: str, root: Path, *,
                     flt: EntityFilter | None = None,
                     max_age_s: float = DOWNLOAD_MAX_AGE_S) -> Download:
    """Write an export into a new unguessable folder under ``root`` for the app to serve.

    :func:`export_file` (the function behind ``geo-app export -o``, so the bytes are the
    command line's) streams the export to ``root/<secrets.token_urlsafe(24)>/<file name>``;
    nothing of the file is held in memory. Folders in ``root`` older than ``max_age_s``
    are removed first (:func:`clear_old_downloads`), and the process removes its own
    folders when it exits. A failed export leaves no folder. The file is never beside the
    database: it is alone in its new folder, and :func:`export_file` refuses database files.

    Raises
    ------
    ExportError
        For a bad request, or when the folder or file cannot be written (the system's
        reason, e.g. a full disk, is in the message).
    """
    _check_request(collection, fmt, flt)
    clear_old_downloads(root, max_age_s)
    try:
        folder = _new_download_dir(root)
    except OSError as err:
        msg = f"Cannot prepare the download: no folder can be created in {root} " \
              f"({err.strerror or err})"
        raise ExportError(msg) from err
    name = file_name(collection, fmt)
    done = False
    try:
        n = export_file(db_path, collection, fmt, folder / name, flt=flt)
        size = (folder / name).stat().st_size
        done = True
    finally:
        if not done:
            shutil.rmtree(folder, ignore_errors=True)
            _own_download_dirs.discard(folder)
    return Download(path=folder / name, url_path=f"{folder.name}/{name}", name=name,
                    size=size, features=n)
