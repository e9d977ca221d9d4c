"""Writes on PostGIS: imports are one transaction each (all or nothing, also under kill -9),
ids that arrive twice are refused, removals and rebuilds keep what they must. Real servers
(tests/pgcluster.py), no mocks.

Run as ``python -m tests.test_postgis_writes SECONDS geo-app-args…`` this module is an
importer that pauses ``SECONDS`` inside its open transaction (after the batch row, after
the memberships) and says so on stderr, for the kill -9 test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from geo_app import build, cli, export, ingest, store
from geo_app.auth import local_actor
from geo_app.errors import ImportValidationError
from geo_app.settings import DATABASE_URL_VAR
from geo_app.store import postgis_connect, postgis_schema, postgis_write
from tests import pgcluster
from tests.conftest import PgDatabase
from tests.helpers import wait_for_log, write_import_csv

ROWS = 3000
STAGES = ("entities written, inside the import transaction",
          "memberships written, inside the import transaction")


def _csv(tmp_path: Path, name: str, prefix: str, rows: int, seed: int = 1) -> Path:
    return write_import_csv(tmp_path / name, prefix=prefix, rows=rows, seed=seed,
                            datum="GCJ02", name="数据库测试", source="postgis test")


def _state(url: str) -> tuple[int, int, int, int]:
    """(user rows, import batches, memberships of user rows, audit rows), read on the server."""
    with psycopg.connect(url, options="-c search_path=geo_app,public") as con:
        row = con.execute(
            "SELECT (SELECT count(*) FROM entities WHERE origin = 'user'), "
            "(SELECT count(*) FROM import_batches), (SELECT count(*) FROM layer_members "
            "WHERE entity_id IN (SELECT id FROM entities WHERE origin = 'user')), "
            "(SELECT count(*) FROM audit)").fetchone()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def test_an_import_lands_whole_and_is_listed_and_removable(pg_writable: PgDatabase,
                                                           tmp_path: Path) -> None:
    db = pg_writable.settings.db_path
    before = store.count_entities(db)
    report, batch = ingest.import_file(_csv(tmp_path, "a.csv", "pga", 200), db,
                                       actor=local_actor("tester"))
    assert batch is not None, [p.en for p in report.problems]
    assert store.count_entities(db) == before + 200
    users, batches, members, audit = _state(pg_writable.url)
    assert (users, batches, audit) == (200, 1, 1) and members > 0
    listed = ingest.list_batches(db)
    assert list(listed["batch_id"]) == [batch]
    assert list(listed["rows_present"]) == [200] and list(listed["made_by"]) == ["local:tester"]
    page, matched = store.query_entities_page(db, entity_id="pga-00007")
    assert matched == 1 and page.iloc[0]["batch_id"] == batch
    assert page.iloc[0]["source_datum"] == "GCJ02" and page.iloc[0]["conversion"]
    assert ingest.remove_batch(db, batch, actor=local_actor("tester")) == 200
    assert store.count_entities(db) == before
    assert _state(pg_writable.url) == (0, 0, 0, 2)
    assert list(ingest.list_audit(db)["action"]) == ["remove", "import"]


def test_an_id_already_there_refuses_the_whole_file(pg_writable: PgDatabase,
                                                    tmp_path: Path) -> None:
    db = pg_writable.settings.db_path
    _, first = ingest.import_file(_csv(tmp_path, "a.csv", "dup", 50), db, actor=local_actor())
    assert first is not None
    before = _state(pg_writable.url)
    report, batch = ingest.import_file(_csv(tmp_path, "b.csv", "dup", 80, seed=2), db,
                                       actor=local_actor())
    assert batch is None and not report.ok
    assert _state(pg_writable.url) == before
    # an id that arrives between the check and the write (another process) is refused
    # by the primary key inside the transaction: nothing of the batch is written
    frame = store.query_entities(db).iloc[[0]].copy()
    frame["origin"], frame["batch_id"] = "user", "imp-race"
    batch_row = {"batch_id": "imp-race", "file_name": "race.csv", "imported_at": store.utc_now(),
                 "target": "entities", "row_count": 1, "source_datum": "WGS84"}
    with pytest.raises(ImportValidationError, match="already in the database"):
        store.import_entities(db, frame, batch_row, frame[["id"]].assign(layer_id="x")
                              .rename(columns={"id": "entity_id"}), actor=local_actor())
    assert _state(pg_writable.url) == before
    # a batch id drawn twice (two processes in the same second) refuses the second import
    frame = store.query_entities(db).iloc[[0]].copy()
    frame["id"], frame["origin"], frame["batch_id"] = "dup-new-row", "user", first
    with pytest.raises(ImportValidationError, match="batch id"):
        store.import_entities(db, frame, {**batch_row, "batch_id": first}, frame[["id"]].assign(
            layer_id="x").rename(columns={"id": "entity_id"}), actor=local_actor())
    assert _state(pg_writable.url) == before


#: Prints 20 batch ids of the database named by the environment, each drawn with the same
#: clock and the same "random" digits (what two importers in the same second could draw).
_DRAW_IDS = (
    "import sys, uuid\n"
    "from datetime import UTC, datetime\n"
    "uuid.uuid4 = lambda: uuid.UUID(int=7)\n"
    "from geo_app import store\n"
    "now = datetime(2026, 1, 1, tzinfo=UTC)\n"
    "print(' '.join(store.new_batch_id(sys.argv[1], now) for _ in range(20)))\n")


def test_batch_ids_cannot_collide(pg_writable: PgDatabase, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Importers with the same clock and the same random digits still get distinct batch ids
    (a server sequence numbers them); the old id, time + random digits, was drawn twice."""
    db = pg_writable.settings.db_path
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=7))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    procs = [subprocess.Popen([sys.executable, "-c", _DRAW_IDS, str(db)], env={**os.environ},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    drawn = [store.new_batch_id(db, now) for _ in range(20)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        drawn += out.split()
    assert len(drawn) == 80 and len(set(drawn)) == 80
    assert all(re.fullmatch(r"imp-20260101T000000-[0-9a-f]{6}", i) for i in drawn), drawn[:3]
    # two imports at the same moment both land; so do two indicator files
    ids = []
    for prefix in ("same1", "same2"):
        report, none = ingest.import_file(_csv(tmp_path, f"{prefix}.csv", prefix, 5), db,
                                          actor=local_actor(), dry_run=True)
        assert none is None and report.ok
        ids.append(ingest.import_report(report, db, actor=local_actor(), now=now))
    for _ in range(2):
        ids.append(ingest.import_user_indicators(db, _INDICATORS.encode(), "ind.csv",
                                                 actor=local_actor())[1])
    assert len(set(ids)) == 4
    assert set(ids) == set(ingest.list_batches(db)["batch_id"])
    # a rebuild swaps the app's schema but not the sequence: the numbers go on
    build.build_database(pg_writable.settings)
    assert store.new_batch_id(db, now) not in {*drawn, *ids}


def test_settings_hold_on_connections_a_pooler_shares(pg_writable: PgDatabase,
                                                      tmp_path: Path) -> None:
    """Behind PgBouncer in transaction mode a server connection keeps whatever another
    client set on it: here every pooled connection is left with a search path without the
    app's schema and JIT on. Reads, the export and an import still work, with the store's
    settings inside each transaction (docs/deploy.md, PgBouncer)."""
    db = pg_writable.settings.db_path
    before = store.count_entities(db)
    pool = postgis_connect._pool(pg_writable.url, postgis_connect.SCHEMA_NAME)
    held = [pool.getconn() for _ in range(pool.max_size)]
    for con in held:
        con.execute("SET search_path = pg_catalog")
        con.execute("SET jit = on")
        con.commit()
        pool.putconn(con)
    assert store.count_entities(db) == before > 50
    features = json.loads(export.export_bytes(db, "entities", "geojson"))["features"]
    assert len(features) == before
    _, batch = ingest.import_file(_csv(tmp_path, "p.csv", "pooled", 30), db, actor=local_actor())
    assert batch is not None and store.count_entities(db) == before + 30
    with postgis_connect._read(db) as con:
        row = con.execute("SELECT current_setting('search_path'), current_setting('jit')"
                          ).fetchone()
    assert row == ("geo_app, public", "off")
    with pool.connection() as con:  # the session's own settings were left as they were
        assert con.execute("SHOW search_path").fetchone() == ("pg_catalog",)


def test_a_failure_inside_the_import_writes_nothing(pg_writable: PgDatabase, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    db = pg_writable.settings.db_path
    real = postgis_schema.insert_frame

    def failing(con: Any, table: str, frame: Any) -> int:
        written = real(con, table, frame)
        if table == "layer_members":
            raise RuntimeError("disk full (simulated after every row was written)")
        return written

    monkeypatch.setattr(postgis_write, "insert_frame", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        ingest.import_file(_csv(tmp_path, "a.csv", "fail", 100), db, actor=local_actor())
    assert _state(pg_writable.url) == (0, 0, 0, 0)


def test_a_rebuild_keeps_user_imports_and_recomputes_memberships(
        pg_writable: PgDatabase, tmp_path: Path) -> None:
    db = pg_writable.settings.db_path
    _, batch = ingest.import_file(_csv(tmp_path, "a.csv", "keep", 300), db, actor=local_actor())
    assert batch is not None
    _, ind_batch = ingest.import_user_indicators(db, _INDICATORS.encode(), "ind.csv",
                                                 actor=local_actor())
    assert ind_batch is not None
    before = _state(pg_writable.url)
    layers_before = store.query_entities(db)[["id", "layers"]]
    build.build_database(pg_writable.settings)
    assert _state(pg_writable.url) == before
    assert store.query_entities(db)[["id", "layers"]].equals(layers_before)
    assert list(ingest.list_batches(db)["rows_present"]).count(300) == 1
    assert ind_batch in set(store.read_table(db, "board_indicators")["batch_id"])
    # the old tables are gone: one schema of the app, no build schema left behind
    with psycopg.connect(pg_writable.url) as con:
        schemas = {r[0] for r in con.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'geo_app%'").fetchall()}
    assert schemas == {"geo_app", postgis_connect.SERIAL_SCHEMA}  # and the batch sequence


_INDICATORS = ("板块,indicator,year,value,unit,source,notes\n"
               "太仓市,gdp,2031,1653.57,亿元,postgis test,\n")


def test_two_rebuilds_at_once_both_finish_and_keep_imports(pg_writable: PgDatabase,
                                                          tmp_path: Path) -> None:
    db = pg_writable.settings.db_path
    _, batch = ingest.import_file(_csv(tmp_path, "a.csv", "twice", 40), db, actor=local_actor())
    assert batch is not None
    before = _state(pg_writable.url)
    procs = [subprocess.Popen([sys.executable, "-m", "geo_app.cli", "build"], env={**os.environ},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert _state(pg_writable.url) == before
    assert store.count_entities(db) == len(store.query_entities(db)) > 40


def test_ensure_database_builds_once_then_reads(pg_url: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import copy_sources, point_env_at, use_postgis

    settings = point_env_at(copy_sources(tmp_path), monkeypatch)
    use_postgis(pg_url, monkeypatch)
    assert not store.database_exists(settings.db_path)
    build.ensure_database(settings)
    assert store.database_exists(settings.db_path)
    version = store.database_version(settings.db_path)
    build.ensure_database(settings)  # up to date: no second build
    assert store.database_version(settings.db_path) == version
    assert not settings.db_path.exists(), "the PostGIS backend wrote a DuckDB file"


def test_cli_runs_on_postgis(pg_writable: PgDatabase, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    file = _csv(tmp_path, "a.csv", "cli", 20)
    assert cli.main(["import", str(file)]) == 0
    assert cli.main(["batches"]) == 0
    out = capsys.readouterr().out
    assert "a.csv" in out
    assert cli.main(["info"]) == 0
    assert not pg_writable.settings.db_path.exists()


def test_a_read_only_role_reads_every_rebuild_as_docs_deploy_says(
        pg_cluster: pgcluster.Cluster, pg_writable: PgDatabase) -> None:
    """docs/deploy.md: default privileges let a read-only role (QGIS) read what each rebuild
    creates, and nothing more."""
    dbname = pg_writable.url.rsplit("/", 1)[1]
    reader = f"reader_{dbname}"
    pg_cluster.psql(f'CREATE ROLE "{reader}" LOGIN')
    for grant in ("USAGE ON SCHEMAS", "SELECT ON TABLES"):
        pg_cluster.psql(f'ALTER DEFAULT PRIVILEGES FOR ROLE {pgcluster.SUPERUSER} GRANT {grant} '
                        f'TO "{reader}"', dbname=dbname)
    build.build_database(pg_writable.settings)
    url = pg_writable.url.replace(f"{pgcluster.SUPERUSER}@", f"{reader}@")
    with psycopg.connect(url) as con:
        row = con.execute("SELECT count(*), count(geom) FROM geo_app.entities").fetchone()
        assert row is not None and row[0] > 50 and row[1] > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute("DELETE FROM geo_app.entities")


# ----------------------------------------------------------------------------- kill -9


def _start(settings_env: dict[str, str], file: Path, log: Path,
           pause: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "tests.test_postgis_writes", pause,
                                 "import", str(file)], env=settings_env,
                                stdout=subprocess.DEVNULL, stderr=err)


def test_kill_9_of_an_importer_leaves_before_or_after(pg_writable: PgDatabase,
                                                      tmp_path: Path) -> None:
    env = {**os.environ}
    assert env[DATABASE_URL_VAR] == pg_writable.url
    file = _csv(tmp_path, "big.csv", "crash", ROWS, seed=7)
    empty = (0, 0, 0, 0)
    for stage in STAGES:
        log = tmp_path / f"log-{STAGES.index(stage)}.txt"
        proc = _start(env, file, log, "30")
        wait_for_log(log, stage, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # the server rolls the dead session's transaction back: nothing of it is visible
        assert _state(pg_writable.url) == empty, stage
    # killed at random moments: before or after, never between
    outcomes = set()
    earlier = 0  # audit rows of the imports that landed before this one, and of their removals
    for delay in (0.5, 1.5, 3.0):
        log = tmp_path / f"log-{delay}.txt"
        proc = _start(env, file, log, "0.2")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        users, batches, members, audit = _state(pg_writable.url)
        assert (users, batches) in {(0, 0), (ROWS, 1)}, (delay, users, batches)
        assert audit == earlier + batches, (delay, audit, earlier)  # its audit row with its batch
        outcomes.add(batches)
        if batches:
            assert members > 0
            removed = ingest.list_batches(pg_writable.settings.db_path)["batch_id"].iloc[0]
            ingest.remove_batch(pg_writable.settings.db_path, removed, actor=local_actor())
            earlier = audit + 1  # the removal is recorded too
            assert _state(pg_writable.url) == (0, 0, 0, earlier)
    assert 0 in outcomes, "no kill hit an import under way"
    # and the database takes the same file afterwards
    _, batch = ingest.import_file(file, pg_writable.settings.db_path, actor=local_actor())
    assert batch is not None
    assert _state(pg_writable.url)[:2] == (ROWS, 1)


def pause_inside_imports(seconds: float) -> None:
    """Make every PostGIS import pause ``seconds`` at each of :data:`STAGES`."""
    real = postgis_schema.insert_frame

    def slow_insert(con: Any, table: str, frame: Any) -> int:
        written = real(con, table, frame)
        if table in ("entities", "layer_members"):
            stage = STAGES[0] if table == "entities" else STAGES[1]
            print(f"slow import: {stage}", file=sys.stderr, flush=True)
            time.sleep(seconds)
        return written

    postgis_write.insert_frame = slow_insert  # type: ignore[assignment]


if __name__ == "__main__":
    pause_inside_imports(float(sys.argv[1]))
    sys.exit(cli.main(sys.argv[2:]))
