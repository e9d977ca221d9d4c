"""First-start build, rebuild on change, atomic replacement, user data kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from geo_app import build, store
from geo_app.errors import DataError
from geo_app.settings import Settings
from tests.conftest import copy_sources
from tests.helpers import execute_sql, query_sql


def test_first_start_builds_then_reuses(tmp_path: Path) -> None:
    settings = copy_sources(tmp_path)
    assert not settings.db_path.exists()
    build.ensure_database(settings)
    assert settings.db_path.exists()
    built_at = store.read_meta(settings.db_path)["built_at"]
    mtime = settings.db_path.stat().st_mtime_ns
    build.ensure_database(settings)  # unchanged sources: no rebuild
    assert settings.db_path.stat().st_mtime_ns == mtime
    assert store.read_meta(settings.db_path)["built_at"] == built_at


def test_changed_data_file_triggers_rebuild(tmp_path: Path) -> None:
    settings = copy_sources(tmp_path)
    build.ensure_database(settings)
    before = store.count_entities(settings.db_path)
    reg = settings.data_dir / "registry.csv"
    reg.write_text(reg.read_text(encoding="utf-8") + (
        "test-new,测试新主体,Test entity,incubator,municipal,operating,昆山市,120.95431,31.37762,"
        "town,GeoNames test,WGS84,test,\n"), encoding="utf-8")
    old_hash = store.read_meta(settings.db_path)["source_hash"]
    build.ensure_database(settings)
    assert store.read_meta(settings.db_path)["source_hash"] != old_hash
    assert store.count_entities(settings.db_path) == before + 1


def test_user_rows_survive_a_rebuild(tmp_path: Path) -> None:
    settings = copy_sources(tmp_path)
    build.build_database(settings)
    execute_sql(settings.db_path, [
        ("INSERT INTO import_batches (batch_id, file_name, imported_at, target, row_count, "
         "source_datum) VALUES (?, ?, now(), 'entities', 1, 'WGS84')", ["b1", "mine.csv"]),
        ("INSERT INTO entities (id, name_zh, kind, level, status, location_precision, source, "
         "origin, batch_id, lon, lat, geom) VALUES (?, ?, 'incubator', 'provincial', 'operating', "
         "'site', ?, 'user', 'b1', 120.6, 31.3, ST_Point(120.6, 31.3))",
         ["u-1", "用户孵化器", "user file"]),
    ])
    build.build_database(settings)  # an explicit rebuild, as after an upgrade
    df = query_sql(settings.db_path,
                   "SELECT id, origin, batch_id FROM entities WHERE origin = 'user'")
    assert df.to_dict("records") == [{"id": "u-1", "origin": "user", "batch_id": "b1"}]
    assert store.read_table(settings.db_path, "import_batches")["batch_id"].tolist() == ["b1"]


def test_invalid_registry_row_names_row_and_column_and_keeps_old_db(tmp_path: Path) -> None:
    settings = copy_sources(tmp_path)
    build.build_database(settings)
    before = settings.db_path.read_bytes()
    reg = settings.data_dir / "registry.csv"
    lines = reg.read_text(encoding="utf-8").splitlines()
    lines.append("bad-1,坏,Bad,spaceport,national,operating,,,,unknown,,,seed,")
    reg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError,
                       match=rf"row {len(lines)}, column kind: unknown value 'spaceport'"):
        build.build_database(settings)
    assert settings.db_path.read_bytes() == before
    assert not list(settings.data_dir.glob("*.tmp*"))


def test_unreadable_database_file_is_rebuilt(tmp_path: Path) -> None:
    settings = copy_sources(tmp_path)
    settings.db_path.write_bytes(b"not a duckdb file at all" * 100)
    with pytest.warns(UserWarning, match="kept as"):
        build.ensure_database(settings)
    assert store.count_entities(settings.db_path) > 50
    kept = list(settings.data_dir.glob("geo_app.duckdb.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"not a duckdb file")


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from geo_app.settings import load_settings

    monkeypatch.setenv("GEO_APP_DB", str(tmp_path / "x.duckdb"))
    monkeypatch.delenv("GEO_APP_DATA_DIR", raising=False)
    s = load_settings()
    assert isinstance(s, Settings) and s.db_path == tmp_path / "x.duckdb"
    assert s.data_dir.name == "data"


def test_user_row_whose_id_becomes_shipped_is_kept_under_a_new_id(tmp_path: Path) -> None:
    settings = copy_sources(tmp_path)
    build.build_database(settings)
    execute_sql(settings.db_path, [
        ("INSERT INTO import_batches (batch_id, file_name, imported_at, target, row_count, "
         "source_datum) VALUES (?, ?, now(), 'entities', 1, 'WGS84')", ["b7", "mine.csv"]),
        ("INSERT INTO entities (id, name_zh, kind, level, status, location_precision, source, "
         "origin, batch_id) VALUES (?, ?, 'incubator', 'provincial', 'operating', 'unknown', ?, "
         "'user', 'b7')",
         ["later-shipped", "用户的行", "user file"]),
    ])
    reg = settings.data_dir / "registry.csv"  # an upgrade ships a row with the same id
    reg.write_text(reg.read_text(encoding="utf-8") + (
        "later-shipped,后来内置,Shipped later,incubator,municipal,operating,,,,unknown,,,seed,\n"),
        encoding="utf-8")
    build.ensure_database(settings)
    rows = query_sql(settings.db_path, "SELECT id, name_zh, origin, notes FROM entities "
                           "WHERE id LIKE 'later-shipped%' ORDER BY id").to_dict("records")
    assert [(r["id"], r["name_zh"], r["origin"]) for r in rows] == [
        ("later-shipped", "后来内置", "shipped"), ("later-shipped@b7", "用户的行", "user")]
    assert "taken by the shipped registry" in rows[1]["notes"]


def test_a_folder_named_as_the_database_is_refused_and_kept(tmp_path: Path) -> None:
    """GEO_APP_DB=data once made a build move the data folder aside as 'unreadable'."""
    settings = copy_sources(tmp_path)
    before = sorted(p.name for p in settings.data_dir.iterdir())
    wrong = Settings(db_path=settings.data_dir, data_dir=settings.data_dir,
                     layers_dir=settings.layers_dir)
    for call in (build.build_database, build.ensure_database):
        with pytest.raises(DataError, match="is a folder"):
            call(wrong)
    assert sorted(p.name for p in settings.data_dir.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "layers"]


def test_a_rebuild_clears_leftovers_of_gone_builds_only(tmp_path: Path) -> None:
    settings = copy_sources(tmp_path)
    build.build_database(settings)
    db = settings.db_path
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        stale = [db.with_name(f"{db.name}.tmp{finished.pid}"),
                 db.with_name(f"{db.name}.tmp{finished.pid}.wal"),
                 db.with_name(f"{db.name}.write-{finished.pid}-3")]
        live = db.with_name(f"{db.name}.tmp{running.pid}")
        for path in [*stale, live]:
            path.write_bytes(b"half a database")
        build.build_database(settings)
        assert [p for p in stale if p.exists()] == []
        assert live.read_bytes() == b"half a database", "a live process's file was deleted"
    finally:
        running.kill()
        running.wait()
