"""Read replicas: with ``GEO_APP_READ_URL`` on a streaming-replication standby (``pg_basebackup
-R`` of the test server), writes still go to the primary and an import there appears in a map
process that reads the standby. Real servers (tests/pgcluster.py), no mocks.

Run as ``python -m tests.test_postgis_replica COUNT`` this module is that map process: it reads
what the map draws until ``COUNT`` entities are there and prints one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from geo_app import aggregate, ingest, store
from geo_app.auth import local_actor
from geo_app.errors import GeoAppError
from geo_app.settings import DATABASE_URL_VAR, READ_URL_VAR, load_settings
from geo_app.store import postgis_connect
from tests import pgcluster, test_views_map
from tests.conftest import PgDatabase
from tests.helpers import write_import_csv


@pytest.fixture()
def standby(pg_cluster: pgcluster.Cluster) -> Iterator[pgcluster.Cluster]:
    replica = pg_cluster.standby()
    try:
        yield replica
    finally:
        pg_cluster.standbys.remove(replica)
        replica.destroy()


def test_an_import_on_the_primary_appears_on_a_map_reading_the_standby(
        pg_cluster: pgcluster.Cluster, pg_writable: PgDatabase, standby: pgcluster.Cluster,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = pg_writable.settings.db_path
    dbname = pg_writable.url.rsplit("/", 1)[1]
    replica_url = standby.url(dbname)
    pg_cluster.wait_replayed(standby)
    monkeypatch.setenv(READ_URL_VAR, replica_url)
    # the readers' connections are the standby's (in recovery); the writers' the primary's
    with postgis_connect._pool(postgis_connect.read_url(), "geo_app").connection() as con:
        assert con.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    before = store.count_entities(db)
    version = store.database_version(db)
    file = write_import_csv(tmp_path / "r.csv", prefix="replica", rows=120, seed=5,
                            datum="WGS84", name="副本测试", source="replica test")
    report, batch = ingest.import_file(file, db, actor=local_actor())
    assert batch is not None, [p.en for p in report.problems]
    with psycopg.connect(pg_writable.url) as con:  # committed on the primary
        assert con.execute("SELECT count(*) FROM geo_app.entities WHERE batch_id = %s",
                           [batch]).fetchone() == (120,)
    # a map process reading only the standby sees the import once it is replayed
    env = {**os.environ, READ_URL_VAR: replica_url}
    proc = subprocess.run([sys.executable, "-m", "tests.test_postgis_replica", str(before + 120)],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["in_recovery"] is True
    assert seen["total"] == before + 120 and seen["points"] >= 120
    pg_cluster.wait_replayed(standby)
    assert store.count_entities(db) == before + 120  # this process reads the standby too
    assert store.database_version(db) != version
    # and the map page itself (Streamlit, in this process, reading the standby) draws them
    at = test_views_map.run_app()
    n, on_map = test_views_map.expected(db)
    assert n == before + 120
    assert test_views_map.counts_text(at).startswith(f"地图上 {on_map} 个")
    assert f"共 {n} 个符合筛选" in test_views_map.counts_text(at)


def test_the_standby_refuses_writes_with_a_clear_error(
        pg_cluster: pgcluster.Cluster, pg_writable: PgDatabase, standby: pgcluster.Cluster,
        monkeypatch: pytest.MonkeyPatch) -> None:
    dbname = pg_writable.url.rsplit("/", 1)[1]
    pg_cluster.wait_replayed(standby)
    monkeypatch.setenv(DATABASE_URL_VAR, standby.url(dbname))  # a standby named as primary
    with pytest.raises(GeoAppError, match="read-only server"):
        ingest.remove_batch(pg_writable.settings.db_path, "imp-none", actor=local_actor())


if __name__ == "__main__":
    want = int(sys.argv[1])
    db = load_settings().db_path
    deadline = time.monotonic() + 120
    total = -1
    while time.monotonic() < deadline:
        total = store.count_entities(db)
        if total >= want:
            break
        time.sleep(0.1)
    summary = aggregate.points_from_batches(store.iter_point_batches(
        db, unlocated=aggregate.NO_POINT_COLUMNS))
    with postgis_connect._pool(postgis_connect.read_url(), "geo_app").connection() as con:
        row = con.execute("SELECT pg_is_in_recovery()").fetchone()
    print(json.dumps({"total": total, "points": int(len(summary.points)),
                      "in_recovery": bool(row and row[0])}))
