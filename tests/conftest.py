"""Shared fixtures: a database built from the real data/ and layers/ in a temporary folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
