"""Several machines' worth of work on one PostGIS server: 4 importer processes and 4 API reader
processes for 30 s. No error anywhere, every committed batch lands whole exactly once, and no
reader ever sees part of an import. Real server (tests/pgcluster.py), no mocks.

Run as ``python -m tests.test_postgis_concurrency importer|reader …`` this module is one of
those processes (the environment names the database); it prints one JSON line at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from geo_app import ingest, store
from geo_app.auth import local_actor
from geo_app.settings import DATABASE_URL_VAR, load_settings
from tests.conftest import PgDatabase
from tests.helpers import write_import_csv

IMPORTERS = 4
READERS = 4
SECONDS = 30
#: Rows per import: a reader that sees a count of user rows that is not a multiple of it
#: has seen part of an import.
BATCH = 37


def _importer(worker: str, seconds: float, folder: Path) -> dict[str, Any]:
    db = load_settings().db_path
    batches: list[str] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        file = write_import_csv(folder / f"{worker}-{i}.csv", prefix=f"{worker}-{i}", rows=BATCH,
                                seed=i, datum="WGS84", name="并发导入", source="concurrency test")
        try:
            report, batch = ingest.import_file(file, db, actor=local_actor(worker))
            if batch is None:
                errors.append(f"refused: {[p.en for p in report.problems]}")
            else:
                batches.append(batch)
        except Exception:  # every error is a failure of the test, reported in full
            errors.append(traceback.format_exc())
        i += 1
        time.sleep(0.5)  # 8 processes share 2 cores here: leave the readers some
    return {"batches": batches, "errors": errors}


def _reader(worker: str, seconds: float, shipped: int) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from geo_app.asgi import create_app

    client = TestClient(create_app(load_settings().db_path, allowed_hosts=["testserver"]))
    seen: list[int] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            resp = client.get("/collections/entities/items?limit=50&kind=incubator")
            if resp.status_code != 200:
                errors.append(f"{resp.status_code}: {resp.text[:300]}")
                continue
            page = resp.json()
            total = client.get("/collections/entities/items?limit=1").json()["numberMatched"]
            seen.append(int(total) - shipped)
            if len(page["features"]) != min(50, page["numberMatched"]):
                errors.append(f"a page of {len(page['features'])} of {page['numberMatched']}")
        except Exception:
            errors.append(traceback.format_exc())
    return {"seen": seen, "errors": errors, "worker": worker}


def _start(role: str, worker: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.test_postgis_concurrency", role, worker,
                             *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_four_importers_and_four_api_readers_for_30_s(pg_writable: PgDatabase,
                                                      tmp_path: Path) -> None:
    db = pg_writable.settings.db_path
    shipped = store.count_entities(db)
    env = {**os.environ}
    assert env[DATABASE_URL_VAR] == pg_writable.url
    procs = [_start("importer", f"w{k}", [str(SECONDS), str(tmp_path)], env)
             for k in range(IMPORTERS)]
    procs += [_start("reader", f"r{k}", [str(SECONDS), str(shipped)], env)
              for k in range(READERS)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=SECONDS + 240)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    importers, readers = results[:IMPORTERS], results[IMPORTERS:]
    for r in results:
        assert not r["errors"], r["errors"][:3]
    committed = [b for r in importers for b in r["batches"]]
    assert len(committed) >= IMPORTERS * 2, "the importers hardly ran"
    assert len(set(committed)) == len(committed), "two imports got the same batch id"
    # nothing lost, nothing doubled: exactly the committed batches, each whole
    batches = ingest.list_batches(db)
    assert sorted(batches["batch_id"]) == sorted(committed)
    assert set(batches["rows_present"]) == {BATCH}
    entities = store.query_entities(db)
    assert len(entities) == shipped + BATCH * len(committed)
    assert entities["id"].is_unique
    user = entities[entities["origin"] == "user"]
    assert sorted(user["batch_id"].unique()) == sorted(committed)
    # readers saw only whole imports, never fewer rows than before, and saw imports land
    for r in readers:
        assert len(r["seen"]) >= 3, r
        assert all(n % BATCH == 0 for n in r["seen"]), f"part of an import was seen: {r['seen']}"
        assert r["seen"] == sorted(r["seen"]), "a reader went back in time"
        assert r["seen"][-1] > r["seen"][0], "a reader never saw an import land"
    assert len(store.read_table(db, "audit")) == len(committed)


if __name__ == "__main__":
    role, worker = sys.argv[1], sys.argv[2]
    if role == "importer":
        result = _importer(worker, float(sys.argv[3]), Path(sys.argv[4]))
    else:
        result = _reader(worker, float(sys.argv[3]), int(sys.argv[4]))
    print(json.dumps(result))
