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
"""

from __future__ import annotations

import functools
import html
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import geopandas as gpd
import shapely

from geo_app import export, store
from geo_app.errors import APIError, DatabaseBusyError, DataError, FilterError
from geo_app.filters import EntityFilter, filter_from_query, filter_to_query
from geo_app.settings import PROJECT_ROOT
from geo_app.vocab import BOARDS, KINDS, LEVELS, STATUSES

__all__ = [
    "APIRequest", "Catalog", "CollectionInfo", "CONFORMANCE", "MAX_LIMIT", "DEFAULT_LIMIT",
    "load_catalog", "get_landing_page", "get_conformance", "get_openapi", "get_collections",
    "get_collection", "get_schema", "get_items", "get_item", "error_response",
    "feature_schema", "shown", "MAX_ECHO",
]

LOGGER = logging.getLogger(__name__)

#: The conformance classes this server declares (OGC API – Features – Part 1: Core 1.0).
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
)
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"
HTML = "text/html; charset=utf-8"

DEFAULT_LIMIT = 10
#: A larger ``limit`` is lowered to this (the standard says: no error, use the maximum).
MAX_LIMIT = 1000
#: Larger offsets are rejected with 400 (no collection comes near it).
MAX_OFFSET = 1_000_000_000
#: At most this many characters of a value the client sent are quoted in an error message.
MAX_ECHO = 200
#: No error description is longer than this (a last guard on messages built elsewhere).
MAX_DESCRIPTION = 1000
LAYER_PREFIX = "layer-"
#: Entity filters (query keys of :mod:`geo_app.filters`); all but ``q`` may repeat.
ENTITY_FILTERS = ("kind", "level", "status", "board", "layer", "q")

Response = tuple[dict[str, str], int, str]

_SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}
_HTML_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
             "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: int() also reads '１０', '1_0' and ' 1'
#: A whole number with more digits than this is only ever compared with a maximum.
_MAX_DIGITS = 18
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")


@dataclass(frozen=True)
class APIRequest:
    """The parts of an HTTP request the API looks at.

    Attributes
    ----------
    base_url
        The URL the service is reached at, e.g. ``http://127.0.0.1:8000`` (links are built on it).
    query
        Query parameters, each key with the list of its values in request order.
    accept
        The ``Accept`` header ('' when absent); the ``f`` parameter wins over it.
    """

    base_url: str
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)
    accept: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        """Absolute URL of ``path`` (starting with '/') with ``params`` as the query string."""
        query = urlencode(dict(params or {}), quote_via=quote, safe=",")
        return f"{self.base_url}{path}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class CollectionInfo:
    """One collection of the service.

    Attributes
    ----------
    id, title, description
        As shown in ``/collections``.
    source
        ``entities`` or the export collection read for it (``layers``, ``boards``...).
    id_column
        The property that is each feature's ``id`` (:data:`geo_app.export.ID_COLUMNS`).
    layer
        For a ``layer-<id>`` collection: the strategy layer its entities lie in.
    bbox
        Spatial extent ``(min_lon, min_lat, max_lon, max_lat)`` in CRS84, None if no geometry.
    """

    id: str
    title: str
    description: str
    source: str
    id_column: str = "id"
    layer: str | None = None
    bbox: tuple[float, float, float, float] | None = None

    @property
    def filters(self) -> tuple[str, ...]:
        """The entity filters this collection's items accept."""
        if self.source != "entities":
            return ()
        return tuple(k for k in ENTITY_FILTERS if not (self.layer and k == "layer"))


@dataclass(frozen=True)
class Catalog:
    """What the service offers for one version of the database file.

    Attributes
    ----------
    collections
        Collection id -> :class:`CollectionInfo`, in the order they are listed.
    tables
        The non-entity collections as GeoDataFrames (read once; they change only on rebuild).
    layer_ids
        The strategy layers (valid values of the ``layer`` filter).
    """

    collections: Mapping[str, CollectionInfo]
    tables: Mapping[str, gpd.GeoDataFrame]
    layer_ids: tuple[str, ...]


# ----------------------------------------------------------------------------- catalog

