"""Thin Starlette adapter over :mod:`geo_app.api`: routes, trusted hosts, CORS, JSON errors;
``serve``.

Each route only turns the Starlette request into an :class:`~geo_app.api.APIRequest`,
calls the framework-free api function and wraps its ``(headers, status, content)``.
The endpoints are plain functions, so Starlette runs them in its thread pool and a
slow database read never blocks the event loop.

Every absolute link is built on the request's ``Host`` header, so only the configured
hosts are answered (``GEO_APP_API_HOSTS``, default localhost only): a request for any
other host gets 400 before it reaches a route, and no link ever points to a host the
client made up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from geo_app import api
from geo_app.settings import API_HOSTS_VAR, load_api_hosts, parse_hosts

LOGGER = logging.getLogger(__name__)


def _api_request(request: Request) -> api.APIRequest:
    query: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        query.setdefault(key, []).append(value)
    return api.APIRequest(str(request.base_url), query, request.headers.get("accept", ""))


def _respond(result: api.Response) -> Response:
    headers, status, content = result
    media_type = headers.get("Content-Type")
    rest = {k: v for k, v in headers.items() if k != "Content-Type"}
    return Response(content, status_code=status, headers=rest, media_type=media_type)


def _db(request: Request) -> Path:
    path: Path = request.app.state.db_path
    return path


def landing_page(request: Request) -> Response:
    """``GET /``."""
    return _respond(api.get_landing_page(_api_request(request)))


def conformance(request: Request) -> Response:
    """``GET /conformance``."""
    return _respond(api.get_conformance(_api_request(request)))


def openapi(request: Request) -> Response:
    """``GET /api``."""
    return _respond(api.get_openapi(_db(request), _api_request(request)))


def collections(request: Request) -> Response:
    """``GET /collections``."""
    return _respond(api.get_collections(_db(request), _api_request(request)))


def collection(request: Request) -> Response:
    """``GET /collections/{collection_id}``."""
    return _respond(api.get_collection(_db(request), _api_request(request),
                                       request.path_params["collection_id"]))


def schema(request: Request) -> Response:
    """``GET /collections/{collection_id}/feature-schema``."""
    return _respond(api.get_schema(_db(request), _api_request(request),
                                   request.path_params["collection_id"]))


def items(request: Request) -> Response:
    """``GET /collections/{collection_id}/items``."""
    return _respond(api.get_items(_db(request), _api_request(request),
                                  request.path_params["collection_id"]))


def item(request: Request) -> Response:
    """``GET /collections/{collection_id}/items/{feature_id}``."""
    return _respond(api.get_item(_db(request), _api_request(request),
                                 request.path_params["collection_id"],
                                 request.path_params["feature_id"]))


#: The methods every route answers; any other gets 405 with this ``Allow`` (read-only service).
ALLOWED_METHODS = ("GET", "HEAD", "OPTIONS")


def _read_only(endpoint: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """``endpoint`` for GET and HEAD; OPTIONS answered with 204 and ``Allow`` (a CORS
    preflight, when CORS is configured, is answered by the middleware before this)."""
    def route(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": ", ".join(ALLOWED_METHODS)})
        return endpoint(request)

    route.__name__ = getattr(endpoint, "__name__", "route")
    route.__doc__ = endpoint.__doc__
    return route


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (not GET) as OGC exception JSON."""
    assert isinstance(exc, HTTPException)
    code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
    text = {404: f"There is no resource at {api.shown(request.url.path)}; start at / or /api",
            405: f"{request.method} is not supported; this service is read-only "
                 f"(allowed: {', '.join(ALLOWED_METHODS)})"}
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(ALLOWED_METHODS)
    return _respond(api.error_response(exc.status_code, code,
                                       text.get(exc.status_code, str(exc.detail)),
                                       headers))


async def _server_error(request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with its traceback, answered without it."""
    LOGGER.error("unexpected error on %s", request.url.path, exc_info=exc)
    return _respond(api.error_response(
        500, "ServerError", "An unexpected error occurred; it has been logged on the server."))


ROUTES: Sequence[tuple[str, Callable[[Request], Response]]] = (
    ("/", landing_page),
    ("/conformance", conformance),
    ("/api", openapi),
    ("/collections", collections),
    ("/collections/{collection_id}", collection),
    ("/collections/{collection_id}/feature-schema", schema),
    ("/collections/{collection_id}/items", items),
    ("/collections/{collection_id}/items/{feature_id}", item),
)


#: Addresses that mean "every interface": no client sends them as its ``Host``.
_WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104


def create_app(db_path: Path, *, cors_origins: Sequence[str] = (),
               allowed_hosts: Sequence[str] | None = None) -> Starlette:
    """The ASGI application serving ``db_path`` (read-only, one short connection per read).

    Parameters
    ----------
    db_path
        The DuckDB file, already built (see :func:`geo_app.build.ensure_database`).
    cors_origins
        Origins allowed to read the API from a browser script (``*`` for any);
        empty (the default) sends no CORS headers at all.
    allowed_hosts
        Host names the service answers to (see :func:`geo_app.settings.parse_hosts`);
        None (the default) reads ``GEO_APP_API_HOSTS``: localhost, 127.0.0.1 and ::1
        unless it says otherwise. A request with any other ``Host`` gets 400.

    Raises
    ------
    SettingsError
        If a host is not a host name, an IP address or a ``*.domain`` pattern.
    """
    hosts = load_api_hosts() if allowed_hosts is None else parse_hosts(",".join(allowed_hosts))
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts),
                             www_redirect=False)]
    if cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(cors_origins),
                                     allow_methods=["GET", "HEAD", "OPTIONS"],
                                     allow_headers=["Accept", "Accept-Language", "Content-Type"],
                                     max_age=600))
    app = Starlette(
        routes=[Route(path, _read_only(endpoint), methods=list(ALLOWED_METHODS))
                for path, endpoint in ROUTES],
        middleware=middleware,
        exception_handlers={404: _http_error, 405: _http_error, 500: _server_error},
    )
    app.state.db_path = Path(db_path)
    return app


def serve(db_path: Path, *, host: str = "127.0.0.1", port: int = 8000,
          cors_origins: Sequence[str] = ()) -> None:
    """Run the API with uvicorn until interrupted; reads the catalog once before listening.

    The service answers to the hosts of ``GEO_APP_API_HOSTS`` (default: localhost,
    127.0.0.1, ::1) and to ``host`` itself unless that means every interface
    (``0.0.0.0``, ``::``), where the names clients use must be configured.
    """
    import uvicorn

    hosts = list(load_api_hosts())
    if host.strip().lower() not in _WILDCARD_ADDRESSES:
        hosts.append(host)
    elif "*" not in hosts:
        LOGGER.warning("listening on every interface, answering only requests for %s; set %s "
                       "to the names clients use", ", ".join(hosts), API_HOSTS_VAR)
    api.load_catalog(db_path)  # fail early (and warm the cache) if the database is unusable
    uvicorn.run(create_app(db_path, cors_origins=cors_origins, allowed_hosts=hosts), host=host,
                port=port, log_level="info", server_header=False, proxy_headers=True)
