"""Which backend the store runs on: DuckDB (the file; the default) or PostgreSQL/PostGIS.

``GEO_APP_DATABASE_URL=postgresql://…`` (:data:`geo_app.settings.DATABASE_URL_VAR`) moves
every function wrapped by :func:`on_postgis` onto :mod:`geo_app.store.postgis`; unset, they
run on the DuckDB file exactly as before. The variable is read at each call (tests change
it), and psycopg is imported only when it is set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from geo_app.settings import database_url
from geo_app.store.common import import_batch_id

F = TypeVar("F", bound=Callable[..., Any])


def on_postgis(fn: F) -> F:
    """``fn`` (a DuckDB store function), or its namesake in :mod:`geo_app.store.postgis`
    when ``GEO_APP_DATABASE_URL`` is set at the time of the call."""
    name = fn.__name__

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if database_url() is None:
            return fn(*args, **kwargs)
        from geo_app.store import postgis

        return getattr(postgis, name)(*args, **kwargs)

    return cast(F, call)


def postgis_active() -> bool:
    """Whether the store runs on PostgreSQL/PostGIS (``GEO_APP_DATABASE_URL`` is set)."""
    return database_url() is not None


@on_postgis
def database_exists(path: Path) -> bool:
    """Whether the database exists: the DuckDB file, or on PostgreSQL the app's schema."""
    return Path(path).exists()


@on_postgis
def new_batch_id(path: Path, now: Any) -> str:
    """The id of a new import batch of user entities, made at ``now``
    (:func:`geo_app.store.common.import_batch_id`): on the DuckDB file its last digits are
    random (the one writer refuses a clash whole); on PostGIS they are numbered by a
    server sequence, so importers in any number of processes never draw the same id."""
    return import_batch_id(now)
