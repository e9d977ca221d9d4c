"""Frozen settings read from environment variables (database path or URL, data and layer
folders, API hosts)."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from geo_app.errors import GeoAppError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The environment variable that moves the store onto PostgreSQL/PostGIS: a ``postgresql://``
#: URL of the primary (docs/deploy.md). Unset, the store is the DuckDB file (``GEO_APP_DB``).
DATABASE_URL_VAR = "GEO_APP_DATABASE_URL"
#: The environment variable naming the server readers use, e.g. a streaming-replication
#: standby (default: the primary of :data:`DATABASE_URL_VAR`).
READ_URL_VAR = "GEO_APP_READ_URL"
_PG_SCHEMES = ("postgresql://", "postgres://")

#: The environment variable naming the hosts ``geo-app api`` answers to (comma-separated).
API_HOSTS_VAR = "GEO_APP_API_HOSTS"
#: The hosts ``geo-app api`` answers to when :data:`API_HOSTS_VAR` is unset or blank.
DEFAULT_API_HOSTS = ("localhost", "127.0.0.1", "::1")

_HOST_NAME = re.compile(r"(?:\*\.)?[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")


class SettingsError(GeoAppError, ValueError):
    """An environment variable holds a value the app cannot use."""


@dataclass(frozen=True)
class Settings:
    """Where the app finds its inputs and keeps its database.

    Attributes
    ----------
    db_path
        The DuckDB file (``GEO_APP_DB``; default ``data/geo_app.duckdb``).
    data_dir
        Source data (``GEO_APP_DATA_DIR``; default ``data/``).
    layers_dir
        Layer specifications (``GEO_APP_LAYERS_DIR``; default ``layers/``).
    """

    db_path: Path
    data_dir: Path
    layers_dir: Path


def load_settings() -> Settings:
    """Read the settings from the environment each time (cheap; tests change it)."""
    data_dir = Path(os.environ.get("GEO_APP_DATA_DIR", PROJECT_ROOT / "data"))
    return Settings(
        db_path=Path(os.environ.get("GEO_APP_DB", data_dir / "geo_app.duckdb")),
        data_dir=data_dir,
        layers_dir=Path(os.environ.get("GEO_APP_LAYERS_DIR", PROJECT_ROOT / "layers")),
    )


def database_url() -> str | None:
    """``GEO_APP_DATABASE_URL`` (the PostGIS primary), or None when the store is the DuckDB file.

    Read at each call (cheap; tests change it).

    Raises
    ------
    SettingsError
        If it is set but is not a ``postgresql://`` URL.
    """
    return _pg_url(DATABASE_URL_VAR)


def read_url() -> str | None:
    """``GEO_APP_READ_URL`` (the server readers use), else :func:`database_url`.

    Raises
    ------
    SettingsError
        If it is set but is not a ``postgresql://`` URL.
    """
    return _pg_url(READ_URL_VAR) or database_url()


def _pg_url(var: str) -> str | None:
    url = os.environ.get(var, "").strip()
    if not url:
        return None
    if not url.startswith(_PG_SCHEMES):
        msg = (f"{var} must be a PostgreSQL URL such as postgresql://user@host:5432/dbname "
               f"(got {url.split('://')[0][:20]!r}...); unset it to use the DuckDB file")
        raise SettingsError(msg)
    return url


def load_api_hosts() -> tuple[str, ...]:
    """The hosts ``geo-app api`` answers to: ``GEO_APP_API_HOSTS``, else localhost only.

    Read only by the API server (a bad value must not stop the map), each time it is called.

    Raises
    ------
    SettingsError
        If an entry is not a host name, an IP address or a ``*.domain`` pattern.
    """
    text = os.environ.get(API_HOSTS_VAR, "")
    return parse_hosts(text if text.strip() else ",".join(DEFAULT_API_HOSTS))


def parse_hosts(text: str) -> tuple[str, ...]:
    """Host patterns as the ``Host`` header is compared with them: lower case, no port.

    Entries are comma-separated: a host name, an IPv4 or IPv6 address (brackets optional),
    ``*.example.org`` (any subdomain) or ``*`` (any host: no check). A port is dropped;
    ports are not checked.

    Raises
    ------
    SettingsError
        Naming the first entry that is none of these.

    >>> parse_hosts("Maps.Example.org:8080, ::1, [::1]:8000, *.example.net")
    ('maps.example.org', '[::1]', '*.example.net')
    """
    hosts: list[str] = []
    for entry in text.split(","):
        host = _parse_host(entry.strip().lower())
        if host and host not in hosts:
            hosts.append(host)
    if not hosts:
        msg = f"{API_HOSTS_VAR} names no host; give e.g. 'localhost,127.0.0.1,::1'"
        raise SettingsError(msg)
    return tuple(hosts)


def _parse_host(entry: str) -> str:
    """One entry of :func:`parse_hosts` ('' for an empty one); IPv6 addresses as written."""
    if entry in ("", "*"):
        return entry
    if entry.startswith("[") and "]" in entry:
        address, _, port = entry[1:].partition("]")
        port = port.removeprefix(":")
    elif entry.count(":") > 1:
        address, port = entry, ""
    else:
        address, _, port = entry.partition(":")
        if _HOST_NAME.fullmatch(address) and (not port or port.isdigit()):
            return address
        address = ""
    try:
        if port and not port.isdigit():
            raise ValueError(port)
        ipaddress.IPv6Address(address)
    except ValueError:
        msg = (f"{API_HOSTS_VAR}: {entry[:80]!r} is not a host name, an IP address or a "
               "'*.domain' pattern (give names without scheme or path, comma-separated)")
        raise SettingsError(msg) from None
    return f"[{address}]"
