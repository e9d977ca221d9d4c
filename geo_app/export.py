"""Write entities, layers, boundaries, 板块 and water as RFC 7946 GeoJSON (streaming).

RFC 7946: WGS-84 ``[lon, lat]``, no ``crs`` member, exterior rings counter-clockwise
and holes clockwise, a ``bbox``, UTF-8 without BOM, strict JSON (no NaN). Features
are written one at a time, so memory does not grow with the output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import mapping

from geo_app import store
from geo_app.errors import ExportError
from geo_app.filters import EntityFilter

DECIMALS = 7
COLLECTIONS = ("entities", "layers", "boundaries", "boards", "water")


def _clean(value: Any) -> Any:
    """Make a cell strict-JSON: NaN/NaT/inf → null, numpy scalars → Python."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NaT or (not isinstance(value, (str, bytes, list, dict)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _round_coords(obj: Any) -> Any:
    if isinstance(obj, (list, tuple)):
        if obj and isinstance(obj[0], (int, float)):
            return [round(float(c), DECIMALS) for c in obj]
        return [_round_coords(o) for o in obj]
    return obj


def geometry_to_geojson(geom: Any) -> dict[str, Any] | None:
    """RFC 7946 geometry: CCW exterior rings, CW holes, ≤ 7 decimals; None for no geometry."""
    if geom is None or shapely.is_empty(geom):
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon", "GeometryCollection"):
        geom = shapely.orient_polygons(geom)
    gj = mapping(geom)
    return _to_lists(gj)


def _to_lists(gj: Any) -> Any:
    if isinstance(gj, dict):
        out = {}
        for k, v in gj.items():
            out[k] = _round_coords(_tuples_to_lists(v)) if k == "coordinates" else _to_lists(v)
        return out
    if isinstance(gj, (list, tuple)):
        return [_to_lists(g) for g in gj]
    return gj


def _tuples_to_lists(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_tuples_to_lists(x) for x in v]
    return v


def _bbox(gdf: gpd.GeoDataFrame) -> list[float] | None:
    geoms = gdf.geometry[gdf.geometry.notna()]
    geoms = geoms[~geoms.is_empty]
    if geoms.empty:
        return None
    minx, miny, maxx, maxy = geoms.total_bounds
    return [round(float(v), DECIMALS) for v in (minx, miny, maxx, maxy)]


def iter_features(gdf: gpd.GeoDataFrame, *, id_column: str | None = "id") -> Iterator[dict[str, Any]]:
    """Yield GeoJSON Feature dicts, one per row (properties are strict JSON)."""
    cols = [c for c in gdf.columns if c != gdf.geometry.name]
    geom_col = gdf.geometry.name
    for row in gdf.itertuples(index=False):
        rec = row._asdict()
        props = {c: _clean(rec[c]) for c in cols}
        feature: dict[str, Any] = {"type": "Feature"}
        if id_column and id_column in props and props[id_column] is not None:
            feature["id"] = props[id_column]
        feature["properties"] = props
        feature["geometry"] = geometry_to_geojson(rec[geom_col])
        yield feature


def write_geojson(gdf: gpd.GeoDataFrame, out: IO[str], *, id_column: str | None = "id",
                  extra: dict[str, Any] | None = None) -> int:
    """Stream ``gdf`` (WGS-84) to ``out`` as an RFC 7946 FeatureCollection; returns the count."""
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")
    head: dict[str, Any] = {"type": "FeatureCollection"}
    bbox = _bbox(gdf)
    if bbox:
        head["bbox"] = bbox
    head.update(extra or {})
    out.write(json.dumps(head, ensure_ascii=False, allow_nan=False)[:-1] + ', "features": [\n')
    n = 0
    for feature in iter_features(gdf, id_column=id_column):
        if n:
            out.write(",\n")
        out.write(json.dumps(feature, ensure_ascii=False, allow_nan=False))
        n += 1
    out.write("\n]}\n")
    return n


def collection_gdf(db_path: Path, collection: str, flt: EntityFilter | None = None) -> gpd.GeoDataFrame:
    """The rows of one exportable collection as a WGS-84 GeoDataFrame."""
    if collection == "entities":
        return store.query_entities(db_path, flt)
    if collection in ("layers", "boundaries", "water"):
        return store.read_geo_table(db_path, collection)
    if collection == "boards":
        return boards_gdf(db_path)
    msg = f"Unknown collection {collection!r}; choose one of {', '.join(COLLECTIONS)}"
    raise ExportError(msg)


def boards_gdf(db_path: Path) -> gpd.GeoDataFrame:
    """The ten 板块 with the county polygon each maps to (SIP: no geometry, said so)."""
    boards = store.read_table(db_path, "boards")
    bounds = store.read_geo_table(db_path, "boundaries").set_index("adcode")
    geoms = [bounds.geometry.get(code) if code else None for code in boards["county_adcode"]]
    return gpd.GeoDataFrame(boards, geometry=geoms, crs="EPSG:4326")


def export_geojson(db_path: Path, collection: str, out_path: Path | None, *,
                   flt: EntityFilter | None = None, out: IO[str] | None = None) -> int:
    """Export one collection to ``out_path`` (or the open text stream ``out``)."""
    gdf = collection_gdf(db_path, collection, flt)
    id_column = "adcode" if collection == "boundaries" else "id"
    if out is not None:
        return write_geojson(gdf, out, id_column=id_column)
    assert out_path is not None
    with open(out_path, "w", encoding="utf-8", newline="\n") as fh:
        return write_geojson(gdf, fh, id_column=id_column)


def feature_ids(features: Iterable[dict[str, Any]]) -> list[str]:
    """The ids of a sequence of features (a helper for comparisons in tests and views)."""
    return [str(f.get("id")) for f in features]
