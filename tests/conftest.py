"""Shared fixtures: a database built from the real data/ and layers/ in a temporary folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geo_app import build, store
from geo_app.settings import PROJECT_ROOT, Settings
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
        pg_cluster.drop_database(url)
