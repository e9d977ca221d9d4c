"""What an export holds: each collection as a GeoDataFrame with its documented properties,
feature counts, and the rows in batches (entities streamed from the store)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from geo_app import store
from geo_app.datum import METRIC_CRS
from geo_app.export.formats import (
    DECIMALS,
    PROPERTIES,
    _clean_column,
    check_collection,
    geometry_to_geojson,
    prepare_geometry,
)
from geo_app.filters import EntityFilter

# ----------------------------------------------------------------------------- collections


def collection_gdf(db_path: Path, collection: str,
                   flt: EntityFilter | None = None) -> gpd.GeoDataFrame:
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


def iter_features(gdf: gpd.GeoDataFrame, *,
                  id_column: str | None = "id") -> Iterator[dict[str, Any]]:
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
