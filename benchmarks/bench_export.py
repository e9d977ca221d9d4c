"""GeoJSON export benchmark (by hand):
``python -m benchmarks.bench_export [--sizes 10000 100000 1000000]``.

For each N, a synthetic registry (``benchmarks/synthetic.py``) is built into a DuckDB file in
a temporary folder; then each writer runs in a fresh subprocess, so its peak RSS is its own:

- **ours**: ``geo_app.export.export_file(..., "geojson")``, streaming from the database;
  its time and memory include reading the rows.
- **baselines** write a GeoDataFrame already loaded with ``store.query_entities``:
  ``gdf.to_json()``, ``gdf.to_file(driver="GeoJSON")`` and pyogrio's Arrow writer
  (both with ``RFC7946=YES``, like our output). Their write time and peak memory are
  measured from after the load; the load (time, memory) is shown on its own line.

The app's download path is measured the same way (a fresh process, peak above the start):

- **download**: what a click on the export page makes the server do
  (``export.prepare_download``: the export written under a ``static/downloads/<token>/``
  folder), then the file served as Streamlit 1.67's ``/app/static/`` route serves it:
  Starlette's ``FileResponse`` (the class that route returns) run as an ASGI app, its
  64 KiB chunks sent to a client that discards them. Only the socket is left out.
- **download_media**: the former path, for comparison: the export written to a temporary
  file, read back as ``bytes`` and stored in Streamlit's in-memory media store, where
  ``st.download_button`` serves files from (it keeps the whole file there).

Prints one table. :func:`bench` returns rows for ``benchmarks/run.py`` (issue 9 budget:
time ≤ 1.0× pyogrio-Arrow, peak ≤ +100 MiB at 1M). Only some writers:
``--writers download download_media``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from geo_app.settings import PROJECT_ROOT, Settings

WRITERS = ("ours", "load", "to_json", "to_file", "pyogrio_arrow", "download", "download_media")
LABELS = {
    "ours": "geo_app.export (stream from DuckDB)",
    "load": "store.query_entities (load for baselines)",
    "to_json": "geopandas gdf.to_json()",
    "to_file": "geopandas gdf.to_file(GeoJSON)",
    "pyogrio_arrow": "pyogrio write (Arrow, GeoJSON)",
    "download": "app download (static file, streamed)",
    "download_media": "app download before (media store)",
}
#: Writers of the app's download path: no GeoDataFrame is loaded first.
DOWNLOADS = ("download", "download_media")


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    # VmHWM belongs to this process image; ru_maxrss would carry the parent's peak across exec
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _serve_from_disk(db: Path, work: Path) -> int:
    """Prepare the GeoJSON of every entity as the export page does, then stream it as
    Streamlit's static route does; returns the bytes sent."""
    import asyncio

    from starlette.responses import FileResponse

    from geo_app import export

    download = export.prepare_download(db, "entities", "geojson", work / "static" / "downloads")
    sent = 0

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)  # the client never disconnects
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal sent
        sent += len(message.get("body", b""))

    scope = {"type": "http", "method": "GET", "headers": [], "path": "/", "query_string": b"",
             "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1"}
    response = FileResponse(download.path, media_type="application/geo+json")
    asyncio.run(response(scope, receive, send))  # type: ignore[arg-type]
    return sent


def _serve_from_media_store(db: Path, work: Path) -> int:
    """The former path: export to a temporary file, read it back, store it in Streamlit's
    in-memory media store as ``st.download_button`` does; returns the stored size."""
    from streamlit.runtime.media_file_storage import MediaFileKind
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from geo_app import export

    path = work / "media" / "suzhou-entities.geojson"
    path.parent.mkdir(parents=True, exist_ok=True)
    export.export_file(db, "entities", "geojson", path)
    payload = path.read_bytes()
    path.unlink()
    storage = MemoryMediaFileStorage("/media")
    file_id = storage.load_and_get_id(payload, "application/geo+json", MediaFileKind.DOWNLOADABLE,
                                      "suzhou-entities.geojson")
    return storage.get_file(file_id).content_size


def child(writer: str, db: Path, out: Path) -> dict[str, Any]:
    """Run one writer in this (fresh) process; returns seconds, peak MiB above the start."""
    import geopandas as gpd  # noqa: F401 (imported before the baseline RSS is taken)
    import pyarrow  # noqa: F401
    import pyogrio

    from geo_app import export, store

    with store.connect(db) as con:  # warm up: the duckdb module and its first connection
        con.execute("SELECT 1").fetchall()
    if writer in DOWNLOADS:  # imported before the baseline RSS is taken
        import starlette.responses  # noqa: F401
        import streamlit.runtime.memory_media_file_storage  # noqa: F401
    base = _rss_mib()
    result: dict[str, Any] = {}
    if writer in DOWNLOADS:
        serve = _serve_from_disk if writer == "download" else _serve_from_media_store
        t0 = time.perf_counter()
        result["bytes"] = serve(db, out.parent / f"{writer}-work")
        result["seconds"] = time.perf_counter() - t0
    elif writer == "ours":
        t0 = time.perf_counter()
        n = export.export_file(db, "entities", "geojson", out)
        result["seconds"] = time.perf_counter() - t0
        result["features"] = n
    else:
        t0 = time.perf_counter()
        gdf = store.query_entities(db)
        load_s = time.perf_counter() - t0
        loaded = _rss_mib()
        result.update(load_seconds=load_s, load_mib=loaded - base, features=len(gdf))
        t0 = time.perf_counter()
        if writer == "to_json":
            out.write_text(gdf.to_json(), encoding="utf-8")
        elif writer == "to_file":
            gdf.to_file(out, driver="GeoJSON", engine="pyogrio", RFC7946="YES")
        elif writer == "pyogrio_arrow":
            pyogrio.write_dataframe(gdf, out, driver="GeoJSON", use_arrow=True, RFC7946="YES")
        result["seconds"] = time.perf_counter() - t0
        base = loaded
    result["peak_mib"] = _peak_mib() - base
    result.setdefault("bytes", out.stat().st_size if out.exists() else 0)
    return result


