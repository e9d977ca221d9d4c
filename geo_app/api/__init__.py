"""OGC API – Features (Part 1: Core, GeoJSON, HTML, OpenAPI 3.0) over the database, framework-free.

Every public ``get_*`` function takes plain request data (an :class:`APIRequest` and the
path parameters) and returns ``(headers, status, content)``, as pygeoapi's api functions
do; :mod:`geo_app.asgi` only translates Starlette requests and responses.

- The collections are declared once per database file (:func:`load_catalog`): the
  entities, one collection per strategy layer (``layer-<id>``: the entities inside it),
  the schematic layer areas, the 板块, the county boundaries and the water.
- Entity pages are filtered and paged in SQL with the same
  :class:`~geo_app.filters.EntityFilter` as the map, the export and the CLI, and every
  feature is written by :func:`geo_app.export.iter_features`, so the API returns exactly
  the features ``geo-app export`` writes.
- Bad input never reaches the database: every parameter is checked first and answered
  with 400 and an OGC exception body ``{"code": ..., "description": ...}``, whose
  description quotes at most :data:`MAX_ECHO` characters of any value the client sent.

The package: :mod:`~geo_app.api.core` (request and collection types, the catalogue,
parameter checks, responses), :mod:`~geo_app.api.endpoints` (the ``get_*`` functions),
:mod:`~geo_app.api.openapi` (the OpenAPI document and feature schemas) and
:mod:`~geo_app.api.html` (the ``f=html`` pages).
"""

from __future__ import annotations

from geo_app.api.core import (
    CONFORMANCE,
    CRS84,
    DEFAULT_LIMIT,
    ENTITY_FILTERS,
    GEOJSON,
    HTML,
    JSON,
    LAYER_PREFIX,
    MAX_DESCRIPTION,
    MAX_ECHO,
    MAX_LIMIT,
    MAX_OFFSET,
    OPENAPI,
    SCHEMA_JSON,
    APIRequest,
    Catalog,
    CollectionInfo,
    Response,
    error_response,
    load_catalog,
    parse_bbox,
    prefers_html,
    shown,
)
from geo_app.api.endpoints import (
    get_collection,
    get_collections,
    get_conformance,
    get_item,
    get_items,
    get_landing_page,
    get_openapi,
    get_schema,
)
from geo_app.api.openapi import ENTITY_SCHEMA_FILE, build_openapi, feature_schema

__all__ = [
    "APIRequest", "Catalog", "CollectionInfo", "CONFORMANCE", "MAX_LIMIT", "DEFAULT_LIMIT",
    "load_catalog", "get_landing_page", "get_conformance", "get_openapi", "get_collections",
    "get_collection", "get_schema", "get_items", "get_item", "error_response",
    "feature_schema", "shown", "MAX_ECHO",
    # also public: media types, limits and the helpers the endpoints are built from
    "CRS84", "ENTITY_FILTERS", "ENTITY_SCHEMA_FILE", "GEOJSON", "HTML", "JSON", "LAYER_PREFIX",
    "MAX_DESCRIPTION", "MAX_OFFSET", "OPENAPI", "SCHEMA_JSON", "Response", "build_openapi",
    "parse_bbox", "prefers_html",
]
