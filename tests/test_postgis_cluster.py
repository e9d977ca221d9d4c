"""The throwaway PostgreSQL servers the PostGIS tests run on (tests/pgcluster.py)."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from tests import pgcluster


def test_database_has_postgis_3(pg_url: str) -> None:
    with psycopg.connect(pg_url) as con:
        row = con.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'postgis'").fetchone()
        assert row is not None and row[0].startswith("3."), row
        point = con.execute("SELECT ST_AsText(ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
                            [120.62, 31.3]).fetchone()
        assert point == ("POINT(120.62 31.3)",)


def test_standby_replays_the_primary(pg_cluster: pgcluster.Cluster, pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("CREATE TABLE t (x integer)")
        con.execute("INSERT INTO t VALUES (1), (2)")
    replica = pg_cluster.standby()
    try:
        replica_url = replica.url(pg_url.rsplit("/", 1)[1])
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute("INSERT INTO t VALUES (3)")
        pg_cluster.wait_replayed(replica)
        with psycopg.connect(replica_url, autocommit=True) as con:
            assert con.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            assert con.execute("SELECT sum(x) FROM t").fetchone() == (6,)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                con.execute("INSERT INTO t VALUES (4)")
    finally:
        pg_cluster.standbys.remove(replica)
        replica.destroy()


def test_missing_postgresql_is_an_error_naming_the_packages(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgcluster, "DEFAULT_BIN_DIRS", ())
    monkeypatch.setenv("GEO_APP_PG_BIN", "/nonexistent/bin")
    with pytest.raises(pgcluster.ClusterError, match="postgresql-15-postgis-3"):
        pgcluster.find_bin_dir()


def test_a_dead_sessions_server_is_stopped_and_removed_a_live_ones_kept(
        pg_cluster: pgcluster.Cluster) -> None:
    orphan = pgcluster.start_cluster()
    try:
        gone_pid = _ended_pid()
        (orphan.base / pgcluster.OWNER_FILE).write_text(str(gone_pid), encoding="ascii")
        removed = pgcluster.clear_orphans(orphan.bin_dir)
        assert orphan.base in removed and not orphan.base.exists()
        assert pg_cluster.base not in removed and pg_cluster.base.exists()
        assert pg_cluster.psql("SELECT 1").strip() == "1"
    finally:
        orphan.destroy()


def _ended_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
