"""The PostGIS backend's switch, connection pools and locks (see :mod:`geo_app.store.postgis`)."""

from __future__ import annotations

import atexit
import os
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from geo_app import settings
from geo_app.errors import DataError
from geo_app.settings import DATABASE_URL_VAR, READ_URL_VAR

#: The schema holding the app's tables (PostGIS stays in ``public``).
SCHEMA_NAME = "geo_app"
#: Prefix of the schema a build writes before it is swapped in.
BUILD_PREFIX = "geo_app_build_"
#: The schema of the sequence numbering import batches: outside the app's schema, so a
#: rebuild (which swaps that schema) never starts the numbers again.
SERIAL_SCHEMA = "geo_app_serial"
#: Key of the advisory lock: shared by imports and removals, exclusive for a rebuild.
LOCK_KEY = 0x6765_6F61_7070  # "geoapp"

#: Connections each process keeps per server at most (readers and writers each).
POOL_MAX = int(os.environ.get("GEO_APP_POOL_MAX", "8"))


# ----------------------------------------------------------------------------- the switch


def read_url() -> str:
    """The server readers use: ``GEO_APP_READ_URL``, else the primary."""
    return settings.read_url() or _primary_url()


def _primary_url() -> str:
    url = settings.database_url()
    if url is None:
        msg = f"{DATABASE_URL_VAR} is not set: the PostGIS backend is not in use"
        raise DataError(msg)
    return url


def describe(url: str) -> str:
    """``url`` without its password (for messages and cache keys).

    >>> describe("postgresql://geo:secret@db.example.org:5432/geo_app")
    'postgresql://geo@db.example.org:5432/geo_app'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


_BUILD_PATH = re.compile(r".*\.tmp(?P<pid>\d+)$")


def schema_for(path: Path | str) -> str:
    """The schema a store function's ``path`` names: a build's new file ``<db>.tmp<pid>``
    is the build schema ``geo_app_build_<pid>``; any other path is the live schema.

    >>> schema_for("data/geo_app.duckdb"), schema_for("data/geo_app.duckdb.tmp4242")
    ('geo_app', 'geo_app_build_4242')
    """
    match = _BUILD_PATH.fullmatch(str(path))
    return f"{BUILD_PREFIX}{match['pid']}" if match else SCHEMA_NAME


# ----------------------------------------------------------------------------- connections

_POOLS: dict[tuple[int, str, str], ConnectionPool[psycopg.Connection[Any]]] = {}
_POOLS_LOCK = threading.Lock()


def _pool(url: str, schema: str) -> ConnectionPool[psycopg.Connection[Any]]:
    """This process's pool of connections to ``url`` for ``schema`` (:func:`_connection`)."""
    key = (os.getpid(), url, schema)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = ConnectionPool(
                url, min_size=1 if schema == SCHEMA_NAME else 0,
                max_size=POOL_MAX if schema == SCHEMA_NAME else 2,
                # no startup options: search_path and jit are set in each transaction
                # (:func:`_connection`), which a pooler in transaction mode keeps
                kwargs={"application_name": "geo-app"},
                name=f"geo-app {describe(url)} {schema}", open=False, timeout=30,
                check=ConnectionPool.check_connection)
            try:
                pool.open(wait=True, timeout=30)
            except psycopg.OperationalError as err:  # PoolTimeout is one
                pool.close()
                msg = (f"Cannot connect to PostgreSQL at {describe(url)} ({err}); check "
                       f"{DATABASE_URL_VAR} / {READ_URL_VAR} and that the server runs")
                raise DataError(msg) from err
            _POOLS[key] = pool
    return pool


def _close_pool(url: str, schema: str) -> None:
    with _POOLS_LOCK:
        pool = _POOLS.pop((os.getpid(), url, schema), None)
    if pool is not None:
        pool.close()


def close_pools() -> None:
    """Close every pool of this process (tests; the end of the process)."""
    with _POOLS_LOCK:
        pools = [p for k, p in _POOLS.items() if k[0] == os.getpid()]
        _POOLS.clear()
    for pool in pools:
        pool.close()


atexit.register(close_pools)


