"""The store: offline spatial extension, kept readers, copy-write-swap writers, bound filters."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from geo_app import store
from geo_app.errors import DatabaseBusyError, DataError
from geo_app.filters import make_filter
from geo_app.store import duckdb_connect
from geo_app.store.common import FILTER_COLUMNS
from tests.helpers import execute_sql, query_sql


def test_spatial_extension_loads_from_the_wheel_without_network(tmp_path: Path) -> None:
    with store.connect(tmp_path / "x.duckdb", read_only=False) as con:
        point = con.execute("SELECT ST_AsText(ST_Point(120.5, 31.3))").fetchone()[0]
        assert point == "POINT (120.5 31.3)"
        settings = dict(con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name LIKE "
            "'auto%_known_extensions'").fetchall())
    assert settings == {"autoinstall_known_extensions": "false",
                        "autoload_known_extensions": "false"}
    assert "site-packages" in str(duckdb_connect._spatial_extension_path())


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
    ({"layers": ["taihu_science_city"]},
     lambda g: g["layers"].str.contains("taihu_science_city").all()),
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


def _table_db(path: Path, value: int) -> Path:
    """A tiny database file holding ``t(v) = value``, written beside ``path`` and swapped in."""
    fresh = path.with_name(path.name + ".new")
    con = duckdb.connect(str(fresh))
    con.execute("CREATE TABLE t AS SELECT ?::INTEGER AS v", [value])
    con.close()
    fresh.replace(path)
    return path


def _v(path: Path) -> int:
    return int(query_sql(path, "SELECT v FROM t").iloc[0, 0])


def test_reader_is_kept_and_follows_a_replaced_file(tmp_path: Path) -> None:
    path = _table_db(tmp_path / "x.duckdb", 1)
    assert _v(path) == 1
    first = duckdb_connect._reader_instance(path, 0, 0.01)[1]
    # kept, not reopened
    assert _v(path) == 1 and duckdb_connect._reader_instance(path, 0, 0.01)[1] is first
    _table_db(path, 2)  # a writer swaps a new file in (os.replace)
    assert _v(path) == 2  # duckdb.connect(path) would still serve the old file here
    assert duckdb_connect._reader_instance(path, 0, 0.01)[1] is not first


def test_a_read_in_progress_keeps_its_snapshot(tmp_path: Path) -> None:
    path = _table_db(tmp_path / "x.duckdb", 1)
    with store.reader(path) as cur:
        _table_db(path, 2)
        assert cur.execute("SELECT v FROM t").fetchone() == (1,)  # the old file, whole
    assert _v(path) == 2


def test_readers_never_block_writers(writable_settings) -> None:  # type: ignore[no-untyped-def]
    live = writable_settings.db_path
    before = store.count_entities(live)
    with store.reader(live) as cur:  # a read is open in this process while the write runs
        execute_sql(live, [("DELETE FROM entities WHERE id = (SELECT min(id) FROM "
                                    "entities)", [])])
        assert cur.execute("SELECT count(*) FROM entities").fetchone() == (before,)
    assert store.count_entities(live) == before - 1
    assert not list(live.parent.glob(live.name + ".write-*"))  # the copy was swapped in


def test_failed_write_leaves_the_live_file_byte_identical(writable_settings) -> None:  # type: ignore[no-untyped-def]
    live = writable_settings.db_path
    before = live.read_bytes()
    with pytest.raises(duckdb.Error):
        execute_sql(live, [("DELETE FROM entities", []), ("SELECT no_such_column", [])])
    assert live.read_bytes() == before
    assert not list(live.parent.glob(live.name + ".write-*"))


def _count_opens(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every read-only instance this process opens from now on (kept or private)."""
    opened: list[Path] = []
    attach = duckdb_connect._attach_read_only

    def counted(path: Path) -> duckdb.DuckDBPyConnection:
        opened.append(path)
        return attach(path)

    monkeypatch.setattr(duckdb_connect, "_attach_read_only", counted)
    return opened


