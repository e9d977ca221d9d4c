"""PostGIS beside DuckDB (by hand): ``python -m benchmarks.bench_postgis [--sizes 100000 1000000]``.

For each N, one synthetic ``data/`` (``benchmarks/synthetic.py``) is built twice: into a
DuckDB file and into a throwaway PostgreSQL 15 + PostGIS 3 server on this machine
(``tests/pgcluster.py``: initdb in a temporary folder, ``fsync=off``). Then the rows of
``benchmarks/run.py`` are measured on both, through the same store functions:

- **build**: ``geo-app build`` from ``data/`` and ``layers/``;
- **filter**: a 板块 filter → GeoDataFrame (the 板块 closest to 1 % of N), best of 5 warm;
- **export**: ``export_file(..., "geojson")`` of every entity, one run;
- **membership**: ``layers.refresh_membership`` (read every point, compute, write them all);
- **import**: a CSV of min(N, 100,000) rows, check and write, in rows per second;
- **API throughput**: OGC API ``/collections/entities/items?limit=100&offset=…`` for
  ``--seconds`` from 8 client threads: requests per second and the 95th-percentile latency,
  with 1, 2 and 4 ``geo-app api`` processes on PostGIS against one on DuckDB.

Prints one table (DuckDB, PostGIS, their ratio). Numbers mean something only on a quiet
machine: the server, the API processes and the clients share its cores.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.synthetic import synthetic_registry, write_synthetic_data_dir
from geo_app import build, export, layers, store
from geo_app.filters import make_filter
from geo_app.settings import DATABASE_URL_VAR, PROJECT_ROOT, READ_URL_VAR, Settings

#: API process counts measured on PostGIS (DuckDB: one process, as it is deployed).
API_PROCESSES = (1, 2, 4)
CLIENT_THREADS = 8


@dataclass
class Row:
    """One line of the table: a measure on DuckDB and on PostGIS."""

    n: int
    measure: str
    unit: str
    duckdb: float | None
    postgis: float | None

    def ratio(self) -> str:
        if not self.duckdb or self.postgis is None:
            return ""
        return f"{self.postgis / self.duckdb:.2f}"


@contextmanager
def backend(name: str, url: str | None) -> Iterator[None]:
    """Run the body with the store on ``name`` (``duckdb``, or ``postgis`` at ``url``)."""
    saved = {k: os.environ.get(k) for k in (DATABASE_URL_VAR, READ_URL_VAR)}
    os.environ.pop(READ_URL_VAR, None)
    if name == "postgis" and url:
        os.environ[DATABASE_URL_VAR] = url
    else:
        os.environ.pop(DATABASE_URL_VAR, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def best(func: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure_store(n: int, settings: Settings, work: Path, quick: bool) -> dict[str, float]:
    """The store rows on the backend currently switched on; seconds (import: rows/s)."""
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    build.build_database(settings)
    out["build"] = time.perf_counter() - t0
    db = settings.db_path
    counts = store.entity_counts(db, "board")
    target = max(n // 100, 1)
    board = min(counts, key=lambda c: abs(c[1] - target))[0]
    flt = make_filter(boards=[board])
    out["filter"] = best(lambda: store.query_entities(db, flt), 2 if quick else 5)
    t0 = time.perf_counter()
    export.export_file(db, "entities", "geojson", work / "out.geojson")
    out["export"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    layers.refresh_membership(db)
    out["membership"] = time.perf_counter() - t0
    out["import"] = import_rate(n, db, work)
    return out


def import_rate(n: int, db: Path, work: Path) -> float:
    from geo_app import ingest
    from geo_app.auth import local_actor

    rows = min(n, ingest.MAX_ROWS)
    df = synthetic_registry(rows, seed=1)
    df["id"] = "imp-" + df["id"]
    path = work / "import.csv"
    df.to_csv(path, index=False)
    t0 = time.perf_counter()
    report, batch = ingest.import_file(path, db, actor=local_actor())
    secs = time.perf_counter() - t0
    if batch is None:
        msg = f"benchmark import was rejected: {report}"
        raise RuntimeError(msg)
    return rows / secs


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_api(settings: Settings, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    geo_app_cli = str(Path(sys.executable).parent / "geo-app")
    proc = subprocess.Popen([geo_app_cli, "api", "--port", str(port)],
                            env={**env, "GEO_APP_DB": str(settings.db_path),
                                 "GEO_APP_DATA_DIR": str(settings.data_dir),
                                 "GEO_APP_LAYERS_DIR": str(settings.layers_dir)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"geo-app api exited with {proc.returncode}"
            raise RuntimeError(msg)
        try:
            if httpx.get(f"{base}/conformance", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    msg = "geo-app api did not answer within 120 s"
    raise RuntimeError(msg)


def api_throughput(n: int, settings: Settings, env: dict[str, str], processes: int,
                   seconds: float) -> tuple[float, float]:
    """(requests per second, p95 latency in ms) of item pages over ``processes`` APIs."""
    import httpx

    started = [_start_api(settings, env) for _ in range(processes)]
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        rng = random.Random(k)
        mine: list[float] = []
        with httpx.Client(timeout=60) as http:
            i = k
            while time.monotonic() < stop:
                base = started[i % len(started)][1]
                i += 1
                offset = rng.randrange(max(n - 100, 1))
                t0 = time.perf_counter()
                resp = http.get(f"{base}/collections/entities/items?limit=100&offset={offset}")
                mine.append(time.perf_counter() - t0)
                resp.raise_for_status()
        with lock:
            latencies.extend(mine)

    try:
        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENT_THREADS)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
    finally:
        for proc, _ in started:
            proc.terminate()
            proc.wait(timeout=30)
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 2 else float("nan")
    return len(latencies) / elapsed, p95 * 1000


def run(sizes: list[int], *, seconds: float = 10.0, quick: bool = False) -> list[Row]:
    """Measure every row for each N on both backends; returns the rows (also printed)."""
    sys.path.insert(0, str(PROJECT_ROOT))
    from tests import pgcluster

    rows: list[Row] = []
    with pgcluster.running_cluster() as cluster:
        for n in sizes:
            work = Path(tempfile.mkdtemp(prefix=f"geo-bench-pg-{n}-"))
            try:
                data = write_synthetic_data_dir(work / "data", n)
                settings = Settings(db_path=data / "geo_app.duckdb", data_dir=data,
                                    layers_dir=PROJECT_ROOT / "layers")
                url = cluster.create_database()
                results = {}
                for name in ("duckdb", "postgis"):
                    with backend(name, url):
                        results[name] = measure_store(n, settings, work, quick)
                duck, pg = results["duckdb"], results["postgis"]
                for key, label, unit, scale in (
                        ("build", "build (data/ → database + layers)", "s", 1.0),
                        ("filter", "filter → GeoDataFrame (板块, ~1 % of N)", "ms", 1000.0),
                        ("export", "GeoJSON export, every entity", "s", 1.0),
                        ("membership", "layer membership refresh (read, compute, write)", "s", 1.0),
                        ("import", f"import throughput ({min(n, 100_000):,} rows)", "rows/s", 1.0)):
                    rows.append(Row(n, label, unit, duck[key] * scale, pg[key] * scale))
                env_duck = {k: v for k, v in os.environ.items()
                            if k not in (DATABASE_URL_VAR, READ_URL_VAR)}
                rps, p95 = api_throughput(n, settings, env_duck, 1, seconds)
                rows.append(Row(n, "API items/s, 1 process (DuckDB) vs 1 (PostGIS)", "req/s",
                                rps, None))
                rows.append(Row(n, "  p95 latency, 1 process", "ms", p95, None))
                for procs in API_PROCESSES:
                    pg_rps, pg_p95 = api_throughput(n, settings,
                                                    {**env_duck, DATABASE_URL_VAR: url},
                                                    procs, seconds)
                    label = f"API items/s, {procs} PostGIS process{'es' if procs > 1 else ''}"
                    rows.append(Row(n, label, "req/s", rps, pg_rps))
                    rows.append(Row(n, f"  p95 latency, {procs} PostGIS process"
                                       f"{'es' if procs > 1 else ''}", "ms", p95, pg_p95))
            finally:
                shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    return rows


def print_table(rows: list[Row]) -> None:
    print(f"| {'N':>9} | {'measure':<50} | {'unit':<6} | {'DuckDB':>10} | {'PostGIS':>10} | "
          f"{'PG/Duck':>7} |")
    print(f"|{'-' * 11}|{'-' * 52}|{'-' * 8}|{'-' * 12}|{'-' * 12}|{'-' * 9}|")
    for r in rows:
        duck = "" if r.duckdb is None else f"{r.duckdb:.3g}"
        pg = "" if r.postgis is None else f"{r.postgis:.3g}"
        print(f"| {r.n:>9,} | {r.measure:<50} | {r.unit:<6} | {duck:>10} | {pg:>10} | "
              f"{r.ratio():>7} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="duration of each API throughput run (default 10)")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer repeats")
    args = parser.parse_args(argv)
    run(args.sizes, seconds=args.seconds, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
