"""The writers: RFC 7946 GeoJSON (entities as text the database renders), CSV and Excel
(formula-safe cells, label points of polygons), and GeoPackage through GDAL."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from geo_app import store
from geo_app.errors import ExportError
from geo_app.export.formats import (
    _BOOL,
    _FLOAT,
    _STR,
    DECIMALS,
    LABEL_COLUMNS,
    PROPERTIES,
    XLSX_MAX_ROWS,
    XLSX_NUMBER_FORMAT,
    check_collection,
    neutralise,
)
from geo_app.export.rows import _object_array, _Rows, iter_features
from geo_app.filters import EntityFilter

# ----------------------------------------------------------------------------- GeoJSON


def _bbox_text(bounds: list[float] | None) -> str:
    if bounds is None:
        return ""
    return ', "bbox": ' + json.dumps([round(float(v), DECIMALS) for v in bounds], allow_nan=False)


_HEAD = b'{"type": "FeatureCollection", "features": [\n'


def _tail(bounds: list[float] | None) -> bytes:
    return ("\n]" + _bbox_text(bounds) + "}\n").encode()


def write_geojson(gdf: gpd.GeoDataFrame, out: IO[bytes], *, id_column: str | None = "id") -> int:
    """Write a WGS-84 GeoDataFrame to ``out`` as an RFC 7946 FeatureCollection; returns the
    count."""
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
        geoms = _object_array([shapely.MultiPolygon([g])
                               if g is not None and g.geom_type == "Polygon" else g
                               for g in geoms])
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
