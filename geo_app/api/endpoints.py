"""The endpoints: one ``get_*`` function per resource, each returning
``(headers, status, content)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import geopandas as gpd
import shapely

from geo_app import export, store
from geo_app.api.core import (
    CONFORMANCE,
    CRS84,
    GEOJSON,
    JSON,
    OPENAPI,
    SCHEMA_JSON,
    APIRequest,
    Catalog,
    CollectionInfo,
    Response,
    _check_params,
    _check_text,
    _collection,
    _format,
    _handled,
    _html,
    _json,
    _link,
    _link_params,
    _one,
    _parse_filter,
    _parse_limit,
    _parse_offset,
    _self_links,
    _timestamp,
    load_catalog,
    parse_bbox,
    shown,
)
from geo_app.api.html import (
    _e,
    _html_collection,
    _html_collections,
    _html_doc,
    _html_item,
    _html_items,
    _html_landing,
    _html_openapi,
    _html_schema,
)
from geo_app.api.openapi import build_openapi, feature_schema
from geo_app.errors import APIError
from geo_app.filters import FILTER_KEYS, EntityFilter


@_handled
def get_landing_page(req: APIRequest) -> Response:
    """``/``: title, description and the links to the API definition, conformance and data."""
    _check_params(req, {"f"})
    fmt = _format(req)
    body = {
        "title": "苏州科创地图 / Suzhou Innovation Map",
        "description": ("The innovation registry of Suzhou (entities, schematic strategy layers, "
                        "板块, boundaries, water) as OGC API – Features. WGS-84 (CRS84) GeoJSON. "
                        "Unknown values are null, never invented."),
        "links": [
            *_self_links(req, "/", fmt),
            _link(req.url("/api", {"f": "json"}), "service-desc", OPENAPI,
                  "The API definition (OpenAPI 3.0)"),
            _link(req.url("/api", {"f": "html"}), "service-doc", "text/html",
                  "The API documentation"),
            _link(req.url("/conformance"), "conformance", JSON, "Conformance classes"),
            _link(req.url("/collections"), "data", JSON, "The collections"),
        ],
    }
    if fmt == "html":
        return _html(_html_landing(req.base_url, body))
    return _json(body)


@_handled
def get_conformance(req: APIRequest) -> Response:
    """``/conformance``: the conformance classes (core, geojson, html, oas30)."""
    _check_params(req, {"f"})
    fmt = _format(req)
    links = _self_links(req, "/conformance", fmt)
    if fmt == "html":
        items = "".join(f"<li>{_e(c)}</li>" for c in CONFORMANCE)
        return _html(_html_doc(req.base_url, "Conformance", links, f"<ul>{items}</ul>"))
    return _json({"conformsTo": list(CONFORMANCE), "links": links})


@_handled
def get_openapi(db_path: Path, req: APIRequest) -> Response:
    """``/api``: the OpenAPI 3.0 document of this service (one path per collection)."""
    _check_params(req, {"f"})
    fmt = _format(req)
    doc = build_openapi(load_catalog(db_path), req.base_url)
    if fmt == "html":
        return _html(_html_openapi(doc, req))
    return _json(doc, OPENAPI)


def _collection_body(req: APIRequest, info: CollectionInfo, fmt: str) -> dict[str, Any]:
    path = f"/collections/{quote(info.id, safe='')}"
    links = _self_links(req, path, fmt) + [
        _link(req.url(f"{path}/items", {"f": "json"}), "items", GEOJSON, "The features as GeoJSON"),
        _link(req.url(f"{path}/items", {"f": "html"}), "items", "text/html",
              "The features as HTML"),
        _link(req.url(f"{path}/feature-schema", {"f": "json"}), "describedby", SCHEMA_JSON,
              "The schema of the features (property names and types)"),
    ]
    body: dict[str, Any] = {"id": info.id, "title": info.title, "description": info.description,
                            "links": links, "itemType": "feature", "crs": [CRS84]}
    if info.bbox is not None:
        body["extent"] = {"spatial": {"bbox": [list(info.bbox)], "crs": CRS84}}
    return body


@_handled
def get_collections(db_path: Path, req: APIRequest) -> Response:
    """``/collections``: every collection with its extent and links."""
    _check_params(req, {"f"})
    fmt = _format(req)
    catalog = load_catalog(db_path)
    body = {
        "links": _self_links(req, "/collections", fmt),
        "collections": [_collection_body(req, info, fmt)
                        for info in catalog.collections.values()],
    }
    if fmt == "html":
        return _html(_html_collections(req.base_url, body))
    return _json(body)


@_handled
def get_collection(db_path: Path, req: APIRequest, collection_id: str) -> Response:
    """``/collections/{collectionId}``: one collection's description, extent and links."""
    catalog = load_catalog(db_path)
    info = _collection(catalog, collection_id)
    _check_params(req, {"f"})
    fmt = _format(req)
    body = _collection_body(req, info, fmt)
    if fmt == "html":
        return _html(_html_collection(req.base_url, body, info, catalog))
    return _json(body)


@_handled
def get_schema(db_path: Path, req: APIRequest, collection_id: str) -> Response:
    """``/collections/{collectionId}/feature-schema``: the schema of the collection's features.

    Not OGC API – Features Part 5's ``/schema`` (JSON Schema 2020-12 of flat properties),
    which this service does not claim: a feature schema for Part 1's ``describedby``.
    """
    catalog = load_catalog(db_path)
    info = _collection(catalog, collection_id)
    _check_params(req, {"f"})
    fmt = _format(req)
    collection = f"/collections/{quote(info.id, safe='')}"
    path = f"{collection}/feature-schema"
    schema = feature_schema(info)
    if fmt == "html":
        links = [*_self_links(req, path, fmt, SCHEMA_JSON),
                 _link(req.url(collection, {"f": "html"}), "collection", "text/html",
                       "The collection")]
        return _html(_html_schema(req.base_url, schema, info, links))
    return _json(schema, SCHEMA_JSON)