def run_child(writer: str, db: Path, work: Path) -> dict[str, Any]:
    out = work / f"{writer}.geojson"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_export", "--child", writer, str(db), str(out)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        msg = f"{writer} failed:\n{proc.stderr}"
        raise RuntimeError(msg)
    if out.exists():
        out.unlink()
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def build_synthetic(n: int, work: Path) -> Settings:
    """A database of ``n`` synthetic entities (plus the shipped ones) under ``work``."""
    from benchmarks.synthetic import write_synthetic_data_dir
    from geo_app import build

    data = write_synthetic_data_dir(work / "data", n)
    settings = Settings(db_path=data / "geo_app.duckdb", data_dir=data,
                        layers_dir=PROJECT_ROOT / "layers")
    build.build_database(settings)
    return settings


def measure(n: int, db: Path, work: Path,
            writers: tuple[str, ...] = WRITERS) -> dict[str, dict[str, Any]]:
    """Every writer's figures for the database ``db``."""
    out: dict[str, dict[str, Any]] = {}
    for writer in writers:
        if writer == "load":
            continue
        res = run_child(writer, db, work)
        if writer not in ("ours", *DOWNLOADS) and "load" not in out:
            out["load"] = {"seconds": res["load_seconds"], "peak_mib": res["load_mib"],
                           "features": res["features"], "bytes": 0}
        out[writer] = res
    return out


def print_table(results: dict[int, dict[str, dict[str, Any]]]) -> None:
    head = (f"| {'N':>9} | {'writer':<42} | {'time s':>7} | {'× ours':>6} | "
            f"{'peak +MiB':>9} | {'output MB':>9} |")
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    for n, res in results.items():
        ours = res["ours"]["seconds"] if "ours" in res else None
        for writer in WRITERS:
            if writer not in res:
                continue
            r = res[writer]
            ratio = ("" if writer in ("ours", "load") or ours is None
                     else f"{r['seconds'] / ours:.2f}")
            size = f"{r['bytes'] / 1e6:.1f}" if r["bytes"] else ""
            print(f"| {n:>9,} | {LABELS[writer]:<42} | {r['seconds']:>7.2f} | {ratio:>6} | "
                  f"{r['peak_mib']:>9.0f} | {size:>9} |")


def bench(n: int, settings: Settings, work: Path) -> list[Any]:
    """Rows for ``benchmarks/run.py``: export time and peak memory, then the app's download."""
    from benchmarks.run import Row

    res = measure(n, settings.db_path, work, ("ours", "pyogrio_arrow"))
    ours, base = res["ours"], res["pyogrio_arrow"]
    big = n >= 1_000_000
    return [
        Row(n, "GeoJSON export, stream from DuckDB", ours["seconds"], "s", base["seconds"],
            "pyogrio Arrow write (loaded)", "≤ 1.0× pyogrio-Arrow",
            (ours["seconds"] <= base["seconds"]) if big else None),
        Row(n, "GeoJSON export peak memory", ours["peak_mib"], "MiB", base["peak_mib"],
            "pyogrio Arrow write (loaded)", "≤ +100 MiB",
            (ours["peak_mib"] <= 100) if big else None),
        *download_rows(n, settings.db_path, work),
    ]


def download_rows(n: int, db: Path, work: Path) -> list[Any]:
    """The runner's row for the app's GeoJSON download of every entity: peak memory of the
    server's work for a click and the file's transfer, against the former
    ``st.download_button`` path."""
    from benchmarks.run import Row

    res = measure(n, db, work, DOWNLOADS)
    now, before = res["download"], res["download_media"]
    big = n >= 1_000_000
    return [Row(n, "download (app path) peak memory", now["peak_mib"], "MiB", before["peak_mib"],
                "st.download_button (before)", "≤ +100 MiB",
                (now["peak_mib"] <= 100) if big else None)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--child", nargs=3, metavar=("WRITER", "DB", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, default=None,
                        help="measure this database instead of building synthetic ones")
    parser.add_argument("--writers", nargs="+", choices=[w for w in WRITERS if w != "load"],
                        default=list(WRITERS), help="measure only these writers")
    args = parser.parse_args(argv)
    writers = tuple(args.writers)
    if args.child:
        writer, db, out = args.child
        print(json.dumps(child(writer, Path(db), Path(out))))
        return 0
    results: dict[int, dict[str, dict[str, Any]]] = {}
    if args.db:
        from geo_app import store

        work = Path(tempfile.mkdtemp(prefix="geo-bench-export-"))
        try:
            results[store.count_entities(args.db)] = measure(0, args.db, work, writers)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    for n in [] if args.db else args.sizes:
        work = Path(tempfile.mkdtemp(prefix=f"geo-bench-export-{n}-"))
        try:
            t0 = time.perf_counter()
            settings = build_synthetic(n, work)
            print(f"built N={n:,} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            results[n] = measure(n, settings.db_path, work, writers)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