def _settings_sql(schema: str) -> sql.Composed:
    """The settings of every transaction, local to it: ``search_path`` on ``schema`` (then
    ``public``, PostGIS), and JIT off (compiling the long GeoJSON expressions took ~3 s a
    query, for queries that run in milliseconds). Set per transaction, not per connection,
    so that they hold behind a pooler in transaction mode (PgBouncer: docs/deploy.md)."""
    return sql.SQL("SELECT set_config('search_path', {}, true), set_config('jit', 'off', true)"
                   ).format(sql.Literal(f"{schema}, public"))


@contextmanager
def _connection(url: str, schema: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection of the pool of ``url``/``schema`` inside one transaction (committed at
    the end) with :func:`_settings_sql` set."""
    with _pool(url, schema).connection() as con:
        con.execute(_settings_sql(schema))
        yield con


@contextmanager
def _read(path: Path | str, *, snapshot: bool = False) -> Iterator[psycopg.Connection[Any]]:
    """A connection for one read, in a read-only transaction (repeatable read when several
    statements must see one state: ``snapshot``). A build's schema is read on the primary."""
    schema = schema_for(path)
    url = read_url() if schema == SCHEMA_NAME else _primary_url()
    with _pool(url, schema).connection() as con:
        level = "REPEATABLE READ" if snapshot else "READ COMMITTED"
        # one round trip: the isolation level must come first in the transaction
        con.execute(sql.SQL("SET TRANSACTION ISOLATION LEVEL {}, READ ONLY; {}").format(
            sql.SQL(level), _settings_sql(schema)))
        yield con


@contextmanager
def _write(path: Path | str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the primary inside one transaction (committed at the end, rolled
    back when the body raises); the transaction changes ``data_version``."""
    schema = schema_for(path)
    try:
        with _connection(_primary_url(), schema) as con:
            yield con
            if con.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                return  # the body rolled back: nothing changed
            con.execute("UPDATE data_version SET value = %s", [uuid.uuid4().hex])
    except psycopg.errors.ReadOnlySqlTransaction as err:
        msg = (f"{describe(_primary_url())} is a read-only server (a standby?): "
               f"{DATABASE_URL_VAR} must name the primary; readers may use {READ_URL_VAR}")
        raise DataError(msg) from err


# ----------------------------------------------------------------------------- locks

_LOCAL = threading.local()


@contextmanager
def writer_lock(path: Path | str) -> Iterator[None]:
    """Hold the *shared* writer lock (an advisory lock on the primary) for a write.

    Imports and removals hold it shared, so they run at the same time; a rebuild turns it
    exclusive (:func:`write_database`) and so waits for them, and they for it. Re-entrant
    within a thread. The lock is a session lock of a connection of its own: it is
    released when the body ends, or by the server when the process dies.
    """
    depth = getattr(_LOCAL, "depth", 0)
    if depth:
        _LOCAL.depth = depth + 1
        try:
            yield
        finally:
            _LOCAL.depth = depth
        return
    try:
        con = psycopg.connect(_primary_url(), autocommit=True, application_name="geo-app lock")
    except psycopg.OperationalError as err:
        msg = f"Cannot connect to PostgreSQL at {describe(_primary_url())} ({err})"
        raise DataError(msg) from err
    try:
        con.execute("SELECT pg_advisory_lock_shared(%s)", [LOCK_KEY])
        _LOCAL.depth, _LOCAL.con = 1, con
        try:
            yield
        finally:
            _LOCAL.depth, _LOCAL.con, _LOCAL.exclusive = 0, None, False
    finally:
        con.close()  # ends the session: every advisory lock it holds is released


def _exclusive_lock() -> None:
    """Turn this thread's writer lock exclusive (a rebuild); no-op outside :func:`writer_lock`.

    The shared lock is let go first: two rebuilds that each held it shared and waited for
    the other to let go would deadlock. Then the rebuild waits for every import under way.
    """
    con = getattr(_LOCAL, "con", None)
    if con is not None and not getattr(_LOCAL, "exclusive", False):
        con.execute("SELECT pg_advisory_unlock_shared(%s)", [LOCK_KEY])
        con.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        _LOCAL.exclusive = True