def test_a_write_leaves_the_new_file_open_for_the_next_query(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first query after a write does not open the replaced file: ``rewrite`` opened
    (and read) this process's reader of it right after the swap."""
    path = _table_db(tmp_path / "x.duckdb", 1)
    assert _v(path) == 1
    old = duckdb_connect._reader_instance(path, 0, 0.01)[1]
    with store.rewrite(path) as con:
        con.execute("UPDATE t SET v = 2")
    opened = _count_opens(monkeypatch)
    assert _v(path) == 2 and opened == []  # the new file, on the reader the write opened
    assert duckdb_connect._reader_instance(path, 0, 0.01)[1] is not old


def test_the_reader_of_the_app_database_is_warmed_without_error(
        writable_settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """``rewrite`` leaves a failing warm-up to the next query, so it is called here directly:
    on the app's own tables (``entities`` with every column of a query), then an empty one."""
    live = writable_settings.db_path
    duckdb_connect.warm_reader(live)
    opened = _count_opens(monkeypatch)
    assert store.count_entities(live) > 50 and opened == []
    execute_sql(live, [("DELETE FROM entities", [])])  # opens the copy's lock and the new reader
    opened.clear()
    duckdb_connect.warm_reader(live)
    assert store.count_entities(live) == 0 and opened == []


def test_a_failed_write_keeps_the_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _table_db(tmp_path / "x.duckdb", 1)
    assert _v(path) == 1
    kept = duckdb_connect._reader_instance(path, 0, 0.01)[1]
    opened = _count_opens(monkeypatch)
    with pytest.raises(duckdb.Error), store.rewrite(path) as con:
        con.execute("UPDATE t SET v = 3")
        con.execute("SELECT no_such_column FROM t")
    assert len(opened) == 1  # only the write's own read-only lock on the live file
    assert _v(path) == 1 and duckdb_connect._reader_instance(path, 0, 0.01)[1] is kept
    assert len(opened) == 1


def test_the_map_points_stream_on_the_kept_reader(db: Path, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    """The map's point stream reuses the process's reader (no new instance, no cold reads
    per filter); the exports' streams keep instances of their own."""
    list(store.iter_point_batches(db))
    opened = _count_opens(monkeypatch)
    flt = make_filter(kinds=["laboratory"])
    rows = sum(b.num_rows for b in store.iter_point_batches(db, flt, unlocated=["id"]))
    assert rows == store.count_entities(db, flt) > 0 and opened == []
    assert sum(b.num_rows for b in store.iter_entity_batches(db, flt)) == rows
    assert len(opened) == 1


def test_readers_are_bounded(tmp_path: Path) -> None:
    paths = [_table_db(tmp_path / f"db{i}.duckdb", i) for i in range(store.MAX_OPEN_READERS + 3)]
    assert [_v(p) for p in paths] == list(range(len(paths)))
    assert len(duckdb_connect._READERS) <= store.MAX_OPEN_READERS


def test_writer_lock_is_reentrant_and_excludes_other_threads(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "x.duckdb"
    order: list[str] = []
    with store.writer_lock(path):
        with store.writer_lock(path):  # the same thread may take it again
            other = threading.Thread(target=lambda: (store.writer_lock(path).__enter__(),
                                                     order.append("other")))
            other.start()
            other.join(0.3)
            assert other.is_alive() and order == []  # the other thread waits
            order.append("holder")
    other.join(10)
    assert order == ["holder", "other"]


def dead_pid() -> int:
    """The id of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture()
def live_pid() -> Iterator[int]:
    """The id of a process (not this one) that stays alive during the test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_leftovers_of_killed_writers_are_cleared(writable_settings) -> None:  # type: ignore[no-untyped-def]
    live = writable_settings.db_path
    dead = live.with_name(live.name + ".write-999999-1")
    dead.write_bytes(b"half a copy")
    execute_sql(live, [("DELETE FROM import_batches WHERE false", [])])
    assert not dead.exists() and live.exists()


def test_only_leftovers_of_gone_processes_are_cleared(tmp_path: Path, live_pid: int) -> None:
    path = _table_db(tmp_path / "x.duckdb", 1)
    gone = dead_pid()
    stale = [path.with_name(f"{path.name}.write-{gone}-7"),
             path.with_name(f"{path.name}.write-{gone}-7.wal"),
             path.with_name(f"{path.name}.tmp{gone}")]
    running = [path.with_name(f"{path.name}.write-{live_pid}-7"),
               path.with_name(f"{path.name}.write-{os.getpid()}-99"),
               path.with_name(f"{path.name}.tmp{live_pid}")]
    for leftover in stale + running:
        leftover.write_bytes(b"half a copy")
    spill = path.with_name(f"{path.name}.tmp")  # DuckDB's own spill folder: not a leftover
    spill.mkdir()
    mine = tmp_path / "x.duckdb.tmp-notes.txt"  # a user's file that merely starts alike
    mine.write_text("keep me")
    execute_sql(path, [("INSERT INTO t VALUES (2)", [])])
    assert [p for p in stale if p.exists()] == []
    assert [p for p in running if not p.exists()] == [], "a live process's copy was deleted"
    assert spill.is_dir() and mine.read_text() == "keep me"
    assert query_sql(path, "SELECT count(*) FROM t").iloc[0, 0] == 2


@pytest.mark.parametrize(("name", "refused"), [
    ("x.duckdb", True),
    ("../d/x.duckdb", True),            # a detour through ..
    ("x.duckdb.wal", True),
    ("x.duckdb.lock", True),
    ("x.duckdb.write-12-34", True),     # rewrite's copy
    ("x.duckdb.write-12-34.wal", True),
    ("x.duckdb.tmp4321", True),         # a build's new file
    ("x.duckdb.tmp", True),             # DuckDB's spill folder
    ("x.duckdb.unreadable-20240101T000000", True),  # kept aside for recovery
    ("x.duckdb.csv", False),
    ("y.duckdb", False),
    ("X.duckdb", False),
])
def test_is_database_file_by_name(tmp_path: Path, name: str, refused: bool) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    db = _table_db(folder / "x.duckdb", 1)
    assert store.is_database_file(folder / name, db) is refused


def test_is_database_file_through_links(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    db = _table_db(folder / "x.duckdb", 1)
    (tmp_path / "sym.geojson").symlink_to(db)
    (tmp_path / "dirlink").symlink_to(folder)
    os.link(db, tmp_path / "hard.geojson")
    lock = folder / "x.duckdb.lock"
    lock.touch()
    os.link(lock, tmp_path / "hard-lock.csv")
    for name in ("sym.geojson", "dirlink/x.duckdb", "dirlink/x.duckdb.wal", "hard.geojson",
                 "hard-lock.csv"):
        assert store.is_database_file(tmp_path / name, db), name
    assert not store.is_database_file(tmp_path / "other.geojson", db)
    link_db = tmp_path / "link.duckdb"  # a symlinked database: its files are the target's
    link_db.symlink_to(db)
    assert store.is_database_file(folder / "x.duckdb.wal", link_db)


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


def test_wal_left_by_an_outside_writer_is_folded_in_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = _table_db(tmp_path / "x.duckdb", 1)
    # killed after its commit: the row lives only in the WAL
    code = ("import os, sys, duckdb; c = duckdb.connect(sys.argv[1]); "
            "c.execute(\"SET checkpoint_threshold = '1GB'\"); "
            "c.execute('INSERT INTO t VALUES (2)'); os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code, str(path)], check=False)
    assert Path(f"{path}.wal").exists()
    values = "SELECT list(v ORDER BY v) FROM t"
    assert query_sql(path, values).iloc[0, 0].tolist() == [1, 2]
    execute_sql(path, [("INSERT INTO t VALUES (3)", [])])
    assert not Path(f"{path}.wal").exists()  # else readers would replay it onto the new file
    assert query_sql(path, values).iloc[0, 0].tolist() == [1, 2, 3]


def test_a_symlinked_database_is_written_through_the_link(tmp_path: Path) -> None:
    real = _table_db(tmp_path / "real.duckdb", 1)
    link = tmp_path / "link.duckdb"
    link.symlink_to(real)
    execute_sql(link, [("UPDATE t SET v = 5", [])])
    assert link.is_symlink() and _v(real) == 5 and _v(link) == 5


# ----------------------------------------------------------------------------- one place for SQL

_PACKAGE = Path(store.__file__).parent.parent
_SQL_WORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP)\b")


def _outside_store() -> list[Path]:
    files = sorted(p for p in _PACKAGE.rglob("*.py")
                   if "store" not in p.relative_to(_PACKAGE).parts)
    assert len(files) > 10, files  # the package was found
    return files


def test_sql_lives_only_in_the_store() -> None:
    """Every SQL statement is behind a named function of ``geo_app.store`` (what lets a
    second database backend exist). That only the store imports the database drivers is
    checked with the other import boundaries, in tests/test_quality.py."""
    found = [f"{p.relative_to(_PACKAGE)}:{i}: {line.strip()}"
             for p in _outside_store()
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if _SQL_WORD.search(line)]
    assert found == []
    inside = list((_PACKAGE / "store").glob("*.py"))
    assert any(_SQL_WORD.search(p.read_text(encoding="utf-8")) for p in inside)


@pytest.mark.parametrize("line", ['sql = "SELECT id FROM entities"',
                                  "    con.execute(f'DELETE FROM {table}')"])
def test_the_sql_check_finds_sql(line: str) -> None:
    assert _SQL_WORD.search(line)


def test_the_filter_columns_are_entity_columns() -> None:
    """The store matches each vocabulary key of the filter against the column of its name."""
    assert FILTER_COLUMNS == (
        ("kind", "kinds"), ("level", "levels"), ("status", "statuses"), ("board", "boards"))
    assert {column for column, _ in FILTER_COLUMNS} <= set(store.ENTITY_COLUMNS)


# ----------------------------------------------------------------------------- the map's index

_INDEX_FILTERS = [
    make_filter(),
    make_filter(kinds=["laboratory", "university"]),
    make_filter(boards=["昆山市"], statuses=["operating"]),
    make_filter(search="苏州"),         # caseless: searched without lower()
    make_filter(search="Lab"),          # cased: searched lowercased
    make_filter(search="没有这个名字"),  # nothing matches
]


@pytest.mark.parametrize("flt", _INDEX_FILTERS)
def test_the_point_index_gives_the_summary_of_the_filters_stream(db: Path, flt) -> None:  # type: ignore[no-untyped-def]
    """The map's summary taken from the index by the filter's row ids is the summary of
    the filter's own point stream: same points in the same order, same rows without a point."""
    import numpy as np

    from geo_app import aggregate

    read, points, no_point = store.point_index(db, unlocated=aggregate.NO_POINT_COLUMNS)
    index = aggregate.PointIndex.from_tables(repr(read), points, no_point)
    matched, rowids = store.match_rowids(db, flt)
    assert matched == read and list(rowids) == sorted(rowids)
    assert len(rowids) == store.count_entities(db, flt)
    for cap in (aggregate.NO_POINT_ROWS, 2):
        got = index.summary(None if flt.is_empty() else rowids, no_point_rows=cap)
        want = aggregate.points_from_batches(
            store.iter_point_batches(db, flt, unlocated=aggregate.NO_POINT_COLUMNS),
            no_point_rows=cap)
        for name in ("lon", "lat", "kind", "exact"):
            assert np.array_equal(getattr(got.points, name), getattr(want.points, name)), name
        assert (got.n_total, got.n_no_point) == (want.n_total, want.n_no_point)
        assert got.no_point.to_dict("records") == want.no_point.to_dict("records")


_SEARCHES = ["苏州", "实验室", "（", "1", "Lab", "LAB", "lab", "sip", "Nanjing", "-", "%", "_",
             "'", "没有这个名字", " "]


def _ids_by_rowid(path: Path) -> dict[int, str]:
    return dict(query_sql(path, "SELECT rowid AS r, id FROM entities").itertuples(index=False))


@pytest.mark.parametrize("others", [{}, {"kinds": ["laboratory", "university"]},
                                    {"layers": ["taihu_science_city"]}])
def test_the_maps_search_finds_what_the_filter_finds(db: Path, others: dict) -> None:  # type: ignore[type-arg]
    """The map matches a search on the reader's lowercased copy of the names; it finds
    exactly the entities every other query finds (on the file's columns), alone and with
    other filters, an id matching whole and nothing else."""
    by_rowid = _ids_by_rowid(db)
    some_id = sorted(by_rowid.values())[3]
    for text in [*_SEARCHES, some_id, some_id[:-1], some_id.upper()]:
        flt = make_filter(search=text, **others)
        _, rowids = store.match_rowids(db, flt)
        got = [by_rowid[int(r)] for r in rowids]
        want = set(store.query_entities(db, flt)["id"])
        assert len(got) == len(set(got)) and set(got) == want, text
    _, found = store.match_rowids(db, make_filter(search=some_id))
    assert [by_rowid[int(r)] for r in found] == [some_id]
    assert len(store.match_rowids(db, make_filter(search="实验室"))[1]) > 0


def test_the_maps_search_reads_the_names_of_the_file_it_reads(writable_settings) -> None:  # type: ignore[no-untyped-def]
    """The copy of the names belongs to the reader of one file: after a write the search
    finds the new name and no longer the old one, made ahead (``prepare_search``) or not."""
    db = writable_settings.db_path
    by_rowid = _ids_by_rowid(db)
    target = sorted(by_rowid.values())[0]
    old = store.query_entities(db, make_filter(search=target))["name_zh"].iloc[0]
    assert target in {by_rowid[int(r)] for r in store.match_rowids(db, make_filter(search=old))[1]}
    for n, prepare in enumerate((False, True)):
        new = f"改名后的主体Ⅻ{n}"
        execute_sql(db, [("UPDATE entities SET name_zh = ? WHERE id = ?", [new, target])])
        if prepare:
            store.prepare_search(db)
        _, found = store.match_rowids(db, make_filter(search=new.lower()))
        assert [by_rowid[int(r)] for r in found] == [target]
        assert target not in {by_rowid[int(r)] for r in store.match_rowids(
            db, make_filter(search=old))[1]}
        old = new
    # a head start only: a file that is not there is left to the search, which says so
    missing = db.with_name("missing.duckdb")
    store.prepare_search(missing)
    with pytest.raises(DataError):
        store.match_rowids(missing, make_filter(search="苏州"))


def test_a_caseless_search_matches_what_the_lowercased_search_matches(db: Path) -> None:
    """A search of digits, punctuation and CJK skips lower() over every name and finds the
    same entities (the names are searched as they are)."""
    names = store.query_entities(db)
    for text in ("苏州", "实验室", "（", "1", "-", "独墅湖科教创新区", "：", "2"):
        want = {i for i, zh, en in zip(names["id"], names["name_zh"], names["name_en"],
                                      strict=True)
                if text.lower() in zh.lower() or text.lower() in (en or "").lower() or i == text}
        got = set(store.query_entities(db, make_filter(search=text))["id"])
        assert got == want, text


def test_caseless_characters_are_never_made_by_lower() -> None:
    """Every code point of ``caseless`` is its own lowercase in DuckDB, and DuckDB's lower()
    makes none of them of any other code point (every code point checked)."""
    import pyarrow as pa

    from geo_app.store.common import _CASELESS_RANGES, caseless

    every = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    con = duckdb.connect()
    con.register("code_points", pa.table({"c": every}))
    changed = con.execute("SELECT c, lower(c) FROM code_points WHERE lower(c) <> c").fetchall()
    made = {ch for _, low in changed for ch in low}
    inside = [chr(c) for lo, hi in _CASELESS_RANGES for c in range(lo, hi + 1)]
    assert all(caseless(c) for c in inside) and len(inside) > 20_000
    assert [c for c in inside if c in made or c in {src for src, _ in changed}] == []
    assert not caseless("a") and not caseless("Ａ") and not caseless("é")


def test_geometries_are_written_as_wkb_and_missing_or_empty_as_null() -> None:
    import geopandas as gpd
    import shapely
    from shapely.geometry import Point, Polygon

    from geo_app.store.common import _geoms_to_wkb

    geoms = [Point(120.6, 31.3), None, Point(), Polygon(), Polygon([(0, 0), (1, 0), (1, 1)])]
    got = _geoms_to_wkb(gpd.GeoSeries(geoms).values)
    assert got[1:4] == [None, None, None]
    assert shapely.from_wkb(got[0]).equals(geoms[0]) and shapely.from_wkb(got[4]).equals(geoms[4])
    assert _geoms_to_wkb([]) == []
