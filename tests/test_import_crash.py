"""kill -9 during an import leaves the database as it was before or fully after, never between.

A subprocess runs ``geo-app import`` on a large file through ``tests.slow_import``, so it
sleeps twice inside the open transaction (after the batch row, after the entities) and
says so on stderr. The test kills it there, and at random moments, and then checks
that the database opens and holds either none or all of the batch.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geo_app import ingest, store
from geo_app.auth import local_actor
from geo_app.settings import Settings
from tests.helpers import execute_sql, query_sql, wait_for_log, write_import_csv

ROWS = 5000
PAUSE = "0.6"
STAGES = ("batch row written", "entities written")


@pytest.fixture()
def big_file(tmp_path: Path) -> Path:
    return write_import_csv(tmp_path / "big.csv", prefix="crash", rows=ROWS, seed=7,
                            datum="GCJ02", name="批量导入测试", source="crash test")


def _start(settings: Settings, file: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GEO_APP_DB": str(settings.db_path),
           "GEO_APP_DATA_DIR": str(settings.data_dir),
           "GEO_APP_LAYERS_DIR": str(settings.layers_dir)}
    with open(log, "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "tests.slow_import", PAUSE, "import",
                                 str(file)],
                                env=env, stdout=subprocess.DEVNULL, stderr=err)


def _state(db: Path) -> tuple[int, int, int]:
    """(user rows, import batches, memberships of user rows) — the database must open."""
    r = query_sql(db, (
        "SELECT (SELECT count(*) FROM entities WHERE origin = 'user'), "
        "(SELECT count(*) FROM import_batches), (SELECT count(*) FROM layer_members "
        "WHERE entity_id IN (SELECT id FROM entities WHERE origin = 'user'))"))
    return tuple(int(v) for v in r.iloc[0])  # type: ignore[return-value]


def _assert_before_or_after(db: Path, members_after: int | None) -> bool:
    """True when the batch is fully there, False when nothing of it is; fails in between."""
    rows, batches, members = _state(db)
    assert (rows, batches, members) == (0, 0, 0) or (rows, batches) == (ROWS, 1), (
        f"partial import: {rows} rows, {batches} batches, {members} memberships")
    if rows and members_after is not None:
        assert members == members_after
    return bool(rows)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_kill_inside_the_transaction_leaves_nothing(writable_settings: Settings, big_file: Path,
                                                    tmp_path: Path) -> None:
    db = writable_settings.db_path
    shipped = store.count_entities(db)
    for stage in STAGES:
        log = tmp_path / f"kill-{stage[:5]}.log"
        proc = _start(writable_settings, big_file, log)
        wait_for_log(log, stage, proc)
        _kill(proc)
        assert proc.returncode == -signal.SIGKILL
        assert _state(db) == (0, 0, 0), f"killed after '{stage}': the transaction must vanish"
        assert store.count_entities(db) == shipped
        # the killed writer's copy stays beside the database until the next writer
        assert _copies(db, proc.pid), "a copy was left (so the clean-up check can fail)"
    # the database is writable again afterwards: the same file now imports completely,
    # and that writer removed the copies of the killed ones
    report, batch = ingest.import_file(big_file, db, actor=local_actor())
    assert batch is not None and _state(db)[:2] == (ROWS, 1)
    assert _copies(db) == []


def _copies(db: Path, pid: int | str = "*") -> list[Path]:
    """The ``<db>.write-<pid>-<n>`` copies (and their WALs) beside the database."""
    live = Path(os.path.realpath(db))
    return sorted(live.parent.glob(f"{live.name}.write-{pid}-*"))


def test_a_live_writers_copy_survives_and_a_killed_ones_is_removed(
        writable_settings: Settings, big_file: Path, tmp_path: Path) -> None:
    """The next writer deletes a killed writer's copy, never the copy of a running one."""
    db = writable_settings.db_path
    proc = _start(writable_settings, big_file, tmp_path / "killed.log")
    wait_for_log(tmp_path / "killed.log", STAGES[0], proc)
    _kill(proc)
    killed = _copies(db, proc.pid)
    assert killed
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        running = Path(f"{os.path.realpath(db)}.write-{runner.pid}-1")
        running.write_bytes(b"a copy being written")
        execute_sql(db, [("DELETE FROM import_batches WHERE false", [])])
        assert [p for p in killed if p.exists()] == []
        assert running.read_bytes() == b"a copy being written"
    finally:
        runner.kill()
        runner.wait()
    assert _state(db) == (0, 0, 0)


def test_kill_at_random_moments_leaves_before_or_after(writable_settings: Settings,
                                                       big_file: Path, tmp_path: Path) -> None:
    db = writable_settings.db_path
    started = time.monotonic()
    proc = _start(writable_settings, big_file, tmp_path / "full.log")
    assert proc.wait(timeout=300) == 0, (tmp_path / "full.log").read_text()
    full_run = time.monotonic() - started
    members_after = _state(db)[2]
    assert members_after > 0, "some imported points fall inside a strategy layer"
    ingest.remove_batch(db, str(ingest.list_batches(db)["batch_id"].iloc[0]), actor=local_actor())
    rng = random.Random(20240501)
    outcomes = []
    for i in range(5):
        proc = _start(writable_settings, big_file, tmp_path / f"random-{i}.log")
        time.sleep(rng.uniform(0.2, full_run * 1.1))
        _kill(proc)
        complete = _assert_before_or_after(db, members_after)
        outcomes.append(complete)
        if complete:
            ingest.remove_batch(db, str(ingest.list_batches(db)["batch_id"].iloc[0]),
                                actor=local_actor())
        assert _state(db) == (0, 0, 0)
    # the kills must have hit imports under way, not only finished ones (each lands after
    # the end with ~9 % odds, so all five with ~6e-6)
    assert not all(outcomes), "every kill came after the import had finished"
