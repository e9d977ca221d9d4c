"""Readers in other processes see the old or the new data while an import runs, never half.

The import writes a copy of the file and swaps it in (``store.rewrite``), so readers are
never blocked: each keeps reading the file it has open and moves to the new one once it
is swapped in. Two writers queue on the writer lock and both land.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from geo_app import ingest, store
from geo_app.auth import local_actor
from geo_app.errors import DatabaseBusyError
from geo_app.settings import Settings
from tests import slow_import
from tests.helpers import query_sql, write_import_csv

READERS = 3
ROWS = 2000


def _write_csv(path: Path, prefix: str, rows: int, seed: int) -> Path:
    return write_import_csv(path, prefix=prefix, rows=rows, seed=seed, datum="WGS84",
                            name="并发测试", source="concurrency test")


def _reader(db: str, new_total: int, ready: Any, stop: Any, out: Any) -> None:
    """Read entities over and over; report every (total, user rows, user rows in layers) seen."""
    rng = random.Random(os.getpid())
    seen: set[tuple[int, int, int]] = set()
    reads = busy = 0
    saw_new = False
    attempts: list[tuple[float, float]] = []  # (start, end) of every read attempt
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        stopping = stop.is_set()
        start = time.monotonic()
        try:
            gdf = store.query_entities(Path(db))
        except DatabaseBusyError:  # counted: the writer must never block a reader
            busy += 1
            continue
        finally:
            attempts.append((start, time.monotonic()))
        user = gdf[gdf["origin"] == "user"]
        seen.add((len(gdf), len(user), int((user["layers"] != "").sum())))
        reads += 1
        if reads == 1:
            ready.release()
        if stopping and len(gdf) == new_total:
            saw_new = True
            break
        time.sleep(rng.uniform(0.03, 0.12))
    out.put({"seen": sorted(seen), "reads": reads, "busy": busy, "saw_new": saw_new,
             "attempts": attempts})


def test_readers_see_old_or_new_never_partial(writable_settings: Settings, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    db = writable_settings.db_path
    old_total = store.count_entities(db)
    new_total = old_total + ROWS
    file = _write_csv(tmp_path / "many.csv", "conc", ROWS, seed=3)
    # spawn re-runs the parent's __main__ in each child; under pytest that may be a script
    # another test left behind (AppTest runs pages as __main__), so start from a blank one
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    ctx = mp.get_context("spawn")
    ready, stop, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_reader, args=(str(db), new_total, ready, stop, out))
             for _ in range(READERS)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            assert ready.acquire(timeout=120), "a reader never managed a first read"
        # keep the transaction open a while, so readers really meet the writer's lock
        opened: list[float] = []
        monkeypatch.setattr(slow_import.WRITER, "insert_frame",
                            slow_import.WRITER.insert_frame)  # restored afterwards
        slow_import.pause_inside_imports(0.4, lambda stage: opened.append(time.monotonic()))
        report, batch = ingest.import_file(file, db, actor=local_actor())
        committed = time.monotonic()
        assert batch is not None, [p.en for p in report.problems]
        stop.set()
        results = [out.get(timeout=200) for _ in procs]
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    in_layers = int(query_sql(db, "SELECT count(*) FROM entities WHERE origin = 'user' "
                                        "AND layers <> ''").iloc[0, 0])
    assert 0 < in_layers <= ROWS
    allowed = {(old_total, 0, 0), (new_total, ROWS, in_layers)}
    for r in results:
        assert set(map(tuple, r["seen"])) <= allowed, f"a reader saw partial data: {r['seen']}"
        assert r["saw_new"], f"a reader never saw the import: {r}"
        assert r["reads"] >= 2
        assert r["busy"] == 0, "a reader was blocked by the writer"
    # reads ran while the import transaction was open, and saw the old data meanwhile
    overlapping = [(a, b) for r in results for a, b in r["attempts"]
                   if a < committed and b > opened[0]]
    assert overlapping, "no read overlapped the open import transaction"
    assert all(p.exitcode == 0 for p in procs)


def test_two_writers_at_once_both_land(writable_settings: Settings, tmp_path: Path) -> None:
    db = writable_settings.db_path
    before = store.count_entities(db)
    first = _write_csv(tmp_path / "first.csv", "w1", 500, seed=1)
    second = _write_csv(tmp_path / "second.csv", "w2", 500, seed=2)
    env = {**os.environ, "GEO_APP_DB": str(db), "GEO_APP_DATA_DIR": str(writable_settings.data_dir),
           "GEO_APP_LAYERS_DIR": str(writable_settings.layers_dir)}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.slow_import", "0.3", "import", str(f)],
                              env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for f in (first, second)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert store.count_entities(db) == before + 1000
    assert sorted(ingest.list_batches(db)["rows_present"]) == [500, 500]
