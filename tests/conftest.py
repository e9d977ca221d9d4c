"""Shared fixtures: a database built from the real data/ and layers/ in a temporary folder."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from geo_app import build, store
from geo_app.settings import DATABASE_URL_VAR, PROJECT_ROOT, READ_URL_VAR, Settings
from tests import pgcluster

DATA_DIR = PROJECT_ROOT / "data"
LAYERS_DIR = PROJECT_ROOT / "layers"


def copy_sources(dest: Path) -> Settings:
    """Copy data/ and layers/ into ``dest`` and return settings pointing there."""
    data = dest / "data"
    layers = dest / "layers"
    data.mkdir(parents=True)
    for name in build.DATA_FILES:
        shutil.copy2(DATA_DIR / name, data / name)
    shutil.copytree(LAYERS_DIR, layers)
    return Settings(db_path=data / "geo_app.duckdb", data_dir=data, layers_dir=layers)


def point_env_at(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Set the GEO_APP_* environment variables to ``settings``; returns them."""
    monkeypatch.setenv("GEO_APP_DB", str(settings.db_path))
    monkeypatch.setenv("GEO_APP_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GEO_APP_LAYERS_DIR", str(settings.layers_dir))
    return settings


@pytest.fixture(scope="session")
def built_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of a database built once per test session from copies of data/ and layers/.

    Tests must treat this database as read-only; tests that write build their own
    with :func:`copy_sources` in ``tmp_path``.
    """
    settings = copy_sources(tmp_path_factory.mktemp("shipped"))
    build.build_database(settings)
    return settings


@pytest.fixture(scope="session")
def db(built_settings: Settings) -> Path:
    """Path of the session's read-only database."""
    return built_settings.db_path


