"""The store: offline spatial extension, short connections, filters bound as parameters."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from geo_app import store
from geo_app.errors import DatabaseBusyError, DataError
from geo_app.filters import make_filter


def test_spatial_extension_loads_from_the_wheel_without_network(tmp_path: Path) -> None:
    with store.connect(tmp_path / "x.duckdb", read_only=False) as con:
        assert con.execute("SELECT ST_AsText(ST_Point(120.5, 31.3))").fetchone()[0] == "POINT (120.5 31.3)"
        settings = dict(con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name LIKE 'auto%_known_extensions'").fetchall())
    assert settings == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    assert "site-packages" in str(store._spatial_extension_path())


def test_query_entities_returns_points_and_unknowns(db: Path) -> None:
    gdf = store.query_entities(db)
    assert gdf.crs == "EPSG:4326"
    located = gdf[gdf.geometry.notna()]
    assert 0 < len(located) < len(gdf)  # unknown locations are kept, not dropped
    assert located.geometry.x.between(120.2, 121.4).all()
    assert gdf["source"].str.len().gt(0).all()


@pytest.mark.parametrize(("kwargs", "check"), [
    ({"kinds": ["laboratory"]}, lambda g: set(g["kind"]) == {"laboratory"}),
    ({"boards": ["昆山市"]}, lambda g: set(g["board"]) == {"昆山市"}),
    ({"statuses": ["planned"]}, lambda g: set(g["status"]) == {"planned"}),
    ({"levels": ["national"], "kinds": ["high_tech_zone"]},
     lambda g: set(g["level"]) == {"national"} and set(g["kind"]) == {"high_tech_zone"}),
    ({"search": "nanjing"}, lambda g: g["name_en"].str.contains("Nanjing").all()),
    ({"search": "实验室"}, lambda g: g["name_zh"].str.contains("实验室").all()),
    ({"layers": ["taihu_science_city"]}, lambda g: g["layers"].str.contains("taihu_science_city").all()),
])
def test_filters(db: Path, kwargs: dict, check) -> None:  # type: ignore[no-untyped-def]
    gdf = store.query_entities(db, make_filter(**kwargs))
    assert len(gdf) > 0 and check(gdf)
    assert store.count_entities(db, make_filter(**kwargs)) == len(gdf)


@pytest.mark.parametrize("hostile", [
    "'; DROP TABLE entities; --",
    "%",  # a LIKE wildcard must not match everything
    "x' OR '1'='1",
    "read_csv('/etc/passwd')",
])
def test_search_text_is_bound_not_executed(db: Path, hostile: str) -> None:
    assert len(store.query_entities(db, make_filter(search=hostile))) == 0
    assert store.count_entities(db) > 50


def test_reader_does_not_hold_the_lock(db: Path, tmp_path: Path) -> None:
    # after a read the file can be opened read-write by another connection at once
    store.query_entities(db)
    con = duckdb.connect(str(db), read_only=False)
    con.close()


def test_writer_meets_lock_and_reports_busy(tmp_path: Path) -> None:
    import multiprocessing as mp

    path = tmp_path / "busy.duckdb"
    with store.connect(path, read_only=False) as con:
        con.execute("CREATE TABLE t (x INT)")
    ready, release = mp.Event(), mp.Event()
    proc = mp.Process(target=_hold_lock, args=(str(path), ready, release))
    proc.start()
    try:
        assert ready.wait(20)
        with pytest.raises(DatabaseBusyError, match="busy"), \
                store.connect(path, read_only=False, retries=2, base_delay=0.01):
            pass
    finally:
        release.set()
        proc.join(20)


def _hold_lock(path: str, ready, release) -> None:  # type: ignore[no-untyped-def]
    con = duckdb.connect(path)
    ready.set()
    release.wait(20)
    con.close()


def test_missing_database_has_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist yet"):
        store.query_entities(tmp_path / "none.duckdb")


def test_unknown_table_names_are_refused(db: Path) -> None:
    with pytest.raises(ValueError, match="Unknown table"):
        store.read_table(db, "entities; DROP TABLE x")
