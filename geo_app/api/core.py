"""The API's request and collection types, the catalogue, parameter checks and responses.

Everything the endpoints (:mod:`geo_app.api.endpoints`), the OpenAPI document
(:mod:`geo_app.api.openapi`) and the HTML pages (:mod:`geo_app.api.html`) share. Bad input
never reaches the database: every parameter is checked here first and answered with 400
and an OGC exception body ``{"code": ..., "description": ...}``, whose description quotes
at most :data:`MAX_ECHO` characters of any value the client sent.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import geopandas as gpd

from geo_app import export, store
from geo_app.errors import APIError, DatabaseBusyError, DataError, FilterError
from geo_app.filters import (
    FILTER_KEYS,
    EntityFilter,
    filter_from_query,
    filter_to_query,
    split_values,
)

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
#: Entity filters (:data:`geo_app.filters.FILTER_KEYS`); all but the search ``q`` may repeat.
ENTITY_FILTERS = tuple(FILTER_KEYS)

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


def _check_params(req: APIRequest, allowed: Collection[str],
                  repeatable: Collection[str] = ()) -> None:
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

    (:func:`~geo_app.filters.filter_from_query` names the first unknown value in full.)
    """
    for key, values in params.items():
        if FILTER_KEYS[key].text:
            continue  # the search text: limited in length, never quoted
        for part in split_values(values):
            if len(part) > MAX_ECHO:
                msg = f"Parameter {key!r}: {shown(part)} is not a valid value (far too long)"
                raise APIError(msg)


def _link_params(req: APIRequest, info: CollectionInfo, flt: EntityFilter | None,
                 bbox: tuple[float, float, float, float] | None) -> dict[str, str]:
    """The normalised filter and bbox parameters, repeated in the paging links."""
    out: dict[str, str] = {}
    if flt is not None:
        out.update((key, ",".join(values))
                   for key, values in filter_to_query(flt, info.filters).items())
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
                                  "The database is not available right now; the server log says "
                                  "why.")
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