def _entity_page(db_path: Path, flt: EntityFilter | None,
                 **kwargs: Any) -> tuple[gpd.GeoDataFrame, int]:
    """A page of entities with the export's properties (:data:`geo_app.export.PROPERTIES`)."""
    gdf, matched = store.query_entities_page(db_path, flt, **kwargs)
    cols = list(export.PROPERTIES["entities"])
    return gpd.GeoDataFrame(gdf[cols], geometry=gdf.geometry.values, crs="EPSG:4326"), matched


def _page(db_path: Path, catalog: Catalog, info: CollectionInfo, flt: EntityFilter | None,
          bbox: tuple[float, float, float, float] | None, limit: int,
          offset: int) -> tuple[gpd.GeoDataFrame, int]:
    """The requested page of a collection and the number of features matched."""
    if info.source == "entities":
        return _entity_page(db_path, flt, bbox=bbox, limit=limit, offset=offset)
    gdf = catalog.tables[info.source]
    if bbox is not None:
        min_lon, min_lat, max_lon, max_lat = bbox
        boxes = ([shapely.box(min_lon, min_lat, max_lon, max_lat)] if min_lon <= max_lon else
                 [shapely.box(min_lon, min_lat, 180.0, max_lat),
                  shapely.box(-180.0, min_lat, max_lon, max_lat)])
        gdf = gdf[gdf.geometry.intersects(shapely.union_all(boxes))]
    return gdf.iloc[offset:offset + limit], len(gdf)


@_handled
def get_items(db_path: Path, req: APIRequest, collection_id: str) -> Response:
    """``/collections/{collectionId}/items``: one page of features as GeoJSON.

    Parameters: ``limit`` (1..1000, default 10; larger values are lowered to 1000),
    ``offset`` (default 0), ``bbox`` (CRS84), ``f``, and on entity collections the
    filters ``kind``, ``level``, ``status``, ``board``, ``layer`` (comma-separated or
    repeated: any of) and ``q`` (name or id contains).
    """
    catalog = load_catalog(db_path)
    info = _collection(catalog, collection_id)
    _check_params(req, {"f", "limit", "offset", "bbox", *info.filters},
                  repeatable=[k for k in info.filters if not FILTER_KEYS[k].text])
    fmt = _format(req)
    limit, offset = _parse_limit(req), _parse_offset(req)
    raw_bbox = _one(req, "bbox")
    bbox = None if raw_bbox is None else parse_bbox(raw_bbox)
    flt = _parse_filter(req, info, catalog)
    gdf, matched = _page(db_path, catalog, info, flt, bbox, limit, offset)
    features = list(export.iter_features(gdf, id_column=info.id_column))
    path = f"/collections/{quote(info.id, safe='')}/items"
    params = _link_params(req, info, flt, bbox)
    paging = {**params, "limit": str(limit)}
    links = _self_links(req, path, fmt, GEOJSON, {**paging, "offset": str(offset)})
    if offset + len(features) < matched:
        links.append(_link(req.url(path, {**paging, "offset": str(offset + limit), "f": fmt}),
                           "next", GEOJSON if fmt == "json" else "text/html", "Next page"))
    if offset > 0:
        links.append(_link(req.url(path, {**paging, "offset": str(max(offset - limit, 0)),
                                          "f": fmt}),
                           "prev", GEOJSON if fmt == "json" else "text/html", "Previous page"))
    links.append(_link(req.url(f"/collections/{quote(info.id, safe='')}"), "collection", JSON,
                       info.title))
    body = {"type": "FeatureCollection", "numberMatched": matched,
            "numberReturned": len(features), "timeStamp": _timestamp(), "links": links,
            "features": features}
    if fmt == "html":
        return _html(_html_items(req.base_url, body, info, offset))
    return _json(body, GEOJSON)


@_handled
def get_item(db_path: Path, req: APIRequest, collection_id: str, feature_id: str) -> Response:
    """``/collections/{collectionId}/items/{featureId}``: one feature (404 if there is none)."""
    catalog = load_catalog(db_path)
    info = _collection(catalog, collection_id)
    _check_params(req, {"f"})
    fmt = _format(req)
    _check_text("featureId", feature_id)
    if info.source == "entities":
        flt = EntityFilter(layers=(info.layer,)) if info.layer else None
        gdf, _ = _entity_page(db_path, flt, entity_id=feature_id)
    else:
        table = catalog.tables[info.source]
        gdf = table[table[info.id_column].astype(str) == feature_id]
    if gdf.empty:
        msg = f"Collection {info.id!r} has no feature {shown(feature_id, 80)}"
        raise APIError(msg, status=404, code="NotFound")
    feature = next(export.iter_features(gdf.iloc[:1], id_column=info.id_column))
    cpath = f"/collections/{quote(info.id, safe='')}"
    feature["links"] = [
        *_self_links(req, f"{cpath}/items/{quote(feature_id, safe='')}", fmt, GEOJSON),
        _link(req.url(cpath), "collection", JSON, info.title),
    ]
    if fmt == "html":
        return _html(_html_item(req.base_url, feature, info))
    return _json(feature, GEOJSON)


