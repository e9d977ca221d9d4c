"""The export's vocabulary: collections, formats and file names, the property schema of
each collection, and strict cell values and geometries (RFC 7946, no NaN, 7 decimals)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import mapping

from geo_app.errors import ExportError

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