_TABLE_COLLECTIONS = (
    ("layers", "战略图层（示意范围） / Strategy layers (schematic areas)",
     "The schematic area of each strategy layer, built by the documented rules in layers/*.toml "
     "(buffers, clips, anchors). Not official boundaries: none has been published."),
    ("boards", "板块 / The ten 板块 (districts)",
     "The ten 板块 of the plan with their land area and the polygon each is drawn with. "
     "苏州工业园区 has no official polygon: its geometry is a SCHEMATIC area built by rule "
     "(polygon_status 'schematic'), and 吴中区 / 苏州高新区 are their county polygons without it "
     "(the edge with SIP is schematic; data/SOURCES.md)."),
    ("boundaries", "区县边界 / County and city boundaries",
     "Administrative boundaries of Suzhou (city and counties), converted from GCJ-02 to WGS-84; "
     "feature ids are the administrative codes (adcode). Features with level 'board' (ids "
     "board-sip, board-wuzhong, board-snd) are derived 板块 polygons: SIP's is SCHEMATIC, built "
     "by rule, not an official boundary (their source says so)."),
    ("water", "水系 / Lakes and rivers",
     "Lakes and the Wusong River used to build the strategy layers (WGS-84 sources)."),
)

_CACHE: dict[Path, tuple[tuple[Any, ...], Catalog]] = {}
_CACHE_LOCK = threading.Lock()


def load_catalog(db_path: Path) -> Catalog:
    """The collections of ``db_path``, cached until the file changes.

    Raises
    ------
    DataError
        If the database is missing or unreadable.
    """
    db_path = Path(db_path)
    key = store.database_version(db_path)
    with _CACHE_LOCK:
        cached = _CACHE.get(db_path)
        if cached is not None and cached[0] == key:
            return cached[1]
        catalog = _build_catalog(db_path)
        _CACHE[db_path] = (key, catalog)
        return catalog


def _bounds(gdf: gpd.GeoDataFrame) -> tuple[float, float, float, float] | None:
    geoms = gdf.geometry[gdf.geometry.notna()]
    geoms = geoms[~geoms.is_empty]
    if geoms.empty:
        return None
    minx, miny, maxx, maxy = (float(v) for v in geoms.total_bounds)
    scale = 10**export.DECIMALS  # rounded outwards, so no feature falls outside
    return (math.floor(minx * scale) / scale, math.floor(miny * scale) / scale,
            math.ceil(maxx * scale) / scale, math.ceil(maxy * scale) / scale)


def _build_catalog(db_path: Path) -> Catalog:
    tables = {name: export.collection_gdf(db_path, name) for name, *_ in _TABLE_COLLECTIONS}
    entities = export.collection_gdf(db_path, "entities")
    collections: dict[str, CollectionInfo] = {
        "entities": CollectionInfo(
            "entities", "科创主体 / Innovation entities",
            "The registry's innovation entities (laboratories, universities, research institutes, "
            "zones...). Points in WGS-84 at the precision given in location_precision; entities "
            "whose location is unknown are included with geometry null. Filter with kind, level, "
            "status, board (板块), layer and q (name contains).", "entities",
            bbox=_bounds(entities)),
    }
    layers = tables["layers"]
    for row in layers.itertuples(index=False):
        members, _ = store.query_entities_page(db_path, EntityFilter(layers=(row.id,)))
        cid = f"{LAYER_PREFIX}{row.id}"
        collections[cid] = CollectionInfo(
            cid, f"{row.name_zh} / {row.name_en}: 科创主体 / entities",
            f"The entities inside the strategy layer {row.name_en} ({row.name_zh}). The layer's "
            f"area is schematic, built by rule ({row.method}); it is feature '{row.id}' of the "
            "collection 'layers'.", "entities", layer=str(row.id),
            bbox=_bounds(members))
    for name, title, description in _TABLE_COLLECTIONS:
        collections[name] = CollectionInfo(name, title, description, name,
                                           export.ID_COLUMNS[name], bbox=_bounds(tables[name]))
    return Catalog(collections, tables, tuple(str(i) for i in layers["id"]))


def _collection(catalog: Catalog, collection_id: str) -> CollectionInfo:
    info = catalog.collections.get(collection_id)
    if info is None:
        msg = (f"There is no collection {shown(collection_id, 80)}; the collections are: "
               f"{', '.join(catalog.collections)}")
        raise APIError(msg, status=404, code="NotFound")
    return info


# ----------------------------------------------------------------------------- parameters


def shown(value: str, limit: int = MAX_ECHO) -> str:
    """``value`` quoted for an error message, cut to ``limit`` characters (marked with '…').

    >>> shown("abc")
    "'abc'"
    >>> shown("x" * 500, 3)
    "'xxx'…"
    """
    return repr(value[:limit]) + ("…" if len(value) > limit else "")


