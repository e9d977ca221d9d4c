"""The OpenAPI 3.0 document of the service (``/api``) and each collection's feature schema."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from geo_app import export
from geo_app.api.core import (
    CRS84,
    DEFAULT_LIMIT,
    GEOJSON,
    JSON,
    MAX_LIMIT,
    MAX_OFFSET,
    OPENAPI,
    SCHEMA_JSON,
    Catalog,
    CollectionInfo,
)
from geo_app.filters import FILTER_KEYS, MAX_SEARCH
from geo_app.settings import PROJECT_ROOT


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _responses(schema: str | None, media_type: str = JSON, *,
               not_found: bool = False) -> dict[str, Any]:
    ok_content: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
    ok_content[media_type] = {"schema": _ref("schemas", schema) if schema else {"type": "object"}}
    out: dict[str, Any] = {
        "200": {"description": "Success", "content": ok_content},
        "400": _ref("responses", "InvalidParameter"),
    }
    if not_found:
        out["404"] = _ref("responses", "NotFound")
    out["503"] = _ref("responses", "ServiceUnavailable")
    return out


def _operation(op_id: str, summary: str, tag: str, params: Iterable[dict[str, Any]],
               responses: dict[str, Any], description: str = "") -> dict[str, Any]:
    op = {"operationId": op_id, "summary": summary, "tags": [tag],
          "parameters": list(params), "responses": responses}
    if description:
        op["description"] = description
    return {"get": op}


def _enum_list(name: str, values: Iterable[str], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "style": "form", "explode": False,
            "description": description,
            "schema": {"type": "array", "items": {"type": "string", "enum": list(values)}}}


def _filter_parameters(info: CollectionInfo, layer_ids: Sequence[str]) -> list[dict[str, Any]]:
    any_of = "Keep entities with any of these values (comma-separated, or repeat the parameter)."
    params = []
    for key in info.filters:
        spec = FILTER_KEYS[key]
        if spec.text:
            params.append({"name": key, "in": "query", "required": False,
                           "description": spec.about,
                           "schema": {"type": "string", "maxLength": MAX_SEARCH}})
        else:
            params.append(_enum_list(key, spec.choices(layer_ids), f"{spec.about} {any_of}"))
    return params


def build_openapi(catalog: Catalog, base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document: one path per collection, so each lists its own filters."""
    f_param = [_ref("parameters", "f")]
    paths: dict[str, Any] = {
        "/": _operation("getLandingPage", "Landing page", "Capabilities", f_param,
                        _responses("landingPage")),
        "/conformance": _operation("getConformanceDeclaration", "Conformance classes",
                                   "Capabilities", f_param, _responses("confClasses")),
        "/api": _operation("getAPIDefinition", "This API definition (OpenAPI 3.0)",
                           "Capabilities", f_param, _responses(None, OPENAPI)),
        "/collections": _operation("getCollections", "The collections", "Capabilities",
                                   f_param, _responses("collections")),
    }
    for info in catalog.collections.values():
        path = f"/collections/{info.id}"
        op = re.sub(r"[^A-Za-z0-9]+", "_", info.id)
        paths[path] = _operation(f"describe_{op}", f"Collection {info.id}", info.id, f_param,
                                 _responses("collection"))
        items_params = [_ref("parameters", n) for n in ("limit", "offset", "bbox", "f")]
        paths[f"{path}/feature-schema"] = _operation(
            f"getSchema_{op}", f"Schema of the features of {info.id}", info.id, f_param,
            _responses(None, SCHEMA_JSON))
        paths[f"{path}/items"] = _operation(
            f"getFeatures_{op}", f"Features of {info.id}", info.id,
            items_params + _filter_parameters(info, catalog.layer_ids),
            _responses("featureCollectionGeoJSON", GEOJSON), info.description)
        paths[f"{path}/items/{{featureId}}"] = _operation(
            f"getFeature_{op}", f"One feature of {info.id}", info.id,
            [_ref("parameters", "featureId"), *f_param],
            _responses("featureGeoJSON", GEOJSON, not_found=True))
    return {
        "openapi": "3.0.3",
        "info": {"title": "苏州科创地图 / Suzhou Innovation Map – OGC API – Features",
                 "version": "1.0.0",
                 "description": ("OGC API – Features Part 1 (Core, GeoJSON, HTML, OpenAPI 3.0). "
                                 "Unknown query parameters are rejected with 400."),
                 "license": {"name": "See data/SOURCES.md for the sources of each data set"}},
        "servers": [{"url": base_url or "/"}],
        "tags": [{"name": "Capabilities"}] + [{"name": i.id, "description": i.title}
                                              for i in catalog.collections.values()],
        "paths": paths,
        "components": {"parameters": _PARAMETERS, "schemas": _SCHEMAS,
                       "responses": _ERROR_RESPONSES},
    }