@pytest.fixture()
def env_settings(built_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the GEO_APP_* environment variables at the session database."""
    return point_env_at(built_settings, monkeypatch)


@pytest.fixture()
def writable_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh database of its own (built from copies), with the environment pointing at it."""
    settings = copy_sources(tmp_path)
    build.build_database(settings)
    return point_env_at(settings, monkeypatch)


@pytest.fixture(scope="module")
def static(db: Path) -> dict[str, Any]:
    """The map's overlays of the session database (``maps.MapInputs`` fields but entities)."""
    return {
        "layers": store.read_geo_table(db, "layers"),
        "boundaries": store.read_geo_table(db, "boundaries"),
        "water": store.read_geo_table(db, "water"),
        "boards": store.read_table(db, "boards"),
    }


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pgcluster.Cluster]:
    """One throwaway PostgreSQL 15 + PostGIS server for the whole session (tests/pgcluster.py).

    Fails (never skips) when PostgreSQL or PostGIS is missing, naming what to install.
    """
    try:
        cluster = pgcluster.start_cluster()
    except pgcluster.ClusterError as err:
        pytest.fail(str(err), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture()
def pg_url(pg_cluster: pgcluster.Cluster) -> Iterator[str]:
    """The URL of a new empty PostGIS database of its own on the session's server."""
    url = pg_cluster.create_database()
    try:
        yield url
    finally:
        from geo_app.store import postgis

        postgis.close_pools()  # the pools of a dropped database would retry forever
        pg_cluster.drop_database(url)


@dataclass(frozen=True)
class PgDatabase:
    """A PostGIS database on the session's server and the settings of its sources."""

    settings: Settings
    url: str


def use_postgis(url: str, monkeypatch: pytest.MonkeyPatch, read_url: str | None = None) -> None:
    """Move the store onto the PostGIS database ``url`` (readers on ``read_url`` if given)."""
    monkeypatch.setenv(DATABASE_URL_VAR, url)
    if read_url:
        monkeypatch.setenv(READ_URL_VAR, read_url)
    else:
        monkeypatch.delenv(READ_URL_VAR, raising=False)


@pytest.fixture(scope="session")
def pg_built(pg_cluster: pgcluster.Cluster, built_settings: Settings,
             tmp_path_factory: pytest.TempPathFactory) -> PgDatabase:
    """A PostGIS database built once per session from the source files of
    :func:`built_settings` (the same data as the session's DuckDB file). Tests must treat
    it as read-only."""
    url = pg_cluster.create_database()
    shipped = built_settings  # the same source files, so layer specs name the same paths
    settings = Settings(db_path=tmp_path_factory.mktemp("pg-shipped") / "geo_app.duckdb",
                        data_dir=shipped.data_dir, layers_dir=shipped.layers_dir)
    with pytest.MonkeyPatch.context() as mp:
        use_postgis(url, mp)
        build.build_database(settings)
    return PgDatabase(settings, url)


@pytest.fixture()
def pg_settings(pg_built: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The store on the session's PostGIS database, the GEO_APP_* variables pointing at it."""
    use_postgis(pg_built.url, monkeypatch)
    return point_env_at(pg_built.settings, monkeypatch)


@pytest.fixture()
def pg_writable(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PgDatabase:
    """A fresh PostGIS database of its own, built from copies, the environment pointing at it."""
    settings = point_env_at(copy_sources(tmp_path), monkeypatch)
    use_postgis(pg_url, monkeypatch)
    build.build_database(settings)
    return PgDatabase(settings, pg_url)


@pytest.fixture(params=["duckdb", "postgis"])
def any_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The session's read-only database on each backend in turn (the environment pointing
    at it): the DuckDB file, then the same data on PostGIS."""
    if request.param == "duckdb":
        monkeypatch.delenv(DATABASE_URL_VAR, raising=False)
        monkeypatch.delenv(READ_URL_VAR, raising=False)
        return point_env_at(request.getfixturevalue("built_settings"), monkeypatch)
    pg: PgDatabase = request.getfixturevalue("pg_built")
    use_postgis(pg.url, monkeypatch)
    return point_env_at(pg.settings, monkeypatch)


# ----------------------------------------------------------------------------- PostGIS: the
# tests' own SQL and a snapshot of the whole store (tests/test_postgis_suite.py)

#: DuckDB's spellings of standard types in the tests' own SQL, with PostgreSQL's name.
_DUCKDB_TYPES = {"::DOUBLE": "::double precision"}


def _pg_sql(text: str) -> str:
    """A test's own SQL (DuckDB's ``?`` placeholders) for psycopg (``%s``), with the
    type names of :data:`_DUCKDB_TYPES` given PostgreSQL's names."""
    for duck, pg in _DUCKDB_TYPES.items():
        text = text.replace(duck, pg)
    return text.replace("%", "%%").replace("?", "%s")


def pg_query_sql(path: Path, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    """:func:`tests.helpers.query_sql` on PostGIS: a test's read query on the database
    ``GEO_APP_DATABASE_URL`` names (``path`` names nothing there), in the app's schema."""
    from geo_app.store import postgis_connect

    with postgis_connect._read(path) as con:
        cur = con.execute(_pg_sql(sql), list(params))
        names = [d.name for d in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=names)


def pg_execute_sql(path: Path, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """:func:`tests.helpers.execute_sql` on PostGIS: a test's write statements as one
    transaction that changes ``data_version``, as every write of the store does."""
    from geo_app.store import postgis_connect

    with postgis_connect._write(path) as con:
        for sql, params in statements:
            con.execute(_pg_sql(sql), list(params))


def pg_snapshot(url: str | None = None) -> str:
    """A digest of every table of the app's schema (every row, as text, in order) and of
    ``data_version``, on the database ``url`` (default: ``GEO_APP_DATABASE_URL``): what
    "the store is byte-identical" means on PostGIS, where there is no file to hash."""
    import psycopg
    from psycopg import sql as pgsql

    from geo_app.settings import database_url

    url = url or database_url()
    assert url, f"{DATABASE_URL_VAR} is not set"
    digest = hashlib.sha256()
    with psycopg.connect(url) as con:
        tables = con.execute("SELECT table_name FROM information_schema.tables WHERE "
                             "table_schema = 'geo_app' ORDER BY table_name").fetchall()
        assert len(tables) >= 12, tables  # the schema's tables and data_version
        for (table,) in tables:
            digest.update(f"\n[{table}]\n".encode())
            query = pgsql.SQL("SELECT t::text FROM geo_app.{} AS t ORDER BY 1").format(
                pgsql.Identifier(table))
            for (row,) in con.execute(query):
                digest.update(row.encode() + b"\n")
    return digest.hexdigest()