def _check_params(req: APIRequest, allowed: Collection[str], repeatable: Collection[str] = ()) -> None:
    """Reject unknown and repeated parameters (the standard's /req/core/query-param-unknown)."""
    unknown = sorted(k for k in req.query if k not in allowed)
    if unknown:
        msg = (f"Unknown query parameter {shown(unknown[0], 40)}; this resource accepts: "
               f"{', '.join(sorted(allowed))}")
        raise APIError(msg)
    for key, values in req.query.items():
        if len(values) > 1 and key not in repeatable:
            msg = f"Parameter {key!r} is given {len(values)} times; give it once"
            raise APIError(msg)
        for value in values:
            _check_text(key, value)


def _check_text(name: str, value: str) -> None:
    """Reject text that cannot be UTF-8 (lone surrogates): the database would fail on it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        msg = f"{name!r} is not valid text (UTF-8)"
        raise APIError(msg) from None


def _one(req: APIRequest, key: str) -> str | None:
    values = req.query.get(key) or []
    return values[0].strip() if values else None


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def prefers_html(accept: str) -> bool:
    """True if the ``Accept`` header ranks HTML above JSON (browsers do; GDAL and OWSLib do not).

    >>> prefers_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    True
    >>> prefers_html("application/geo+json, application/json;q=0.9")
    False
    >>> prefers_html("*/*")
    False
    """
    best = {"html": 0.0, "json": 0.0}
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        q = _quality(params)
        if media in ("text/html", "application/xhtml+xml"):
            best["html"] = max(best["html"], q)
        elif media.endswith("json") or media in ("*/*", "application/*"):
            best["json"] = max(best["json"], q)
    return best["html"] > best["json"]


def _format(req: APIRequest) -> str:
    """``json`` or ``html``: the ``f`` parameter, else the ``Accept`` header."""
    f = _one(req, "f")
    if f is None:
        return "html" if prefers_html(req.accept) else "json"
    if f.lower() not in ("json", "html"):
        msg = f"Parameter 'f' must be 'json' or 'html', not {shown(f, 40)}"
        raise APIError(msg)
    return f.lower()


def _whole_number(raw: str) -> int | None:
    """The value of a string of ASCII digits, at most ``10**18`` (a longer number is never
    converted: ``int()`` refuses more than 4300 digits); None if ``raw`` is not one.

    >>> _whole_number("007"), _whole_number("9" * 5000) == 10**18, _whole_number("1.5")
    (7, True, None)
    """
    if not _DIGITS.fullmatch(raw):
        return None
    digits = raw.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def _parse_limit(req: APIRequest) -> int:
    """``limit``, lowered to :data:`MAX_LIMIT`.

    OGC API – Features – Part 1, 7.15.4: a limit above the server's maximum is not an
    error; the maximum is served (the links then carry ``limit`` = the maximum).
    """
    raw = _one(req, "limit")
    if raw is None:
        return DEFAULT_LIMIT
    limit = _whole_number(raw)
    if limit is None or limit < 1:
        msg = (f"Parameter 'limit' must be a whole number of at least 1 (larger than {MAX_LIMIT} "
               f"serves {MAX_LIMIT}), not {shown(raw, 40)}")
        raise APIError(msg)
    return min(limit, MAX_LIMIT)


def _parse_offset(req: APIRequest) -> int:
    raw = _one(req, "offset")
    if raw is None:
        return 0
    offset = _whole_number(raw)
    if offset is None or offset > MAX_OFFSET:
        msg = (f"Parameter 'offset' must be a whole number from 0 to {MAX_OFFSET}, "
               f"not {shown(raw, 40)}")
        raise APIError(msg)
    return offset


def parse_bbox(raw: str) -> tuple[float, float, float, float]:
    """Read ``min_lon,min_lat,max_lon,max_lat`` (CRS84 degrees); raise :class:`APIError` if invalid.

    ``min_lon > max_lon`` is a box across the antimeridian, as the standard allows.

    >>> parse_bbox("120.5,31,121,31.5")
    (120.5, 31.0, 121.0, 31.5)
    """
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) != 4:
        msg = (f"Parameter 'bbox' needs 4 numbers 'min_lon,min_lat,max_lon,max_lat' (CRS84), "
               f"got {len(parts)}: {shown(raw, 80)}")
        raise APIError(msg)
    bad = [p for p in parts if not _NUMBER.fullmatch(p)]
    if bad:
        msg = f"Parameter 'bbox': {shown(bad[0], 40)} is not a decimal number"
        raise APIError(msg)
    min_lon, min_lat, max_lon, max_lat = (float(p) for p in parts)
    if not all(-180.0 <= v <= 180.0 for v in (min_lon, max_lon)):
        msg = "Parameter 'bbox': longitudes must lie between -180 and 180"
        raise APIError(msg)
    if not all(-90.0 <= v <= 90.0 for v in (min_lat, max_lat)):
        msg = "Parameter 'bbox': latitudes must lie between -90 and 90"
        raise APIError(msg)
    if min_lat > max_lat:
        msg = "Parameter 'bbox': the minimum latitude (2nd number) is above the maximum (4th)"
        raise APIError(msg)
    return (min_lon, min_lat, max_lon, max_lat)


def _parse_filter(req: APIRequest, info: CollectionInfo, catalog: Catalog) -> EntityFilter | None:
    if info.source != "entities":
        return None
    params = {k: list(v) for k, v in req.query.items() if k in info.filters}
    _check_filter_lengths(params)
    flt = filter_from_query(params, known_layers=catalog.layer_ids)
    if info.layer:
        flt = replace(flt, layers=(info.layer,))
    return flt


def _check_filter_lengths(params: Mapping[str, Sequence[str]]) -> None:
    """Refuse a filter value longer than any valid one, so no error quotes it whole.

    (:func:`~geo_app.filters.make_filter` names the first unknown value in full.)
    """
    for key, values in params.items():
        if key == "q":
            continue  # the search text: limited to 200 characters, never quoted
        for part in (p.strip() for value in values for p in value.split(",")):
            if len(part) > MAX_ECHO:
                msg = f"Parameter {key!r}: {shown(part)} is not a valid value (far too long)"
                raise APIError(msg)


def _link_params(req: APIRequest, info: CollectionInfo, flt: EntityFilter | None,
                 bbox: tuple[float, float, float, float] | None) -> dict[str, str]:
    """The normalised filter and bbox parameters, repeated in the paging links."""
    out: dict[str, str] = {}
    if flt is not None:
        for key, values in filter_to_query(flt).items():
            if key in info.filters:
                out[key] = ",".join(values)
    if bbox is not None:
        out["bbox"] = ",".join(format(v, "g") for v in bbox)
    return out


# ----------------------------------------------------------------------------- responses


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def _json(obj: Any, media_type: str = JSON, status: int = 200) -> Response:
    headers = {"Content-Type": media_type, "Vary": "Accept", **_SECURITY_HEADERS}
    return headers, status, _dumps(obj)


def _html(page: str) -> Response:
    headers = {"Content-Type": HTML, "Vary": "Accept", "Content-Security-Policy": _HTML_CSP,
               **_SECURITY_HEADERS}
    return headers, 200, page


def error_response(status: int, code: str, description: str,
                   headers: Mapping[str, str] | None = None) -> Response:
    """An OGC API exception: ``{"code": ..., "description": ...}`` as JSON.

    The description is cut to :data:`MAX_DESCRIPTION` characters, whatever built it.
    """
    if len(description) > MAX_DESCRIPTION:
        description = description[:MAX_DESCRIPTION - 1] + "…"
    out = {"Content-Type": JSON, **_SECURITY_HEADERS, **(headers or {})}
    return out, status, _dumps({"code": code, "description": description})


def _handled(func: Callable[..., Response]) -> Callable[..., Response]:
    """Turn the package's errors into HTTP errors with a clear message (never a traceback)."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return func(*args, **kwargs)
        except APIError as err:
            return error_response(err.status, err.code, err.user_message)
        except FilterError as err:
            return error_response(400, "InvalidParameterValue", err.user_message)
        except DatabaseBusyError as err:
            return error_response(503, "ServiceUnavailable", err.user_message, {"Retry-After": "2"})
        except DataError as err:
            LOGGER.error("database unavailable: %s", err.user_message)
            return error_response(503, "ServiceUnavailable",
                                  "The database is not available right now; the server log says why.")
    return wrapper