_PARAMETERS: dict[str, Any] = {
    "f": {"name": "f", "in": "query", "required": False, "style": "form", "explode": False,
          "description": "Format: json (GeoJSON for features) or html. Without it the Accept "
                         "header decides; JSON is the default.",
          "schema": {"type": "string", "enum": ["json", "html"]}},
    "limit": {"name": "limit", "in": "query", "required": False, "style": "form",
              "explode": False,
              "description": f"Features per page (default {DEFAULT_LIMIT}). A value above "
                             f"{MAX_LIMIT} is lowered to {MAX_LIMIT}, as the standard requires.",
              "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                         "default": DEFAULT_LIMIT}},
    "offset": {"name": "offset", "in": "query", "required": False, "style": "form",
               "explode": False, "description": "Features to skip (paging; see the next link).",
               "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}},
    "bbox": {"name": "bbox", "in": "query", "required": False, "style": "form", "explode": False,
             "description": ("min_lon,min_lat,max_lon,max_lat in CRS84 degrees; features "
                             "intersecting the box (edges included). Features without geometry "
                             "never match. min_lon > max_lon crosses the antimeridian."),
             "schema": {"type": "array", "minItems": 4, "maxItems": 4,
                        "items": {"type": "number", "minimum": -180, "maximum": 180}}},
    "featureId": {"name": "featureId", "in": "path", "required": True,
                  "description": "The id of a feature.", "schema": {"type": "string"}},
}

_LINK = {"type": "object", "required": ["href", "rel"],
         "properties": {k: {"type": "string"} for k in ("href", "rel", "type", "title")}}
_LINKS = {"type": "array", "items": _ref("schemas", "link")}
_SCHEMAS: dict[str, Any] = {
    "link": _LINK,
    "exception": {"type": "object", "required": ["code"],
                  "properties": {"code": {"type": "string"}, "description": {"type": "string"}}},
    "landingPage": {"type": "object", "required": ["links"],
                    "properties": {"title": {"type": "string"},
                                   "description": {"type": "string"}, "links": _LINKS}},
    "confClasses": {"type": "object", "required": ["conformsTo"],
                    "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}},
                                   "links": _LINKS}},
    "extent": {"type": "object", "properties": {"spatial": {"type": "object", "properties": {
        "bbox": {"type": "array", "minItems": 1, "items": {
            "type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}}},
        "crs": {"type": "string", "enum": [CRS84]}}}}},
    "collection": {"type": "object", "required": ["id", "links"], "properties": {
        "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
        "links": _LINKS, "extent": _ref("schemas", "extent"),
        "itemType": {"type": "string"}, "crs": {"type": "array", "items": {"type": "string"}}}},
    "collections": {"type": "object", "required": ["links", "collections"], "properties": {
        "links": _LINKS, "collections": {"type": "array", "items": _ref("schemas", "collection")}}},
    "geometryGeoJSON": {"type": "object", "nullable": True, "required": ["type"], "properties": {
        "type": {"type": "string", "enum": ["Point", "MultiPoint", "LineString", "MultiLineString",
                                            "Polygon", "MultiPolygon", "GeometryCollection"]},
        "coordinates": {"type": "array"}, "geometries": {"type": "array"}}},
    "featureGeoJSON": {"type": "object", "required": ["type", "geometry", "properties"],
                       "properties": {
                           "type": {"type": "string", "enum": ["Feature"]},
                           "geometry": _ref("schemas", "geometryGeoJSON"),
                           "properties": {"type": "object", "nullable": True},
                           "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                           "links": _LINKS}},
    "featureCollectionGeoJSON": {"type": "object", "required": ["type", "features"], "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": _ref("schemas", "featureGeoJSON")},
        "links": _LINKS, "timeStamp": {"type": "string", "format": "date-time"},
        "numberMatched": {"type": "integer", "minimum": 0},
        "numberReturned": {"type": "integer", "minimum": 0}}},
}
_ERROR_RESPONSES: dict[str, Any] = {
    name: {"description": description,
           "content": {JSON: {"schema": _ref("schemas", "exception")}}}
    for name, description in (
        ("InvalidParameter", "A query parameter is unknown, repeated or has an invalid value."),
        ("NotFound", "The collection or feature does not exist."),
        ("ServiceUnavailable", "The database is busy or not available; try again."),
    )
}


# ----------------------------------------------------------------------------- feature schema

#: GeoJSON geometry types of each collection's features (entities: points). A strategy
#: layer is cut with make_valid, which may leave a GeometryCollection (the export keeps it).
_GEOMETRY_TYPES: Mapping[str, tuple[str, ...]] = {
    "entities": ("Point",), "layers": ("Polygon", "MultiPolygon", "GeometryCollection"),
    "boards": ("Polygon", "MultiPolygon"), "boundaries": ("Polygon", "MultiPolygon"),
    "water": ("Polygon", "MultiPolygon", "LineString", "MultiLineString"),
}

#: The export's own JSON Schema of entity properties (strict: enums, required text).
ENTITY_SCHEMA_FILE = PROJECT_ROOT / "schemas" / "entities.schema.json"


def _oas30(prop: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema 2020-12 property as an OpenAPI 3.0 one: one ``type`` and ``nullable``."""
    out = {k: v for k, v in prop.items() if k in ("description", "minLength", "enum")}
    types = prop.get("type", "string")
    kinds = [types] if isinstance(types, str) else list(types)
    nullable = "null" in kinds or None in prop.get("enum", ())
    (kind,) = [k for k in kinds if k != "null"]
    return {"type": kind, "nullable": nullable, **out}


@functools.cache
def _entity_properties() -> dict[str, dict[str, Any]]:
    schema = json.loads(ENTITY_SCHEMA_FILE.read_text(encoding="utf-8"))
    return {name: _oas30(prop) for name, prop in schema["properties"].items()}


def feature_schema(info: CollectionInfo) -> dict[str, Any]:
    """The schema of one GeoJSON feature of a collection, as an OpenAPI 3.0 Schema Object.

    OpenAPI 3.0's dialect of JSON Schema (as in ``/api``) because it says "may be null"
    with ``nullable`` beside a single ``type``: GDAL (QGIS) reads field types from the
    ``describedby`` link's schema only when ``type`` is one string, and then types every
    field from the schema instead of guessing from the first page (where a page of
    entities without a point would make ``lon`` text). Entity properties are those of
    ``schemas/entities.schema.json`` (enums, required text); the other collections' are
    typed from :data:`geo_app.export.PROPERTIES`, any but the id may be null. Every
    property is always present (``required``). The ``id`` property, equal to the feature
    id, is named in ``required`` but described at the feature level only: GDAL adds the
    feature id as a field of its own and would list ``id`` twice.
    """
    id_column = info.id_column
    fields = export.PROPERTIES[info.source]
    if info.source == "entities":
        known = _entity_properties()
        props = {name: known[name] for name in fields if name != "id"}
    else:
        props = {name: {"type": kind, "nullable": name != id_column}
                 for name, kind in fields.items() if name != "id"}
    return {
        "title": f"{info.title} – feature",
        "description": ("One GeoJSON feature of this collection, as an OpenAPI 3.0 Schema "
                        "Object (validate with an OpenAPI 3.0 validator: a JSON Schema "
                        "2020-12 one ignores `nullable`). Coordinates are WGS-84 longitude, "
                        "latitude (CRS84); null means unknown or not applicable."),
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string", "description": f"the feature's {id_column}"},
            "geometry": {"type": "object", "nullable": True, "required": ["type"],
                         "properties": {"type": {"type": "string",
                                                 "enum": list(_GEOMETRY_TYPES[info.source])}}},
            "properties": {"type": "object", "required": list(fields), "properties": props},
            "links": {"type": "array", "items": _LINK},
        },
    }