def _link(href: str, rel: str, media_type: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media_type, "title": title}


def _self_links(req: APIRequest, path: str, fmt: str, json_type: str = JSON,
                params: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """``self`` in the format served and ``alternate`` in the other one."""
    as_json = _link(req.url(path, {**(params or {}), "f": "json"}), "self", json_type,
                    "This document as JSON")
    as_html = _link(req.url(path, {**(params or {}), "f": "html"}), "self", "text/html",
                    "This document as HTML")
    if fmt == "json":
        return [as_json, {**as_html, "rel": "alternate"}]
    return [as_html, {**as_json, "rel": "alternate"}]


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- endpoints


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
        _link(req.url(f"{path}/items", {"f": "html"}), "items", "text/html", "The features as HTML"),
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


def _entity_page(db_path: Path, flt: EntityFilter | None, **kwargs: Any) -> tuple[gpd.GeoDataFrame, int]:
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
                  repeatable=[k for k in info.filters if k != "q"])
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


# ----------------------------------------------------------------------------- OpenAPI


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
    params = {
        "kind": _enum_list("kind", KINDS, f"Entity kind. {any_of}"),
        "level": _enum_list("level", LEVELS, f"Level (national, provincial...). {any_of}"),
        "status": _enum_list("status", STATUSES, f"Status. {any_of}"),
        "board": _enum_list("board", BOARDS, f"板块 (district), by its Chinese name. {any_of}"),
        "layer": _enum_list("layer", layer_ids, f"Strategy layer the entity lies in. {any_of}"),
        "q": {"name": "q", "in": "query", "required": False,
              "description": "Name (Chinese or English, case-insensitive) contains this text, "
                             "or the id equals it.",
              "schema": {"type": "string", "maxLength": 200}},
    }
    return [params[k] for k in info.filters]


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


# ----------------------------------------------------------------------------- HTML

_STYLE = ("body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:72em;padding:0 1em;"
          "color:#222}table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;"
          "padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}"
          "nav a{margin-right:1em}code{background:#f3f3f3;padding:0 .2em}")


def _e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute (None shows as 'unknown')."""
    return html.escape("未知 / unknown" if value is None else str(value), quote=True)


def _html_doc(base: str, title: str, links: Sequence[Mapping[str, str]], body: str) -> str:
    nav = [f'<a href="{_e(href)}">{_e(text)}</a>' for href, text in (
        (f"{base}/?f=html", "Home"), (f"{base}/collections?f=html", "Collections"),
        (f"{base}/api?f=html", "API"))]
    alt = [f'<a href="{_e(link["href"])}">{_e(link.get("title", link["rel"]))}</a>'
           for link in links if link["rel"] == "alternate"]
    return ("<!doctype html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)} – 苏州科创地图</title><style>{_STYLE}</style></head><body>"
            f"<nav>{''.join(nav)} {' '.join(alt)}</nav><h1>{_e(title)}</h1>{body}</body></html>\n")


def _link_list(links: Iterable[Mapping[str, str]]) -> str:
    items = "".join(f'<li><a href="{_e(link["href"])}">{_e(link.get("title", link["rel"]))}</a> '
                    f'<small>({_e(link["rel"])}, {_e(link.get("type", ""))})</small></li>'
                    for link in links)
    return f"<ul>{items}</ul>"


def _html_landing(base: str, body: Mapping[str, Any]) -> str:
    return _html_doc(base, body["title"], body["links"],
                 f"<p>{_e(body['description'])}</p>{_link_list(body['links'])}")


def _extent_text(collection: Mapping[str, Any]) -> str:
    bbox = collection.get("extent", {}).get("spatial", {}).get("bbox")
    return ", ".join(f"{v:g}" for v in bbox[0]) if bbox else "—"


def _html_collections(base: str, body: Mapping[str, Any]) -> str:
    rows = []
    for c in body["collections"]:
        items = next(link["href"] for link in c["links"]
                     if link["rel"] == "items" and link["type"] == "text/html")
        page = next(link["href"] for link in c["links"]
                    if link["rel"] in ("self", "alternate") and link["type"] == "text/html")
        rows.append(f'<tr><td><a href="{_e(page)}">'
                    f'{_e(c["id"])}</a></td><td>{_e(c["title"])}</td>'
                    f"<td>{_e(_extent_text(c))}</td>"
                    f'<td><a href="{_e(items)}">items</a></td></tr>')
    table = ("<table><tr><th>id</th><th>title</th><th>bbox (CRS84)</th><th></th></tr>"
             f"{''.join(rows)}</table>")
    return _html_doc(base, "Collections", body["links"], table)


def _html_collection(base: str, body: Mapping[str, Any], info: CollectionInfo, catalog: Catalog) -> str:
    parts = [f"<p><code>{_e(info.id)}</code> – {_e(info.description)}</p>",
             f"<p>Extent (CRS84): {_e(_extent_text(body))}</p>", _link_list(body["links"])]
    if info.filters:
        values = {"kind": list(KINDS), "level": list(LEVELS), "status": list(STATUSES),
                  "board": list(BOARDS), "layer": list(catalog.layer_ids),
                  "q": ["text (name contains)"]}
        rows = "".join(f"<tr><td><code>{_e(k)}</code></td><td>{_e(', '.join(values[k]))}</td></tr>"
                       for k in info.filters)
        parts.append(f"<h2>Filters</h2><table>{rows}</table>")
    return _html_doc(base, info.title, body["links"], "".join(parts))


def _html_schema(base: str, schema: Mapping[str, Any], info: CollectionInfo,
                 links: Sequence[Mapping[str, str]]) -> str:
    props = schema["properties"]["properties"]["properties"]
    rows = []
    for name in schema["properties"]["properties"]["required"]:
        if name in props:
            p = props[name]
            values = ", ".join(str(v) for v in p.get("enum", ()) if v is not None)
            cells = (p["type"], "yes" if p["nullable"] else "no", values)
        else:  # the id property, described at the feature level
            cells = ("string", "no", "equal to the feature id")
        rows.append(f"<tr><td><code>{_e(name)}</code></td>"
                    + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    kinds = ", ".join(schema["properties"]["geometry"]["properties"]["type"]["enum"])
    body = (f"<p>{_e(schema['description'])}</p><p>Geometry: {_e(kinds)} (or null)</p>"
            "<table><tr><th>property</th><th>type</th><th>may be null</th><th>values</th></tr>"
            f"{''.join(rows)}</table>{_link_list(links)}")
    return _html_doc(base, f"{info.id}: feature schema", links, body)


def _geometry_text(geometry: Mapping[str, Any] | None) -> str:
    if geometry is None:
        return "null (location unknown)"
    if geometry["type"] == "Point":
        return "Point " + ", ".join(f"{c:g}" for c in geometry["coordinates"])
    return str(geometry["type"])


def _html_items(base: str, body: Mapping[str, Any], info: CollectionInfo, offset: int) -> str:
    features = body["features"]
    columns = list(dict.fromkeys(k for f in features for k in f["properties"]))
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    rows = []
    collection = next(link["href"] for link in body["links"] if link["rel"] == "collection")
    for f in features:
        fid = f.get("id")
        href = f"{collection}/items/{quote(str(fid), safe='')}?f=html"
        cells = "".join(f"<td>{_e(f['properties'].get(c))}</td>" for c in columns)
        rows.append(f'<tr><td><a href="{_e(href)}">{_e(fid)}</a></td>'
                    f"<td>{_e(_geometry_text(f['geometry']))}</td>{cells}</tr>")
    paging = " ".join(f'<a href="{_e(link["href"])}">{_e(link["title"])}</a>'
                      for link in body["links"] if link["rel"] in ("prev", "next"))
    first = offset + 1 if features else 0
    summary = (f"<p>Features {first}–{offset + len(features)} of {body['numberMatched']} "
               f"({_e(body['timeStamp'])}). {paging}</p>")
    table = (f"<table><tr><th>id</th><th>geometry</th>{head}</tr>{''.join(rows)}</table>")
    return _html_doc(base, info.title, body["links"], summary + table)


def _html_item(base: str, feature: Mapping[str, Any], info: CollectionInfo) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
                   for k, v in feature["properties"].items())
    body = (f"<p>Collection: {_e(info.title)}</p><table>"
            f"<tr><th>geometry</th><td>{_e(_geometry_text(feature['geometry']))}</td></tr>"
            f"{rows}</table>{_link_list(feature['links'])}")
    return _html_doc(base, str(feature.get("id", "")), feature["links"], body)


def _html_openapi(doc: Mapping[str, Any], req: APIRequest) -> str:
    rows = []
    for path, item in doc["paths"].items():
        op = item["get"]
        names = []
        for p in op["parameters"]:
            name = p.get("name") or p["$ref"].rsplit("/", 1)[-1]
            names.append(name)
        rows.append(f"<tr><td><code>GET {_e(path)}</code></td><td>{_e(op['summary'])}</td>"
                    f"<td>{_e(', '.join(names))}</td></tr>")
    links = _self_links(req, "/api", "html", OPENAPI)
    body = (f"<p>{_e(doc['info']['description'])} The machine-readable definition: "
            f'<a href="{_e(req.url("/api", {"f": "json"}))}">OpenAPI 3.0 JSON</a>.</p>'
            f"<table><tr><th>operation</th><th>summary</th><th>parameters</th></tr>"
            f"{''.join(rows)}</table>")
    return _html_doc(req.base_url, doc["info"]["title"], links, body)
